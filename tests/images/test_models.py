"""load_clip: toy configs registered with open_clip, local checkpoints, fast failure offline."""
import hashlib
import re
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


@pytest.mark.parametrize("reshaped", ["ln_final.weight", "logit_scale"])
@pytest.mark.parametrize("fmt", ["state_dict.pt", "training_checkpoint.pt", "model.safetensors"])
def test_a_file_that_does_not_fit_says_which_weights_through_public_readers(tmp_path, fmt, reshaped):
    torch.manual_seed(0)
    sd = dict(models.load_clip("lcmc-toy-rn", pretrained=None).model.state_dict())
    dropped = "text_projection"
    del sd[dropped]
    want = tuple(sd[reshaped].shape)
    sd[reshaped] = torch.ones(3)                              # another shape (open_clip fails elsewhere for logit_scale)
    path = tmp_path / fmt
    if fmt.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt.startswith("training"):
        torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    else:
        torch.save(sd, path)
    with pytest.raises(models.WeightsError, match=rf"checkpoint file .*{fmt} does not fit model 'lcmc-toy-rn'.*"
                                                  rf"1 missing \(e.g. {dropped}\).*1 of another shape \(e.g. "
                                                  rf"{re.escape(reshaped)} \(3,\) vs {re.escape(str(want))}\)"):
        models.load_clip("lcmc-toy-rn", pretrained=str(path))


def test_load_clip_is_split_by_job_and_uses_open_clip_public_api_only():
    import ast
    import inspect
    source = inspect.getsource(models)
    assert "open_clip.factory" not in source and "from open_clip." not in source
    lengths = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
    assert lengths["load_clip"] <= 40 and max(lengths.values()) <= 80, lengths
