"""load_clip: toy configs registered with open_clip, local checkpoints, fast failure offline."""
import hashlib
import shutil

import pytest
import torch

from lcmc_core.images import models


def test_toy_config_is_registered_and_builds_a_modified_resnet():
    loaded = models.load_clip("lcmc-toy-rn", pretrained=None)
    assert type(loaded.model.visual).__name__ == "ModifiedResNet"
    assert models.embed_dim(loaded.model) == 128
    assert models.has_local_branch(loaded.model)
    tokens = loaded.tokenizer(["a photo of a dog."])
    assert tokens.shape == (1, 32)  # the toy config's context length, not CLIP's 77


def test_unknown_model_name_is_refused_with_the_name():
    with pytest.raises(KeyError, match="not-a-model"):
        models.load_clip("not-a-model", pretrained=None)


def test_missing_checkpoint_file_is_named(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        models.load_clip("lcmc-toy-rn", pretrained=str(missing))


def test_offline_tag_fails_fast_with_instructions(monkeypatch):
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    calls = []

    def fake_create(*args, **kwargs):
        # what open_clip does when the hub cannot be reached: it raises after its own retries
        from huggingface_hub import constants
        calls.append(constants.HF_HUB_OFFLINE)
        raise RuntimeError("Failed to download weights for tag 'openai'")

    monkeypatch.setattr(models.open_clip, "create_model_and_transforms", fake_create)
    with pytest.raises(models.WeightsUnavailableError, match="pretrained='/path/to/checkpoint.pt'"):
        models.load_clip("RN50", pretrained="openai")
    assert calls == [True]  # the hub was asked in offline mode: no network retries


def test_real_offline_tag_raises_weights_unavailable_here(monkeypatch):
    # This machine cannot reach the hub; the real open_clip call must end in our error.
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home-for-test")
    with pytest.raises(models.WeightsUnavailableError, match="RN50"):
        models.load_clip("RN50", pretrained="openai")


def test_random_rn50_and_vit_build_offline():
    for name in ("RN50", "ViT-B-32"):
        loaded = models.load_clip(name, pretrained=None)
        assert models.has_local_branch(loaded.model)
        assert models.embed_dim(loaded.model) in (512, 1024)


def test_checkpoint_file_loads_through_open_clip(tmp_path):
    torch.manual_seed(0)
    a = models.load_clip("lcmc-toy-rn", pretrained=None)
    path = tmp_path / "toy.pt"
    torch.save({"state_dict": a.model.state_dict()}, path)
    b = models.load_clip("lcmc-toy-rn", pretrained=str(path))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a.model.encode_image(x), b.model.encode_image(x))
    # the id is the file's content: a moved or copied file keeps it (and every cache keyed on it),
    # other bytes change it
    assert b.weights_id == f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}|quick_gelu=False"
    moved = tmp_path / "elsewhere" / "toy.pt"
    moved.parent.mkdir()
    shutil.copy(path, moved)
    assert models.load_clip("lcmc-toy-rn", pretrained=str(moved)).weights_id == b.weights_id
    torch.save({"state_dict": models.load_clip("lcmc-toy-rn", pretrained=None).model.state_dict()}, moved)
    assert models.load_clip("lcmc-toy-rn", pretrained=str(moved)).weights_id != b.weights_id


def test_offline_hf_hub_id_raises_weights_unavailable(monkeypatch):
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home-for-test")
    with pytest.raises(models.WeightsUnavailableError, match="hf-hub:timm/vit_base_patch32_clip_224.openai"):
        models.load_clip("hf-hub:timm/vit_base_patch32_clip_224.openai", pretrained=None)
