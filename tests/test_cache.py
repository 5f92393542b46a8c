"""lcmc's cache folder under faults: a folder that is a file, a full disk, a read-only (shared) cache.

Read-only is simulated two ways: the :func:`read_only` guard makes every call that would create,
change or delete something under a folder fail with EROFS, as a read-only mount does (the tests
run as root, which ignores permission bits, so chmod proves nothing); and for real, on a tmpfs
remounted read-only in a private mount namespace (``unshare -rm``), skipped where not allowed.
"""
import builtins
import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lcmc_core import cache
from lcmc_core.errors import CacheError, WriteError

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def read_only(folder: Path):
    """Inside the block, creating, writing, renaming or deleting anything under ``folder`` fails with EROFS."""
    folder = str(Path(folder).resolve())
    inside = lambda p: str(Path(os.fsdecode(p)).resolve()).startswith(folder)
    refuse = lambda p: OSError(errno.EROFS, "Read-only file system", os.fsdecode(p))
    real = {name: getattr(os, name) for name in ("open", "mkdir", "replace", "rename", "unlink", "remove",
                                                  "truncate", "rmdir")}
    real_open = builtins.open

    def os_open(p, flags, *args, **kwargs):
        if inside(p) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            raise refuse(p)
        return real["open"](p, flags, *args, **kwargs)

    def file_open(p, mode="r", *args, **kwargs):
        if isinstance(p, (str, bytes, os.PathLike)) and inside(p) and any(c in mode for c in "wax+"):
            raise refuse(p)
        return real_open(p, mode, *args, **kwargs)

    def guarded(name):
        def call(p, *args, **kwargs):
            if inside(p):
                if name == "mkdir" and os.path.isdir(p):
                    raise FileExistsError(errno.EEXIST, "File exists", os.fsdecode(p))  # what the kernel says first
                raise refuse(p)
            return real[name](p, *args, **kwargs)
        return call

    patches = {"open": os_open, **{n: guarded(n) for n in real if n != "open"}}
    for name, fn in patches.items():
        setattr(os, name, fn)
    builtins.open = file_open
    try:
        yield
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)
        builtins.open = real_open


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


# --- the folder ------------------------------------------------------------------------------

def test_a_cache_folder_that_is_a_file_is_one_line_naming_lcmc_cache_dir(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("LCMC_CACHE_DIR", str(tmp_path / "afile"))
    with pytest.raises(CacheError, match=r"lcmc's cache folder .*afile \(from LCMC_CACHE_DIR\) is a file, not a "
                                         r"folder") as info:
        cache.cache_dir()
    assert "\n" not in str(info.value)
    from lcmc_core.images import datasets
    with pytest.raises(CacheError, match="LCMC_CACHE_DIR"):
        datasets.load("emoji-voc", n=2)
    monkeypatch.setenv("LCMC_CACHE_DIR", str(tmp_path / "afile" / "below"))
    with pytest.raises(WriteError, match=r"cannot create lcmc's cache folder .*below \(from LCMC_CACHE_DIR\): a part "
                                         r"of the path is a file"):
        cache.cache_dir()
    with pytest.raises(WriteError, match=r"from the cache parameter"):
        cache.cache_dir(tmp_path / "afile" / "x")


def test_a_read_only_place_for_a_new_cache_folder_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("LCMC_CACHE_DIR", str(tmp_path / "ro" / "cache"))
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro"), pytest.raises(WriteError, match=r"cannot create lcmc's cache folder .* the file "
                                                                    r"system is read-only .*LCMC_CACHE_DIR"):
        cache.cache_dir()


# --- writes ----------------------------------------------------------------------------------

def test_atomic_files_are_readable_by_others_as_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        path = cache.atomic_write(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644   # not mkstemp's 0600: a shared cache must be readable


def test_a_file_name_that_is_not_utf8_is_written_back_as_its_bytes(tmp_path):
    name = os.fsdecode(b"caf\xe9.jpg")                     # how Python holds such a name: 'caf\udce9.jpg'
    path = cache.atomic_write(tmp_path / "skipped.tsv", f"image_id\treason\n{name}\tmissing\n")
    assert path.read_bytes() == b"image_id\treason\ncaf\xe9.jpg\tmissing\n"


def test_a_full_disk_during_an_atomic_write_says_so_and_leaves_the_old_file(tmp_path, monkeypatch):
    path = cache.atomic_write(tmp_path / "entry.bin", b"old")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    for write in (lambda: cache.atomic_write(path, b"new"), lambda: cache.save_torch_atomic({"w": torch.ones(3)}, path)):
        with pytest.raises(WriteError, match=r"cannot write .*entry.bin: the disk is full \(No space left on device\)"
                           ) as info:
            write()
        assert info.value.errno == errno.ENOSPC and "\n" not in str(info.value)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["entry.bin"]


def test_a_write_inside_the_cache_names_lcmc_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LCMC_CACHE_DIR", str(tmp_path))
    with read_only(tmp_path), pytest.raises(WriteError) as info:
        cache.atomic_write(tmp_path / "features" / "x.json", "{}")
    assert "read-only" in str(info.value) and "LCMC_CACHE_DIR" in str(info.value)
    with read_only(tmp_path), pytest.raises(WriteError, match=r"cannot write the lock file .*x\.pt\.lock: the file "
                                                              r"system is read-only"):
        with cache.entry_lock(tmp_path / "x.pt"):
            pass


# --- a complete cache shared read-only ---------------------------------------------------------

def _fill_and_read(cache_root: Path):
    """Every cached reader the notebooks use, on a tiny setup: (toy world, text features, image features, toy CLIP)."""
    from lcmc_core.images import datasets, features, toyclip
    from lcmc_core.images.models import load_clip

    torch.manual_seed(0)
    spec = toyclip.toy_clip_specs("smoke")[0]
    ckpt = toyclip.checkpoint_path(spec, cache_root)
    if not ckpt.exists():   # a complete toy CLIP entry in its real format (training it would take a minute)
        model = load_clip(spec.model, pretrained=None).model
        cache.save_torch_atomic({"state_dict": model.state_dict()}, ckpt)
        cache.atomic_write(ckpt.with_suffix(".json"), json.dumps({"key": spec.key(), "history": []}))
    loaded = toyclip.load_toy_clip(spec, cache_root, progress=False)
    world = datasets.load("emoji-voc", split="test", n=6, cache=cache_root)
    text = features.encode_texts_cached(loaded, ["a dog", "a cat"], cache=cache_root, progress=False)
    image = features.extract_image_features(loaded, world, cache=cache_root, progress=False, batch_size=3)
    return world.images if hasattr(world, "images") else np.stack([np.asarray(world.image(i)) for i in range(6)]), \
        text, image


def test_a_complete_cache_is_read_without_creating_anything_and_a_missing_entry_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("LCMC_CACHE_DIR", str(root))
    world, text, image = _fill_and_read(root)
    for lock in root.rglob("*.lock"):
        lock.unlink()   # a cache copied to a shared place holds no lock files
    before = _listing(root)
    with read_only(root):
        world2, text2, image2 = _fill_and_read(root)
        from lcmc_core.images import features, toyclip
        loaded = toyclip.load_toy_clip(toyclip.toy_clip_specs("smoke")[0], root, progress=False)
        with pytest.raises(WriteError) as info:
            features.encode_texts_cached(loaded, ["not cached yet"], cache=root, progress=False)
    assert _listing(root) == before                                  # nothing created, changed or deleted
    np.testing.assert_array_equal(world, world2)
    assert torch.equal(text, text2) and torch.equal(image.global_, image2.global_)
    message = str(info.value)
    assert "read-only" in message and "LCMC_CACHE_DIR" in message and "\n" not in message


def test_a_real_read_only_mount_serves_a_complete_cache(tmp_path):
    """The same on a real read-only tmpfs in a private mount namespace."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("unshare -rm (a private mount namespace) is not allowed here")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    code = ("import sys; sys.path.insert(0, 'tests'); from test_cache import _fill_and_read; from pathlib import Path; "
            "import torch; r = Path(sys.argv[1]); a = _fill_and_read(r); "
            "torch.save([a[1], a[2].global_], sys.argv[2])")
    script = ('mount -t tmpfs -o size=256m tmpfs "$1" || exit 97\n'
              '"$PY" -c "$CODE" "$1/cache" "$2/first.pt" || exit 1\n'
              'find "$1" -name "*.lock" -delete; mount -o remount,ro "$1"\n'
              '"$PY" -c "$CODE" "$1/cache" "$2/second.pt" 2> "$2/err" || exit 2\n'
              '"$PY" -c "from lcmc_core.images import datasets; datasets.load(\'emoji-voc\', n=3, seed=5)" '
              '2> "$2/err_new"; echo $? > "$2/rc_new"\n')
    env = dict(os.environ, PY=sys.executable, CODE=code, LCMC_CACHE_DIR=str(mnt / "cache"),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(["unshare", "-rm", "bash", "-c", script, "bash", str(mnt), str(tmp_path)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=600)
    if out.returncode == 97:
        pytest.skip("cannot mount a tmpfs in a private mount namespace here")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    first, second = torch.load(tmp_path / "first.pt"), torch.load(tmp_path / "second.pt")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert (tmp_path / "rc_new").read_text().strip() == "1"   # a new toy world cannot be written: one clear line
    last = (tmp_path / "err_new").read_text().strip().splitlines()[-1]
    assert "WriteError" in last and "read-only" in last and "LCMC_CACHE_DIR" in last
