"""The text-only multi-label classifier of CoMC, trained with the official recipe.

What is trained: one bias-free linear layer ``Linear(D, C, bias=False)`` (:class:`TextClassifier`)
on frozen CLIP *text* embeddings of sentences that each name a few labels. The image encoder is
never used in training; at inference the same layer scores (mapped) image embeddings, see
:mod:`lcmc_core.method.mapping`.

The recipe (all fields of :class:`TrainConfig`, defaults = the official CoMC configuration):

* inputs are L2-normalised, then Gaussian noise with std ``noise_std = 0.1`` is added (not
  renormalised) to every training batch; ``noise_std = 0`` disables it;
* loss ``"double_ranking"`` (the one the official configuration uses): pairwise hinge over every
  (positive, negative) label pair of a sample, ``max(0, margin - s_pos + s_neg)`` with margin 1,
  *summed* over the pairs of a sample and *averaged* over the samples of the batch. The official
  code's other options, with its exact settings and reductions (:data:`LOSSES`): ``"ranking"``
  (the same hinge on doubled score differences, ``max(0, 1 - 2 (s_pos - s_neg))``), ``"bce"``
  (its ``sigmoid``: plain ``BCEWithLogits``, mean over all N x C entries), ``"focal"`` (gamma 2, no
  alpha, mean over N x C), ``"asl"`` (asymmetric loss, Ridnik et al. 2021, gamma_neg 2, gamma_pos
  1, clip 0.05, eps 1e-8, focusing weights without gradient, mean over N x C) and ``"soft_ce"``
  (its empty loss name: soft cross-entropy over the classes, ``-sum_c y_c log softmax(s)_c`` per
  sample, mean over samples). Reductions differ (sum over pairs vs mean over entries), so the loss
  scales differ too, as in the official code: with Adam that matters only through the weight decay;
* Adam (betas 0.9, 0.999), lr 1e-3, weight decay 5e-4, batch 512, 20 epochs; learning rate set per
  epoch as in Dassl (the official trainer's library): ``warmup_epochs = 1`` epoch at the constant
  ``warmup_lr = 1e-5``, then cosine annealing from ``lr`` with period ``epochs`` counted from the
  end of warm-up, i.e. ``lr_e = lr * (1 + cos(pi * (e - warmup_epochs) / epochs)) / 2`` (so the
  last epoch does not reach 0 - a faithful quirk); see :func:`lr_at_epoch`;
* the last incomplete batch of an epoch is dropped when there is at least one full batch (Dassl).

No model selection on test images: training runs a fixed number of epochs and returns the final
weights. A validation split, if wanted for monitoring, should come from the text corpus
(:func:`split_validation`); its mAP is only recorded in the history. ``epoch_weights`` collects the
weights after every epoch, so that the official protocol (best epoch on a tenth of the *test*
images) can be shown beside the fixed-epoch default as a labelled row, without retraining.

Determinism: weights are initialised, batches shuffled and noise drawn from three separate
``torch.Generator`` s seeded from ``seed`` (global RNG state is neither used nor changed), so the
same seed gives identical weights on the same machine, and changing ``noise_std`` changes only the
noise.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import all_finite
from ..checks import as_tensor as _as_tensor
from ..memory import release_freed_memory
from . import metrics

__all__ = [
    "LOSSES",
    "WARMUP_TYPES",
    "TrainConfig",
    "TextClassifier",
    "ranking_loss",
    "asymmetric_loss",
    "bce_loss",
    "focal_loss",
    "soft_cross_entropy",
    "compute_loss",
    "lr_at_epoch",
    "split_validation",
    "train_text_classifier",
]

#: The official code's losses (see the module docstring); ``double_ranking`` is the one CoMC's config uses.
LOSSES = ("double_ranking", "ranking", "asl", "bce", "focal", "soft_ce")
WARMUP_TYPES = ("constant", "linear")
_FORMAT = "lcmc.TextClassifier"
_FORMAT_VERSION = 1


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of text-classifier training; the defaults are the official CoMC recipe."""

    epochs: int = 20
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    warmup_type: str = "constant"   # "constant": warmup_lr throughout; "linear": Dassl's ramp
    noise_std: float = 0.1
    loss: str = "double_ranking"
    margin: float = 1.0             # ranking losses
    asl_gamma_neg: float = 2.0      # the official code's ASL settings
    asl_gamma_pos: float = 1.0
    asl_clip: float = 0.05
    focal_gamma: float = 2.0
    drop_last: bool = True

    def __post_init__(self):
        def bad(name, expected):
            raise ValueError(f"TrainConfig.{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("epochs", "batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                bad(name, "an integer >= 1")
        if not _is_int(self.warmup_epochs) or not 0 <= self.warmup_epochs < self.epochs:
            bad("warmup_epochs", f"an integer in [0, epochs) = [0, {self.epochs}) (warm-up must leave a training epoch)")
        for name in ("lr", "warmup_lr"):
            if not _is_real(getattr(self, name)) or getattr(self, name) <= 0:
                bad(name, "a finite number > 0")
        for name in ("weight_decay", "noise_std", "margin", "asl_gamma_neg", "asl_gamma_pos", "focal_gamma"):
            if not _is_real(getattr(self, name)) or getattr(self, name) < 0:
                bad(name, "a finite number >= 0")
        if not _is_real(self.asl_clip) or not 0 <= self.asl_clip < 1:
            bad("asl_clip", "a number in [0, 1)")
        if self.loss not in LOSSES:
            bad("loss", f"one of {LOSSES}")
        if self.warmup_type not in WARMUP_TYPES:
            bad("warmup_type", f"one of {WARMUP_TYPES}")
        if not isinstance(self.drop_last, bool):
            bad("drop_last", "True or False")

    def to_dict(self) -> dict:
        """Return the configuration as a plain dict (for saving)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build a configuration from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"TrainConfig.from_dict: unknown keys {sorted(unknown)}")
        return cls(**d)


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------
class TextClassifier(nn.Module):
    """Bias-free linear multi-label classifier: ``logits = x @ weight.T`` with ``weight`` (C, D).

    ``forward`` does not normalise its input: training feeds normalised (+ noise) text embeddings,
    inference feeds (mapped, not renormalised) image embeddings, as in the official code.
    """

    def __init__(self, dim: int, num_classes: int, *, config: TrainConfig | None = None,
                 classnames: list[str] | None = None, generator: torch.Generator | None = None):
        super().__init__()
        if not _is_int(dim) or dim < 1:
            raise ValueError(f"dim: expected an integer >= 1, got {dim!r}")
        if not _is_int(num_classes) or num_classes < 1:
            raise ValueError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
        if classnames is not None and len(classnames) != num_classes:
            raise ValueError(f"classnames: expected {num_classes} names, got {len(classnames)}")
        self.weight = nn.Parameter(torch.empty(int(num_classes), int(dim)))
        # nn.Linear's default initialisation, drawn from `generator` when given.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        self.config = config
        self.classnames = list(classnames) if classnames is not None else None

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return self.weight.shape[1]

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits (..., C) for embeddings (..., D)."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"x: expected last dimension {self.dim}, got shape {tuple(x.shape)}")
        return F.linear(x.to(self.weight.dtype), self.weight)

    def save(self, path: str | Path) -> Path:
        """Save weights, dimensions, class names and training config to a .pt file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({
            "format": _FORMAT, "version": _FORMAT_VERSION,
            "dim": self.dim, "num_classes": self.num_classes,
            "weight": self.weight.detach().cpu().clone(),
            "config": self.config.to_dict() if self.config is not None else None,
            "classnames": self.classnames,
        }, path)
        return path

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> TextClassifier:
        """Load a classifier written by :meth:`save`."""
        blob = torch.load(Path(path), map_location=map_location, weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise ValueError(f"path: {path} is not a saved TextClassifier")
        if blob.get("version") != _FORMAT_VERSION:
            raise ValueError(f"path: unsupported TextClassifier file version {blob.get('version')!r}")
        config = TrainConfig.from_dict(blob["config"]) if blob["config"] is not None else None
        model = cls(blob["dim"], blob["num_classes"], config=config, classnames=blob["classnames"])
        with torch.no_grad():
            model.weight.copy_(blob["weight"])
        return model


# ----------------------------------------------------------------------------------------------
# losses: the official code's set, with its settings and reductions
# ----------------------------------------------------------------------------------------------
def _check_logits_targets(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if logits.ndim != 2:
        raise ValueError(f"logits: expected shape (N, C), got {tuple(logits.shape)}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets: expected shape {tuple(logits.shape)} like logits, got {tuple(targets.shape)}")
    return targets.to(logits.dtype)


def ranking_loss(logits: torch.Tensor, targets: torch.Tensor, margin: float = 1.0,
                 scale: float = 1.0) -> torch.Tensor:
    """Pairwise hinge: per sample, sum over (pos p, neg n) of max(0, margin - scale (s_p - s_n)); mean over samples.

    ``scale = 1`` is the official ``double_ranking`` (the loss CoMC's config uses), ``scale = 2``
    its ``ranking``. A sample without positives or without negatives contributes 0 (and still
    counts in the mean).
    """
    y = _check_logits_targets(logits, targets)
    # hinge[i, p, n] = margin - scale * (s[i, p] - s[i, n])
    hinge = F.relu(margin - scale * (logits[:, :, None] - logits[:, None, :]))
    pair_mask = y[:, :, None] * (1 - y)[:, None, :]
    return (hinge * pair_mask).sum(dim=(1, 2)).mean()


def asymmetric_loss(logits: torch.Tensor, targets: torch.Tensor, gamma_neg: float = 2.0,
                    gamma_pos: float = 1.0, clip: float = 0.05, eps: float = 1e-8) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., ICCV 2021) as the official code has it: mean over all N x C entries.

    With p = sigmoid(s): positives ``-(1 - p)^gamma_pos log p``; negatives, with the shifted
    probability ``p_m = max(p - clip, 0)``, ``-p_m^gamma_neg log(1 - p_m)``. Probabilities are
    clamped at ``eps`` inside the logs; the focusing weights carry no gradient (computed under
    ``no_grad``, as the reference's ``disable_torch_grad_focal_loss``).
    """
    y = _check_logits_targets(logits, targets)
    p = torch.sigmoid(logits)
    p_neg = 1 - p                                  # probability of "absent"
    if clip > 0:
        p_neg = (p_neg + clip).clamp(max=1)        # = 1 - max(p - clip, 0)
    log_terms = y * torch.log(p.clamp(min=eps)) + (1 - y) * torch.log(p_neg.clamp(min=eps))
    with torch.no_grad():
        pt = p * y + p_neg * (1 - y)
        weight = torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -(log_terms * weight).mean()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on the logits, mean over all N x C entries (the official ``sigmoid`` loss)."""
    y = _check_logits_targets(logits, targets)
    return F.binary_cross_entropy_with_logits(logits, y)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al., 2017) on sigmoid probabilities, no alpha, mean over all N x C entries.

    ``-(1 - p_t)^gamma log p_t`` with ``p_t = p`` for positives and ``1 - p`` for negatives.
    """
    y = _check_logits_targets(logits, targets)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    p_t = torch.exp(-bce)
    return (torch.pow(1 - p_t, gamma) * bce).mean()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy over the classes: per sample ``-sum_c y_c log softmax(s)_c``, mean over samples."""
    y = _check_logits_targets(logits, targets)
    return -(y * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def compute_loss(logits: torch.Tensor, targets: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Return the loss named by ``config.loss`` with the parameters of ``config``."""
    if config.loss == "double_ranking":
        return ranking_loss(logits, targets, margin=config.margin, scale=1.0)
    if config.loss == "ranking":
        return ranking_loss(logits, targets, margin=config.margin, scale=2.0)
    if config.loss == "asl":
        return asymmetric_loss(logits, targets, gamma_neg=config.asl_gamma_neg,
                               gamma_pos=config.asl_gamma_pos, clip=config.asl_clip)
    if config.loss == "bce":
        return bce_loss(logits, targets)
    if config.loss == "focal":
        return focal_loss(logits, targets, gamma=config.focal_gamma)
    if config.loss == "soft_ce":
        return soft_cross_entropy(logits, targets)
    raise ValueError(f"config.loss: expected one of {LOSSES}, got {config.loss!r}")  # pragma: no cover


# ----------------------------------------------------------------------------------------------
# schedule, splits, training
# ----------------------------------------------------------------------------------------------
def lr_at_epoch(epoch: int, config: TrainConfig) -> float:
    """Return the learning rate of 0-based ``epoch`` (Dassl's constant/linear warm-up + cosine)."""
    if not _is_int(epoch) or not 0 <= epoch < config.epochs:
        raise ValueError(f"epoch: expected an integer in [0, {config.epochs}), got {epoch!r}")
    w = config.warmup_epochs
    if epoch < w:
        if config.warmup_type == "constant" or epoch == 0:
            return float(config.warmup_lr)
        return float(config.lr * epoch / w)        # Dassl's LinearWarmupScheduler
    return float(0.5 * config.lr * (1 + math.cos(math.pi * (epoch - w) / config.epochs)))


def split_validation(n: int, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_idx, val_idx): a seeded random split of ``n`` corpus rows, ``fraction`` for validation."""
    if not _is_int(n) or n < 2:
        raise ValueError(f"n: expected an integer >= 2, got {n!r}")
    if not _is_real(fraction) or not 0 < fraction < 1:
        raise ValueError(f"fraction: expected a number strictly between 0 and 1, got {fraction!r}")
    n_val = int(round(n * fraction))
    if not 1 <= n_val <= n - 1:
        raise ValueError(f"fraction: {fraction} of n={n} leaves an empty train or validation split")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _check_embeddings(emb, name: str) -> torch.Tensor:
    emb = _as_tensor(emb, name)
    if emb.ndim != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty (N, D) matrix, got shape {tuple(emb.shape)}")
    if not torch.is_floating_point(emb):
        raise TypeError(f"{name}: expected floating-point embeddings, got dtype {emb.dtype}")
    if not all_finite(emb):
        raise ValueError(f"{name}: expected finite values, found NaN or inf")
    if (emb.norm(dim=1) == 0).any():
        raise ValueError(f"{name}: found zero rows, which cannot be L2-normalised")
    return emb


def _check_targets(targets, n: int, name: str, allow_difficult: bool) -> torch.Tensor:
    targets = _as_tensor(targets, name)
    if targets.ndim != 2 or targets.shape[0] != n or targets.shape[1] == 0:
        raise ValueError(f"{name}: expected an ({n}, C) matrix, got shape {tuple(targets.shape)}")
    allowed = (-1, 0, 1) if allow_difficult else (0, 1)
    ok = torch.zeros_like(targets, dtype=torch.bool)
    for v in allowed:
        ok |= targets == v
    if not ok.all():
        raise ValueError(f"{name}: expected only values {allowed}, found {torch.unique(targets[~ok])[:5].tolist()}")
    return targets


def _generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
    """Three independent generators (init, shuffle, noise) derived from one seed."""
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    seeds = np.random.SeedSequence(int(seed)).generate_state(3, dtype=np.uint64)
    init = torch.Generator().manual_seed(int(seeds[0]) & (2 ** 63 - 1))      # init on CPU
    shuffle = torch.Generator(device=device).manual_seed(int(seeds[1]) & (2 ** 63 - 1))
    noise = torch.Generator(device=device).manual_seed(int(seeds[2]) & (2 ** 63 - 1))
    return init, shuffle, noise


def train_text_classifier(text_emb, targets, config: TrainConfig | None = None, val=None, seed: int = 0,
                          progress: bool = False, classnames: list[str] | None = None,
                          input_shift=None, input_scale=None,
                          epoch_weights: list | None = None) -> tuple[TextClassifier, list[dict]]:
    """Train a :class:`TextClassifier` on text embeddings (N, D) with {0,1} targets (N, C); fixed epochs.

    ``val = (emb, targets)`` (e.g. from :func:`split_validation` on the corpus; targets may hold
    -1 = ignored-as-negative) is L2-normalised, scored without noise after each epoch and its
    mAP (percent, :func:`lcmc_core.method.metrics.mean_average_precision`) recorded; it never selects
    the model. ``input_shift`` / ``input_scale`` (D,) standardise every text first, ``x <- normalize((x -
    shift) / scale)`` (C3's mean shift, I0T's standardisation), batch by batch, so a large corpus is
    never copied. Returns the final model (on the device of ``text_emb``, eval mode) and the history:
    one dict per epoch with ``epoch`` (0-based), ``lr``, ``train_loss`` (sample-weighted mean over
    the epoch's batches) and, with ``val``, ``val_map``. ``epoch_weights``, if a list, receives a
    copy of the (C, D) weight after every epoch (CPU).
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig or None, got {type(config).__name__}")
    x_all = _check_embeddings(text_emb, "text_emb")
    n, d = x_all.shape
    y_all = _check_targets(targets, n, "targets", allow_difficult=False)
    c = y_all.shape[1]
    device = x_all.device
    shift = None if input_shift is None else torch.as_tensor(input_shift).float().to(device).reshape(1, d)
    scale = None if input_scale is None else torch.as_tensor(input_scale).float().to(device).reshape(1, d)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        """One batch of inputs: standardised (if asked), then L2-normalised (row by row, as a whole-corpus pass)."""
        x = x.float()
        if shift is not None or scale is not None:
            x = x - shift if shift is not None else x
            x = F.normalize(x / scale if scale is not None else x, dim=1)
        return F.normalize(x, dim=1)
    y_all = y_all.to(device=device, dtype=torch.float32)
    if val is not None:
        if not isinstance(val, (tuple, list)) or len(val) != 2:
            raise ValueError("val: expected a pair (embeddings, targets) or None")
        val_x = _check_embeddings(val[0], "val[0]")
        if val_x.shape[1] != d:
            raise ValueError(f"val[0]: expected dimension {d} like text_emb, got {val_x.shape[1]}")
        val_y = _check_targets(val[1], val_x.shape[0], "val[1]", allow_difficult=True)
        if val_y.shape[1] != c:
            raise ValueError(f"val[1]: expected {c} classes like targets, got {val_y.shape[1]}")
        val_x = prepare(val_x.to(device=device, dtype=torch.float32))
        val_y = val_y.cpu().numpy()

    g_init, g_shuffle, g_noise = _generators(seed, device)
    model = TextClassifier(d, c, config=config, classnames=classnames, generator=g_init).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    bs = config.batch_size
    n_used = (n // bs) * bs if (config.drop_last and n >= bs) else n

    epochs = range(config.epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc="text classifier", unit="epoch")
    history: list[dict] = []
    for epoch in epochs:
        lr = lr_at_epoch(epoch, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        perm = torch.randperm(n, generator=g_shuffle, device=device)
        total, seen = 0.0, 0
        for start in range(0, n_used, bs):
            idx = perm[start:start + bs]
            x = prepare(x_all[idx])
            if config.noise_std > 0:
                x = x + config.noise_std * torch.randn(x.shape, generator=g_noise, device=device, dtype=x.dtype)
            loss = compute_loss(model(x), y_all[idx], config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        record = {"epoch": epoch, "lr": lr, "train_loss": total / seen}
        model.eval()
        if val is not None:
            with torch.no_grad():
                scores = model(val_x).cpu().numpy()
            record["val_map"] = metrics.mean_average_precision(scores, val_y)
        history.append(record)
        if epoch_weights is not None:
            epoch_weights.append(model.weight.detach().cpu().clone())
        if progress:
            epochs.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
    model.eval()
    release_freed_memory()
    return model, history
