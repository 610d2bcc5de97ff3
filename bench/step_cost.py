"""Roofline benchmark: what a training step and an evaluation sweep cost, against what this machine can do.

    python bench/step_cost.py [--datasets mnist cifar10] [--presets quick reference] [--precisions fp32 bf16]
                              [--methods st asgt ...] [--repeats 3] [--device cpu|cuda]

Prints, in one run:

1. the machine: CPU (or GPU) name, its bfloat16 support, threads, and its own peak measured here: a 4096²
   float32 and bfloat16 matrix product, in GFLOP/s;
2. per dataset, preset width and precision, each method's training step (the exact run file of the grid, resolved
   with the preset): seconds, images/s, GFLOP per step counted by ``torch.utils.flop_counter.FlopCounterMode``
   (forward, backward and the inner attacks and saliency), achieved GFLOP/s, its fraction of the peak of that
   precision, and the ratio to ST in the same run;
3. the evaluation sweep (float32, as every scored attack): images × ε × attack steps per second, and GFLOP/s.

Timings are medians over ``--repeats`` steps after one warm-up step; run it on an idle machine (two heavy
processes on 2 cores slow each other 5-8×).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode

from asgt_lib.core import compute
from asgt_lib.core import config as C
from asgt_lib.core.evaluate import attack_fn, robustness_curve
from asgt_lib.core.models import INPUT_SHAPE, build_model
from asgt_lib.pipeline.sitting import step_seconds

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class FlopCounter(FlopCounterMode):
    """``FlopCounterMode`` (its FLOP formulas and totals) with its per-module tracker left out: the tracker's
    backward hooks refuse ``torch.autograd.grad`` on a leaf input, which every attack and saliency map calls.
    Everything is counted under the module "Global"."""

    def __enter__(self):
        self.flop_counts.clear()
        self.mode = _FlopCounterMode(self)
        self.mode.__enter__()
        return self

    def __exit__(self, *args):
        result = self.mode.__exit__(*args)
        self.mode = None
        return result


#: Widths measured besides the presets': the candidates for the `reference` protocol (issue "Evidence the book
#: can stand on"), until params/presets.yaml defines that preset, when its own widths are used instead.
REFERENCE_WIDTHS = {"mnist": 0.5, "cifar10": 0.25}


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of an n×n matrix product (2·n³ FLOPs), best of ``repeats``."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for i in range(repeats + 1):
        compute.synchronize(device)
        start = time.perf_counter()
        (a @ b).sum().item()
        compute.synchronize(device)
        if i:
            best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def step_cost(cfg: C.RunConfig, precision: str, device: torch.device, repeats: int) -> tuple[float, float]:
    """(median seconds, GFLOP) of one training step of ``cfg`` at its batch size, in ``precision``."""
    counter = FlopCounter(display=False)
    seconds = step_seconds(dataclasses.replace(cfg, precision=precision), device, repeats, warmup=counter)
    return seconds, counter.get_total_flops() / 1e9


def sweep_cost(cfg: C.RunConfig, device: torch.device, n_images: int) -> dict[str, tuple[float, float, float]]:
    """Per attack: (gradient steps × images × ε per second, GFLOP/s, seconds) of a non-incremental sweep over
    3 budgets on ``n_images`` random images, float32."""
    torch.manual_seed(0)
    model = compute.prepare_model(build_model(cfg.dataset, cfg.model, cfg.width), cfg.model, device).eval()
    x = torch.rand(n_images, *INPUT_SHAPE[cfg.dataset])
    y = torch.randint(0, 10, (n_images,))
    eps_grid = [e for e in cfg.eval_eps if e > 0][:3]
    steps = {"fgsm": 1, "pgd": cfg.pgd_steps, "mifgsm": cfg.mifgsm_steps}
    out = {}
    for name in cfg.eval_attacks:
        attacks = {name: attack_fn(name, cfg)}
        counter = FlopCounter(display=False)
        with counter:
            robustness_curve(model, x[:8], y[:8], attacks, eps_grid[:1], cfg.eval_batch_size, incremental=False)
        flops_per_image_eps = counter.get_total_flops() / 8
        compute.synchronize(device)
        start = time.perf_counter()
        robustness_curve(model, x, y, attacks, eps_grid, cfg.eval_batch_size, incremental=False)
        compute.synchronize(device)
        seconds = time.perf_counter() - start
        work = n_images * len(eps_grid)
        out[name] = (work * steps[name] / seconds, flops_per_image_eps * work / seconds / 1e9, seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(C.DATASETS), choices=C.DATASETS)
    parser.add_argument("--presets", nargs="+", default=["quick", "reference"],
                        help="presets whose width and batch size are measured (missing ones are skipped)")
    parser.add_argument("--precisions", nargs="+", default=None, choices=C.PRECISIONS,
                        help="default: both where the device supports bf16, else fp32 (what its runs train in)")
    parser.add_argument("--methods", nargs="+", default=None, help="run-file names (default: the whole grid)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep-images", type=int, default=200)
    parser.add_argument("--device", default=None, help="auto | cpu | cuda (default: auto)")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="memory format (default: asgt_lib.core.compute.CHANNELS_LAST, the one runs use)")
    args = parser.parse_args()

    device = compute.resolve_device(args.device)
    if args.channels_last != "auto":
        for key in [k for k in compute.CHANNELS_LAST if k[1] == device.type]:
            compute.CHANNELS_LAST[key] = args.channels_last == "on"
    threads = compute.set_threads() if device.type == "cpu" else torch.get_num_threads()
    formats = {m: compute.uses_channels_last(m, device) for m in C.MODELS}
    print(f"# Roofline benchmark\n\n{compute.device_name(device)}; torch {torch.__version__}, {threads} threads; "
          f"channels-last: {formats}\n")
    if args.precisions is None:
        # emulated bfloat16 is no run's precision here (runs fall back to fp32) and is slow: a 4096² product in
        # bf16 ran for minutes on an AVX2-only AMD EPYC
        args.precisions = [p for p in C.PRECISIONS if compute.supported_precision(p, device) == p]
        if "bf16" not in args.precisions:
            print("bf16 is not measured: this device has no bfloat16 hardware support, so runs train in fp32 "
                  "(--precisions fp32 bf16 measures the emulation anyway)\n")
    peak = {p: matmul_peak(DTYPES[p], device) for p in args.precisions}
    print("| peak (4096² matrix product) | GFLOP/s |\n|---|--:|")
    for p, v in peak.items():
        print(f"| {p} | {v:,.0f} |")
    presets = C.load_yaml(C.default_params_dir() / "presets.yaml")
    for dataset in args.datasets:
        for preset in args.presets:
            files = [f for f in C.run_files(dataset) if args.methods is None or f.stem in args.methods]
            if preset in presets:
                configs = [C.resolve(f, preset) for f in files]
            elif preset == "reference":
                configs = [C.resolve(f, "quick", overrides={"width": REFERENCE_WIDTHS[dataset]}) for f in files]
            else:
                raise SystemExit(f"preset {preset!r} is not in params/presets.yaml")
            configs.sort(key=lambda c: (c.method != "st", c.label))
            base = configs[0]
            planned = "" if preset in presets else " (planned width, preset not defined yet)"
            print(f"\n## {dataset}, preset {preset}{planned}: {base.model} width {base.width:g}, "
                  f"batch {base.batch_size}\n")
            print("| method | precision | s/step | images/s | GFLOP/step | GFLOP/s | % of peak | × ST |")
            print("|---|---|--:|--:|--:|--:|--:|--:|")
            for precision in args.precisions:
                st_seconds = None
                for cfg in configs:
                    seconds, gflop = step_cost(cfg, precision, device, args.repeats)
                    st_seconds = st_seconds or (seconds if cfg.method == "st" else None)
                    ratio = f"{seconds / st_seconds:.2f}" if st_seconds else "–"
                    print(f"| {cfg.label} | {precision} | {seconds:.4f} | {cfg.batch_size / seconds:,.0f} | "
                          f"{gflop:.1f} | {gflop / seconds:,.0f} | {100 * gflop / seconds / peak[precision]:.1f} | "
                          f"{ratio} |", flush=True)
            print(f"\nEvaluation sweep (float32, non-incremental, {args.sweep_images} random images × 3 ε, "
                  f"eval batch {base.eval_batch_size}):\n")
            print("| attack | images × ε × steps / s | GFLOP/s | % of fp32 peak | seconds |\n|---|--:|--:|--:|--:|")
            for name, (rate, gflops, seconds) in sweep_cost(base, device, args.sweep_images).items():
                print(f"| {name} | {rate:,.0f} | {gflops:,.0f} | {100 * gflops / peak['fp32'] if 'fp32' in peak else float('nan'):.1f} "
                      f"| {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
