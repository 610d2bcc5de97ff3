"""Shared fixtures: the real data directory, a small MNIST sample, and a briefly trained small model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from asgt_lib.core.data import load_split
from asgt_lib.core.models import build_model

ROOT = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    env = os.environ.get("ASGT_DATA_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def pytest_configure(config):
    """Settings that subprocesses (batch workers, papermill kernels) inherit: real data, no downloads, and one
    shared cache of the decoded CIFAR-10 JPEG copy."""
    os.environ.setdefault("ASGT_DATA_DIR", str(_data_dir()))
    os.environ.setdefault("ASGT_CACHE_DIR", str(Path(tempfile.gettempdir()) / "asgt-test-cache"))
    os.environ["ASGT_DOWNLOAD"] = "0"


@pytest.fixture(scope="session")
def smoke_batch(tmp_path_factory, data_dir) -> Path:
    """The whole smoke grid, executed once through papermill (2 jobs, 1 thread each): results/ and notebooks/."""
    from asgt_lib.pipeline.batch import run_batch

    root = tmp_path_factory.mktemp("smoke-batch")
    code = run_batch(preset="smoke", jobs=2, data_dir=data_dir, results_dir=root / "results",
                     notebooks_dir=root / "notebooks", progress=False)
    assert code == 0, "the smoke batch failed"
    return root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not (path / "MNIST" / "raw").is_dir():
        pytest.fail(f"the test data directory {path} has no MNIST/raw: set ASGT_DATA_DIR")
    return path


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own results and cache folders and never downloads."""
    monkeypatch.setenv("ASGT_DATA_DIR", str(_data_dir()))
    monkeypatch.setenv("ASGT_DOWNLOAD", "0")
    monkeypatch.setenv("ASGT_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))


@pytest.fixture(scope="session")
def mnist_sample(data_dir):
    """100 test images (10 per class) and 500 training images (50 per class)."""
    train = load_split("mnist", True, data_dir, n_per_class=50, subset_seed=0)
    test = load_split("mnist", False, data_dir, n_per_class=10, subset_seed=0)
    return train, test


@pytest.fixture(scope="session")
def trained_alexnet(mnist_sample):
    """A narrow AlexNet28 trained for a few epochs: accurate enough that attacks have something to break."""
    train, _ = mnist_sample
    torch.manual_seed(0)
    model = build_model("mnist", "alexnet", width=0.125)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        order = torch.randperm(len(train.y), generator=g)
        for i in range(0, len(order), 50):
            b = order[i:i + 50]
            loss = torch.nn.functional.cross_entropy(model(train.x[b]), train.y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    _, test = mnist_sample
    accuracy = (model(test.x).argmax(1) == test.y).float().mean().item()
    assert accuracy > 0.8, f"fixture model reached only {accuracy:.2f}: attack tests would be vacuous"
    return model


@pytest.fixture
def tiny_batch(mnist_sample):
    _, test = mnist_sample
    return test.x[:16].clone(), test.y[:16].clone()
