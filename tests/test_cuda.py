"""The GPU path: a smoke run trained on CUDA, its results read back on the CPU, and FGSM/PGD on the GPU against
torchattacks. Runs only where CUDA is available; elsewhere every test is skipped with the reason shown by
``pytest -rs`` (the README's test command)."""

import pytest
import torch
import torchattacks

from asgt_lib.core import config as C
from asgt_lib.pipeline import experiment
from asgt_lib.core.attacks import fgsm, pgd
from asgt_lib.core.models import build_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device on this machine: the GPU path is tested where one exists")


def test_smoke_run_on_cuda_loads_back_on_the_cpu(tmp_path, data_dir):
    cfg = C.resolve({"dataset": "cifar10", "method": "asgt"}, preset="smoke", overrides={"precision": "bf16"})
    result = experiment.run(cfg, data_dir, tmp_path, device="cuda", progress=False)
    assert not result.cached
    assert result.metrics["provenance"]["device"] == torch.cuda.get_device_name(0)
    model, loaded_cfg, _ = experiment.load_trained_model(result.run_dir, data_dir, device="cpu")
    assert next(model.parameters()).device.type == "cpu" and loaded_cfg.precision == "bf16"
    again = experiment.run(cfg, data_dir, tmp_path, device="cuda", progress=False)
    assert again.cached and again.run_dir == result.run_dir


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attacks_on_cuda_match_torchattacks(attack):
    torch.manual_seed(0)
    model = build_model("cifar10", "resnet18", width=0.125).cuda().eval()
    x = torch.rand(64, 3, 32, 32, device="cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    eps = 8 / 255
    if attack == "fgsm":
        ours, theirs = fgsm(model, x, y, eps), torchattacks.FGSM(model, eps=eps)(x, y)
    else:
        ours = pgd(model, x, y, eps, steps=5, random_start=False)
        theirs = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / 5, steps=5, random_start=False)(x, y)
    assert ours.device.type == "cuda"
    assert (ours - theirs).abs().max() < 1e-5
