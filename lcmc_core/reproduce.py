"""Rerun the numbered notebooks headlessly for a profile: ``python -m lcmc_core reproduce --profile toy``.

The notebooks ``notebooks/NN_*.ipynb`` run in number order with papermill, each with the
parameters :func:`lcmc_core.config.resolve` gives it (all validated before the first one
starts). Everything goes to ``results/<profile>/`` (or ``--out``)::

    executed/NN_name.ipynb   the executed notebook (with its outputs, or the traceback)
    executed/NN_name.html    the same, exported to HTML
    figures/, tables/        written by the notebooks (lcmc_core.report), given out_dir
    manifest.json            what ran, with what, where, how long, and how it ended

Notebooks run with their own folder as working directory (as in Jupyter) and the kernel given by
``kernel_name`` (default ``python3``, the environment's own kernel). A failing notebook stops the
run: what was produced stays, the manifest records the failure, and :class:`NotebookFailed` names
the notebook, the failing cell and the executed copy holding the traceback. ``--only`` runs merge
into an existing manifest of the same profile.

The manifest holds no environment variables at all; values of secret-looking environment
variables (``OPENAI_API_KEY``, ``HF_TOKEN``, ...) are additionally redacted from the manifest and
from the executed notebooks and their HTML, should a notebook ever print one.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

from .config import (ConfigError, Profile, load_profile, notebook_number, parse_set, redact, resolve,
                     secret_env_values)

__all__ = ["NotebookFailed", "reproduce", "discover_notebooks", "select_notebooks", "default_notebooks_dir",
           "plan", "format_plan", "system_info", "package_versions", "git_info", "add_arguments",
           "main_reproduce", "MANIFEST_NAME", "PACKAGES"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_NOTEBOOK = re.compile(r"^(\d{2})_[^/]+\.ipynb$")
# Distributions whose versions the manifest records (absent ones are recorded as null).
PACKAGES = ("lcmc_core", "torch", "torchvision", "open_clip_torch", "numpy", "pandas", "scikit-learn",
            "scipy", "matplotlib", "seaborn", "pillow", "pyyaml", "tqdm", "openai", "transformers",
            "papermill", "nbconvert", "nbformat", "nbclient", "ipykernel", "jupyter_client", "tabulate")


class NotebookFailed(RuntimeError):
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


# ---------------------------------------------------------------------------------------------
# finding notebooks
# ---------------------------------------------------------------------------------------------

def default_notebooks_dir() -> Path:
    """``./notebooks`` when it exists, else the ``notebooks/`` folder next to the package (a checkout)."""
    here = Path.cwd() / "notebooks"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "notebooks"


def discover_notebooks(notebooks_dir: Union[str, os.PathLike, None] = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of a folder, sorted by name."""
    folder = (Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()).absolute()
    if not folder.is_dir():
        raise ConfigError(f"notebook folder {folder} does not exist (run from the repository root or pass "
                          f"notebooks_dir)")
    found = sorted(p for p in folder.iterdir() if p.is_file() and _NOTEBOOK.match(p.name))
    if not found:
        raise ConfigError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return found


def select_notebooks(notebooks: Sequence[Path], only: Iterable[Union[str, int]] | None) -> list[Path]:
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


def _default_out(profile: Profile) -> Path:
    return (Path.cwd() / "results" / profile.name).absolute()


def plan(profile, only=None, out=None, overrides=None, notebooks_dir=None,
         check_required: bool = True) -> tuple[Profile, Path, list[Path], dict[Path, dict]]:
    """Load and validate everything a run needs: (profile, results folder, notebooks to run, parameters)."""
    prof = load_profile(profile)
    out_dir = Path(out).expanduser().absolute() if out else _default_out(prof)
    all_nbs = discover_notebooks(notebooks_dir)
    params = resolve(prof, all_nbs, overrides or {}, out_dir=out_dir, check_required=check_required)
    if only:
        selected = select_notebooks(all_nbs, only)
        skipped = [p.name for p in selected if p not in params]
        if skipped:
            raise ConfigError(f"--only selects {', '.join(skipped)}, which profile {prof.name!r} skips "
                              f"(skip: {list(prof.skip)} in {prof.where()})")
    else:
        selected = [p for p in all_nbs if p in params]
    return prof, out_dir, selected, params


def format_plan(profile: Profile, out_dir: Path, selected: Sequence[Path], params: Mapping[Path, dict]) -> str:
    """Human-readable list of the notebooks a run would execute and their parameters."""
    lines = [f"profile {profile.name} ({profile.where()})" + (f": {profile.description}" if profile.description else ""),
             f"results: {out_dir}"]
    if profile.skip:
        lines.append(f"skipped by the profile: {', '.join(profile.skip)}")
    for p in selected:
        lines.append(f"{p.name}")
        for k, v in params[p].items():
            lines.append(f"    {k} = {v!r}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------------------------

def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the given distributions (None when absent)."""
    from importlib import metadata
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_info(folder: Union[str, os.PathLike], exclude: Union[str, os.PathLike, None] = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout holding ``folder`` (``exclude``: a folder not counted as dirty)."""
    def git(*args) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top:
        return {"commit": None, "dirty": None}
    commit = git("rev-parse", "HEAD")
    pathspec = ["--", "."]
    if exclude is not None:
        try:
            rel = Path(exclude).resolve().relative_to(Path(top).resolve())
            pathspec.append(f":(exclude){rel.as_posix()}")
        except ValueError:
            pass
    status = git("-C", top, "status", "--porcelain", "--untracked-files=normal", *pathspec)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def system_info() -> dict[str, Any]:
    """Python, platform, CPU count, torch threads and GPU name (no environment variables, no host name)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpu_usable"] = len(os.sched_getaffinity(0))
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda_available"] = bool(torch.cuda.is_available())
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["gpu_count"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # torch absent or broken: record what we have
        info.update(torch_threads=None, cuda_available=None, gpu=None)
    return info


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _write_manifest(path: Path, manifest: dict) -> None:
    text = redact(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _redact_file(path: Path, secrets: Sequence[str]) -> None:
    if not secrets or not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    clean = redact(text, secrets)
    if clean != text:
        path.write_text(clean, encoding="utf-8")


def _export_html(ipynb: Path) -> Path | None:
    from nbconvert import HTMLExporter
    html = ipynb.with_suffix(".html")
    try:
        body, _ = HTMLExporter().from_filename(str(ipynb))
    except Exception as exc:  # an export problem must not hide the notebook's own result
        print(f"  warning: HTML export of {ipynb.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    html.write_text(body, encoding="utf-8")
    return html


def _locate_failure(executed: Path, original: Path, exec_count: int | None) -> tuple[int | None, str]:
    """(index of the failing cell in the original notebook, its source), found by its error output."""
    try:
        import nbformat
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
        try:
            orig = nbformat.read(str(original), as_version=4)
            index = next((i for i, c in enumerate(orig.cells) if c.get("id") == cell_id), None)
        except Exception:
            pass
    return index, failing.source


def _check_kernel(kernel_name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel as exc:
        raise ConfigError(f"Jupyter kernel {kernel_name!r} not found; install one in this environment with "
                          f"'python -m ipykernel install --sys-prefix --name {kernel_name}' or pass "
                          f"--kernel NAME") from exc


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------

def check_dataset(params: Mapping[Path, dict]) -> None:
    """Before any notebook runs: load a real dataset once so that a missing or broken copy is reported in full."""
    from .datasets import DatasetFormatError, DatasetLayoutError, ImageCheckError, load

    for p in params.values():
        name = p.get("dataset")
        if not name or name == "emoji-voc":
            continue
        try:
            load(name, p.get("data_root") or None, split="test", missing=p.get("missing_images", "fail"))
        except (DatasetLayoutError, DatasetFormatError, ImageCheckError, ValueError) as exc:
            raise ConfigError(f"dataset {name!r} at data_root={p.get('data_root')!r} is not usable; no notebook "
                              f"was run.\n{exc}") from None
        return  # every notebook of a run uses the same dataset


def reproduce(profile: Union[str, os.PathLike, Profile], only: Iterable[Union[str, int]] | None = None,
              out: Union[str, os.PathLike, None] = None, overrides: Mapping[str, Any] | None = None,
              notebooks_dir: Union[str, os.PathLike, None] = None, progress: bool = True,
              kernel_name: str | None = None) -> Path:
    """Run a profile's notebooks (or ``only`` those numbers) into the results folder; return that folder.

    Raises :class:`~lcmc_core.config.ConfigError` before anything runs if the profile, the
    overrides or the notebooks' parameters are invalid, and :class:`NotebookFailed` when a
    notebook fails (after writing the manifest).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    only = list(only) if only else None
    prof, out_dir, selected, params = plan(profile, only, out, overrides, notebooks_dir)
    kernel = kernel_name or "python3"
    _check_kernel(kernel)
    check_dataset(params)
    nb_folder = selected[0].parent if selected else Path(notebooks_dir or default_notebooks_dir())

    executed_dir = out_dir / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    secrets = secret_env_values()

    previous = _read_manifest(manifest_path)
    entries: dict[str, Any] = {}
    if only and previous and previous.get("profile") == prof.name and isinstance(previous.get("notebooks"), dict):
        entries = {k: v for k, v in previous["notebooks"].items() if k not in {p.stem for p in selected}}
    for p in selected:
        entries[p.stem] = {"status": "pending", "parameters": params[p]}
    entries = dict(sorted(entries.items()))

    git = git_info(nb_folder, exclude=out_dir)
    profile_file = prof.path
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "profile": prof.name,
        "profile_file": _rel(profile_file, nb_folder.parent) if profile_file else None,
        "profile_sha256": hashlib.sha256(profile_file.read_bytes()).hexdigest() if profile_file else None,
        "overrides": {k: v for k, v in (overrides or {}).items()},
        "only": [notebook_number(p) for p in selected] if only else None,
        "status": "running",
        "started": _now(),
        "finished": None,
        "seconds": None,
        "failure": None,
        "notebooks": entries,
        "git": git,
        "packages": package_versions(),
        "system": system_info(),
        "kernel": kernel,
    }
    _write_manifest(manifest_path, manifest)
    if progress:
        print(f"reproduce --profile {prof.name}: {len(selected)} notebook(s) -> {out_dir}", flush=True)

    t_run = time.perf_counter()
    failure: NotebookFailed | None = None
    for i, nb in enumerate(selected, 1):
        executed = executed_dir / nb.name
        for stale in (executed, executed.with_suffix(".html")):
            stale.unlink(missing_ok=True)
        entry = manifest["notebooks"][nb.stem]
        entry.update(status="running", started=_now(), finished=None, seconds=None,
                     executed=_rel(executed, out_dir), html=None, git_commit=git.get("commit"), error=None)
        _write_manifest(manifest_path, manifest)
        if progress:
            print(f"[{i}/{len(selected)}] {nb.name} ...", flush=True)
        t0 = time.perf_counter()
        error: dict[str, Any] | None = None
        try:
            papermill.execute_notebook(str(nb), str(executed), parameters=params[nb], kernel_name=kernel,
                                       progress_bar=progress, log_output=False, cwd=str(nb.parent))
        except PapermillExecutionError as exc:
            error = {"cell_index": exc.cell_index, "exec_count": exc.exec_count, "ename": exc.ename,
                     "evalue": str(exc.evalue)}
        except KeyboardInterrupt:
            entry.update(status="interrupted", finished=_now(), seconds=round(time.perf_counter() - t0, 2))
            manifest.update(status="interrupted", finished=_now(), seconds=round(time.perf_counter() - t_run, 2))
            _redact_file(executed, secrets)
            _write_manifest(manifest_path, manifest)
            raise
        except Exception as exc:  # kernel died, missing kernel, unreadable notebook, ...
            error = {"cell_index": None, "exec_count": None, "ename": type(exc).__name__, "evalue": str(exc)}
        seconds = round(time.perf_counter() - t0, 2)
        _redact_file(executed, secrets)
        html = _export_html(executed) if executed.is_file() else None
        if html is not None:
            _redact_file(html, secrets)
        entry.update(finished=_now(), seconds=seconds, html=_rel(html, out_dir) if html else None)
        if error is None:
            entry["status"] = "ok"
            if progress:
                print(f"[{i}/{len(selected)}] {nb.name}: ok in {seconds:.1f}s", flush=True)
            _write_manifest(manifest_path, manifest)
            continue
        notebook_cell, source = _locate_failure(executed, nb, error["exec_count"])
        error["notebook_cell"] = notebook_cell
        entry.update(status="failed", error=error)
        failure = NotebookFailed(nb.name, executed, cell_index=error["cell_index"], exec_count=error["exec_count"],
                                 ename=error["ename"], evalue=error["evalue"], cell_source=source,
                                 notebook_cell=notebook_cell, manifest=manifest_path)
        manifest["failure"] = {"notebook": nb.name, **error, "executed": _rel(executed, out_dir)}
        for later in selected[i:]:
            manifest["notebooks"][later.stem].update(
                status="not run", note=f"not run: {nb.name} failed first; earlier outputs, if any, are stale")
        if progress:
            print(f"[{i}/{len(selected)}] {nb.name}: FAILED after {seconds:.1f}s", flush=True)
        break

    manifest.update(status="failed" if failure else "ok", finished=_now(),
                    seconds=round(time.perf_counter() - t_run, 2))
    _write_manifest(manifest_path, manifest)
    if failure is not None:
        raise failure
    if progress:
        print(f"reproduce --profile {prof.name}: done in {manifest['seconds']:.1f}s; manifest {manifest_path}",
              flush=True)
    return out_dir


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``reproduce`` options to an argparse (sub)parser."""
    from .config import available_profiles
    parser.add_argument("--profile", default="toy",
                        help=f"profile name ({', '.join(available_profiles())}) or path of a .yaml profile")
    parser.add_argument("--only", action="append", default=None, metavar="NN",
                        help="run only these notebooks, by number (repeatable or comma-separated: --only 02,03)")
    parser.add_argument("--out", default=None, help="results folder (default results/<profile>)")
    parser.add_argument("--set", dest="set", action="append", default=None, metavar="KEY=VALUE",
                        help="override a parameter (value read as YAML; NN.KEY=VALUE for one notebook); repeatable")
    parser.add_argument("--root", default=None, metavar="PATH",
                        help="dataset folder: shortcut for --set data_root=PATH")
    parser.add_argument("--list", action="store_true",
                        help="print the notebooks and their resolved parameters, run nothing")
    parser.add_argument("--cache", default=None,
                        help="cache folder for the notebooks' kernels (sets LCMC_CACHE_DIR; default "
                             "$LCMC_CACHE_DIR or ~/.cache/lcmc)")
    parser.add_argument("--notebooks", default=None, metavar="DIR", help="notebook folder (default ./notebooks)")
    parser.add_argument("--kernel", default=None, help="Jupyter kernel name (default python3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or per-notebook lines")
    return parser


def _overrides_from_args(args) -> dict[str, Any]:
    overrides = parse_set(getattr(args, "set", None))
    root = getattr(args, "root", None)
    if root is not None:
        if "data_root" in overrides and overrides["data_root"] != root:
            raise ConfigError(f"--root {root!r} and --set data_root={overrides['data_root']!r} disagree; give one")
        overrides["data_root"] = root
    return overrides


def _only_from_args(args) -> list[str] | None:
    items = []
    for chunk in getattr(args, "only", None) or []:
        items += [x.strip() for x in str(chunk).split(",") if x.strip()]
    return items or None


def main_reproduce(args: argparse.Namespace) -> int:
    """Run ``reproduce`` from parsed :func:`add_arguments` options; return the exit code (0 ok, 1 failed, 2 invalid)."""
    try:
        overrides = _overrides_from_args(args)
        only = _only_from_args(args)
        if args.list:
            prof, out_dir, selected, params = plan(args.profile, only, args.out, overrides,
                                                   args.notebooks, check_required=False)
            print(format_plan(prof, out_dir, selected, params))
            missing = [k for k in prof.required if not overrides.get(k) and not prof.params.get(k)]
            if missing:
                print(f"note: a run needs {', '.join(missing)} (e.g. --root PATH)")
            return 0
        if args.cache:
            os.environ["LCMC_CACHE_DIR"] = str(Path(args.cache).expanduser().absolute())
        reproduce(args.profile, only=only, out=args.out, overrides=overrides, notebooks_dir=args.notebooks,
                  progress=not args.no_progress, kernel_name=args.kernel)
        return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
