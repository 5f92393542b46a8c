"""Results shaped into the tables and captions the notebooks show (no training, no model: data in, tables out).

* :func:`figure_title`, :func:`table_caption`, :func:`wrap_text`: titles and captions carrying the
  toy-world note when it applies, and wrapped text for small panels.
* :func:`label_names`: the names of the labels present in each row of a label matrix.
* :func:`toy_clip_metrics_table`, :func:`pretraining_curves`: the toy CLIP report of
  :func:`lcmc_core.images.toyclip.build_variants` as a table, and the variants' pretraining logs.
* :func:`generation_outcomes`, :func:`generation_summary_table`, :func:`example_sentences`: corpus
  generation in numbers and tables.
* :func:`gap_before_after`: :func:`lcmc_core.method.gap.gap_report` before and after the mapping.
* :func:`ours_and_published`: this run's mAP next to published numbers (with sources).
* :func:`top_k_predictions`: each image's k best-scored classes per method (the qualitative figure).
* ``*_summary``: "what this shows" markdown generated from a result, so that it holds for every profile.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..experiments.rows import Row

__all__ = ["wrap_text", "figure_title", "table_caption", "label_names", "toy_clip_metrics_table",
           "pretraining_curves", "generation_outcomes", "generation_summary_table", "example_sentences",
           "gap_before_after", "ours_and_published", "main_results_summary", "text_vs_image_summary",
           "top_k_predictions", "per_class_summary", "gap_summary", "toy_clip_summary", "cooccurrence_summary",
           "TOY_CLIP_METRIC_COLUMNS"]

#: Columns of :func:`toy_clip_metrics_table`: (column name, key in the report's ``metrics``).
TOY_CLIP_METRIC_COLUMNS = (
    ("i2t R@1 (%)", "i2t_recall@1"), ("i2t R@5 (%)", "i2t_recall@5"),
    ("t2i R@1 (%)", "t2i_recall@1"), ("t2i R@5 (%)", "t2i_recall@5"),
    ("chance R@1 (%)", "chance_recall@1"),
    ("zero-shot mAP (%) [published protocol]", "zero_shot_map"), ("chance mAP (%)", "chance_map"),
    ("modality gap [no-pos pool]", "modality_gap"), ("logit scale", "logit_scale"),
)


def wrap_text(text: str, width: int = 40) -> str:
    """``text`` wrapped to lines of at most ``width`` characters (words longer than that are split)."""
    return "\n".join(textwrap.wrap(str(text), width)) if text else ""


def figure_title(title: str, note: str = "", width: int = 90) -> str:
    """``title``, then ``note`` (e.g. :func:`~lcmc_core.experiments.profiles.toy_world_caption`) wrapped to ``width`` chars."""
    if not note:
        return title
    return title + "\n" + wrap_text(note, width)


def table_caption(title: str, note: str = "") -> str:
    """A table caption: ``title``, followed by ``note`` in brackets when there is one."""
    return f"{title} [{note}]" if note else title


def label_names(labels, classnames: Sequence[str], sep: str | None = ", ") -> list:
    """For each row of an N x C label matrix, the names of the classes marked 1, joined by ``sep`` (None: as lists)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(classnames):
        raise ValueError(f"label_names: expected an N x {len(classnames)} label matrix, got shape {labels.shape}")
    names = np.asarray(list(classnames), dtype=object)
    rows = [list(names[row == 1]) for row in labels]
    return rows if sep is None else [sep.join(r) for r in rows]


def toy_clip_metrics_table(report: Mapping) -> pd.DataFrame:
    """One row per toy CLIP variant of a :func:`~lcmc_core.images.toyclip.build_variants` report (index ``variant``).

    Columns: retrieval recall@1/@5 both ways on held-out pairs, chance recall@1, zero-shot mAP
    and chance mAP on the test split (percent), the modality gap and the final logit scale,
    the initial logit scale and caption completeness of the variant, and the pretraining time.
    """
    variants = report.get("variants") if isinstance(report, Mapping) else None
    if not variants:
        raise ValueError("toy_clip_metrics_table: expected a toyclip.build_variants report with a non-empty 'variants'")
    rows = []
    for name, entry in variants.items():
        m, spec = entry["metrics"], entry.get("spec", {})
        row = {"variant": name, "initial logit scale": spec.get("init_logit_scale"),
               "caption completeness": spec.get("caption_completeness")}
        for column, key in TOY_CLIP_METRIC_COLUMNS:
            row[column] = m.get(key)
        row["pretraining (s)"] = entry.get("seconds", {}).get("pretrain")
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant")


def pretraining_curves(report: Mapping, cache=None) -> pd.DataFrame:
    """Per-step pretraining history of every variant in a ``build_variants`` report, in one long table.

    Columns: ``variant``, ``step``, ``epoch``, ``loss``, ``logit_scale``, ``lr`` (from
    :func:`lcmc_core.images.toyclip.training_log` of each variant's spec, as recorded in the report).
    """
    from ..images.toyclip import ToyCLIPSpec, training_log

    frames = []
    for name, entry in report["variants"].items():
        log = training_log(ToyCLIPSpec(**entry["spec"]), cache)
        df = pd.DataFrame(log["history"], columns=["step", "epoch", "loss", "logit_scale", "lr"])
        df.insert(0, "variant", name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def generation_outcomes(summary) -> pd.Series:
    """Answers per outcome of a generation summary: ``accepted``, then ``rejected: <reason>`` for every
    reason of :data:`lcmc_core.text.generation.REASONS` (zeros included) and any other reason found; ``pending`` last."""
    from ..text.validation import REASONS

    s = summary.to_dict() if hasattr(summary, "to_dict") else dict(summary)
    by_reason = s.get("rejected_by_reason") or {}
    counts = {"accepted": int(s.get("accepted") or 0)}
    counts.update({f"rejected: {r}": int(by_reason.get(r, 0)) for r in REASONS})
    counts.update({f"rejected: {r}": int(c) for r, c in by_reason.items() if r not in REASONS})
    counts["pending"] = int(s.get("pending") or 0)
    return pd.Series(counts, name="answers")


def generation_summary_table(summary) -> pd.DataFrame:
    """A generation summary (:class:`~lcmc_core.text.generation.GenerationSummary` or its dict) as a two-column table.

    Rows: status, generator, requested, accepted, rejected (total and one row per reason of
    :data:`lcmc_core.text.generation.REASONS`, zeros included), kept with issues (per issue), pending,
    prompt and completion tokens, and cost (``"n/a"`` without prices). Columns ``item``, ``value``.
    """
    from ..text.validation import REASONS

    s = summary.to_dict() if hasattr(summary, "to_dict") else dict(summary)
    by_reason = s.get("rejected_by_reason") or {}
    issues = s.get("kept_with_issues") or {}
    gen = s.get("generator") or {}
    rows = [("status", s.get("status")),
            ("generator", gen.get("source") or gen.get("name") or str(gen)),
            ("requested sentences", s.get("n")),
            ("accepted", s.get("accepted")),
            ("rejected (total)", s.get("rejected"))]
    rows += [(f"rejected: {r}", int(by_reason.get(r, 0))) for r in REASONS]
    rows += [(f"rejected: {r}", int(c)) for r, c in by_reason.items() if r not in REASONS]
    rows += [(f"kept with issue: {r}", int(c)) for r, c in sorted(issues.items())]
    cost = s.get("cost")
    rows += [("pending", s.get("pending")),
             ("prompt tokens", s.get("prompt_tokens")),
             ("completion tokens", s.get("completion_tokens")),
             ("cost", "n/a (no prices given)" if cost is None else cost)]
    return pd.DataFrame([{"item": k, "value": "" if v is None else str(v)} for k, v in rows])


def example_sentences(corpus, n: int = 10, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of ``n`` corpus sentences with the labels asked for and the labels extracted from the text.

    Columns: ``sentence``, ``requested`` (the generator was asked to name these; empty if unknown),
    ``extracted labels`` (what the label set finds in the sentence: the training target), ``source``.
    Rows keep corpus order.
    """
    n_rows = len(corpus)
    if n_rows == 0:
        return pd.DataFrame(columns=["sentence", "requested", "extracted labels", "source"])
    idx = np.sort(np.random.default_rng(seed).choice(n_rows, size=min(n, n_rows), replace=False))
    names = label_names(corpus.targets[idx], corpus.label_set.classnames)
    return pd.DataFrame({
        "sentence": [corpus.texts[i] for i in idx],
        "requested": [", ".join(corpus.requested[i]) if corpus.requested[i] else "" for i in idx],
        "extracted labels": names,
        "source": [corpus.sources[i] for i in idx],
    })


def gap_before_after(image_emb, text_emb, mapped_emb, paired: bool = True, seed: int = 0) -> pd.DataFrame:
    """:func:`lcmc_core.method.gap.gap_report` of raw and of mapped image embeddings against the same texts.

    Rows: gap norm, centroid cosine, image centroid norm, separability (linear-probe balanced
    accuracy, 0.5 = chance) and, with ``paired`` (row i of images matches row i of texts),
    matched / unmatched mean cosine and their difference; columns ``before mapping`` and
    ``after mapping``. Rows are L2-normalised before measuring (the mapped embeddings are not
    unit vectors; only their directions are compared).
    """
    from ..method.gap import gap_report

    before = gap_report(image_emb, text_emb, paired=paired, seed=seed)
    after = gap_report(mapped_emb, text_emb, paired=paired, seed=seed)
    keys = [("gap norm", "gap_norm"), ("centroid cosine", "centroid_cosine"),
            ("image centroid norm", "image_centroid_norm"), ("separability (balanced acc.)", "separability")]
    if paired:
        keys += [("matched cosine (mean)", "matched_cosine_mean"), ("unmatched cosine (mean)", "unmatched_cosine_mean")]
    rows = {label: [before[k], after[k]] for label, k in keys}
    if paired:
        rows["matched - unmatched cosine"] = [before["matched_cosine_mean"] - before["unmatched_cosine_mean"],
                                              after["matched_cosine_mean"] - after["unmatched_cosine_mean"]]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=["before mapping", "after mapping"])
    df.index.name = "measure"
    return df


def ours_and_published(table: pd.DataFrame, dataset: str, label: str = "this run") -> pd.DataFrame:
    """This run's mAP (with its bootstrap interval when present) above the published numbers for ``dataset``.

    Columns: ``mAP (%)``, ``CI low``, ``CI high`` (this run only), ``kind``, ``source``
    (``label`` for this run; the paper and table for published rows) and, for published rows, the
    row of this run that follows the same protocol. A dataset without published
    numbers (the toy world) gives this run's rows only.
    """
    from ..experiments.published import published_table

    ours = pd.DataFrame({"mAP (%)": table["mAP"],
                         "CI low": table["CI low"] if "CI low" in table else np.nan,
                         "CI high": table["CI high"] if "CI high" in table else np.nan,
                         "kind": "measured here", "source": label}, index=table.index)
    try:
        pub = published_table(dataset)
    except KeyError:
        out = ours
    else:
        pub = pd.DataFrame({"mAP (%)": pub["published mAP"], "CI low": np.nan, "CI high": np.nan,
                            "kind": "published: " + pub["kind"], "source": pub["source"],
                            "our row (same protocol)": pub["our row (same protocol)"]}, index=pub.index)
        ours["our row (same protocol)"] = ""
        out = pd.concat([ours, pub])
    out.index.name = "method"
    return out


def _paired_sentence(sc, other: str, what: str) -> str | None:
    """One sentence from the paired difference "CoMC (full) - other": verdict and interval family-wise, or None."""
    key = f"{Row.COMC} - {other}"
    if key not in sc.paired.index or "family-wise low" not in sc.paired:
        return None
    from ..method.metrics import interval_verdict
    r = sc.paired.loc[key]
    lo, hi = r["family-wise low"], r["family-wise high"]
    verdict = "CoMC is " + interval_verdict(lo, hi, f"higher than {what}", f"lower than {what}",
                                            f"not distinguishable from {what}")
    return (f"{verdict}: {r['difference']:+.1f} points, family-wise interval [{lo:+.1f}, {hi:+.1f}] (unadjusted "
            f"[{r['CI low']:+.1f}, {r['CI high']:+.1f}]), std {r['std over seeds']:.1f} over {int(r['seeds'])} seeds.")


def main_results_summary(sc, note: str = "") -> str:
    """What the main table shows, as markdown generated from it: only what the family-wise intervals support."""
    from ..experiments.seeds import MAPPING_GAIN
    t = sc.table
    zs = [r for r in (Row.ZERO_SHOT_PUBLISHED, Row.ZERO_SHOT_SELECT, Row.ZERO_SHOT_DENSE) if r in t.index]
    k = max(len(sc.paired) - (MAPPING_GAIN in sc.paired.index), 0)
    lines = [f"**What the table shows** ({len(sc.seeds)} seeds, {len(sc.first.labels)} test images"
             + (f"; {note}" if note else "") + "). Intervals resample the seeds and the test images; verdicts are "
             f"read from intervals that hold for all {k} comparisons with CoMC together (95%, max-|t| bootstrap):", ""]
    if Row.COMC in t.index:
        c = t.loc[Row.COMC]
        lines.append(f"- {Row.COMC} reaches {c['mAP']:.1f} ± {c['mAP std']:.1f} mAP (mean ± std over seeds).")
    if zs:
        best = t.loc[zs, "mAP"].idxmax()
        lines.append(f"- The best zero-shot protocol is *{best}* at {t.loc[best, 'mAP']:.1f}; "
                     + (_paired_sentence(sc, best, "it") or ""))
    s = _paired_sentence(sc, Row.ZERO_SHOT_OWN_FEATURES, "zero-shot on exactly its features")
    if s:
        lines.append(f"- Like for like, {s}")
    if MAPPING_GAIN in sc.paired.index and "family-wise low" in sc.paired:
        r = sc.paired.loc[MAPPING_GAIN]
        from ..method.metrics import interval_verdict
        lo, hi = r["family-wise low"], r["family-wise high"]
        supported = interval_verdict(lo, hi, "the mapping helps", "the mapping hurts",
                                     "the mapping's effect is not distinguishable from zero")
        lines.append(f"- The mapping adds {r['difference']:+.1f} points [{lo:+.1f}, {hi:+.1f}] over the same classifier "
                     f"without it: {supported}.")
    for other, what in ((Row.SPARC, "SPARC (compound prompts, PCA fusion)"), (Row.DECAP, "DeCap's projection (alpha 0)"),
                        (Row.C3, "C3's mean shift"), (Row.COMC_SPARC_STANDARDISATION, "CoMC with SPARC's standardisation"),
                        (Row.COMC_SPARC_FUSION, "CoMC with SPARC's fusion"), (Row.TAIDPT, "TaI-DPT on the same corpus"),
                        (Row.COMC_RELEASED, "the authors' released checkpoint")):
        s = _paired_sentence(sc, other, what)
        if s:
            lines.append(f"- {s}")
    off = f"{Row.COMC} - {Row.COMC_OFFICIAL_PROTOCOL}"
    if off in sc.paired.index and "family-wise low" in sc.paired:
        r = sc.paired.loc[off]
        lines.append(f"- Choosing the epoch on test images (the official protocol) is worth {-r['difference']:+.1f} "
                     f"points [{-r['family-wise high']:+.1f}, {-r['family-wise low']:+.1f}] here (per seed: "
                     f"{' '.join(f'{-float(d):+.2f}' for d in str(r['per-seed differences']).split())}); it uses "
                     "test labels, so it is shown for reference only.")
    return "\n".join(lines)


def text_vs_image_summary(why: pd.DataFrame) -> str:
    """What :func:`~lcmc_core.experiments.ablations.text_map_by_label_count` shows, as markdown generated from it."""
    texts, images = why.loc["all held-out texts"], why.iloc[-1]
    groups = why[why.index.str.startswith("texts naming")]
    col = "mAP over classes present (%)"
    first, last = groups.iloc[0], groups.iloc[-1]
    falls = last[col] < first[col] - 1.0
    lines = [f"**What this shows:** held-out text mAP is {texts[col]:.1f} and the test images' (same classifier, "
             f"no mapping) {images[col]:.1f}; held-out texts name {texts['labels per item']:.1f} labels on average, test "
             f"images carry {images['labels per item']:.1f}."]
    if falls:
        lines.append(f"Text mAP falls from {first[col]:.1f} ({groups.index[0]}) to {last[col]:.1f} ({groups.index[-1]}): "
                     "mAP ranks every item against every other for a class, and a sentence naming several classes spreads "
                     "its embedding over several directions, so its score for each is lower than a single-label "
                     "sentence's - multi-label texts are hard cases for the cross-item ranking.")
    else:
        lines.append(f"Text mAP does not fall with the number of labels named ({first[col]:.1f} for {groups.index[0]}, "
                     f"{last[col]:.1f} for {groups.index[-1]}), so label count does not explain the difference here.")
    lines.append(f"Within each item its own labels rank above the others with label-ranking AP "
                 f"{texts['label-ranking AP (%)']:.1f} on texts and {images['label-ranking AP (%)']:.1f} on images. "
                 "Texts and images are scored by the same function (mean_average_precision on clean, L2-normalised "
                 "embeddings, no training noise), so the difference is one of the items scored, not of the evaluation.")
    return " ".join(lines)


def top_k_predictions(scores: Mapping[str, np.ndarray], classnames: Sequence[str], indices,
                      k: int = 3) -> dict[str, list[list[str]]]:
    """Per method, the ``k`` best-scored class names (best first) of each image in ``indices`` (ties: lower class index first)."""
    if not 1 <= k <= len(classnames):
        raise ValueError(f"top_k_predictions: k={k!r}; expected 1..{len(classnames)} (the number of classes)")
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    out = {}
    for method, s in scores.items():
        s = np.asarray(s)
        if s.ndim != 2 or s.shape[1] != len(classnames):
            raise ValueError(f"top_k_predictions: scores of {method!r} have shape {s.shape}; expected N x {len(classnames)}")
        order = np.argsort(-s[idx], axis=1, kind="stable")[:, :k]
        out[method] = [[classnames[j] for j in row] for row in order]
    return out


def per_class_summary(per_class_ap: pd.DataFrame, better: str, worse: str, n: int = 3) -> str:
    """Markdown: the classes where ``better`` gains and loses most AP against ``worse`` (columns of ``per_class_ap``)."""
    for c in (better, worse):
        if c not in per_class_ap:
            raise KeyError(f"per_class_summary: no column {c!r}; expected one of {list(per_class_ap.columns)}")
    d = (per_class_ap[better] - per_class_ap[worse]).sort_values()
    losses = [f"{cls} ({v:+.1f})" for cls, v in d.head(n).items() if v < 0]
    gains = [f"{cls} ({v:+.1f})" for cls, v in d.iloc[::-1].head(n).items() if v > 0]
    parts = [f"**What this shows:** *{better}* is above *{worse}* on {int((d > 0).sum())} of {len(d)} classes "
             f"(median difference {d.median():+.1f} AP points, one seed)."]
    if gains:
        parts.append("Largest gains: " + ", ".join(gains) + ".")
    if losses:
        parts.append("Largest losses: " + ", ".join(losses) + ". Possible reasons, not tested here: the "
                     "classifier's direction for a class is learned from sentences, so it can point away from where "
                     "that class's images lie when the class is small or occluded in images, or when its images "
                     "are dominated by classes it co-occurs with; a zero-shot prompt is not trained and so cannot "
                     "drift that way.")
    return " ".join(parts)


def gap_summary(report: pd.DataFrame, alpha: float, tau: float) -> str:
    """Markdown: what :func:`gap_before_after` shows (gap norm, matched cosine and separability, before and after)."""
    b, a = report["before mapping"], report["after mapping"]
    lines = [f"**What this shows:** the mapping (alpha {alpha:g}, tau {tau:g}) moves the image embeddings towards "
             f"the text: the gap norm goes from {b['gap norm']:.2f} to {a['gap norm']:.2f}"
             + (f" and the matched-pair cosine from {b['matched cosine (mean)']:.2f} to {a['matched cosine (mean)']:.2f}"
                if "matched cosine (mean)" in report.index else "") + "."]
    sep = "separability (balanced acc.)"
    if sep in report.index:
        if a[sep] > 0.95:
            lines.append(f"It does not make the modalities harder to tell apart: a linear probe still separates "
                         f"images from texts with balanced accuracy {b[sep]:.3f} -> {a[sep]:.3f} (0.5 would be "
                         "indistinguishable). The mapping shifts the image cloud; it does not merge it with the text cloud.")
        else:
            lines.append(f"The modalities become harder to tell apart: probe balanced accuracy "
                         f"{b[sep]:.3f} -> {a[sep]:.3f} (0.5 would be indistinguishable).")
    return " ".join(lines)


def toy_clip_summary(metrics: pd.DataFrame) -> str:
    """Markdown: what :func:`toy_clip_metrics_table` shows (zero-shot against chance, the gap per variant)."""
    zs, chance = "zero-shot mAP (%) [published protocol]", "chance mAP (%)"
    gap = "modality gap [no-pos pool]"
    rows = [f"{v} {r[zs]:.1f} (gap {r[gap]:.2f}, logit scale {r['logit scale']:.0f})" for v, r in metrics.iterrows()]
    learned = metrics[zs] > 2 * metrics[chance]
    lines = ["**What this shows:** zero-shot mAP per variant: " + "; ".join(rows)
             + f"; chance is {metrics[chance].iloc[0]:.1f}."]
    if learned.all():
        lines.append("Every variant learned to align images with their captions (zero-shot far above chance).")
    else:
        lines.append("Not every variant is far above chance (" + ", ".join(metrics.index[~learned])
                     + "): its results in later notebooks say little about the method.")
    order = metrics[gap].sort_values()
    lines.append(f"The gap ranges from {order.iloc[0]:.2f} ({order.index[0]}) to {order.iloc[-1]:.2f} "
                 f"({order.index[-1]}); OpenAI's CLIP has about 0.82.")
    return " ".join(lines)


def cooccurrence_summary(corpus_ratio: pd.DataFrame, test_ratio: pd.DataFrame, n: int = 3, limit: float = 3.0) -> str:
    """Markdown: how the corpus's label co-occurrence (log2 observed / expected) compares with the test set's.

    Ratios are clipped to [-limit, limit] as the colour scale of
    :func:`~lcmc_core.reporting.data_figures.cooccurrence_heatmaps` is (so pairs never seen together count
    as -limit here, while the figure gives them a colour of their own); pairs with a class never seen are
    left out.
    """
    upper = np.triu(np.ones(corpus_ratio.shape, dtype=bool), 1)
    c = np.clip(corpus_ratio.values[upper], -limit, limit)
    t = np.clip(test_ratio.values[upper], -limit, limit)
    pairs = np.asarray([f"{corpus_ratio.index[i]} + {corpus_ratio.columns[j]}" for i, j in zip(*np.nonzero(upper))])
    ok = ~np.isnan(c) & ~np.isnan(t)
    corr = float(np.corrcoef(c[ok], t[ok])[0, 1]) if ok.sum() > 2 and c[ok].std() > 0 and t[ok].std() > 0 else float("nan")
    seen_t = ~np.isnan(t)
    top = sorted(zip(t[seen_t], pairs[seen_t]), key=lambda vp: -vp[0])[:n]
    spread_c, spread_t = float(np.nanstd(c)), float(np.nanstd(t))
    closer = ("closer to independence than" if spread_c < 0.5 * spread_t else
              "about as far from independence as" if spread_c < 2 * spread_t else "further from independence than")
    lines = [f"**What this shows:** class pairs co-occur in the corpus {closer} in the test set (spread of the log2 "
             f"ratio {spread_c:.2f} vs {spread_t:.2f}); the most over-represented test pairs are "
             + ", ".join(f"{p} ({v:+.1f})" for v, p in top) + "."]
    never = int(np.sum(np.isneginf(test_ratio.values[upper])))
    if never:
        lines.append(f"{never} of {len(t)} class pairs never appear together in a test image.")
    lines.append(f"The two maps correlate at {corr:.2f} over the class pairs. A corpus whose pairs do not follow "
                 "the images' does not teach which classes go together; CoMC's classifier scores each class on its "
                 "own, so it neither learns nor needs that structure.")
    return " ".join(lines)


# ---------------------------------------------------------------------------------------------
# for display and for notebooks 04-06
# ---------------------------------------------------------------------------------------------
def readable(df, float_format: str = "%.1f") -> pd.DataFrame:
    """``df`` formatted for reading as the saved tables are (settings such as a noise std 0.05 never print as 0.1)."""
    from .saving import format_table
    table, _ = format_table(df, float_format)
    return table


def mapping_sweep_summary(sweep: pd.DataFrame, official: tuple[float, float], n_seeds: int) -> str:
    """What the (alpha, temperature) sweep shows, as markdown: no mapping, the official cell, the best cell."""
    no_map = float(sweep.loc[sweep["alpha"] == 1.0, "mAP"].mean())
    off = sweep[(sweep["alpha"] == official[0]) & (sweep["temperature"] == official[1])].iloc[0]
    best = sweep.loc[sweep["mAP"].idxmax()]
    return (f"**What the sweep shows** ({n_seeds} seeds): without mapping the classifier scores {no_map:.1f}; the official "
            f"cell (alpha {official[0]:g}, tau {official[1]:g}) gives {off['mAP']:.1f} ± {off['mAP std']:.1f} "
            f"({off['mAP'] - no_map:+.1f}); the best cell is alpha {best['alpha']:g}, tau {best['temperature']:g} at "
            f"{best['mAP']:.1f} ± {best['mAP std']:.1f}. Choosing it here would be tuning on test images, which is "
            f"why the official setting stays the default; differences smaller than the std over seeds are not "
            f"resolved.")


def ablations_summary(losses: pd.DataFrame, noise: pd.DataFrame, labels: pd.DataFrame, official_loss: str,
                      official_noise: float, n_seeds: int) -> str:
    """What the ablations show, as markdown generated from their tables."""
    best = losses.loc[losses["mAP (CoMC)"].idxmax()]
    off = losses.loc[losses["loss"] == official_loss].iloc[0]
    at = noise.set_index("noise std")["mAP (CoMC)"]
    differ = labels.set_index("corpus labels")
    return (f"**What the ablations show:** the official loss gives {off['mAP (CoMC)']:.1f} ± {off['mAP (CoMC) std']:.1f}, "
            f"the best loss here is *{best['loss']}* at {best['mAP (CoMC)']:.1f} ± {best['mAP (CoMC) std']:.1f}; noise "
            f"std 0 gives {at.iloc[0]:.1f} and the official {official_noise:g} gives {at.loc[official_noise]:.1f} with "
            f"mapping; the corpus labels differ in {differ.loc['requested', 'sentences whose labels differ (%)']:.1f}% "
            f"of the sentences ({differ.loc['extracted', 'mAP (CoMC)']:.1f} extracted vs "
            f"{differ.loc['requested', 'mAP (CoMC)']:.1f} requested, seed 0). Differences within about one std over "
            f"seeds are not resolved by {n_seeds} seeds.")


def _family_wise(r, name: str, sep: str) -> str:
    """A study difference as ``+1.0 [+0.4, +1.5]<sep>verdict`` (its family-wise interval)."""
    return (f"{r[name]:+.1f} [{r[f'{name} family-wise low']:+.1f}, {r[f'{name} family-wise high']:+.1f}]"
            f"{sep}{r[f'{name} verdict']}")


def gap_study_summary(summary: pd.DataFrame, per_seed: pd.DataFrame) -> str:
    """What the toy CLIP seed study shows, as markdown: every verdict from its family-wise interval."""
    from ..experiments.ablations import STUDY_COMPARISONS
    n = int(summary["seeds"].iloc[0])
    k = len(summary) * len(STUDY_COMPARISONS)
    lines = [f"**What the study shows** ({n} toy CLIP seeds per variant; intervals resample the seeds and each seed's "
             f"test images, family-wise over the {k} comparisons):", ""]
    for _, r in summary.sort_values("gap").iterrows():
        parts = []
        for name, _, _ in STUDY_COMPARISONS:
            if f"{name} verdict" in r:
                parts.append(f"{name.split(' (')[0]} {_family_wise(r, name, ': ')}" if name in r else "")
        lines.append(f"- *{r['variant']}*: gap {r['gap']:.2f} ± {r['gap std']:.2f}; " + "; ".join(p for p in parts if p)
                     + ".")
    rho = float(np.corrcoef(per_seed["gap"], per_seed["mapping gain (mAP points)"])[0, 1])
    lines.append(f"- Across all {len(per_seed)} toy CLIPs the correlation of gap and gain is {rho:+.2f}; with three "
                 "variants this describes these CLIPs, it does not establish a law.")
    return "\n".join(lines)


#: The measured columns of notebook 06's overview, each shown as mean [95% interval over seeds and images].
STUDY_MEASURES = (("zero-shot, published protocol", "zero-shot mAP (%) [published protocol]"),
                  ("zero-shot on CoMC's features", "zero-shot mAP (%) [CoMC's features]"),
                  ("classifier, no mapping", "mAP no mapping (%)"), ("CoMC", "mAP CoMC (%)"))


def gap_study_overview(summary: pd.DataFrame) -> pd.DataFrame:
    """Notebook 06's summary as a reader reads it: one cell per measure, mean [interval], and each verdict."""
    from ..experiments.ablations import STUDY_COMPARISONS
    rows = {}
    for _, r in summary.sort_values("gap").iterrows():
        row = {"gap": f"{r['gap']:.2f} ± {r['gap std']:.2f}"}
        for label, column in STUDY_MEASURES:
            if column in r:
                row[f"{label} (mAP %)"] = f"{r[column]:.1f} [{r[f'{column} CI low']:.1f}, {r[f'{column} CI high']:.1f}]"
        for name, _, _ in STUDY_COMPARISONS:
            if f"{name} verdict" in r:
                row[f"{name}, family-wise"] = _family_wise(r, name, " ")
        row["seeds"] = int(r["seeds"])
        rows[r["variant"]] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


#: The rows notebook 05 shows per class and in its gallery: zero-shot as published, the classifier without
#: mapping, CoMC, and its two strongest rivals (those a run does not have are left out).
SHOWN_ROWS = (Row.ZERO_SHOT_PUBLISHED, Row.CLASSIFIER, Row.COMC, Row.TAIDPT, Row.SPARC)


def shown_rows(available, rows=SHOWN_ROWS) -> list:
    """The rows of :data:`SHOWN_ROWS` that ``available`` (a table's index, a score dict) holds, in that order."""
    return [r for r in rows if r in available]


def rows_legend(rows) -> pd.DataFrame:
    """What each row of a comparison table is: its family and a one-line description (the rows module's)."""
    from ..experiments.rows import describe_rows
    return pd.DataFrame(describe_rows(rows), columns=["row", "family", "what it is"]).set_index("row")


def sparc_prompt_report(label_set, prompts, source: str) -> tuple[pd.DataFrame, str]:
    """SPARC's compound prompts per class (table) and a summary line naming the classes with fewer than 4."""
    from ..text.compound import compound_report
    report = compound_report(label_set, prompts)
    table = pd.DataFrame({"compound prompts": report.per_class}).rename_axis("class")
    examples = "; ".join(f"'{p}'" for p in list(prompts)[:3])
    return table, f"source: {source}; " + report.summary().replace("\n", "; ") + f"; e.g. {examples}"


# ------------------------------------------------------------------------------------------ the data (notebooks 00, 01)

__all__ += ["gap_study_overview", "STUDY_MEASURES"]
__all__ += ["split_label_frequency", "prompt_augmentation_table", "prompt_augmentation_summary", "corpus_origin",
            "generation_report"]


def split_label_frequency(labels, classnames: Sequence[str]) -> pd.DataFrame:
    """Per class (index ``class``): ``images`` carrying it (label 1) and their ``share (%)`` of the N x C ``labels``."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(classnames) or len(labels) == 0:
        raise ValueError(f"split_label_frequency: expected a non-empty N x {len(classnames)} label matrix, got shape "
                         f"{labels.shape}")
    freq = pd.DataFrame({"images": (labels == 1).sum(0)}, index=pd.Index(list(classnames), name="class"))
    freq["share (%)"] = 100 * freq["images"] / len(labels)
    return freq


def prompt_augmentation_table(label_set, copies: int = 9, templates="openai", n_examples: int = 3,
                              seed: int = 0) -> pd.DataFrame:
    """The single-label prompt texts the classifier trains on besides the corpus, counted by kind (index ``texts``).

    Rows: the class prompt repeated ``copies`` times per class, one text per template of ``templates``
    (:func:`lcmc_core.text.corpus.prompt_augmentation`), and their total. Columns: ``per class``,
    ``classes``, ``texts`` (per class x classes), ``class prompt among them (per class)`` (how often the
    class prompt itself occurs: the official template set contains it once more) and ``examples``
    (the first class's prompt; ``n_examples`` seeded template texts of any class).
    """
    from ..text.corpus import prompt_augmentation
    from ..text.label_sets import get_label_set

    ls = get_label_set(label_set)
    records = prompt_augmentation(ls, copies=copies, templates=templates)
    per_class = [[r["text"] for r in records if r["label_ids"] == [i]] for i in range(len(ls))]
    if sum(map(len, per_class)) != len(records) or len({len(t) for t in per_class}) != 1:
        raise ValueError(f"prompt_augmentation_table: expected the same single-label prompts for every class of "
                         f"{ls.name}, got {sorted({len(t) for t in per_class})} texts per class")
    n_classes, copies = len(ls), int(copies)
    class_prompt = per_class[0][0] if copies else None
    template_texts = [t for texts in per_class for t in texts[copies:]]
    n_templates = len(per_class[0]) - copies
    repeats_in_templates = sum(t == texts[0] for texts in per_class for t in texts[copies:]) // n_classes if copies else 0
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(template_texts), size=min(n_examples, len(template_texts)), replace=False)
    name = templates if isinstance(templates, str) else "given"
    rows = [(f"class prompt, {copies} copies", copies, copies, class_prompt or ""),
            (f"one per template ({name!r} set, {n_templates} templates)", n_templates, repeats_in_templates,
             " / ".join(template_texts[i] for i in sorted(picked))),
            ("all prompt texts", copies + n_templates, copies + repeats_in_templates, "")]
    table = pd.DataFrame([{"texts": kind, "per class": k, "classes": n_classes, "texts in all": k * n_classes,
                           "class prompt among them (per class)": same, "examples": example}
                          for kind, k, same, example in rows]).set_index("texts")
    return table


def prompt_augmentation_summary(table: pd.DataFrame, corpus_sentences: int) -> str:
    """Markdown: what :func:`prompt_augmentation_table` adds to a corpus of ``corpus_sentences``, and the classifier's total."""
    copies, templates, total = table.iloc[0], table.iloc[1], table.iloc[-1]
    n_classes, n_prompts = int(total["classes"]), int(total["texts in all"])
    text = (f"**Prompt augmentation:** besides the {corpus_sentences:,} corpus sentences, the classifier trains on "
            f"{n_prompts:,} single-label prompt texts: for each of the {n_classes} classes, "
            + (f"{int(copies['per class'])} copies of the class prompt (\"{copies['examples']}\") and "
               if copies["per class"] else "")
            + f"{int(templates['per class'])} template texts ({n_classes} x {int(total['per class'])} = {n_prompts:,}).")
    if templates["class prompt among them (per class)"]:
        text += (f" The template set contains the class prompt itself, so it occurs "
                 f"{int(total['class prompt among them (per class)'])} times per class in all.")
    return text + (f" Training texts: {corpus_sentences:,} + {n_prompts:,} = {corpus_sentences + n_prompts:,} "
                   "(the count notebook 02 trains on).")


def corpus_origin(info, results_dir) -> str:
    """Markdown: where a run's corpus comes from (:class:`~lcmc_core.experiments.experiment.CorpusInfo`) and its size;
    the path relative to ``results_dir`` when it lies there, else as given (a user's file anywhere)."""
    from pathlib import Path

    path = Path(info.path)
    results = Path(results_dir)
    inside = path.resolve().is_relative_to(results.resolve())
    shown = f"`{path.resolve().relative_to(results.resolve())}` in the results folder" if inside else f"`{path}`"
    text = f"**Corpus:** {shown}, {info.origin}: {info.sentences:,} sentences."
    if info.summary is None:
        return text + (" It is your file: nothing was generated, so the generation summary, its outcomes and the "
                       "rejected answers apply only to a generated corpus and are not shown.")
    s = info.summary.to_dict() if hasattr(info.summary, "to_dict") else dict(info.summary)
    text += f" Generation status: {s.get('status')}"
    if s.get("status") != "complete":
        text += (f" ({s.get('pending')} of {s.get('n')} requests pending; rerun to resume: the run's manifest marks "
                 "notebook 01 incomplete)")
    return text + "."


def generation_report(summary, rejected: Sequence[Mapping] = (), n: int = 10) -> str:
    """Markdown: how corpus generation went (accepted, rejected by reason, pending, kept with issues) and the first
    ``n`` of the ``rejected`` answers (:func:`~lcmc_core.text.generation.read_rejected`; texts shortened to 160
    characters); "" without a summary."""
    if summary is None:
        return ""
    s = summary.to_dict() if hasattr(summary, "to_dict") else dict(summary)
    gen = s.get("generator") or {}
    source = gen.get("source") or gen.get("name") or "the"
    n_req, accepted, n_rejected, pending = (int(s.get(k) or 0) for k in ("n", "accepted", "rejected", "pending"))
    issues = {r: int(c) for r, c in (s.get("kept_with_issues") or {}).items() if c}
    if n_rejected == 0 and pending == 0:
        text = (f"**Generation outcomes:** all {n_req:,} requests were answered and accepted by the {source} generator: "
                "none rejected, none pending, so no outcome chart is drawn (it would show zeros only).")
    else:
        reasons = ", ".join(f"{r} {int(c)}" for r, c in sorted((s.get("rejected_by_reason") or {}).items()) if c)
        text = (f"**Generation outcomes:** {accepted:,} of {n_req:,} requests accepted by the {source} generator; "
                f"{n_rejected:,} answers rejected" + (f" ({reasons})" if reasons else "") + f"; {pending:,} pending.")
    if issues:
        text += (" Kept with issues (a sentence's labels are the classes it names): "
                 + ", ".join(f"{r} {c}" for r, c in sorted(issues.items())) + ".")
    rejected = list(rejected)
    if rejected:
        text += f"\n\nThe first {min(n, len(rejected))} of {len(rejected)} rejected answers:\n\n" + "\n".join(
            f"- request {r.get('index')}, *{r.get('reason')}* (asked for {', '.join(r.get('requested') or []) or '?'}): "
            f"{textwrap.shorten(str(r.get('text')), 160, placeholder=' ...')!r}" for r in rejected[:n])
    return text
