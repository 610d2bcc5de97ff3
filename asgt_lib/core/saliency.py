"""Saliency S(∇_X f(X)) and the input mask M_k (Alg. 1 lines 6-9, Alg. 2 lines 8-10, eq. 3).

Saliency is the gradient of the target class's score w.r.t. the input, computed with the model in eval mode,
averaged over channels so that one H×W pixel mask applies to every channel. Where the official SGT code
(``Scripts/interpretable.py``, ``Scripts/Helper.py``, captum ``Saliency`` with ``abs=False``) and this project
differ, each choice is a run parameter (:class:`SaliencyConvention`); the defaults are this project's:

=====================  ==========================  ======================================================
run parameter          default (this project)      the official SGT code
=====================  ==========================  ======================================================
``saliency_of``        ``logit``: ∂z_y/∂x          ``log_softmax``: its MNIST network returns log-softmax,
                                                   so captum differentiates log p_y
``saliency_space``     ``pixels``: ∂/∂x, x∈[0,1]   ``normalized``: on CIFAR-10 the gradient is taken w.r.t.
                                                   the normalised input (x−μ)/σ, i.e. ∂/∂x · σ per channel,
                                                   before the channel mean
``saliency_abs``       ``false`` (signed)          ``false`` (signed) unless run with ``--abs``
``saliency_abs_stage`` ``before_mean``: |·| per    ``after_mean``: its ``--abs`` takes |·| of the channel
                       channel, then the mean      mean
=====================  ==========================  ======================================================

For a one-channel input (MNIST) ``saliency_space`` and ``saliency_abs_stage`` change nothing: σ is one positive
constant and the mean is over one channel. Further conventions, shared with the official code:

* M_k replaces the ⌊k·H·W⌋ pixels with the *lowest* saliency (``topk(largest=False)``; with signed saliency
  that means the most negative gradients, not the ones nearest zero; ``absolute=True`` gives the latter);
* ``fill="uniform"``: each masked value is drawn uniformly between that sample's per-channel min and max
  ("random values within the feature range", Sec. 3); ``fill="mean"``: that sample's per-channel mean.

No Python loop over samples or features: indices come from one ``topk`` and values from one ``scatter``.
"""

from __future__ import annotations

import torch
from torch import nn

from dataclasses import dataclass

import torch.nn.functional as F

from .config import ABS_STAGES, SALIENCY_OF, SALIENCY_SPACES
from .config import MASK_FILLS as FILLS
from .models import Normalize, eval_mode


@dataclass(frozen=True)
class SaliencyConvention:
    """Which gradient the saliency map is (the table in the module docstring); defaults: this project's."""

    of: str = "logit"
    space: str = "pixels"
    absolute: bool = False
    abs_stage: str = "before_mean"

    def __post_init__(self) -> None:
        for name, value, allowed in (("saliency_of", self.of, SALIENCY_OF),
                                     ("saliency_space", self.space, SALIENCY_SPACES),
                                     ("saliency_abs_stage", self.abs_stage, ABS_STAGES)):
            if value not in allowed:
                raise ValueError(f"{name} '{value}' is unknown; allowed values: {', '.join(allowed)}")


def input_scale(model: nn.Module, convention: SaliencyConvention) -> torch.Tensor | None:
    """σ per channel (1, C, 1, 1) when the gradient is taken w.r.t. the normalised input, else None.

    x_n = (x − μ)/σ, so ∂f/∂x_n = ∂f/∂x · σ: the same backward pass, rescaled, and no second forward.
    """
    if convention.space == "pixels":
        return None
    norm = next((m for m in model.modules() if isinstance(m, Normalize)), None)
    if norm is None:
        raise ValueError("saliency_space 'normalized' needs a model whose first layer is "
                         "asgt_lib.core.models.Normalize")
    return norm.std


def saliency_from_logits(
    logits: torch.Tensor, x: torch.Tensor, target: torch.Tensor,
    convention: SaliencyConvention = SaliencyConvention(), retain_graph: bool = False,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Channel-averaged gradient of the target's score (``convention.of``) w.r.t. the ``x`` that ``logits`` were
    computed from, times ``scale`` (:func:`input_scale`) when given; shape (B, H, W).

    ``retain_graph=True`` keeps the forward graph so the same logits can still enter a training loss.
    """
    scores = F.log_softmax(logits, dim=1) if convention.of == "log_softmax" else logits
    picked = scores.gather(1, target.view(-1, 1)).sum()
    grad = torch.autograd.grad(picked, x, retain_graph=retain_graph)[0]
    if scale is not None:
        grad = grad * scale
    if convention.absolute and convention.abs_stage == "before_mean":
        grad = grad.abs()
    sal = grad.mean(dim=1)
    if convention.absolute and convention.abs_stage == "after_mean":
        sal = sal.abs()
    return sal.detach()


def saliency(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor | None,
    convention: SaliencyConvention = SaliencyConvention(),
) -> torch.Tensor:
    """Saliency map of ``model`` at ``x`` for class ``target`` (eval mode, no parameter gradients); (B, H, W).

    ``target=None`` takes the predicted class, argmax f(x), from the same forward pass.
    """
    with eval_mode(model), torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logits = model(x)
        target = logits.detach().argmax(1) if target is None else target
        return saliency_from_logits(logits, x, target, convention, scale=input_scale(model, convention))


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


def convention_variants(base: SaliencyConvention) -> dict[str, SaliencyConvention]:
    """``base`` with one official-code choice flipped at a time (the ablation page's rows). The |·| stage is
    compared on absolute maps, since it changes nothing for signed ones."""
    import dataclasses

    other = {"logit": "log_softmax", "log_softmax": "logit", "pixels": "normalized", "normalized": "pixels"}
    return {
        "saliency_of": dataclasses.replace(base, of=other[base.of]),
        "saliency_space": dataclasses.replace(base, space=other[base.space]),
        "saliency_abs_stage": dataclasses.replace(base, absolute=True,
                                                  abs_stage="after_mean" if base.abs_stage == "before_mean"
                                                  else "before_mean"),
    }


def mask_overlap(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: float, a: SaliencyConvention,
                 b: SaliencyConvention) -> float:
    """Mean Jaccard index, over the images, of the pixel sets M_k masks under conventions ``a`` and ``b`` (1: the
    same mask; k/(2−k) is what two random masks of that size share on average)."""
    ia, ib = (lowest_saliency_indices(saliency(model, x, y, c), k) for c in (a, b))
    n = ia.shape[1]
    hw = x.shape[-2] * x.shape[-1]
    in_a = torch.zeros(len(x), hw, dtype=torch.bool, device=ia.device).scatter_(1, ia, True)
    in_b = torch.zeros(len(x), hw, dtype=torch.bool, device=ib.device).scatter_(1, ib, True)
    inter = (in_a & in_b).sum(1).float()
    return float((inter / (2 * n - inter)).mean())
