"""Writing a notebook's outputs: figures, tables and JSON under one results folder.

Notebooks get ``out_dir`` (a papermill parameter the runner sets to ``results/<profile>``) and
save through these helpers, so every profile's outputs have one layout::

    <out_dir>/figures/<name>.png   (150 dpi) and <name>.pdf
    <out_dir>/tables/<name>.csv    (full precision), .md (Markdown), .tex (LaTeX)
    <out_dir>/tables/<name>.json   (save_json)

PDFs are written without a creation date (and SVGs with a fixed hash salt), so rerunning a profile
gives byte-identical files where matplotlib allows. :func:`save_figure` checks that a figure says
what it shows (a title or caption, and x/y labels on every axes that draws data) and
:func:`save_table` formats each column by what it holds (:func:`format_table`: integers as
integers, settings with ``%g`` so that distinct values never print alike, measurements with
``float_format``). Under the runner every save also leaves a record of what it wrote
(:func:`lcmc_core.outputs.record_output`), from which the results README is written.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..outputs import jsonable, record_output, results_dir

__all__ = ["save_figure", "save_table", "save_json", "format_table", "figure_labels"]

PathLike = str | os.PathLike

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ValueError(f"{what}: name {name!r} must be a plain file name without folder or extension "
                         f"(letters, digits, '_', '-', '.', '+'), e.g. 'gap_histogram'")
    return name


def _colorbar_axes(fig) -> set[int]:
    """The axes a colour bar of the figure draws into (through each mappable's public ``colorbar``)."""
    found = {id(ax) for ax in fig.axes if ax.get_label() == "<colorbar>"}   # fig.colorbar's own axes
    for ax in fig.axes:
        for artist in (*ax.images, *ax.collections):
            bar = getattr(artist, "colorbar", None)
            if bar is not None:
                found.add(id(bar.ax))
    return found


def _shared_label(ax, which: str) -> str:
    """The axes' own x/y label, else one of an axes it shares that axis with (a labelled grid's column or row)."""
    own = ax.get_xlabel() if which == "x" else ax.get_ylabel()
    if own.strip():
        return own
    group = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    for other in group.get_siblings(ax):
        label = other.get_xlabel() if which == "x" else other.get_ylabel()
        if other is not ax and label.strip():
            return label
    return ""


def figure_labels(fig, caption: str | None = None) -> dict:
    """What a figure says about itself: per axes its title and x/y labels, and whether the figure is labelled.

    Axes that draw no axis (images shown with ``axis("off")``) and colour bars need no labels; a label
    shared along a grid's row or column (``sharex``/``sharey``) and the figure's ``supxlabel`` /
    ``supylabel`` count for every axes they cover. ``titled``: a caption, a ``suptitle`` or a title
    on some axes; ``labelled``: every axes that draws data has both labels.
    """
    suptitle = " ".join(fig.get_suptitle().split())
    supx, supy = fig.get_supxlabel().strip(), fig.get_supylabel().strip()
    axes = []
    colorbars = _colorbar_axes(fig)
    for ax in fig.axes:
        if id(ax) in colorbars:
            continue
        title = " / ".join(" ".join(t.split()) for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right"))
                           if t.strip())
        drawn = bool(ax.axison)
        xlabel, ylabel = (_shared_label(ax, "x") or supx, _shared_label(ax, "y") or supy) if drawn else ("", "")
        axes.append({"title": title, "xlabel": xlabel, "ylabel": ylabel, "axis_drawn": drawn,
                     "has_title": bool(title), "has_xlabel": bool(xlabel) or not drawn,
                     "has_ylabel": bool(ylabel) or not drawn})
    has_title = bool(suptitle or any(a["has_title"] for a in axes))
    titled = has_title or bool((caption or "").strip())
    labelled = all(a["has_xlabel"] and a["has_ylabel"] for a in axes)
    any_label = any(a["xlabel"] or a["ylabel"] for a in axes)
    return {"suptitle": suptitle, "axes": axes, "has_title": has_title, "titled": titled, "labelled": labelled,
            "any_label": any_label}


def save_figure(fig, name: str, out_dir: PathLike | None = None, formats: Sequence[str] = ("png", "pdf"),
                dpi: int = 150, caption: str | None = None, **savefig_kwargs) -> list[Path]:
    """Save a matplotlib figure as ``figures/<name>.png`` (150 dpi) and ``.pdf``; return the paths.

    Every figure says what it shows: ``caption`` (one or two sentences: what is plotted, on what data,
    what to read from it) is required and goes with the figure into the manifest and the results
    README; a figure without one is refused (``ValueError`` naming it), as is one that draws axes but no
    axis label at all (a figure of images or a diagram, all of whose axes are off, needs none). Whether
    each axes has a title and x/y labels is recorded with the figure (manifest, results README), where
    ``tests/test_companion.py`` checks it.
    """
    import matplotlib

    _check_name(name, "save_figure")
    if not isinstance(caption, str) or len(caption.strip()) < 20:
        raise ValueError(f"save_figure({name!r}): caption=... is required: one or two sentences that say what the "
                         f"figure shows (what is plotted, on which data, what to read from it); got {caption!r}")
    labels = figure_labels(fig, caption)
    # a figure of images or a diagram (every axes off) has no axis to label
    if not labels["any_label"] and any(a["axis_drawn"] for a in labels["axes"]):
        raise ValueError(f"save_figure({name!r}): the figure has no axis label; give its axes x/y labels")
    root = results_dir(out_dir)
    folder = root / "figures"
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
    record_output(root, {"kind": "figure", "name": name, "files": [f"figures/{p.name}" for p in paths],
                          "caption": caption or "", "title": labels["suptitle"] or next(
                              (a["title"] for a in labels["axes"] if a["title"]), ""),
                          "has_title": labels["has_title"], "has_caption": bool((caption or "").strip()),
                          "has_labels": labels["labelled"], "axes": labels["axes"]})
    return paths


def _floatfmt(float_format: str) -> str:
    """``"%.1f"`` -> ``".1f"`` (checks that it is a printf format for one number)."""
    m = re.fullmatch(r"%([-+ 0#]*\d*(?:\.\d+)?[eEfFgG%])", float_format)
    if not m:
        raise ValueError(f"save_table: float_format {float_format!r}: expected a printf format such as '%.1f'")
    return m.group(1)


#: Column names that hold settings (parameters), not measurements: printed with ``%g`` (never rounded together).
KEY_COLUMN = re.compile(
    r"^(alpha|tau|temperature|noise[ _]?std|sigma|lr|learning[ _]rate|weight[ _]decay|margin|seed|k|top[ _-]?k|"
    r"epochs?|batch[ _]size|corpus[ _]size|sentences|size|n|n[ _]\w+|gamma\w*|asl\w*|local[ _]weight|threshold|"
    r"prompt[ _]copies|initial logit scale|caption completeness|completeness|step|warmup\w*)$", re.I)
_MISSING = ""


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _short_decimal(v: float) -> bool:
    """Whether ``v`` is a short decimal as a person writes a setting (0.05, 0.003, 0.7; at most 4 significant digits)."""
    digits = re.sub(r"[^0-9]", "", f"{abs(v):.15g}".split("e")[0]).strip("0")
    return len(digits) <= 4


def _g_distinct(values: list[float]) -> str:
    """``%g``, or ``%.<n>g`` with the fewest digits (up to 17) that keeps every distinct value distinct."""
    distinct = set(values)
    for digits in range(6, 18):
        fmt = f"%.{digits}g"
        if len({fmt % v for v in distinct}) == len(distinct):
            return fmt
    return "%.17g"


def _integral(values) -> bool:
    return all(float(v).is_integer() and abs(v) < 2 ** 53 for v in values)


def _format_column(values: list, name: str, float_format: str, key: bool) -> tuple[list[str], bool]:
    """One column's cells as text, and whether it is numeric (right-aligned)."""
    import numbers

    present = [v for v in values if not _is_missing(v)]
    numeric = bool(present) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present)
    if not numeric:  # text, or numbers mixed with text (an "item, value" table): each number by itself
        def one(v):
            if _is_missing(v):
                return _MISSING
            if isinstance(v, numbers.Real) and not isinstance(v, bool):
                return str(int(v)) if float(v).is_integer() and abs(v) < 2 ** 53 else f"{float(v):g}"
            return str(v)
        return [one(v) for v in values], False
    floats = [float(v) for v in present]
    if _integral(floats):  # integers, also when stored as floats (214.0 -> "214")
        return [_MISSING if _is_missing(v) else str(int(v)) for v in values], True
    rounded = {float_format % v for v in set(floats)}
    if key or KEY_COLUMN.match(str(name).strip()) or (len(rounded) < len(set(floats))
                                                      and all(_short_decimal(v) for v in floats)):
        # a setting: %g, so that 0.05 and 0.1 (or tau 0.003 and 0.01) never print alike
        fmt = _g_distinct(floats)
        return [_MISSING if _is_missing(v) else fmt % float(v) for v in values], True
    return [_MISSING if _is_missing(v) else float_format % float(v) for v in values], True


def format_table(df, float_format: str = "%.1f", keys: Iterable[str] = (), index: bool | None = None):
    """``df`` as a table of text, formatted per column: what :func:`save_table` writes as Markdown and LaTeX.

    - integer columns, and float columns whose values are all integral, print as integers (``214``);
    - settings print with ``%g`` (``0.05``, ``0.003``, ``1e-05``): the index levels, columns named in
      ``keys``, columns whose name is a known parameter (:data:`KEY_COLUMN`: alpha, tau,
      temperature, noise_std, lr, ...), and any column of short decimals that ``float_format`` would
      print alike (two distinct settings never render the same);
    - every other number is a measurement and prints with ``float_format`` (``%.1f``: mAP points);
    - missing values print empty; text stays as it is.

    The index (when written; see :func:`save_table`) becomes the first columns. Returns
    ``(table, numeric)``: a DataFrame of strings and, per column, whether it holds numbers.
    """
    import pandas as pd

    _floatfmt(float_format)
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if index is None:
        index = _show_index(df)
    keys = set(keys)
    frame = df.reset_index() if index else df.reset_index(drop=True)
    if index:
        names = [n if n is not None else ("index" if df.index.nlevels == 1 else f"level_{i}")
                 for i, n in enumerate(df.index.names)]
        keys |= set(names)
        frame.columns = [*(("" if n is None else n) for n in df.index.names), *frame.columns[df.index.nlevels:]]
        index_cols = list(frame.columns[:df.index.nlevels])
    else:
        index_cols = []
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" / ".join(str(x) for x in col if str(x)) for col in frame.columns]
    out, numeric = {}, []
    for i, col in enumerate(frame.columns):
        values = frame.iloc[:, i].tolist()
        is_key = col in keys or (i < len(index_cols))
        cells, is_num = _format_column(values, col, float_format, is_key)
        out[i] = cells
        numeric.append(is_num)
    table = pd.DataFrame(out)
    table.columns = [str(c) for c in frame.columns]
    return table, numeric


def _show_index(df) -> bool:
    import pandas as pd
    return not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
                and df.index.name is None)


def save_table(df, name: str, out_dir: PathLike | None = None, caption: str | None = None,
               float_format: str = "%.1f", index: bool | None = None, keys: Iterable[str] = ()) -> list[Path]:
    """Save a DataFrame as ``tables/<name>.csv`` (full precision), ``.md`` and ``.tex``; return the paths.

    The Markdown and LaTeX versions are formatted per column by :func:`format_table`: integers as
    integers, settings (the index, ``keys``, known parameter names) with ``%g``, measurements with
    ``float_format``. ``caption`` goes above the Markdown table and into the LaTeX ``table``
    environment (with label ``tab:<name>``). The index is written unless it is a plain 0..n-1
    range (``index`` forces either way).
    """
    import pandas as pd

    _check_name(name, "save_table")
    if not isinstance(df, pd.DataFrame):
        if isinstance(df, pd.Series):
            df = df.to_frame()
        else:
            raise TypeError(f"save_table({name!r}): expected a pandas DataFrame, got {type(df).__name__}")
    _floatfmt(float_format)
    if index is None:
        index = _show_index(df)
    root = results_dir(out_dir)
    folder = root / "tables"
    csv, md, tex = (folder / f"{name}.{ext}" for ext in ("csv", "md", "tex"))

    df.to_csv(csv, index=index)
    text, numeric = format_table(df, float_format, keys, index)
    try:
        from tabulate import tabulate
    except ImportError as exc:
        raise ImportError("save_table: writing Markdown needs the 'tabulate' package "
                          "(pip install tabulate; it is listed in pyproject.toml)") from exc
    table = tabulate(text.values.tolist(), headers=list(text.columns), tablefmt="pipe", disable_numparse=True,
                     colalign=["right" if n else "left" for n in numeric])
    md.write_text((f"{caption}\n\n" if caption else "") + table + "\n")
    latex = text.to_latex(index=False, caption=_latex_escape(caption) if caption else None,
                          label=f"tab:{name}" if caption else None, escape=True,
                          column_format="".join("r" if n else "l" for n in numeric))
    tex.write_text(latex if latex.endswith("\n") else latex + "\n")
    record_output(root, {"kind": "table", "name": name, "files": [f"tables/{p.name}" for p in (csv, md, tex)],
                          "caption": caption or "", "columns": [str(c) for c in text.columns], "rows": len(text)})
    return [csv, md, tex]


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)

def save_json(obj: Any, name: str, out_dir: PathLike | None = None) -> Path:
    """Save ``obj`` as ``tables/<name>.json`` (numpy/torch values converted; NaN written as null)."""
    _check_name(name, "save_json")
    root = results_dir(out_dir)
    path = root / "tables" / f"{name}.json"
    path.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
    record_output(root, {"kind": "json", "name": name, "files": [f"tables/{path.name}"], "caption": ""})
    return path

