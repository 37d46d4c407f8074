"""``cartback demo``: a demo store, simulated shoppers and a fast clock (see run.py)."""
