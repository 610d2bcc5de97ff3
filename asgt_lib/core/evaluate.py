"""Robust accuracy against each attack over a grid of ε (Fig. 2-5), as a tidy table.

The default sweep is *incremental*: at each ε only the samples still classified correctly after every smaller
ε are attacked. An adversarial example found within a smaller ball also lies in every larger one, so a sample
fooled at ε stays fooled; the resulting accuracy is that of the union of the attacks at all ε' ≤ ε (non-increasing
in ε by construction, and never higher than attacking every sample afresh for the deterministic FGSM and MI-FGSM;
PGD draws its random start per batch, so there the bound holds up to chance). ``incremental=False``
attacks every sample at every ε; ``bench/sweep.py`` prints both side by side.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from .attacks import get_attack
from .config import RunConfig, check_attack_step
from .models import eval_mode, predict
from .saliency import saliency


#: The ``fixed`` attack-step convention: torchattacks 3.5.1's defaults for ``PGD`` and ``MIFGSM`` (α = 2/255,
#: 10 steps, PGD from a random start, MI-FGSM decay 1.0), whatever ε. The paper's probable code (niniack/continualTrain)
#: builds its attacks from ``eps`` alone and so keeps them. With α·steps = 20/255 ≈ 0.078, PGD ends within 0.078 of
#: its random start, and MI-FGSM (no random start) within 0.078 of x: its accuracy is the same at every ε ≥ 0.078.
FIXED_ALPHA = 2 / 255
FIXED_STEPS = 10
FIXED_DECAY = 1.0


def attack_steps(name: str, cfg: RunConfig, step: str = "scaled") -> int:
    """The gradient steps that the attack ``name`` of :func:`attack_fn` takes under the step convention ``step``
    (FGSM one under both): what an evaluation costs per image and ε."""
    if name == "fgsm":
        return 1
    if step == "fixed":
        return FIXED_STEPS
    return cfg.pgd_steps if name == "pgd" else cfg.mifgsm_steps


def attack_fn(name: str, cfg: RunConfig, seed: int = 0, step: str = "scaled") -> Callable[..., torch.Tensor]:
    """The attack ``name`` with the run's settings under the step convention ``step`` (``config.ATTACK_STEPS``):
    ``scaled`` sizes α to ε (PGD ``pgd_step_factor``·ε/``pgd_steps``, MI-FGSM ε/``mifgsm_steps``); ``fixed`` is
    torchattacks' default (:data:`FIXED_ALPHA`, :data:`FIXED_STEPS`). FGSM has no step and is the same under both.
    PGD's random start is seeded per call for reproducibility."""
    check_attack_step(step)
    attack = get_attack(name)
    fixed = step == "fixed"
    steps = attack_steps(name, cfg, step)
    if name == "pgd":

        def run_pgd(model, x, y, eps):
            alpha = FIXED_ALPHA if fixed else cfg.pgd_step_factor * eps / cfg.pgd_steps
            return attack(model, x, y, eps, steps=steps, alpha=alpha,
                          generator=torch.Generator(device=x.device).manual_seed(seed))
        return run_pgd
    if name == "mifgsm":
        if fixed:
            return functools.partial(attack, steps=steps, alpha=FIXED_ALPHA, decay=FIXED_DECAY)
        return functools.partial(attack, steps=steps, decay=cfg.mifgsm_decay)
    return attack


def robustness_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: dict[str, Callable[..., torch.Tensor]],
    eps_grid: Sequence[float],
    batch_size: int = 500,
    incremental: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Accuracy under each attack at each ε: columns attack, eps, accuracy (0-1), n, n_attacked, seconds."""
    device = next(model.parameters()).device
    eps_grid = sorted(float(e) for e in eps_grid)
    if any(e < 0 for e in eps_grid):
        raise ValueError(f"ε grid {eps_grid} has a negative budget; budgets must be >= 0")
    clean = predict(model, x, batch_size) == y
    rows = []
    with eval_mode(model):
        for name, attack in attacks.items():
            alive = clean.clone()
            for eps in tqdm(eps_grid, desc=name, disable=not progress, leave=False):
                start = time.perf_counter()
                targets = alive if incremental else torch.ones_like(alive)
                idx = targets.nonzero().flatten()
                if eps > 0:
                    for i in range(0, len(idx), batch_size):
                        b = idx[i:i + batch_size]
                        xb, yb = x[b].to(device), y[b].to(device)
                        with torch.enable_grad():
                            x_adv = attack(model, xb, yb, eps)
                        with torch.inference_mode():
                            ok = (model(x_adv).argmax(1) == yb).cpu()
                        if incremental:
                            alive[b] &= ok
                        else:
                            alive[b] = ok
                else:
                    alive = clean.clone() if not incremental else alive
                rows.append({"attack": name, "eps": eps, "accuracy": alive.float().mean().item(), "n": len(y),
                             "n_attacked": len(idx) if eps > 0 else 0, "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)


def saliency_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """Fig. 6 material: the first test image of each class (then the next ones) with its true-label saliency."""
    if n == 0:
        return {}
    rank = torch.empty_like(y)
    for c in torch.unique(y):  # rank of each sample within its class (a loop over classes, not samples)
        members = y == c
        rank[members] = torch.arange(int(members.sum()))
    idx = (rank * len(y) + torch.arange(len(y))).argsort()[:n].sort().values
    device = next(model.parameters()).device
    xs, ys = x[idx].to(device), y[idx].to(device)
    return {"index": idx, "x": x[idx], "y": y[idx], "pred": predict(model, x[idx]),
            "saliency": saliency(model, xs, ys).cpu()}
