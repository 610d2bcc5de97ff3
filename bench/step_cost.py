"""Cost of one training step of each method relative to standard training, on the same model and batch.

    python bench/step_cost.py [--dataset mnist|cifar10] [--width 0.25] [--batch 128] [--repeats 5]

Prints seconds per step and the ratio to ST. ASGT with an FGSM inner attack needs 3 forward passes of training
work plus 2 input-gradient passes; on a model that computes the same function in train and eval mode
(the MNIST AlexNet) the attack and the saliency reuse the loss's forward passes (``reuse_forward``), which the
``asgt (no reuse)`` row measures against. Target: ASGT-FGSM <= 4.0x ST on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from asgt_lib.methods import METHODS, MethodParams
from asgt_lib.models import INPUT_SHAPE, build_model, is_mode_invariant


def time_step(model, fn, x, y, params, repeats: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        loss, _ = fn(model, x, y, params, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "cifar10"], default="mnist")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    arch = "alexnet" if args.dataset == "mnist" else "resnet18"
    model = build_model(args.dataset, arch, args.width).train()
    x = torch.rand(args.batch, *INPUT_SHAPE[args.dataset])
    y = torch.randint(0, 10, (args.batch,))
    eps = 0.3 if args.dataset == "mnist" else 8 / 255
    print(f"{args.dataset} {arch} width {args.width}, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"mode-invariant model: {is_mode_invariant(model)}")
    rows = [(name, fn, MethodParams(eps=eps)) for name, fn in METHODS.items()]
    rows.append(("asgt (no reuse)", METHODS["asgt"], MethodParams(eps=eps, reuse_forward=False)))
    base = None
    print(f"{'method':<18}{'s/step':>10}{'x ST':>8}")
    for name, fn, params in rows:
        seconds = time_step(model, fn, x, y, params, args.repeats)
        base = base or seconds
        print(f"{name:<18}{seconds:>10.4f}{seconds / base:>8.2f}")


if __name__ == "__main__":
    main()
