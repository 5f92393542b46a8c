"""Where a notebook's outputs go, and what it tells the runner: the results folder, output records, its status.

A notebook gets ``out_dir`` (a papermill parameter the runner sets to ``results/<profile>``);
:func:`results_dir` turns it into the folder every save writes to (``results/interactive`` for a
notebook opened by hand). Under the runner (:mod:`lcmc_core.harness.reproduce`, which sets
``$LCMC_NOTEBOOK`` for each kernel) every save leaves a record in ``<out_dir>/status/<NN>.outputs.jsonl``
(:func:`record_output`; read back with :func:`read_output_records`), and a notebook may report that it
ended ``incomplete`` (:func:`report_status`); the runner moves both into the manifest. This module is
shared by the layers that write (experiments, reporting) and the one that reads (harness).
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["results_dir", "NOTEBOOK_ENV", "record_output", "read_output_records", "STATUSES", "report_status",
           "read_status", "jsonable"]

PathLike = str | os.PathLike


def results_dir(out_dir: PathLike | None = None) -> Path:
    """The results folder (created, with ``figures/`` and ``tables/``); empty -> ``results/interactive``.

    An empty ``out_dir`` is what a notebook opened by hand has: its results then go to
    ``../results/interactive`` when the current folder is ``notebooks/``, else ``results/interactive``.
    """
    if out_dir is None or str(out_dir) == "":
        base = Path.cwd()
        root = base.parent if base.name == "notebooks" else base
        path = root / "results" / "interactive"
    else:
        path = Path(out_dir).expanduser()
    path = path.absolute()
    for sub in ("figures", "tables"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


#: Set by the runner for each kernel to the notebook's name (``05_main_results``): saves are then recorded.
NOTEBOOK_ENV = "LCMC_NOTEBOOK"


def _current_cell_source() -> str | None:
    """The source of the notebook cell running now (IPython's ``In[-1]``), or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel depends on IPython
        return None
    shell = get_ipython()
    hist = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) if shell is not None else None
    return hist[-1] if hist else None


def record_output(folder: Path, record: dict) -> None:
    """Append ``record`` to ``status/<NN>.outputs.jsonl`` when running under the runner (else nothing)."""
    notebook = os.environ.get(NOTEBOOK_ENV, "")
    number = re.match(r"^(\d+)", notebook)
    if not number:
        return
    path = folder / "status" / f"{int(number.group(1)):02d}.outputs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**record, "notebook": notebook, "cell_source": _current_cell_source()}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(jsonable(record)) + "\n")



def read_output_records(out_dir: PathLike, notebook: str) -> list[dict]:
    """The records left by the saves of notebook ``notebook`` (``"05"`` or its name); the last one per file name."""
    number = re.match(r"^(\d+)", str(notebook))
    if not number:
        return []
    path = Path(out_dir) / "status" / f"{int(number.group(1)):02d}.outputs.jsonl"
    records: dict[tuple, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "kind" in rec and "name" in rec:
            records.pop((rec["kind"], rec["name"]), None)
            records[(rec["kind"], rec["name"])] = rec
    return list(records.values())


def jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy/torch/pandas/Path values; NaN and infinities become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "to_dict") and callable(obj.to_dict) and type(obj).__module__.startswith("pandas"):
        return jsonable(obj.to_dict())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays/scalars, torch tensors
        return jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):
        return jsonable(obj.item())
    import dataclasses
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    raise TypeError(f"save_json: cannot write a {type(obj).__name__} as JSON")


#: What a notebook may report about how it ended (the runner records it in the manifest).
STATUSES = ("ok", "incomplete")


def report_status(out_dir: PathLike | None, notebook: str, status: str, note: str = "") -> Path:
    """Tell the runner how notebook ``notebook`` (its number, ``"01"``) ended: ``ok`` or ``incomplete`` (with a note).

    The runner (:mod:`lcmc_core.harness.reproduce`) records it in the manifest instead of a plain
    ``ok``, e.g. when an LLM corpus could not be completed within its time budget.
    """
    from .cache import atomic_write

    if status not in STATUSES:
        raise ValueError(f"report_status: status must be one of {STATUSES}, got {status!r}")
    number = re.match(r"^(\d+)", str(notebook))
    if not number:
        raise ValueError(f"report_status: notebook must be a number such as '01', got {notebook!r}")
    path = results_dir(out_dir) / "status" / f"{int(number.group(1)):02d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"status": status, "note": str(note)}) + "\n")
    return path



def read_status(out_dir: PathLike, notebook: str) -> dict | None:
    """What notebook ``notebook`` (its number) reported with :func:`report_status`, or None."""
    number = re.match(r"^(\d+)", str(notebook))
    if not number:
        return None
    try:
        data = json.loads((Path(out_dir) / "status" / f"{int(number.group(1)):02d}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
