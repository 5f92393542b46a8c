"""The comparison's rows: a stable identifier for each, its display name, its family and what it is.

Code selects rows by :class:`Row` member (``Row.COMC``), never by the text a reader sees: the
member's *name* is the identifier, its *value* the display name written in tables and figures
(a ``str``, so a table indexed by display names is looked up with the member itself:
``table.loc[Row.COMC]``). Renaming a row's display text changes one line here. :data:`ROW_INFO`
holds each row's family (one colour per family in every figure) and a one-line description
that the notebooks print; descriptions name no hyperparameter value (those come from the
estimator that made the row).
"""
from __future__ import annotations

from enum import Enum
from typing import NamedTuple

__all__ = ["Row", "RowInfo", "ROW_INFO", "FAMILIES", "family_of", "row_of", "describe_rows"]


class Row(str, Enum):
    """One row of the comparison (member name: identifier; value: display name)."""

    ZERO_SHOT_PUBLISHED = "zero-shot CLIP [published: encode_image, 80 OpenAI templates]"
    ZERO_SHOT_SELECT = "zero-shot CLIP [official ZeroshotCLIP2: 7 select templates + 'a photo of a {}.']"
    ZERO_SHOT_DENSE = "zero-shot CLIP + local [official ZeroshotCLIP_dense]"
    ZERO_SHOT_OWN_FEATURES = "zero-shot on CoMC's features [no-pos pool + local max]"
    I0T = "zero-shot + I0T post-hoc centring [published protocol]"
    SPARC_STANDARDISATION = "zero-shot + SPARC score standardisation [published protocol]"
    SPARC = "SPARC [compound prompts + PCA fusion]"
    CLASSIFIER_GLOBAL = "text classifier, global"
    CLASSIFIER = "text classifier, global+local"
    C3 = "text classifier + C3 mean shift, global+local"
    DECAP = "text classifier + DeCap projection (alpha 0), global+local"
    COMC_NO_NOISE = "CoMC without noise injection"
    COMC_GLOBAL = "CoMC mapping, global only"
    COMC = "CoMC (full)"
    COMC_SPARC_STANDARDISATION = "CoMC + SPARC score standardisation"
    COMC_SPARC_FUSION = "CoMC + SPARC fusion (CoMC's scores in place of the ensemble; ablation)"
    COMC_OFFICIAL_PROTOCOL = "CoMC, official protocol (selects epoch on test images)"
    COMC_RELEASED = "CoMC, authors' released checkpoint"
    TAIDPT = "TaI-DPT"
    TAIDPT_MAPPED = "TaI-DPT + CoMC mapping (ablation)"
    TAIDPT_ALT_TEXT = "TaI-DPT on alt-text captions"

    # a Row is its display name wherever a string is expected (dict keys, pandas indexes, f-strings)
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def info(self) -> RowInfo:
        """The row's family and description."""
        return ROW_INFO[self]


class RowInfo(NamedTuple):
    """What a row is: its family (the figures' colour) and a one-line description; what it needs from the features."""

    family: str
    description: str
    needs_clip_pool: bool = False   # CLIP's own encode_image pooling (features.global_clip)
    needs_local: bool = False       # the local branch (features.local)


#: One colour family per kind of row, for every figure.
FAMILIES = ("zero-shot", "peer", "trained", "CoMC", "TaI-DPT", "reference")

ROW_INFO: dict[Row, RowInfo] = {
    Row.ZERO_SHOT_PUBLISHED: RowInfo(
        "zero-shot", "CLIP's own image embedding, class weights = mean of OpenAI's 80 ImageNet prompts; the "
        "protocol of the published zero-shot rows (e.g. SPARC Table 2)", needs_clip_pool=True),
    Row.ZERO_SHOT_SELECT: RowInfo(
        "zero-shot", "the official repository's prompt-ensemble baseline, same image embedding", needs_clip_pool=True),
    Row.ZERO_SHOT_DENSE: RowInfo(
        "zero-shot", "the official dense baseline: global as above, local embeddings scored by 'a photo of a {}.', "
        "pooled by softmax over positions of the logit-scaled scores, merged 0.5 / 0.5", needs_clip_pool=True,
        needs_local=True),
    Row.ZERO_SHOT_OWN_FEATURES: RowInfo(
        "zero-shot", "the 80-template weights on exactly the features CoMC scores, merged as CoMC merges (like for "
        "like)", needs_local=True),
    Row.I0T: RowInfo(
        "peer", "I0T (ACL 2025): images centred on the test images' mean, class weights on the corpus mean, "
        "re-normalised (transductive)", needs_clip_pool=True),
    Row.SPARC_STANDARDISATION: RowInfo(
        "peer", "SPARC (CVPR 2025), its normalisation only: per-image then per-class z-score of the published "
        "zero-shot scores", needs_clip_pool=True),
    Row.SPARC: RowInfo(
        "peer", "SPARC (CVPR 2025) as published: the 80-template scores and compound-prompt scores calibrated per image "
        "and per column, fused per class by the first principal component of the sorted compound scores; published "
        "protocol", needs_clip_pool=True),
    Row.CLASSIFIER_GLOBAL: RowInfo("trained", "trained on text only, applied to raw image embeddings"),
    Row.CLASSIFIER: RowInfo("trained", "+ local branch (max over positions), merged as CoMC merges",
                            needs_local=True),
    Row.C3: RowInfo("peer", "C3 (ICLR 2024): classifier trained on centred texts, images centred on their own mean",
                    needs_local=True),
    Row.DECAP: RowInfo("peer", "DeCap (ICLR 2023): image embeddings replaced by their projection onto the text memory",
                       needs_local=True),
    Row.COMC_NO_NOISE: RowInfo("CoMC", "full inference, classifier trained without noise injection"),
    Row.COMC_GLOBAL: RowInfo("CoMC", "mapping of the global embedding, no local branch"),
    Row.COMC: RowInfo("CoMC", "mapping of global and local embeddings with the estimator's alpha and temperature, "
                              "merged with its local weight", needs_local=True),
    Row.COMC_SPARC_STANDARDISATION: RowInfo("CoMC", "SPARC's standardisation applied to CoMC's scores",
                                            needs_local=True),
    Row.COMC_SPARC_FUSION: RowInfo("CoMC", "SPARC's calibration and fusion with CoMC's scores as the class scores "
                                           "(compound prompts scored as in the SPARC row)", needs_clip_pool=True,
                                   needs_local=True),
    Row.COMC_RELEASED: RowInfo("reference", "the official repository's trained COCO classifier and text memory, scored "
                                            "with the official inference (COCO with RN50 only)", needs_local=True),
    Row.COMC_OFFICIAL_PROTOCOL: RowInfo(
        "reference", "the epoch of best CoMC mAP on every tenth test image, as the official trainer; uses test "
        "labels, so it is not a result"),
    Row.TAIDPT: RowInfo("TaI-DPT", "TaI-DPT (CVPR 2023): global and local prompts learned on the same corpus"),
    Row.TAIDPT_MAPPED: RowInfo("TaI-DPT", "TaI-DPT's prompts on image embeddings mapped by CoMC's mapping (an "
                                          "ablation neither paper runs)"),
    Row.TAIDPT_ALT_TEXT: RowInfo("TaI-DPT", "TaI-DPT trained on the toy CLIP's alt-text captions, its original kind "
                                            "of training data (toy world)"),
}


def row_of(name: str) -> Row | None:
    """The :class:`Row` whose display name is ``name`` (None for a row that is not one of them)."""
    try:
        return Row(name)
    except ValueError:
        return None


def family_of(name: str, default: str = "peer") -> str:
    """The family of a row given by member or display name (``default`` for an unknown row)."""
    row = row_of(str(name))
    return ROW_INFO[row].family if row is not None else default


def describe_rows(rows) -> list[tuple[str, str, str]]:
    """``(display name, family, description)`` for the given rows, in their order (for the notebooks' legend)."""
    out = []
    for r in rows:
        row = row_of(str(r))
        if row is not None:
            out.append((row.value, ROW_INFO[row].family, ROW_INFO[row].description))
    return out
