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

from .models import predict

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
    if _no_budget(eps):
        return x.detach().clone()
    return fgsm_from_gradient(x, loss_input_gradient(model, x, y), eps)


def fgsm_rs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """FGSM with a random start (Wong et al. 2020, "Fast is better than free", Alg. 3): δ ~ U(−ε, ε), one signed
    step of α = 1.25·ε, projected onto the ε-ball ∩ [0, 1]. Exactly :func:`pgd` with one step of that size."""
    if _no_budget(eps):
        return x.detach().clone()
    return pgd(model, x, y, eps, steps=1, alpha=1.25 * eps if alpha is None else alpha, generator=generator)


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
    if _no_budget(eps):
        return x.detach().clone()
    alpha = 2.5 * eps / steps if alpha is None else alpha
    x = x.detach()
    x_adv = random_start_point(x, eps, generator) if random_start else x.clone()
    for _ in range(steps):
        x_adv = signed_step(x_adv, loss_input_gradient(model, x_adv, y), x, eps, alpha)
    return x_adv.detach()


def random_start_point(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + U(−ε, ε) noise, clipped to [0, 1] (drawn from ``generator``, or the global RNG as torchattacks does)."""
    noise = torch.empty_like(x)
    noise = noise.uniform_(-eps, eps, generator=generator) if generator else noise.uniform_(-eps, eps)
    return (x + noise).clamp_(0.0, 1.0)


def signed_step(x_adv: torch.Tensor, direction: torch.Tensor, x: torch.Tensor, eps: float, alpha: float,
                ) -> torch.Tensor:
    """One ascent step of size α along sign(direction), projected onto the ε-ball around x ∩ [0, 1]."""
    return project(x_adv + alpha * direction.sign(), x, eps)


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin per example: max_{j≠y} z_j − z_y (> 0 exactly when the example is misclassified)."""
    true = logits.gather(1, y.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, y.view(-1, 1), float("-inf")).amax(1)
    return others - true


def pgd_search(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 100, restarts: int = 5,
    alpha: float | None = None, loss: str = "ce", seed: int = 0, alive: torch.Tensor | None = None,
    batch_size: int = 500,
) -> list[torch.Tensor]:
    """PGD as an *evaluation*: random restarts, success at any iterate. Robust flags (N,) after each restart.

    :func:`pgd` returns the last iterate, as the paper's evaluation scores it. Here a point counts as broken as
    soon as one iterate of one restart (the start included) is misclassified, restarts run only on the points
    still unbroken, and the loss may be ``ce`` (per-example cross-entropy) or ``cw`` (:func:`margin_loss`).
    ``alive``: the points to attack (default: the ones :func:`asgt_lib.core.models.predict` classifies
    correctly). Restart r draws its start from a generator seeded ``seed + r``; the steps are
    :func:`signed_step`, as in :func:`pgd`.
    """
    if loss not in ("ce", "cw"):
        raise ValueError(f"loss '{loss}' is unknown; allowed values: ce, cw")
    _no_budget(eps)
    device = next(model.parameters()).device
    alpha = 2.5 * eps / steps if alpha is None else alpha
    if alive is None:
        alive = predict(model, x, batch_size) == y
    robust = alive.clone()
    history = []
    for r in range(restarts):
        gen = torch.Generator(device=device).manual_seed(seed + r)
        idx = robust.nonzero().flatten()
        for i in range(0, len(idx), batch_size):
            b = idx[i:i + batch_size]
            x0, yb = x[b].to(device), y[b].to(device)
            xa = random_start_point(x0, eps, gen)
            active = torch.arange(len(b), device=device)  # positions in b still unbroken
            for step in range(steps + 1):
                with torch.enable_grad():
                    xg = xa.detach().requires_grad_(True)
                    logits = model(xg)
                    ok = logits.argmax(1) == yb[active]
                    if step == steps or not ok.any():
                        active = active[ok]
                        break
                    per = (F.cross_entropy(logits, yb[active], reduction="none") if loss == "ce"
                           else margin_loss(logits, yb[active]))
                    grad = torch.autograd.grad(per[ok].sum(), xg)[0]
                xa = signed_step(xa[ok], grad[ok], x0[active[ok]], eps, alpha)
                active = active[ok]
            survived = torch.zeros(len(b), dtype=torch.bool)
            survived[active.cpu()] = True
            robust[b] = survived
        history.append(robust.clone())
    return history


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
    if _no_budget(eps):
        return x.detach().clone()
    alpha = eps / steps if alpha is None else alpha
    x = x.detach()
    x_adv = x.clone()
    momentum = torch.zeros_like(x)
    for _ in range(steps):
        grad = loss_input_gradient(model, x_adv, y)
        l1 = grad.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        momentum = decay * momentum + grad / l1
        x_adv = signed_step(x_adv, momentum, x, eps, alpha)
    return x_adv.detach()


def _no_budget(eps: float) -> bool:
    """True for ε = 0 (the attack returns its input); a negative ε is refused."""
    if eps < 0:
        raise ValueError(f"ε={eps} is negative: an L∞ budget must be >= 0")
    return eps == 0


ATTACKS: dict[str, Callable[..., torch.Tensor]] = {"fgsm": fgsm, "pgd": pgd, "mifgsm": mifgsm}
#: The attacks a training objective may craft its examples with (``train_attack``).
TRAIN_ATTACKS: dict[str, Callable[..., torch.Tensor]] = {"fgsm": fgsm, "fgsm-rs": fgsm_rs, "pgd": pgd}


def get_attack(name: str) -> Callable[..., torch.Tensor]:
    try:
        return ATTACKS[name]
    except KeyError:
        raise ValueError(f"attack '{name}' is unknown; allowed values: {', '.join(ATTACKS)}") from None
