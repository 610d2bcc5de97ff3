"""Saliency S(∇_X f(X)) and the input mask M_k (Alg. 1 lines 6-9, Alg. 2 lines 8-10, eq. 3).

Conventions of the official SGT code (``Scripts/interpretable.py``, ``Scripts/Helper.py``), followed here:

* saliency is the gradient of the *target-class logit* (true label by default) w.r.t. the input, computed with
  the model in eval mode (captum ``Saliency`` with ``abs=False``): **signed** unless ``absolute=True``;
* it is averaged over channels, so one H×W pixel mask applies to every channel;
* M_k replaces the ⌊k·H·W⌋ pixels with the *lowest* saliency (``topk(largest=False)``; with signed saliency
  that means the most negative gradients, not the ones nearest zero; ``absolute=True`` gives the latter);
* ``fill="uniform"``: each masked value is drawn uniformly between that sample's per-channel min and max
  ("random values within the feature range", Sec. 3); ``fill="mean"``: that sample's per-channel mean.

No Python loop over samples or features: indices come from one ``topk`` and values from one ``scatter``.
"""

from __future__ import annotations

import torch
from torch import nn

from .models import eval_mode

FILLS = ("uniform", "mean")


def saliency_from_logits(
    logits: torch.Tensor, x: torch.Tensor, target: torch.Tensor, absolute: bool = False, retain_graph: bool = False
) -> torch.Tensor:
    """Channel-averaged ∂ logit_target / ∂x for an ``x`` that ``logits`` were computed from; shape (B, H, W).

    ``retain_graph=True`` keeps the forward graph so the same logits can still enter a training loss.
    """
    picked = logits.gather(1, target.view(-1, 1)).sum()
    grad = torch.autograd.grad(picked, x, retain_graph=retain_graph)[0]
    grad = grad.abs() if absolute else grad
    return grad.mean(dim=1).detach()


def saliency(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor | None, absolute: bool = False
) -> torch.Tensor:
    """Saliency map of ``model`` at ``x`` for class ``target`` (eval mode, no parameter gradients); (B, H, W).

    ``target=None`` takes the predicted class, argmax f(x), from the same forward pass.
    """
    with eval_mode(model), torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logits = model(x)
        target = logits.detach().argmax(1) if target is None else target
        return saliency_from_logits(logits, x, target, absolute)


def num_masked(k: float, height: int, width: int) -> int:
    """⌊k·H·W⌋: the number of pixels M_k replaces (the official code's ``int(k·H·W)``)."""
    if not 0.0 < k < 1.0:
        raise ValueError(f"k={k} is outside (0, 1): k is the fraction of pixels to mask")
    return int(k * height * width)


def lowest_saliency_indices(sal: torch.Tensor, k: float) -> torch.Tensor:
    """Flat pixel indices (B, ⌊k·H·W⌋) of the lowest-saliency pixels (S(·) of eq. 3, bottom k), ascending.

    Sorting by position makes the random fill depend only on *which* pixels are masked, not on the order
    in which ``topk`` returns nearly tied saliencies.
    """
    _, h, w = sal.shape
    return sal.flatten(1).topk(num_masked(k, h, w), dim=1, largest=False).indices.sort(dim=1).values


def mask_pixels(
    x: torch.Tensor, indices: torch.Tensor, fill: str = "uniform", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace the pixels ``indices`` (B, n) of every channel of ``x`` (B, C, H, W) by fill values."""
    if fill not in FILLS:
        raise ValueError(f"mask fill '{fill}' is unknown; allowed values: {', '.join(FILLS)}")
    b, c = x.shape[:2]
    flat = x.detach().flatten(2).clone()
    n = indices.shape[1]
    if fill == "uniform":
        lo = flat.amin(dim=2, keepdim=True)
        hi = flat.amax(dim=2, keepdim=True)
        u = torch.rand((b, c, n), generator=generator, device=x.device, dtype=x.dtype)
        values = lo + u * (hi - lo)
    else:
        values = flat.mean(dim=2, keepdim=True).expand(b, c, n)
    flat.scatter_(2, indices.unsqueeze(1).expand(b, c, n), values)
    return flat.view_as(x)


def mask_lowest(
    x: torch.Tensor, sal: torch.Tensor, k: float, fill: str = "uniform", generator: torch.Generator | None = None
) -> torch.Tensor:
    """M_k(X, S(∇)) (eq. 3): ``x`` with its ⌊k·H·W⌋ lowest-saliency pixels replaced (detached, no gradient)."""
    return mask_pixels(x, lowest_saliency_indices(sal, k), fill, generator)
