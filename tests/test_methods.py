"""Each training objective against a term-by-term reference built from independent pieces
(torchattacks for X', a per-sample loop for saliency, an explicit KL sum), on a tiny model."""

import copy

import pytest
import torch
import torch.nn.functional as F
import torchattacks

from asgt_lib.core.methods import METHODS, MethodParams, get_method, kl_term
from asgt_lib.core.models import build_model
from asgt_lib.core.saliency import mask_lowest
from tests.test_saliency import reference_saliency


def kl(p_logits, q_logits):
    """KL(p ‖ q) = Σ p (log p - log q), averaged over the batch."""
    p, logp, logq = F.softmax(p_logits, 1), F.log_softmax(p_logits, 1), F.log_softmax(q_logits, 1)
    return (p * (logp - logq)).sum(1).mean()


def gen():
    return torch.Generator().manual_seed(7)


@pytest.fixture(params=["alexnet", "resnet18"])
def model_and_batch(request, mnist_sample):
    _, test = mnist_sample
    torch.manual_seed(0)
    if request.param == "alexnet":
        model, x = build_model("mnist", "alexnet", width=0.125), test.x[:12]
    else:
        model = build_model("cifar10", "resnet18", width=0.0625)
        x = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return model.train(), x, test.y[:12]


def test_st_is_cross_entropy(model_and_batch):
    model, x, y = model_and_batch
    ref = copy.deepcopy(model)
    loss, terms = METHODS["st"](model, x, y, MethodParams())
    assert torch.allclose(loss, F.cross_entropy(ref(x), y), atol=1e-6)
    assert set(terms) == {"ce"}


@pytest.mark.parametrize("reuse", [True, False])
def test_sgt_is_ce_plus_kl_of_clean_against_masked(model_and_batch, reuse):
    model, x, y = model_and_batch
    p = MethodParams(k=0.3, lam=0.7, reuse_forward=reuse)
    ref = copy.deepcopy(model)  # the call below updates batch-norm statistics
    loss, terms = METHODS["sgt"](model, x, y, p, gen())
    sal = reference_saliency(ref, x, y)
    ref.train()
    x_masked = mask_lowest(x, sal, 0.3, "uniform", gen())
    clean, masked = ref(x), ref(x_masked)
    expected_kl = kl(clean, masked)  # KLDivLoss(log p(X̃), p(X)) = KL(p(X) ‖ p(X̃))
    assert torch.allclose(terms["kl"], expected_kl, atol=1e-5)
    assert not torch.allclose(terms["kl"], kl(masked, clean), atol=1e-5)  # not the other direction
    assert torch.allclose(loss, F.cross_entropy(clean, y) + 0.7 * expected_kl, atol=1e-5)


@pytest.mark.parametrize("reuse", [True, False])
def test_asgt_follows_algorithm_2(model_and_batch, reuse):
    model, x, y = model_and_batch
    p = MethodParams(k=0.3, lam=1.0, eps=0.1, reuse_forward=reuse)
    ref = copy.deepcopy(model)
    loss, terms = METHODS["asgt"](model, x, y, p, gen())
    x_adv = torchattacks.FGSM(ref, eps=0.1)(x, y)                # line 6-7, eval mode
    sal = reference_saliency(ref, x_adv, y)                       # line 9, true label
    ref.train()
    x_masked = mask_lowest(x_adv, sal, 0.3, "uniform", gen())     # line 10
    clean, adv, masked = ref(x), ref(x_adv), ref(x_masked)
    assert torch.allclose(terms["ce_adv"], F.cross_entropy(adv, y), atol=1e-5)
    assert torch.allclose(terms["kl"], kl(clean, masked), atol=1e-5)   # eq. 4 against f(X)
    expected = F.cross_entropy(clean, y) + F.cross_entropy(adv, y) + kl(clean, masked)
    assert torch.allclose(loss, expected, atol=1e-5)


def test_asgt_code_uses_argmax_saliency_and_kl_against_adversarial(model_and_batch):
    model, x, y = model_and_batch
    p = MethodParams(k=0.3, eps=0.1)
    ref = copy.deepcopy(model)
    loss, terms = METHODS["asgt-code"](model, x, y, p, gen())
    x_adv = torchattacks.FGSM(ref, eps=0.1)(x, y)
    ref.eval()
    predicted = ref(x_adv).argmax(1)  # the saliency's own (eval-mode) forward
    sal = reference_saliency(ref, x_adv, predicted)
    ref.train()
    clean, adv = ref(x), ref(x_adv)
    masked = ref(mask_lowest(x_adv, sal, 0.3, "uniform", gen()))
    assert torch.allclose(terms["kl"], kl(adv, masked), atol=1e-5)
    assert torch.allclose(loss, F.cross_entropy(clean, y) + F.cross_entropy(adv, y) + kl(adv, masked), atol=1e-5)


def test_sga_masks_first_then_attacks_and_has_no_adversarial_ce(model_and_batch):
    model, x, y = model_and_batch
    p = MethodParams(k=0.3, lam=1.0, eps=0.1)
    ref = copy.deepcopy(model)
    loss, terms = METHODS["sga"](model, x, y, p, gen())
    sal = reference_saliency(ref, x, y)
    x_masked = mask_lowest(x, sal, 0.3, "uniform", gen())
    ref.train()
    x_adv_masked = torchattacks.FGSM(ref, eps=0.1)(x_masked, y)
    clean, adv_masked = ref(x), ref(x_adv_masked)
    assert set(terms) == {"ce", "kl"}
    assert torch.allclose(terms["kl"], kl(clean, adv_masked), atol=1e-5)
    assert torch.allclose(loss, F.cross_entropy(clean, y) + kl(clean, adv_masked), atol=1e-5)


def test_at_fgsm_is_clean_plus_adversarial_ce_and_equals_asgt_without_kl(model_and_batch):
    model, x, y = model_and_batch
    p = MethodParams(eps=0.1, lam=0.0)
    ref, ref2 = copy.deepcopy(model), copy.deepcopy(model)
    at, terms = METHODS["at-fgsm"](model, x, y, p, gen())
    x_adv = torchattacks.FGSM(ref, eps=0.1)(x, y)
    ref.train()
    assert torch.allclose(at, F.cross_entropy(ref(x), y) + F.cross_entropy(ref(x_adv), y), atol=1e-5)
    asgt, _ = METHODS["asgt"](ref2, x, y, p, gen())
    assert torch.allclose(at, asgt, atol=1e-5)


def test_pgd_inner_attack_is_used_when_asked(model_and_batch):
    model, x, y = model_and_batch
    ref = copy.deepcopy(model)
    fgsm_loss, _ = METHODS["at-fgsm"](model, x, y, MethodParams(eps=0.2), gen())
    pgd_loss, _ = METHODS["at-fgsm"](ref, x, y, MethodParams(eps=0.2, attack="pgd", attack_steps=3), gen())
    assert not torch.allclose(fgsm_loss, pgd_loss)


def test_kl_gradient_flows_through_both_arguments():
    a, b = torch.randn(4, 10, requires_grad=True), torch.randn(4, 10, requires_grad=True)
    kl_term(a, b).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_every_method_trains_parameters(model_and_batch):
    model, x, y = model_and_batch
    for name, fn in METHODS.items():
        model.zero_grad()
        loss, _ = fn(model, x, y, MethodParams(eps=0.1), gen())
        loss.backward()
        grads = [q.grad for q in model.parameters() if q.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, name


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0.0}, r"outside \(0, 1\)"), ({"k": 1.0}, r"outside \(0, 1\)"), ({"lam": -1.0}, "negative"),
    ({"eps": -0.1}, "negative"), ({"attack": "cw"}, "unknown"), ({"fill": "zero"}, "unknown"),
])
def test_invalid_method_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MethodParams(**kwargs)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="method 'trades' is unknown; allowed values: st, sgt, at-fgsm"):
        get_method("trades")


# --------------------------------------------------------------------------- the baselines of "ASGT against the field"
def wong_fgsm_rs(model, x, y, eps, alpha, generator):
    """FGSM-RS as Wong et al.'s Alg. 3 writes it, with δ as the variable (an independent reference)."""
    model.eval()
    delta = torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    F.cross_entropy(model(x + delta), y).backward()
    delta = (delta + alpha * delta.grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1).detach()


def test_fgsm_rs_is_adversarial_ce_on_a_random_start_step_of_1_25_eps(model_and_batch):
    model, x, y = model_and_batch
    ref = copy.deepcopy(model)
    loss, terms = METHODS["fgsm-rs"](model, x, y, MethodParams(eps=0.1, attack="fgsm-rs"), gen())
    x_adv = wong_fgsm_rs(ref, x, y, 0.1, 1.25 * 0.1, gen())
    ref.train()
    assert set(terms) == {"ce_adv"}                           # Wong et al. train on the adversarial loss only
    assert torch.allclose(loss, F.cross_entropy(ref(x_adv), y), atol=1e-5)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6


def test_pgd_at_is_adversarial_ce_on_torchattacks_pgd(model_and_batch):
    """PGD-AT against torchattacks' PGD started from the same random point (its start is drawn from the global
    RNG, ours from the generator: the same numbers when both are seeded alike)."""
    model, x, y = model_and_batch
    ref = copy.deepcopy(model)
    p = MethodParams(eps=0.1, attack="pgd", attack_steps=3)
    loss, terms = METHODS["pgd-at"](model, x, y, p, torch.Generator().manual_seed(5))
    torch.manual_seed(5)
    x_adv = torchattacks.PGD(ref, eps=0.1, alpha=2.5 * 0.1 / 3, steps=3, random_start=True)(x, y)
    ref.train()
    assert set(terms) == {"ce_adv"}
    assert torch.allclose(loss, F.cross_entropy(ref(x_adv), y), atol=1e-5)


def test_asgt_rs_is_asgt_with_the_fgsm_rs_inner_attack(model_and_batch):
    model, x, y = model_and_batch
    p = MethodParams(k=0.3, lam=1.0, eps=0.1, attack="fgsm-rs")
    ref = copy.deepcopy(model)
    loss, terms = METHODS["asgt-rs"](model, x, y, p, gen())
    g = gen()
    x_adv = wong_fgsm_rs(ref, x, y, 0.1, 0.125, g)               # the generator's first draws: the start
    sal = reference_saliency(ref, x_adv, y)
    ref.train()
    x_masked = mask_lowest(x_adv, sal, 0.3, "uniform", g)         # then the fill
    clean, adv, masked = ref(x), ref(x_adv), ref(x_masked)
    assert torch.allclose(terms["ce_adv"], F.cross_entropy(adv, y), atol=1e-5)
    assert torch.allclose(terms["kl"], kl(clean, masked), atol=1e-5)
    assert torch.allclose(loss, F.cross_entropy(clean, y) + F.cross_entropy(adv, y) + kl(clean, masked), atol=1e-5)
    # and it differs from plain ASGT only through the attack
    assert not torch.allclose(terms["ce_adv"], METHODS["asgt"](copy.deepcopy(ref), x, y,
                                                              MethodParams(k=0.3, eps=0.1), gen())[1]["ce_adv"])

