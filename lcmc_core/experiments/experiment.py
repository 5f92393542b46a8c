"""One experiment = a run's parameters turned into objects: model, test set, corpus, comparison.

The numbered notebooks all start with ``exp = Experiment.from_notebook(profile, out_dir, params)``
(the three values papermill injects) and then ask it for what they need. Everything expensive is
cached on disk (toy CLIP checkpoints, image and text features, trained classifiers, the corpus
file), so a notebook run after another reuses its work and ``--only 03`` still works alone. The
corpus lives in ``<out_dir>/corpus/`` (generation is resumable, see
:mod:`lcmc_core.text.generation`); everything else in the cache folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..images import datasets, toyclip, toyworld
from ..images.models import LoadedCLIP, load_clip
from ..method.comc import CoMC, hyperparameters
from ..outputs import results_dir
from ..text.label_sets import get_label_set
from ..text.labels import join_names, with_article
from .comparison import ComparisonResult, ComparisonSettings, Evaluation, build_training_corpus, run_comparison
from .params import RANDOM_WEIGHTS, TOY_N_TEST, TOY_WEIGHTS, Params, params_from_tree, set_path
from .profiles import resolve_device, toy_world_caption
from .rows import Row

__all__ = ["Experiment", "label_sentence"]


def skipped_images_line(ds) -> str:
    """One line saying how many images of the split are evaluated and which were skipped, and why."""
    reasons = ds.info.get("skipped_reasons", {})
    official = ds.info.get("official_size", len(ds))
    if not reasons:
        return f"{ds.name} {ds.split}: all {official} images present and readable"
    counts = {r: sum(v == r for v in reasons.values()) for r in sorted(set(reasons.values()))}
    names = ", ".join(f"{k} ({v})" for k, v in list(reasons.items())[:20])
    more = f", ... and {len(reasons) - 20} more (all listed in the run's manifest.json)" if len(reasons) > 20 else ""
    return (f"{ds.name} {ds.split}: {len(ds)} of {official} images evaluated; skipped "
            + ", ".join(f"{n} {r}" for r, n in counts.items()) + f": {names}{more}")


class Experiment:
    """The parameters of one run of the notebooks (:class:`Params`), and the objects built from them, lazily."""

    def __init__(self, params: Params | Mapping | None = None, *, out_dir: str | Path = "", profile: str = "toy",
                 cache=None):
        self.params = params if isinstance(params, Params) else params_from_tree(params or {})
        self.out_dir = str(out_dir or "")
        self.profile = profile
        self.cache = cache
        self._clip: LoadedCLIP | None = None
        self._test_set = None

    @classmethod
    def from_notebook(cls, profile: str, out_dir: str, params: Mapping | None) -> Experiment:
        """The experiment of a notebook's three injected values.

        ``params={}`` (a notebook opened by hand) resolves profile ``profile`` as the runner would, so an
        interactive run uses the same parameters as the committed results of that profile.
        """
        if not params:
            from .profiles import load_profile
            prof = load_profile(profile or "toy")
            tree: dict = {}
            for key, value in prof.params.items():
                set_path(tree, key, value)
            return cls(params_from_tree(tree, dict(prof.origins)), out_dir=out_dir, profile=prof.name)
        return cls(params_from_tree(dict(params), {k: "the notebook's params" for k in params}),
                   out_dir=out_dir, profile=profile)

    def __repr__(self) -> str:
        p = self.params
        return f"Experiment(profile={self.profile!r}, dataset={p.dataset!r}, clip={p.clip_model}/{p.clip_pretrained})"

    def replace(self, **changes) -> Experiment:
        """The same experiment with some parameters changed (a fresh object; nothing built is shared)."""
        return Experiment(dataclasses.replace(self.params, **changes), out_dir=self.out_dir, profile=self.profile,
                          cache=self.cache)

    # --- what the parameters describe --------------------------------------------------------
    @property
    def is_toy(self) -> bool:
        """True for the embedded toy world (EmojiVOC with a toy CLIP)."""
        return self.params.dataset == "emoji-voc"

    @property
    def label_set(self):
        """The dataset's label set, with our class names or the official code's (``class_names``)."""
        return get_label_set(self.params.dataset, names=self.params.class_names)

    @property
    def results_dir(self) -> Path:
        """Where figures, tables and the corpus go."""
        return results_dir(self.out_dir)

    @property
    def note(self) -> str:
        """The caption every toy-world figure and table carries ("" on real data)."""
        return toy_world_caption(self.profile, self.params.dataset)

    def describe(self) -> str:
        """One line: profile, dataset, model and results folder."""
        p = self.params
        return (f"profile {self.profile!r}: {p.dataset}, CLIP {p.clip_model} ({p.clip_pretrained}); "
                f"results in {self.results_dir.name}/")

    def toy_spec(self, variant: str | None = None) -> toyclip.ToyCLIPSpec:
        """The toy CLIP spec of ``variant`` (default: this experiment's) at this experiment's size."""
        return toyclip.toy_clip_specs(self.params.toy_size, [variant or self.params.toy_variant],
                                      seed=self.params.seed)[0]

    def with_variant(self, variant: str) -> Experiment:
        """The same experiment with another toy CLIP variant (toy world only)."""
        if not self.is_toy:
            raise ValueError(f"toy CLIP variants exist only in the toy world, not {self.params.dataset!r}")
        return self.replace(toy_variant=variant)

    def pair_count(self, default: int = 1000) -> int:
        """Matched (image, text) pairs for the gap figures: the toy size's held-out split, or ``default`` test images."""
        if self.is_toy:
            return int(toyclip.SIZES[self.params.toy_size]["n_heldout"])
        return int(min(default, self.params.n_test)) if self.params.n_test else int(default)

    # --- the pieces (built on first use, then reused) -----------------------------------------
    def clip(self) -> LoadedCLIP:
        """The CLIP model: the toy CLIP (pretrained here if not cached, minutes) or an open_clip model and weights."""
        if self._clip is None:
            p = self.params
            device = resolve_device(p.device)
            if p.clip_pretrained == TOY_WEIGHTS:
                self._clip = toyclip.load_toy_clip(self.toy_spec(), cache=self.cache, device=device)
            elif p.clip_pretrained == RANDOM_WEIGHTS:   # asked for by name: untrained weights
                import warnings
                warnings.warn(f"clip_pretrained='random': {p.clip_model} with UNTRAINED weights; its numbers mean "
                              f"nothing", UserWarning, stacklevel=2)
                self._clip = load_clip(p.clip_model, None, device=device)
            else:
                self._clip = load_clip(p.clip_model, p.clip_pretrained, device=device)
        return self._clip

    def test_set(self):
        """The evaluated images: the toy test split, or the real dataset's test split (optionally a fixed sample)."""
        if self._test_set is None:
            p = self.params
            if self.is_toy:
                ds = datasets.load("emoji-voc", split="test", n=p.n_test or TOY_N_TEST, seed=p.seed,
                                   image_size=self.toy_spec().image_size)
            else:
                ds = datasets.load(p.dataset, p.data_root, split="test", missing=p.missing_images,
                                   verify_images=p.verify_images)
                print(skipped_images_line(ds), flush=True)
                if p.n_test and p.n_test < len(ds):
                    idx = np.sort(np.random.default_rng(p.seed).choice(len(ds), p.n_test, replace=False))
                    ds = ds.subset(idx)
            self._test_set = ds
        return self._test_set

    # --- the corpus ------------------------------------------------------------------------
    def generator_options(self) -> dict:
        """Options for the corpus generator from the ``llm.*`` parameters (none for ``template``)."""
        p, llm = self.params, self.params.llm
        if p.corpus_generator == "openai":
            opts = dict(model=llm.model, base_url=llm.base_url or None, api_key_env=llm.api_key_env,
                        max_tokens=llm.max_tokens, temperature=llm.temperature, concurrency=llm.concurrency,
                        connect_timeout_s=llm.connect_timeout_s, read_timeout_s=llm.read_timeout_s,
                        max_attempts=llm.max_attempts)
            if llm.price_prompt_per_1k or llm.price_completion_per_1k:
                opts.update(price_prompt_per_1k=llm.price_prompt_per_1k,
                            price_completion_per_1k=llm.price_completion_per_1k)
            return opts
        if p.corpus_generator == "transformers":
            return dict(model=llm.model, max_new_tokens=llm.max_tokens, temperature=llm.temperature)
        return {}

    def corpus_path(self, seed: int | None = None) -> Path:
        """The corpus file of this experiment (JSON Lines): the user's ``corpus_path`` (an input, never written), or
        the generated file under the results folder, whose name carries the generator's settings."""
        p = self.params
        if p.corpus_path:
            return Path(p.corpus_path)
        seed = p.seed if seed is None else seed
        name = p.corpus_generator
        if p.corpus_generator != "template":  # what decides the sentences, not how they are fetched
            from ..text.generation import OPERATIONAL_SETTINGS
            decisive = {k: v for k, v in self.generator_options().items() if k not in OPERATIONAL_SETTINGS}
            settings = json.dumps(decisive, sort_keys=True, default=str)
            name += "-" + hashlib.sha256(settings.encode()).hexdigest()[:8]
        return self.results_dir / "corpus" / f"{name}-{self.label_set.name}-n{p.corpus_size}-seed{seed}.jsonl"

    def generate_corpus(self, progress: bool = True, seed: int | None = None):
        """Generate (or finish generating) the corpus file; returns the generation summary (not for ``corpus_path``)."""
        from ..text.generation import generate_corpus
        p = self.params
        if p.corpus_path:
            from ..errors import ConfigError
            raise ConfigError(f"corpus_path={p.corpus_path!r} is set: that file is the corpus, read as given and never "
                              f"modified, so nothing is generated (use prepare_corpus)")
        return generate_corpus(self.corpus_path(seed), self.label_set, p.corpus_size, p.seed if seed is None else seed,
                               p.corpus_generator, progress=progress, k_range=p.comparison.k_range,
                               time_budget_s=p.llm.time_budget_s or None, **self.generator_options())

    def prepare_corpus(self, progress: bool = False, seed: int | None = None) -> CorpusInfo:
        """The corpus of a seed, ready for training: the user's file read as given, or generated (resumed) here.

        An incomplete LLM corpus marks notebook 01 ``incomplete`` for the runner; a corpus without any
        sentence is an error naming its file.
        """
        from ..text.corpus import read_corpus
        path = self.corpus_path(seed)
        if self.params.corpus_path:
            if not path.is_file():
                from ..errors import MissingFileError
                raise MissingFileError(f"corpus_path: the corpus file {path} does not exist")
            n = len(read_corpus(path, self.label_set))
            info = CorpusInfo(path, "your corpus file (read as given, never modified)", n, None)
        else:
            summary = self.generate_corpus(progress=progress, seed=seed)
            self.record_corpus_status(summary)
            info = CorpusInfo(path, f"generated by the {self.params.corpus_generator} generator", summary.accepted,
                              summary)
        _check_corpus_size(path, info.sentences, None if self.params.corpus_path else self.params.corpus_size)
        return info

    def record_corpus_status(self, summary) -> None:
        """Tell the runner that notebook 01 ended with an incomplete corpus (so the manifest does not say "ok")."""
        from ..outputs import report_status
        if summary.status != "complete":
            report_status(self.out_dir, "01", "incomplete",
                          f"corpus {summary.status}: {summary.pending} of {summary.n} requests pending; rerun to resume")

    def corpus_complete(self, seed: int | None = None) -> bool:
        """True when the corpus file exists and its generation summary says every request was answered."""
        from ..text.generation import read_summary
        path = self.corpus_path(seed)
        if self.params.corpus_path:
            return path.is_file()
        try:
            return path.exists() and read_summary(path)["status"] == "complete"
        except (FileNotFoundError, KeyError, ValueError):
            return False

    def training_corpus(self, progress: bool = False, seed: int | None = None,
                        settings: ComparisonSettings | None = None):
        """The classifier's training texts: the corpus file (generated first for the template generator) plus prompts."""
        if not self.corpus_complete(seed):
            if self.params.corpus_path:
                from ..errors import MissingFileError
                raise MissingFileError(f"corpus_path: the corpus file {self.params.corpus_path} does not exist")
            if self.params.corpus_generator != "template":
                from ..errors import ConfigError
                raise ConfigError(
                    f"the {self.params.corpus_generator} corpus at {self.corpus_path(seed)} is not complete; finish it "
                    f"first with notebook 01 (python -m lcmc_core reproduce --only 01 with the same llm.* parameters) "
                    f"or python -m lcmc_core generate-corpus, which resume where generation stopped")
            self.generate_corpus(progress=progress, seed=seed)
        corpus = build_training_corpus(self.label_set, settings or self.params.comparison, path=self.corpus_path(seed))
        generated = sum(s != "prompt" for s in corpus.sources)
        _check_corpus_size(self.corpus_path(seed), generated, None if self.params.corpus_path else self.params.corpus_size)
        return corpus

    # --- the method ---------------------------------------------------------------------------
    def estimator(self, seed: int | None = None, **changes) -> CoMC:
        """The run's (unfitted) CoMC estimator: the ``method.*`` hyperparameters, ``seed`` (default: the run's)."""
        est = self.params.method.estimator(self.params.seed if seed is None else int(seed))
        return est.with_params(**changes) if changes else est

    def _split_overrides(self, overrides: Mapping[str, Any]) -> tuple[dict, ComparisonSettings, Evaluation]:
        """Overrides by name: CoMC hyperparameters, comparison settings, evaluation conventions (unknown: error)."""
        groups = {"method": {h.name for h in hyperparameters()} - {"seed"},
                  "comparison": {f.name for f in dataclasses.fields(ComparisonSettings)},
                  "evaluation": {f.name for f in dataclasses.fields(Evaluation)}}
        split: dict[str, dict] = {g: {} for g in groups}
        for key, value in overrides.items():
            group = next((g for g, names in groups.items() if key in names), None)
            if group is None:
                from ..errors import ConfigError
                known = ", ".join(sorted(set().union(*groups.values())))
                raise ConfigError(f"unknown override {key!r}: expected one of {known}")
            split[group][key] = value
        p = self.params
        return (split["method"], dataclasses.replace(p.comparison, **split["comparison"]),
                dataclasses.replace(p.evaluation, **split["evaluation"]))

    def fitted(self, seed: int | None = None, progress: bool = False) -> FittedRun:
        """CoMC trained here (``CoMC.fit``, no cache) on one seed's training texts, with what it needs and the test features.

        The student's path of notebooks 02 and 03: the corpus plus the prompt augmentation, their CLIP text
        embeddings, the class-prompt memory, the run's estimator fitted on them, and the test images'
        global and local features. The comparison (:meth:`comparison`) trains the same weights (same
        recipe and seed) through its cache.
        """
        from ..images.features import encode_texts_cached, extract_image_features
        from ..method.zero_shot import text_memory
        from .comparison import class_prompt_embeddings
        seed = self.params.seed if seed is None else int(seed)
        p = self.params
        corpus = self.training_corpus(progress=progress, seed=seed)
        text_emb = encode_texts_cached(self.clip(), corpus.texts, self.cache, progress=progress)
        memory = text_memory(p.comparison.memory, class_prompt_embeddings(self.clip(), self.label_set, self.cache), text_emb)
        estimator = self.estimator(seed).fit(text_emb, corpus.targets, memory, classnames=self.label_set.classnames,
                                             progress=progress)
        feats = extract_image_features(self.clip(), self.test_set(), local=True, global_pool=p.comparison.global_pool,
                                       cache=self.cache, progress=progress, batch_size=p.batch_size,
                                       num_workers=p.num_workers)
        return FittedRun(corpus=corpus, text_emb=text_emb, memory=memory, estimator=estimator, image_features=feats,
                         labels=np.asarray(self.test_set().labels), evaluation=p.evaluation, seed=seed)

    def sparc_source(self, settings: ComparisonSettings | None = None) -> str:
        """Where SPARC's compound prompts come from in this run (``comparison.sparc_prompts``, ``auto`` resolved)."""
        source = (settings or self.params.comparison).sparc_prompts
        if source != "auto":
            return source
        if self.is_toy:
            return "toy-world"
        return "llm" if self.params.corpus_generator != "template" else "template"

    def sparc_prompts(self, settings: ComparisonSettings | None = None, progress: bool = False) -> tuple[list[str], str] | None:
        """SPARC's compound prompts and their source (None: no SPARC rows); the same for every seed of the run.

        ``toy-world``: the toy world's scene types and their class priors (its common sense of what appears
        together; never a test scene); ``template``: template sentences naming 2-3 random classes (no
        co-occurrence knowledge: a stand-in that runs offline); ``llm``: the run's LLM (``llm.*``) asked,
        per class, for sentences naming it with categories that often appear with it (SPARC's instruction
        in :mod:`lcmc_core.text.compound`), kept in a resumable file beside the corpus.
        """
        settings = settings or self.params.comparison
        source = self.sparc_source(settings)
        n = settings.sparc_prompts_per_class * len(self.label_set)
        if source == "none":
            return None
        if source == "toy-world":
            if not self.is_toy:
                from ..errors import ConfigError
                raise ConfigError("comparison.sparc_prompts: 'toy-world' exists only in the toy world (dataset emoji-voc)")
            return toyworld.compound_prompts(n, seed=self.params.seed), source
        if source == "template":
            from ..text.corpus import build_corpus
            records = build_corpus(self.label_set, n, self.params.seed, generator="template", k_range=(2, 3))
            return [r["text"] for r in records], source
        return self._llm_sparc_prompts(settings, progress), source

    def _llm_sparc_prompts(self, settings: ComparisonSettings, progress: bool) -> list[str]:
        """SPARC's compound prompts from the run's LLM: generated (or resumed) into a file beside the corpus."""
        from ..text.compound import compound_requests, generate_compound_prompts, read_compound_prompts
        from ..text.generators import make_generator
        p = self.params
        if p.corpus_generator == "template":
            from ..errors import ConfigError
            raise ConfigError("comparison.sparc_prompts=llm needs an LLM: set corpus_generator=openai (or transformers) "
                              "and llm.model")
        options = {**self.generator_options(), "max_tokens": max(400, p.llm.max_tokens)}
        generator = make_generator(p.corpus_generator, self.label_set, seed=p.seed, **options)
        digest = hashlib.sha256(json.dumps([options.get("model"), settings.sparc_prompts_per_class],
                                           default=str).encode()).hexdigest()[:8]
        path = self.results_dir / "corpus" / f"sparc-{p.corpus_generator}-{digest}-{self.label_set.name}.jsonl"
        requests = compound_requests(self.label_set, sentences=settings.sparc_prompts_per_class)
        deadline = None if not p.llm.time_budget_s else time.monotonic() + p.llm.time_budget_s
        done = generate_compound_prompts(path, self.label_set, generator, requests, deadline=deadline)
        if not done.complete:
            from ..errors import ConfigError
            raise ConfigError(f"SPARC's compound prompts at {path} are not complete ({len(done.missing)} of "
                              f"{done.requests} requests without an answer); rerun to resume")
        return read_compound_prompts(path)

    def comparison(self, progress: bool = True, seed: int | None = None, extra_rows=None,
                   **overrides) -> ComparisonResult:
        """Run (or reuse from the caches) CoMC and every baseline on the test set, for one corpus/classifier seed.

        ``overrides`` change, by name, a CoMC hyperparameter (``alpha=0.5``; ``classifier`` may be a dict
        of changes), a comparison setting (``memory="corpus"``) or an evaluation convention (``n_boot=0``).
        """
        method, settings, evaluation = self._split_overrides(overrides)
        seed = self.params.seed if seed is None else int(seed)
        return run_comparison(self.clip(), self.test_set(), self.estimator(seed, **method), settings=settings,
                              evaluation=evaluation,
                              corpus=self.training_corpus(progress=progress, seed=seed, settings=settings),
                              cache=self.cache, progress=progress, batch_size=self.params.batch_size,
                              num_workers=self.params.num_workers, extra_rows=extra_rows,
                              sparc_prompts=self.sparc_prompts(settings))

    def comparisons(self, progress: bool = True, seeds=None, extra_rows=None, **overrides):
        """:meth:`comparison` for every seed of the run (``n_seeds``), summarised as a :class:`.seeds.SeedComparison`."""
        from .seeds import summarise_seeds
        seeds = self.params.seeds if seeds is None else list(seeds)
        results = [self.comparison(progress=progress, seed=s, extra_rows=extra_rows, **overrides) for s in seeds]
        return summarise_seeds(results, n_boot=results[0].evaluation.n_boot, boot_seed=self.params.seed)

    def alt_text_corpus(self, n: int | None = None, seed: int | None = None):
        """Toy world only: alt-text captions of pretraining scenes with the classes they name (TaI-DPT's kind of data).

        TaI-DPT trained on real captions with the nouns they name; the toy analogue is the toy CLIP's own
        alt-text of ``n`` pretraining scenes (default: as many as the corpus has sentences), captions that
        name no class dropped, plus the same prompt augmentation as the CoMC corpus.
        """
        from ..text import corpus as corpus_mod
        from ..text.corpus import make_record
        if not self.is_toy:
            raise ValueError(f"alt-text captions exist only in the toy world, not {self.params.dataset!r}")
        spec = self.toy_spec()
        n = int(n or min(self.params.corpus_size, spec.n_pretrain))
        seed = self.params.seed if seed is None else int(seed)
        scenes = [toyworld.sample_scene(spec.seed, "pretrain", i) for i in range(n)]
        captions, named = toyworld.split_captions(scenes, seed=spec.seed, epoch=seed,
                                                  completeness=spec.caption_completeness)
        records = [make_record(t, sorted(c), self.label_set, "alt-text") for t, c in zip(captions, named) if c]
        aug = corpus_mod.prompt_augmentation(self.label_set, copies=self.params.comparison.prompt_copies,
                                             templates=self.params.comparison.prompt_templates)
        return corpus_mod.corpus_from_records(records + aug, self.label_set, origin="toy alt-text captions")

    def taidpt_config(self):
        """TaI-DPT's configuration: the official one of the dataset (VOC2007 / COCO settings for the toy world)."""
        from ..method.taidpt import OFFICIAL_PRESETS, TaIDPTConfig
        d = self.params.dataset
        return TaIDPTConfig.official(d) if d in OFFICIAL_PRESETS else TaIDPTConfig()

    def taidpt(self, corpus=None, seed: int | None = None, progress: bool = False):
        """TaI-DPT trained on ``corpus`` (default: this experiment's training corpus of ``seed``), cached."""
        from ..method.taidpt import fit_taidpt_cached
        seed = self.params.seed if seed is None else int(seed)
        corpus = corpus if corpus is not None else self.training_corpus(seed=seed)
        return fit_taidpt_cached(self.clip(), corpus.texts, corpus.targets, self.label_set.classnames,
                                 self.taidpt_config(), seed, self.cache, progress=progress)

    def taidpt_rows(self, mapping_ablation: bool = True, alt_text: bool = True, progress: bool = False):
        """``extra_rows`` for :meth:`comparisons`: TaI-DPT trained on the same corpus (and seed) as CoMC.

        Rows: :attr:`Row.TAIDPT`; with ``mapping_ablation`` :attr:`Row.TAIDPT_MAPPED` (the fitted CoMC's
        mapping, every one of its hyperparameters, applied to the image embeddings before TaI-DPT's
        prompts); in the toy world with ``alt_text`` :attr:`Row.TAIDPT_ALT_TEXT` (its original kind of
        training data). None when ``comparison.taidpt`` is false.
        """
        if not self.params.comparison.taidpt:
            return None

        def rows(corpus, text_emb, feats, comc: CoMC):
            est = self.taidpt(corpus, comc.seed, progress=progress)
            out = {Row.TAIDPT: est.scores(feats.global_, feats.local)["merged"]}
            if mapping_ablation:
                out[Row.TAIDPT_MAPPED] = est.scores(feats.global_, feats.local, mapping=comc)["merged"]
            if alt_text and self.is_toy:
                est_alt = self.taidpt(self.alt_text_corpus(seed=comc.seed), comc.seed, progress=progress)
                out[Row.TAIDPT_ALT_TEXT] = est_alt.scores(feats.global_, feats.local)["merged"]
            return out
        return rows

    def paired_embeddings(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Matched (image, text) embedding pairs for gap measures: toy held-out image/caption pairs,
        or, on real data, test images with a sentence naming their labels ("a photo of a dog and a person.")."""
        from ..images.features import encode_texts_cached, extract_image_features
        n = n or self.pair_count()
        p = self.params
        if self.is_toy:
            spec = self.toy_spec()
            ds = datasets.load("emoji-voc", split="heldout", n=n, seed=p.seed, image_size=spec.image_size)
            captions, _ = toyworld.split_captions(toyworld.render_split("heldout", n, seed=p.seed,
                                                                        image_size=spec.image_size),
                                                  seed=p.seed, completeness=spec.caption_completeness)
        else:
            test = self.test_set()
            ds = test.subset(np.arange(min(n, len(test))))
            captions = [label_sentence(self.label_set, row) for row in ds.labels]
        # the global embedding the method scores (attention pool without positional embedding)
        img = extract_image_features(self.clip(), ds, local=False, global_pool=p.comparison.global_pool,
                                     batch_size=p.batch_size, num_workers=p.num_workers, cache=self.cache,
                                     progress=False).global_
        return img, encode_texts_cached(self.clip(), captions, self.cache, progress=False), captions


@dataclass
class FittedRun:
    """The run's CoMC fitted on one seed's training texts, what it was trained on, and the test images' features."""

    corpus: object
    text_emb: torch.Tensor
    memory: torch.Tensor
    estimator: CoMC
    image_features: object
    labels: np.ndarray
    evaluation: Evaluation
    seed: int

    def map_of(self, scores) -> float:
        """mAP of (N, C) scores on the test labels, with the run's evaluation conventions."""
        from ..method.metrics import mean_average_precision
        s = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
        return mean_average_precision(s, self.labels, self.evaluation.difficult)


@dataclass(frozen=True)
class CorpusInfo:
    """Where a seed's corpus comes from and how many sentences it holds (``summary``: the generation's, if generated)."""

    path: Path
    origin: str
    sentences: int
    summary: object | None


#: A generated corpus with fewer sentences than this share of those requested is reported (a warning naming both).
SMALL_CORPUS_SHARE = 0.5


def _check_corpus_size(path: Path, sentences: int, requested: int | None) -> None:
    """No sentence at all is an error; far fewer than requested (below :data:`SMALL_CORPUS_SHARE`) a warning."""
    if sentences == 0:
        from ..errors import CorpusError
        raise CorpusError(f"corpus {path}: it holds no sentence, so the classifier would train on the prompt "
                          f"augmentation alone; generate it again (or give a corpus_path with sentences)")
    if requested and sentences < SMALL_CORPUS_SHARE * requested:
        import warnings
        warnings.warn(f"corpus {path}: {sentences} sentences, far fewer than the {requested} requested (rejected "
                      f"answers are listed in its .rejected.jsonl)", UserWarning, stacklevel=3)


def label_sentence(label_set, row) -> str:
    """A sentence naming the labels of one label row: "a photo of a dog, a cat and a person." ("a photo." if none)."""
    names = [with_article(label_set.prompt_names[i]) for i in np.flatnonzero(np.asarray(row) == 1)]
    return f"a photo of {join_names(names)}." if names else "a photo."
