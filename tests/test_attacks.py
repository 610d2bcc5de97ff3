"""Attacks against an independent implementation (torchattacks 3.5.1) on the same model and data."""

import pytest
import torch
import torchattacks

from asgt_lib.core.attacks import fgsm, get_attack, mifgsm, pgd
from asgt_lib.core.evaluate import predict


def _accuracy(model, x, y):
    return (predict(model, x) == y).float().mean().item()


def test_fgsm_matches_torchattacks_bit_for_bit(trained_alexnet, mnist_sample):
    _, test = mnist_sample
    ours = fgsm(trained_alexnet, test.x, test.y, 0.1)
    theirs = torchattacks.FGSM(trained_alexnet, eps=0.1)(test.x, test.y)
    assert torch.equal(ours, theirs)
    assert _accuracy(trained_alexnet, ours, test.y) < _accuracy(trained_alexnet, test.x, test.y)


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_pgd_matches_torchattacks(trained_alexnet, mnist_sample, eps):
    _, test = mnist_sample
    steps, alpha = 5, 2.5 * eps / 5
    torch.manual_seed(123)
    ours = pgd(trained_alexnet, test.x, test.y, eps, steps=steps, alpha=alpha)
    torch.manual_seed(123)
    theirs = torchattacks.PGD(trained_alexnet, eps=eps, alpha=alpha, steps=steps, random_start=True)(test.x, test.y)
    assert torch.equal(ours, theirs)
    assert _accuracy(trained_alexnet, ours, test.y) == pytest.approx(_accuracy(trained_alexnet, theirs, test.y), abs=0.01)


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_mifgsm_robust_accuracy_matches_torchattacks(trained_alexnet, mnist_sample, eps):
    _, test = mnist_sample
    ours = mifgsm(trained_alexnet, test.x, test.y, eps, steps=5, decay=1.0)
    theirs = torchattacks.MIFGSM(trained_alexnet, eps=eps, alpha=eps / 5, steps=5, decay=1.0)(test.x, test.y)
    acc_ours, acc_theirs = _accuracy(trained_alexnet, ours, test.y), _accuracy(trained_alexnet, theirs, test.y)
    assert acc_ours == pytest.approx(acc_theirs, abs=0.02)
    assert (ours - theirs).abs().max() <= 2 * eps  # both inside the same ball


@pytest.mark.parametrize("name", ["fgsm", "pgd", "mifgsm"])
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_attacks_stay_in_ball_and_pixel_range(trained_alexnet, tiny_batch, name, eps):
    x, y = tiny_batch
    x_adv = get_attack(name)(trained_alexnet, x, y, eps)
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_pgd_is_at_least_as_strong_as_fgsm(trained_alexnet, mnist_sample):
    _, test = mnist_sample
    a_fgsm = _accuracy(trained_alexnet, fgsm(trained_alexnet, test.x, test.y, 0.15), test.y)
    a_pgd = _accuracy(trained_alexnet, pgd(trained_alexnet, test.x, test.y, 0.15, steps=10), test.y)
    assert a_pgd <= a_fgsm + 0.02


@pytest.mark.parametrize("name", ["fgsm", "pgd", "mifgsm"])
def test_zero_eps_is_identity_and_negative_eps_is_refused(trained_alexnet, tiny_batch, name):
    x, y = tiny_batch
    assert torch.equal(get_attack(name)(trained_alexnet, x, y, 0.0), x)
    with pytest.raises(ValueError, match="negative"):
        get_attack(name)(trained_alexnet, x, y, -0.1)


def test_unknown_attack_is_named():
    with pytest.raises(ValueError, match="attack 'cw' is unknown; allowed values: fgsm, pgd, mifgsm"):
        get_attack("cw")


def test_pgd_generator_makes_it_reproducible(trained_alexnet, tiny_batch):
    x, y = tiny_batch
    a = pgd(trained_alexnet, x, y, 0.2, steps=3, generator=torch.Generator().manual_seed(5))
    b = pgd(trained_alexnet, x, y, 0.2, steps=3, generator=torch.Generator().manual_seed(5))
    c = pgd(trained_alexnet, x, y, 0.2, steps=3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_fixed_step_pgd_is_torchattacks_default_pgd(trained_alexnet, mnist_sample, eps):
    """``attack_step: fixed`` is torchattacks' PGD built from ε alone (α = 2/255, 10 steps, random start)."""
    from asgt_lib.core.config import RunConfig
    from asgt_lib.core.evaluate import attack_fn

    _, test = mnist_sample
    cfg = RunConfig(dataset="mnist", method="st", pgd_steps=3, pgd_step_factor=1.0)  # ignored under `fixed`
    torch.manual_seed(7)
    start = torch.empty_like(test.x).uniform_(-eps, eps)
    torch.manual_seed(7)
    theirs = torchattacks.PGD(trained_alexnet, eps=eps)(test.x, test.y)
    gen = torch.Generator()
    gen.manual_seed(7)
    assert torch.equal(torch.empty_like(test.x).uniform_(-eps, eps, generator=gen), start)  # same start stream
    ours = attack_fn("pgd", cfg, seed=7, step="fixed")(trained_alexnet, test.x, test.y, eps)
    assert torch.equal(ours, theirs)
    scaled = attack_fn("pgd", cfg, seed=7, step="scaled")(trained_alexnet, test.x, test.y, eps)
    assert not torch.equal(scaled, theirs)  # the run's own step settings apply only under `scaled`


@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_fixed_step_mifgsm_is_torchattacks_default_mifgsm(trained_alexnet, mnist_sample, eps):
    """``attack_step: fixed`` is torchattacks' MIFGSM built from ε alone (α = 2/255, 10 steps, decay 1.0); the
    iterate moves at most 10·2/255 from x, so the accuracy no longer falls once ε passes that."""
    from asgt_lib.core.config import RunConfig
    from asgt_lib.core.evaluate import FIXED_ALPHA, FIXED_STEPS, attack_fn

    _, test = mnist_sample
    cfg = RunConfig(dataset="mnist", method="st", mifgsm_steps=2, mifgsm_decay=0.5)  # ignored under `fixed`
    ours = attack_fn("mifgsm", cfg, step="fixed")(trained_alexnet, test.x, test.y, eps)
    theirs = torchattacks.MIFGSM(trained_alexnet, eps=eps)(test.x, test.y)
    assert _accuracy(trained_alexnet, ours, test.y) == pytest.approx(_accuracy(trained_alexnet, theirs, test.y),
                                                                     abs=0.02)
    assert (ours - test.x).abs().max() <= min(eps, FIXED_STEPS * FIXED_ALPHA) + 1e-6
    assert (ours - theirs).abs().max() <= 2 * min(eps, FIXED_STEPS * FIXED_ALPHA) + 1e-6


def test_fixed_step_mifgsm_is_flat_beyond_its_reach(trained_alexnet, mnist_sample):
    """Past ε = 10·2/255 ≈ 0.078 the projection never binds: the fixed-step MI-FGSM returns the same images."""
    from asgt_lib.core.config import RunConfig
    from asgt_lib.core.evaluate import attack_fn

    _, test = mnist_sample
    attack = attack_fn("mifgsm", RunConfig(dataset="mnist", method="st"), step="fixed")
    assert torch.equal(attack(trained_alexnet, test.x, test.y, 0.2), attack(trained_alexnet, test.x, test.y, 0.4))


def test_unknown_attack_step_is_named():
    from asgt_lib.core.config import RunConfig
    from asgt_lib.core.evaluate import attack_fn

    with pytest.raises(ValueError, match="allowed values: scaled, fixed"):
        attack_fn("pgd", RunConfig(dataset="mnist", method="st"), step="tiny")
