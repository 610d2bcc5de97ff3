"""The SGD training loop shared by every method (eq. 2 / Alg. 1-2 line 13: θ ← θ - τ∇L).

Each epoch also records the *catastrophic-overfitting signal* of Wong et al. (2020, Sec. 5.2): FGSM and PGD
accuracy at ε_train on a fixed batch of training images. When FGSM training overfits to FGSM, FGSM accuracy
stays high while PGD accuracy collapses; the audit flags that gap (``params/audit.yaml``).
"""

from __future__ import annotations

import time

import torch
from torch import nn
from tqdm import tqdm

from . import compute
from .attacks import fgsm, pgd
from .config import RunConfig
from .methods import MethodParams, get_method
from .models import eval_mode, predict
from .saliency import SaliencyConvention


def method_params(cfg: RunConfig) -> MethodParams:
    return MethodParams(
        k=cfg.k, lam=cfg.lam, eps=cfg.eps_train, attack=cfg.train_attack, attack_steps=cfg.train_attack_steps,
        saliency=saliency_convention(cfg), fill=cfg.mask_fill,
    )


def saliency_convention(cfg: RunConfig) -> SaliencyConvention:
    """The run's saliency convention (``saliency_of``, ``saliency_space``, ``saliency_abs``, ``saliency_abs_stage``)."""
    return SaliencyConvention(of=cfg.saliency_of, space=cfg.saliency_space, absolute=cfg.saliency_abs,
                              abs_stage=cfg.saliency_abs_stage)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def overfitting_signal(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig) -> dict[str, float]:
    """Clean, FGSM and PGD (``cfg.monitor_pgd_steps`` steps) accuracy at ε_train on the monitor batch (float32,
    eval mode, a generator of its own so that training's random numbers are untouched)."""
    if len(y) == 0:
        return {}
    with eval_mode(model), torch.enable_grad():
        x_fgsm = fgsm(model, x, y, cfg.eps_train)
        x_pgd = pgd(model, x, y, cfg.eps_train, steps=cfg.monitor_pgd_steps,
                    generator=make_generator(cfg.seed + 2, x.device))
    acc = {name: (predict(model, xs, len(y)) == y.cpu()).float().mean().item()
           for name, xs in (("clean", x), ("fgsm", x_fgsm), ("pgd", x_pgd))}
    return {f"monitor_{name}_acc": value for name, value in acc.items()}


def monitor_batch(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed training images the overfitting signal is measured on (the same ones every epoch)."""
    idx = torch.randperm(len(y), generator=make_generator(seed + 3))[:n]
    return x[idx], y[idx]


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: RunConfig,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place on (x, y) with ``cfg.method``; returns one record per epoch.

    Shuffling and the random mask fill draw from generators seeded with ``cfg.seed``, so a run is
    reproducible bit for bit on the CPU. The training step runs under the autocast of ``cfg.precision``
    (:func:`asgt_lib.experiment.effective_config` has already replaced an unsupported bf16 by fp32), the
    backward pass and the optimizer in float32.
    """
    loss_fn, params = get_method(cfg.method), method_params(cfg)
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    shuffle = make_generator(cfg.seed)
    noise = make_generator(cfg.seed + 1, device)
    x_monitor, y_monitor = (t.to(device) for t in monitor_batch(x, y, cfg.monitor_n, cfg.seed))
    x, y = compute.place_dataset(x, y, device)
    history = []
    model.train()
    n_batches = (len(y) + cfg.batch_size - 1) // cfg.batch_size
    for epoch in range(cfg.epochs):
        start, sums = time.perf_counter(), {}
        order = torch.randperm(len(y), generator=shuffle).to(x.device)
        bar = tqdm(range(n_batches), desc=f"{cfg.label} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, unit="batch")
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            xb, yb = x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
            with compute.autocast(cfg.precision, device):
                loss, terms = loss_fn(model, xb, yb, params, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in {"loss": loss, **terms}.items():
                sums[key] = sums.get(key, 0.0) + value.detach().float() * len(yb)
            if progress:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        record = {"epoch": epoch + 1, **{k: float(v) / len(y) for k, v in sums.items()},
                  "seconds": time.perf_counter() - start}
        if not all(map(_finite, record.values())):
            raise FloatingPointError(f"{cfg.label}: loss is not finite in epoch {epoch + 1} ({record}); "
                                     f"lower lr or check the data")
        record.update(overfitting_signal(model, x_monitor, y_monitor, cfg))
        model.train()
        history.append(record)
    model.eval()
    return history


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")
