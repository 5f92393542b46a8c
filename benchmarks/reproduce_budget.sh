#!/usr/bin/env bash
# Benchmark: `make reproduce` from a fresh clone (setup + every toy CLIP variant + every notebook),
# then again with the caches in place. Budgets: <= 1200 s fresh, <= 300 s cached (2 CPU cores).
# Usage: bash benchmarks/reproduce_budget.sh [REPO (default: this checkout)] [WORKDIR (default: a temp dir)]
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
work=${2:-$(mktemp -d)}
git clone -q "$repo" "$work/lcmc"
cd "$work/lcmc"
unset LCMC_CACHE_DIR
t0=$(date +%s); make reproduce > "$work/fresh.log" 2>&1; t1=$(date +%s)
make reproduce > "$work/cached.log" 2>&1; t2=$(date +%s)
fresh=$((t1 - t0)); cached=$((t2 - t1))
echo "fresh clone: ${fresh} s (budget 1200 s, ratio $(python3 -c "print(round($fresh/1200, 2))"))"
echo "with caches: ${cached} s (budget 300 s, ratio $(python3 -c "print(round($cached/300, 2))"))"
python3 - "$work/lcmc/results/toy/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for name, nb in m["notebooks"].items():
    print(f"  {name}: {nb.get('seconds')} s ({nb.get('status')})")
PY
echo "logs: $work/fresh.log $work/cached.log"
