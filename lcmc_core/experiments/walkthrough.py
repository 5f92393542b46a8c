"""The method step by step on a run's data, for the student's notebooks (02: training, 03: the mapping).

Each function computes one step of CoMC the way the package does it, on the run's own data, and
returns plain values (tables, arrays) that the notebooks show: what the classifier is trained on
(:func:`training_texts`), what noise injection does to one text embedding (:func:`noisy_embedding`),
the official loss on a tiny example written out by hand beside the package's value
(:func:`ranking_loss_example`), and the cross-modal mapping of one image, from its similarities to
the memory to its changed scores (:func:`mapping_of_one_image`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..method.classifier import ranking_loss
from ..method.comc import CoMC

__all__ = ["training_texts", "noisy_embedding", "ranking_loss_example", "OneImageMapping", "mapping_of_one_image"]


def training_texts(corpus, copies: int, templates: int, examples: int = 2) -> pd.DataFrame:
    """What the classifier trains on: generated sentences and the prompt augmentation, with counts and examples.

    ``copies`` (copies of "a photo of a {class}." per class) and ``templates`` (templates per class) are the
    run's prompt augmentation (``comparison.prompt_copies``, the size of ``comparison.prompt_templates``).
    """
    sources = np.asarray(corpus.sources, dtype=object)
    generated = np.flatnonzero(sources != "prompt")
    prompts = np.flatnonzero(sources == "prompt")
    c = corpus.targets.shape[1]
    n_copies = c * copies
    rows = [("generated sentences (the corpus)", len(generated), "sentences naming a few labels",
             " | ".join(corpus.texts[i] for i in generated[:examples])),
            (f"class prompt, {copies} copies per class", n_copies, f"{c} classes x {copies}",
             " | ".join(dict.fromkeys(corpus.texts[i] for i in prompts[:n_copies]))[:200]),
            (f"one text per template ({templates} per class)", len(prompts) - n_copies, f"{c} classes x {templates}",
             " | ".join(corpus.texts[i] for i in prompts[n_copies:n_copies + examples]))]
    table = pd.DataFrame(rows, columns=["texts", "count", "how many", "examples"]).set_index("texts")
    table.loc["all training texts"] = [len(sources), "", ""]
    return table


def noisy_embedding(text_emb: torch.Tensor, std: float, seed: int = 0) -> dict:
    """One L2-normalised text embedding before and after training's Gaussian noise (std ``std``, not renormalised).

    Returns ``clean``, ``noisy`` (D,), the noisy vector's ``norm`` and its ``cosine`` to the clean one.
    """
    clean = F.normalize(torch.as_tensor(text_emb).float().reshape(-1), dim=0)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(int(seed)))
    noisy = clean + float(std) * noise
    return {"clean": clean.numpy(), "noisy": noisy.numpy(), "norm": float(noisy.norm()),
            "cosine": float(F.cosine_similarity(clean, noisy, dim=0)), "std": float(std)}


def ranking_loss_example(scores=(2.0, 0.5, -1.0, 0.2), labels=(1, 0, 1, 0), classnames=("dog", "cat", "car", "sofa"),
                         margin: float = 1.0) -> tuple[pd.DataFrame, float, float]:
    """The official ``double_ranking`` loss on one tiny example: every (positive, negative) pair written out.

    Returns the table of pairs (``max(0, margin - s_pos + s_neg)``), their sum computed here and the
    package's :func:`~lcmc_core.method.classifier.ranking_loss` on the same scores (equal).
    """
    s, y = list(map(float, scores)), list(map(int, labels))
    rows = [{"positive": classnames[p], "negative": classnames[n], "s_pos": s[p], "s_neg": s[n],
             "margin - s_pos + s_neg": margin - s[p] + s[n], "hinge max(0, .)": max(0.0, margin - s[p] + s[n])}
            for p in range(len(s)) if y[p] == 1 for n in range(len(s)) if y[n] == 0]
    table = pd.DataFrame(rows)
    by_hand = float(table["hinge max(0, .)"].sum())
    package = float(ranking_loss(torch.tensor([s]), torch.tensor([y], dtype=torch.float32), margin=margin))
    return table, by_hand, package


@dataclass
class OneImageMapping:
    """CoMC's mapping of one image's global embedding, step by step (see :func:`mapping_of_one_image`)."""

    index: int
    similarities: np.ndarray        # (M,) cosine of the image embedding with each memory row
    weights: np.ndarray             # (M,) softmax(similarities / temperature)
    mapped: np.ndarray              # (D,) normalize(weights @ memory)
    mixed: np.ndarray               # (D,) alpha * f + (1 - alpha) * mapped (not renormalised)
    scores_before: np.ndarray       # (C,) the classifier on f
    scores_after: np.ndarray        # (C,) the classifier on the mixed embedding
    alpha: float
    temperature: float
    cosine_to_text_mean: tuple[float, float]   # cosine with the mean training text, before and after

    def top_weights(self, names, k: int = 5) -> pd.DataFrame:
        """The ``k`` memory rows with the largest softmax weight, named."""
        order = np.argsort(-self.weights)[:k]
        return pd.DataFrame({"memory row": [names[i] for i in order], "cosine": self.similarities[order],
                             "softmax weight": self.weights[order]})


def mapping_of_one_image(estimator: CoMC, image_global, index: int, text_mean=None) -> OneImageMapping:
    """The mapping of image ``index``'s global embedding by a fitted estimator, with every intermediate value.

    ``m = normalize(softmax(f T^T / tau) T)``, ``f' = alpha f + (1 - alpha) m``; the scores are the classifier's
    on ``f`` and on ``f'``. ``text_mean`` (D,), e.g. the mean training text embedding, gives the cosine of ``f``
    and ``f'`` with it (how far the image moved towards the text modality). The mixed embedding equals what
    :meth:`~lcmc_core.method.comc.CoMC.mapping_transforms` gives for the same image.
    """
    if estimator.memory_ is None:
        raise ValueError("mapping_of_one_image: the estimator has no memory (fitted with memory=None): nothing is mapped")
    f = torch.as_tensor(image_global[int(index)]).float()
    memory = estimator.memory_.float()
    sims = memory @ f
    weights = torch.softmax(sims / estimator.temperature, dim=0)
    mapped = F.normalize(weights @ memory, dim=0)
    mixed = estimator.alpha * f + (1 - estimator.alpha) * mapped
    w = estimator.coef_.float()
    if text_mean is not None:
        t = F.normalize(torch.as_tensor(text_mean).float(), dim=0)
        cos = (float(F.cosine_similarity(f, t, dim=0)), float(F.cosine_similarity(mixed, t, dim=0)))
    else:
        cos = (float("nan"), float("nan"))
    return OneImageMapping(int(index), sims.numpy(), weights.numpy(), mapped.numpy(), mixed.numpy(),
                           (w @ f).numpy(), (w @ mixed).numpy(), float(estimator.alpha), float(estimator.temperature),
                           cos)
