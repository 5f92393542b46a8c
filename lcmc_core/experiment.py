"""One experiment = the notebooks' parameters turned into objects: model, test set, corpus, method.

The numbered notebooks share their parameters (a profile, see :mod:`lcmc_core.config`). Each
calls :meth:`Experiment.from_parameters` with them and then asks for what it needs; everything
expensive is cached on disk (toy CLIP checkpoints, image and text features, trained classifiers,
the corpus file), so a notebook run after another reuses its work and ``--only 03`` still works
alone. The corpus lives in ``<out_dir>/corpus/`` (generation is resumable, see
:mod:`lcmc_core.generation`); everything else in the cache folder.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from . import datasets, toyclip, toyworld
from .classifier import TrainConfig
from .labels import get_label_set
from .models import LoadedCLIP, load_clip
from .pipeline import MethodConfig, run_comparison

__all__ = ["Experiment", "TOY_N_TEST"]

TOY_N_TEST = 2000  # default size of the toy world's test split


@dataclass
class Experiment:
    """The parameters of one run of the notebooks, and lazily built objects from them."""

    dataset: str = "emoji-voc"
    data_root: str = ""
    clip_model: str = "lcmc-toy-rn"
    clip_pretrained: str = "toy"
    toy_size: str = "toy"
    toy_variant: str = "clip-like-gap"
    corpus_size: int = 20000
    corpus_generator: str = "template"
    seed: int = 0
    device: str = "cpu"
    n_test: int = 0
    missing_images: str = "fail"
    batch_size: int = 64        # images per forward pass when extracting features
    num_workers: int = 0        # DataLoader workers decoding and preprocessing images
    out_dir: str = ""
    # LLM corpus generation (corpus_generator "openai" or "transformers"); the API key is read from
    # the environment variable named by llm_api_key_env, never passed as a parameter.
    llm_model: str = ""
    llm_base_url: str = ""
    llm_api_key_env: str = "OPENAI_API_KEY"
    llm_max_tokens: int = 40
    llm_temperature: float = 1.0
    llm_concurrency: int = 8
    llm_price_prompt_per_1k: float = 0.0
    llm_price_completion_per_1k: float = 0.0
    llm_time_budget_s: float = 0.0  # 0 = no limit; a stopped job resumes on the next run
    generator_options: dict = field(default_factory=dict)
    method_options: dict = field(default_factory=dict)

    @classmethod
    def from_parameters(cls, **params) -> "Experiment":
        """Build from notebook parameters; unknown names are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known - {"profile"})
        if unknown:
            raise TypeError(f"Experiment.from_parameters: unknown parameters {unknown}; expected some of {sorted(known)}")
        params.pop("profile", None)
        return cls(**params)

    # --- the pieces ------------------------------------------------------------------------------
    @property
    def is_toy(self) -> bool:
        """True for the embedded toy world (EmojiVOC with a toy CLIP)."""
        return self.dataset == "emoji-voc"

    @property
    def label_set(self):
        """The dataset's label set."""
        return get_label_set(self.dataset)

    @property
    def results_dir(self) -> Path:
        """Where figures, tables and the corpus go."""
        from .report import results_dir
        return results_dir(self.out_dir)

    def toy_spec(self, variant: str | None = None) -> toyclip.ToyCLIPSpec:
        """The toy CLIP spec of ``variant`` (default: this experiment's) at this experiment's size."""
        return toyclip.toy_clip_specs(self.toy_size, [variant or self.toy_variant], seed=self.seed)[0]

    @cached_property
    def clip(self) -> LoadedCLIP:
        """The CLIP model: the toy CLIP (trained if not cached) or an open_clip model and weights."""
        from .config import resolve_device
        device = resolve_device(self.device)
        if self.clip_pretrained == "toy":
            return toyclip.load_toy_clip(self.toy_spec(), device=device)
        return load_clip(self.clip_model, self.clip_pretrained or None, device=device)

    @cached_property
    def test_set(self):
        """The evaluated images: the toy test split, or the real dataset's test split (optionally a fixed sample)."""
        if self.is_toy:
            return datasets.load("emoji-voc", split="test", n=self.n_test or TOY_N_TEST, seed=self.seed,
                                 image_size=self.toy_spec().image_size)
        ds = datasets.load(self.dataset, self.data_root, split="test", missing=self.missing_images)
        if self.n_test and self.n_test < len(ds):
            idx = np.sort(np.random.default_rng(self.seed).choice(len(ds), self.n_test, replace=False))
            ds = ds.subset(idx)
        return ds

    @property
    def corpus_path(self) -> Path:
        """The generated corpus file of this experiment (JSON Lines)."""
        name = f"{self.corpus_generator}-{self.label_set.name}-n{self.corpus_size}-seed{self.seed}.jsonl"
        return self.results_dir / "corpus" / name

    def generate_corpus(self, progress: bool = True):
        """Generate (or finish generating) the corpus file; returns the generation summary."""
        from .generation import generate_corpus
        return generate_corpus(self.corpus_path, self.label_set, self.corpus_size, self.seed,
                               self.corpus_generator, progress=progress,
                               time_budget_s=self.llm_time_budget_s or None, **self.llm_options())

    def llm_options(self) -> dict:
        """Options for the corpus generator built from the ``llm_*`` parameters (none for ``template``)."""
        opts = dict(self.generator_options)
        if self.corpus_generator == "openai":
            opts.setdefault("model", self.llm_model)
            opts.setdefault("base_url", self.llm_base_url or None)
            opts.setdefault("api_key_env", self.llm_api_key_env)
            opts.setdefault("max_tokens", self.llm_max_tokens)
            opts.setdefault("temperature", self.llm_temperature)
            opts.setdefault("concurrency", self.llm_concurrency)
            if self.llm_price_prompt_per_1k or self.llm_price_completion_per_1k:
                opts.setdefault("price_prompt_per_1k", self.llm_price_prompt_per_1k)
                opts.setdefault("price_completion_per_1k", self.llm_price_completion_per_1k)
        elif self.corpus_generator == "transformers":
            opts.setdefault("model", self.llm_model)
            opts.setdefault("max_new_tokens", self.llm_max_tokens)
            opts.setdefault("temperature", self.llm_temperature)
        return opts

    def method_config(self, **overrides) -> MethodConfig:
        """The method's configuration: official defaults, this experiment's corpus, and overrides."""
        opts = dict(self.method_options)
        opts.update(overrides)
        classifier = opts.pop("classifier", None) or TrainConfig(**opts.pop("classifier_options", {}))
        return MethodConfig(corpus_size=self.corpus_size, corpus_seed=self.seed, seed=self.seed,
                            corpus_path=str(self.corpus_path), classifier=classifier, **opts)

    def comparison(self, progress: bool = True, **overrides):
        """Run (or reuse from the caches) CoMC and every baseline on the test set."""
        if not self.corpus_complete():
            if self.corpus_generator != "template":
                raise RuntimeError(
                    f"the {self.corpus_generator} corpus at {self.corpus_path} is not complete; finish it first "
                    f"with notebook 01 (python -m lcmc_core reproduce --only 01 with the same llm_* parameters) "
                    f"or python -m lcmc_core generate-corpus, which resume where generation stopped")
            self.generate_corpus(progress=progress)
        return run_comparison(self.clip, self.test_set, self.method_config(**overrides), progress=progress,
                              batch_size=self.batch_size, num_workers=self.num_workers)

    def corpus_complete(self) -> bool:
        """True when the corpus file exists and its generation summary says every request was answered."""
        from .generation import read_summary
        try:
            return self.corpus_path.exists() and read_summary(self.corpus_path)["status"] == "complete"
        except (FileNotFoundError, KeyError, ValueError):
            return False

    def paired_embeddings(self, n: int = 1000) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Matched (image, text) embedding pairs for gap measures: toy held-out image/caption pairs,
        or, on real data, test images with a sentence naming their labels ("a photo of a dog and a person.")."""
        from .features import extract_image_features
        from .pipeline import encode_texts_cached
        if self.is_toy:
            spec = self.toy_spec()
            ds = datasets.load("emoji-voc", split="heldout", n=n, seed=self.seed, image_size=spec.image_size)
            captions, _ = toyworld.split_captions(toyworld.render_split("heldout", n, seed=self.seed,
                                                                        image_size=spec.image_size),
                                                  seed=self.seed, completeness=spec.caption_completeness)
        else:
            ds = self.test_set.subset(np.arange(min(n, len(self.test_set))))
            captions = [_label_sentence(self.label_set, row) for row in ds.labels]
        # the global embedding the method scores (attention pool without positional embedding)
        img = extract_image_features(self.clip, ds, local=False, global_pool=self.method_config().global_pool,
                                     batch_size=self.batch_size, num_workers=self.num_workers,
                                     progress=False).global_
        return img, encode_texts_cached(self.clip, captions, progress=False), captions


def _label_sentence(label_set, row) -> str:
    from .labels import with_article
    names = [with_article(label_set.prompt_names[i]) for i in np.flatnonzero(row == 1)]
    if not names:
        return "a photo."
    if len(names) == 1:
        return f"a photo of {names[0]}."
    return f"a photo of {', '.join(names[:-1])} and {names[-1]}."
