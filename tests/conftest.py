"""Shared test fixtures: an isolated cache folder and a smoke-size toy CLIP trained once per session."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

# Test helpers (fixtures_datasets, chat_server) are imported as top-level modules from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Tests never touch the user's cache: everything they build lives in a fresh folder.
os.environ["LCMC_CACHE_DIR"] = tempfile.mkdtemp(prefix="lcmc-test-cache-")


@pytest.fixture(scope="session")
def smoke_spec():
    """The smoke-size spec of the default (CLIP-like gap) toy CLIP."""
    from lcmc_core.images import toyclip
    return toyclip.toy_clip_specs("smoke", ["clip-like-gap"])[0]


@pytest.fixture(scope="session")
def smoke_clip(smoke_spec):
    """A smoke-size toy CLIP, trained once per test session and loaded through open_clip."""
    from lcmc_core.images import toyclip
    return toyclip.load_toy_clip(smoke_spec, progress=False)


@pytest.fixture(scope="session")
def smoke_comparison(smoke_clip):
    """run_comparison on 96 test scenes with a small corpus and short training (seconds)."""
    from lcmc_core.experiments import comparison
    from lcmc_core.images import datasets
    from lcmc_core.method.classifier import TrainConfig
    from lcmc_core.method.comc import CoMC
    ds = datasets.load("emoji-voc", split="test", n=96)
    estimator = CoMC(classifier=TrainConfig(epochs=3, batch_size=64, warmup_epochs=1))
    return comparison.run_comparison(smoke_clip, ds, estimator, settings=comparison.ComparisonSettings(prompt_copies=2),
                                     evaluation=comparison.Evaluation(n_boot=20), corpus_size=300, progress=False)


# Fixtures that train a model or run notebooks: every test using one is `slow` (make test-fast skips them).
_TRAINING_FIXTURES = {"smoke_clip", "smoke_comparison", "smoke_run", "runs"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
