"""Data sources (real MNIST, the CIFAR-10 JPEG copy format, subsets, missing data) and the two architectures."""

import io
import tarfile

import pytest
import torch
import torchvision
from PIL import Image

from asgt_lib.core import data
from asgt_lib.core.models import AlexNet28, CifarResNet18, Normalize, build_model, eval_mode, is_mode_invariant


def test_mnist_is_read_through_torchvision_in_unit_range(data_dir):
    test = data.load_split("mnist", False, data_dir)
    assert test.source == "mnist" and test.x.shape == (10000, 1, 28, 28) and test.x.dtype == torch.float32
    assert 0.0 == test.x.min() and test.x.max() == 1.0
    assert torch.bincount(test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    raw = torchvision.datasets.MNIST(str(data_dir), train=False)
    assert torch.equal(test.x[7, 0], raw.data[7].float() / 255)


def test_subsets_are_per_class_seeded_and_nested_in_the_split(data_dir):
    a = data.load_split("mnist", False, data_dir, n_per_class=7, subset_seed=1)
    b = data.load_split("mnist", False, data_dir, n_per_class=7, subset_seed=1)
    c = data.load_split("mnist", False, data_dir, n_per_class=7, subset_seed=2)
    assert torch.bincount(a.y).tolist() == [7] * 10
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)


def _fake_jpeg_archive(path, per_class=2):
    """A cifar10-jpeg.tar.gz in the shared layout, each image a flat colour that encodes (split, class, index)."""
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for c, cls in enumerate(data.CIFAR10_CLASSES):
                for i in range(per_class):
                    buf = io.BytesIO()
                    value = 12 * c + 5 * i + (120 if split == "test" else 0)
                    Image.new("RGB", (32, 32), (value, 255 - value, 128)).save(buf, "JPEG", quality=75)
                    info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))


def test_cifar10_jpeg_copy_is_decoded_in_class_order_and_cached(tmp_path):
    _fake_jpeg_archive(tmp_path / "cifar10-jpeg.tar.gz")
    assert data.data_source("cifar10", tmp_path) == "cifar10-jpeg"
    test = data.load_split("cifar10", False, tmp_path)
    assert test.source == "cifar10-jpeg" and test.x.shape == (20, 3, 32, 32)
    assert test.y.tolist() == [c for c in range(10) for _ in range(2)]
    red = (test.x[:, 0].mean((1, 2)) * 255).round()
    expected = torch.tensor([12 * c + 5 * i + 120 for c in range(10) for i in range(2)], dtype=torch.float32)
    assert (red - expected).abs().max() <= 3  # JPEG q75 of a flat colour
    (tmp_path / "cifar10-jpeg.tar.gz").rename(tmp_path / "moved.tar.gz")
    (tmp_path / "cifar10-jpeg.tar.gz").write_bytes((tmp_path / "moved.tar.gz").read_bytes())
    assert torch.equal(data.load_split("cifar10", True, tmp_path).y, torch.arange(10).repeat_interleave(2))


def test_real_cifar10_jpeg_copy_has_the_canonical_size(data_dir):
    test = data.load_split("cifar10", False, data_dir, n_per_class=3)
    assert test.source == "cifar10-jpeg" and data.SOURCE_LABELS[test.source] == "CIFAR-10 (JPEG q75 copy)"
    assert torch.bincount(test.y).tolist() == [3] * 10 and test.x.shape[1:] == (3, 32, 32)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_missing_data_says_where_it_looked_and_how_to_fix(tmp_path, dataset):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_split(dataset, False, tmp_path / "nowhere")
    message = str(err.value)
    assert "nowhere" in message and "--data-dir" in message and "ASGT_DATA_DIR" in message and "--download" in message


def test_models_take_unit_range_pixels_and_scale_with_width():
    alex, resnet = build_model("mnist", "alexnet"), build_model("cifar10", "resnet18")
    assert isinstance(alex[0], Normalize) and isinstance(resnet[0], Normalize)
    assert alex(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert resnet.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    n_params = sum(p.numel() for p in resnet.parameters())
    assert 11_000_000 < n_params < 11_300_000  # ResNet-18 with a 10-class head
    net = resnet[1]
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and isinstance(net.maxpool, torch.nn.Identity)
    assert isinstance(net, torchvision.models.ResNet)
    narrow = sum(p.numel() for p in build_model("cifar10", "resnet18", 0.25).parameters())
    assert narrow < n_params / 10
    convs = [m for m in alex.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in alex.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 5 and len(linears) == 3 and [c.out_channels for c in convs] == [64, 192, 384, 256, 256]


def test_normalisation_is_inside_the_model():
    model = build_model("mnist", "alexnet", 0.125)
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(model(x), model[1]((x - 0.1307) / 0.3081), atol=1e-6)


def test_mode_invariance_and_eval_mode_context():
    alex, resnet = AlexNet28(width=0.125), CifarResNet18(width=0.125)
    assert is_mode_invariant(alex) and not is_mode_invariant(resnet)
    resnet.train()
    with eval_mode(resnet):
        assert not resnet.training
    assert resnet.training


def test_crop_flip_augmentation_crops_and_flips_each_image_independently():
    from asgt_lib.core.data import augment

    x = torch.rand(64, 3, 8, 8) + 1.0  # no pixel is 0, so zero padding shows where a crop left the image
    g = torch.Generator().manual_seed(0)
    out = augment(x, "crop-flip", g, pad=2)
    assert out.shape == x.shape and torch.equal(augment(x, "none", g), x)
    found = {"shift": 0, "flip": 0}
    for i in range(len(x)):
        matches = []
        for flip in (False, True):
            src = torch.nn.functional.pad(x[i].flip(-1) if flip else x[i], (2, 2, 2, 2))
            for r in range(5):
                for c in range(5):
                    if torch.equal(src[:, r:r + 8, c:c + 8], out[i]):
                        matches.append((flip, r, c))
        assert matches, f"image {i} is not a padded crop of its source, flipped or not"
        flip, r, c = matches[0]
        found["flip"] += flip
        found["shift"] += (r, c) != (2, 2)
    assert 16 <= found["flip"] <= 48 and found["shift"] >= 48  # about half flipped; most shifted
    again = augment(x, "crop-flip", torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(again, out)  # one generator, one result
    with pytest.raises(ValueError, match="crop-flip"):
        augment(x, "rotate", g)
