"""Training objectives: one loss function of (model, x, y) per method.

=============  ======================================================================================
``st``         CE(f(X), y)                                                                  (eq. 1)
``sgt``        CE(f(X), y) + λ·KL[f(X̃) ‖ f(X)],  X̃ = M_k(X) by true-label saliency        (Alg. 1)
``at-fgsm``    CE(f(X), y) + CE(f(X'), y),  X' = FGSM(X)
``asgt``       CE(f(X), y) + CE(f(X'), y) + λ·KL[f(X̃') ‖ f(X)],  X̃' = M_k(X') by
               true-label saliency at X'                                           (Alg. 2, eq. 5)
``asgt-code``  as ``asgt`` but saliency target argmax f(X') and KL[f(X̃') ‖ f(X')]: the probable
               authors' code (niniack/continualTrain ``adversarial_saliency_plugin.py`` @ 0b381b6)
``sga``        CE(f(X), y) + λ·KL[f(Attack(M_k(X))) ‖ f(X)]: mask first, then attack; no adversarial CE
               (Li et al. 2022, as ``adversarial_medical_plugin.py`` of the same repository implements it)
``fgsm-rs``    CE(f(X'), y),  X' = FGSM with a uniform random start and step 1.25·ε (Wong et al. 2020, Alg. 3;
               adversarial loss only, as published)
``pgd-at``     CE(f(X'), y),  X' = PGD with ``train_attack_steps`` steps (Madry et al. 2018, eq. 2.1; adversarial
               loss only, as published)
``asgt-rs``    ``asgt`` whose inner attack is FGSM-RS instead of FGSM: the one change that separates the
               saliency term from the random start (with ``lam: 0`` it is AT with FGSM-RS and a clean CE term)
=============  ======================================================================================

Every objective takes its training attack from ``MethodParams.attack`` (``train_attack``: ``fgsm``, ``fgsm-rs``,
``pgd``); :data:`asgt_lib.core.config.METHOD_ATTACKS` fixes it for the methods defined by their attack.

KL[f(A) ‖ f(B)] is written in the paper's notation and computed as the SGT code does,
``KLDivLoss(reduction='batchmean')(log_softmax f(A), softmax f(B))``, which in maths notation is
KL(p(B) ‖ p(A)); gradients flow through both arguments. AT-FGSM keeps the clean CE term because the framework
of the authors' code adds the clean loss before any plugin's, which also makes AT-FGSM exactly ASGT with λ = 0.

Adversarial examples and saliency are computed with the model in eval mode (torchattacks' and the SGT code's
convention); the loss forwards run in the caller's (train) mode. When the model computes the same function in
both modes (:func:`models.is_mode_invariant`, e.g. the MNIST AlexNet) and ``reuse_forward`` is on, the forward
pass that produced a loss term also provides the attack's or the saliency's input gradient, so ASGT with FGSM
costs 3 forward passes instead of 5. The result is identical (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .attacks import TRAIN_ATTACKS, fgsm_from_gradient
from .models import eval_mode, is_mode_invariant
from .saliency import FILLS, SaliencyConvention, input_scale, mask_lowest, saliency, saliency_from_logits

Terms = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MethodParams:
    """Parameters of the saliency and adversarial terms; validated on construction, before any training."""

    k: float = 0.3
    lam: float = 1.0
    eps: float = 0.3
    attack: str = "fgsm"
    attack_steps: int = 10
    saliency: SaliencyConvention = SaliencyConvention()
    fill: str = "uniform"
    reuse_forward: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.k < 1.0:
            raise ValueError(f"k={self.k} is outside (0, 1): k is the fraction of input features masked")
        if self.lam < 0:
            raise ValueError(f"λ={self.lam} is negative: the KL weight must be >= 0")
        if self.eps < 0:
            raise ValueError(f"ε={self.eps} is negative: the training budget must be >= 0")
        if self.attack not in TRAIN_ATTACKS:
            raise ValueError(f"training attack '{self.attack}' is unknown; allowed values: {', '.join(TRAIN_ATTACKS)}")
        if self.fill not in FILLS:
            raise ValueError(f"mask fill '{self.fill}' is unknown; allowed values: {', '.join(FILLS)}")


def kl_term(logits_masked: torch.Tensor, logits_reference: torch.Tensor) -> torch.Tensor:
    """λ's term, D_KL[f(masked) ‖ f(reference)] in the paper's notation = KL(p_ref ‖ p_masked), batch mean."""
    return F.kl_div(F.log_softmax(logits_masked, dim=1), F.softmax(logits_reference, dim=1), reduction="batchmean")


def _shares_forward(model: nn.Module, p: MethodParams) -> bool:
    return p.reuse_forward and is_mode_invariant(model)


def _attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, p: MethodParams, g: torch.Generator | None):
    """X' = X + δ* (Alg. 2 line 6-7), crafted in eval mode with the attack ``p.attack``."""
    with eval_mode(model), torch.enable_grad():
        if p.attack == "fgsm":
            return TRAIN_ATTACKS["fgsm"](model, x, y, p.eps)
        if p.attack == "fgsm-rs":
            return TRAIN_ATTACKS["fgsm-rs"](model, x, y, p.eps, generator=g)
        return TRAIN_ATTACKS["pgd"](model, x, y, p.eps, steps=p.attack_steps, generator=g)


def _adversarial(model, x, y, p: MethodParams, g) -> tuple[torch.Tensor, torch.Tensor | None]:
    """X' (Alg. 2 lines 6-7), and f(X) with its graph when the FGSM gradient could reuse that forward pass."""
    if p.attack == "fgsm" and _shares_forward(model, p):
        x_leaf = x.detach().requires_grad_(True)
        logits = model(x_leaf)
        grad = torch.autograd.grad(F.cross_entropy(logits, y), x_leaf, retain_graph=True)[0]
        return fgsm_from_gradient(x, grad, p.eps), logits
    return _attack(model, x, y, p, g), None


def _saliency(model, x, p: MethodParams, target: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Saliency at x for ``target`` (None: argmax f(x) of the same forward), and f(x) when it could be reused."""
    if _shares_forward(model, p):
        x_leaf = x.detach().requires_grad_(True)
        logits = model(x_leaf)
        t = logits.detach().argmax(1) if target is None else target
        return saliency_from_logits(logits, x_leaf, t, p.saliency, retain_graph=True,
                                    scale=input_scale(model, p.saliency)), logits
    return saliency(model, x, target, p.saliency), None


def _forward(model, x: torch.Tensor, reused: torch.Tensor | None) -> torch.Tensor:
    return reused if reused is not None else model(x)


# --------------------------------------------------------------------------- the objectives
# Each objective first crafts its inputs (attack, saliency, mask: eval mode, so against the batch-norm running
# statistics as they were at the start of the step), then runs the train-mode forwards of its loss terms.
def st_loss(model, x, y, p: MethodParams, g=None) -> tuple[torch.Tensor, Terms]:
    """Standard training, eq. 1."""
    ce = F.cross_entropy(model(x), y)
    return ce, {"ce": ce}


def sgt_loss(model, x, y, p: MethodParams, g=None) -> tuple[torch.Tensor, Terms]:
    """SGT, Alg. 1: X̃ = M_k(X, S(∇_X f_y(X))), L = CE(f(X), y) + λ·KL[f(X̃) ‖ f(X)]."""
    sal, logits = _saliency(model, x, p, target=y)
    x_masked = mask_lowest(x, sal, p.k, p.fill, g)
    logits = _forward(model, x, logits)
    ce, kl = F.cross_entropy(logits, y), kl_term(model(x_masked), logits)
    return ce + p.lam * kl, {"ce": ce, "kl": kl}


def at_fgsm_loss(model, x, y, p: MethodParams, g=None) -> tuple[torch.Tensor, Terms]:
    """Adversarial training with FGSM examples: L = CE(f(X), y) + CE(f(X'), y)."""
    x_adv, logits = _adversarial(model, x, y, p, g)
    ce, ce_adv = F.cross_entropy(_forward(model, x, logits), y), F.cross_entropy(model(x_adv), y)
    return ce + ce_adv, {"ce": ce, "ce_adv": ce_adv}


def adversarial_ce_loss(model, x, y, p: MethodParams, g=None) -> tuple[torch.Tensor, Terms]:
    """Adversarial training on the adversarial loss alone, L = CE(f(X'), y): FGSM-RS (Wong et al. 2020) with
    ``attack="fgsm-rs"``, PGD-AT (Madry et al. 2018, eq. 2.1) with ``attack="pgd"``."""
    ce_adv = F.cross_entropy(model(_attack(model, x, y, p, g)), y)
    return ce_adv, {"ce_adv": ce_adv}


def _asgt(model, x, y, p: MethodParams, g, paper: bool) -> tuple[torch.Tensor, Terms]:
    x_adv, logits = _adversarial(model, x, y, p, g)                                  # Alg. 2 lines 6-7
    sal, logits_adv = _saliency(model, x_adv, p, target=y if paper else None)       # line 9
    x_masked = mask_lowest(x_adv, sal, p.k, p.fill, g)                               # line 10
    logits, logits_adv = _forward(model, x, logits), _forward(model, x_adv, logits_adv)
    logits_masked = model(x_masked)
    ce, ce_adv = F.cross_entropy(logits, y), F.cross_entropy(logits_adv, y)
    kl = kl_term(logits_masked, logits if paper else logits_adv)                     # eq. 4
    return ce + ce_adv + p.lam * kl, {"ce": ce, "ce_adv": ce_adv, "kl": kl}


def asgt_loss(model, x, y, p: MethodParams, g=None) -> tuple[torch.Tensor, Terms]:
    """ASGT as the paper writes it (Alg. 2, eq. 5): L = CE(f(X)) + CE(f(X')) + λ·KL[f(X̃') ‖ f(X)]."""
    return _asgt(model, x, y, p, g, paper=True)


def asgt_code_loss(model, x, y, p: MethodParams, g=None) -> tuple[torch.Tensor, Terms]:
    """ASGT as the probable authors' code does it: saliency for argmax f(X'), KL[f(X̃') ‖ f(X')]."""
    return _asgt(model, x, y, p, g, paper=False)


def sga_loss(model, x, y, p: MethodParams, g=None) -> tuple[torch.Tensor, Terms]:
    """SGA (Li et al. 2022): X̃ = M_k(X) by true-label saliency, then attack; L = CE(f(X)) + λ·KL[f(Adv(X̃)) ‖ f(X)]."""
    sal, logits = _saliency(model, x, p, target=y)
    x_adv_masked = _attack(model, mask_lowest(x, sal, p.k, p.fill, g), y, p, g)
    logits = _forward(model, x, logits)
    ce, kl = F.cross_entropy(logits, y), kl_term(model(x_adv_masked), logits)
    return ce + p.lam * kl, {"ce": ce, "kl": kl}


LossFn = Callable[..., tuple[torch.Tensor, Terms]]
METHODS: dict[str, LossFn] = {
    "st": st_loss,
    "sgt": sgt_loss,
    "at-fgsm": at_fgsm_loss,
    "sga": sga_loss,
    "asgt": asgt_loss,
    "asgt-code": asgt_code_loss,
    "fgsm-rs": adversarial_ce_loss,
    "pgd-at": adversarial_ce_loss,
    "asgt-rs": asgt_loss,
}


def get_method(name: str) -> LossFn:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"method '{name}' is unknown; allowed values: {', '.join(METHODS)}") from None
