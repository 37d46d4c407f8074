"""Summarise a py-spy ``--format raw`` (collapsed stacks) file: self time and inclusive time
of the hottest functions, per thread.  python bench/pyspy_summary.py prof.txt [--top 25]"""

from __future__ import annotations

import argparse
import collections
import re


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--filter", default="", help="only stacks containing this text")
    args = p.parse_args()
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    with open(args.file) as fh:
        lines = fh.readlines()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or (args.filter and args.filter not in stack):
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0]] += n
        names = [re.sub(r" \(([^)]*/)?([^/)]+)\)", r" (\2)", f) for f in frames[1:]]
        if names:
            own[names[-1]] += n
        for name in set(names):
            incl[name] += n
    print(f"{total} samples")
    for t, n in threads.most_common(8):
        print(f"  {100 * n / total:5.1f}%  {t}")
    print("\nself time:")
    for name, n in own.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\ninclusive time:")
    for name, n in incl.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
