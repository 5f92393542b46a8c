"""Image and text embeddings for the method: global and local image features, text features, cached.

Image towers (all outputs L2-normalised, in the joint image-text space):

* ModifiedResNet (RN50, RN101, the toy CLIP): the ``layer4`` map (7 x 7 for RN50 at 224 px).
  *Global* = the attention pool; by default **without** its positional embedding, as the official
  CoMC / TaI-DPT code (``global_pool="clip"`` keeps it, i.e. CLIP's own ``encode_image``).
  *Local* = every spatial feature passed through the attention pool's value projection and then
  its output projection (no attention), one embedding per position.
* VisionTransformer (ViT-B/32, ...): *global* = the class token after ``ln_post`` and ``proj``
  (CLIP's ``encode_image``); *local* = the patch tokens through ``ln_post`` and ``proj``.

:func:`extract_image_features` runs a dataset through the model with a DataLoader, shows progress,
uses autocast on GPU, and keeps a sharded on-disk cache keyed by (model, weights, dataset, split,
images, preprocessing, pooling, code version). An interrupted run resumes from its last complete
shard; a finished one is reused and checked on load. Local features are stored as float16.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cache_dir, save_torch_atomic
from .models import LoadedCLIP, has_local_branch

__all__ = ["ImageFeatures", "image_embeddings", "encode_texts", "extract_image_features",
           "feature_cache_key", "FEATURE_CODE_VERSION"]

# Bump when the way features are computed changes (invalidates caches).
FEATURE_CODE_VERSION = "1"
GLOBAL_POOLS = ("no-pos", "clip")


@dataclass
class ImageFeatures:
    """Global (N x D) and local (N x P x D, float16, or None) image embeddings of a dataset."""

    global_: torch.Tensor
    local: torch.Tensor | None
    key: str
    cache_path: Path | None = None


def _attnpool_no_pos(pool, x: torch.Tensor, use_positional: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's AttentionPool2d on an N x C x H x W map: (global N x D, local N x HW x D)."""
    n, c, h, w = x.shape
    tokens = x.reshape(n, c, h * w).permute(2, 0, 1)  # (HW) N C
    tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens], dim=0)  # (HW+1) N C
    if use_positional:
        pos = pool.positional_embedding
        if pos.shape[0] != tokens.shape[0]:
            raise ValueError(f"global_pool='clip' needs a {int((pos.shape[0] - 1) ** 0.5)}-wide feature map "
                             f"(the model's input size); got {h} x {w}. Use global_pool='no-pos'.")
        tokens = tokens + pos[:, None, :].to(tokens.dtype)
    out, _ = F.multi_head_attention_forward(
        query=tokens[:1], key=tokens, value=tokens, embed_dim_to_check=c, num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)
    global_ = out[0]
    # local branch: value projection then output projection of each spatial position
    local = pool.c_proj(pool.v_proj(x.reshape(n, c, h * w).permute(0, 2, 1)))
    return global_, local


@torch.no_grad()
def image_embeddings(model: torch.nn.Module, images: torch.Tensor, local: bool = True,
                     global_pool: str = "no-pos") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Global (N x D) and local (N x P x D) L2-normalised embeddings of preprocessed images."""
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"global_pool={global_pool!r}: expected one of {GLOBAL_POOLS}")
    visual = model.visual
    kind = type(visual).__name__
    if kind == "ModifiedResNet":
        x = visual.stem(images.to(next(visual.parameters()).dtype))
        x = visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))
        g, loc = _attnpool_no_pos(visual.attnpool, x, use_positional=(global_pool == "clip"))
    elif kind == "VisionTransformer":
        if visual.attn_pool is not None:
            raise NotImplementedError("image_embeddings: ViT towers with attentional pooling (CoCa) have no "
                                      "class-token/patch-token split; use a standard CLIP ViT")
        x = visual.transformer(visual._embeds(images.to(next(visual.parameters()).dtype)))
        pooled, tokens = visual._pool(x)
        if visual.final_ln_after_pool:  # tokens have not been through ln_post on that path
            tokens = visual.ln_post(tokens)
        g, loc = pooled @ visual.proj, tokens @ visual.proj
    else:
        if local:
            raise NotImplementedError(f"image_embeddings: the local branch needs a ModifiedResNet or "
                                      f"VisionTransformer image tower, not {kind}; pass local=False")
        g, loc = model.encode_image(images), None
    g = F.normalize(g.float(), dim=-1)
    loc = F.normalize(loc.float(), dim=-1) if (local and loc is not None) else None
    return g, loc


@torch.no_grad()
def encode_texts(loaded: LoadedCLIP, texts, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """L2-normalised text embeddings (N x D, float32, on CPU) of a list of strings, end-of-text token feature."""
    from tqdm.auto import tqdm

    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("encode_texts: texts must be a list of str")
    model = loaded.model.eval()
    out = []
    for i in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="encode texts", unit="batch"):
        tokens = loaded.tokenizer(texts[i:i + batch_size]).to(loaded.device)
        with _autocast(loaded.device):
            emb = model.encode_text(tokens)
        out.append(F.normalize(emb.float(), dim=-1).cpu())
    if not out:
        return torch.empty(0, _text_dim(model))
    return torch.cat(out)


def _text_dim(model) -> int:
    from .models import embed_dim
    return embed_dim(model)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    import contextlib
    return contextlib.nullcontext()


class _Preprocessed(torch.utils.data.Dataset):
    def __init__(self, dataset, preprocess, indices):
        self.dataset, self.preprocess, self.indices = dataset, preprocess, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.preprocess(self.dataset.image(int(self.indices[i])))


def feature_cache_key(loaded: LoadedCLIP, dataset, local: bool, global_pool: str) -> tuple[str, dict]:
    """Cache key of a dataset's features and the description it hashes."""
    labels_hash = hashlib.sha256(np.ascontiguousarray(dataset.labels).tobytes()).hexdigest()[:16]
    ids_hash = hashlib.sha256("\n".join(map(str, dataset.image_ids)).encode()).hexdigest()[:16]
    desc = {"model": loaded.name, "weights": loaded.weights_id, "dataset": dataset.name,
            "split": dataset.split, "n_images": len(dataset), "image_ids": ids_hash, "labels": labels_hash,
            "dataset_info": {k: v for k, v in sorted(dataset.info.items()) if isinstance(v, (str, int, float))},
            "preprocess": repr(loaded.preprocess), "local": bool(local), "global_pool": global_pool,
            "code_version": FEATURE_CODE_VERSION}
    key = hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:20]
    return key, desc


def extract_image_features(loaded: LoadedCLIP, dataset, *, local: bool = True, global_pool: str = "no-pos",
                           batch_size: int = 64, num_workers: int = 0, shard_size: int = 2048,
                           cache: str | os.PathLike | None = None, use_cache: bool = True,
                           progress: bool = True) -> ImageFeatures:
    """Embed every image of ``dataset`` (global and local), reusing or resuming the on-disk cache."""
    from tqdm.auto import tqdm

    if local and not has_local_branch(loaded.model):
        raise NotImplementedError(f"model {loaded.name!r} has no local branch (image tower "
                                  f"{type(loaded.model.visual).__name__}); pass local=False")
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"batch_size ({batch_size}) and shard_size ({shard_size}) must be >= 1")
    key, desc = feature_cache_key(loaded, dataset, local, global_pool)
    folder = cache_dir(cache) / "features" / key if use_cache else None
    n = len(dataset)
    n_shards = (n + shard_size - 1) // shard_size
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "key.json").write_text(json.dumps(desc, indent=1, sort_keys=True))
    model = loaded.model.eval()
    shards_g, shards_l = [], []
    todo = [s for s in range(n_shards) if folder is None or not (folder / f"shard_{s:05d}.pt").exists()]
    bar = tqdm(total=n, initial=(n_shards - len(todo)) * shard_size if todo else n, disable=not progress,
               desc=f"image features {dataset.name}/{dataset.split}", unit="img")
    for s in range(n_shards):
        path = folder / f"shard_{s:05d}.pt" if folder is not None else None
        lo, hi = s * shard_size, min(n, (s + 1) * shard_size)
        if path is not None and path.exists():
            shard = torch.load(path, map_location="cpu", weights_only=True)
            if shard["global"].shape[0] != hi - lo:
                raise RuntimeError(f"feature cache shard {path} holds {shard['global'].shape[0]} rows, "
                                   f"expected {hi - lo}; delete {folder} to rebuild it")
        else:
            loader = torch.utils.data.DataLoader(
                _Preprocessed(dataset, loaded.preprocess, range(lo, hi)), batch_size=batch_size,
                num_workers=num_workers, pin_memory=loaded.device.type == "cuda")
            gs, ls = [], []
            for batch in loader:
                with _autocast(loaded.device):
                    g, loc = image_embeddings(model, batch.to(loaded.device, non_blocking=True),
                                              local=local, global_pool=global_pool)
                gs.append(g.cpu())
                if loc is not None:
                    ls.append(loc.half().cpu())
                bar.update(len(batch))
            shard = {"global": torch.cat(gs), "local": torch.cat(ls) if ls else None}
            if path is not None:
                save_torch_atomic(shard, path)  # a shard exists only once complete
        shards_g.append(shard["global"])
        if shard["local"] is not None:
            shards_l.append(shard["local"])
    bar.close()
    g = torch.cat(shards_g) if shards_g else torch.empty(0)
    loc = torch.cat(shards_l) if (local and shards_l) else None
    return ImageFeatures(global_=g, local=loc, key=key, cache_path=folder)
