"""Seed s of every method starts from the same initial weights and sees the same batches in the same order, so the
book's differences between methods (gains over ST, ASGT against AT-FGSM) are paired by seed (issue 20)."""

import torch

from asgt_lib.core import config as C, train as T
from asgt_lib.core.data import data_source
from asgt_lib.core.models import build_model
from asgt_lib.pipeline import experiment

METHODS = ("st", "sgt", "at-fgsm", "sga", "asgt", "fgsm-rs")


class _Stop(Exception):
    pass


def _initial_weights(name: str, seed: int, data_dir, tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """The weights that ``experiment.trained_model`` hands to training for a smoke run of ``name``."""
    captured = {}

    def spy(model, *args, **kwargs):
        captured.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        raise _Stop

    monkeypatch.setattr(experiment, "train", spy)
    cfg = C.resolve(f"params/mnist/{name}.yaml", "smoke", seed)
    try:
        experiment.trained_model(cfg, data_source("mnist", data_dir), data_dir, tmp_path / name, torch.device("cpu"),
                                 progress=False)
    except _Stop:
        pass
    return captured


def test_every_method_starts_seed_s_from_the_same_weights(data_dir, tmp_path, monkeypatch):
    weights = {name: _initial_weights(name, 3, data_dir, tmp_path, monkeypatch) for name in METHODS}
    reference = weights["st"]
    assert reference, "training was never reached"
    for name, w in weights.items():
        assert all(torch.equal(w[k], reference[k]) for k in reference), f"{name} starts from other weights than st"
    other_seed = _initial_weights("st", 4, data_dir, tmp_path, monkeypatch)
    assert not all(torch.equal(other_seed[k], reference[k]) for k in reference), "the seed does not reach the init"


def _batches(name: str, seed: int, monkeypatch) -> list[torch.Tensor]:
    """The labels of every training batch, in order, that ``train`` feeds a smoke run of ``name`` (2 epochs)."""
    seen = []
    real = T.get_method

    def recording(method):
        loss = real(method)

        def wrapped(model, xb, yb, params, noise):
            seen.append(yb.clone())
            return loss(model, xb, yb, params, noise)
        return wrapped

    cfg = C.resolve(f"params/mnist/{name}.yaml", "smoke", seed, {"epochs": 2, "batch_size": 16, "monitor_n": 8})
    g = torch.Generator().manual_seed(123)
    x, y = torch.rand(60, 1, 28, 28, generator=g), torch.arange(60) % 10
    with monkeypatch.context() as m:
        m.setattr(T, "get_method", recording)
        T.train(build_model("mnist", cfg.model, cfg.width), x, y, cfg, progress=False)
    return seen


def test_every_method_sees_seed_s_batches_in_the_same_order(monkeypatch):
    orders = {name: _batches(name, 1, monkeypatch) for name in ("st", "sgt", "at-fgsm", "asgt")}
    reference = orders["st"]
    assert len(reference) == 8  # 2 epochs of 4 batches (60 images, batch 16)
    for name, order in orders.items():
        assert len(order) == len(reference) and all(torch.equal(a, b) for a, b in zip(order, reference)), name
    assert not all(torch.equal(a, b) for a, b in zip(_batches("st", 2, monkeypatch), reference))
