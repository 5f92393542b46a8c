"""Rerun the numbered notebooks headlessly for a profile: ``python -m lcmc_core reproduce --profile toy``.

The notebooks ``notebooks/NN_*.ipynb`` run in number order with papermill, each with the values
:func:`lcmc_core.experiments.profiles.resolve` gives it (all validated before the first one starts).
Everything goes to ``results/<profile>/`` (or ``--out``)::

    executed/NN_name.ipynb   the executed notebook (with its outputs, or the traceback)
    executed/NN_name.html    the same, exported to HTML (nbconvert's compact ``basic`` template; figures embedded)
    figures/, tables/        written by the notebooks (lcmc_core.reporting.saving), given out_dir
    manifest.json            what ran, with what, where, how long, how it ended, and what each notebook saved
    README.md                every figure (thumbnail, caption, the cell that made it) and table, in reading order

Notebooks run with their own folder as working directory (as in Jupyter) and the kernel given by
``kernel_name`` (default ``python3``, the environment's own kernel). A failing notebook stops the
run: what was produced stays, the manifest records the failure, and :class:`NotebookFailed` names
the notebook, the failing cell and the executed copy holding the traceback. A notebook can report
that it ended without its full result (an LLM corpus still incomplete, for example) through
:func:`lcmc_core.outputs.report_status`; the manifest then says ``incomplete`` for it.
Ctrl-C and SIGTERM stop the run and mark it ``interrupted`` / ``stopped`` in the manifest.
``--only`` runs merge into an existing manifest of the same profile.

The manifest holds no environment variables at all; values of secret-looking environment
variables (``OPENAI_API_KEY``, ``HF_TOKEN``, ...) are additionally redacted from the manifest and
from the executed notebooks and their HTML, should a notebook ever print one.

No machine path is written either: the manifest, the executed notebooks (papermill's injected
``out_dir``, its ``input_path``/``output_path`` metadata, printed paths, tracebacks) and their HTML
pass through :class:`~lcmc_core.harness.provenance.PathScrubber`, which writes the results folder
relative to the checkout (``results/toy``; ``$RESULTS_DIR`` when it lies elsewhere), paths in the
checkout relative to it, the dataset folder (``data_root``) as ``$DATA_ROOT``, and the cache,
Python, temporary and home folders as ``$LCMC_CACHE_DIR``, ``$PYTHON_PREFIX``, ``$TMPDIR``, ``~``.
The notebooks themselves still run with the real paths; the console messages keep them too.

Kernels are started over IPC sockets where the platform has them (no unencrypted TCP port, and no
warning about one), and with :data:`KERNEL_SETUP` (pandas shows 3 decimals), which the manifest
and each executed notebook's metadata (``metadata.lcmc``) record.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..cache import atomic_write
from ..errors import ConfigError, LcmcError
from ..experiments.profiles import NOTEBOOK_PARAMETERS, Profile, load_profile, notebook_number, resolve
from ..outputs import NOTEBOOK_ENV, read_output_records, read_status
from ..secrets import redact_file, secret_env_values
from . import provenance as prov
from .provenance import git_info, now, package_versions, read_manifest, relative, system_info, write_manifest
from .readme import results_readme

__all__ = ["NotebookFailed", "RunStopped", "reproduce", "write_readme", "discover_notebooks", "select_notebooks",
           "default_notebooks_dir", "plan", "format_plan", "check_dataset", "MANIFEST_NAME", "README_NAME", "STATUS_DIR",
           "KERNEL_SETUP"]

MANIFEST_NAME = "manifest.json"
README_NAME = "README.md"
#: 3: notebook entries record their title, figures, tables and data files; paths are scrubbed; kernel setup
MANIFEST_VERSION = 3
#: Run in every kernel before the first cell (IPython's ``exec_lines``): DataFrames display rounded.
KERNEL_SETUP = ("import pandas as _lcmc_pd; _lcmc_pd.set_option('display.precision', 3); del _lcmc_pd",
                # progress as text in executed notebooks (widget bars would be saved stuck at 0%)
                "import tqdm.auto as _lcmc_ta, tqdm.std as _lcmc_ts; _lcmc_ta.tqdm = _lcmc_ts.tqdm; del _lcmc_ta, _lcmc_ts")
#: Folder (under the results folder) where notebooks leave their own status (see lcmc_core.outputs.report_status).
STATUS_DIR = "status"
_NOTEBOOK = re.compile(r"^(\d{2})_[^/]+\.ipynb$")


class NotebookFailed(LcmcError, RuntimeError):
    """A notebook raised: names the notebook, the failing cell and the executed copy with the traceback."""

    def __init__(self, notebook: str, executed: Path, *, cell_index: int | None = None,
                 exec_count: int | None = None, ename: str = "", evalue: str = "", cell_source: str = "",
                 notebook_cell: int | None = None, manifest: Path | None = None):
        self.notebook, self.executed, self.cell_index, self.exec_count = notebook, Path(executed), cell_index, exec_count
        self.ename, self.evalue, self.cell_source, self.manifest = ename, evalue, cell_source, manifest
        self.notebook_cell = notebook_cell  # index of the failing cell in the original notebook (from 0)
        count = f"In [{exec_count}] in the executed copy" if exec_count else None
        if notebook_cell is not None:
            where = f"cell {notebook_cell} (counting from 0 in {notebook}" + (f"; {count})" if count else ")")
        elif cell_index is not None:
            where = f"cell {cell_index} of the executed copy" + (f" ({count})" if count else "")
        else:
            where = "before or outside any cell (kernel start or papermill)"
        first = next((ln.strip() for ln in cell_source.splitlines() if ln.strip()), "")
        lines = [f"notebook {notebook} failed in {where}: {ename}: {evalue}".rstrip(": ")]
        if first:
            lines.append(f"  the failing cell begins: {first[:120]}")
        lines.append(f"  the traceback is in the executed copy {self.executed} "
                     f"(and {self.executed.with_suffix('.html')})")
        if manifest:
            lines.append(f"  outputs of the notebooks before it were kept; the run is recorded in {manifest}")
        super().__init__("\n".join(lines))


class RunStopped(LcmcError, RuntimeError):
    """The run was stopped by a signal (SIGTERM); the manifest says so."""


# ---------------------------------------------------------------------------------------------
# finding notebooks and planning a run
# ---------------------------------------------------------------------------------------------
def default_notebooks_dir() -> Path:
    """``./notebooks`` when it exists, else the ``notebooks/`` folder next to the package (a checkout)."""
    here = Path.cwd() / "notebooks"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "notebooks"


def discover_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of a folder, sorted by name."""
    folder = (Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()).absolute()
    if not folder.is_dir():
        raise ConfigError(f"notebook folder {folder} does not exist (run from the repository root or pass "
                          f"--notebooks DIR)")
    found = sorted(p for p in folder.iterdir() if p.is_file() and _NOTEBOOK.match(p.name))
    if not found:
        raise ConfigError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return found


def select_notebooks(notebooks: Sequence[Path], only: Iterable[str | int] | None) -> list[Path]:
    """The notebooks whose number is in ``only`` (``"03"``, ``3``, ``"03_modality_gap"``); all if None."""
    if not only:
        return list(notebooks)
    by_number = {notebook_number(p): p for p in notebooks}
    wanted = []
    for item in only:
        num = notebook_number(item)
        if num not in by_number:
            raise ConfigError(f"--only {item!r}: there is no notebook {num}; expected one of "
                              f"{', '.join(f'{n} ({p.stem})' for n, p in sorted(by_number.items()))}")
        if num not in wanted:
            wanted.append(num)
    return [by_number[n] for n in sorted(wanted)]


def _check_parameters_cells(paths: Sequence[Path]) -> None:
    """Every notebook's `parameters` cell declares exactly what the runner injects."""
    import papermill

    problems = []
    for p in paths:
        try:
            declared = set(papermill.inspect_notebook(str(p)))
        except Exception as exc:
            problems.append(f"notebook {p.name}: cannot read its parameters cell ({type(exc).__name__}: {exc})")
            continue
        missing = [k for k in NOTEBOOK_PARAMETERS if k not in declared]
        if missing:
            problems.append(f"notebook {p.name}: its `parameters` cell must declare {', '.join(NOTEBOOK_PARAMETERS)} "
                            f"(missing: {', '.join(missing)})")
    if problems:
        raise ConfigError("; ".join(problems))


def plan(profile, only=None, out=None, overrides=None, notebooks_dir=None,
         check_required: bool = True) -> tuple[Profile, Path, list[Path], dict[Path, dict]]:
    """Load and validate everything a run needs: (profile, results folder, notebooks to run, their values)."""
    prof = load_profile(profile)
    if out is not None and not str(out).strip():
        raise ConfigError("--out '': expected the path of a results folder, e.g. results/my-run")
    out_dir = Path(out).expanduser().absolute() if out else (Path.cwd() / "results" / prof.name).absolute()
    all_nbs = discover_notebooks(notebooks_dir)
    values = resolve(prof, all_nbs, overrides or {}, out_dir=out_dir, check_required=check_required)
    if only:
        selected = select_notebooks(all_nbs, only)
        skipped = [p.name for p in selected if p not in values]
        if skipped:
            raise ConfigError(f"--only selects {', '.join(skipped)}, which profile {prof.name!r} skips "
                              f"(skip: {list(prof.skip)} in {prof.where()})")
    else:
        selected = [p for p in all_nbs if p in values]
    return prof, out_dir, selected, values


def format_plan(profile: Profile, out_dir: Path, selected: Sequence[Path], values: Mapping[Path, dict]) -> str:
    """Human-readable list of the notebooks a run would execute and every parameter, with its source."""
    from ..experiments.params import describe

    lines = [f"profile {profile.name} ({profile.where()})" + (f": {profile.description}" if profile.description else ""),
             f"results: {out_dir}"]
    if profile.skip:
        lines.append(f"skipped by the profile: {', '.join(profile.skip)}")
    lines.append(f"notebooks: {', '.join(p.name for p in selected)}")
    shown = None
    for p in selected:
        rows = describe(values[p]["_params"], values[p]["_origins"])
        if shown is not None and rows == shown:
            continue
        lines.append(f"parameters{'' if shown is None else ' of ' + p.name}:")
        width = max(len(k) for k, *_ in rows)
        for key, value, where, _ in rows:
            lines.append(f"    {key:<{width}} = {value!r}" + ("" if where == "default" else f"   ({where})"))
        shown = rows
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def check_dataset(values: Mapping[Path, dict]) -> dict | None:
    """Before any notebook runs: load the real dataset once so that a missing or broken copy is reported in full.

    Returns what the manifest records about the images (how many were skipped, and which), or None.
    """
    from ..images import datasets

    for v in values.values():
        params = v["_params"]
        if params.dataset == "emoji-voc":
            return None
        try:
            ds = datasets.load(params.dataset, params.data_root or None, split="test",
                               missing=params.missing_images, verify_images=params.verify_images)
        except LcmcError as exc:
            raise ConfigError(f"dataset {params.dataset!r} at data_root={params.data_root!r} is not usable, so no "
                              f"notebook was run: {exc}") from None
        reasons = dict(ds.info.get("skipped_reasons", {}))
        counts = {r: sum(v == r for v in reasons.values()) for r in sorted(set(reasons.values()))}
        return {"name": params.dataset, "images": len(ds), "official_size": ds.info.get("official_size"),
                "images_verified": ds.info.get("images_verified"),
                "skipped_images": len(reasons), "skipped_by_reason": counts,
                "skipped_first": [f"{k} ({v})" for k, v in list(reasons.items())[:20]],
                "skipped_list": SKIPPED_NAME if reasons else None, "_skipped": reasons}
    return None


SKIPPED_NAME = "skipped_images.tsv"


def write_skipped_list(out_dir: Path, dataset_info: dict | None) -> None:
    """Every skipped image of the run, one ``image_id<TAB>reason`` line each, beside the manifest."""
    reasons = (dataset_info or {}).pop("_skipped", None)
    path = Path(out_dir) / SKIPPED_NAME
    if reasons:
        atomic_write(path, "image_id\treason\n" + "".join(f"{k}\t{v}\n" for k, v in reasons.items()))
    else:
        path.unlink(missing_ok=True)


def _check_kernel(kernel_name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel as exc:
        raise ConfigError(f"Jupyter kernel {kernel_name!r} not found; install one in this environment with "
                          f"'python -m ipykernel install --sys-prefix --name {kernel_name}' or pass "
                          f"--kernel NAME") from exc


def _export_html(ipynb: Path) -> Path | None:
    """``NN_name.html`` beside the executed copy: nbconvert's ``basic`` template (no Jupyter CSS), no prompts.

    The ``lab`` template repeats ~280 kB of CSS in every page; ``basic`` writes the cells only, in
    :func:`_html_page`'s few lines of style. Figures stay embedded (base64 PNG), so a page stands alone.
    """
    from nbconvert import HTMLExporter
    html = ipynb.with_suffix(".html")
    try:
        exporter = HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)
        body, _ = exporter.from_filename(str(ipynb))
    except Exception as exc:
        print(f"  warning: HTML export of {ipynb.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    html.write_text(_html_page(ipynb.stem, body), encoding="utf-8")
    return html


def _html_page(title: str, body: str) -> str:
    """The compact page around nbconvert's basic template (no repeated Jupyter CSS; GitHub renders the .ipynb)."""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title + "</title>\n<style>"
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
            "pre{background:#f6f8fa;padding:.6em;overflow-x:auto}img{max-width:100%}"
            "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em}"
            ".prompt{display:none}</style></head><body>\n"
            + body + "\n</body></html>\n")


def _locate_failure(executed: Path, original: Path, exec_count: int | None) -> tuple[int | None, str]:
    """(index of the failing cell in the original notebook, its source), found by its error output."""
    import nbformat
    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:
        return None, ""
    failing = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        has_error = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        if has_error or (exec_count is not None and cell.get("execution_count") == exec_count and failing is None):
            failing = cell
            if has_error:
                break
    if failing is None:
        return None, ""
    index = None
    cell_id = failing.get("id")
    if cell_id:
        with contextlib.suppress(Exception):
            orig = nbformat.read(str(original), as_version=4)
            index = next((i for i, c in enumerate(orig.cells) if c.get("id") == cell_id), None)
    return index, failing.source


@contextlib.contextmanager
def _sigterm_raises():
    """Inside the block, SIGTERM raises :class:`RunStopped` (so the manifest is marked before the process ends)."""
    if not hasattr(signal, "SIGTERM") or sys.platform == "win32":
        yield
        return

    def handler(signum, frame):
        raise RunStopped("the run was stopped by SIGTERM")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _kernel_options(ipc_dir: str | None) -> dict[str, Any]:
    """papermill/nbclient options for a kernel: :data:`KERNEL_SETUP`, and IPC sockets in ``ipc_dir`` if given.

    Each kernel gets its own socket name in the run's private folder: jupyter_client's default
    (``kernel-ipc-N`` in the working directory) would let two runs in one folder pick the same sockets.
    """
    import uuid

    from traitlets.config import Config

    config = Config()
    if ipc_dir is not None:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(ipc_dir, uuid.uuid4().hex[:8])
    return {"config": config, "extra_arguments": [f"--InteractiveShellApp.exec_lines={line}" for line in KERNEL_SETUP]}


def _notebook_title(nb: Path) -> str:
    """The first Markdown heading of a notebook, without its leading number (``Main results``), or ""."""
    import nbformat
    try:
        cells = nbformat.read(str(nb), as_version=4).cells
    except Exception:
        return ""
    for cell in cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    title = line.lstrip("#").strip()
                    return re.sub(r"^\d{2}\s*[·:.\-–—]\s*", "", title)
            return ""
    return ""


def _finish_executed(executed: Path, secrets: Sequence[str], scrubber: prov.PathScrubber, setup: Mapping[str, Any]) -> None:
    """Redact secrets and machine paths from the executed copy and note the kernel setup in its metadata."""
    import nbformat

    redact_file(executed, secrets)
    with contextlib.suppress(Exception):
        nb = nbformat.read(str(executed), as_version=4)
        nb.metadata["lcmc"] = dict(setup)
        nbformat.write(nb, str(executed))
    scrubber.scrub_file(executed)


def _outputs(out_dir: Path, nb: Path, executed: Path) -> dict[str, list[dict]]:
    """What the notebook saved (its output records), each with the cell that saved it: its number, counting every
    cell from 1, in the *executed* copy (which holds papermill's injected-parameters cell), where a reader finds it."""
    import nbformat

    records = read_output_records(out_dir, nb.stem)
    try:
        sources = [None] + [c.source.strip() if c.cell_type == "code" else None
                            for c in nbformat.read(str(executed), as_version=4).cells]
    except Exception:
        sources = []
    out: dict[str, list[dict]] = {"figures": [], "tables": [], "data": []}
    kind_key = {"figure": "figures", "table": "tables", "json": "data"}
    for rec in records:
        source = (rec.pop("cell_source", None) or "").strip()
        rec.pop("notebook", None)
        rec["cell"] = sources.index(source) if source and source in sources else None
        out[kind_key.get(rec.pop("kind"), "data")].append(rec)
    return out


def _papermill_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith("_")}


#: What a results folder holds (anything else in an existing ``--out`` folder means it is not one).
RESULTS_LAYOUT = {"executed", "figures", "tables", "status", "corpus", MANIFEST_NAME, README_NAME, "skipped_images.tsv"}


def check_results_folder(out_dir: Path, protected: Iterable[Path]) -> None:
    """Refuse a results folder that would overwrite something else; make sure it can be written (one-line errors).

    ``out_dir`` may be new, empty, or an earlier results folder; it may not be a file, a folder holding
    other files, or a folder that holds ``protected`` ones (the checkout, the notebooks).
    """
    for folder in protected:
        if folder is not None and prov.is_within(Path(folder), out_dir):
            raise ConfigError(f"results folder {out_dir} holds {folder}: a run would write figures/, tables/, "
                              f"README.md and manifest.json there; give --out a folder of its own, e.g. results/NAME")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"results folder {out_dir} is a file, not a folder; give --out a folder")
    if out_dir.is_dir():
        others = sorted(p.name for p in out_dir.iterdir() if p.name not in RESULTS_LAYOUT)
        if others and not (out_dir / MANIFEST_NAME).is_file():
            raise ConfigError(f"results folder {out_dir} already holds other files ({', '.join(others[:3])}"
                              f"{', ...' if len(others) > 3 else ''}) and is not a results folder (no {MANIFEST_NAME}); "
                              f"give --out a new or empty folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".lcmc-write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"results folder {out_dir} cannot be written ({exc.strerror or exc}); give --out a "
                          f"writable folder") from None


def check_devices(values: Mapping[Path, dict]) -> None:
    """Every notebook's ``device`` exists on this machine (``cuda:3`` without that GPU is refused before any run)."""
    import torch

    for device in sorted({v["_params"].device for v in values.values()}):
        if device.startswith("cuda"):
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            if index >= count:
                found = f"{count} CUDA device(s)" if count else "no CUDA device"
                raise ConfigError(f"device={device!r}: this machine has {found}; use --set device=cpu (or auto, which "
                                  f"takes a GPU when there is one)")
        elif device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("device='mps': Apple's Metal backend is not available here; use --set device=cpu or auto")


_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".tar", ".ckpt")


def check_weights(values: Mapping[Path, dict]) -> None:
    """A ``clip_pretrained`` that names a file must exist before any notebook starts."""
    for v in values.values():
        p = v["_params"]
        weights = p.clip_pretrained
        if os.sep in weights or "/" in weights or weights.endswith(_WEIGHT_SUFFIXES):
            if not Path(weights).expanduser().is_file():
                raise ConfigError(f"clip_pretrained={weights!r}: no such weights file; pass the path of the file you "
                                  f"hold (see the README's weights table) or an open_clip tag such as 'openai'")


def _absolute_cache_env() -> None:
    """Resolve a relative ``$LCMC_CACHE_DIR`` once, here, so that every kernel (run from notebooks/) uses the same folder."""
    env = os.environ.get("LCMC_CACHE_DIR")
    if env and not Path(env).expanduser().is_absolute():
        os.environ["LCMC_CACHE_DIR"] = str(Path(env).expanduser().absolute())


class _Run:
    """One headless run of a profile's notebooks: checked in full first, then executed notebook by notebook."""

    def __init__(self, profile, only, out, overrides, notebooks_dir, progress: bool, kernel_name: str | None):
        _absolute_cache_env()
        self.only = list(only) if only else None
        self.overrides = dict(overrides or {})
        self.progress = progress
        self.prof, self.out_dir, self.selected, self.values = plan(profile, self.only, out, overrides, notebooks_dir)
        self.nb_folder = self.selected[0].parent if self.selected else Path(notebooks_dir or default_notebooks_dir())
        self.checkout = prov.git_toplevel(self.nb_folder) or self.nb_folder.parent
        self._preflight(kernel_name)

    def _preflight(self, kernel_name: str | None) -> None:
        """Everything a run needs, checked before anything is written (each problem a one-line error)."""
        from ..cache import cache_dir
        _check_parameters_cells(self.selected)
        self.kernel = kernel_name or "python3"
        _check_kernel(self.kernel)
        check_results_folder(self.out_dir, [self.checkout, self.nb_folder, prov.package_checkout()])
        check_devices(self.values)
        check_weights(self.values)
        cache_dir()  # the cache folder must be usable (an error names it)
        self.dataset_info = check_dataset(self.values)

    # --- the manifest ------------------------------------------------------------------------
    def _start(self) -> None:
        from ..cache import default_cache_dir
        out_dir, selected = self.out_dir, self.selected
        (out_dir / "executed").mkdir(parents=True, exist_ok=True)
        write_skipped_list(out_dir, self.dataset_info)
        (out_dir / STATUS_DIR).mkdir(exist_ok=True)
        self.manifest_path = out_dir / MANIFEST_NAME
        self.secrets = secret_env_values()
        data_roots = {v["_params"].data_root for v in self.values.values() if v["_params"].data_root}
        self.scrubber = prov.PathScrubber(out_dir=out_dir, checkouts=[self.checkout, prov.package_checkout()],
                                          cache=os.environ.get("LCMC_CACHE_DIR") or default_cache_dir(),
                                          extra={r: "$DATA_ROOT" for r in data_roots})
        self.ipc_dir = tempfile.mkdtemp(prefix="lcmc-kernels-") if os.name == "posix" else None  # socket paths < 108
        self.kernel_setup = {"exec_lines": list(KERNEL_SETUP), "transport": "ipc" if self.ipc_dir else "tcp"}
        previous = read_manifest(self.manifest_path)
        entries: dict[str, Any] = {}
        if (self.only and previous and previous.get("profile") == self.prof.name
                and isinstance(previous.get("notebooks"), dict)):
            entries = {k: v for k, v in previous["notebooks"].items() if k not in {p.stem for p in selected}}
        for p in selected:
            entries[p.stem] = {"status": "pending", "title": _notebook_title(p), "notebook": relative(p, self.checkout),
                               "parameters": self.values[p]["params"]}
        self.git = git_info(self.nb_folder, exclude=out_dir)
        profile_file = self.prof.path
        from ..environment import find_lock, lock_summary
        self.manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "profile": self.prof.name,
            "profile_file": relative(profile_file, self.checkout) if profile_file else None,
            "profile_sha256": hashlib.sha256(profile_file.read_bytes()).hexdigest() if profile_file else None,
            "overrides": dict(self.overrides),
            "only": [notebook_number(p) for p in selected] if self.only else None,
            "status": "running", "started": now(), "finished": None, "seconds": None, "failure": None,
            "dataset": self.dataset_info,
            "notebooks": dict(sorted(entries.items())),
            "git": self.git,
            "packages": package_versions(),
            "environment": lock_summary(find_lock()),
            "system": system_info(),
            "kernel": self.kernel,
            "kernel_setup": self.kernel_setup,
        }
        self.save()
        if self.progress:
            print(f"reproduce --profile {self.prof.name}: {len(selected)} notebook(s) -> {out_dir}", flush=True)
            info = self.dataset_info
            if info and info["skipped_images"]:
                by_reason = ", ".join(f"{n} {r}" for r, n in info["skipped_by_reason"].items())
                print(f"  {info['skipped_images']} of {info['official_size']} images skipped ({by_reason}; all listed "
                      f"in {out_dir / SKIPPED_NAME}): {', '.join(info['skipped_first'][:5])}", flush=True)

    def save(self) -> None:
        """Write the manifest (atomically; secrets and machine paths removed)."""
        write_manifest(self.manifest_path, self.manifest, self.scrubber)

    def _close(self, status: str, current: dict) -> None:
        """Record an interruption (Ctrl-C, SIGTERM) in the manifest and the executed copy."""
        entry, t0, executed = current.get("entry"), current.get("t0"), current.get("executed")
        if entry is not None:
            entry.update(status=status, finished=now(), seconds=round(time.perf_counter() - t0, 2))
        if executed is not None:
            _finish_executed(executed, self.secrets, self.scrubber, self.kernel_setup)
        self.manifest.update(status=status, finished=now(), seconds=round(time.perf_counter() - self.t_run, 2))
        self.save()

    # --- one notebook ------------------------------------------------------------------------
    def _execute(self, nb: Path, executed: Path) -> dict[str, Any] | None:
        """Run ``nb`` with papermill into ``executed``; the error (cell, name, value) or None."""
        import papermill
        from papermill.exceptions import PapermillExecutionError

        previous_env = os.environ.get(NOTEBOOK_ENV)
        os.environ[NOTEBOOK_ENV] = nb.stem  # the kernel inherits it: every save is recorded
        try:
            papermill.execute_notebook(str(nb), str(executed), parameters=_papermill_values(self.values[nb]),
                                       kernel_name=self.kernel, progress_bar=self.progress, log_output=False,
                                       cwd=str(nb.parent), **_kernel_options(self.ipc_dir))
        except PapermillExecutionError as exc:
            return {"cell_index": exc.cell_index, "exec_count": exc.exec_count, "ename": exc.ename,
                    "evalue": str(exc.evalue)}
        except (KeyboardInterrupt, RunStopped):
            raise
        except Exception as exc:
            return {"cell_index": None, "exec_count": None, "ename": type(exc).__name__, "evalue": str(exc)}
        finally:
            if previous_env is None:
                os.environ.pop(NOTEBOOK_ENV, None)
            else:
                os.environ[NOTEBOOK_ENV] = previous_env
        return None

    def _run_notebook(self, i: int, nb: Path, current: dict) -> NotebookFailed | None:
        """Run one notebook, record it in the manifest; the failure, or None."""
        n = len(self.selected)
        executed = self.out_dir / "executed" / nb.name
        for stale in (executed, executed.with_suffix(".html"), self.out_dir / STATUS_DIR / f"{notebook_number(nb)}.json",
                      self.out_dir / STATUS_DIR / f"{notebook_number(nb)}.outputs.jsonl"):
            stale.unlink(missing_ok=True)
        entry = self.manifest["notebooks"][nb.stem]
        entry.update(status="running", started=now(), finished=None, seconds=None,
                     executed=relative(executed, self.out_dir), html=None, git_commit=self.git.get("commit"),
                     error=None, figures=[], tables=[], data=[])
        self.save()
        if self.progress:
            print(f"[{i}/{n}] {nb.name} ...", flush=True)
        t0 = time.perf_counter()
        current.update(entry=entry, t0=t0, executed=executed)
        error = self._execute(nb, executed)
        seconds = round(time.perf_counter() - t0, 2)
        if executed.is_file():
            _finish_executed(executed, self.secrets, self.scrubber, self.kernel_setup)
        html = _export_html(executed) if executed.is_file() else None
        if html is not None:
            redact_file(html, self.secrets)
            self.scrubber.scrub_file(html)
        entry.update(finished=now(), seconds=seconds, html=relative(html, self.out_dir) if html else None,
                     **_outputs(self.out_dir, nb, executed))
        current.clear()
        if error is None:
            status = read_status(self.out_dir, nb.stem) or {}
            entry["status"] = status.get("status", "ok")
            if status.get("note"):
                entry["note"] = status["note"]
            if self.progress:
                print(f"[{i}/{n}] {nb.name}: {entry['status']} in {seconds:.1f}s"
                      + (f" ({status['note']})" if status.get("note") else ""), flush=True)
            self.save()
            return None
        notebook_cell, source = _locate_failure(executed, nb, error["exec_count"])
        error["notebook_cell"] = notebook_cell
        entry.update(status="failed", error=error)
        self.manifest["failure"] = {"notebook": nb.name, **error, "executed": relative(executed, self.out_dir)}
        for later in self.selected[i:]:
            self.manifest["notebooks"][later.stem].update(
                status="not run", note=f"not run: {nb.name} failed first; earlier outputs, if any, are stale")
        if self.progress:
            print(f"[{i}/{n}] {nb.name}: FAILED after {seconds:.1f}s", flush=True)
        return NotebookFailed(nb.name, executed, cell_index=error["cell_index"], exec_count=error["exec_count"],
                              ename=error["ename"], evalue=error["evalue"], cell_source=source,
                              notebook_cell=notebook_cell, manifest=self.manifest_path)

    # --- the whole run -----------------------------------------------------------------------
    def execute(self) -> Path:
        """Run every selected notebook in order; stop at the first failure (raised after the manifest is written)."""
        self._start()
        self.t_run = time.perf_counter()
        failure: NotebookFailed | None = None
        current: dict[str, Any] = {}
        with _sigterm_raises():
            try:
                for i, nb in enumerate(self.selected, 1):
                    failure = self._run_notebook(i, nb, current)
                    if failure is not None:
                        break
            except KeyboardInterrupt:
                self._close("interrupted", current)
                raise
            except RunStopped:
                self._close("stopped", current)
                raise
            finally:
                if self.ipc_dir is not None:
                    shutil.rmtree(self.ipc_dir, ignore_errors=True)
        statuses = [self.manifest["notebooks"][p.stem]["status"] for p in self.selected]
        overall = "failed" if failure else ("incomplete" if "incomplete" in statuses else "ok")
        self.manifest.update(status=overall, finished=now(), seconds=round(time.perf_counter() - self.t_run, 2))
        self.save()
        write_readme(self.out_dir, self.scrubber, self.checkout)
        if failure is not None:
            raise failure
        if self.progress:
            print(f"reproduce --profile {self.prof.name}: {overall} in {self.manifest['seconds']:.1f}s; manifest "
                  f"{self.manifest_path}", flush=True)
        return self.out_dir


def reproduce(profile: str | os.PathLike | Profile, only: Iterable[str | int] | None = None,
              out: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None,
              notebooks_dir: str | os.PathLike | None = None, progress: bool = True,
              kernel_name: str | None = None) -> Path:
    """Run a profile's notebooks (or ``only`` those numbers) into the results folder; return that folder.

    Raises :class:`~lcmc_core.errors.ConfigError` before anything runs if the profile, the
    overrides, the notebooks' parameters, the results folder, the devices, the weights file or the
    dataset are not usable, :class:`NotebookFailed` when a notebook fails and :class:`RunStopped` on
    SIGTERM (after writing the manifest).
    """
    return _Run(profile, only, out, overrides, notebooks_dir, progress, kernel_name).execute()


def write_readme(out_dir: str | os.PathLike, scrubber: prov.PathScrubber | None = None,
                 checkout: str | os.PathLike | None = None) -> Path | None:
    """Write ``<out_dir>/README.md`` from the folder's manifest (:func:`lcmc_core.harness.readme.results_readme`).

    ``checkout``: the checkout holding the notebooks; when the results folder lies inside it, the
    README links to the source notebooks.
    """
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir / MANIFEST_NAME)
    if manifest is None:
        return None
    link = None
    if checkout is not None and prov.is_within(out_dir, Path(checkout)):
        link = Path(os.path.relpath(Path(checkout).resolve(), out_dir.resolve())).as_posix()
    text = results_readme(manifest, checkout=link)
    path = out_dir / README_NAME
    atomic_write(path, scrubber.scrub(text) if scrubber is not None else text)
    return path
