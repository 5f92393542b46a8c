"""Load CLIP models, toy or real, through one function: :func:`load_clip`.

Everything goes through ``open_clip.create_model_and_transforms(name, pretrained=...)``:
the toy models of this repo are ordinary open_clip model configs (JSON files in
``lcmc_core/model_configs/``, registered with ``open_clip.add_model_config``) whose weights are
checkpoint files; real models are any open_clip name with a pretrained tag (``RN50``/``openai``),
an ``hf-hub:`` id, or a local checkpoint file. Offline, a tag that is not already cached fails at
once with a message that says how to provide the weights (instead of ~46 s of retries).
"""
from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import open_clip
import torch

__all__ = ["MODEL_CONFIG_DIR", "LoadedCLIP", "WeightsUnavailableError", "load_clip",
           "register_model_configs", "has_local_branch", "embed_dim"]

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
_HUB_HOST = ("huggingface.co", 443)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but cannot be found locally or downloaded."""


@dataclass
class LoadedCLIP:
    """A CLIP model with its image preprocessing and tokenizer, and where its weights came from."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    name: str
    pretrained: str | None
    device: torch.device

    @property
    def weights_id(self) -> str:
        """A string identifying the weights (checkpoint path with size and mtime, or tag), for cache keys."""
        p = self.pretrained
        if p and os.path.isfile(p):
            st = os.stat(p)
            return f"{os.path.abspath(p)}:{st.st_size}:{int(st.st_mtime)}"
        return str(p)


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


def _how_to_provide(name: str, pretrained: str | None) -> str:
    return (
        f"Weights for model {name!r} (pretrained={pretrained!r}) are not in the local cache and the "
        "model hub cannot be reached. Either (1) run once on a machine with internet so that open_clip "
        "caches them (HF_HOME, default ~/.cache/huggingface) and copy that cache here, or (2) download "
        "the checkpoint file yourself and pass its path, e.g. "
        f"load_clip({name!r}, pretrained='/path/to/checkpoint.pt') or the profile parameter "
        "`clip_pretrained: /path/to/checkpoint.pt`.")


def load_clip(name: str = "RN50", pretrained: str | None = "openai", device: str | torch.device = "cpu",
              precision: str = "fp32", cache_dir: str | None = None, **kwargs: Any) -> LoadedCLIP:
    """Create an open_clip model with its preprocessing and tokenizer; fail fast when offline weights are missing."""
    register_model_configs()
    device = torch.device(device)
    is_file = bool(pretrained) and os.path.isfile(str(pretrained))
    if pretrained and not is_file and (str(pretrained).startswith(("/", "./", "../", "~"))
                                       or str(pretrained).endswith((".pt", ".pth", ".bin", ".safetensors"))):
        raise FileNotFoundError(f"load_clip: pretrained checkpoint file {pretrained!r} does not exist")
    if name not in open_clip.list_models() and not name.startswith(("hf-hub:", "local-dir:")):
        raise KeyError(f"load_clip: unknown model name {name!r}; expected an open_clip model "
                       f"(see open_clip.list_models()), 'hf-hub:<org>/<repo>' or 'local-dir:<path>'")
    needs_hub = (bool(pretrained) and not is_file) or name.startswith("hf-hub:")
    offline = needs_hub and (os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
                             or not _hub_reachable())

    def create():
        return open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=device, precision=precision, cache_dir=cache_dir, **kwargs)

    if offline:
        try:
            with _hub_offline():
                model, _, preprocess = create()
        except Exception as exc:  # open_clip wraps hub errors in RuntimeError and others
            raise WeightsUnavailableError(_how_to_provide(name, pretrained)) from exc
    else:
        model, _, preprocess = create()
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    return LoadedCLIP(model=model, preprocess=preprocess, tokenizer=tokenizer, name=name,
                      pretrained=str(pretrained) if pretrained else None, device=device)


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
