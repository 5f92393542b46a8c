"""Writing a notebook's outputs: figures, tables and JSON under one results folder.

Notebooks get ``out_dir`` (a papermill parameter the runner sets to ``results/<profile>``) and
save through these helpers, so every profile's outputs have one layout::

    <out_dir>/figures/<name>.png   (150 dpi) and <name>.pdf
    <out_dir>/tables/<name>.csv    (full precision), .md (Markdown), .tex (LaTeX)
    <out_dir>/tables/<name>.json   (save_json)

PDFs are written without a creation date (and SVGs with a fixed hash salt), so rerunning a profile
gives byte-identical files where matplotlib allows. :func:`toy_world_caption` returns the note that
must accompany every figure and table of the toy world, whose numbers are genuine results of that
world and not the paper's.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["results_dir", "save_figure", "save_table", "save_json", "toy_world_caption", "report_status",
           "TOY_DATASETS", "TOY_PROFILES", "STATUSES"]

PathLike = str | os.PathLike

TOY_DATASETS = ("emoji-voc",)
TOY_PROFILES = ("toy", "smoke")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


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


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ValueError(f"{what}: name {name!r} must be a plain file name without folder or extension "
                         f"(letters, digits, '_', '-', '.', '+'), e.g. 'gap_histogram'")
    return name


def save_figure(fig, name: str, out_dir: PathLike | None = None, formats: Sequence[str] = ("png", "pdf"),
                dpi: int = 150, **savefig_kwargs) -> list[Path]:
    """Save a matplotlib figure as ``figures/<name>.png`` (150 dpi) and ``.pdf``; return the paths."""
    import matplotlib

    _check_name(name, "save_figure")
    folder = results_dir(out_dir) / "figures"
    paths = []
    kwargs = {"bbox_inches": "tight", **savefig_kwargs}
    with matplotlib.rc_context({"svg.hashsalt": "lcmc", "pdf.compression": 6}):
        for fmt in formats:
            fmt = fmt.lower().lstrip(".")
            path = folder / f"{name}.{fmt}"
            if fmt == "pdf":
                metadata = {"CreationDate": None, "ModDate": None, "Producer": None}
            elif fmt == "svg":
                metadata = {"Date": None}
            elif fmt == "png":
                metadata = {"Software": None}
            else:
                metadata = None
            extra = {"metadata": metadata} if metadata is not None else {}
            fig.savefig(path, format=fmt, dpi=dpi, **extra, **kwargs)
            paths.append(path)
    return paths


def _floatfmt(float_format: str) -> str:
    """``"%.1f"`` -> ``".1f"`` for tabulate."""
    m = re.fullmatch(r"%([-+ 0#]*\d*(?:\.\d+)?[eEfFgG%])", float_format)
    if not m:
        raise ValueError(f"save_table: float_format {float_format!r}: expected a printf format such as '%.1f'")
    return m.group(1)


def save_table(df, name: str, out_dir: PathLike | None = None, caption: str | None = None,
               float_format: str = "%.1f", index: bool | None = None) -> list[Path]:
    """Save a DataFrame as ``tables/<name>.csv`` (full precision), ``.md`` and ``.tex``; return the paths.

    ``float_format`` applies to the Markdown and LaTeX versions; ``caption`` goes above the Markdown
    table and into the LaTeX ``table`` environment (with label ``tab:<name>``). The index is written
    unless it is a plain 0..n-1 range (``index`` forces either way).
    """
    import pandas as pd

    _check_name(name, "save_table")
    if not isinstance(df, pd.DataFrame):
        if isinstance(df, pd.Series):
            df = df.to_frame()
        else:
            raise TypeError(f"save_table({name!r}): expected a pandas DataFrame, got {type(df).__name__}")
    floatfmt = _floatfmt(float_format)
    if index is None:
        index = not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
                     and df.index.name is None)
    folder = results_dir(out_dir) / "tables"
    csv, md, tex = (folder / f"{name}.{ext}" for ext in ("csv", "md", "tex"))

    df.to_csv(csv, index=index)
    try:
        table = df.to_markdown(index=index, floatfmt=floatfmt)
    except ImportError as exc:
        raise ImportError("save_table: writing Markdown needs the 'tabulate' package "
                          "(pip install tabulate; it is listed in pyproject.toml)") from exc
    md.write_text((f"{caption}\n\n" if caption else "") + table + "\n")
    latex = df.to_latex(index=index, float_format=lambda x: float_format % x,
                        caption=_latex_escape(caption) if caption else None,
                        label=f"tab:{name}" if caption else None, escape=True)
    tex.write_text(latex if latex.endswith("\n") else latex + "\n")
    return [csv, md, tex]


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy/torch/pandas/Path values; NaN and infinities become None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [_jsonable(v) for v in items]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "to_dict") and callable(obj.to_dict) and type(obj).__module__.startswith("pandas"):
        return _jsonable(obj.to_dict())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays/scalars, torch tensors
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):
        return _jsonable(obj.item())
    import dataclasses
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    raise TypeError(f"save_json: cannot write a {type(obj).__name__} as JSON")


def save_json(obj: Any, name: str, out_dir: PathLike | None = None) -> Path:
    """Save ``obj`` as ``tables/<name>.json`` (numpy/torch values converted; NaN written as null)."""
    _check_name(name, "save_json")
    path = results_dir(out_dir) / "tables" / f"{name}.json"
    path.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")
    return path


def toy_world_caption(profile: str | None = None, dataset: str | None = None) -> str:
    """The note for figures and tables of the toy world; ``""`` for real datasets.

    Pass the notebook's ``dataset`` (and ``profile``): the note applies when the dataset is
    ``emoji-voc`` (or, without a dataset, when the profile is ``toy`` or ``smoke``); the smoke
    profile adds that its numbers mean nothing.
    """
    toy = dataset in TOY_DATASETS if dataset is not None else profile in TOY_PROFILES
    if not toy:
        return ""
    note = ("Toy world (EmojiVOC + toy CLIP trained here): genuine results of that world, "
            "not the paper's numbers")
    if profile == "smoke":
        note += " (smoke profile: tiny sizes, a pipeline check only)"
    return note


#: What a notebook may report about how it ended (the runner records it in the manifest).
STATUSES = ("ok", "incomplete")


def report_status(out_dir: PathLike | None, notebook: str, status: str, note: str = "") -> Path:
    """Tell the runner how notebook ``notebook`` (its number, ``"01"``) ended: ``ok`` or ``incomplete`` (with a note).

    The runner (:mod:`lcmc_core.runner.reproduce`) records it in the manifest instead of a plain
    ``ok``, e.g. when an LLM corpus could not be completed within its time budget.
    """
    from ..cache import atomic_write

    if status not in STATUSES:
        raise ValueError(f"report_status: status must be one of {STATUSES}, got {status!r}")
    number = re.match(r"^(\d+)", str(notebook))
    if not number:
        raise ValueError(f"report_status: notebook must be a number such as '01', got {notebook!r}")
    path = results_dir(out_dir) / "status" / f"{int(number.group(1)):02d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"status": status, "note": str(note)}) + "\n")
    return path
