"""The run's parameters, declared once (:class:`Params`); profiles and ``--set`` override them, checked first.

nanoGPT's configurator rule: the defaults live in one place (the dataclasses below: :class:`Params`,
with :class:`LLMParams` under ``llm``; the method's hyperparameters under ``method`` are those of the
estimator :class:`~lcmc_core.method.comc.CoMC`, read from its constructor (:class:`MethodParams`, with
the classifier's :class:`~lcmc_core.method.classifier.TrainConfig` under ``method.classifier``); the
comparison's settings under ``comparison``
(:class:`~lcmc_core.experiments.comparison.ComparisonSettings`) and the evaluation's conventions under
``evaluation`` (:class:`~lcmc_core.experiments.comparison.Evaluation`)); a profile or an
override only says what differs, and every value is checked against the type of its default and
the field's accepted range before any notebook starts. Nested keys use dots (``method.alpha``,
``method.classifier.epochs``, ``llm.model``); a name that occurs once in the tree may be given
alone (``--set alpha=0.5`` is ``method.alpha``). The notebooks receive the whole resolved tree as
one ``params`` dict (see :mod:`lcmc_core.experiments.profiles`).

Secrets never are parameters: a key that looks like one (``api_key``, ``*_token``, ...), a value
that looks like an API key and a URL with credentials are refused (:mod:`lcmc_core.secrets`).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import check_choice, check_int, check_real
from ..errors import ConfigError
from ..method.comc import CoMC, hyperparameters
from ..secrets import is_secret_name, looks_like_secret_value, secret_value_message, url_credentials_message
from .comparison import ComparisonSettings, Evaluation

__all__ = ["Params", "LLMParams", "MethodParams", "DATASETS", "DEVICES", "flatten", "leaf_index", "resolve_key",
           "params_from_tree", "set_path", "describe", "TOY_N_TEST"]

DATASETS = ("emoji-voc", "voc2007", "coco2014", "nuswide")
#: Datasets whose official CoMC class names differ from ours (text.label_sets.official_name_differences)
OFFICIAL_NAME_DATASETS = ("coco2014",)
GENERATORS = ("template", "openai", "transformers")
_DEVICE = re.compile(r"^(cpu|auto|mps|cuda(:\d+)?)$")
DEVICES = "cpu | cuda | cuda:N | mps | auto"
TOY_N_TEST = 2000  # default size of the toy world's test split
_MIN_TEST_IMAGES = 20
#: Sane limits: a seed every random generator here accepts (numpy, torch, the toy world), and a corpus far
#: beyond any paper's (the official default is 40,000; the released checkpoint suggests ~100,000).
MAX_SEED = 2**31 - 1
MAX_CORPUS_SIZE = 10_000_000
#: clip_pretrained values that are not a tag or a file: the toy CLIP trained here, or untrained weights asked for by name.
TOY_WEIGHTS, RANDOM_WEIGHTS = "toy", "random"


def _help(text: str, **kw) -> dict:
    return {"help": text, **kw}


@dataclass(frozen=True)
class LLMParams:
    """Corpus generation with an LLM (``corpus_generator`` openai or transformers); the key comes from the environment."""

    model: str = field(default="", metadata=_help("LLM name (openai) or Hugging Face id/folder (transformers)"))
    base_url: str = field(default="", metadata=_help("OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"))
    api_key_env: str = field(default="OPENAI_API_KEY",
                             metadata=_help("NAME of the environment variable holding the key (never the key)"))
    max_tokens: int = field(default=40, metadata=_help("completion tokens per sentence"))
    temperature: float = field(default=1.0, metadata=_help("sampling temperature"))
    concurrency: int = field(default=8, metadata=_help("requests in flight at once"))
    connect_timeout_s: float = field(default=10.0, metadata=_help("seconds to establish a connection"))
    read_timeout_s: float = field(default=30.0, metadata=_help("seconds to wait for an answer"))
    max_attempts: int = field(default=5, metadata=_help("attempts per request (retries on 429, 5xx, timeouts)"))
    price_prompt_per_1k: float = field(default=0.0, metadata=_help("price per 1,000 prompt tokens (0: unknown)"))
    price_completion_per_1k: float = field(default=0.0, metadata=_help("price per 1,000 completion tokens"))
    time_budget_s: float = field(default=0.0, metadata=_help("stop starting requests after this many seconds "
                                                            "(0: no limit; a rerun resumes)"))

    def __post_init__(self):
        if self.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise ConfigError("llm.api_key_env: expected the NAME of an environment variable (letters, digits, "
                             "underscores, e.g. OPENAI_API_KEY), not the key itself")
        if self.base_url:
            problem = url_credentials_message(self.base_url, "llm.base_url")
            if problem:
                raise ConfigError(problem)
            if not re.match(r"^https?://[^/\s]+", self.base_url):
                raise ConfigError(f"llm.base_url: expected an http(s) URL such as http://localhost:8000/v1, "
                                 f"got {self.base_url!r}")
        check_int("llm.max_tokens", self.max_tokens, 1)
        check_real("llm.temperature", self.temperature, 0)
        check_int("llm.concurrency", self.concurrency, 1, 256)
        check_real("llm.connect_timeout_s", self.connect_timeout_s, 0, low_open=True)
        check_real("llm.read_timeout_s", self.read_timeout_s, 0, low_open=True)
        check_int("llm.max_attempts", self.max_attempts, 1, 100)
        for name in ("price_prompt_per_1k", "price_completion_per_1k", "time_budget_s"):
            check_real(f"llm.{name}", getattr(self, name), 0)


def _method_params_class() -> type:
    """A frozen dataclass of CoMC's hyperparameters (but its seed: the run's seeds set it), built from the estimator."""
    specs = [(h.name, h.type, field(default=h.default, metadata=_help(h.help)))
             for h in hyperparameters() if h.name != "seed"]

    def __post_init__(self):
        self.estimator()  # CoMC.check_params: every range, one message naming the parameter

    def estimator(self, seed: int = 0) -> CoMC:
        """The (unfitted) CoMC estimator with these hyperparameters and ``seed``."""
        return CoMC(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, seed=seed).check_params()

    return dataclasses.make_dataclass(
        "MethodParams", specs, frozen=True,
        namespace={"__post_init__": __post_init__, "estimator": estimator, "__module__": __name__,
                   "__doc__": "CoMC's hyperparameters (``method.*``), declared by the estimator's constructor."})


#: ``method.*``: the hyperparameters of :class:`~lcmc_core.method.comc.CoMC` (its constructor declares them).
MethodParams = _method_params_class()


@dataclass(frozen=True)
class Params:
    """Every parameter of a run of the notebooks; the defaults are the toy profile's."""

    dataset: str = field(default="emoji-voc", metadata=_help("the benchmark", choices=DATASETS))
    data_root: str = field(default="", metadata=_help("folder of the dataset copy ('' for the toy world)"))
    clip_model: str = field(default="lcmc-toy-rn", metadata=_help(
        "open_clip model name (RN50-quickgelu for the paper's setting)"))
    clip_pretrained: str = field(default="toy", metadata=_help(
        "open_clip tag (openai) or weight file; 'toy' = the toy CLIP trained here; 'random' = untrained weights"))
    class_names: str = field(default="ours", metadata=_help(
        "class names in prompts and generated sentences: ours | official (the official CoMC code's, coco2014 only)",
        choices=("ours", "official")))
    toy_size: str = field(default="toy", metadata=_help("sizes of the toy world and toy CLIPs",
                                                        choices=("toy", "smoke", "study")))
    toy_variant: str = field(default="clip-like-gap", metadata=_help("toy CLIP used downstream",
                                                                     choices=("clip-like-gap", "mid-gap", "small-gap")))
    corpus_size: int = field(default=20000, metadata=_help(f"generated training sentences per seed (<= {MAX_CORPUS_SIZE:,})"))
    corpus_generator: str = field(default="template", metadata=_help(
        "template (offline) | openai | transformers", choices=GENERATORS))
    corpus_path: str = field(default="", metadata=_help("read this JSONL corpus instead of generating one"))
    seed: int = field(default=0, metadata=_help(f"the first seed (corpus, classifier, image sample; <= {MAX_SEED})"))
    n_seeds: int = field(default=1, metadata=_help("corpus and classifier seeds seed .. seed + n_seeds - 1"))
    device: str = field(default="cpu", metadata=_help(DEVICES))
    n_test: int = field(default=0, metadata=_help(f"test images: 0 = the whole split, else >= {_MIN_TEST_IMAGES}"))
    missing_images: str = field(default="fail", metadata=_help(
        "missing or unreadable images: fail, or skip (counted and listed)", choices=("fail", "skip")))
    verify_images: bool = field(default=True, metadata=_help(
        "decode every image before encoding, remembered between runs (false: header check only)"))
    batch_size: int = field(default=64, metadata=_help("images per forward pass"))
    num_workers: int = field(default=0, metadata=_help("DataLoader workers decoding images"))
    llm: LLMParams = field(default_factory=LLMParams)
    method: MethodParams = field(default_factory=MethodParams)
    comparison: ComparisonSettings = field(default_factory=ComparisonSettings)
    evaluation: Evaluation = field(default_factory=Evaluation)

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("toy_size", self.toy_size, ("toy", "smoke", "study"))
        check_choice("toy_variant", self.toy_variant, ("clip-like-gap", "mid-gap", "small-gap"))
        check_choice("corpus_generator", self.corpus_generator, GENERATORS)
        check_choice("class_names", self.class_names, ("ours", "official"))
        if self.class_names == "official" and self.dataset not in OFFICIAL_NAME_DATASETS:
            raise ConfigError(f"class_names: 'official' exists for {', '.join(OFFICIAL_NAME_DATASETS)} only (the official "
                              f"code covers COCO); dataset {self.dataset!r} has only our names: use class_names=ours")
        check_choice("missing_images", self.missing_images, ("fail", "skip"))
        if not _DEVICE.match(self.device):
            raise ConfigError(f"device: expected one of {DEVICES}, got {self.device!r}")
        check_int("corpus_size", self.corpus_size, 0 if self.corpus_path else 1, MAX_CORPUS_SIZE)
        check_int("seed", self.seed, 0, MAX_SEED)
        if self.seed + self.n_seeds - 1 > MAX_SEED:
            raise ConfigError(f"seed: seed + n_seeds - 1 must stay <= {MAX_SEED}, got {self.seed} + {self.n_seeds} - 1")
        if not self.clip_pretrained.strip():
            raise ConfigError(f"clip_pretrained: expected an open_clip tag (e.g. 'openai'), a weights file, "
                              f"{TOY_WEIGHTS!r} (the toy CLIP) or {RANDOM_WEIGHTS!r} (untrained weights, only when asked "
                              f"for by name), got an empty value (an unset shell variable?)")
        check_int("n_seeds", self.n_seeds, 1, 100)
        check_int("batch_size", self.batch_size, 1)
        check_int("num_workers", self.num_workers, 0, 256)
        if self.n_test != 0:
            check_int("n_test", self.n_test, _MIN_TEST_IMAGES)
        if not self.clip_model:
            raise ConfigError("clip_model: expected an open_clip model name such as 'RN50-quickgelu'")
        if self.dataset == "emoji-voc" and self.data_root:
            raise ConfigError("data_root: the toy world (dataset emoji-voc) is generated and needs no data_root")

    @property
    def seeds(self) -> list[int]:
        """The seeds of the run: ``seed .. seed + n_seeds - 1``."""
        return list(range(self.seed, self.seed + self.n_seeds))

    def to_tree(self) -> dict:
        """The parameters as a nested dict of plain values (what notebooks receive)."""
        return _plain(dataclasses.asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# the tree of fields
# ---------------------------------------------------------------------------------------------
def _fields(cls) -> dict[str, tuple[Any, dataclasses.Field]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls)}


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def flatten(cls=Params, prefix: str = "") -> dict[str, tuple[Any, Any, str]]:
    """Every leaf parameter: dotted key -> (type hint, default, help)."""
    out = {}
    for name, (hint, f) in _fields(cls).items():
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            out.update(flatten(hint, key + "."))
        else:
            out[key] = (hint, _default(f), f.metadata.get("help", ""))
    return out


def leaf_index(cls=Params) -> dict[str, list[str]]:
    """Leaf name -> the dotted keys ending in it (``alpha`` -> ``["method.alpha"]``)."""
    index: dict[str, list[str]] = {}
    for key in flatten(cls):
        index.setdefault(key.rsplit(".", 1)[-1], []).append(key)
    return index


def resolve_key(key: str, where: str, cls=Params) -> str:
    """The dotted key ``key`` names (full, or a unique leaf name); a :class:`ConfigError` otherwise."""
    leaves = flatten(cls)
    if key in leaves:
        return key
    groups = {k.rsplit(".", 1)[0] for k in leaves if "." in k}
    if key in groups:
        raise ConfigError(f"{key!r} ({where}) is a group of parameters, not one: give one of "
                          f"{', '.join(k for k in leaves if k.startswith(key + '.'))}")
    if is_secret_name(key.rsplit(".", 1)[-1]):
        raise ConfigError(f"{key!r} ({where}) looks like a secret and is refused: secrets come from the "
                          f"environment only (e.g. OPENAI_API_KEY for corpus_generator=openai) and must never be "
                          f"parameters, because parameters are stored in every executed notebook and the manifest")
    matches = leaf_index(cls).get(key, [])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"{key!r} ({where}) is ambiguous: it may be {' or '.join(matches)}; give the full key")
    candidates = list(dict.fromkeys(list(leaves) + list(leaf_index(cls))))
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    top = [k for k in leaves if "." not in k] + sorted({k.rsplit(".", 1)[0] + ".*" for k in leaves if "." in k})
    raise ConfigError(f"unknown parameter {key!r} ({where}).{hint} Known parameters: {', '.join(top)} "
                      f"(python -m lcmc_core reproduce --list shows every one with its value)")


def _type_name(hint) -> str:
    if dataclasses.is_dataclass(hint):
        return "mapping"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} {' and '.join(_type_name(a) for a in args)}"
    return {type(None): "null", int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def coerce(hint, value, key: str, where: str, from_cli: bool = False):
    """``value`` converted to the type ``hint`` (int -> float, list -> tuple); a :class:`ConfigError` if it has another type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(arg, value, key, where, from_cli)
            except ConfigError:
                continue
        raise _type_problem(key, hint, value, where)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise _type_problem(key, hint, value, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], v, key, where, from_cli) for v in value)
        if len(value) != len(args):
            raise _type_problem(key, hint, value, where)
        return tuple(coerce(a, v, key, where, from_cli) for a, v in zip(args, value))
    if from_cli and isinstance(value, str) and hint in (int, float):
        value = _number_from_cli(value, hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise _type_problem(key, hint, value, where)
    return value


def _number_from_cli(value: str, hint):
    """Command-line strings YAML 1.1 leaves as text (``1e-3``) become numbers where one is expected."""
    try:
        f = float(value)
    except ValueError:
        return value
    if hint is float:
        return f
    if f.is_integer() and re.fullmatch(r"[+-]?\d+(\.0*)?([eE]\+?\d+)?", value.strip()):
        return int(f)
    return value


def _type_problem(key: str, hint, value, where: str) -> ConfigError:
    msg = f"{key!r} ({where}): expected {_type_name(hint)}, got {type(value).__name__} {value!r}"
    if hint is str and isinstance(value, (bool, int, float)):
        msg += f"; YAML read it as {type(value).__name__}: quote it, e.g. {key}: \"{value}\""
    if hint is int and isinstance(value, float):
        msg += "; an integer is expected"
    return ConfigError(msg)


def set_path(tree: dict, key: str, value) -> None:
    """Set dotted ``key`` in a nested dict, creating the groups on the way."""
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def params_from_tree(tree: Mapping | None = None, origins: Mapping[str, str] | None = None) -> Params:
    """Build :class:`Params` from a (partial) nested dict of plain values; every problem is a :class:`ConfigError`.

    Values are checked against their field's type; range checks come from the dataclasses' own
    validation. ``origins`` (dotted key -> where the value came from) goes into the messages.
    """
    origins = dict(origins or {})
    problems: list[str] = []
    built = _build(Params, dict(tree or {}), "", origins, problems)
    if problems:
        raise ConfigError(_join(problems))
    return built


def _join(problems: list[str]) -> str:
    return problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n  - " + "\n  - ".join(problems)


def _build(cls, tree: dict, prefix: str, origins: dict, problems: list):
    kwargs = {}
    fields = _fields(cls)
    for name, value in tree.items():
        key = prefix + name
        where = origins.get(key, "parameters")
        if name not in fields:
            try:
                resolve_key(key, where)
            except ConfigError as exc:
                problems.append(str(exc))
            continue
        hint, _ = fields[name]
        if dataclasses.is_dataclass(hint):
            if isinstance(value, hint):
                kwargs[name] = value
            elif isinstance(value, Mapping):
                sub = _build(hint, dict(value), key + ".", origins, problems)
                if sub is not None:
                    kwargs[name] = sub
            else:
                problems.append(f"{key!r} ({where}): expected a mapping of {', '.join(_fields(hint))}, got {value!r}")
            continue
        if looks_like_secret_value(value):
            problems.append(secret_value_message(key, where))
            continue
        try:
            kwargs[name] = coerce(hint, value, key, where, from_cli=where.startswith("--set"))
        except ConfigError as exc:
            problems.append(str(exc))
    # The dataclasses check ranges one field at a time: retry without each refused field (back to its
    # default) so that every range problem is reported at once.
    for _ in range(len(fields) + 1):
        try:
            return cls(**kwargs)
        except ValueError as exc:
            text = re.sub(r"^(TrainConfig|CoMC|LLMParams|Params)\.", prefix, str(exc))
            name = re.split(r"[:\[ ]", text, maxsplit=1)[0].rsplit(".", 1)[-1]
            full = prefix + name
            where = origins.get(full)
            if not text.startswith(prefix):
                text = prefix + text if prefix and not text.startswith(prefix.rstrip(".")) else text
            problems.append(f"{text} ({where})" if where else text)
            if name not in kwargs:
                return None
            del kwargs[name]
    return None


def describe(params: Params, origins: Mapping[str, str] | None = None) -> list[tuple[str, Any, str, str]]:
    """(dotted key, value, where it came from, help) for every leaf parameter, for ``--list``."""
    origins = dict(origins or {})
    values = {}

    def walk(obj, prefix=""):
        for name, (hint, _) in _fields(type(obj)).items():
            v = getattr(obj, name)
            if dataclasses.is_dataclass(hint):
                walk(v, prefix + name + ".")
            else:
                values[prefix + name] = v
    walk(params)
    return [(k, values[k], origins.get(k, "default"), h) for k, (_, _, h) in flatten().items()]


def path_keys(cls=Params) -> Iterable[str]:
    """Dotted keys whose values are paths on this machine (made absolute, and hidden from shared outputs)."""
    return [k for k in flatten(cls) if k.rsplit(".", 1)[-1] in ("data_root", "corpus_path")]


def absolutize(tree: dict) -> dict:
    """``tree`` with the path parameters made absolute against the current folder."""
    for key in path_keys():
        node = tree
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.get(p, {})
        v = node.get(parts[-1]) if isinstance(node, dict) else None
        if isinstance(v, str) and v:
            node[parts[-1]] = str(Path(v).expanduser().absolute())
    return tree
