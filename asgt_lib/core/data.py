"""MNIST and CIFAR-10 as float tensors in [0, 1] (N, C, H, W), read from a configurable data directory.

Attacks, ε and the saliency mask all live in this [0, 1] pixel space; normalisation is the model's first layer.

Sources, in order of preference:

* MNIST: ``torchvision.datasets.MNIST`` (``<data_dir>/MNIST/raw``).
* CIFAR-10: ``torchvision.datasets.CIFAR10`` (``<data_dir>/cifar-10-batches-py``) -> source ``cifar10``;
  otherwise the JPEG q75 copy (``<data_dir>/cifar10-jpeg/`` or ``<data_dir>/cifar10-jpeg.tar.gz``), decoded once
  into a tensor cache -> source ``cifar10-jpeg``. The JPEG copy is not pixel-identical to CIFAR-10, and every
  result records which source it came from.
* With ``download=True`` (``--download`` or ``ASGT_DOWNLOAD=1``), torchvision downloads what is missing.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import load_file, save_file

from .storage import atomic_path

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SOURCE_LABELS = {
    "mnist": "MNIST",
    "cifar10": "CIFAR-10",
    "cifar10-jpeg": "CIFAR-10 (JPEG q75 copy)",
}
JPEG_NAME = "cifar10-jpeg"


class DataNotFoundError(FileNotFoundError):
    """The dataset is in none of the places looked at; the message lists them and how to provide it."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset: images in [0, 1], integer labels, and where they came from."""

    x: torch.Tensor
    y: torch.Tensor
    source: str

    def __len__(self) -> int:
        return len(self.y)


def default_data_dir() -> Path:
    """``$ASGT_DATA_DIR``; else ``./data`` if it exists; else ``../shared/data`` if it exists; else ``./data``."""
    env = os.environ.get("ASGT_DATA_DIR")
    if env:
        return Path(env)
    for candidate in (Path("data"), Path("..") / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return Path("data")


def default_cache_dir() -> Path:
    """``$ASGT_CACHE_DIR``, else ``~/.cache/asgt``: decoded JPEG tensors live here."""
    return Path(os.environ.get("ASGT_CACHE_DIR") or Path.home() / ".cache" / "asgt")


def download_allowed() -> bool:
    return os.environ.get("ASGT_DOWNLOAD", "0").lower() in ("1", "true", "yes")


def data_source(dataset: str, data_dir: Path | None = None, download: bool | None = None) -> str:
    """Which source :func:`load_split` would read for ``dataset``, without decoding anything."""
    data_dir = Path(data_dir or default_data_dir())
    download = download_allowed() if download is None else download
    if dataset == "mnist":
        if (data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists() or download:
            return "mnist"
        raise _not_found(dataset, data_dir)
    if dataset == "cifar10":
        if (data_dir / "cifar-10-batches-py" / "test_batch").exists():
            return "cifar10"
        if (data_dir / JPEG_NAME).is_dir() or (data_dir / f"{JPEG_NAME}.tar.gz").is_file():
            return "cifar10-jpeg"
        if download:
            return "cifar10"
        raise _not_found(dataset, data_dir)
    raise ValueError(f"dataset '{dataset}' is unknown; allowed values: mnist, cifar10")


def _not_found(dataset: str, data_dir: Path) -> DataNotFoundError:
    looked = {
        "mnist": [data_dir / "MNIST" / "raw"],
        "cifar10": [data_dir / "cifar-10-batches-py", data_dir / JPEG_NAME, data_dir / f"{JPEG_NAME}.tar.gz"],
    }[dataset]
    places = ", ".join(str(p.resolve()) for p in looked)
    return DataNotFoundError(
        f"{dataset} data not found. Looked in: {places}. Fix: point --data-dir (or ASGT_DATA_DIR) at a folder "
        f"that holds it (on the project's machines: ../shared/data), or pass --download (ASGT_DOWNLOAD=1) "
        f"where a network exists so torchvision downloads it."
    )


def load_split(
    dataset: str,
    train: bool,
    data_dir: Path | None = None,
    n_per_class: int | None = None,
    subset_seed: int = 0,
    download: bool | None = None,
) -> Split:
    """Load a split as tensors in [0, 1]; ``n_per_class`` keeps a seeded random subset of n images per class."""
    data_dir = Path(data_dir or default_data_dir())
    download = download_allowed() if download is None else download
    source = data_source(dataset, data_dir, download)
    if source == "mnist":
        ds = _torchvision(torchvision.datasets.MNIST, dataset, data_dir, train, download)
        x, y = ds.data.unsqueeze(1), ds.targets.long()
    elif source == "cifar10":
        ds = _torchvision(torchvision.datasets.CIFAR10, dataset, data_dir, train, download)
        x, y = torch.from_numpy(ds.data).permute(0, 3, 1, 2), torch.tensor(ds.targets, dtype=torch.long)
    else:
        x, y = _cifar10_jpeg(data_dir, train)
    if n_per_class is not None:
        keep = per_class_subset(y, n_per_class, subset_seed)
        x, y = x[keep], y[keep]
    return Split(x.float().div_(255.0).contiguous(), y.contiguous(), source)


def per_class_subset(y: torch.Tensor, n_per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``n_per_class`` samples per class, drawn with ``seed``, in ascending order."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g)
    picks = [order[y[order] == c][:n_per_class] for c in torch.unique(y)]
    return torch.cat(picks).sort().values


def _torchvision(cls, dataset: str, data_dir: Path, train: bool, download: bool):
    try:
        return cls(root=str(data_dir), train=train, download=download)
    except (RuntimeError, OSError) as exc:  # not found, corrupt, or no network
        raise _not_found(dataset, data_dir) from exc


def augment(x: torch.Tensor, kind: str, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """A training batch under the run's ``augment``: ``none``, or ``crop-flip``, the standard CIFAR-10 augmentation
    (He et al. 2016, Sec. 4.2): zero-pad ``pad`` pixels, crop a random window of the original size, flip
    horizontally with probability 1/2. One draw per image from ``generator``, so a run stays reproducible."""
    if kind == "none":
        return x
    if kind != "crop-flip":
        raise ValueError(f"augment '{kind}' is unknown; allowed values: none, crop-flip")
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device).to(x.device)
    flip = torch.rand(n, generator=generator, device=generator.device).to(x.device) < 0.5
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)                     # (N, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)                     # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]       # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)


# --------------------------------------------------------------------------- CIFAR-10 JPEG copy
def _cifar10_jpeg(data_dir: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode the JPEG copy once into ``<cache>/cifar10-jpeg-<size>/{train,test}.safetensors`` and read that."""
    folder, archive = data_dir / JPEG_NAME, data_dir / f"{JPEG_NAME}.tar.gz"
    origin = folder if folder.is_dir() else archive
    stamp = archive.stat().st_size if origin == archive else sum(1 for _ in folder.rglob("*.jpg"))
    cache = default_cache_dir() / f"{JPEG_NAME}-{stamp}"
    split = "train" if train else "test"
    path = cache / f"{split}.safetensors"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        for name, (x, y) in _decode_jpeg_copy(origin).items():
            with atomic_path(cache / f"{name}.safetensors") as tmp:
                save_file({"x": x, "y": y}, str(tmp), metadata={"source": str(origin)})
    tensors = load_file(str(path))
    return tensors["x"], tensors["y"]


def _decode_jpeg_copy(origin: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read ``<split>/<class>/NNNN.jpg`` from a folder or a .tar.gz, in (class, index) order."""
    items: dict[str, list[tuple[int, str, bytes]]] = {"train": [], "test": []}

    def add(relative: str, payload: bytes) -> None:
        parts = relative.split("/")
        if len(parts) < 3 or not parts[-1].endswith(".jpg"):
            return
        split, cls, fname = parts[-3], parts[-2], parts[-1]
        if split in items and cls in CIFAR10_CLASSES:
            items[split].append((CIFAR10_CLASSES.index(cls), fname, payload))

    if origin.is_dir():
        for p in origin.rglob("*.jpg"):
            add(p.relative_to(origin).as_posix(), p.read_bytes())
    else:
        with tarfile.open(origin, "r:gz") as tar:
            for member in tar:
                if member.isfile():
                    add(member.name, tar.extractfile(member).read())
    out = {}
    for split, rows in items.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        images = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for _, _, b in rows])
        out[split] = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                      torch.tensor([r[0] for r in rows], dtype=torch.long))
    return out


__all__ = ["Split", "load_split", "augment", "data_source", "default_data_dir", "DataNotFoundError", "per_class_subset",
           "SOURCE_LABELS", "CIFAR10_CLASSES"]
