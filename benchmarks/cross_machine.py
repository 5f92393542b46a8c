"""Measure how far a rerun on other CPU kernels moves every table, and write verify --conclusions' tolerances.

A reviewer's machine retrains the toy CLIPs with its own CPU kernels, which gives slightly different
weights, so every toy number moves. This script compares such a rerun with the committed results,
table by table and column by column (CSV tables; the largest absolute difference of any row), and
writes ``lcmc_core/harness/cross_machine_tolerances.json``: each column's tolerance is
:data:`lcmc_core.harness.conclusions.MARGIN` times its largest measured difference, recorded beside
the measurement (which CPUs, which kernel caps, when).

How the measurement was made (the README's "Checking a rerun" gives the figures):

    # a rerun whose toy CLIPs are retrained with the CPU kernels capped to AVX2, in a cache of its own
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 LCMC_CACHE_DIR=/tmp/xcache \\
        .venv/bin/python -m lcmc_core toy-clips --size toy --out /tmp/xmachine/tables
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 LCMC_CACHE_DIR=/tmp/xcache \\
        .venv/bin/python -m lcmc_core reproduce --profile toy --out /tmp/xmachine
    .venv/bin/python benchmarks/cross_machine.py --reference results/toy --rerun /tmp/xmachine --caps AVX2 --write

Prints, per table, the largest difference of each column that moved, then the tolerance file's path.
"""
import argparse
import datetime
import json
from pathlib import Path

from lcmc_core.harness.conclusions import MARGIN, TOLERANCES_FILE, finite_number, keyed_table
from lcmc_core.harness.verify import IGNORED

ROOT = Path(__file__).resolve().parents[1]


def largest_differences(reference: Path, rerun: Path) -> dict[str, dict[str, float]]:
    """``{table: {column: largest |rerun - reference| over its rows}}`` of every CSV table both folders hold."""
    out: dict[str, dict[str, float]] = {}
    for ref_file in sorted((reference / "tables").glob("*.csv")):
        other = rerun / "tables" / ref_file.name
        if not other.is_file():
            print(f"  {ref_file.name}: not in the rerun (skipped)")
            continue
        header_a, rows_a = keyed_table(ref_file.read_text(encoding="utf-8"))
        header_b, rows_b = keyed_table(other.read_text(encoding="utf-8"))
        if not header_a or header_a != header_b:
            print(f"  {ref_file.name}: the columns differ (skipped)")
            continue
        largest: dict[str, float] = {}
        # every row, repeated names included, matched as verify --conclusions matches them
        for name, row in rows_a.items():
            match = rows_b.get(name)
            if match is None:
                continue
            for column in header_a:
                if IGNORED.match(column.strip()):
                    continue
                fx, fy = finite_number(row.get(column, "")), finite_number(match.get(column, ""))
                if fx is not None and fy is not None:
                    largest[column] = max(largest.get(column, 0.0), abs(fx - fy))
        out[ref_file.name] = largest
    return out


def _cpu(folder: Path) -> dict:
    try:
        system = json.loads((folder / "manifest.json").read_text()).get("system") or {}
    except (OSError, ValueError):
        system = {}
    return {k: system.get(k) for k in ("cpu_model", "torch_cpu_capability")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=str(ROOT / "results" / "toy"), help="the committed results folder")
    parser.add_argument("--rerun", required=True, help="the rerun made with other CPU kernels")
    parser.add_argument("--caps", default="", help="the kernel caps the rerun ran under (recorded), e.g. AVX2")
    parser.add_argument("--write", action="store_true", help=f"write lcmc_core/harness/{TOLERANCES_FILE}")
    args = parser.parse_args()
    reference, rerun = Path(args.reference), Path(args.rerun)
    measured = largest_differences(reference, rerun)
    for table, columns in measured.items():
        moved = {c: v for c, v in columns.items() if v > 0}
        shown = ", ".join(f"{c} {v:.3g}" for c, v in sorted(moved.items(), key=lambda kv: -kv[1])[:6])
        print(f"  {table}: " + (shown if moved else "identical"))
    tolerances = {table: {c: MARGIN * v for c, v in columns.items()} for table, columns in measured.items()}
    payload = {
        "margin": MARGIN,
        "default": max((v for cols in tolerances.values() for v in cols.values()), default=0.0),
        "tables": tolerances,
        "measured": {"date": datetime.date.today().isoformat(), "cpu_caps": args.caps or "none",
                     "reference_cpu": _cpu(reference), "rerun_cpu": _cpu(rerun), "largest_difference": measured},
    }
    if args.write:
        path = ROOT / "lcmc_core" / "harness" / TOLERANCES_FILE
        path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path} (tolerance = {MARGIN:g} x the largest difference measured, per table and column)")


if __name__ == "__main__":
    main()
