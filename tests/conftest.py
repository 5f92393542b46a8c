"""Shared test fixtures: an isolated cache folder and a smoke-size toy CLIP trained once per session."""
import os
import tempfile

import pytest

# Tests never touch the user's cache: everything they build lives in a fresh folder.
os.environ["LCMC_CACHE_DIR"] = tempfile.mkdtemp(prefix="lcmc-test-cache-")


@pytest.fixture(scope="session")
def smoke_spec():
    """The smoke-size spec of the default (CLIP-like gap) toy CLIP."""
    from lcmc_core import toyclip
    return toyclip.toy_clip_specs("smoke", ["clip-like-gap"])[0]


@pytest.fixture(scope="session")
def smoke_clip(smoke_spec):
    """A smoke-size toy CLIP, trained once per test session and loaded through open_clip."""
    from lcmc_core import toyclip
    return toyclip.load_toy_clip(smoke_spec, progress=False)


@pytest.fixture(scope="session")
def smoke_comparison(smoke_clip):
    """run_comparison on 96 test scenes with a small corpus and short training (seconds)."""
    from lcmc_core import datasets, pipeline
    from lcmc_core.classifier import TrainConfig
    ds = datasets.load("emoji-voc", split="test", n=96)
    cfg = pipeline.MethodConfig(corpus_size=300, prompt_copies=2, n_boot=20,
                                classifier=TrainConfig(epochs=3, batch_size=64, warmup_epochs=1))
    return pipeline.run_comparison(smoke_clip, ds, cfg, progress=False)
