"""White-box L∞ attacks on [0, 1] pixels: FGSM (eq. 6), PGD (eq. 7) and MI-FGSM (eq. 8-9), all batched.

Conventions (matching torchattacks 3.5.1, which the tests compare against):

* the loss is mean-reduced cross-entropy on the true labels, and every step *ascends* it
  (``x + α·sign(∇)``); the minus signs printed in the paper's eq. 6 and 9 would descend the loss, which
  contradicts Alg. 2 line 6 (δ* = argmax L), so we read them as typos;
* every iterate is clipped to the ε-ball around x first, then to [0, 1];
* the model is used in whatever mode the caller set (evaluation and training both call these in eval mode).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor]


def loss_input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇_x CE(f(x), y), mean-reduced; no parameter gradients are accumulated."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    return torch.autograd.grad(loss, x)[0]


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip to the L∞ ball of radius ``eps`` around ``x``, then to the pixel range [0, 1]."""
    return (x + (x_adv - x).clamp(-eps, eps)).clamp_(0.0, 1.0)


def fgsm_from_gradient(x: torch.Tensor, grad: torch.Tensor, eps: float) -> torch.Tensor:
    """One signed step of size ε from a given loss gradient (lets training reuse a gradient it already has)."""
    return (x + eps * grad.sign()).clamp_(0.0, 1.0).detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """FGSM (Goodfellow et al., eq. 6): x' = clip(x + ε·sign(∇_x L(x, y)))."""
    _check_eps(eps)
    if eps == 0:
        return x.detach().clone()
    return fgsm_from_gradient(x, loss_input_gradient(model, x, y), eps)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD (Madry et al., eq. 7): ``steps`` signed steps of size α, projected onto the ε-ball ∩ [0, 1].

    ``alpha`` defaults to 2.5·ε/steps (Madry et al.'s rule), so the iterate can reach the ball's boundary at
    every ε of a sweep. The random start is uniform in the ε-ball, drawn from ``generator`` (or the global RNG,
    as torchattacks does).
    """
    _check_eps(eps)
    if eps == 0:
        return x.detach().clone()
    alpha = 2.5 * eps / steps if alpha is None else alpha
    x = x.detach()
    x_adv = x.clone()
    if random_start:
        noise = torch.empty_like(x)
        noise = noise.uniform_(-eps, eps, generator=generator) if generator else noise.uniform_(-eps, eps)
        x_adv = (x_adv + noise).clamp_(0.0, 1.0)
    for _ in range(steps):
        grad = loss_input_gradient(model, x_adv, y)
        x_adv = project(x_adv + alpha * grad.sign(), x, eps)
    return x_adv.detach()


def mifgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    decay: float = 1.0,
) -> torch.Tensor:
    """MI-FGSM (Dong et al., eq. 8-9): g ← μ·g + ∇/‖∇‖₁, x' ← Π(x' + α·sign(g)); α defaults to ε/steps.

    The per-sample L1 normalisation equals torchattacks' mean-|∇| normalisation up to a constant factor,
    which the sign removes, so both give the same iterates.
    """
    _check_eps(eps)
    if eps == 0:
        return x.detach().clone()
    alpha = eps / steps if alpha is None else alpha
    x = x.detach()
    x_adv = x.clone()
    momentum = torch.zeros_like(x)
    for _ in range(steps):
        grad = loss_input_gradient(model, x_adv, y)
        l1 = grad.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        momentum = decay * momentum + grad / l1
        x_adv = project(x_adv + alpha * momentum.sign(), x, eps)
    return x_adv.detach()


def _check_eps(eps: float) -> None:
    if eps < 0:
        raise ValueError(f"ε={eps} is negative: an L∞ budget must be >= 0")


ATTACKS: dict[str, Callable[..., torch.Tensor]] = {"fgsm": fgsm, "pgd": pgd, "mifgsm": mifgsm}


def get_attack(name: str) -> Callable[..., torch.Tensor]:
    try:
        return ATTACKS[name]
    except KeyError:
        raise ValueError(f"attack '{name}' is unknown; allowed values: {', '.join(ATTACKS)}") from None
