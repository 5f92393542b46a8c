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
``float_format``).

Under the runner (:mod:`lcmc_core.runner.reproduce`, which sets ``$LCMC_NOTEBOOK`` for each
kernel) every save also leaves a record in ``<out_dir>/status/<NN>.outputs.jsonl`` (name, files,
caption, the cell that made it, the figure's label checks); the runner moves them into the
manifest and writes ``<out_dir>/README.md`` from it (:func:`results_readme`). :func:`toy_world_caption` returns the note that
must accompany every figure and table of the toy world, whose numbers are genuine results of that
world and not the paper's.
"""
from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["results_dir", "save_figure", "save_table", "save_json", "toy_world_caption", "report_status",
           "format_table", "figure_labels", "results_readme", "read_output_records", "TOY_DATASETS", "TOY_PROFILES",
           "STATUSES", "NOTEBOOK_ENV", "READING_ORDER"]

PathLike = str | os.PathLike

TOY_DATASETS = ("emoji-voc",)
TOY_PROFILES = ("toy", "smoke", "study")
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


def _record_output(folder: Path, record: dict) -> None:
    """Append ``record`` to ``status/<NN>.outputs.jsonl`` when running under the runner (else nothing)."""
    notebook = os.environ.get(NOTEBOOK_ENV, "")
    number = re.match(r"^(\d+)", notebook)
    if not number:
        return
    path = folder / "status" / f"{int(number.group(1)):02d}.outputs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**record, "notebook": notebook, "cell_source": _current_cell_source()}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(_jsonable(record)) + "\n")


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


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


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
    def text(artist) -> str:
        return artist.get_text().strip() if artist is not None else ""

    suptitle = " ".join(text(getattr(fig, "_suptitle", None)).split())
    supx, supy = text(getattr(fig, "_supxlabel", None)), text(getattr(fig, "_supylabel", None))
    axes = []
    for ax in fig.axes:
        if _is_colorbar(ax):
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

    The figure must say what it shows (:func:`figure_labels`): with neither a title (``suptitle`` or
    an axes title) nor a ``caption``, and no axis label at all, it is refused (``ValueError`` naming
    it); with labels but no title or caption it is saved with a warning naming it. Whether each
    axes has a title and x/y labels is recorded with the figure (manifest, results README), where
    ``tests/test_companion.py`` checks it; a missing label on one axes does not warn, so that
    headless runs stay free of warnings. ``caption`` (one sentence) goes with the figure into the
    manifest and the results README.
    """
    import matplotlib

    _check_name(name, "save_figure")
    labels = figure_labels(fig, caption)
    if not labels["titled"] and not labels["any_label"]:
        raise ValueError(f"save_figure({name!r}): the figure has no title, caption or axis label; give it a "
                         f"title (ax.set_title / fig.suptitle) or caption=..., and x/y labels")
    if not labels["titled"]:
        warnings.warn(f"save_figure({name!r}): the figure has no title or caption (ax.set_title, fig.suptitle "
                      f"or caption=...)", UserWarning, stacklevel=2)
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
    _record_output(root, {"kind": "figure", "name": name, "files": [f"figures/{p.name}" for p in paths],
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
    _record_output(root, {"kind": "table", "name": name, "files": [f"tables/{p.name}" for p in (csv, md, tex)],
                          "caption": caption or "", "columns": [str(c) for c in text.columns], "rows": len(text)})
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
    root = results_dir(out_dir)
    path = root / "tables" / f"{name}.json"
    path.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")
    _record_output(root, {"kind": "json", "name": name, "files": [f"tables/{path.name}"], "caption": ""})
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


# ---------------------------------------------------------------------------------------------
# the results folder's README, from the manifest
# ---------------------------------------------------------------------------------------------
#: The order in which a reader meets the notebooks: the main result first, then what explains it,
#: then how its ingredients are made (notebook numbers; others follow in number order).
READING_ORDER = (
    ("05", "the main comparison: every method's mAP, CF1 and OF1, per-class AP"),
    ("04", "what the mapping's settings, memory, branches, noise, corpus size and loss change"),
    ("03", "the modality gap, before and after the cross-modal mapping"),
    ("02", "training the text-only classifier, and its noise injection"),
    ("01", "the training corpus: how it is generated, and its label statistics"),
    ("00", "the toy world and the toy CLIPs (toy profiles)"),
)
THUMBNAIL_WIDTH = 320


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def results_readme(manifest: Mapping[str, Any], checkout: str | None = None, title: str | None = None) -> str:
    """``results/<profile>/README.md``: every figure (thumbnail, caption, the notebook and cell that made it)
    and table (link and caption) of a run, notebook by notebook in :data:`READING_ORDER`.

    ``checkout``: the checkout's path relative to the results folder (``../..``), for links to the
    source notebooks (none without it).
    """
    profile = manifest.get("profile", "?")
    notebooks = manifest.get("notebooks") or {}
    order = {num: i for i, (num, _) in enumerate(READING_ORDER)}
    about = dict(READING_ORDER)
    names = sorted(notebooks, key=lambda n: (order.get(n[:2], len(order)), n))
    git = manifest.get("git") or {}
    commit = (git.get("commit") or "")[:12]
    lines = [f"# {title or f'Results of the `{profile}` profile'}", "",
             f"Written by `python -m lcmc_core reproduce --profile {profile}` from [`manifest.json`](manifest.json) "
             f"(run status **{manifest.get('status', '?')}**" + (f", finished {manifest['finished']}" if manifest.get(
                 "finished") else "") + (f", commit `{commit}`" + (" with uncommitted changes" if git.get("dirty") else "")
                                         if commit else "") + "). Do not edit it by hand: a rerun rewrites it.", ""]
    note = toy_world_caption(profile) if profile in TOY_PROFILES else ""
    if note:
        lines += [f"> {note}.", ""]
    lines += ["Check a rerun against the committed tables with "
              f"`python -m lcmc_core verify --profile {profile}`.", "", "## Reading order", ""]
    for i, name in enumerate(names, 1):
        entry = notebooks[name]
        what = entry["title"] if "title" in entry else about.get(name[:2], "")
        lines.append(f"{i}. [{name}](#{_anchor(name)})" + (f": {_md_escape(what)}" if what else "")
                     + (f" ({entry.get('status')})" if entry.get("status") not in (None, "ok") else ""))
    lines.append("")
    for name in names:
        entry = notebooks[name]
        lines += [f"## {name}", ""]
        links = [f"[notebook]({checkout.rstrip('/')}/{entry['notebook']})"] if checkout and entry.get("notebook") else []
        if entry.get("executed"):
            links.append(f"[executed]({entry['executed']})")
        if entry.get("html"):
            links.append(f"[HTML]({entry['html']})")
        secs = entry.get("seconds")
        lines += [" · ".join(links) + f" · status {entry.get('status', '?')}"
                  + (f", {secs:.0f} s" if isinstance(secs, (int, float)) else ""), ""]
        figures, tables = entry.get("figures") or [], entry.get("tables") or []
        if entry.get("status") in ("not run", "pending"):
            lines += [f"(not run{': ' + _md_escape(entry['note']) if entry.get('note') else ''})", ""]
            continue
        if "figures" not in entry and "tables" not in entry:
            lines += ["(this entry predates recorded outputs: rerun the notebook to list its figures and tables)", ""]
            continue
        for fig in figures:
            files = fig.get("files") or []
            png = next((f for f in files if f.endswith(".png")), files[0] if files else "")
            caption = fig.get("caption") or fig.get("title") or fig["name"]
            where = f"cell {fig['cell']} of `{name}.ipynb`" if fig.get("cell") is not None else f"`{name}.ipynb`"
            others = " ".join(f"[{Path(f).suffix[1:]}]({f})" for f in files if f != png)
            flags = "" if fig.get("has_labels", True) and (fig.get("has_title") or fig.get("has_caption", True)) \
                else " (some axes lack labels or a title)"
            lines += [f'<a href="{png}"><img src="{png}" width="{THUMBNAIL_WIDTH}" alt="{fig["name"]}"></a>', "",
                      f"**{fig['name']}**: {_md_escape(caption).rstrip('.')}. Made by {where}. {others}{flags}".rstrip(), ""]
        if tables:
            lines += ["Tables:", ""]
            for tab in tables:
                files = tab.get("files") or []
                md = next((f for f in files if f.endswith(".md")), files[0] if files else "")
                others = ", ".join(f"[{Path(f).suffix[1:]}]({f})" for f in files if f != md)
                caption = tab.get("caption") or ""
                where = f" (cell {tab['cell']})" if tab.get("cell") is not None else ""
                lines.append(f"- [{tab['name']}]({md})" + (f" ({others})" if others else "") + where
                             + (f": {_md_escape(caption)}" if caption else ""))
            lines.append("")
        data = entry.get("data") or []
        if data:
            lines += ["Data: " + ", ".join(f"[{d['name']}]({(d.get('files') or [''])[0]})" for d in data), ""]
    if checkout:
        # the notebooks link ``../README.md#glossary``: from ``executed/`` that lands here, so forward it
        lines += ["## Glossary", "", "Abbreviations (CoMC, local branch, C3, I0T, SPARC, DeCap, TaI-DPT, CF1/OF1, "
                  f"ASL, InfoNCE, ...) are expanded, with citations, in the [project README's glossary]"
                  f"({checkout.rstrip('/')}/README.md#glossary).", ""]
    return "\n".join(lines).rstrip() + "\n"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
