"""TaI-DPT (Guo et al., CVPR 2023, "Texts as Images in Prompt Tuning"): CoMC's text-only rival, re-implemented here.

TaI-DPT learns *prompts* instead of a linear classifier: for every class a sentence
``[SOS] ctx_1 ... ctx_n <class name> . [EOS]`` whose ``n`` context vectors are learned, is passed
through the frozen CLIP text encoder; its end-of-text feature is the class embedding. Two prompt
sets are learned (same class names, separate contexts): a *global* one, compared with a sentence's
end-of-text feature (and, at test time, with the image's global feature), and a *local* one,
compared with every token feature of a sentence (at test time, with every spatial feature of the
image): texts stand in for images ("texts as images"), tokens for image regions.

What the official code does (repository guozix/TaI-DPT, read for this module; none of it copied)
-----------------------------------------------------------------------------------------------
``trainers/Caption_distill_double.py`` (the trainer ``Caption_distill_double``, model ``DenseCLIP``):

* ``PromptLearner``: ``n_ctx = 16`` context vectors (``train_caption.py``: ``TRAINER.Caption.N_CTX
  16``, ``CSC False``: one context shared by every class, ``CLASS_TOKEN_POSITION "end"``), drawn
  ``N(0, 0.02)``, a global ``ctx`` and a local ``ctx_double``; the prompt text is
  ``"X X ... X {name}."`` tokenised by CLIP's tokenizer (context 77), its token embeddings split into
  the ``[SOS]`` prefix and the suffix (class tokens, ".", ``[EOS]``, padding), and the learned
  vectors put between them. With ``CTX_INIT`` (words) the context is initialised from the words'
  embeddings with ``n_ctx = len(words)``; that branch never creates ``ctx_double`` and so fails
  (NameError): here a phrase initialises both contexts. The learner also holds three scalar
  parameters (``temperature``, ``spatial_T``, ``ranking_scale``) that the released configs leave
  unused (``IF_LEARN_SCALE False``, ``IF_LEARN_spatial_SCALE False``): not reproduced.
* ``TextEncoder``: token embeddings + positional embedding, the transformer (causal mask),
  ``ln_final``; the end-of-text position (``argmax`` of the token ids) through
  ``text_projection`` (global), or with ``if_sequence=True`` *every* one of the 77 positions through
  ``text_projection`` (local).
* Training (``DenseCLIP.forward`` without ``if_test``): a caption's end-of-text feature and its 77
  token features, all L2-normalised; the prompts' features normalised; ``logits = 4 * cos``
  (``logit_scale = 4.0`` when ``IF_LEARN_SCALE`` is False) with the global prompts; local:
  ``cos`` of every token with the local prompts, ``-10000`` added where the token id is 0
  (padding), ``softmax`` over the tokens of ``cos * spatial_SCALE_text`` (50), ``local = 4 * sum_t
  cos_t * softmax_t``. Loss ``double_ranking``: ``ranking_loss(global, scale 1, margin 1) +
  ranking_loss(local, scale 1, margin 1)`` (``trainers/utils.py``: per sample the sum over
  (positive, negative) pairs of ``max(0, 1 - s_pos + s_neg)``, mean over the batch).
* Test (``if_test=True``): the image's global feature is CLIP's attention pool **without** its
  positional embedding (``attnpool(x, if_pos=False)``), the local ones ``c_proj(v_proj(x))`` per
  position of the 7 x 7 map; ``global = 4 * cos``, ``local = 4 * sum_p cos_p softmax_p(cos_p *
  spatial_SCALE_image)``; the evaluator ``MLClassification`` with ``EVALUATOR_ACT
  default_merge_aux`` (``Dassl.pytorch-master/dassl/evaluation/evaluator.py``) merges
  ``GL_merge_rate * global + (1 - GL_merge_rate) * local`` with ``GL_merge_rate = 0.5``.
* Configs ``configs/trainers/Caption_distill_double/rn50_{voc2007,coco2014,nuswide}.yaml``: SGD,
  lr 1e-4 (VOC, COCO) / 1e-3 (NUS-WIDE), 20 epochs, cosine schedule, 1 warm-up epoch at the
  constant 1e-5, batch 512, ``spatial_SCALE_text 50``, ``spatial_SCALE_image 40`` (VOC, COCO) / 4
  (NUS-WIDE), ``LOSSFUNC double_ranking``; Dassl's defaults (``dassl/config/defaults.py``,
  ``dassl/optim/optimizer.py``): momentum 0.9, weight decay 5e-4, no dampening, no Nesterov;
  ``dassl/optim/lr_scheduler.py``: ``CosineAnnealingLR(T_max = 20)`` behind a
  ``ConstantWarmupScheduler``, stepped per epoch (so :func:`lr_at_epoch` of the CoMC classifier);
  ``dassl/data/data_manager.py``: the last incomplete batch is dropped.
* Data (``datasets/coco2014_distill.py``): filtered captions (labels from matching class-name
  synonyms after lemmatisation) tokenised by ``clip.tokenize`` plus, per class, 9 copies of
  ``"a photo of a {}."`` and CLIP's 80 ImageNet templates; the text encoder is frozen and the
  caption features are recomputed every step. Model selection on test images (``FINAL_MODEL
  best_val``, ``val = test[0::10]`` for COCO) - here training runs fixed epochs, as for CoMC.

What differs here, and why
--------------------------
* Caption features are computed **once** (:func:`text_token_features`, no gradient: the encoder is
  frozen, so this is the same computation) and kept as float32 end-of-text features (N, D) and
  **float16** token features (N, L, D) with a mask (N, L). L is the corpus's longest sentence in
  tokens (<= the context length; ``max_tokens`` truncates as open_clip's tokenizer does), not 77:
  with the causal attention mask a position never sees the ones after it, so dropping trailing
  padding changes nothing. Memory: N x L x D x 2 bytes (100k sentences x 40 tokens x 1024 for RN50:
  8.2 GB); the official code holds no such array but runs the encoder on every caption every step.
* The token mask covers the real tokens (``[SOS]`` ... ``[EOS]``); the official mask drops token id 0,
  which is the padding but also "!" in CLIP's vocabulary.
* Prompts are likewise run at the length of the longest prompt (same result; for RN50's 80 COCO prompts
  22 of 77 positions, 4.7-5x less time per step in ``benchmarks/taidpt.py``).
* The official prompt text uses "X" placeholders whose embeddings are overwritten; so does this one.
  With ``ctx_init`` the context length is the phrase's **token** count (the official code counts words).
* Determinism from a seed through private generators; the global RNG is never used.

Scoring images (:meth:`TaIDPT.scores`) goes through :func:`lcmc_core.method.mapping.score_images`
(softmax pooling with ``pool_temperature = logit_scale / local_test_temperature`` on logits
``logit_scale * cos``, which is the official ``logit_scale * sum_p cos_p softmax_p(T cos_p)``); with
``mapping`` (a fitted CoMC) the image embeddings are first mapped by CoMC's :func:`~lcmc_core.method.mapping.cross_modal_map`,
an ablation (CoMC's mapping on TaI-DPT's prompts) that neither paper runs.
:func:`fit_taidpt_cached` keeps trained prompts on disk (``<cache>/taidpt/<key>.pt``). Works with
open_clip models whose text tower is a causal CLIP transformer (``CLIP`` or ``CustomTextCLIP`` with
a ``TextTransformer``: RN50, ViT-B-32, the toy CLIP); image features come from
:mod:`lcmc_core.images.features` for any tower with a local branch.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import time
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cache import cache_dir, entry_lock, load_torch, save_torch_atomic
from ..checks import as_tensor
from ..errors import ConfigError
from ..memory import release_freed_memory
from . import metrics
from .classifier import TrainConfig, lr_at_epoch, ranking_loss
from .mapping import score_images

__all__ = ["TaIDPTConfig", "OFFICIAL_PRESETS", "TextTokenFeatures", "PromptLearner", "TaIDPT",
           "text_tower", "encode_text_embeddings", "text_token_features", "local_text_logits",
           "taidpt_cache_key", "fit_taidpt_cached", "TAIDPT_CODE_VERSION"]

# Bump when training or the saved format changes in a way that changes the learned prompts.
TAIDPT_CODE_VERSION = "1"
_FORMAT = "lcmc.TaIDPT"
_POOL_TYPES = ("argmax", "eos")

#: Per-dataset values of the official configs that differ from the defaults (VOC2007 = COCO = defaults).
OFFICIAL_PRESETS = {
    "voc2007": {},
    "coco2014": {},
    "nuswide": {"lr": 1e-3, "local_test_temperature": 4.0},
}


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaIDPTConfig:
    """Hyper-parameters of TaI-DPT; the defaults are the official VOC2007 / COCO configuration."""

    n_ctx: int = 16                        # learned context vectors per prompt (ignored with ctx_init)
    ctx_std: float = 0.02                  # std of their normal initialisation
    ctx_init: str | None = None            # initialise both contexts from this phrase's word embeddings
    class_specific: bool = False           # one context per class (official CSC, default False)
    epochs: int = 20
    batch_size: int = 512
    lr: float = 1e-4                       # 1e-3 for NUS-WIDE
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5                # constant during warm-up
    logit_scale: float = 4.0               # logits = logit_scale * cosine (global and local)
    local_train_temperature: float = 50.0  # multiplies token cosines inside the softmax (spatial_SCALE_text)
    local_test_temperature: float = 40.0   # same over image positions (spatial_SCALE_image; 4 for NUS-WIDE)
    margin: float = 1.0                    # ranking loss
    local_weight: float = 0.5              # merged = (1 - w) global + w local (official GL_merge_rate 0.5)
    max_tokens: int | None = None          # token positions kept per sentence (None: the model's context)
    drop_last: bool = True                 # drop the last incomplete batch (Dassl)

    def __post_init__(self):
        def bad(name, expected):
            raise ConfigError(f"TaIDPTConfig.{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("n_ctx", "epochs", "batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                bad(name, "an integer >= 1")
        if not _is_int(self.warmup_epochs) or not 0 <= self.warmup_epochs < self.epochs:
            bad("warmup_epochs", f"an integer in [0, epochs) = [0, {self.epochs})")
        for name in ("ctx_std", "lr", "warmup_lr", "logit_scale", "local_train_temperature",
                     "local_test_temperature"):
            if not _is_real(getattr(self, name)) or getattr(self, name) <= 0:
                bad(name, "a finite number > 0")
        for name in ("weight_decay", "margin"):
            if not _is_real(getattr(self, name)) or getattr(self, name) < 0:
                bad(name, "a finite number >= 0")
        if not _is_real(self.momentum) or not 0 <= self.momentum < 1:
            bad("momentum", "a number in [0, 1)")
        if not _is_real(self.local_weight) or not 0 <= self.local_weight <= 1:
            bad("local_weight", "a number in [0, 1]")
        if self.ctx_init is not None and (not isinstance(self.ctx_init, str) or not self.ctx_init.strip()):
            bad("ctx_init", "None or a non-empty phrase")
        for name in ("class_specific", "drop_last"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "True or False")
        if self.max_tokens is not None and (not _is_int(self.max_tokens) or self.max_tokens < 3):
            bad("max_tokens", "None or an integer >= 3")

    def to_dict(self) -> dict:
        """Return the configuration as a plain dict (for saving and cache keys)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TaIDPTConfig:
        """Build a configuration from :meth:`to_dict` output; unknown keys are an error."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"TaIDPTConfig.from_dict: unknown keys {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def official(cls, dataset: str, **overrides) -> TaIDPTConfig:
        """The official configuration of ``dataset`` (voc2007, coco2014, nuswide), with ``overrides``."""
        if dataset not in OFFICIAL_PRESETS:
            raise ConfigError(f"TaIDPTConfig.official: dataset expected one of {sorted(OFFICIAL_PRESETS)}, "
                              f"got {dataset!r}")
        return cls(**{**OFFICIAL_PRESETS[dataset], **overrides})

    def schedule(self) -> TrainConfig:
        """The learning-rate schedule as a :class:`TrainConfig` (for :func:`lr_at_epoch`)."""
        return TrainConfig(epochs=self.epochs, lr=self.lr, warmup_epochs=self.warmup_epochs,
                           warmup_lr=self.warmup_lr, warmup_type="constant")


# ----------------------------------------------------------------------------------------------
# the text path of open_clip, from embeddings
# ----------------------------------------------------------------------------------------------
class _Tower(NamedTuple):
    token_embedding: nn.Module
    positional_embedding: torch.Tensor
    transformer: nn.Module
    attn_mask: torch.Tensor
    ln_final: nn.Module
    text_projection: object
    pool_type: str
    eos_id: int | None
    context_length: int


def text_tower(model: nn.Module) -> _Tower:
    """The parts of an open_clip text tower (``CLIP`` or ``CustomTextCLIP`` + ``TextTransformer``) TaI-DPT runs."""
    src = model
    if not hasattr(model, "token_embedding") and hasattr(model, "text"):
        src = model.text
        if getattr(src, "cls_emb", None) is not None or getattr(src, "use_pad_mask", False):
            raise NotImplementedError("text_tower: text towers with a class token or a padding mask (CoCa) are not "
                                      "supported")
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
    if not all(hasattr(src, a) for a in needed):
        raise NotImplementedError(f"text_tower: {type(model).__name__} has no CLIP text transformer "
                                  f"(Hugging Face text towers are not supported)")
    pool = getattr(src, "text_pool_type", getattr(src, "pool_type", "argmax"))
    if pool not in _POOL_TYPES:
        raise NotImplementedError(f"text_tower: text pooling {pool!r} is not supported (expected one of {_POOL_TYPES})")
    mask = getattr(src, "attn_mask", None)
    if mask is None:
        raise NotImplementedError("text_tower: the text transformer has no causal attention mask")
    eos = getattr(src, "text_eos_id", getattr(src, "eos_id", None))
    return _Tower(src.token_embedding, src.positional_embedding, src.transformer, mask, src.ln_final,
                  src.text_projection, pool, eos, int(src.positional_embedding.shape[0]))


def _pool_index(tower: _Tower, tokens: torch.Tensor) -> torch.Tensor:
    """Position of the pooled (end-of-text) token of each row, as open_clip's ``text_global_pool``."""
    if tower.pool_type == "argmax":
        return tokens.argmax(dim=-1)
    return (tokens == tower.eos_id).int().argmax(dim=-1)


def _project(tower: _Tower, x: torch.Tensor) -> torch.Tensor:
    """Apply ``text_projection`` (a matrix or an ``nn.Linear``) to (..., width) features."""
    proj = tower.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj


def encode_text_embeddings(model: nn.Module, embeddings: torch.Tensor, pool_index: torch.Tensor,
                           sequence: bool = False):
    """CLIP's text path from token embeddings (N, L, width): the pooled feature (N, D), and (N, L, D) per token if ``sequence``.

    Positional embedding, the transformer with its causal mask (both cut to L <= context length;
    positions never attend forward, so a row's first L outputs do not depend on what follows),
    ``ln_final``, then ``text_projection`` at ``pool_index`` (the end-of-text position) and, with
    ``sequence=True``, at every position too. Not normalised; gradients flow to ``embeddings``.
    """
    tower = text_tower(model)
    n, length, _ = embeddings.shape
    if length > tower.context_length:
        raise ValueError(f"embeddings: {length} positions exceed the context length {tower.context_length}")
    cast = tower.transformer.get_cast_dtype()
    x = embeddings.to(cast) + tower.positional_embedding[:length].to(cast)
    x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length].to(device=x.device))
    x = tower.ln_final(x)
    pooled = _project(tower, x[torch.arange(n, device=x.device), pool_index.to(x.device)])
    if sequence:
        return pooled, _project(tower, x)
    return pooled


def _context_length(tower: _Tower, max_tokens: int | None) -> int:
    """The token positions used: the model's context, or ``max_tokens`` if smaller."""
    return tower.context_length if max_tokens is None else min(tower.context_length, int(max_tokens))


def _tokenize(tokenizer, texts: list[str], length: int, full: int) -> torch.Tensor:
    """Token ids (N, length); a context shorter than the model's truncates as open_clip's tokenizer does (EOT last)."""
    return tokenizer(texts) if length == full else tokenizer(texts, context_length=length)


# ----------------------------------------------------------------------------------------------
# sentence features
# ----------------------------------------------------------------------------------------------
class TextTokenFeatures(NamedTuple):
    """Per sentence: the end-of-text feature (N, D) float32, token features (N, L, D) float16 and their mask (N, L) bool.

    All L2-normalised (padding rows are zero); ``mask`` is True at the real tokens, ``[SOS]`` to
    ``[EOS]`` inclusive. L is the longest sentence's token count.
    """

    global_: torch.Tensor
    local: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return self.global_.shape[0]

    def select(self, idx) -> TextTokenFeatures:
        """The features of rows ``idx`` (a tensor or array of indices or a boolean mask)."""
        idx = torch.as_tensor(np.asarray(idx))
        return TextTokenFeatures(self.global_[idx], self.local[idx], self.mask[idx])


@torch.no_grad()
def text_token_features(loaded, texts, batch_size: int = 256, max_tokens: int | None = None,
                        local_dtype: torch.dtype = torch.float16, progress: bool = False) -> TextTokenFeatures:
    """End-of-text and token features of sentences through the frozen text encoder (no gradient), on CPU.

    ``loaded`` is a :class:`~lcmc_core.images.models.LoadedCLIP` (or anything with ``model``,
    ``tokenizer`` and ``device``). Sentences are processed ``batch_size`` at a time, sorted by
    length, each batch cut to its longest sentence (exact under the causal mask). Token features
    are stored as ``local_dtype`` (float16 by default: half the memory; cosines move by ~1e-3).
    """
    from tqdm.auto import tqdm

    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise TypeError("text_token_features: texts must be a non-empty list of str")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    model = loaded.model
    tower = text_tower(model)
    device = torch.device(getattr(loaded, "device", None) or next(model.parameters()).device)
    length = _context_length(tower, max_tokens)
    was_training = model.training
    model.eval()
    try:
        tokens = _tokenize(loaded.tokenizer, texts, length, tower.context_length)
        pos = _pool_index(tower, tokens)
        order = torch.argsort(pos, stable=True)
        width = int(pos.max()) + 1
        n = len(texts)
        g_out = l_out = None
        mask = torch.arange(width)[None, :] <= pos[:, None]
        batches = range(0, n, batch_size)
        for start in tqdm(batches, disable=not progress, desc="TaI-DPT text features", unit="batch"):
            idx = order[start:start + batch_size]
            lb = int(pos[idx].max()) + 1
            tok = tokens[idx, :lb].to(device)
            emb = tower.token_embedding(tok)
            g, seq = encode_text_embeddings(model, emb, pos[idx], sequence=True)
            g = F.normalize(g.float(), dim=-1).cpu()
            seq = F.normalize(seq.float(), dim=-1) * mask[idx, :lb, None].to(device)
            if g_out is None:
                g_out = torch.empty(n, g.shape[1], dtype=torch.float32)
                l_out = torch.zeros(n, width, g.shape[1], dtype=local_dtype)
            g_out[idx] = g
            l_out[idx, :lb] = seq.to(local_dtype).cpu()
    finally:
        model.train(was_training)
    release_freed_memory()
    return TextTokenFeatures(g_out, l_out, mask)


def local_text_logits(token_features: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor,
                      logit_scale: float = 4.0, temperature: float = 50.0) -> torch.Tensor:
    """TaI-DPT's local logits of sentences: ``logit_scale * sum_t cos_t softmax_t(temperature * cos_t)`` over real tokens.

    ``token_features`` (B, L, D) and ``weights`` (C, D) are expected L2-normalised; ``mask`` (B, L)
    is True at the tokens that count (at least one per row). Returns (B, C).
    """
    cos = torch.einsum("bld,cd->blc", token_features.to(weights.dtype), weights)
    keep = mask.to(cos.device)[:, :, None]
    attn = torch.softmax((cos * temperature).masked_fill(~keep, float("-inf")), dim=1)
    return logit_scale * (attn * cos.masked_fill(~keep, 0.0)).sum(dim=1)


# ----------------------------------------------------------------------------------------------
# the prompt learner
# ----------------------------------------------------------------------------------------------
class PromptLearner(nn.Module):
    """Global and local learnable prompts ``[SOS] ctx_1..ctx_n <class name> . [EOS]`` as token embeddings.

    Parameters: ``ctx_global`` and ``ctx_local``, (n_ctx, width) or, class-specific, (C, n_ctx,
    width), float32; with ``ctx_init`` both start from the phrase's token embeddings (every class
    from the same ones when class-specific). Buffers (not saved): the embeddings of ``[SOS]`` and of the class-name suffix,
    and the end-of-text position of every prompt. :meth:`forward` returns the two (C, L, width)
    embedding sets, L the longest prompt's length.
    """

    def __init__(self, loaded, classnames, config: TaIDPTConfig | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        config = TaIDPTConfig() if config is None else config
        classnames = [str(c).replace("_", " ") for c in classnames]
        if not classnames or any(not c.strip() for c in classnames):
            raise ValueError("classnames: expected a non-empty list of non-empty names")
        model, tokenizer = loaded.model, loaded.tokenizer
        tower = text_tower(model)
        length = _context_length(tower, config.max_tokens)
        emb_layer = tower.token_embedding
        device = emb_layer.weight.device
        width = emb_layer.weight.shape[1]

        def embed(tokens):
            with torch.no_grad():
                return emb_layer(tokens.to(device)).float().cpu()

        if config.ctx_init is not None:
            phrase = " ".join(config.ctx_init.replace("_", " ").split())
            tok = tokenizer([phrase])
            n_ctx = int(_pool_index(tower, tok)[0]) - 1
            if n_ctx < 1:
                raise ValueError(f"TaIDPTConfig.ctx_init: {config.ctx_init!r} has no tokens")
            init = embed(tok)[0, 1:1 + n_ctx]
            shape = (len(classnames), n_ctx, width) if config.class_specific else (n_ctx, width)
            ctx_g = init.expand(shape).clone()
            ctx_l = init.expand(shape).clone()
            prefix_text = phrase
        else:
            n_ctx = config.n_ctx
            shape = (len(classnames), n_ctx, width) if config.class_specific else (n_ctx, width)
            ctx_g = torch.randn(shape, generator=generator) * config.ctx_std
            ctx_l = torch.randn(shape, generator=generator) * config.ctx_std
            prefix_text = " ".join(["X"] * n_ctx)
        prompts = [f"{prefix_text} {name}." for name in classnames]
        tokens = tokenizer(prompts)
        pos = _pool_index(tower, tokens)
        prefix_only = tokenizer([prefix_text])[0]
        if not torch.equal(tokens[:, 1:1 + n_ctx], prefix_only[None, 1:1 + n_ctx].expand(len(prompts), -1)):
            raise ValueError("PromptLearner: the context placeholders did not tokenise one token each")
        encode = getattr(tokenizer, "encode", None)
        for name, p in zip(classnames, pos.tolist()):
            needed = 2 + n_ctx + (len(encode(f"{name}.")) if encode else 1)
            if needed > length or p <= n_ctx + 1:
                raise ValueError(f"classnames: the prompt for {name!r} needs {needed} tokens, more than the "
                                 f"context length {length} (lower n_ctx or raise max_tokens)")
        width_used = int(pos.max()) + 1
        full = embed(tokens[:, :width_used])
        self.ctx_global = nn.Parameter(ctx_g)
        self.ctx_local = nn.Parameter(ctx_l)
        self.register_buffer("token_prefix", full[:, :1].clone(), persistent=False)
        self.register_buffer("token_suffix", full[:, 1 + n_ctx:].clone(), persistent=False)
        self.register_buffer("pool_index", pos.clone(), persistent=False)
        self.n_ctx = n_ctx
        self.classnames = classnames
        self.prompt_texts = prompts
        self.config = config

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return len(self.classnames)

    def _with_ctx(self, ctx: torch.Tensor) -> torch.Tensor:
        """[SOS] + ctx + suffix for every class: (C, L, width)."""
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.num_classes, -1, -1)
        return torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The global and local prompt embeddings, each (C, L, width)."""
        return self._with_ctx(self.ctx_global), self._with_ctx(self.ctx_local)

    def class_embeddings(self, model: nn.Module, normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Global and local class embeddings (C, D) through the text encoder of ``model`` (with gradient)."""
        g, loc = self()
        both = encode_text_embeddings(model, torch.cat([g, loc], dim=0), torch.cat([self.pool_index] * 2))
        both = both.float()
        if normalize:
            both = F.normalize(both, dim=-1)
        return both[:self.num_classes], both[self.num_classes:]


# ----------------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------------
def _generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Two independent CPU generators (context init, batch shuffling) derived from one seed."""
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    s = np.random.SeedSequence(int(seed)).generate_state(2, dtype=np.uint64)
    return (torch.Generator().manual_seed(int(s[0]) & (2 ** 63 - 1)),
            torch.Generator().manual_seed(int(s[1]) & (2 ** 63 - 1)))


def _check_targets(targets, n: int, c: int | None, name: str, allow_difficult: bool) -> torch.Tensor:
    """Targets as a float (N, C) tensor of allowed values, or a clear error."""
    t = as_tensor(targets, name)
    if t.ndim != 2 or t.shape[0] != n or t.shape[1] == 0 or (c is not None and t.shape[1] != c):
        raise ValueError(f"{name}: expected an ({n}, {c if c is not None else 'C'}) matrix, got shape {tuple(t.shape)}")
    allowed = (-1, 0, 1) if allow_difficult else (0, 1)
    ok = torch.zeros_like(t, dtype=torch.bool)
    for v in allowed:
        ok |= t == v
    if not ok.all():
        raise ValueError(f"{name}: expected only values {allowed}, found {torch.unique(t[~ok])[:5].tolist()}")
    return t


def _features(loaded, texts, config: TaIDPTConfig, progress: bool) -> TextTokenFeatures:
    """Precomputed features as given, or those of a list of sentences."""
    if isinstance(texts, TextTokenFeatures):
        return texts
    return text_token_features(loaded, texts, max_tokens=config.max_tokens, progress=progress)


class TaIDPT:
    """TaI-DPT as an estimator: ``TaIDPT(config, seed).fit(loaded, texts, targets, classnames)``, then :meth:`scores`.

    After :meth:`fit`: ``prompt_learner_`` (the learned :class:`PromptLearner`, on CPU),
    ``global_weights_`` / ``local_weights_`` (C, D) L2-normalised class embeddings of the two
    prompt sets (float32, CPU), ``classnames_`` and ``history_`` (one dict per epoch: ``epoch``,
    ``lr``, ``train_loss``, ``train_loss_global``, ``train_loss_local``, ``seconds`` and, with
    ``val``, ``val_map`` / ``val_map_global`` / ``val_map_local`` in percent).
    """

    def __init__(self, config: TaIDPTConfig | None = None, seed: int = 0):
        if config is not None and not isinstance(config, TaIDPTConfig):
            raise TypeError(f"config: expected a TaIDPTConfig or None, got {type(config).__name__}")
        _generators(seed)  # validates the seed
        self.config = TaIDPTConfig() if config is None else config
        self.seed = int(seed)

    def __repr__(self) -> str:
        return f"TaIDPT(config={self.config!r}, seed={self.seed})"

    @classmethod
    def from_weights(cls, global_weights, local_weights, config: TaIDPTConfig | None = None,
                     classnames=None) -> TaIDPT:
        """An estimator with given (C, D) class embeddings (normalised here) and no prompt learner."""
        est = cls(config)
        g = F.normalize(as_tensor(global_weights, "global_weights", floating=True).float(), dim=-1)
        loc = F.normalize(as_tensor(local_weights, "local_weights", floating=True).float(), dim=-1)
        if g.ndim != 2 or g.shape != loc.shape:
            raise ValueError(f"global_weights, local_weights: expected two (C, D) matrices of one shape, got "
                             f"{tuple(g.shape)} and {tuple(loc.shape)}")
        est.global_weights_, est.local_weights_ = g.cpu(), loc.cpu()
        est.prompt_learner_, est.history_ = None, []
        est.classnames_ = list(classnames) if classnames is not None else None
        return est

    # -- training -------------------------------------------------------------------------------
    def fit(self, loaded, texts, targets, classnames, val=None, progress: bool = False) -> TaIDPT:
        """Learn the prompts on sentences with {0,1} targets (N, C); the text encoder stays frozen.

        ``texts`` is a list of sentences or their :class:`TextTokenFeatures`; ``val = (texts or
        features, targets)`` (targets may hold -1, counted as negative) is scored after every epoch
        (global logits, local logits with the training temperature over tokens, and the merge) and
        its mAP recorded; it never selects the model.
        """
        cfg = self.config
        model = loaded.model
        feats = _features(loaded, texts, cfg, progress)
        n = len(feats)
        classnames = list(classnames)
        y_all = _check_targets(targets, n, len(classnames), "targets", allow_difficult=False).float()
        val_feats = val_y = None
        if val is not None:
            if not isinstance(val, (tuple, list)) or len(val) != 2:
                raise ValueError("val: expected a pair (texts or TextTokenFeatures, targets) or None")
            val_feats = _features(loaded, val[0], cfg, progress=False)
            val_y = _check_targets(val[1], len(val_feats), len(classnames), "val[1]", allow_difficult=True).numpy()
        device = next(model.parameters()).device
        g_init, g_shuffle = _generators(self.seed)
        learner = PromptLearner(loaded, classnames, cfg, generator=g_init).to(device)
        optimizer = torch.optim.SGD(learner.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
        schedule = cfg.schedule()
        bs = cfg.batch_size
        n_used = (n // bs) * bs if (cfg.drop_last and n >= bs) else n

        frozen = [(p, p.requires_grad) for p in model.parameters()]
        was_training = model.training
        history: list[dict] = []
        epochs = range(cfg.epochs)
        if progress:
            from tqdm.auto import tqdm
            epochs = tqdm(epochs, desc="TaI-DPT", unit="epoch")
        try:
            for p, _ in frozen:
                p.requires_grad_(False)
            model.eval()
            for epoch in epochs:
                t0 = time.perf_counter()
                lr = lr_at_epoch(epoch, schedule)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                perm = torch.randperm(n, generator=g_shuffle)
                totals = np.zeros(3)
                seen = 0
                for start in range(0, n_used, bs):
                    idx = perm[start:start + bs]
                    w_g, w_l = learner.class_embeddings(model)
                    m = feats.mask[idx]
                    lb = int(m.sum(dim=1).max())
                    x_g = feats.global_[idx].to(device)
                    x_l = feats.local[idx, :lb].to(device=device, dtype=torch.float32)
                    y = y_all[idx].to(device)
                    loss_g = ranking_loss(cfg.logit_scale * x_g @ w_g.T, y, margin=cfg.margin)
                    loss_l = ranking_loss(local_text_logits(x_l, m[:, :lb], w_l, cfg.logit_scale,
                                                            cfg.local_train_temperature), y, margin=cfg.margin)
                    loss = loss_g + loss_l
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    totals += len(idx) * np.array([loss.item(), loss_g.item(), loss_l.item()])
                    seen += len(idx)
                record = {"epoch": epoch, "lr": float(lr), "train_loss": float(totals[0] / seen),
                          "train_loss_global": float(totals[1] / seen), "train_loss_local": float(totals[2] / seen)}
                if val_feats is not None:
                    with torch.no_grad():
                        w_g, w_l = learner.class_embeddings(model)
                        s = self._text_scores(val_feats, w_g.cpu(), w_l.cpu(), cfg.local_train_temperature)
                    for key, part in (("val_map", "merged"), ("val_map_global", "global"), ("val_map_local", "local")):
                        record[key] = float(metrics.mean_average_precision(s[part].numpy(), val_y))
                record["seconds"] = float(time.perf_counter() - t0)
                history.append(record)
                if progress:
                    epochs.set_postfix({k: round(v, 4) for k, v in record.items() if k not in ("epoch", "seconds")})
            with torch.no_grad():
                w_g, w_l = learner.class_embeddings(model)
        finally:
            for p, flag in frozen:
                p.requires_grad_(flag)
            model.train(was_training)
        self.prompt_learner_ = learner.cpu().eval()
        self.global_weights_, self.local_weights_ = w_g.detach().cpu(), w_l.detach().cpu()
        self.classnames_ = classnames
        self.history_ = history
        release_freed_memory()
        return self

    # -- scoring --------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "global_weights_"):
            raise RuntimeError("TaIDPT: call fit() (or fit_taidpt_cached / from_weights) first")

    def _text_scores(self, feats: TextTokenFeatures, w_g: torch.Tensor, w_l: torch.Tensor, temperature: float,
                     chunk: int = 2048) -> dict:
        """Global / local / merged logits (N, C) of sentence features (the training-time computation)."""
        cfg = self.config
        g_parts, l_parts = [], []
        for start in range(0, len(feats), chunk):
            m = feats.mask[start:start + chunk]
            lb = int(m.sum(dim=1).max())
            g_parts.append(cfg.logit_scale * feats.global_[start:start + chunk] @ w_g.T)
            l_parts.append(local_text_logits(feats.local[start:start + chunk, :lb].float(), m[:, :lb], w_l,
                                             cfg.logit_scale, temperature))
        g, loc = torch.cat(g_parts), torch.cat(l_parts)
        return {"global": g, "local": loc, "merged": (1 - cfg.local_weight) * g + cfg.local_weight * loc}

    def text_scores(self, features: TextTokenFeatures) -> dict:
        """Scores of sentences (as during training, token softmax at ``local_train_temperature``): dict of (N, C)."""
        self._check_fitted()
        return self._text_scores(features, self.global_weights_, self.local_weights_,
                                 self.config.local_train_temperature)

    def scores(self, global_emb, local_emb=None, *, mapping=None, image_chunk: int = 256, device=None) -> dict:
        """Image scores as TaI-DPT's test: dict ``global``, ``local``, ``merged`` of (N, C) logits on CPU.

        ``global_emb`` (N, D) are the global image embeddings (official: attention pool without
        positional embedding), ``local_emb`` (N, P, D) the local ones (tensor or
        :class:`~lcmc_core.images.features.FeatureFile`, streamed ``image_chunk`` images at a time)
        or None (then ``merged`` is ``global``). ``global = logit_scale * cos``, ``local =
        logit_scale * sum_p cos_p softmax_p(local_test_temperature * cos_p)``, ``merged = (1 -
        local_weight) * global + local_weight * local``. ``mapping``, an ablation: a fitted
        :class:`~lcmc_core.method.comc.CoMC` whose cross-modal mapping (every one of its mapping
        hyperparameters) is applied to the image embeddings first
        (:meth:`~lcmc_core.method.comc.CoMC.mapping_transforms`).
        """
        self._check_fitted()
        cfg = self.config
        s = cfg.logit_scale
        g_map, l_map = mapping.mapping_transforms() if mapping is not None else (None, None)
        res = score_images({"global": s * self.global_weights_, "local": s * self.local_weights_}, global_emb,
                           local_emb, local_weight=cfg.local_weight, image_chunk=image_chunk, local_pool="softmax",
                           pool_temperature=s / cfg.local_test_temperature, global_transform=g_map,
                           local_transform=l_map, device=device)
        g = res["global"]["global"]
        loc = res["local"]["local"]
        merged = g if loc is None else (1 - cfg.local_weight) * g + cfg.local_weight * loc
        return {"global": g, "local": loc, "merged": merged}

    # -- saving ---------------------------------------------------------------------------------
    def _blob(self) -> dict:
        """What the cache keeps: learned contexts, class embeddings, history, config, seed, class names."""
        self._check_fitted()
        learner = self.prompt_learner_
        return {"format": _FORMAT, "version": TAIDPT_CODE_VERSION, "config": self.config.to_dict(),
                "seed": self.seed, "classnames": list(self.classnames_ or []),
                "ctx_global": None if learner is None else learner.ctx_global.detach().cpu().clone(),
                "ctx_local": None if learner is None else learner.ctx_local.detach().cpu().clone(),
                "global_weights": self.global_weights_.clone(), "local_weights": self.local_weights_.clone(),
                "history": [dict(r) for r in self.history_]}

    @classmethod
    def _from_blob(cls, blob: dict, loaded=None) -> TaIDPT:
        """Rebuild an estimator from :meth:`_blob` (the prompt learner only when ``loaded`` is given)."""
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT or blob.get("version") != TAIDPT_CODE_VERSION:
            raise ValueError("not a TaI-DPT cache entry of this version")
        est = cls(TaIDPTConfig.from_dict(blob["config"]), blob["seed"])
        est.global_weights_, est.local_weights_ = blob["global_weights"].float(), blob["local_weights"].float()
        est.classnames_ = list(blob["classnames"])
        est.history_ = list(blob["history"])
        est.prompt_learner_ = None
        if loaded is not None and blob["ctx_global"] is not None:
            learner = PromptLearner(loaded, est.classnames_, est.config)
            with torch.no_grad():
                learner.ctx_global.copy_(blob["ctx_global"])
                learner.ctx_local.copy_(blob["ctx_local"])
            est.prompt_learner_ = learner.cpu().eval()
        return est


# ----------------------------------------------------------------------------------------------
# cache
# ----------------------------------------------------------------------------------------------
def taidpt_cache_key(loaded, texts, targets, classnames, config: TaIDPTConfig, seed: int) -> str:
    """sha256 of (model name and weights, texts, targets, class names, config, seed, code version)."""
    t = np.ascontiguousarray(np.asarray(targets, dtype=np.int8))
    payload = json.dumps({
        "model": [loaded.name, loaded.weights_id],
        "texts": hashlib.sha256("\x1e".join(texts).encode()).hexdigest(),
        "targets": [list(t.shape), hashlib.sha256(t.tobytes()).hexdigest()],
        "classnames": list(classnames), "config": config.to_dict(), "seed": int(seed),
        "code": TAIDPT_CODE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def fit_taidpt_cached(loaded, texts, targets, classnames, config: TaIDPTConfig | None = None, seed: int = 0,
                      cache=None, progress: bool = False, val=None) -> TaIDPT:
    """:meth:`TaIDPT.fit`, kept in ``<cache>/taidpt/<key>.pt`` (see :func:`taidpt_cache_key`); a hit trains nothing.

    ``val`` only adds the held-out mAP to the history of a fresh run; it is not part of the key.
    """
    config = TaIDPTConfig() if config is None else config
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("fit_taidpt_cached: texts must be a list of str")
    classnames = list(classnames)
    path = cache_dir(cache) / "taidpt" / f"{taidpt_cache_key(loaded, texts, targets, classnames, config, seed)}.pt"
    def cached():
        blob = load_torch(path, "cached TaI-DPT prompts")
        if blob is not None:
            try:
                return TaIDPT._from_blob(blob, loaded)
            except (ValueError, KeyError, TypeError, RuntimeError):
                pass  # stale or foreign entry: train again and overwrite
        return None

    est = cached()          # a complete entry is read without a lock (a read-only shared cache serves it)
    if est is not None:
        return est
    with entry_lock(path):  # building: one process trains, another waiting here then reads its result
        est = cached()
        if est is None:
            est = TaIDPT(config, seed).fit(loaded, texts, targets, classnames, val=val, progress=progress)
            save_torch_atomic(est._blob(), path)
    return est
