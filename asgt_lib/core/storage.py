"""Files that are either complete and verified, or absent: atomic writes, checksummed manifests, safe checkpoints.

A run directory is finished only when its ``manifest.json`` exists and every file it lists has the recorded
SHA-256. Directories are built under a temporary name and renamed into place, so a run killed half-way leaves
nothing that looks finished. Checkpoints are safetensors (no pickle is ever loaded).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

MANIFEST = "manifest.json"


class CorruptFileError(RuntimeError):
    """A stored file does not match its recorded checksum, or cannot be parsed."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary directory; on success write its manifest and rename it to ``final``.

    An older ``final`` (corrupt or stale) is replaced. On error the staging directory is removed and
    ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(final)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".partial", dir=final.parent))
    try:
        yield stage
        write_manifest(stage)
        if final.exists():
            trash = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(stage, final)
        _fsync_dir(final.parent)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _remove_orphans(final: Path) -> None:
    """Delete staging directories of ``final`` left by processes that no longer exist (a killed run)."""
    for stale in final.parent.glob(f".{final.name}.*.partial"):
        pid = stale.name[len(final.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_manifest(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
               for p in files}
    write_json(folder / MANIFEST, {"files": entries})


def verify_dir(folder: Path) -> None:
    """Raise CorruptFileError unless ``folder``'s manifest exists and every listed file matches it."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    try:
        entries = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"{manifest}: missing or unreadable manifest ({exc})") from None
    for rel, meta in entries.items():
        path = folder / rel
        if not path.is_file():
            raise CorruptFileError(f"{path}: listed in the manifest but missing")
        if path.stat().st_size != meta["bytes"] or sha256_file(path) != meta["sha256"]:
            raise CorruptFileError(f"{path}: checksum differs from {manifest} (truncated or altered)")


def is_finished(folder: Path, warn: bool = True) -> bool:
    """True when ``folder`` is complete and verified. A corrupt folder warns and counts as not finished."""
    if not Path(folder).is_dir():
        return False
    try:
        verify_dir(folder)
        return True
    except CorruptFileError as exc:
        if warn:
            warnings.warn(f"{exc}; it will be recomputed", RuntimeWarning, stacklevel=2)
        return False


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(model: torch.nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """Model weights as safetensors, with string metadata (the resolved parameters travel beside it as JSON)."""
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def load_checkpoint(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load safetensors weights into ``model`` (strict). Anything else, a pickle included, is refused."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptFileError(
            f"{path}: not a readable safetensors checkpoint ({exc}). Checkpoints are never unpickled; "
            f"delete the file to retrain it."
        ) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CorruptFileError(f"{path}: weights do not fit the model ({exc})") from None
    return model
