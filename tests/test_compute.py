"""Training precision, its fallback, and the machine description (asgt_lib.core.compute)."""

import warnings

import pytest
import torch

from asgt_lib.core import compute, config as C
from asgt_lib.pipeline import experiment
from asgt_lib.core.models import build_model
from asgt_lib.core.train import train

CPU = torch.device("cpu")


def test_fp32_is_kept_and_unknown_precision_is_named():
    assert compute.effective_precision("fp32", CPU) == "fp32"
    with pytest.raises(ValueError, match="precision 'fp16' is unknown; allowed values: fp32, bf16"):
        compute.effective_precision("fp16", CPU)


def test_bf16_falls_back_to_fp32_with_a_clear_message_where_unsupported(monkeypatch):
    monkeypatch.setattr(compute, "cpu_bf16_support", lambda: "none")
    with pytest.warns(RuntimeWarning, match="no bfloat16 hardware support.*training in fp32 instead"):
        assert compute.effective_precision("bf16", CPU) == "fp32"


def test_a_fallen_back_run_is_keyed_by_the_precision_it_used(monkeypatch, tmp_path, data_dir):
    monkeypatch.setattr(compute, "cpu_bf16_support", lambda: "none")
    cfg = C.resolve({"dataset": "mnist", "method": "st"}, preset="smoke", overrides={"precision": "bf16"})
    with pytest.warns(RuntimeWarning, match="training in fp32"):
        result = experiment.run(cfg, data_dir, tmp_path, device="cpu", progress=False)
    fp32 = C.resolve({"dataset": "mnist", "method": "st"}, preset="smoke")
    assert result.config["precision"] == "fp32"
    assert result.run_dir == experiment.run_dir_for(fp32, "mnist", tmp_path)


@pytest.mark.skipif(compute.cpu_bf16_support() == "none", reason="this CPU has no bfloat16 hardware support")
def test_bf16_training_runs_in_bfloat16_and_learns(mnist_sample):
    """Under bf16 the convolutions compute in bfloat16 (so the weights differ from fp32 training), the
    parameters and their gradients stay float32, and the model still learns."""
    train_split, test = mnist_sample
    weights = {}
    for precision in ("fp32", "bf16"):
        cfg = C.resolve({"dataset": "mnist", "method": "asgt"}, preset="smoke",
                        overrides={"epochs": 3, "width": 0.125, "batch_size": 50, "precision": precision})
        torch.manual_seed(0)
        model = build_model("mnist", "alexnet", cfg.width)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback here
            train(model, train_split.x, train_split.y, cfg, progress=False)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        weights[precision] = torch.cat([p.detach().flatten() for p in model.parameters()])
        assert (model(test.x).argmax(1) == test.y).float().mean() > 0.3
    assert not torch.equal(weights["fp32"], weights["bf16"])


def test_the_machine_is_described_with_its_bf16_support():
    assert compute.cpu_bf16_support() in ("AMX", "AVX-512 BF16", "none")
    name = compute.device_name(CPU)
    assert name.startswith("cpu (") and f"bf16: {compute.cpu_bf16_support()}" in name
    assert compute.physical_cores() >= 1 and compute.set_threads(1) == 1
    compute.set_threads()


def test_cuda_asked_for_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available here; use --device cpu"):
        compute.resolve_device("cuda")
    assert compute.resolve_device("auto").type == "cpu"


def test_place_dataset_does_not_copy_on_the_cpu():
    x, y = torch.rand(10, 1, 28, 28), torch.arange(10)
    px, py = compute.place_dataset(x, y, CPU)
    assert px.data_ptr() == x.data_ptr() and py.data_ptr() == y.data_ptr()
