"""The CoMC authors' released checkpoint and memory: packaged copies, safe loading, SHA-256 checks, the official scores."""
import pickle
import shutil
import warnings
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core.errors import MissingFileError, WeightsError
from lcmc_core.method import official
from lcmc_core.method.mapping import score_images
from lcmc_core.method.official import (
    OFFICIAL_CLASSIFIER_SHA256,
    OFFICIAL_MEMORY_SHA256,
    UnreleasedFileWarning,
    file_sha256,
    load_official_classifier,
    load_official_memory,
    packaged_official_files,
    verify_official_file,
)

# Digests of the files in /work/shared/official-comc/ (sha256sum), copied by hand.
CLASSIFIER_SHA256 = "3c140ad03a9c45070ba7f3e9f85179a7fca740024764aa3344f93446982b3c2a"
MEMORY_SHA256 = "146955f8478f531b0243c34e57c6b6f655b9d08786ed78df5cc792cb16c7c350"


@pytest.fixture(scope="module")
def files():
    return packaged_official_files()


@pytest.fixture(scope="module")
def weight():
    return load_official_classifier()


@pytest.fixture(scope="module")
def memory():
    return load_official_memory()


def _raw_storage(path, member, dtype):
    """A tensor storage read straight from the torch zip archive's bytes (little endian), as (80, 1024) float64."""
    with zipfile.ZipFile(path) as z:
        data = z.read(member)
    return torch.from_numpy(np.frombuffer(data, dtype=dtype).astype(np.float64).reshape(80, 1024))


def _member_data_offset(path, member):
    """Byte offset of a zip member's (stored, uncompressed) data: after its local header, whose extra field torch pads."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    return info.header_offset + 30 + name_len + extra_len


def _one_line_error(excinfo, path):
    message = str(excinfo.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    return message


# --- the packaged files ---------------------------------------------------------------------

def test_packaged_files_are_the_released_ones(files):
    assert files.classifier.name == "model-best.pth.tar" and files.memory.name == "coco_templates.pt"
    assert OFFICIAL_CLASSIFIER_SHA256 == CLASSIFIER_SHA256 and OFFICIAL_MEMORY_SHA256 == MEMORY_SHA256
    assert file_sha256(files.classifier) == CLASSIFIER_SHA256
    assert file_sha256(files.memory) == MEMORY_SHA256
    assert files.classifier.stat().st_size == 985251 and files.memory.stat().st_size == 164608
    licence = files.licence.read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2024 lyc20" in licence
    readme = files.readme.read_text()
    assert "yic20/CoMC" in readme and CLASSIFIER_SHA256 in readme and MEMORY_SHA256 in readme


def test_classifier_is_the_stored_adapter_weight(files, weight):
    assert weight.dtype == torch.float32 and weight.shape == (80, 1024) and weight.is_contiguous()
    assert not weight.requires_grad and weight.device.type == "cpu"
    # storage '0' of the archive is state_dict['adapter.0.weight'] (the pickle's first persistent id)
    raw = _raw_storage(files.classifier, "archive/data/0", "<f4")
    assert torch.equal(weight.double(), raw)


def test_memory_is_the_stored_float16_tensor_with_unit_rows(files, memory):
    assert memory.dtype == torch.float32 and memory.shape == (80, 1024)
    raw = _raw_storage(files.memory, "coco_templates/data/0", "<f2")
    assert torch.equal(memory.double(), raw)  # float16 -> float32 is exact: nothing renormalised
    norms = memory.double().norm(dim=1)
    assert float((norms - 1).abs().max()) < 1e-3
    cos = memory.double() @ memory.double().T
    off_diagonal = cos[~torch.eye(80, dtype=torch.bool)]
    assert abs(float(off_diagonal.mean()) - 0.81) < 0.005  # the method notes' measured 0.81


def test_the_adapter_puts_73_of_the_80_memory_rows_in_their_own_class(weight, memory):
    predicted = (memory @ weight.T).argmax(dim=1)
    assert int((predicted == torch.arange(80)).sum()) == 73


def test_loading_runs_no_optimizer_code_and_leaves_no_allowed_globals(files, monkeypatch):
    before = list(torch.serialization.get_safe_globals())
    calls = []
    monkeypatch.setattr(torch.optim.Optimizer, "__setstate__", lambda self, state: calls.append(state))
    load_official_classifier(files.classifier)
    assert calls == []
    # compared as sets: torch keeps them in a set, so the list's order can change when it is restored
    assert set(torch.serialization.get_safe_globals()) == set(before)


def test_plain_weights_only_load_refuses_the_checkpoint_at_the_scheduler(files):
    # the reason given in official.py's docstring, measured on the file
    with pytest.raises(pickle.UnpicklingError, match=r"torch\.optim\.lr_scheduler\.CosineAnnealingLR"):
        torch.load(files.classifier, map_location="cpu", weights_only=True)


# --- scores equal the official inference ---------------------------------------------------

def _official_scores(weight, memory, global_emb, local_emb):
    """The official test-time formula, written out: map, classify, max-pool the 49 local logits, average."""
    w, t = weight.double(), memory.double()

    def fuse(f):
        attention = torch.softmax(100.0 * f @ t.T, dim=-1)
        mapped = attention @ t
        mapped = mapped / mapped.norm(dim=-1, keepdim=True)
        return 0.7 * f + 0.3 * mapped      # not renormalised

    global_logits = fuse(global_emb) @ w.T
    local_logits = (fuse(local_emb) @ w.T).max(dim=1).values
    return 0.5 * global_logits + 0.5 * local_logits


def test_score_images_equals_the_official_formula_on_rn50_shapes(weight, memory):
    gen = torch.Generator().manual_seed(0)
    n, positions, dim = 6, 49, 1024

    def synthetic(shape):
        # unit vectors near random memory rows, so that the attention over the memory is neither flat nor one-hot
        noise = torch.randn(*shape, dim, generator=gen, dtype=torch.float64) * 3 / dim ** 0.5
        rows = memory.double()[torch.randint(0, 80, shape, generator=gen)]
        return F.normalize(noise + rows, dim=-1)

    global_emb, local_emb = synthetic((n,)), synthetic((n, positions))
    expected = _official_scores(weight, memory, global_emb, local_emb)
    attention = torch.softmax(100.0 * global_emb @ memory.double().T, dim=-1).max(dim=1).values
    assert float(attention.min()) > 0.1 and float(attention.max()) < 0.99
    got = score_images(weight, global_emb.float(), local_emb.float(), memory=memory, temperature=0.01, alpha=0.7,
                       local_weight=0.5)["merged"]
    assert got.shape == (n, 80)
    assert torch.allclose(got.double(), expected, atol=1e-5, rtol=0)
    # and not by accident: without the local branch the scores differ
    alone = score_images(weight, global_emb.float(), None, memory=memory, temperature=0.01, alpha=0.7)["merged"]
    assert (alone.double() - expected).abs().max() > 1e-2


# --- bad files ---------------------------------------------------------------------------------

def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("loader", [load_official_classifier, load_official_memory])
def test_missing_empty_and_directory(tmp_path, loader):
    with pytest.raises(MissingFileError) as e:
        loader(tmp_path / "absent.pt")
    _one_line_error(e, tmp_path / "absent.pt")
    empty = _write(tmp_path / "empty.pt", b"")
    with pytest.raises(WeightsError, match="empty file") as e:
        loader(empty)
    _one_line_error(e, empty)
    with pytest.raises(WeightsError, match="not a file") as e:
        loader(tmp_path)
    _one_line_error(e, tmp_path)


@pytest.mark.parametrize("kind", ["classifier", "memory"])
def test_damaged_files(tmp_path, files, kind):
    loader = load_official_classifier if kind == "classifier" else load_official_memory
    path = files.classifier if kind == "classifier" else files.memory
    source = path.read_bytes()
    rng = np.random.default_rng(0)
    member = "archive/data.pkl" if kind == "classifier" else "coco_templates/data.pkl"
    pickle_at = _member_data_offset(path, member) + 20   # inside the pickle (1350 and 161 bytes long)
    cases = {
        "truncated": source[: len(source) // 2],
        "tail-cut": source[:-10],
        "random": rng.bytes(4096),
        "text": b"adapter.0.weight = [0.1, 0.2]\n",
        "pickle-overwritten": source[:pickle_at] + b"\x00" * 64 + source[pickle_at + 64:],
    }
    for name, data in cases.items():
        path = _write(tmp_path / f"{name}.pt", data)
        with pytest.warns(UnreleasedFileWarning), pytest.raises(WeightsError) as e:
            loader(path)
        message = _one_line_error(e, path)
        assert "expected the official CoMC" in message, (name, message)


def test_corrupted_weights_with_nan_are_refused(tmp_path, files):
    source = files.classifier.read_bytes()
    start = _member_data_offset(files.classifier, "archive/data/0") + 4096   # inside the adapter weight
    path = _write(tmp_path / "nan.pth.tar", source[:start] + b"\xff" * 400 + source[start + 400:])
    with pytest.warns(UnreleasedFileWarning), pytest.raises(WeightsError, match="NaN or infinite") as e:
        load_official_classifier(path)
    _one_line_error(e, path)


def _save(path, obj):
    torch.save(obj, path)
    return path


def test_foreign_torch_files_for_the_classifier(tmp_path, weight):
    cases = {
        "tensor": (torch.zeros(80, 1024), "holds Tensor, no 'state_dict'"),
        "other-top-keys": ({"model": {"adapter.0.weight": weight}}, r"holds \['model'\], no 'state_dict'"),
        "other-key": ({"state_dict": {"fc.weight": weight}}, r"'state_dict' holds \['fc.weight'\]"),
        "extra-bias": ({"state_dict": {"adapter.0.weight": weight, "adapter.0.bias": torch.zeros(80)}},
                       r"'state_dict' holds \['adapter.0.bias', 'adapter.0.weight'\]"),
        "other-shape": ({"state_dict": {"adapter.0.weight": torch.zeros(80, 512)}}, r"shape \(80, 512\)"),
        "transposed": ({"state_dict": {"adapter.0.weight": weight.T.contiguous()}}, r"shape \(1024, 80\)"),
        "integers": ({"state_dict": {"adapter.0.weight": torch.zeros(80, 1024, dtype=torch.int64)}}, "torch.int64"),
        "not-a-tensor": ({"state_dict": {"adapter.0.weight": [0.0] * 80}}, "is a list, not a tensor"),
        "memory-file": (torch.zeros(80, 1024, dtype=torch.float16), "holds Tensor"),
    }
    for name, (obj, match) in cases.items():
        path = _save(tmp_path / f"{name}.pth.tar", obj)
        with pytest.warns(UnreleasedFileWarning), pytest.raises(WeightsError, match=match) as e:
            load_official_classifier(path)
        _one_line_error(e, path)


def test_foreign_torch_files_for_the_memory(tmp_path, files, memory):
    cases = {
        "dict": ({"memory": memory}, "is a dict, not a tensor"),
        "other-shape": (memory[:20], r"shape \(20, 1024\)"),
        "integers": (torch.ones(80, 1024, dtype=torch.int32), "torch.int32"),
        "not-unit": (memory * 2, "not unit vectors"),
        "nan": (torch.full((80, 1024), float("nan")), "NaN or infinite"),
    }
    for name, (obj, match) in cases.items():
        path = _save(tmp_path / f"{name}.pt", obj)
        with pytest.warns(UnreleasedFileWarning), pytest.raises(WeightsError, match=match) as e:
            load_official_memory(path)
        _one_line_error(e, path)
    # the checkpoint is no memory: the memory loader allows no extra globals
    with pytest.warns(UnreleasedFileWarning), pytest.raises(WeightsError, match="CosineAnnealingLR") as e:
        load_official_memory(files.classifier)
    _one_line_error(e, files.classifier)


class _WritesAFile:
    """Unpickling this would create ``marker``: the code a malicious checkpoint would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("loader", [load_official_classifier, load_official_memory])
def test_pickles_that_would_run_code_are_refused_without_running_it(tmp_path, weight, loader):
    marker = tmp_path / "code-ran"
    payloads = {
        "torch-zip": lambda p: torch.save({"state_dict": {"adapter.0.weight": weight}, "hook": _WritesAFile(marker)}, p),
        "torch-zip-tensor-slot": lambda p: torch.save({"state_dict": {"adapter.0.weight": _WritesAFile(marker)}}, p),
        "plain-pickle": lambda p: p.write_bytes(pickle.dumps(_WritesAFile(marker), protocol=2)),
        "legacy-torch": lambda p: torch.save(_WritesAFile(marker), p, _use_new_zipfile_serialization=False),
    }
    for name, write in payloads.items():
        path = tmp_path / f"{name}.pt"
        write(path)
        with pytest.warns(UnreleasedFileWarning), pytest.raises(WeightsError) as e:
            loader(path)
        message = _one_line_error(e, path)
        assert not marker.exists(), f"{name}: the file's code ran"
        if name.startswith("torch-zip"):
            assert "Unsupported global" in message and "open" in message, message
        else:
            assert "not a torch zip archive" in message, message


def test_an_old_torch_is_refused_with_a_clear_message(files, monkeypatch):
    monkeypatch.setattr(official, "_torch_is_recent", lambda: False)
    with pytest.raises(WeightsError, match=r"needs torch >= 2\.6") as e:
        load_official_classifier(files.classifier)
    _one_line_error(e, files.classifier)


# --- the SHA-256 check -------------------------------------------------------------------------

def test_verify_accepts_the_released_files_anywhere(tmp_path, files):
    copy = tmp_path / "copy.pth.tar"
    shutil.copyfile(files.classifier, copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify_official_file(files.classifier, "classifier") is True
        assert verify_official_file(files.memory, "memory") is True
        assert verify_official_file(copy, "classifier") is True
        assert torch.equal(load_official_classifier(copy), load_official_classifier())
    with pytest.raises(ValueError, match="kind"):
        verify_official_file(copy, "weights")


def test_a_user_file_with_another_hash_is_loaded_and_reported(tmp_path, weight, memory):
    retrained = _save(tmp_path / "retrained.pth.tar", {"state_dict": {"adapter.0.weight": weight * 2}, "epoch": 5})
    with pytest.warns(UnreleasedFileWarning, match="not the released official CoMC classifier") as record:
        assert verify_official_file(retrained, "classifier") is False
    assert str(retrained) in str(record[0].message) and CLASSIFIER_SHA256 in str(record[0].message)
    with pytest.warns(UnreleasedFileWarning):
        assert torch.equal(load_official_classifier(retrained), weight * 2)
    own_memory = _save(tmp_path / "memory.pt", memory.half())
    with pytest.warns(UnreleasedFileWarning, match="memory"):
        assert torch.equal(load_official_memory(own_memory), memory)


def test_a_modified_packaged_copy_is_an_error(tmp_path, files, monkeypatch):
    folder = tmp_path / "official_comc"
    shutil.copytree(files.classifier.parent, folder)
    monkeypatch.setattr(official, "_packaged_folder", lambda: folder)
    assert packaged_official_files().classifier == folder / "model-best.pth.tar"
    assert torch.equal(load_official_classifier(), load_official_classifier(files.classifier))
    for name, loader, kind in (("model-best.pth.tar", load_official_classifier, "classifier"),
                               ("coco_templates.pt", load_official_memory, "memory")):
        target = folder / name
        data = bytearray(target.read_bytes())
        data[-100] ^= 0x01                     # one bit in the zip's directory: still readable, another hash
        target.write_bytes(bytes(data))
        with pytest.raises(WeightsError, match="packaged official CoMC file was modified") as e:
            loader()
        _one_line_error(e, target)
        with pytest.raises(WeightsError, match="packaged official CoMC file was modified") as e:
            verify_official_file(target, kind)
        _one_line_error(e, target)
    (folder / "LICENSE").unlink()
    with pytest.raises(MissingFileError, match="LICENSE"):
        packaged_official_files()
