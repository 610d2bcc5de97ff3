"""The SGD training loop shared by every method (eq. 2 / Alg. 1-2 line 13: θ ← θ - τ∇L)."""

from __future__ import annotations

import time

import torch
from torch import nn
from tqdm import tqdm

from .config import RunConfig
from .methods import MethodParams, get_method


def method_params(cfg: RunConfig) -> MethodParams:
    return MethodParams(
        k=cfg.k, lam=cfg.lam, eps=cfg.eps_train, attack=cfg.train_attack, attack_steps=cfg.train_attack_steps,
        absolute=cfg.saliency_abs, fill=cfg.mask_fill,
    )


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: RunConfig,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place on (x, y) with ``cfg.method``; returns one record per epoch.

    Shuffling and the random mask fill draw from generators seeded with ``cfg.seed``, so a run is
    reproducible bit for bit on the CPU.
    """
    loss_fn, params = get_method(cfg.method), method_params(cfg)
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    shuffle = make_generator(cfg.seed)
    noise = make_generator(cfg.seed + 1, device)
    history = []
    model.train()
    n_batches = (len(y) + cfg.batch_size - 1) // cfg.batch_size
    for epoch in range(cfg.epochs):
        start, sums = time.perf_counter(), {}
        order = torch.randperm(len(y), generator=shuffle)
        bar = tqdm(range(n_batches), desc=f"{cfg.label} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, unit="batch")
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            xb, yb = x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
            loss, terms = loss_fn(model, xb, yb, params, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in {"loss": loss, **terms}.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(yb)
            if progress:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        record = {"epoch": epoch + 1, **{k: v / len(y) for k, v in sums.items()},
                  "seconds": time.perf_counter() - start}
        if not all(map(_finite, record.values())):
            raise FloatingPointError(f"{cfg.label}: loss is not finite in epoch {epoch + 1} ({record}); "
                                     f"lower lr or check the data")
        history.append(record)
    model.eval()
    return history


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")
