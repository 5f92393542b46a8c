"""Image and text embeddings for the method: global and local image features, text features, cached on disk.

Image towers (all outputs L2-normalised, in the joint image-text space):

* ModifiedResNet (RN50, RN101, the toy CLIP): the ``layer4`` map (7 x 7 for RN50 at 224 px).
  *Global* = the attention pool; by default **without** its positional embedding, as the official
  CoMC / TaI-DPT code (``global_pool="clip"`` keeps it, i.e. CLIP's own ``encode_image``).
  *Local* = every spatial feature passed through the attention pool's value projection and then
  its output projection (no attention), one embedding per position.
* VisionTransformer (ViT-B/32, ...): *global* = the class token after ``ln_post`` and ``proj``
  (CLIP's ``encode_image``); *local* = the patch tokens through ``ln_post`` and ``proj``, read
  through open_clip's public ``forward_intermediates``.

:func:`extract_image_features` runs a dataset through the model with one DataLoader over the
images still missing (``num_workers`` workers; datasets pickle, so workers also start under
``spawn``), shows progress, uses autocast on GPU, and keeps an on-disk cache keyed by (model,
weights and activation, dataset, split, images, preprocessing, pooling, code version). The cache
holds ``global.npy`` (N x D float32, the pooling asked for), ``global_clip.npy`` (N x D float32,
CLIP's own ``encode_image`` pooling, from the same pass: the published zero-shot protocol's global
feature) and ``local.npy`` (N x P x D float16), filled shard by shard; a shard is marked done only
once written and synced, so an interrupted run resumes from its last complete shard. A complete
entry (image or text features) is read without taking a lock or creating anything, so a cache
shared read-only serves it; building an entry there fails with one line naming the folder. Local features
are never loaded whole: they come back as a :class:`FeatureFile`, read in chunks by every consumer
(peak memory does not grow with their size, 4.1 GB for COCO with RN50); the global ones stay in the
cache too, read when first used and dropped again by :meth:`ImageFeatures.release`. A damaged entry is detected
and rebuilt; two processes building the same entry take turns (a lock), the second reusing the first
one's result.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import atomic_write, cache_dir, entry_lock, write_error
from ..errors import ConfigError
from .models import LoadedCLIP, has_local_branch

__all__ = ["ImageFeatures", "FeatureFile", "EveryNthRow", "image_embeddings", "image_tower_outputs", "encode_texts",
           "encode_texts_cached",
           "extract_image_features",
           "feature_cache_key", "write_feature_entry", "FEATURE_CODE_VERSION", "GLOBAL_POOLS"]

# Bump when the way features are computed or stored changes (invalidates caches).
FEATURE_CODE_VERSION = "3"
GLOBAL_POOLS = ("no-pos", "clip")
_STATE = "state.json"


# ---------------------------------------------------------------------------------------------
# a .npy array read in chunks
# ---------------------------------------------------------------------------------------------
class FeatureFile:
    """An (N, ...) array in a ``.npy`` file, read rows at a time (``ff[a:b]`` -> torch tensor); never mapped whole.

    Reads go through ordinary file reads, not ``mmap``, so the pages read are not counted in the
    process's resident memory. ``len``, ``shape``, ``dtype`` (a torch dtype) and slicing behave
    like a tensor's; :meth:`chunks` iterates over row blocks; :meth:`tensor` loads everything
    (for small arrays only).
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                major, _ = np.lib.format.read_magic(f)
                reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = reader(f)
                self._offset = f.tell()
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{self.path} is not a readable .npy file ({exc})") from None
        if fortran:
            raise ValueError(f"{self.path}: Fortran-ordered arrays are not supported")
        self.shape = tuple(int(s) for s in shape)
        self._np_dtype = np.dtype(dtype)
        self._row_items = int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1
        self._row_bytes = self._row_items * self._np_dtype.itemsize
        expected = self._offset + self.shape[0] * self._row_bytes
        size = self.path.stat().st_size
        if size < expected:
            raise ValueError(f"{self.path} is truncated: {size} bytes, expected {expected}")

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of the rows."""
        return torch.from_numpy(np.empty(0, dtype=self._np_dtype)).dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a new numpy array."""
        start, stop = max(0, int(start)), min(len(self), int(stop))
        out = np.empty((max(0, stop - start),) + self.shape[1:], dtype=self._np_dtype)
        if out.size:
            with open(self.path, "rb") as f:
                f.seek(self._offset + start * self._row_bytes)
                got = f.readinto(memoryview(out).cast("B"))
            if got != out.nbytes:
                raise ValueError(f"{self.path}: short read at rows {start}:{stop} (file changed while reading?)")
        return out

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, (int, np.integer)):
            k = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= k < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            return torch.from_numpy(self.read(k, k + 1)[0])
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return torch.from_numpy(self.read(start, stop))
            key = np.arange(start, stop, step)
        idx = np.arange(len(self))[np.asarray(key)]
        rows = [self.read(i, i + 1) for i in idx.reshape(-1)]
        return torch.from_numpy(np.concatenate(rows) if rows else self.read(0, 0))

    def chunks(self, rows: int) -> Iterator[tuple[int, torch.Tensor]]:
        """``(start, tensor)`` for consecutive blocks of ``rows`` rows."""
        for start in range(0, len(self), max(1, int(rows))):
            yield start, self[start:start + rows]

    def tensor(self) -> torch.Tensor:
        """Every row at once (a copy in memory: for small arrays only)."""
        return self[:]

    def float(self) -> torch.Tensor:
        """Every row as float32 (a copy in memory: for small arrays only)."""
        return self.tensor().float()

    def __repr__(self) -> str:
        return f"FeatureFile({str(self.path)!r}, shape={self.shape}, dtype={self._np_dtype})"


class EveryNthRow:
    """Rows ``0, step, 2 step, ...`` of a :class:`FeatureFile`, read a block at a time like the file (never all at once).

    ``view[a:b]`` reads rows ``a * step, ..., (b - 1) * step`` of the file; ``shape`` and ``dtype`` are
    the view's, so the scoring functions stream it as they stream the file.
    """

    def __init__(self, source: FeatureFile, step: int):
        if int(step) < 1:
            raise ValueError(f"EveryNthRow: step must be >= 1, got {step!r}")
        self.source, self.step = source, int(step)
        self.shape = (-(-len(source) // self.step),) + tuple(source.shape[1:])
        self.dtype = source.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> torch.Tensor:
        if not isinstance(key, slice) or key.indices(len(self))[2] != 1:
            raise IndexError(f"EveryNthRow: only contiguous slices can be read, got {key!r}")
        start, stop, _ = key.indices(len(self))
        return self.source[start * self.step:max(start, stop) * self.step:self.step]


class _NpyWriter:
    """Create a ``.npy`` file of a given shape and fill rows in place with ordinary writes."""

    def __init__(self, path: Path, shape, dtype):
        self.path, self.shape, self.dtype = Path(path), tuple(int(s) for s in shape), np.dtype(dtype)
        row_items = int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1
        self.row_bytes = row_items * self.dtype.itemsize
        existing = self._existing_offset()
        try:
            if existing is None:
                with open(self.path, "wb") as f:
                    np.lib.format.write_array_header_1_0(
                        f, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                            "shape": self.shape})
                    self.offset = f.tell()
                    f.truncate(self.offset + self.shape[0] * self.row_bytes)
            else:
                self.offset = existing
            self._f = open(self.path, "r+b")
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def _existing_offset(self) -> int | None:
        try:
            ff = FeatureFile(self.path)
        except (ValueError, FileNotFoundError, OSError):
            return None
        if ff.shape != self.shape or ff._np_dtype != self.dtype:
            return None
        return ff._offset

    def write(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        try:
            self._f.seek(self.offset + int(start) * self.row_bytes)
            self._f.write(rows.tobytes())
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def sync(self) -> None:
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a failed flush was reported by write/sync already
            self._f.close()


class ImageFeatures:
    """A dataset's image embeddings: global (N x D float32), local (N x P x D float16) and CLIP's own pooled global.

    Each is a tensor in memory or a :class:`FeatureFile` of the feature cache (``local`` and
    ``global_clip`` may be None). ``global_`` and ``global_clip`` are always tensors to their users:
    one on disk is read on first use and kept until :meth:`release`, which the comparison calls
    between its stages (at NUS-WIDE size with RN50 each is 0.44 GB, so holding them only while a
    stage needs them keeps its peak memory down). ``local`` is never read whole: every consumer
    streams it a block of images at a time.
    """

    def __init__(self, global_, local, key: str, cache_path: Path | None = None, global_clip=None):
        self._stored = {"global_": global_, "global_clip": global_clip}
        self._read: dict[str, torch.Tensor] = {}
        self.local, self.key, self.cache_path = local, key, cache_path

    @property
    def global_(self) -> torch.Tensor:
        """Global embeddings (N x D float32), the pooling the run asked for."""
        return self._tensor("global_")

    @property
    def global_clip(self) -> torch.Tensor | None:
        """CLIP's own ``encode_image`` embedding (attention pool *with* positional embedding; N x D): the
        global feature of the published zero-shot rows; None if the tower's input size does not allow it."""
        return self._tensor("global_clip")

    def _tensor(self, name: str):
        stored = self._stored[name]
        if stored is None or isinstance(stored, torch.Tensor):
            return stored
        if name not in self._read:
            self._read[name] = stored.tensor()
        return self._read[name]

    def release(self) -> None:
        """Forget the global arrays read from disk (read again when next used); arrays given in memory stay."""
        self._read.clear()

    def __repr__(self) -> str:
        where = {k: ("memory" if isinstance(v, torch.Tensor) else v if v is None else "disk")
                 for k, v in self._stored.items()}
        return (f"ImageFeatures(key={self.key!r}, n={len(self._stored['global_'])}, global_: {where['global_']}, "
                f"global_clip: {where['global_clip']}, local: {'none' if self.local is None else type(self.local).__name__})")


# ---------------------------------------------------------------------------------------------
# the towers
# ---------------------------------------------------------------------------------------------
def _attnpool(pool, x: torch.Tensor, use_positional: bool) -> tuple[torch.Tensor, torch.Tensor]:
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
def image_tower_outputs(model: torch.nn.Module, images: torch.Tensor,
                        local: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Both global embeddings and the local ones of preprocessed images, from one pass through the tower.

    Returns ``(no_pos, clip, local)``, L2-normalised: ``no_pos`` (N x D) is the attention pool
    without its positional embedding (the official CoMC / TaI-DPT global feature), ``clip`` (N x D)
    CLIP's own ``encode_image`` pooling (with it; None when the feature map does not match the
    positional embedding, i.e. another input size), ``local`` (N x P x D, or None). For a
    VisionTransformer both globals are the class token; for towers without a local branch both are
    ``encode_image``.
    """
    visual = model.visual
    kind = type(visual).__name__
    g_clip = None
    if kind == "ModifiedResNet":
        x = visual.stem(images.to(next(visual.parameters()).dtype))
        x = visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))
        g, loc = _attnpool(visual.attnpool, x, use_positional=False)
        if visual.attnpool.positional_embedding.shape[0] == x.shape[2] * x.shape[3] + 1:
            g_clip, _ = _attnpool(visual.attnpool, x, use_positional=True)
    elif kind == "VisionTransformer":
        if visual.attn_pool is not None or visual.proj is None:
            raise NotImplementedError("image_embeddings: ViT towers with attentional pooling (CoCa) or without a "
                                      "projection have no class-token/patch-token split; use a standard CLIP ViT")
        out = visual.forward_intermediates(images.to(next(visual.parameters()).dtype), indices=1,
                                           normalize_intermediates=True, output_fmt="NLC")
        g = g_clip = out["image_features"]
        loc = out["image_intermediates"][-1] @ visual.proj if local else None
    else:
        if local:
            raise NotImplementedError(f"image_embeddings: the local branch needs a ModifiedResNet or "
                                      f"VisionTransformer image tower, not {kind}; pass local=False")
        g = g_clip = model.encode_image(images)
        loc = None
    g = F.normalize(g.float(), dim=-1)
    g_clip = F.normalize(g_clip.float(), dim=-1) if g_clip is not None else None
    loc = F.normalize(loc.float(), dim=-1) if (local and loc is not None) else None
    return g, g_clip, loc


def image_embeddings(model: torch.nn.Module, images: torch.Tensor, local: bool = True,
                     global_pool: str = "no-pos") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Global (N x D) and local (N x P x D) L2-normalised embeddings of preprocessed images."""
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"global_pool={global_pool!r}: expected one of {GLOBAL_POOLS}")
    g, g_clip, loc = _pooled(model, images, local, global_pool)
    return g, loc


@torch.no_grad()
def encode_texts(loaded: LoadedCLIP, texts, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """L2-normalised text embeddings (N x D, float32, on CPU) of a list of strings, end-of-text token feature.

    Runs without autograd: a fresh encoding used to carry the text tower's graph (memory growing with the
    corpus, and training that backpropagated into it) until it had round-tripped through the cache.
    """
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
        from .models import embed_dim
        return torch.empty(0, embed_dim(model))
    return torch.cat(out)


def encode_texts_cached(loaded: LoadedCLIP, texts, cache=None, progress: bool = True) -> torch.Tensor:
    """:func:`encode_texts` of ``texts``, cached on disk by (model, weights and activation, texts)."""
    from ..cache import load_torch, save_torch_atomic

    texts = list(texts)
    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
    key = hashlib.sha256(json.dumps([loaded.name, loaded.weights_id, digest]).encode()).hexdigest()[:20]
    path = cache_dir(cache) / "text_features" / f"{key}.pt"
    emb = load_torch(path, "cached text embeddings")  # a complete entry needs no lock (it appears by a rename)
    if emb is not None and tuple(emb.shape)[:1] == (len(texts),):
        return emb
    with entry_lock(path):
        emb = load_torch(path, "cached text embeddings")
        if emb is not None and tuple(emb.shape)[:1] == (len(texts),):
            return emb
        emb = encode_texts(loaded, texts, progress=progress)
        save_torch_atomic(emb, path)
    return emb


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class _Preprocessed(torch.utils.data.Dataset):
    """The preprocessed images ``indices`` of a dataset (picklable, for DataLoader workers)."""

    def __init__(self, dataset, preprocess, indices):
        self.dataset, self.preprocess, self.indices = dataset, preprocess, np.asarray(indices, dtype=np.int64)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.preprocess(self.dataset.image(int(self.indices[i])))


# ---------------------------------------------------------------------------------------------
# the cache
# ---------------------------------------------------------------------------------------------
def feature_cache_key(loaded: LoadedCLIP, dataset, local: bool, global_pool: str) -> tuple[str, dict]:
    """Cache key of a dataset's features and the description it hashes."""
    labels_hash = hashlib.sha256(np.ascontiguousarray(dataset.labels).tobytes()).hexdigest()[:16]
    # image ids may hold file names that are not UTF-8 (kept as surrogate escapes): hash their bytes
    ids_hash = hashlib.sha256("\n".join(map(str, dataset.image_ids)).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    desc = {"model": loaded.name, "weights": loaded.weights_id, "dataset": dataset.name,
            "split": dataset.split, "n_images": len(dataset), "image_ids": ids_hash, "labels": labels_hash,
            "dataset_info": {k: v for k, v in sorted(dataset.info.items()) if isinstance(v, (str, int, float))},
            "preprocess": repr(loaded.preprocess), "local": bool(local), "global_pool": global_pool,
            "code_version": FEATURE_CODE_VERSION}
    key = hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:20]
    return key, desc


def _read_state(folder: Path, n: int, shard_size: int) -> dict:
    """The entry's progress: shards done (in units of ``shard_size``), or complete; fresh if unreadable."""
    try:
        state = json.loads((folder / _STATE).read_text())
        if state.get("n") == n and isinstance(state.get("done"), list) and (
                state.get("complete") or state.get("shard_size") == shard_size):
            return state
    except (OSError, ValueError, AttributeError):
        pass
    return {"n": n, "shard_size": shard_size, "done": [], "complete": False}


def _write_state(folder: Path, state: dict) -> None:
    atomic_write(folder / _STATE, json.dumps(state, sort_keys=True))


def _load_entry(folder: Path, n: int, local: bool):
    """The complete entry's files (global, local, CLIP-pooled global or None), or None if a file is missing or damaged."""
    try:
        g = FeatureFile(folder / "global.npy")
        loc = FeatureFile(folder / "local.npy") if local else None
        g_clip = FeatureFile(folder / "global_clip.npy") if (folder / "global_clip.npy").exists() else None
    except (ValueError, FileNotFoundError, OSError):
        return None
    if len(g) != n or (loc is not None and len(loc) != n) or (g_clip is not None and len(g_clip) != n):
        return None
    return g, loc, g_clip   # on disk: ImageFeatures reads the global arrays when they are used


def _complete_entry(folder: Path, n: int, shard_size: int, local: bool):
    """A complete entry's arrays read without a lock (None when absent, incomplete or damaged)."""
    if not (folder / _STATE).is_file():
        return None
    return _load_entry(folder, n, local) if _read_state(folder, n, shard_size)["complete"] else None


def write_feature_entry(folder, global_emb, local_emb=None, *, chunk: int = 1024, global_clip=None) -> Path:
    """Store given features as a complete cache entry (``global.npy`` float32, ``local.npy`` float16).

    Each input may be an array, a tensor or any object with ``shape`` and row slicing: it is
    written ``chunk`` rows at a time, so benchmarks and tests build entries of real shapes without
    holding them (``global_clip`` as ``global_emb``; ``local_emb`` may be None).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    global_emb = global_emb if hasattr(global_emb, "shape") else np.asarray(global_emb, dtype=np.float32)
    n = int(global_emb.shape[0])
    for name, values, dtype in (("global", global_emb, np.float32), ("global_clip", global_clip, np.float32),
                                ("local", local_emb, np.float16)):
        if values is None:
            continue
        values = values if hasattr(values, "shape") else np.asarray(values, dtype=dtype)
        shape = tuple(int(s) for s in values.shape)
        if shape[0] != n:
            raise ValueError(f"write_feature_entry: {name} has {shape[0]} rows, expected {n} like global_emb")
        writer = _NpyWriter(folder / f"{name}.npy", shape, dtype)
        for start in range(0, n, chunk):
            block = values[start:start + chunk]
            block = block.detach().cpu().numpy() if isinstance(block, torch.Tensor) else np.asarray(block)
            writer.write(start, block.astype(dtype, copy=False))
        writer.sync()
        writer.close()
    _write_state(folder, {"n": n, "shard_size": n, "done": [0], "complete": True})
    return folder


def extract_image_features(loaded: LoadedCLIP, dataset, *, local: bool = True, global_pool: str = "no-pos",
                           batch_size: int = 64, num_workers: int = 0, shard_size: int = 2048,
                           cache: str | os.PathLike | None = None, use_cache: bool = True,
                           progress: bool = True) -> ImageFeatures:
    """Embed every image of ``dataset`` (global and local), reusing or resuming the on-disk cache."""
    if local and not has_local_branch(loaded.model):
        raise NotImplementedError(f"model {loaded.name!r} has no local branch (image tower "
                                  f"{type(loaded.model.visual).__name__}); pass local=False")
    for name, value, low in (("batch_size", batch_size, 1), ("shard_size", shard_size, 1),
                             ("num_workers", num_workers, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"extract_image_features: {name} must be an integer >= {low}, got {value!r}")
    key, desc = feature_cache_key(loaded, dataset, local, global_pool)
    n = len(dataset)
    if n == 0:
        raise ConfigError(f"extract_image_features: dataset {dataset.name!r} ({dataset.split}) has no images")
    if not use_cache:
        g, g_clip, loc = _compute(loaded, dataset, np.arange(n), local, global_pool, batch_size, num_workers,
                                  progress)
        return ImageFeatures(global_=g, local=loc, key=key, cache_path=None, global_clip=g_clip)
    folder = cache_dir(cache) / "features" / key
    entry = _complete_entry(folder, n, shard_size, local)  # no lock, nothing created: a read-only cache serves it
    if entry is not None:
        return ImageFeatures(global_=entry[0], local=entry[1], key=key, cache_path=folder, global_clip=entry[2])
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc, "the feature cache folder") from None
    with entry_lock(folder):
        state = _read_state(folder, n, shard_size)
        if state["complete"]:
            entry = _load_entry(folder, n, local)
            if entry is not None:
                return ImageFeatures(global_=entry[0], local=entry[1], key=key, cache_path=folder,
                                     global_clip=entry[2])
            warnings.warn(f"feature cache {folder} is damaged (a file is missing, truncated or not .npy); "
                          f"rebuilding it", RuntimeWarning, stacklevel=2)
            state = {"n": n, "shard_size": shard_size, "done": [], "complete": False}
            _write_state(folder, state)  # lock-free readers stop trusting the files before they are rewritten
        atomic_write(folder / "key.json", json.dumps(desc, indent=1, sort_keys=True))
        _fill(loaded, dataset, folder, state, local, global_pool, batch_size, num_workers, progress)
        entry = _load_entry(folder, n, local)
        if entry is None:  # pragma: no cover - _fill just wrote and synced both files
            raise RuntimeError(f"feature cache {folder} could not be read back after writing")
    return ImageFeatures(global_=entry[0], local=entry[1], key=key, cache_path=folder, global_clip=entry[2])


def _loader(loaded, dataset, indices, batch_size, num_workers):
    return torch.utils.data.DataLoader(
        _Preprocessed(dataset, loaded.preprocess, indices), batch_size=batch_size, num_workers=num_workers,
        pin_memory=loaded.device.type == "cuda", persistent_workers=False)


def _bar(dataset, n, initial, progress):
    from tqdm.auto import tqdm
    return tqdm(total=n, initial=initial, disable=not progress,
                desc=f"image features {dataset.name}/{dataset.split}", unit="img")


def _compute(loaded, dataset, indices, local, global_pool, batch_size, num_workers, progress):
    """Features of ``indices`` in memory (no cache): (global float32, local float16 or None)."""
    model = loaded.model.eval()
    gs, cs, ls = [], [], []
    with _bar(dataset, len(indices), 0, progress) as bar:
        for batch in _loader(loaded, dataset, indices, batch_size, num_workers):
            with _autocast(loaded.device):
                g, g_clip, loc = _pooled(model, batch.to(loaded.device, non_blocking=True), local, global_pool)
            gs.append(g.cpu())
            if g_clip is not None:
                cs.append(g_clip.cpu())
            if loc is not None:
                ls.append(loc.half().cpu())
            bar.update(len(batch))
    from .models import embed_dim
    g = torch.cat(gs) if gs else torch.empty(0, embed_dim(model))
    return g, (torch.cat(cs) if len(cs) == len(gs) and cs else None), (torch.cat(ls) if ls else None)


def _pooled(model, images, local, global_pool):
    """(the chosen global, CLIP's encode_image global or None, local or None) of one batch."""
    g, g_clip, loc = image_tower_outputs(model, images, local)
    if global_pool == "clip":
        if g_clip is None:
            pos = model.visual.attnpool.positional_embedding
            raise ValueError(f"global_pool='clip' needs a {int((pos.shape[0] - 1) ** 0.5)}-wide feature map "
                             f"(the model's input size); use global_pool='no-pos'.")
        g = g_clip
    return g, g_clip, loc


def _fill(loaded, dataset, folder: Path, state: dict, local, global_pool, batch_size, num_workers, progress):
    """Compute every shard not yet done, with one DataLoader over their images, writing in place."""
    n, shard_size = state["n"], state["shard_size"]
    n_shards = (n + shard_size - 1) // shard_size
    done = set(state["done"])
    todo = [s for s in range(n_shards) if s not in done]
    indices = np.concatenate([np.arange(s * shard_size, min(n, (s + 1) * shard_size)) for s in todo]) \
        if todo else np.zeros(0, dtype=np.int64)
    remaining = {s: min(n, (s + 1) * shard_size) - s * shard_size for s in todo}
    writers: dict[str, _NpyWriter] = {}
    model = loaded.model.eval()
    pos = 0
    try:
        with _bar(dataset, n, n - len(indices), progress) as bar:
            for batch in _loader(loaded, dataset, indices, batch_size, num_workers):
                with _autocast(loaded.device):
                    g, g_clip, loc = _pooled(model, batch.to(loaded.device, non_blocking=True), local, global_pool)
                g = g.cpu().numpy()
                g_clip = g_clip.cpu().numpy() if g_clip is not None else None
                loc = loc.half().cpu().numpy() if loc is not None else None
                if not writers:
                    writers["global"] = _NpyWriter(folder / "global.npy", (n,) + g.shape[1:], np.float32)
                    if g_clip is not None:
                        writers["global_clip"] = _NpyWriter(folder / "global_clip.npy", (n,) + g.shape[1:],
                                                            np.float32)
                    if loc is not None:
                        writers["local"] = _NpyWriter(folder / "local.npy", (n,) + loc.shape[1:], np.float16)
                rows = indices[pos:pos + len(g)]
                # rows are runs of consecutive indices (whole shards); write each run in one go
                breaks = np.flatnonzero(np.diff(rows) != 1) + 1
                for run in np.split(np.arange(len(rows)), breaks):
                    writers["global"].write(rows[run[0]], g[run])
                    if g_clip is not None:
                        writers["global_clip"].write(rows[run[0]], g_clip[run])
                    if loc is not None:
                        writers["local"].write(rows[run[0]], loc[run])
                for s, count in zip(*np.unique(rows // shard_size, return_counts=True)):
                    remaining[int(s)] -= int(count)
                    if remaining[int(s)] == 0:
                        for w in writers.values():
                            w.sync()
                        done.add(int(s))
                        _write_state(folder, {**state, "done": sorted(done), "complete": False})
                pos += len(g)
                bar.update(len(g))
    finally:
        for w in writers.values():
            w.close()
    _write_state(folder, {**state, "done": sorted(done), "complete": len(done) == n_shards})
