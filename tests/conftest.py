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
