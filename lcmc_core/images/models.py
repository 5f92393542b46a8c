"""Load CLIP models, toy or real, through one function: :func:`load_clip`.

Everything goes through ``open_clip.create_model_and_transforms``: the toy models of this repo are
ordinary open_clip model configs (JSON files in ``lcmc_core/images/model_configs/``, registered with
``open_clip.add_model_config``) whose weights are checkpoint files; real models are any open_clip
name with a pretrained tag (``RN50-quickgelu`` / ``openai``), an ``hf-hub:`` id, or a local
checkpoint file.

**The activation must match the weights.** OpenAI trained its CLIPs with QuickGELU; open_clip's
``RN50`` / ``ViT-B-32`` configs use plain GELU (the ``-quickgelu`` configs use QuickGELU), and
open_clip only *warns* when the two disagree. Here a pretrained tag's activation decides: a tag
trained with QuickGELU (``openai``, and others) builds a QuickGELU model even under the plain name
(``RN50`` + ``openai`` = ``RN50-quickgelu`` + ``openai``), and asking for the other activation is
an error. OpenAI's own checkpoint files (TorchScript archives) are QuickGELU too. Any other file
is loaded as the architecture named: pass ``RN50-quickgelu`` for a state dict of OpenAI's RN50.

**Every weight file a user may hold loads**: OpenAI's TorchScript archives (``RN50.pt`` as OpenAI
serves them and the ``clip`` package caches them), open_clip's ``open_clip_pytorch_model.bin`` and
``open_clip_model.safetensors``, plain state dicts and training checkpoints
(``{"state_dict": ...}``, optionally with a ``module.`` prefix). Files are read without
unpickling arbitrary objects (``weights_only``; TorchScript archives through ``torch.jit.load``).

Offline, a tag that is not already cached fails at once with a message that says how to provide
the weights (instead of ~46 s of retries).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch

from ..errors import MissingFileError, UnknownNameError, WeightsError, WeightsUnavailableError

__all__ = ["MODEL_CONFIG_DIR", "LoadedCLIP", "WeightsUnavailableError", "WeightsError", "load_clip",
           "register_model_configs", "has_local_branch", "embed_dim", "checkpoint_format",
           "uses_quick_gelu", "tag_uses_quick_gelu"]

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
_HUB_HOST = ("huggingface.co", 443)
# Keys of OpenAI's TorchScript state dicts that are not weights.
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


@dataclass
class LoadedCLIP:
    """A CLIP model with its image preprocessing and tokenizer, and where its weights came from."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    name: str
    pretrained: str | None
    device: torch.device
    quick_gelu: bool = False
    weights_format: str = "random"   # random | tag | hf-hub | torchscript | safetensors | state-dict

    @property
    def weights_id(self) -> str:
        """A string identifying the weights and the activation built: a file's content hash, or the tag.

        Every derived cache (features, text features, TaI-DPT prompts) is keyed on it. The content,
        not the path, identifies a file, so moving the checkout, the cache folder or the weights
        file keeps those caches valid (a path-based id made a moved cache recompute everything).
        """
        p = self.pretrained
        ident = f"sha256:{file_digest(p)}" if p and os.path.isfile(p) else str(p)
        return f"{ident}|quick_gelu={self.quick_gelu}"


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (hex), computed once per process for a given path, size and mtime."""
    st = os.stat(path)
    memo = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


_registered = False


def register_model_configs() -> None:
    """Register this repo's model configs (the toy CLIPs) with open_clip; safe to call repeatedly."""
    global _registered
    if not _registered:
        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _registered = True


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(_HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_offline():
    """Make huggingface_hub use its local cache only (no network retries) inside the block."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - open_clip depends on huggingface_hub
        yield
        return
    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


class _DropRandomInit(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded ... Model initialized randomly." record, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and "initialized randomly" in str(record.msg))


@contextlib.contextmanager
def _open_clip_logging(random_init: bool = False):
    """Around calls into open_clip: leave the process's logging as it was, and with ``random_init`` drop
    open_clip's warning that the model is initialised randomly (intended: we load the weights ourselves,
    or want none), and only that record.

    open_clip logs with ``logging.info``/``logging.warning`` on the root logger, and each such call
    installs a stderr handler there (``logging.basicConfig``) when the root logger has none, which
    would change how every later warning of the process (or notebook kernel) prints. A temporary
    ``NullHandler`` prevents that, so no logging configuration outlives the block.
    """
    root = logging.getLogger()
    drop = _DropRandomInit() if random_init else None
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)
    if drop is not None:
        root.addFilter(drop)
    try:
        yield
    finally:
        if drop is not None:
            root.removeFilter(drop)
        if placeholder is not None:
            root.removeHandler(placeholder)


def _how_to_provide(name: str, pretrained: str | None) -> str:
    return (
        f"Weights for model {name!r} (pretrained={pretrained!r}) are not in the local cache and the "
        "model hub cannot be reached. Either (1) run once on a machine with internet so that open_clip "
        "caches them (HF_HOME, default ~/.cache/huggingface) and copy that cache here, or (2) download "
        "the checkpoint file yourself and pass its path, e.g. "
        f"load_clip({name!r}, pretrained='/path/to/checkpoint.pt') or the profile parameter "
        "`clip_pretrained: /path/to/checkpoint.pt` (OpenAI's RN50.pt, open_clip_pytorch_model.bin and "
        "open_clip_model.safetensors all work).")


def checkpoint_format(path: str | os.PathLike) -> str:
    """The format of a weight file: ``"torchscript"`` (OpenAI's archives), ``"safetensors"`` or ``"state-dict"``."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or (len(head) > 9 and head[8:9] == b"{" and not zipfile.is_zipfile(path)):
        return "safetensors"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile as exc:
            raise WeightsError(f"checkpoint file {path} is a damaged zip archive ({exc}); download it again") from None
        # torch.jit.save writes <root>/code/... and <root>/constants.pkl; torch.save writes <root>/data.pkl only
        if any(n.split("/", 1)[-1].startswith("code/") for n in names) or any(
                n.endswith("/constants.pkl") for n in names):
            return "torchscript"
    return "state-dict"


def uses_quick_gelu(name: str) -> bool | None:
    """Whether open_clip's config ``name`` builds QuickGELU (None for hub/local-dir names, unknown here)."""
    register_model_configs()
    cfg = open_clip.get_model_config(name)
    return None if cfg is None else bool(cfg.get("quick_gelu", False))


def tag_uses_quick_gelu(name: str, tag: str) -> bool | None:
    """Whether the weights of pretrained ``tag`` of model ``name`` were trained with QuickGELU (None if unknown tag)."""
    cfg = open_clip.get_pretrained_cfg(name, tag)
    return bool(cfg.get("quick_gelu", False)) if cfg else None


def _activation_name(quick: bool) -> str:
    return "QuickGELU" if quick else "GELU"


def _choose_activation(name: str, pretrained: str, weights_quick: bool | None, requested: bool | None,
                       source: str) -> bool:
    """The activation to build for weights trained with ``weights_quick`` (None: unknown); errors on mismatch."""
    arch_quick = bool(uses_quick_gelu(name))
    if requested is not None and weights_quick is not None and requested != weights_quick:
        raise WeightsError(
            f"load_clip({name!r}, pretrained={pretrained!r}): {source} were trained with "
            f"{_activation_name(weights_quick)}, but quick_gelu={requested} asks for "
            f"{_activation_name(requested)}; a model built that way gives wrong embeddings")
    if weights_quick is False and arch_quick:
        plain = name.replace("-quickgelu", "")
        raise WeightsError(
            f"load_clip({name!r}, pretrained={pretrained!r}): {source} were trained with GELU, but "
            f"{name!r} builds QuickGELU; use the model name {plain!r} for these weights")
    want = requested if requested is not None else (weights_quick if weights_quick is not None else arch_quick)
    if not want and arch_quick:
        raise WeightsError(f"load_clip({name!r}): quick_gelu=False cannot be applied to {name!r}, whose config "
                           f"builds QuickGELU; use the model name {name.replace('-quickgelu', '')!r}")
    return bool(want or arch_quick)


def _load_torchscript_state_dict(path: Path) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, yet OpenAI's files are TorchScript
            archive = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise WeightsError(f"checkpoint file {path} looks like a TorchScript archive but torch.jit.load cannot "
                           f"read it ({str(exc).splitlines()[0]}); download it again") from None
    return {k: v for k, v in archive.state_dict().items() if k not in _OPENAI_EXTRA_KEYS}


def _mismatch(model: torch.nn.Module, state_dict: dict, name: str, path) -> str | None:
    """A message saying how ``state_dict`` does not fit ``model`` (None when it fits)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return None
    hint = ""
    if "visual.proj" in state_dict and "visual.conv1.weight" in state_dict:
        hint = f" (the file holds a ViT of visual width {state_dict['visual.conv1.weight'].shape[0]})"
    elif "visual.attnpool.positional_embedding" in state_dict and "text_projection" in state_dict:
        hint = f" (the file holds a ModifiedResNet with embedding size {state_dict['text_projection'].shape[1]})"
    parts = []
    for what, items in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)):
        if items:
            parts.append(f"{len(items)} {what} (e.g. {', '.join(items[:3])})")
    return (f"checkpoint file {path} does not fit model {name!r}{hint}: weights {'; '.join(parts)}; pass the "
            f"model name of the architecture the file was trained as (e.g. RN50-quickgelu for OpenAI's RN50.pt, "
            f"ViT-B-32-quickgelu for ViT-B-32.pt)")


def _load_into(model: torch.nn.Module, state_dict: dict, name: str, path: Path) -> None:
    """Load an OpenAI-format state dict into an open_clip CLIP, with an error that says what does not fit."""
    expected = model.state_dict()
    # buffers open_clip rebuilds itself (the causal mask) are not weights; some archives carry them
    state_dict = {k: v for k, v in state_dict.items() if k in expected or k != "attn_mask"}
    message = _mismatch(model, state_dict, name, path)
    if message:
        raise WeightsError(message)
    model.load_state_dict(state_dict, strict=True)


def _read_state_dict(path: str) -> dict:
    """The tensors of a weight file (safetensors, or a ``torch.save`` state dict / training checkpoint), read weights-only.

    open_clip has no public function that returns a file's state dict (``open_clip.load_checkpoint``
    loads straight into a model, which fails on the mismatches this is for), so the two public
    readers are used directly: ``safetensors.torch.load_file`` and ``torch.load(weights_only=True)``.
    """
    if checkpoint_format(path) == "safetensors":
        from safetensors.torch import load_file
        state = load_file(path, device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"checkpoint file {path} holds a {type(state).__name__}, not a state dict")
    if state and next(iter(state)).startswith("module."):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _explain_state_dict_failure(name: str, path: str, kwargs: dict) -> str | None:
    """After open_clip failed to load file ``path`` into ``name``: say which weights do not fit."""
    try:
        state_dict = _read_state_dict(path)
        with _open_clip_logging(random_init=True):
            model = open_clip.create_model(name, pretrained=None, **{k: v for k, v in kwargs.items()
                                                                     if k == "force_quick_gelu"})
    except Exception:
        return None
    return _mismatch(model, state_dict, name, path)


def load_clip(name: str = "RN50-quickgelu", pretrained: str | None = "openai", device: str | torch.device = "cpu",
              precision: str = "fp32", hf_cache_dir: str | None = None, quick_gelu: bool | None = None,
              **kwargs: Any) -> LoadedCLIP:
    """Create an open_clip model with its preprocessing and tokenizer, built with the activation its weights need.

    ``quick_gelu`` (default: decided by the weights) forces the activation; a choice that
    contradicts a pretrained tag or OpenAI's archives is an error. ``hf_cache_dir`` is where
    downloaded weights are kept (open_clip's / Hugging Face's default when None). Other keyword
    arguments go to ``open_clip.create_model_and_transforms``.
    """
    register_model_configs()
    device = torch.device(device)
    if "force_quick_gelu" in kwargs:
        forced = bool(kwargs.pop("force_quick_gelu"))
        quick_gelu = True if forced else quick_gelu
    pretrained, is_file = _resolve_weights_argument(name, pretrained)
    fmt, state_dict, build_quick = _weights_plan(name, pretrained, is_file, quick_gelu)
    schema = name.startswith(("hf-hub:", "local-dir:"))
    if build_quick and (schema or not uses_quick_gelu(name)):
        kwargs["force_quick_gelu"] = True
    model, preprocess = _create_model(name, pretrained, fmt, device, precision, hf_cache_dir, kwargs)
    if state_dict is not None:
        _load_into(model, state_dict, name, Path(pretrained))
    model.eval()
    with _open_clip_logging():
        tokenizer = open_clip.get_tokenizer(name)
    return LoadedCLIP(model=model, preprocess=preprocess, tokenizer=tokenizer, name=name,
                      pretrained=pretrained, device=device, quick_gelu=bool(build_quick), weights_format=fmt)


def _resolve_weights_argument(name: str, pretrained) -> tuple[str | None, bool]:
    """``(pretrained, is_file)`` after checking the model name and that a path-like ``pretrained`` exists."""
    pretrained = str(pretrained) if pretrained else None
    is_file = bool(pretrained) and os.path.isfile(os.path.expanduser(pretrained))
    if is_file:
        pretrained = os.path.expanduser(pretrained)
    if pretrained and not is_file and (pretrained.startswith(("/", "./", "../", "~"))
                                       or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))):
        raise MissingFileError(f"load_clip: pretrained checkpoint file {pretrained!r} does not exist")
    if name not in open_clip.list_models() and not name.startswith(("hf-hub:", "local-dir:")):
        raise UnknownNameError(f"load_clip: unknown model name {name!r}; expected an open_clip model "
                               f"(see open_clip.list_models(), e.g. 'RN50-quickgelu'), 'hf-hub:<org>/<repo>' "
                               f"or 'local-dir:<path>'")
    return pretrained, is_file


def _weights_plan(name: str, pretrained: str | None, is_file: bool,
                  quick_gelu: bool | None) -> tuple[str, dict | None, bool]:
    """``(format, state dict to load ourselves or None, build with QuickGELU)`` for these weights."""
    if name.startswith(("hf-hub:", "local-dir:")):
        fmt = "hf-hub" if name.startswith("hf-hub:") else "local-dir"
        return fmt, None, bool(quick_gelu) if quick_gelu is not None else False
    if is_file:
        fmt = checkpoint_format(pretrained)
        if fmt == "torchscript":
            quick = _choose_activation(name, pretrained, True, quick_gelu, "OpenAI's TorchScript weights")
            return fmt, _load_torchscript_state_dict(Path(pretrained)), quick
        return fmt, None, _choose_activation(name, pretrained, None, quick_gelu, "")
    if pretrained:
        weights_quick = tag_uses_quick_gelu(name, pretrained)
        if weights_quick is None:
            tags = open_clip.list_pretrained_tags_by_model(name)
            raise UnknownNameError(f"load_clip: {pretrained!r} is neither a pretrained tag of {name!r} (tags: "
                                   f"{', '.join(tags) or 'none'}) nor an existing checkpoint file")
        return "tag", None, _choose_activation(name, pretrained, weights_quick, quick_gelu,
                                               f"the weights of tag {pretrained!r}")
    return "random", None, _choose_activation(name, "None", None, quick_gelu, "")


def _create_model(name: str, pretrained: str | None, fmt: str, device: torch.device, precision: str,
                  hf_cache_dir: str | None, kwargs: dict):
    """open_clip's model and preprocessing; offline hubs, unfit state dicts and unreadable files become WeightsErrors."""
    needs_hub = fmt in ("tag", "hf-hub", "local-dir")
    offline = needs_hub and (os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
                             or not _hub_reachable())
    weights_arg = None if (fmt in ("torchscript", "random")) else pretrained

    def create():
        with warnings.catch_warnings():
            # open_clip only warns on an activation mismatch; after the checks above one is a bug
            warnings.filterwarnings("error", message=".*QuickGELU mismatch.*")
            with _open_clip_logging(random_init=weights_arg is None):
                model, _, preprocess = open_clip.create_model_and_transforms(
                    name, pretrained=weights_arg, device=device, precision=precision, cache_dir=hf_cache_dir,
                    **kwargs)
                return model, preprocess

    if offline:
        try:
            with _hub_offline():
                return create()
        except Exception as exc:  # open_clip wraps hub errors in RuntimeError and others
            raise WeightsUnavailableError(_how_to_provide(name, pretrained)) from exc
    try:
        return create()
    except WeightsError:
        raise
    except RuntimeError:
        # open_clip fails in several places on a file that does not fit (load_state_dict, or its own
        # reshaping of logit_scale); whichever, say which weights do not fit when that is the cause
        message = _explain_state_dict_failure(name, pretrained, kwargs) if fmt in ("state-dict", "safetensors") else None
        if message is None:
            raise
        raise WeightsError(message) from None
    except pickle_errors() as exc:
        raise WeightsError(f"checkpoint file {pretrained} cannot be read as weights only ({exc}); it may "
                           f"be damaged or hold arbitrary Python objects") from None


def pickle_errors() -> tuple:
    """Exceptions that ``torch.load(weights_only=True)`` raises on files it refuses or cannot parse."""
    import pickle
    return (pickle.UnpicklingError, EOFError)


def has_local_branch(model: torch.nn.Module) -> bool:
    """True if the image tower exposes spatial features for the local branch (ModifiedResNet or ViT)."""
    visual = getattr(model, "visual", model)
    kind = type(visual).__name__
    return kind in ("ModifiedResNet", "VisionTransformer")


def embed_dim(model: torch.nn.Module) -> int:
    """Dimension of the joint image-text embedding space."""
    visual = getattr(model, "visual", None)
    if visual is not None and getattr(visual, "output_dim", None):
        return int(visual.output_dim)
    proj = getattr(model, "text_projection", None)
    if proj is not None:
        return int(proj.shape[-1] if isinstance(proj, torch.Tensor) else proj.out_features)
    raise ValueError(f"embed_dim: cannot tell the embedding size of {type(model).__name__}")
