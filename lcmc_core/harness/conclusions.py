"""A reviewer's check of a rerun: ``verify --conclusions`` passes when the rerun supports the same conclusions.

Where the exact check (:mod:`lcmc_core.harness.verify`) asks "are these the same numbers?", this one
asks "does the rerun say the same things?", which is what a rerun on another kind of CPU can
answer (retrained toy CLIPs there have slightly different weights, so every toy number moves):

* **numbers** are compared with per-table, per-column tolerances (:data:`TOLERANCES_FILE`, written
  from a measured cross-machine rerun by ``benchmarks/cross_machine.py``: the largest difference seen
  per table and column, times :data:`MARGIN`); a cell beyond its tolerance is reported;
* **verdicts** (every table with a ``verdict`` column and its interval, e.g. the paired differences
  of notebook 05 and the seed study of 06) are compared as conclusions: the same verdict agrees;
  "higher" (or "lower") against "not distinguishable" agrees only when the interval end that decides
  lay within the interval tolerance of 0 in either run (a verdict that touched its boundary,
  :func:`lcmc_core.method.metrics.verdicts_agree`); "higher" against "lower" never agrees. A changed
  verdict is named with both intervals;
* **rankings** (the main table's order by mAP): two rows that swap places are a changed conclusion
  only when the committed gap between them was larger than the column's tolerance (a gap within the
  cross-machine noise is not a resolved ranking).

The report lists what was compared and every change; :func:`check_conclusions` returns it.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from importlib import resources

from ..errors import ConfigError
from ..method.metrics import verdicts_agree

__all__ = ["MARGIN", "TOLERANCES_FILE", "Change", "ConclusionsReport", "load_tolerances", "check_conclusions",
           "format_conclusions", "RANKED_TABLES", "finite_number", "keyed_table"]

#: The measured cross-machine differences are multiplied by this before they become tolerances.
MARGIN = 3.0
#: The measured tolerances, packaged beside this module (``benchmarks/cross_machine.py`` writes it).
TOLERANCES_FILE = "cross_machine_tolerances.json"
#: Tables whose row order by ``mAP`` is a conclusion (the main comparison).
RANKED_TABLES = ("05_main_results.csv",)
#: Columns holding the interval a verdict was read from (family-wise where present).
_INTERVAL_COLUMNS = (("family-wise low", "family-wise high"), ("CI low", "CI high"))


@dataclass
class Change:
    """One conclusion or number that does not hold in the rerun."""

    kind: str        # "verdict", "ranking", "number", "table"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"


@dataclass
class ConclusionsReport:
    """What :func:`check_conclusions` compared and what changed."""

    verdicts: int = 0
    rankings: int = 0
    numbers: int = 0
    changes: list[Change] = field(default_factory=list)
    #: ``"file / column"`` compared at the default tolerance: no cross-machine measurement covers them
    unmeasured: set[str] = field(default_factory=set)
    default_tolerance: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.changes


def load_tolerances(path=None) -> dict:
    """``{"tables": {file: {column: tolerance}}, "default": float, ...}`` from the packaged measurement (or ``path``)."""
    try:
        if path is None:
            text = resources.files(__package__).joinpath(TOLERANCES_FILE).read_text(encoding="utf-8")
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        where = path or f"lcmc_core/harness/{TOLERANCES_FILE}"
        raise ConfigError(f"verify --conclusions: cannot read the tolerances {where} ({exc}); rerun "
                          f"benchmarks/cross_machine.py to measure them") from None
    if not isinstance(data.get("tables"), dict) or not isinstance(data.get("default"), (int, float)):
        raise ConfigError(f"verify --conclusions: {path or TOLERANCES_FILE} must hold 'tables' and 'default'")
    return data


def _tolerance(tolerances: dict, file: str, column: str) -> float:
    table = tolerances["tables"].get(file, {})
    return float(table.get(column, table.get("*", tolerances["default"])))


def _measured(tolerances: dict, file: str, column: str) -> bool:
    table = tolerances["tables"].get(file, {})
    return column in table or "*" in table


def _rows(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return (rows[0], rows[1:]) if rows else ([], [])


def finite_number(text: str) -> float | None:
    """A table cell as a finite float, or None (text, empty, NaN, inf)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def keyed_table(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """A CSV table's header and its rows keyed as the check compares them (see :func:`_keyed`)."""
    header, rows = _rows(text)
    return header, _keyed(header, rows)


def _keyed(header: list[str], rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """Rows by their first cell (the row's name), each as column -> cell; repeated names get a suffix."""
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        key = row[0] if row else ""
        while key in out:
            key += " (again)"
        out[key] = dict(zip(header, row))
    return out


def _compare_numbers(file: str, committed: dict, rerun: dict, tolerances: dict, report: ConclusionsReport,
                     ignored) -> None:
    for name, row in committed.items():
        other = rerun.get(name)
        if other is None:
            report.changes.append(Change("table", f"{file} / {name}", "row missing in the rerun"))
            continue
        for column, cell in row.items():
            if ignored(column):
                continue
            a, b = finite_number(cell), finite_number(other.get(column, ""))
            if a is None or b is None:
                continue
            report.numbers += 1
            tol = _tolerance(tolerances, file, column)
            if not _measured(tolerances, file, column):
                report.unmeasured.add(f"{file} / {column}")
            if abs(a - b) > tol:
                report.changes.append(Change("number", f"{file} / {name} / {column}",
                                             f"{b:.4g} (rerun) vs {a:.4g} (committed), difference {b - a:+.3g} beyond "
                                             f"the cross-machine tolerance {tol:g}"))


def _interval(row: dict) -> tuple[float, float] | None:
    for low, high in _INTERVAL_COLUMNS:
        lo, hi = finite_number(row.get(low, "")), finite_number(row.get(high, ""))
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _compare_verdicts(file: str, committed: dict, rerun: dict, tolerances: dict, report: ConclusionsReport) -> None:
    for name, row in committed.items():
        other = rerun.get(name)
        if other is None or "verdict" not in row:
            continue
        a, b = _interval(row), _interval(other)
        if a is None or b is None:
            continue
        report.verdicts += 1
        column = next(low for low, high in _INTERVAL_COLUMNS if low in row)
        tol = _tolerance(tolerances, file, column)
        try:
            agree = verdicts_agree((row["verdict"], *a), (other.get("verdict", ""), *b), tol)
        except ConfigError as exc:
            report.changes.append(Change("verdict", f"{file} / {name}", str(exc)))
            continue
        if not agree:
            report.changes.append(Change(
                "verdict", f"{file} / {name}",
                f"committed {row['verdict']!r} [{a[0]:+.2f}, {a[1]:+.2f}], rerun {other.get('verdict')!r} "
                f"[{b[0]:+.2f}, {b[1]:+.2f}] (interval tolerance {tol:g})"))


def _compare_ranking(file: str, committed: dict, rerun: dict, tolerances: dict, report: ConclusionsReport) -> None:
    tol = _tolerance(tolerances, file, "mAP")
    values = {name: (finite_number(row.get("mAP", "")), finite_number(rerun.get(name, {}).get("mAP", "")))
              for name, row in committed.items()}
    names = [n for n, (a, b) in values.items() if a is not None and b is not None]
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            (ax, bx), (ay, by) = values[x], values[y]
            if abs(ax - ay) <= tol:
                continue          # not resolved beyond the cross-machine noise: not a conclusion
            report.rankings += 1
            if (ax - ay) * (bx - by) <= 0:
                hi, lo = (x, y) if ax > ay else (y, x)
                report.changes.append(Change("ranking", f"{file} / {hi} above {lo}",
                                             f"committed {values[hi][0]:.2f} vs {values[lo][0]:.2f}, rerun "
                                             f"{values[hi][1]:.2f} vs {values[lo][1]:.2f}"))


def check_conclusions(committed: dict[str, str], rerun: dict[str, str], tolerances: dict, ignored) -> ConclusionsReport:
    """Compare the CSV tables of a rerun with the committed ones as conclusions (see the module docstring).

    ``committed`` / ``rerun``: ``{file name: CSV text}``; ``ignored(column)`` says which columns are timings.
    """
    report = ConclusionsReport(default_tolerance=float(tolerances["default"]))
    for file in sorted(committed):
        if not file.endswith(".csv"):
            continue
        if file not in rerun:
            report.changes.append(Change("table", file, "missing in the rerun"))
            continue
        header_a, a = keyed_table(committed[file])
        header_b, b = keyed_table(rerun[file])
        if header_a != header_b:
            report.changes.append(Change("table", file, f"columns {header_b} (rerun) vs {header_a} (committed)"))
            continue
        _compare_numbers(file, a, b, tolerances, report, ignored)
        if "verdict" in header_a:
            _compare_verdicts(file, a, b, tolerances, report)
        if file in RANKED_TABLES:
            _compare_ranking(file, a, b, tolerances, report)
    return report


def format_conclusions(report: ConclusionsReport, rerun: str, reference: str, max_lines: int = 40) -> str:
    """Every change (numbers capped at ``max_lines``) and one closing line."""
    lines = [str(c) for c in report.changes if c.kind != "number"]
    numbers = [str(c) for c in report.changes if c.kind == "number"]
    lines += numbers[:max_lines] + ([f"... and {len(numbers) - max_lines} more numbers"] if len(numbers) > max_lines
                                    else [])
    verdicts = sum(c.kind == "verdict" for c in report.changes)
    rankings = sum(c.kind == "ranking" for c in report.changes)
    if report.unmeasured:
        tables = sorted({u.split(" / ")[0] for u in report.unmeasured})
        lines.append(f"note: {len(report.unmeasured)} columns of {len(tables)} tables ({', '.join(tables[:4])}"
                     f"{', ...' if len(tables) > 4 else ''}) have no measured cross-machine tolerance and were "
                     f"compared at the default {report.default_tolerance:g} (the largest measured): a loose check")
    head = "conclusions hold" if report.ok else "conclusions CHANGED"
    lines.append(f"verify --conclusions: {head}: {report.verdicts - verdicts} of {report.verdicts} verdicts, "
                 f"{report.rankings - rankings} of {report.rankings} resolved rankings and "
                 f"{report.numbers - len(numbers)} of {report.numbers} numbers agree between {rerun} and {reference} "
                 f"(cross-machine tolerances x{MARGIN:g}, lcmc_core/harness/{TOLERANCES_FILE})")
    return "\n".join(lines)
