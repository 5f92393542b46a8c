"""Toy CLIP pretraining: cached by spec, deterministic, resumable, reloaded exactly through open_clip."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from lcmc_core.images import toyclip, toyworld


def _tiny_spec(**kw):
    base = dict(n_pretrain=64, epochs=2, batch_size=32, variant="clip-like-gap")
    base.update(kw)
    return toyclip.ToyCLIPSpec(**base)


def _embed(loaded, images):
    x = toyclip.images_to_tensor(images)
    with torch.no_grad():
        return loaded.model.encode_image(x), loaded.model.encode_text(loaded.tokenizer(["two dogs on a farm"]))


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_weights_and_embeddings(tmp_path):
    spec = _tiny_spec()
    ckpt = toyclip.pretrain(spec, tmp_path, progress=False)
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    loaded = toyclip.load_toy_clip(spec, tmp_path, progress=False)  # through open_clip, as a real model
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    again = toyclip.load_toy_clip(spec, tmp_path, progress=False)
    images = toyworld.render_split("test", 4, seed=0, cache=tmp_path).images
    for a, b in zip(_embed(loaded, images), _embed(again, images)):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_training_is_deterministic_and_depends_on_the_seed(tmp_path):
    a = torch.load(toyclip.pretrain(_tiny_spec(), tmp_path / "a", progress=False), weights_only=True)["state_dict"]
    b = torch.load(toyclip.pretrain(_tiny_spec(), tmp_path / "b", progress=False), weights_only=True)["state_dict"]
    c = torch.load(toyclip.pretrain(_tiny_spec(seed=1), tmp_path / "c", progress=False), weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_cached_checkpoint_is_reused_and_a_changed_spec_is_rebuilt(tmp_path):
    spec = _tiny_spec()
    ckpt = toyclip.pretrain(spec, tmp_path, progress=False)
    mtime = ckpt.stat().st_mtime_ns
    assert toyclip.pretrain(spec, tmp_path, progress=False) == ckpt
    assert ckpt.stat().st_mtime_ns == mtime  # not retrained
    other = dataclasses.replace(spec, init_logit_scale=14.0)
    assert toyclip.checkpoint_path(other, tmp_path) != ckpt


def test_cache_key_covers_data_version_and_training_code(monkeypatch):
    spec = _tiny_spec()
    key = spec.key()
    monkeypatch.setattr(toyworld, "TOYWORLD_VERSION", toyworld.TOYWORLD_VERSION + "-changed")
    assert spec.key() != key
    monkeypatch.undo()
    monkeypatch.setattr(toyclip, "TRAINING_CODE_VERSION", "other")
    assert spec.key() != key


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    spec = _tiny_spec(epochs=3)
    reference = torch.load(toyclip.pretrain(spec, tmp_path / "ref", progress=False), weights_only=True)["state_dict"]

    real_captions = toyworld.split_captions

    def crash_in_epoch_2(scenes, seed, epoch=0, completeness=0.6):
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill")
        return real_captions(scenes, seed, epoch=epoch, completeness=completeness)

    monkeypatch.setattr(toyworld, "split_captions", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        toyclip.pretrain(spec, tmp_path / "run", progress=False)
    ckpt = toyclip.checkpoint_path(spec, tmp_path / "run")
    assert not ckpt.exists() and ckpt.with_suffix(".partial.pt").exists()
    monkeypatch.setattr(toyworld, "split_captions", real_captions)
    resumed = torch.load(toyclip.pretrain(spec, tmp_path / "run", progress=False), weights_only=True)["state_dict"]
    log = toyclip.training_log(spec, tmp_path / "run")
    assert log["resumed_from_epoch"] == 2
    assert len(log["history"]) == 3 * (spec.n_pretrain // spec.batch_size)
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    assert not ckpt.with_suffix(".partial.pt").exists()


@pytest.mark.slow
def test_damaged_checkpoints_are_detected_and_rebuilt(tmp_path):
    spec = _tiny_spec()
    ckpt = toyclip.pretrain(spec, tmp_path, progress=False)
    reference = torch.load(ckpt, weights_only=True)["state_dict"]
    good = ckpt.read_bytes()
    for damage in (b"", good[: len(good) // 3], b"garbage" * 100):   # zero bytes, truncated, not a checkpoint
        ckpt.write_bytes(damage)
        with pytest.warns(RuntimeWarning, match="damaged"):
            rebuilt = toyclip.pretrain(spec, tmp_path, progress=False)
        state = torch.load(rebuilt, weights_only=True)["state_dict"]
        assert all(torch.equal(reference[k], state[k]) for k in reference)
    ckpt.with_suffix(".json").write_text("{not json")           # a damaged training log
    with pytest.warns(RuntimeWarning, match="damaged or incomplete"):
        toyclip.pretrain(spec, tmp_path, progress=False)
    assert toyclip.training_log(spec, tmp_path)["key"] == spec.key()
    # A zero-byte partial state (killed while the disk was full) is ignored: training starts over.
    ckpt.unlink()
    ckpt.with_suffix(".partial.pt").write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="partial training state .* is damaged"):
        state = torch.load(toyclip.pretrain(spec, tmp_path, progress=False), weights_only=True)["state_dict"]
    assert all(torch.equal(reference[k], state[k]) for k in reference)
    assert toyclip.training_log(spec, tmp_path)["resumed_from_epoch"] == 0
    assert not list(tmp_path.rglob("*.tmp"))


def test_two_processes_asking_for_one_checkpoint_take_turns(tmp_path, monkeypatch):
    import threading
    spec = _tiny_spec()
    trained = []
    real = toyclip._train
    monkeypatch.setattr(toyclip, "_train", lambda *a, **k: trained.append(1) or real(*a, **k))
    threads = [threading.Thread(target=toyclip.pretrain, args=(spec, tmp_path), kwargs={"progress": False})
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert trained == [1]                      # the second found the first's checkpoint under the lock


@pytest.mark.slow
def test_logit_scale_init_and_freezing(tmp_path):
    spec = _tiny_spec(init_logit_scale=50.0, learn_logit_scale=False)
    loaded = toyclip.load_toy_clip(spec, tmp_path, progress=False)
    assert loaded.model.logit_scale.exp().item() == pytest.approx(50.0, rel=1e-5)
    log = toyclip.training_log(spec, tmp_path)
    assert all(h["logit_scale"] == pytest.approx(50.0, rel=1e-5) for h in log["history"])


def test_fast_tensor_path_equals_open_clip_preprocess(smoke_clip):
    images = toyworld.render_split("test", 3, seed=0).images
    from PIL import Image
    via_preprocess = torch.stack([smoke_clip.preprocess(Image.fromarray(im)) for im in images])
    assert torch.allclose(toyclip.images_to_tensor(images), via_preprocess, atol=1e-6)


@pytest.mark.parametrize("field,value", [("init_logit_scale", 0.0), ("caption_completeness", 1.5),
                                         ("epochs", 0), ("n_pretrain", 8), ("image_size", 16)])
def test_bad_spec_values_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        _tiny_spec(**{field: value})


def test_retrieval_recall_on_known_similarities():
    img = torch.eye(3)
    txt = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])  # pairs 1 and 2 swapped
    r = toyclip.retrieval_recall(img, txt, ks=(1, 2))
    assert r["i2t_recall@1"] == pytest.approx(100 / 3)
    assert r["t2i_recall@1"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="row-aligned"):
        toyclip.retrieval_recall(img, txt[:2])


def test_smoke_evaluation_reports_every_metric(smoke_clip, smoke_spec):
    m = toyclip.evaluate_toy_clip(smoke_clip, smoke_spec, n_heldout=64, n_test=64)
    for key in ("i2t_recall@1", "i2t_recall@5", "t2i_recall@1", "t2i_recall@5", "zero_shot_map",
                "modality_gap", "chance_map"):
        assert np.isfinite(m[key]), key
    assert 0 <= m["modality_gap"] <= 2
    json.dumps(m)


@pytest.mark.slow
def test_pretraining_learns_well_beyond_chance(tmp_path):
    """A short pretraining (2,048 scenes x 4 epochs, ~20 s) must give retrieval and zero-shot far above chance."""
    spec = dataclasses.replace(toyclip.toy_clip_specs("smoke", ["small-gap"])[0], n_pretrain=2048, epochs=4,
                               batch_size=128)
    loaded = toyclip.load_toy_clip(spec, cache=tmp_path, progress=False)
    m = toyclip.evaluate_toy_clip(loaded, spec, n_heldout=256, n_test=256, cache=tmp_path)
    assert m["zero_shot_map"] > m["chance_map"] + 15, m
    assert m["i2t_recall@5"] > 4 * m["chance_recall@5"] and m["t2i_recall@5"] > 4 * m["chance_recall@5"], m
