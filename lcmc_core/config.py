"""Run profiles: which papermill parameters each numbered notebook gets, validated before any run.

The notebooks in ``notebooks/`` are the product; each declares its parameters, with defaults, in
the cell tagged ``parameters`` (read with :func:`papermill.inspect_notebook`). A *profile* is a
YAML file that overrides some of them, in the spirit of nanoGPT's configurator: defaults live in
the notebook, the profile only says what differs. Packaged profiles live in
``lcmc_core/profiles/`` (``toy``, ``smoke``, ``voc2007``, ``coco2014``, ``nuswide``); any other
YAML file can be given by path. A profile file holds::

    description: "one line shown by --list"       # optional
    extends: toy                                  # optional: start from another profile
    dataset: emoji-voc                            # parameter -> value, for every notebook declaring it
    corpus_size: 20000
    notebooks:                                    # optional per-notebook overrides (quote the numbers)
      "03": {n_test: 500}
    skip: ["00"]                                  # optional: notebooks this profile does not run
    required: [data_root]                         # optional: parameters the user must give

Values are applied in this order, later winning: notebook default, profile (its ``extends`` chain
first), the profile's ``notebooks:`` section, command-line ``--set key=value`` (``--set
03.key=value`` for one notebook), then the two values the runner sets itself: ``profile`` (the
profile's name) and ``out_dir`` (the results folder). :func:`resolve` checks everything before any
notebook starts and reports every problem at once, naming the key, where it came from and what was
expected:

- a key that no notebook declares is refused (with close matches and the known keys);
- a value must have the type of the notebook's default (or of its annotation, ``x: float = 0``):
  an int is accepted where a float is expected, a bool is never an int; a ``None`` default accepts
  anything;
- a key that looks like a secret (``api_key``, ``*_key``, ``*token*``, ``*secret*``,
  ``password``) or a value that looks like an API key is refused: secrets come from the
  environment only (e.g. ``OPENAI_API_KEY``) and would otherwise be stored in every executed
  notebook.

Path-like values (keys ending in ``_root``, ``_dir``, ``_path`` or ``_file``, and values starting
with ``./``, ``../`` or ``~``) are made absolute against the current folder, since notebooks run
in their own folder.
"""
from __future__ import annotations

import ast
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import yaml

__all__ = ["Profile", "Parameter", "ConfigError", "PROFILE_DIR", "RUNNER_KEYS", "COMMON_PARAMETERS",
           "available_profiles", "load_profile", "notebook_parameters", "notebook_number",
           "parse_set", "resolve", "is_secret_name", "looks_like_secret_value", "secret_env_values",
           "redact", "resolve_device"]

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

# Keys of a profile file that are not parameters.
PROFILE_META_KEYS = ("description", "extends", "notebooks", "skip", "required")
# Parameters the runner sets itself; a profile or --set may not set them.
RUNNER_KEYS = {
    "profile": "it is the profile's name (the YAML file's name)",
    "out_dir": "it is the results folder: use --out to change it",
}

# The parameter names the packaged profiles use. Every name must be declared (with a default of
# this type) in the `parameters` cell of each notebook that needs it; tests check the packaged
# profiles against the notebooks in notebooks/.
COMMON_PARAMETERS: dict[str, tuple[type, str]] = {
    "profile": (str, "name of the profile (set by the runner)"),
    "out_dir": (str, "results folder: figures/ and tables/ go there (set by the runner, absolute)"),
    "dataset": (str, "emoji-voc | voc2007 | coco2014 | nuswide"),
    "data_root": (str, "dataset folder; '' for the toy world"),
    "clip_model": (str, "open_clip model name (RN50, or lcmc-toy-rn for the toy CLIP)"),
    "clip_pretrained": (str, "open_clip pretrained tag or checkpoint file; 'toy' = toy CLIP built by the package"),
    "toy_size": (str, "toy | smoke: sizes of the toy world and toy CLIP pretraining"),
    "toy_variant": (str, "toy CLIP variant used downstream (lcmc_core.toyclip.VARIANTS)"),
    "corpus_size": (int, "number of generated training sentences"),
    "corpus_generator": (str, "template | openai | transformers (openai reads OPENAI_API_KEY from the environment)"),
    "seed": (int, "random seed"),
    "device": (str, "cpu | cuda | auto (see lcmc_core.config.resolve_device)"),
    "n_test": (int, "number of test images; 0 = the whole test split"),
    "missing_images": (str, "fail | skip: what dataset loaders do about missing image files"),
}

# Secret detection. A key is secret-looking if it ends in "key" as a word (api_key, *_key), or
# contains "secret", "password", "passwd", "apikey", "credential", or "token" (but not "tokens",
# as in max_tokens, nor "tokeniz..."/"tokenis...", as in tokenizer).
_SECRET_SUBSTRINGS = ("secret", "password", "passwd", "apikey", "credential")
_TOKEN = re.compile(r"token(?!s(?:$|[^a-z])|i[sz])")
_SECRET_VALUE = re.compile(r"^(sk-|sk_|hf_|ghp_|gho_|ghs_|github_pat_|xox[abpr]-|AKIA|glpat-)[A-Za-z0-9_\-]{16,}$")
_PATH_SUFFIXES = ("_root", "_dir", "_path", "_file")


class ConfigError(ValueError):
    """A profile, a notebook's parameters cell or a command-line override is invalid."""


@dataclass(frozen=True)
class Parameter:
    """One parameter declared in a notebook's ``parameters`` cell."""

    name: str
    default: Any           # the default as a Python value (None when it is not a literal)
    source: str            # the default as written in the cell
    type_name: str         # int | float | str | bool | list | dict | any
    optional: bool         # whether None is accepted
    literal: bool          # whether the default is a Python literal (so it can be passed back)
    help: str = ""


@dataclass
class Profile:
    """A loaded profile: parameter values, per-notebook overrides, skipped and required keys."""

    name: str
    path: Path | None
    params: dict[str, Any] = field(default_factory=dict)
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    description: str = ""
    # where each top-level value came from (the file that set it, after `extends`)
    origins: dict[str, str] = field(default_factory=dict)

    def where(self) -> str:
        """The profile's file, for messages."""
        return str(self.path) if self.path else f"profile {self.name!r}"


# ---------------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------------

def is_secret_name(key: str) -> bool:
    """Whether a parameter (or environment variable) name looks like it holds a secret."""
    k = str(key).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", k) if w]
    if words and words[-1] == "key":
        return True
    if any(s in k for s in _SECRET_SUBSTRINGS):
        return True
    return bool(_TOKEN.search(k))


def looks_like_secret_value(value: Any) -> bool:
    """Whether a value looks like an API key or access token (``sk-...``, ``hf_...``, ``ghp_...``)."""
    return isinstance(value, str) and bool(_SECRET_VALUE.match(value.strip()))


def _secret_message(key: str, where: str) -> str:
    return (f"{key!r} ({where}) looks like a secret and is refused: secrets come from the environment "
            f"only (e.g. OPENAI_API_KEY for corpus_generator=openai) and must never be papermill "
            f"parameters, because parameters are stored in every executed notebook and in the manifest")


def secret_env_values(min_length: int = 8) -> list[str]:
    """Values of environment variables whose names look secret (for :func:`redact`), longest first."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and v and len(v) >= min_length}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """Replace every secret value (default: :func:`secret_env_values`) in ``text``, also in JSON-escaped form."""
    import json
    for s in (secret_env_values() if secrets is None else secrets):
        text = text.replace(s, "<redacted>")
        escaped = json.dumps(s)[1:-1]
        if escaped != s:
            text = text.replace(escaped, "<redacted>")
    return text


# ---------------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------------

def available_profiles() -> list[str]:
    """Names of the packaged profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def notebook_number(name: Union[str, int, Path]) -> str:
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


def load_profile(name_or_path: Union[str, os.PathLike, "Profile"]) -> Profile:
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


def _load_profile(name_or_path, chain: tuple[Path, ...], relative_to: Path | None = None) -> Profile:
    path = _find_profile_file(name_or_path, relative_to)
    if path in chain:
        raise ConfigError(f"profile {path}: 'extends' forms a cycle: "
                          f"{' -> '.join(map(str, chain + (path,)))}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"profile {path}: not valid YAML: {exc}") from exc
    data = {} if data is None else data
    where = str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"profile {where}: expected a mapping of parameter -> value at the top level, "
                          f"got {type(data).__name__}")
    problems: list[str] = []
    for k in data:
        if not isinstance(k, str):
            problems.append(f"{where}: key {k!r} is not a string (quote it)")

    def check_key(key: str, value, place: str) -> bool:
        if is_secret_name(key):
            problems.append(_secret_message(key, place))
            return False
        if looks_like_secret_value(value):
            problems.append(f"the value of {key!r} ({place}) looks like an API key and is refused: secrets "
                            f"come from the environment only (e.g. OPENAI_API_KEY), never from profiles")
            return False
        if key in RUNNER_KEYS:
            problems.append(f"{key!r} ({place}) cannot be set in a profile: {RUNNER_KEYS[key]}")
            return False
        return True

    params = {}
    for k, v in data.items():
        if isinstance(k, str) and k not in PROFILE_META_KEYS and check_key(k, v, where):
            params[k] = v

    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: 'description' must be a string, got {description!r}")
        description = ""

    notebooks: dict[str, dict] = {}
    raw_nbs = data.get("notebooks") or {}
    if not isinstance(raw_nbs, dict):
        problems.append(f"{where}: 'notebooks' must map notebook numbers to parameter mappings, "
                        f"e.g. notebooks: {{\"03\": {{n_test: 500}}}}; got {raw_nbs!r}")
        raw_nbs = {}
    for nb, values in raw_nbs.items():
        try:
            num = notebook_number(nb)
        except ConfigError as exc:
            problems.append(f"{where}: notebooks: {exc}")
            continue
        if not isinstance(values, dict):
            problems.append(f"{where}: notebooks: {nb!r} must be a mapping of parameter -> value, got {values!r}")
            continue
        place = f"{where}, notebooks: \"{num}\""
        notebooks.setdefault(num, {}).update(
            {k: v for k, v in values.items() if isinstance(k, str) and check_key(k, v, place)})

    def number_list(key: str) -> tuple[str, ...]:
        raw = data.get(key)
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raw = [raw]
        out = []
        for x in raw:
            try:
                out.append(notebook_number(x))
            except ConfigError as exc:
                problems.append(f"{where}: {key}: {exc}")
        return tuple(out)

    skip = number_list("skip") if "skip" in data else None
    required = data.get("required") or []
    if isinstance(required, str):
        required = [required]
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        problems.append(f"{where}: 'required' must be a list of parameter names, got {required!r}")
        required = []

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
        raise ConfigError(f"profile {where}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))

    origins = {k: where for k in params}
    if base is not None:
        merged = dict(base.params)
        merged.update(params)
        origins = {**base.origins, **origins}
        nbs = {k: dict(v) for k, v in base.notebooks.items()}
        for k, v in notebooks.items():
            nbs.setdefault(k, {}).update(v)
        notebooks = nbs
        params = merged
        skip = base.skip if skip is None else skip
        required = list(dict.fromkeys(list(base.required) + list(required)))
        description = description or base.description
    return Profile(name=path.stem, path=path, params=params, notebooks=notebooks, skip=tuple(skip or ()),
                   required=tuple(required), description=description, origins=origins)


# ---------------------------------------------------------------------------------------------
# notebook parameters
# ---------------------------------------------------------------------------------------------

_TYPE_NAMES = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "list",
               "tuple": "list", "dict": "dict", "List": "list", "Tuple": "list", "Dict": "dict",
               "Sequence": "list", "Mapping": "dict", "Any": "any"}


def _parse_annotation(ann: str) -> tuple[str | None, bool]:
    """(type name or None if unknown, optional) from an annotation such as ``Optional[int]``."""
    a = ann.replace(" ", "")
    optional = False
    m = re.fullmatch(r"(?:typing\.)?Optional\[(.*)\]", a)
    if m:
        a, optional = m.group(1), True
    parts = [p for p in re.split(r"\|", a) if p]
    if len(parts) > 1 and "None" in parts:
        optional = True
        parts = [p for p in parts if p != "None"]
    m = re.fullmatch(r"(?:typing\.)?Union\[(.*)\]", a)
    if m:
        inner = m.group(1).split(",")
        if "None" in inner:
            optional = True
        parts = [p for p in inner if p != "None"]
    if len(parts) != 1:
        return "any", optional
    base = re.sub(r"^typing\.", "", parts[0]).split("[", 1)[0]
    return _TYPE_NAMES.get(base, "any"), optional


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "any"


def notebook_parameters(notebook_path: Union[str, os.PathLike]) -> dict[str, Parameter]:
    """The parameters a notebook declares in its ``parameters`` cell: name -> :class:`Parameter`."""
    import papermill

    path = Path(notebook_path)
    if not path.is_file():
        raise ConfigError(f"notebook {path} does not exist")
    try:
        raw = papermill.inspect_notebook(str(path))
    except Exception as exc:  # papermill raises various errors on broken notebooks
        raise ConfigError(f"notebook {path}: cannot read its parameters cell: {type(exc).__name__}: {exc}") from exc
    out = {}
    for name, info in raw.items():
        src = str(info.get("default", ""))
        try:
            value, literal = ast.literal_eval(src), True
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value, literal = None, False
        ann = str(info.get("inferred_type_name") or "None")
        if ann != "None":
            type_name, optional = _parse_annotation(ann)
            optional = optional or (literal and value is None)
        elif literal and value is not None:
            type_name, optional = _type_of(value), False
        else:  # None default or an expression: anything goes
            type_name, optional = "any", True
        if isinstance(value, tuple):
            value = list(value)
        out[name] = Parameter(name=name, default=value, source=src, type_name=type_name,
                              optional=optional, literal=literal, help=str(info.get("help") or ""))
    return out


def _check_value(param: Parameter, value: Any) -> tuple[bool, Any]:
    """(ok, value converted to the parameter's type: int -> float where a float is expected)."""
    t = param.type_name
    if value is None:
        return param.optional or t == "any", None
    if t == "any":
        return True, value
    if t == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if t == "bool":
        return isinstance(value, bool), value
    if t == "str":
        return isinstance(value, str), value
    if t == "list":
        return isinstance(value, (list, tuple)), list(value) if isinstance(value, (list, tuple)) else value
    if t == "dict":
        return isinstance(value, dict), value
    return True, value


def _coerce_cli(param: Parameter, value: Any) -> Any:
    """Command-line strings that YAML 1.1 leaves as str (``1e-3``) become numbers where one is expected."""
    if isinstance(value, str) and param.type_name in ("float", "int"):
        try:
            f = float(value)
        except ValueError:
            return value
        if param.type_name == "float":
            return f
        if f.is_integer() and re.fullmatch(r"[+-]?\d+(\.0*)?([eE]\+?\d+)?", value.strip()):
            return int(f)
    return value


def _type_error(key: str, param: Parameter, value: Any, notebook: str, where: str) -> str:
    expected = param.type_name + (" or None" if param.optional else "")
    msg = (f"{key!r} ({where}): expected {expected} (the type of the default {param.source} in "
           f"{notebook}), got {type(value).__name__} {value!r}")
    if param.type_name == "str" and isinstance(value, (bool, int, float)):
        msg += f"; YAML read it as {type(value).__name__}: quote it, e.g. {key}: \"{value}\""
    if param.type_name == "int" and isinstance(value, float):
        msg += "; an integer is expected"
    return msg


def _absolutize(key: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    if key.endswith(_PATH_SUFFIXES) or value.startswith(("./", "../", "~")):
        return str(Path(value).expanduser().absolute())
    return value


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
            raise ConfigError(_secret_message(key, f"--set {key}=..."))
        if raw.strip() == "":
            value = ""
        else:
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise ConfigError(f"--set {item!r}: the value is not valid YAML: {exc}") from exc
        out[key] = value
    return out


def _close(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def resolve(profile: Union[Profile, str, os.PathLike], notebooks: Sequence[Union[str, os.PathLike]],
            overrides: Mapping[str, Any] | None = None, *, out_dir: Union[str, os.PathLike, None] = None,
            check_required: bool = True) -> dict[Path, dict[str, Any]]:
    """Validate a profile and overrides against the notebooks; return notebook path -> parameters to pass.

    ``notebooks`` should be every numbered notebook (not only those to run): a key is unknown when
    no notebook declares it. Notebooks the profile skips are left out of the result. Each
    notebook's parameters hold every declared parameter with a literal default, updated by the
    profile, its ``notebooks:`` section, the overrides (``key`` or ``"NN.key"``) and ``profile``
    / ``out_dir``. Raises :class:`ConfigError` listing every problem.
    """
    prof = load_profile(profile)
    where_profile = prof.where()
    overrides = dict(overrides or {})
    paths = [Path(p) for p in notebooks]
    problems: list[str] = []

    declared: dict[Path, dict[str, Parameter]] = {}
    by_number: dict[str, Path] = {}
    for p in paths:
        try:
            declared[p] = notebook_parameters(p)
        except ConfigError as exc:
            problems.append(str(exc))
            declared[p] = {}
        try:
            num = notebook_number(p)
        except ConfigError:
            problems.append(f"notebook {p.name}: its name must start with a two-digit number (03_name.ipynb)")
            continue
        if num in by_number:
            problems.append(f"notebooks {by_number[num].name} and {p.name} share the number {num}")
        by_number[num] = p
    for p, params in declared.items():
        for key in params:
            if is_secret_name(key):
                problems.append(f"notebook {p.name} declares the parameter {key!r}, which looks like a secret: "
                                f"secrets come from the environment only (e.g. OPENAI_API_KEY), never from "
                                f"papermill parameters (they are stored in every executed notebook); "
                                f"remove it from the parameters cell and read os.environ in the code")
    known = sorted({k for params in declared.values() for k in params})
    known_text = ", ".join(known) if known else "(none)"

    for num in prof.skip:
        if num not in by_number:
            problems.append(f"{where_profile}: skip: there is no notebook {num} "
                            f"(notebooks: {', '.join(sorted(by_number)) or 'none'})")

    # Split overrides into global and per-notebook ("03.key").
    global_over: dict[str, Any] = {}
    nb_over: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        m = re.fullmatch(r"(\d+)\.(.+)", key)
        if m:
            nb_over.setdefault(f"{int(m.group(1)):02d}", {})[m.group(2)] = value
        else:
            global_over[key] = value

    # (key, value, where, numbers it applies to or None for all, from_cli)
    layers: list[tuple[str, Any, str, str | None, bool]] = []
    for k, v in prof.params.items():
        layers.append((k, v, prof.origins.get(k, where_profile), None, False))
    for num, values in sorted(prof.notebooks.items()):
        for k, v in values.items():
            layers.append((k, v, f"{where_profile}, notebooks: \"{num}\"", num, False))
    for k, v in global_over.items():
        layers.append((k, v, f"--set {k}", None, True))
    for num, values in sorted(nb_over.items()):
        for k, v in values.items():
            layers.append((k, v, f"--set {num}.{k}", num, True))

    runner_values: dict[str, Any] = {"profile": prof.name}
    if out_dir is not None:
        runner_values["out_dir"] = str(Path(out_dir).expanduser().absolute())

    merged: dict[Path, dict[str, Any]] = {
        p: {k: prm.default for k, prm in params.items() if prm.literal} for p, params in declared.items()}
    for key, value, where, num, from_cli in layers:
        if is_secret_name(key):
            problems.append(_secret_message(key, where))
            continue
        if looks_like_secret_value(value):
            problems.append(f"the value of {key!r} ({where}) looks like an API key and is refused: secrets "
                            f"come from the environment only (e.g. OPENAI_API_KEY)")
            continue
        if key in RUNNER_KEYS:
            problems.append(f"{key!r} ({where}) cannot be set: {RUNNER_KEYS[key]}")
            continue
        if num is not None:
            if num not in by_number:
                problems.append(f"{where}: there is no notebook {num} (notebooks: "
                                f"{', '.join(sorted(by_number)) or 'none'})")
                continue
            targets = [by_number[num]]
            if key not in declared[targets[0]]:
                nb_known = sorted(declared[targets[0]])
                problems.append(f"unknown parameter {key!r} ({where}): notebook {targets[0].name} does not "
                                f"declare it.{_close(key, nb_known)} Its parameters: {', '.join(nb_known) or '(none)'}")
                continue
        else:
            targets = [p for p in paths if key in declared[p]]
            if not targets:
                problems.append(f"unknown parameter {key!r} ({where}): no notebook declares it."
                                f"{_close(key, known)} Known parameters: {known_text}")
                continue
        bad: list[tuple[Path, Parameter]] = []
        for p in targets:
            param = declared[p][key]
            v = _coerce_cli(param, value) if from_cli else value
            ok, v = _check_value(param, v)
            if not ok:
                bad.append((p, param))
                continue
            merged[p][key] = _absolutize(key, v)
        if bad:  # one message per key and source, naming every notebook that refused it
            names = ", ".join(p.name for p, _ in bad)
            problems.append(_type_error(key, bad[0][1], value, names, where))

    for p, params in declared.items():
        for key, value in runner_values.items():
            if key in params:
                merged[p][key] = value

    if check_required:
        for key in prof.required:
            given = [merged[p][key] for p in paths if key in merged[p]]
            if not given or any(v in ("", None) for v in given):
                hint = " --root PATH or" if key == "data_root" else ""
                problems.append(f"profile {prof.name!r} ({where_profile}) needs {key!r}: pass{hint} "
                                f"--set {key}=VALUE on the command line")

    if problems:
        raise ConfigError(f"invalid parameters for profile {prof.name!r} ({where_profile}); nothing was run. "
                          f"{len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    skipped = {by_number.get(n) for n in prof.skip}
    return {p: merged[p] for p in paths if p not in skipped}


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; any other value is returned unchanged."""
    if device != "auto":
        return device
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
