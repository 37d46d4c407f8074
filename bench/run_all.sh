#!/usr/bin/env bash
# Run every cartback benchmark back to back and keep the output (and JSON) in one folder.
#
#   bench/run_all.sh                 # defaults: each script 1 run, about 5-6 minutes in all
#   REPEAT=3 bench/run_all.sh        # median of 3 (what docs/benchmarks.md reports)
#   PG=0 bench/run_all.sh            # skip PostgreSQL
#
# Installs nothing. Needs: wrk, Postfix's smtp-sink (no postfix daemon), and for the PG runs
# a PostgreSQL server at $CARTBACK_BENCH_PG (default postgresql://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
REPEAT=${REPEAT:-1}
PG=${PG:-1}
OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
if [ ${#missing[@]} -gt 0 ]; then
    echo "Missing tools. Install them first (as root):" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
    echo "(postfix is only needed for its smtp-sink binary; the postfix daemon need not run)" >&2
    exit 2
fi
pg_flag=()
if [ "$PG" = 1 ]; then
    if "$PY" -c "import sys; sys.path.insert(0, 'bench'); import _common as c; sys.exit(0 if c.pg_available() else 1)"; then
        pg_flag=(--pg)
    else
        echo "PostgreSQL not reachable at \${CARTBACK_BENCH_PG:-postgresql://postgres@127.0.0.1:5432}: PG runs skipped" >&2
        PG=0
    fi
fi

mkdir -p "$OUT"
echo "Results go to $OUT"
run() {
    local name=$1; shift
    echo; echo "=== $name: $*"
    "$PY" "$@" --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.md"
}
run ingest bench/ingest.py --repeat "$REPEAT" "${pg_flag[@]}"
if [ "$PG" = 1 ]; then
    run claim bench/claim.py --repeat "$REPEAT"
else
    run claim bench/claim.py --repeat "$REPEAT" --no-pg
fi
run send bench/send.py --repeat "$REPEAT"
run tick bench/tick.py --repeat "$REPEAT"
echo; echo "Done. Outputs in $OUT"
