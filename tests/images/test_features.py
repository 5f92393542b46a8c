"""Image features: global/local branches for ResNet and ViT towers; the .npy cache, resumable and self-repairing."""
import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core.images import datasets, features
from lcmc_core.images.models import load_clip


@pytest.fixture(scope="module")
def toy_random():
    torch.manual_seed(0)
    return load_clip("lcmc-toy-rn", pretrained=None)


def test_resnet_global_with_positional_embedding_equals_clip_encode_image(toy_random):
    x = torch.randn(3, 3, 64, 64)
    g, loc = features.image_embeddings(toy_random.model, x, local=True, global_pool="clip")
    with torch.no_grad():
        ref = F.normalize(toy_random.model.encode_image(x), dim=-1)
    assert torch.allclose(g, ref, atol=1e-5)
    assert loc.shape == (3, 4, 128)  # 64 px / 32 = 2 x 2 positions
    assert torch.allclose(loc.norm(dim=-1), torch.ones(3, 4), atol=1e-5)


def test_resnet_default_global_drops_the_positional_embedding(toy_random):
    x = torch.randn(2, 3, 64, 64)
    g_nopos, _ = features.image_embeddings(toy_random.model, x, local=False)
    g_pos, _ = features.image_embeddings(toy_random.model, x, local=False, global_pool="clip")
    assert not torch.allclose(g_nopos, g_pos, atol=1e-4)
    pool = toy_random.model.visual.attnpool
    with torch.no_grad():
        saved = pool.positional_embedding.clone()
        pool.positional_embedding.zero_()
        try:
            g_zero, _ = features.image_embeddings(toy_random.model, x, local=False, global_pool="clip")
        finally:
            pool.positional_embedding.copy_(saved)
    assert torch.allclose(g_nopos, g_zero, atol=1e-5)  # "no-pos" == attention pool with zero positions


def test_resnet_local_branch_is_value_then_output_projection(toy_random):
    x = torch.randn(1, 3, 64, 64)
    _, loc = features.image_embeddings(toy_random.model, x)
    v = toy_random.model.visual
    with torch.no_grad():
        fmap = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(x)))))  # 1 x C x 2 x 2
        top_left = fmap[0, :, 0, 0]
        ref = F.normalize(v.attnpool.c_proj(v.attnpool.v_proj(top_left)), dim=-1)
    assert torch.allclose(loc[0, 0], ref, atol=1e-5)


@pytest.mark.parametrize("name,dim", [("RN50", 1024), ("ViT-B-32", 512)])
def test_random_init_real_architectures_on_two_images(name, dim):
    torch.manual_seed(0)
    loaded = load_clip(name, pretrained=None)
    ds = datasets.load("emoji-voc", split="test", n=2)
    x = torch.stack([loaded.preprocess(ds.image(i)) for i in range(2)])
    assert x.shape == (2, 3, 224, 224)
    g, loc = features.image_embeddings(loaded.model, x)
    assert g.shape == (2, dim) and loc.shape == (2, 49, dim)
    if name.startswith("ViT"):
        visual = loaded.model.visual
        with torch.no_grad():
            ref = F.normalize(loaded.model.encode_image(x), dim=-1)
            visual.output_tokens = True  # open_clip's own token output: patch tokens after ln_post
            try:
                _, tokens = visual(x)
            finally:
                visual.output_tokens = False
        assert torch.allclose(g, ref, atol=1e-5)  # class token = CLIP's own image embedding
        assert torch.allclose(loc, F.normalize(tokens @ visual.proj, dim=-1), atol=1e-5)


def test_bad_pooling_and_missing_local_branch_are_refused(toy_random):
    with pytest.raises(ValueError, match="global_pool"):
        features.image_embeddings(toy_random.model, torch.randn(1, 3, 64, 64), global_pool="avg")


def test_encode_texts_is_normalised_and_batched(toy_random):
    texts = [f"a photo of {i} dogs" for i in range(7)]
    a = features.encode_texts(toy_random, texts, batch_size=3)
    b = features.encode_texts(toy_random, texts, batch_size=100)
    assert a.shape == (7, 128) and torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(a.norm(dim=-1), torch.ones(7), atol=1e-5)
    with pytest.raises(TypeError, match="list of str"):
        features.encode_texts(toy_random, [1, 2])


def test_feature_cache_is_reused(toy_random, tmp_path, monkeypatch):
    ds = datasets.load("emoji-voc", split="test", n=10)
    first = features.extract_image_features(toy_random, ds, cache=tmp_path, shard_size=4, progress=False)
    calls = []
    real = features.image_tower_outputs
    monkeypatch.setattr(features, "image_tower_outputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = features.extract_image_features(toy_random, ds, cache=tmp_path, shard_size=4, progress=False)
    assert calls == []  # a cache hit computes nothing
    assert torch.equal(first.global_, second.global_) and torch.equal(first.local[:], second.local[:])
    assert first.local.dtype == torch.float16 and first.global_.shape == (10, 128)
    assert isinstance(first.local, features.FeatureFile) and first.local.shape == (10, 4, 128)
    other = features.extract_image_features(toy_random, ds, cache=tmp_path, shard_size=4, progress=False,
                                            global_pool="clip")
    assert other.key != first.key and calls  # another pooling is another cache entry
    # both pools come from one pass: the no-pos entry also holds CLIP's own pooling
    assert torch.allclose(first.global_clip, other.global_, atol=1e-6)
    assert torch.allclose(other.global_clip, other.global_) and not torch.allclose(first.global_, other.global_)


def test_cached_global_features_are_read_when_used_and_released_on_request(toy_random, tmp_path):
    ds = datasets.load("emoji-voc", split="test", n=6)
    feats = features.extract_image_features(toy_random, ds, cache=tmp_path, progress=False)
    g = features.FeatureFile(feats.cache_path / "global.npy").tensor()
    first = feats.global_
    assert torch.equal(first, g) and feats.global_ is first          # read once, then kept
    feats.release()
    assert feats.global_ is not first and torch.equal(feats.global_, g)   # read again after a release
    assert torch.equal(feats.global_clip, features.FeatureFile(feats.cache_path / "global_clip.npy").tensor())
    held = features.ImageFeatures(global_=g, local=None, key="k")
    held.release()
    assert held.global_ is g and held.global_clip is None              # arrays given in memory stay
    assert "global_: disk" in repr(feats) and "global_: memory" in repr(held)


def test_cached_features_equal_uncached_ones(toy_random, tmp_path):
    ds = datasets.load("emoji-voc", split="test", n=9)
    cached = features.extract_image_features(toy_random, ds, cache=tmp_path, shard_size=4, batch_size=3,
                                             progress=False)
    memory = features.extract_image_features(toy_random, ds, use_cache=False, batch_size=5, progress=False)
    assert torch.allclose(cached.global_, memory.global_, atol=1e-6)
    # both float16 roundings of float32 values that differ by ~1e-7 across batch sizes (BLAS blocking),
    # so at most one float16 step apart
    assert cached.local.dtype == memory.local.dtype == torch.float16
    torch.testing.assert_close(cached.local[:].float(), memory.local.float(), rtol=2 ** -10, atol=1e-5)


def test_write_feature_entry_writes_every_array_in_chunks_from_row_sliceable_sources(tmp_path):
    class Rows:   # a source that only knows its shape and hands out row blocks (never a whole array)
        def __init__(self, a):
            self.a, self.shape, self.reads = a, a.shape, []

        def __getitem__(self, key):
            self.reads.append((key.start, key.stop))
            return self.a[key]
    g, g_clip, loc = torch.randn(7, 5), torch.randn(7, 5), torch.randn(7, 3, 5)
    sources = [Rows(g), Rows(g_clip), Rows(loc)]
    features.write_feature_entry(tmp_path, sources[0], sources[2], chunk=3, global_clip=sources[1])
    assert all(src.reads == [(0, 3), (3, 6), (6, 9)] for src in sources)
    assert torch.equal(features.FeatureFile(tmp_path / "global.npy").tensor(), g)
    assert torch.equal(features.FeatureFile(tmp_path / "global_clip.npy").tensor(), g_clip)
    assert torch.equal(features.FeatureFile(tmp_path / "local.npy").tensor(), loc.half())
    with pytest.raises(ValueError, match="global_clip has 6 rows, expected 7 like global_emb"):
        features.write_feature_entry(tmp_path / "bad", g, global_clip=g_clip[:6])


def test_feature_file_reads_rows_like_the_array(tmp_path):
    arr = torch.randn(7, 3, 5).half()
    features.write_feature_entry(tmp_path, torch.randn(7, 5), arr, chunk=3)
    ff = features.FeatureFile(tmp_path / "local.npy")
    assert ff.shape == (7, 3, 5) and len(ff) == 7 and ff.dtype == torch.float16 and ff.ndim == 3
    assert torch.equal(ff[2:5], arr[2:5]) and torch.equal(ff[-1], arr[-1]) and torch.equal(ff[::3], arr[::3])
    assert torch.equal(ff[[0, 6]], arr[[0, 6]]) and torch.equal(ff.tensor(), arr)
    assert [s for s, _ in ff.chunks(3)] == [0, 3, 6]
    assert torch.equal(torch.cat([c for _, c in ff.chunks(3)]), arr)
    view = features.EveryNthRow(ff, 3)                   # rows 0, 3, 6, read a block at a time
    assert view.shape == (3, 3, 5) and len(view) == 3 and view.dtype == torch.float16 and view.ndim == 3
    assert torch.equal(view[0:3], arr[::3]) and torch.equal(view[1:2], arr[3:4]) and view[2:2].shape[0] == 0
    with pytest.raises(IndexError, match="contiguous slices"):
        view[0]


class _FlakyDataset:
    """Wraps a dataset; raises once when image ``fail_at`` is read (a simulated interruption)."""

    def __init__(self, ds, fail_at):
        self.ds, self.fail_at, self.failed = ds, fail_at, False
        for attr in ("name", "split", "labels", "image_ids", "info", "classnames", "label_set"):
            setattr(self, attr, getattr(ds, attr))

    def __len__(self):
        return len(self.ds)

    def image(self, i):
        if i == self.fail_at and not self.failed:
            self.failed = True
            raise KeyboardInterrupt("simulated interruption")
        return self.ds.image(i)


def test_interrupted_extraction_resumes_from_complete_shards(toy_random, tmp_path, monkeypatch):
    ds = datasets.load("emoji-voc", split="test", n=10)
    reference = features.extract_image_features(toy_random, ds, use_cache=False, shard_size=4, progress=False)
    flaky = _FlakyDataset(ds, fail_at=9)
    with pytest.raises(KeyboardInterrupt):
        features.extract_image_features(toy_random, flaky, cache=tmp_path, shard_size=4, batch_size=2,
                                        progress=False)
    key, _ = features.feature_cache_key(toy_random, ds, True, "no-pos")
    state = json.loads((tmp_path / "features" / key / "state.json").read_text())
    assert state["done"] == [0, 1] and not state["complete"]  # the two complete shards survived
    computed = []
    real = features.image_tower_outputs
    monkeypatch.setattr(features, "image_tower_outputs",
                        lambda m, x, *a, **k: computed.append(len(x)) or real(m, x, *a, **k))
    resumed = features.extract_image_features(toy_random, flaky, cache=tmp_path, shard_size=4, batch_size=2,
                                              progress=False)
    assert computed == [2]  # only the last shard's 2 images were computed again, in one DataLoader
    assert torch.allclose(resumed.global_, reference.global_, atol=1e-6)
    assert torch.allclose(resumed.global_clip, reference.global_clip, atol=1e-6)
    assert torch.allclose(resumed.local[:].float(), reference.local.float(), atol=1e-3)


@pytest.mark.parametrize("damage", ["zero-bytes", "truncated", "garbage-state"])
def test_damaged_cache_entry_is_rebuilt(toy_random, tmp_path, damage):
    ds = datasets.load("emoji-voc", split="test", n=6)
    first = features.extract_image_features(toy_random, ds, cache=tmp_path, shard_size=4, progress=False)
    folder = first.cache_path
    if damage == "zero-bytes":
        (folder / "local.npy").write_bytes(b"")
    elif damage == "truncated":
        data = (folder / "global.npy").read_bytes()
        (folder / "global.npy").write_bytes(data[: len(data) // 2])
    else:
        (folder / "state.json").write_text("{not json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        again = features.extract_image_features(toy_random, ds, cache=tmp_path, shard_size=4, progress=False)
    assert torch.allclose(again.global_, first.global_, atol=1e-6)
    assert torch.equal(again.local[:], features.FeatureFile(folder / "local.npy")[:])


@pytest.mark.slow
def test_datasets_pickle_and_workers_under_spawn(toy_random, tmp_path):
    import pickle

    ds = datasets.load("emoji-voc", split="test", n=6).subset([5, 0, 3, 1])
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(np.asarray(clone.image(0)), np.asarray(ds.image(0)))
    pre = features._Preprocessed(ds, toy_random.preprocess, [0, 1])
    pickle.dumps(pre)  # what a spawned DataLoader worker receives
    ctx = torch.multiprocessing.get_context("spawn")
    loader = torch.utils.data.DataLoader(pre, batch_size=2, num_workers=1, multiprocessing_context=ctx)
    (batch,) = list(loader)
    assert torch.equal(batch, torch.stack([pre[0], pre[1]]))
    with_workers = features.extract_image_features(toy_random, ds, use_cache=False, num_workers=2, progress=False)
    without = features.extract_image_features(toy_random, ds, use_cache=False, num_workers=0, progress=False)
    assert torch.equal(with_workers.global_, without.global_)


def test_bad_loader_arguments_are_refused(toy_random):
    ds = datasets.load("emoji-voc", split="test", n=2)
    for kw in ({"num_workers": -1}, {"batch_size": 0}, {"shard_size": 0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            features.extract_image_features(toy_random, ds, use_cache=False, progress=False, **kw)
