"""Every weight file a user may hold loads into the right architecture, with the activation its weights need.

Each format is built here from a randomly initialised model (RN50 and ViT-B-32, QuickGELU like
OpenAI's) and loaded back through :func:`lcmc_core.images.models.load_clip`; the loaded model must give
the same text and image embeddings as the model the file was made from.
"""
import copy
import warnings

import pytest
import torch
from open_clip.transformer import QuickGELU

from lcmc_core.errors import LcmcError
from lcmc_core.images import models

pytestmark = pytest.mark.slow
ARCHITECTURES = ["RN50", "ViT-B-32"]


def _activation(loaded) -> type:
    return type(loaded.model.transformer.resblocks[0].mlp.gelu)


def _openai_archive(clip: torch.nn.Module, path) -> None:
    """Write ``clip`` as OpenAI serves its checkpoints: a TorchScript archive of float16 weights with
    ``input_resolution``, ``context_length`` and ``vocab_size`` entries."""

    class Archive(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            keys = set(model.state_dict())
            for k, v in model.named_children():
                self.add_module(k, v)
            for k, v in model.named_parameters(recurse=False):
                self.register_parameter(k, v)
            for k, v in model.named_buffers(recurse=False):
                self.register_buffer(k, v, persistent=k in keys)
            self.register_buffer("input_resolution", torch.tensor(224))
            self.register_buffer("context_length", torch.tensor(77))
            self.register_buffer("vocab_size", torch.tensor(49408))
            self._model = [model]

        def forward(self, image, text):
            m = self._model[0]
            return m.encode_image(image), m.encode_text(text)

    model = copy.deepcopy(clip)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Archive(model), (torch.randn(1, 3, 224, 224), torch.zeros(1, 77, dtype=torch.long)),
                                 check_trace=False)
        torch.jit.save(traced.half(), str(path))


@pytest.fixture(scope="module", params=ARCHITECTURES)
def source(request):
    """A random QuickGELU model whose weights survive float16 (as OpenAI's files hold them)."""
    torch.manual_seed(0)
    loaded = models.load_clip(f"{request.param}-quickgelu", pretrained=None)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.copy_(p.half().float())
    return request.param, loaded


def _same_embeddings(a, b):
    torch.manual_seed(1)
    image = torch.randn(2, 3, 224, 224)
    text = a.tokenizer(["a photo of a dog.", "two cats on a sofa"])
    with torch.no_grad():
        assert torch.equal(a.model.encode_image(image), b.model.encode_image(image))
        assert torch.equal(a.model.encode_text(text), b.model.encode_text(text))


def test_openai_torchscript_archive_loads_as_quickgelu(source, tmp_path):
    arch, src = source
    path = tmp_path / f"{arch}.pt"
    _openai_archive(src.model, path)
    assert models.checkpoint_format(path) == "torchscript"
    with warnings.catch_warnings(), pytest.raises(Exception, match="TorchScript"):
        warnings.simplefilter("ignore")
        torch.load(path, weights_only=True)  # what open_clip's default file loading does with it
    for name in (arch, f"{arch}-quickgelu"):  # the plain name gets QuickGELU too: the file is OpenAI's
        loaded = models.load_clip(name, pretrained=str(path))
        assert loaded.quick_gelu and _activation(loaded) is QuickGELU and loaded.weights_format == "torchscript"
        _same_embeddings(src, loaded)
    with pytest.raises(models.WeightsError, match="QuickGELU"):
        models.load_clip(arch, pretrained=str(path), quick_gelu=False)


@pytest.mark.parametrize("fmt", ["open_clip_pytorch_model.bin", "open_clip_model.safetensors", "state_dict.pt",
                                 "training_checkpoint.pt"])
def test_state_dict_files_load_as_the_named_architecture(source, tmp_path, fmt):
    arch, src = source
    path = tmp_path / fmt
    sd = src.model.state_dict()
    if fmt.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt == "training_checkpoint.pt":  # open_clip's training script: wrapped, DDP prefix, optimiser state
        torch.save({"epoch": 3, "name": "run", "state_dict": {f"module.{k}": v for k, v in sd.items()},
                    "optimizer": {"state": {}, "param_groups": []}}, path)
    else:
        torch.save(sd, path)
    loaded = models.load_clip(f"{arch}-quickgelu", pretrained=str(path))
    assert loaded.quick_gelu and _activation(loaded) is QuickGELU
    assert loaded.weights_format == ("safetensors" if fmt.endswith(".safetensors") else "state-dict")
    _same_embeddings(src, loaded)
    plain = models.load_clip(arch, pretrained=str(path))  # a state dict is loaded as the architecture named
    assert not plain.quick_gelu and _activation(plain) is torch.nn.GELU


def test_a_file_of_another_architecture_is_refused_clearly(source, tmp_path):
    arch, src = source
    path = tmp_path / "weights.bin"
    torch.save(src.model.state_dict(), path)
    other = "ViT-B-32-quickgelu" if arch == "RN50" else "RN50-quickgelu"
    with pytest.raises(LcmcError, match="weights.bin"):
        models.load_clip(other, pretrained=str(path))


def _fake_hub_cache(root, repo: str, filename: str, state_dict) -> None:
    """The layout huggingface_hub leaves after downloading ``filename`` of ``repo`` (offline use)."""
    folder = root / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True)
    torch.save(state_dict, snap / filename)


def test_openai_tag_builds_quickgelu_even_under_the_plain_name(tmp_path, monkeypatch):
    torch.manual_seed(0)
    src = models.load_clip("RN50-quickgelu", pretrained=None)
    _fake_hub_cache(tmp_path, "timm/resnet50_clip.openai", "open_clip_pytorch_model.bin", src.model.state_dict())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("RN50", "RN50-quickgelu"):
        loaded = models.load_clip(name, pretrained="openai", hf_cache_dir=str(tmp_path))
        assert loaded.quick_gelu and _activation(loaded) is QuickGELU and loaded.weights_format == "tag"
        _same_embeddings(src, loaded)
    with pytest.raises(models.WeightsError, match="trained with QuickGELU"):
        models.load_clip("RN50", pretrained="openai", hf_cache_dir=str(tmp_path), quick_gelu=False)


def test_a_gelu_tag_on_a_quickgelu_name_is_an_error():
    # laion2b weights of ViT-B-32 were trained with plain GELU
    assert models.tag_uses_quick_gelu("ViT-B-32", "laion2b_s34b_b79k") is False
    with pytest.raises(models.WeightsError, match="GELU"):
        models.load_clip("ViT-B-32", pretrained="laion2b_s34b_b79k", quick_gelu=True)


def test_unknown_tag_is_refused_with_the_tags_known():
    with pytest.raises(LcmcError, match="openai"):
        models.load_clip("RN50", pretrained="not-a-tag")
