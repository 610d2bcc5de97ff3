"""Training precision, its fallback, and the machine description (asgt_lib.core.compute)."""

import dataclasses
import shutil
import warnings
from pathlib import Path

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


@pytest.fixture
def bf16_params(tmp_path):
    """A copy of params/ whose smoke preset asks for bf16 on MNIST, as quick and reference do."""
    import yaml

    params = tmp_path / "params"
    shutil.copytree(C.default_params_dir(), params)
    presets = yaml.safe_load((params / "presets.yaml").read_text())
    presets["smoke"]["mnist"]["precision"] = "bf16"
    (params / "presets.yaml").write_text(yaml.safe_dump(presets))
    return params


def _planned_dir(results, params, data_dir) -> Path:
    from asgt_lib.pipeline.batch import plan

    (job,) = plan("smoke", ["mnist"], ["st"], data_dir, results, params, device="cpu")
    return job.run_dir


def _finished_then_found_on_another_cpu(monkeypatch, cfg, results, data_dir, params, computed_on: str, read_on: str):
    """Finish ``cfg``'s run on a CPU whose bf16 support is ``computed_on`` (a fallback to fp32 warns), then, on one
    whose support is ``read_on``: the batch plans the run where it is, ``run`` reads it (no warning, nothing
    recomputed) and the staleness guard accepts it. Returns the finished run."""
    from asgt_lib.pipeline.batch import stale_runs

    monkeypatch.setattr(compute, "cpu_bf16_support", lambda: computed_on)
    with (pytest.warns(RuntimeWarning, match="training in fp32") if computed_on == "none"
          else warnings.catch_warnings()):
        finished = experiment.run(cfg, data_dir, results, device="cpu", progress=False)
    monkeypatch.setattr(compute, "cpu_bf16_support", lambda: read_on)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _planned_dir(results, params, data_dir) == finished.run_dir
        again = experiment.run(cfg, data_dir, results, device="cpu", progress=False)
    assert again.cached and again.run_dir == finished.run_dir
    assert stale_runs("smoke", data_dir, results, params) == []  # (the grid's unfinished runs may warn)
    return finished


def test_a_fallen_back_run_is_keyed_by_the_precision_it_used_and_the_batch_plans_it_there(
        monkeypatch, tmp_path, data_dir, bf16_params):
    monkeypatch.setattr(compute, "cpu_bf16_support", lambda: "none")
    cfg = C.resolve(bf16_params / "mnist" / "st.yaml", "smoke", params_dir=bf16_params)
    assert cfg.precision == "bf16"
    results = tmp_path / "results"
    with pytest.warns(RuntimeWarning, match="training in fp32"):
        result = experiment.run(cfg, data_dir, results, device="cpu", progress=False)
    fp32 = C.resolve({"dataset": "mnist", "method": "st"}, preset="smoke")
    assert result.config["precision"] == "fp32"
    assert result.run_dir == experiment.run_dir_for(fp32, "mnist", results)
    with warnings.catch_warnings():  # where the batch looks, and audits: there (finished, so nothing to warn of)
        warnings.simplefilter("error")
        assert _planned_dir(results, bf16_params, data_dir) == result.run_dir
    with pytest.warns(RuntimeWarning, match="training in fp32"):  # a seed not yet run is planned in fp32 too
        assert _planned_dir(tmp_path / "elsewhere", bf16_params, data_dir) == experiment.run_dir_for(
            fp32, "mnist", tmp_path / "elsewhere")


def test_a_finished_bf16_run_is_found_and_its_model_rebuilt_in_bf16_where_bf16_is_unsupported(
        monkeypatch, tmp_path, data_dir, bf16_params):
    """Results computed on a machine with bf16 hold on one without: the batch and ``run`` find them under their
    bf16 key (no warning, nothing recomputed), and a lost checkpoint is retrained in bf16, the run's recipe."""
    cfg = C.resolve(bf16_params / "mnist" / "st.yaml", "smoke", params_dir=bf16_params)
    results = tmp_path / "results"
    # autocast runs on any CPU, slowly
    finished = _finished_then_found_on_another_cpu(monkeypatch, cfg, results, data_dir, bf16_params, "AMX", "none")
    assert finished.config["precision"] == "bf16"

    checkpoint = experiment.checkpoint_dir_for(cfg, "mnist", results)
    weights = (checkpoint / "model.safetensors").read_bytes()
    shutil.rmtree(checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, loaded, _ = experiment.load_trained_model(finished.run_dir, data_dir, "cpu")
    assert loaded.precision == "bf16" and (checkpoint / "model.safetensors").read_bytes() == weights
    assert not experiment.checkpoint_dir_for(dataclasses.replace(cfg, precision="fp32"), "mnist", results).exists()


def test_a_finished_fallback_run_is_found_where_bf16_is_supported_and_not_trained_again(
        monkeypatch, tmp_path, data_dir, bf16_params):
    """A seed of a bf16 preset that a machine without bf16 finished in fp32 holds on a machine with bf16: the batch
    and ``run`` find the fp32 run (no warning, nothing recomputed), so the staleness guard does not call it stale
    and no second run of the seed is trained; a seed finished nowhere is still planned in bf16 there."""
    cfg = C.resolve(bf16_params / "mnist" / "st.yaml", "smoke", params_dir=bf16_params)
    results = tmp_path / "results"
    fallen_back = _finished_then_found_on_another_cpu(monkeypatch, cfg, results, data_dir, bf16_params, "none", "AMX")
    assert fallen_back.config["precision"] == "fp32"
    assert _planned_dir(tmp_path / "elsewhere", bf16_params, data_dir) == experiment.run_dir_for(
        cfg, "mnist", tmp_path / "elsewhere")


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


def test_channels_last_changes_the_order_of_sums_only():
    """The AlexNet the CPU runs channels-last gives the logits and input gradients of its contiguous twin, up to
    float32 rounding (compute.prepare_model)."""
    torch.manual_seed(0)
    model = build_model("mnist", "alexnet", width=0.125).eval()
    twin = build_model("mnist", "alexnet", width=0.125).eval()
    twin.load_state_dict(model.state_dict())
    twin = compute.prepare_model(twin, "alexnet", CPU)
    assert next(twin.parameters()).dim() == 4 and next(twin.parameters()).is_contiguous(
        memory_format=torch.channels_last)
    x = torch.rand(8, 1, 28, 28, requires_grad=True)
    x_twin = x.detach().clone().to(memory_format=torch.channels_last).requires_grad_(True)
    logits, logits_twin = model(x), twin(x_twin)
    torch.testing.assert_close(logits_twin, logits, rtol=1e-4, atol=1e-5)
    grad, = torch.autograd.grad(logits.logsumexp(1).sum(), x)
    grad_twin, = torch.autograd.grad(logits_twin.logsumexp(1).sum(), x_twin)
    torch.testing.assert_close(grad_twin, grad, rtol=1e-4, atol=1e-6)
