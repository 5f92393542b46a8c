"""Check a rerun against the committed results: ``python -m lcmc_core verify --profile toy [--out DIR]``.

Compares every table of a rerun (``<out>/tables/*.csv`` and ``*.json``; ``--out`` defaults to
``results/<profile>``) with the committed one, cell by cell, and prints each cell that differs by
more than the tolerance, with both values. The reference is the version of
``results/<profile>/tables/`` in git's ``HEAD`` (read with ``git show HEAD:<path>``; ``--revision``
picks another commit), or the tables in ``--reference DIR``. Exit status: 0 when everything
agrees, 1 when anything differs or a table is missing on either side, 2 (one ``error:`` line) when
there is nothing to compare (no rerun folder, no git checkout, no committed tables).

What is compared: every numeric cell with :data:`TOLERANCE`; every other cell exactly; the
header row, the row count and the JSON structure exactly. Timings are skipped
(:data:`IGNORED`): they are measurements of the machine, not results.

**The tolerance and why** (:data:`TOLERANCE`, the only place it is set): ``rel 1e-9, abs 1e-9``.
It is meant for the one case where a rerun *can* be exact: the same toy CLIP weights (the same
cached checkpoints, or ones trained on a CPU with the same kernels), where only the floating-point
summation order of BLAS and numpy reductions moves the last bits. Measured: a rerun of the toy
profile on another 2-core project machine reproduced every committed CSV value to within 4e-14
(``81.42253907518311`` vs ``...308``). 1e-9 leaves five orders of magnitude above that noise and
stays far below anything a reader sees (tables print 0.1-0.01 mAP points). What does exceed it,
measured and stated honestly:

- *retraining the toy CLIPs on a machine with another CPU*: the weights differ, and then every toy
  number built on them moves. Measured, ``clip-like-gap`` toy CLIP (same spec, seed, code and 2
  threads), final logit scale: 98.0345 (the first committed run, CPU not recorded), 98.0335 (AMD
  EPYC, torch kernels ``AVX2``), 98.0411 (Intel Xeon, ``AVX512``, the committed results since
  2026-12-04), and 98.0294 on that Intel machine with its kernels capped to AVX2
  (``ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2``). So the CPU's
  kernels decide (eight epochs amplify their different rounding), and capping the instruction set
  does not make an Intel CPU reproduce an AMD one (MKL and oneDNN also pick code paths by vendor):
  there is no cheap way to bit-identical toy CLIPs across CPUs. Their effect on the toy tables,
  measured between the AMD and Intel runs: every mAP of the main table 0.05-0.56 points lower,
  1.4 in an F1 cell, 2.4 in a per-class AP, and one paired verdict whose interval ended near 0
  flipped. The manifest records ``system.cpu_model`` and ``system.torch_cpu_capability`` so that
  runs can be told apart; reusing a cached (or shared) checkpoint removes the difference.
  ``verify`` names the cells that moved; ``--abs-tol`` (e.g. ``1`` mAP point) then checks only that
  the conclusions hold.
- *a different number of torch threads while a toy CLIP trains*: this changes its weights as well
  (the reduction order of the gradients changes; measured: smoke size, 1 vs 2 threads, 22% of the
  weights differ, by up to 0.02). Pretraining therefore pins the thread count
  (:data:`lcmc_core.images.toyclip.TRAIN_THREADS` = 2), so that the core count no longer matters:
  with 1 thread requested the pinned training gives bit-identical weights to a 2-thread one, and at
  a fixed count repeated trainings on one machine are bit-identical
  (``torch.use_deterministic_algorithms`` changes nothing on CPU). Encoding (inference) gave
  identical features with 1 and 2 threads; training reads no DataLoader (fixed index order).
- *a cached toy CLIP trained before the thread count was pinned* on a machine with another core
  count: delete ``$LCMC_CACHE_DIR/toyclip`` to retrain.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["TOLERANCE", "IGNORED", "Tolerance", "Difference", "VerifyReport", "verify", "committed_tables",
           "folder_tables", "compare_csv", "compare_json", "format_report"]


@dataclass(frozen=True)
class Tolerance:
    """Two numbers agree when ``|a - b| <= max(rel * max(|a|, |b|), abs)`` (``math.isclose``)."""

    rel: float = 1e-9
    abs: float = 1e-9

    def __post_init__(self):
        for name in ("rel", "abs"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"verify: --{name}-tol must be a finite number >= 0, got {value!r}")

    def close(self, a: float, b: float) -> bool:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=self.rel, abs_tol=self.abs)


#: The tolerance of :func:`verify` (see the module docstring for the measurement behind it).
TOLERANCE = Tolerance(rel=1e-9, abs=1e-9)

#: Column names (CSV) and keys (JSON) that hold timings or clocks: never compared.
IGNORED = re.compile(r"^(seconds|.*_seconds|seconds_.*|.*\((s|sec|seconds|min)\)|started|finished|duration|"
                     r"wall_s|.*_time|time)$", re.I)

_TABLE_SUFFIXES = (".csv", ".json")


@dataclass
class Difference:
    """One file or cell that does not agree."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where + ': ' if self.where else ''}{self.message}"


@dataclass
class VerifyReport:
    """What :func:`verify` compared and found."""

    rerun: str
    reference: str
    tolerance: Tolerance
    compared: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    #: what could make numbers move besides the code: installed packages vs the lock and vs the reference's run
    environment: list[str] = field(default_factory=list)
    #: with ``conclusions=True``: the conclusions check (:mod:`lcmc_core.harness.conclusions`) instead of cell by cell
    conclusions: object | None = None

    @property
    def ok(self) -> bool:
        return self.conclusions.ok if self.conclusions is not None else not self.differences



# ---------------------------------------------------------------------------------------------
# where the tables come from
# ---------------------------------------------------------------------------------------------
def folder_tables(folder: str | os.PathLike) -> dict[str, str]:
    """``{file name: text}`` of the tables in ``folder`` (its ``tables/`` subfolder when it has one)."""
    folder = Path(folder)
    if (folder / "tables").is_dir():
        folder = folder / "tables"
    if not folder.is_dir():
        raise ConfigError(f"verify: {folder} is not a folder of tables")
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix in _TABLE_SUFFIXES:
            try:
                out[p.name] = p.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"verify: {p} is not UTF-8 text (byte {exc.start}); a table written by a run is "
                                  f"UTF-8, so this file was changed by something else") from None
            except OSError as exc:
                raise ConfigError(f"verify: cannot read {p} ({exc.strerror or exc})") from None
    return out


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"verify: cannot run git ({exc}); pass --reference DIR with the committed tables") from None


def committed_tables(profile: str, repo: str | os.PathLike | None = None, revision: str = "HEAD") -> dict[str, str]:
    """``{file name: text}`` of ``results/<profile>/tables/`` at git ``revision`` of the checkout ``repo``."""
    from .provenance import git_toplevel, package_checkout

    start = Path(repo) if repo is not None else Path.cwd()
    top = git_toplevel(start) or (git_toplevel(package_checkout()) if package_checkout() else None)
    if top is None:
        raise ConfigError(f"verify: {start} is not inside a git checkout; pass --reference DIR with the committed "
                          f"tables")
    rel = f"results/{profile}/tables"
    listing = _git(top, "ls-tree", "--name-only", f"{revision}:{rel}")
    if listing.returncode != 0:
        raise ConfigError(f"verify: git has no {rel}/ at {revision} in {top} "
                          f"({(listing.stderr.strip().splitlines() or ['no such path'])[-1]}); "
                          f"commit the profile's results first, or pass --reference DIR")
    out = {}
    for name in listing.stdout.split():
        if Path(name).suffix not in _TABLE_SUFFIXES:
            continue
        shown = _git(top, "show", f"{revision}:{rel}/{name}")
        if shown.returncode != 0:
            raise ConfigError(f"verify: git show {revision}:{rel}/{name} failed: {shown.stderr.strip()}")
        out[name] = shown.stdout
    return out


# ---------------------------------------------------------------------------------------------
# comparing
# ---------------------------------------------------------------------------------------------
def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _cells_differ(a: str, b: str, tol: Tolerance) -> str | None:
    """Why two cells differ (None when they agree)."""
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        if tol.close(x, y):
            return None
        return f"{b} (rerun) vs {a} (committed), difference {y - x:+.3g}"
    if a == b:
        return None
    return f"{b!r} (rerun) vs {a!r} (committed)"


def compare_csv(name: str, committed: str, rerun: str, tol: Tolerance = TOLERANCE) -> list[Difference]:
    """Every cell of two CSV tables that differs beyond ``tol`` (header and row count exactly)."""
    a = list(csv.reader(io.StringIO(committed)))
    b = list(csv.reader(io.StringIO(rerun)))
    if not a or not b:
        return [] if a == b else [Difference(name, "", "one of the two files is empty")]
    if a[0] != b[0]:
        return [Difference(name, "header", f"{b[0]} (rerun) vs {a[0]} (committed)")]
    header = a[0]
    out = []
    if len(a) != len(b):
        out.append(Difference(name, "rows", f"{len(b) - 1} (rerun) vs {len(a) - 1} (committed)"))
    skip = {i for i, h in enumerate(header) if IGNORED.match(h.strip())}
    for r, (ra, rb) in enumerate(zip(a[1:], b[1:]), 1):
        label = ra[0] if ra and _number(ra[0]) is None else f"row {r}"
        if len(ra) != len(rb):
            out.append(Difference(name, label, f"{len(rb)} cells (rerun) vs {len(ra)} (committed)"))
            continue
        for c, (ca, cb) in enumerate(zip(ra, rb)):
            if c in skip:
                continue
            why = _cells_differ(ca, cb, tol)
            if why:
                column = header[c] if c < len(header) else f"column {c}"
                out.append(Difference(name, f"{label} / {column}" if label != f"row {r}" else f"row {r} / {column}",
                                      why))
    return out


def _walk_json(name: str, a: Any, b: Any, path: str, tol: Tolerance, out: list[Difference]) -> None:
    where = path or "(top)"
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if IGNORED.match(str(key)):
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append(Difference(name, sub, "missing in the rerun"))
            elif key not in a:
                out.append(Difference(name, sub, "only in the rerun"))
            else:
                _walk_json(name, a[key], b[key], sub, tol, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(Difference(name, where, f"{len(b)} items (rerun) vs {len(a)} (committed)"))
        for i, (x, y) in enumerate(zip(a, b)):
            _walk_json(name, x, y, f"{path}[{i}]", tol, out)
        return
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        if not tol.close(float(a), float(b)):
            out.append(Difference(name, where, f"{b!r} (rerun) vs {a!r} (committed), difference {b - a:+.3g}"))
        return
    if a != b:
        out.append(Difference(name, where, f"{b!r} (rerun) vs {a!r} (committed)"))


def compare_json(name: str, committed: str, rerun: str, tol: Tolerance = TOLERANCE) -> list[Difference]:
    """Every value of two JSON files that differs beyond ``tol`` (timing keys skipped, structure exactly)."""
    try:
        a, b = json.loads(committed), json.loads(rerun)
    except ValueError as exc:
        return [Difference(name, "", f"not valid JSON ({exc})")]
    out: list[Difference] = []
    _walk_json(name, a, b, "", tol, out)
    return out


def check_rerun_finished(rerun_dir: Path) -> dict:
    """The rerun's manifest, if its run finished ``ok``; else a one-line error (stale tables are not a rerun)."""
    from .provenance import read_manifest
    from .reproduce import MANIFEST_NAME
    manifest = read_manifest(rerun_dir / MANIFEST_NAME)
    if manifest is None:
        raise ConfigError(f"verify: {rerun_dir} has no readable {MANIFEST_NAME}, so it is not a finished run; rerun "
                          f"python -m lcmc_core reproduce first")
    status = manifest.get("status")
    if status != "ok":
        failure = manifest.get("failure") or {}
        why = f" ({failure.get('notebook')} failed: {failure.get('ename')})" if failure.get("notebook") else ""
        raise ConfigError(f"verify: the run in {rerun_dir} ended with status {status!r}{why}, so its tables are not "
                          f"those of a finished rerun; fix the failure and rerun before verifying")
    return manifest


def environment_notes(rerun: dict, reference: dict | None) -> list[str]:
    """Packages that could move numbers: the rerun's differences from the lock, and its versions vs the reference run's."""
    notes = []
    env = rerun.get("environment") or {}
    if env.get("differs_from_lock") is None:
        notes.append("environment: the rerun did not record how its packages compare with requirements.lock")
    elif env["differs_from_lock"]:
        notes.append(f"environment: {len(env['differs_from_lock'])} package(s) of the rerun differ from "
                     f"requirements.lock: " + "; ".join(env["differs_from_lock"][:12]))
    else:
        notes.append("environment: the rerun's packages are exactly requirements.lock")
    if reference:
        ours, theirs = rerun.get("packages") or {}, reference.get("packages") or {}
        moved = [f"{k} {ours.get(k)} (reference run: {theirs.get(k)})" for k in sorted(set(ours) | set(theirs))
                 if k != "lcmc_core" and ours.get(k) != theirs.get(k)]
        if moved:
            notes.append(f"environment: {len(moved)} recorded package(s) differ from the reference run's: "
                         + "; ".join(moved))
        cpu = [(k, (rerun.get("system") or {}).get(k), (reference.get("system") or {}).get(k))
               for k in ("cpu_model", "torch_cpu_capability")]
        if any(a != b for _, a, b in cpu):
            notes.append("machine: " + "; ".join(f"{k} {a} (reference run: {b})" for k, a, b in cpu))
    return notes


def reference_manifest(name: str, reference: str | os.PathLike | None, revision: str, repo=None) -> dict | None:
    """The manifest of the reference run: beside ``--reference DIR`` (or its parent), or git's ``results/<name>``."""
    from .provenance import git_toplevel, package_checkout, read_manifest
    if reference is not None:
        ref = Path(reference)
        for folder in (ref, ref.parent):
            found = read_manifest(folder / "manifest.json")
            if found is not None:
                return found
        return None
    start = Path(repo) if repo is not None else Path.cwd()
    top = git_toplevel(start) or (git_toplevel(package_checkout()) if package_checkout() else None)
    if top is None:
        return None
    shown = _git(top, "show", f"{revision}:results/{name}/manifest.json")
    try:
        return json.loads(shown.stdout) if shown.returncode == 0 else None
    except ValueError:
        return None


def verify(profile: str = "toy", out: str | os.PathLike | None = None, reference: str | os.PathLike | None = None,
           tolerance: Tolerance = TOLERANCE, revision: str = "HEAD", repo: str | os.PathLike | None = None,
           conclusions: bool = False, tolerances_file: str | os.PathLike | None = None) -> VerifyReport:
    """Compare the rerun in ``out`` (default ``results/<profile>``) with the committed tables; see the module docstring.

    ``conclusions=True``: the reviewer's check (:mod:`lcmc_core.harness.conclusions`): numbers within the
    measured cross-machine tolerances (``tolerances_file``, default the packaged one), verdicts and
    rankings compared as conclusions.
    """
    from ..experiments.profiles import load_profile

    if Path(str(profile)).suffix in (".yaml", ".yml"):
        name = load_profile(profile).name
    else:
        name = str(profile)
    rerun_dir = Path(out) if out is not None else Path.cwd() / "results" / name
    if not rerun_dir.exists():
        raise ConfigError(f"verify: there is no rerun at {rerun_dir} (run python -m lcmc_core reproduce --profile "
                          f"{name} first, or pass --out DIR)")
    manifest = check_rerun_finished(rerun_dir)
    rerun = folder_tables(rerun_dir)
    if reference is not None:
        committed, ref_label = folder_tables(reference), str(reference)
    else:
        committed, ref_label = committed_tables(name, repo, revision), f"git {revision}:results/{name}/tables"
    if not committed:
        raise ConfigError(f"verify: {ref_label} holds no tables (*.csv, *.json)")
    report = VerifyReport(rerun=str(rerun_dir), reference=ref_label, tolerance=tolerance,
                          environment=environment_notes(manifest, reference_manifest(name, reference, revision, repo)))
    if conclusions:
        from .conclusions import check_conclusions, load_tolerances
        report.compared = [f"tables/{f}" for f in sorted(set(committed) & set(rerun))]
        report.conclusions = check_conclusions(committed, rerun, load_tolerances(tolerances_file),
                                               lambda column: bool(IGNORED.match(column.strip())))
        return report
    for file in sorted(set(committed) | set(rerun)):
        shown = f"tables/{file}"
        if file not in rerun:
            report.differences.append(Difference(shown, "", f"missing in the rerun (it is in {ref_label})"))
            continue
        if file not in committed:
            report.differences.append(Difference(shown, "", f"only in the rerun (not in {ref_label})"))
            continue
        report.compared.append(shown)
        compare = compare_csv if file.endswith(".csv") else compare_json
        report.differences.extend(compare(shown, committed[file], rerun[file], tolerance))
    return report


def format_report(report: VerifyReport, max_per_file: int = 20) -> str:
    """The differences, one line each (at most ``max_per_file`` per file), and a closing summary line."""
    if report.conclusions is not None:
        from .conclusions import format_conclusions
        return "\n".join(report.environment + [format_conclusions(report.conclusions, report.rerun, report.reference)])
    lines, per_file = [], {}
    for d in report.differences:
        per_file[d.file] = per_file.get(d.file, 0) + 1
        if per_file[d.file] <= max_per_file:
            lines.append(str(d))
    for file, n in per_file.items():
        if n > max_per_file:
            lines.append(f"{file}: ... and {n - max_per_file} more differences")
    lines += report.environment
    tol = report.tolerance
    files = len(report.compared)
    if report.ok:
        lines.append(f"verify: {files} tables of {report.rerun} agree with {report.reference} "
                     f"(tolerance rel {tol.rel:g}, abs {tol.abs:g}; timings skipped)")
    else:
        lines.append(f"verify: {len(report.differences)} differences in {len(per_file)} of "
                     f"{len(set(report.compared) | set(per_file))} tables between {report.rerun} and {report.reference} "
                     f"(tolerance rel {tol.rel:g}, abs {tol.abs:g}; timings skipped)")
    return "\n".join(lines)
