"""Run profiles: YAML files that say how a run differs from the defaults, and the parameters each notebook gets.

The defaults live in :class:`~lcmc_core.experiments.params.Params` only. A *profile* (``toy``, ``smoke``,
``voc2007``, ``coco2014``, ``nuswide`` in this folder, or any YAML file by path) overrides some::

    description: "one line shown by --list"       # optional
    extends: toy                                  # optional: start from another profile
    dataset: emoji-voc                            # parameter -> value
    method:                                       # nested groups as mappings ...
      alpha: 0.5
    method.classifier.epochs: 10                  # ... or dotted keys
    notebooks:                                    # optional per-notebook overrides (quote the numbers)
      "03": {n_test: 500}
    skip: ["00"]                                  # optional: notebooks this profile does not run
    required: [data_root]                         # optional: parameters the user must give

Values apply in this order, later winning: the defaults, the profile (its ``extends`` chain first),
its ``notebooks:`` section, then command-line ``--set key=value`` (``--set 03.key=value`` for one
notebook; a unique leaf name such as ``alpha`` means ``method.alpha``). :func:`resolve` checks
everything before any notebook starts and reports every problem at once, each naming the key,
where its value came from and what was expected (types, ranges and choices come from the
dataclasses). YAML files must be UTF-8 and may not repeat a key.

Every numbered notebook has one ``parameters`` cell with three names papermill injects:
``profile`` (the profile's name), ``out_dir`` (the results folder) and ``params`` (the resolved
parameter tree, a dict); see :data:`NOTEBOOK_PARAMETERS`.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...errors import ConfigError
from ...secrets import is_secret_name, looks_like_secret_value, secret_value_message
from ..params import absolutize, params_from_tree, resolve_key, set_path

__all__ = ["Profile", "ConfigError", "PROFILE_DIR", "NOTEBOOK_PARAMETERS", "RUNNER_KEYS", "available_profiles",
           "load_profile", "notebook_number", "parse_set", "resolve", "resolve_device", "read_yaml", "profile_name",
           "toy_world_caption", "TOY_DATASETS", "TOY_PROFILES"]

PROFILE_DIR = Path(__file__).resolve().parent
# Keys of a profile file that are not parameters.
PROFILE_META_KEYS = ("description", "extends", "notebooks", "skip", "required")
# What papermill injects into every notebook's `parameters` cell.
NOTEBOOK_PARAMETERS = ("profile", "out_dir", "params")
# Set by the runner itself; a profile or --set may not set them.
RUNNER_KEYS = {
    "profile": "it is the profile's name (the YAML file's name)",
    "out_dir": "it is the results folder: use --out to change it",
    "params": "it is the whole parameter tree the runner builds",
}


@dataclass
class Profile:
    """A loaded profile: parameter values (dotted keys), per-notebook overrides, skipped and required keys."""

    name: str
    path: Path | None
    params: dict[str, Any] = field(default_factory=dict)
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    description: str = ""
    origins: dict[str, str] = field(default_factory=dict)   # dotted key -> the file that set it

    def where(self) -> str:
        """The profile's file, for messages."""
        return str(self.path) if self.path else f"profile {self.name!r}"


# ---------------------------------------------------------------------------------------------
# YAML that refuses what silently goes wrong
# ---------------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping repeating a key (PyYAML would keep the last value)."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"line {key_node.start_mark.line + 1}: the key {key!r} appears twice (first on line "
                              f"{seen[key] + 1}); YAML would silently keep the last value")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path):
    """Parse a YAML file: UTF-8, no repeated keys; a :class:`ConfigError` naming the file otherwise."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"profile {path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"profile {path}: cannot be read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(f"profile {path}, {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"profile {path}: not valid YAML: {' '.join(str(exc).split())}") from None


# ---------------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------------
def available_profiles() -> list[str]:
    """Names of the packaged profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def notebook_number(name: str | int | Path) -> str:
    """The two-digit number of a notebook given as ``3``, ``"03"``, ``"03_modality_gap"`` or a path."""
    if isinstance(name, bool):
        raise ConfigError(f"notebook {name!r}: expected a notebook number such as '03'")
    if isinstance(name, int):
        return f"{name:02d}"
    stem = Path(str(name)).name
    m = re.match(r"^(\d+)", stem)
    if not m:
        raise ConfigError(f"notebook {name!r}: expected a notebook number such as '03' or a name "
                          f"such as '03_modality_gap'")
    return f"{int(m.group(1)):02d}"


def _looks_like_path(s: str) -> bool:
    return s.endswith((".yaml", ".yml")) or "/" in s or os.sep in s


def load_profile(name_or_path: str | os.PathLike | Profile) -> Profile:
    """Load a packaged profile by name (``toy``) or a profile YAML file by path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    return _load_profile(name_or_path, ())


def _find_profile_file(name_or_path, relative_to: Path | None = None) -> Path:
    s = os.fspath(name_or_path)
    if _looks_like_path(s):
        p = Path(s).expanduser()
        if not p.is_absolute() and relative_to is not None and (relative_to / p).is_file():
            p = relative_to / p
        if not p.is_file():
            raise ConfigError(f"profile file {s!r} does not exist (packaged profiles: "
                              f"{', '.join(available_profiles())})")
        return p.resolve()
    p = PROFILE_DIR / f"{s}.yaml"
    if not p.is_file():
        close = difflib.get_close_matches(s, available_profiles(), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(f"unknown profile {s!r}: expected one of {', '.join(available_profiles())} "
                          f"or the path of a .yaml profile file.{hint}")
    return p


#: Groups of parameters a profile may give as nested mappings (``method: {alpha: 0.5}``).
_GROUPS = ("method", "classifier", "comparison", "evaluation", "llm")


def _flat_items(mapping: Mapping, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """``(dotted key, value)`` of a mapping whose groups may be nested mappings or dotted keys."""
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and k in _GROUPS:
            yield from _flat_items(v, key + ".")
        else:
            yield key, v


def _profile_values(values: Mapping, place: str, problems: list[str]) -> dict[str, Any]:
    """Dotted key -> value of a profile's parameters; every problem (unknown key, secret, a key given twice) noted."""
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in _flat_items(dict(values)):
        if not isinstance(key, str):
            problems.append(f"{place}: key {key!r} is not a string (quote it)")
            continue
        if key in RUNNER_KEYS:
            problems.append(f"{key!r} ({place}) cannot be set in a profile: {RUNNER_KEYS[key]}")
            continue
        if looks_like_secret_value(value):
            problems.append(secret_value_message(key, place))
            continue
        try:
            full = resolve_key(key, place)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if full in out:
            problems.append(f"{place}: {full!r} is given twice (as {given_as[full]!r} and as {key!r}); "
                            f"keep one")
            continue
        out[full], given_as[full] = value, key
    return out


def _notebook_sections(raw, where: str, problems: list[str]) -> dict[str, dict]:
    """A profile's ``notebooks:`` section: notebook number -> its parameter overrides."""
    notebooks: dict[str, dict] = {}
    if raw is None:
        return notebooks
    if not isinstance(raw, dict):
        problems.append(f"{where}: 'notebooks' must map notebook numbers to parameter mappings, "
                        f"e.g. notebooks: {{\"03\": {{n_test: 500}}}}; got {raw!r}")
        return notebooks
    for nb, values in raw.items():
        try:
            num = notebook_number(nb)
        except ConfigError as exc:
            problems.append(f"{where}: notebooks: {exc}")
            continue
        if not isinstance(values, dict):
            problems.append(f"{where}: notebooks: {nb!r} must be a mapping of parameter -> value, got {values!r}")
            continue
        notebooks.setdefault(num, {}).update(_profile_values(values, f"{where}, notebooks: \"{num}\"", problems))
    return notebooks


def _number_list(data: Mapping, key: str, where: str, problems: list[str]) -> tuple[str, ...] | None:
    """The notebook numbers listed under ``key`` (``skip``), or None when the key is absent."""
    if key not in data or data[key] is None:
        return None if key not in data else ()
    raw = data[key]
    out = []
    for x in (raw if isinstance(raw, list) else [raw]):
        try:
            out.append(notebook_number(x))
        except ConfigError as exc:
            problems.append(f"{where}: {key}: {exc}")
    return tuple(out)


def _required_keys(raw, where: str, problems: list[str]) -> list[str]:
    """The parameters a profile requires from the user, each a known parameter (its full dotted key)."""
    raw = [raw] if isinstance(raw, str) else (raw or [])
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        problems.append(f"{where}: 'required' must be a list of parameter names, got {raw!r}")
        return []
    out = []
    for key in raw:
        try:
            out.append(resolve_key(key, f"{where}, required"))
        except ConfigError as exc:
            problems.append(str(exc))
    return out


def _load_profile(name_or_path, chain: tuple[Path, ...], relative_to: Path | None = None) -> Profile:
    path = _find_profile_file(name_or_path, relative_to)
    if path in chain:
        raise ConfigError(f"profile {path}: 'extends' forms a cycle: {' -> '.join(map(str, chain + (path,)))}")
    data = read_yaml(path)
    data = {} if data is None else data
    where = str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"profile {where}: expected a mapping of parameter -> value at the top level, "
                          f"got {type(data).__name__}")
    problems: list[str] = []
    params = _profile_values({k: v for k, v in data.items() if k not in PROFILE_META_KEYS}, where, problems)
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: 'description' must be a string, got {description!r}")
        description = ""
    notebooks = _notebook_sections(data.get("notebooks"), where, problems)
    skip = _number_list(data, "skip", where, problems)
    required = _required_keys(data.get("required"), where, problems)
    base = None
    if "extends" in data:
        ext = data["extends"]
        if not isinstance(ext, str) or not ext:
            problems.append(f"{where}: 'extends' must be a profile name or a path, got {ext!r}")
        else:
            try:
                base = _load_profile(ext, chain + (path,), relative_to=path.parent)
            except ConfigError as exc:
                problems.append(f"{where}: extends {ext!r}: {exc}")
    if problems:
        raise ConfigError(f"profile {where}: " + (problems[0] if len(problems) == 1 else
                                                   f"{len(problems)} problems:\n  - " + "\n  - ".join(problems)))
    origins = {k: where for k in params}
    if base is not None:
        params, origins = {**base.params, **params}, {**base.origins, **origins}
        nbs = {k: dict(v) for k, v in base.notebooks.items()}
        for k, v in notebooks.items():
            nbs.setdefault(k, {}).update(v)
        notebooks = nbs
        skip = base.skip if skip is None else skip
        required = list(dict.fromkeys(list(base.required) + list(required)))
        description = description or base.description
    return Profile(name=profile_name(path), path=path, params=params, notebooks=notebooks, skip=tuple(skip or ()),
                   required=tuple(required), description=description, origins=origins)


#: What a profile's name (its file's name without ``.yaml``) may be: it names the results folder.
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def profile_name(path: Path) -> str:
    """The profile's name, its file's stem, checked: it becomes the results folder ``results/<name>``."""
    name = path.stem
    if not PROFILE_NAME.match(name):
        raise ConfigError(f"profile {path}: its name {name!r} (the file name without .yaml) names the results folder "
                          f"results/<name>, so it must start with a letter or digit and hold only letters, digits, "
                          f"'.', '-' and '_'; rename the file, e.g. my-profile.yaml")
    return name


# ---------------------------------------------------------------------------------------------
# overrides and resolution
# ---------------------------------------------------------------------------------------------
def parse_set(items: Iterable[str] | None) -> dict[str, Any]:
    """Parse ``--set key=value`` items (value read with ``yaml.safe_load``; empty value = ``""``)."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value (e.g. --set corpus_size=1000)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: the key is empty; expected key=value")
        if is_secret_name(key.split(".")[-1]):
            raise ConfigError(f"{key!r} (--set {key}=...) looks like a secret and is refused: secrets come from the "
                              f"environment only (e.g. OPENAI_API_KEY for corpus_generator=openai) and must never "
                              f"be parameters, because parameters are stored in every executed notebook")
        if raw.strip() == "":
            value = ""
        else:
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise ConfigError(f"--set {item!r}: the value is not valid YAML: {' '.join(str(exc).split())}") from None
        out[key] = value
    return out


def resolve(profile: Profile | str | os.PathLike, notebooks: Sequence[str | os.PathLike],
            overrides: Mapping[str, Any] | None = None, *, out_dir: str | os.PathLike | None = None,
            check_required: bool = True) -> dict[Path, dict[str, Any]]:
    """Validate a profile and overrides; return notebook path -> the values papermill injects.

    Each value dict holds ``profile``, ``out_dir`` and ``params`` (the full parameter tree, with
    the profile, its ``notebooks:`` section and the overrides applied). ``notebooks`` should be
    every numbered notebook; those the profile skips are left out. Raises :class:`ConfigError`
    listing every problem; the resolved :class:`Params` of each notebook is in ``_params``.
    """
    prof = load_profile(profile)
    paths = [Path(p) for p in notebooks]
    problems: list[str] = []
    by_number: dict[str, Path] = {}
    for p in paths:
        try:
            num = notebook_number(p)
        except ConfigError:
            problems.append(f"notebook {p.name}: its name must start with a two-digit number (03_name.ipynb)")
            continue
        if num in by_number:
            problems.append(f"notebooks {by_number[num].name} and {p.name} share the number {num}")
        by_number[num] = p
    packaged = {q.name[:2] for q in (Path(__file__).resolve().parents[3] / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for num in prof.skip:
        if num not in by_number and num not in packaged:   # a packaged profile may skip a notebook another folder lacks
            problems.append(f"{prof.where()}: skip: there is no notebook {num} "
                            f"(notebooks: {', '.join(sorted(by_number)) or 'none'})")
    global_over: dict[str, tuple[Any, str]] = {}
    nb_over: dict[str, dict[str, tuple[Any, str]]] = {}
    for key, value in dict(overrides or {}).items():
        m = re.fullmatch(r"(\d+)\.(.+)", key)
        where = f"--set {key}"
        target = nb_over.setdefault(f"{int(m.group(1)):02d}", {}) if m else global_over
        name = m.group(2) if m else key
        if m and f"{int(m.group(1)):02d}" not in by_number:
            problems.append(f"{where}: there is no notebook {int(m.group(1)):02d} "
                            f"(notebooks: {', '.join(sorted(by_number)) or 'none'})")
            continue
        if name in RUNNER_KEYS:
            problems.append(f"{name!r} ({where}) cannot be set: {RUNNER_KEYS[name]}")
            continue
        try:
            target[resolve_key(name, where)] = (value, where)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(_summary(prof, problems))

    out_dir_value = str(Path(out_dir).expanduser().absolute()) if out_dir is not None else ""
    skipped = {by_number.get(n) for n in prof.skip}
    resolved: dict[Path, dict[str, Any]] = {}
    seen_messages: set[str] = set()
    for p in paths:
        if p in skipped:
            continue
        num = notebook_number(p)
        tree: dict = {}
        origins: dict[str, str] = {}
        layers = [(k, v, prof.origins.get(k, prof.where())) for k, v in prof.params.items()]
        layers += [(k, v, f"{prof.where()}, notebooks: \"{num}\"") for k, v in prof.notebooks.get(num, {}).items()]
        layers += [(k, v, w) for k, (v, w) in global_over.items()]
        layers += [(k, v, w) for k, (v, w) in nb_over.get(num, {}).items()]
        for key, value, where in layers:
            set_path(tree, key, value)
            origins[key] = where
        try:
            params = params_from_tree(absolutize(tree), origins)
        except ConfigError as exc:
            text = str(exc)
            if text not in seen_messages:
                seen_messages.add(text)
                problems.append(text)
            continue
        resolved[p] = {"profile": prof.name, "out_dir": out_dir_value, "params": params.to_tree(),
                       "_params": params, "_origins": origins}
    if check_required:
        for key in prof.required:
            values = [_dotted(v["_params"], key) for v in resolved.values()]
            if not values or any(v in ("", None) for v in values):
                hint = " --root PATH or" if key == "data_root" else ""
                problems.append(f"profile {prof.name!r} ({prof.where()}) needs {key!r}: pass{hint} "
                                f"--set {key}=VALUE on the command line")
    if problems:
        raise ConfigError(_summary(prof, problems))
    return resolved


def _dotted(obj, key: str):
    """The value of dotted ``key`` (``llm.model``) in a :class:`~lcmc_core.experiments.params.Params`."""
    for part in key.split("."):
        obj = getattr(obj, part, None)
    return obj


def _summary(prof: Profile, problems: list[str]) -> str:
    head = f"invalid parameters for profile {prof.name!r}; nothing was run"
    if len(problems) == 1:
        return f"{head}: {problems[0]}"
    return f"{head}. {len(problems)} problems:\n  - " + "\n  - ".join(problems)


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; any other value is returned unchanged."""
    if device != "auto":
        return device
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"


TOY_DATASETS = ("emoji-voc",)
TOY_PROFILES = ("toy", "smoke", "study")


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
