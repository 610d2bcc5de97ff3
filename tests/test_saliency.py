"""Saliency and M_k against a plain per-sample reference implementation (a loop, as the SGT code has)."""

import pytest
import torch
from torch import nn

from asgt_lib.core.models import build_model
from asgt_lib.core.saliency import (
    SaliencyConvention, lowest_saliency_indices, mask_lowest, mask_pixels, num_masked, saliency,
)


def reference_saliency(model, x, y, absolute=False):
    """One sample at a time: d logit_y / dx, eval mode, then mean over channels."""
    model.eval()
    maps = []
    for xi, yi in zip(x, y):
        xi = xi.unsqueeze(0).clone().requires_grad_(True)
        model(xi)[0, yi].backward()
        g = xi.grad[0]
        maps.append((g.abs() if absolute else g).mean(0))
    return torch.stack(maps)


class TwoChannel(nn.Module):
    """A tiny 3-channel model with dropout, to check channel averaging and eval mode."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                                 nn.Linear(4 * 8 * 8, 10))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("absolute", [False, True])
def test_saliency_matches_per_sample_gradient(trained_alexnet, tiny_batch, absolute):
    x, y = tiny_batch
    ours = saliency(trained_alexnet, x, y, SaliencyConvention(absolute=absolute))
    assert ours.shape == (16, 28, 28)
    assert torch.allclose(ours, reference_saliency(trained_alexnet, x, y, absolute), atol=1e-6)
    if not absolute:
        assert (ours < 0).any() and (ours > 0).any()  # signed by default


def test_saliency_averages_channels_in_eval_mode_and_restores_mode():
    torch.manual_seed(0)
    model = TwoChannel().train()
    x, y = torch.rand(5, 3, 8, 8), torch.arange(5)
    a, b = saliency(model, x, y), saliency(model, x, y)
    assert torch.equal(a, b)  # dropout off: eval mode while computing
    assert model.training  # mode restored
    assert torch.allclose(a, reference_saliency(model, x, y), atol=1e-6)
    assert a.shape == (5, 8, 8)


def test_mask_replaces_exactly_floor_k_hw_lowest_pixels_in_every_channel():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 8, 8) * 0.5 + 0.25
    sal = torch.randn(6, 8, 8)
    k = 0.3
    n = num_masked(k, 8, 8)
    assert n == int(0.3 * 64) == 19
    masked = mask_lowest(x, sal, k, generator=torch.Generator().manual_seed(1))
    changed = (masked != x)
    assert changed.any(1).flatten(1).sum(1).tolist() == [n] * 6
    assert torch.equal(changed[:, 0], changed[:, 1]) and torch.equal(changed[:, 1], changed[:, 2])
    for i in range(6):  # the changed pixels are the n lowest-saliency ones
        lowest = set(sal[i].flatten().argsort()[:n].tolist())
        assert set(changed[i, 0].flatten().nonzero().flatten().tolist()) == lowest


def test_uniform_fill_stays_in_each_samples_channel_range_and_is_seeded():
    x = torch.rand(4, 3, 8, 8)
    x[:, 1] = x[:, 1] * 0.1 + 0.8  # channel 1 lives in [0.8, 0.9]
    idx = lowest_saliency_indices(torch.randn(4, 8, 8), 0.5)
    a = mask_pixels(x, idx, "uniform", torch.Generator().manual_seed(3))
    b = mask_pixels(x, idx, "uniform", torch.Generator().manual_seed(3))
    c = mask_pixels(x, idx, "uniform", torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    lo, hi = x.flatten(2).amin(2), x.flatten(2).amax(2)
    flat = a.flatten(2)
    assert (flat >= lo.unsqueeze(2) - 1e-7).all() and (flat <= hi.unsqueeze(2) + 1e-7).all()


def test_mean_fill_uses_channel_mean():
    x = torch.rand(2, 3, 4, 4)
    idx = torch.tensor([[0, 5], [3, 15]])
    out = mask_pixels(x, idx, "mean")
    assert torch.allclose(out.flatten(2)[0, :, 5], x.flatten(2)[0].mean(1))


def test_mask_is_detached_and_leaves_input_untouched():
    x = torch.rand(2, 1, 4, 4, requires_grad=True)
    before = x.detach().clone()
    out = mask_lowest(x, torch.randn(2, 4, 4), 0.25)
    assert not out.requires_grad and torch.equal(x.detach(), before)


@pytest.mark.parametrize("k", [0.0, 1.0, -0.1, 1.5])
def test_k_outside_open_interval_is_refused(k):
    with pytest.raises(ValueError, match=r"outside \(0, 1\)"):
        num_masked(k, 28, 28)


def test_unknown_fill_is_named():
    with pytest.raises(ValueError, match="fill 'zero' is unknown; allowed values: uniform, mean"):
        mask_pixels(torch.rand(1, 1, 2, 2), torch.tensor([[0]]), "zero")


@pytest.mark.parametrize("absolute", [False, True])
def test_saliency_matches_captum(absolute):
    """Captum's ``Saliency`` (an independent implementation of the input gradient of the target logit), averaged
    over channels as the paper's maps are: signed, and |·| (Captum's default) as the faithfulness page uses."""
    from captum.attr import Saliency

    torch.manual_seed(0)
    model = TwoChannel().eval()
    x, y = torch.rand(6, 3, 8, 8), torch.randint(0, 10, (6,))
    theirs = Saliency(model).attribute(x, target=y, abs=absolute).mean(1)
    assert torch.allclose(saliency(model, x, y, SaliencyConvention(absolute=absolute)), theirs, atol=1e-7)


# --------------------------------------------------------------------------- the official SGT code's conventions
def _cifar_model():
    torch.manual_seed(0)
    return build_model("cifar10", "resnet18", width=0.0625).eval()


def test_log_softmax_saliency_is_the_gradient_of_log_p_y():
    """``saliency_of: log_softmax`` (the official MNIST code's network returns log-softmax): checked against
    autograd on an explicitly built log p_y, one sample at a time."""
    model = _cifar_model()
    x, y = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 3, 5, 9])
    ours = saliency(model, x, y, SaliencyConvention(of="log_softmax"))
    for i in range(4):
        xi = x[i:i + 1].clone().requires_grad_(True)
        torch.log_softmax(model(xi), 1)[0, y[i]].backward()
        assert torch.allclose(ours[i], xi.grad[0].mean(0), atol=1e-6)
    assert not torch.allclose(ours, saliency(model, x, y), atol=1e-4)  # a different map from the logit's


def test_normalized_space_is_the_gradient_wrt_the_normalised_input():
    """``saliency_space: normalized`` (the official CIFAR-10 code): the gradient w.r.t. (x−μ)/σ, computed here
    by feeding the normalised input to the network without its Normalize layer."""
    model = _cifar_model()
    norm, net = model[0], model[1]
    x, y = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2)), torch.tensor([1, 2, 3, 4])
    xn = norm(x).detach().requires_grad_(True)
    net(xn).gather(1, y.view(-1, 1)).sum().backward()
    ours = saliency(model, x, y, SaliencyConvention(space="normalized"))
    assert torch.allclose(ours, xn.grad.mean(1), atol=1e-6)
    # on the pixels the channels are weighted by 1/σ instead: a different map for 3 channels
    assert not torch.allclose(ours, saliency(model, x, y), atol=1e-4)


def test_absolute_value_before_or_after_the_channel_mean():
    model = _cifar_model()
    x, y = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)), torch.tensor([1, 2, 3, 4])
    xg = x.clone().requires_grad_(True)
    model(xg).gather(1, y.view(-1, 1)).sum().backward()
    before = saliency(model, x, y, SaliencyConvention(absolute=True))
    after = saliency(model, x, y, SaliencyConvention(absolute=True, abs_stage="after_mean"))
    assert torch.allclose(before, xg.grad.abs().mean(1), atol=1e-6)
    assert torch.allclose(after, xg.grad.mean(1).abs(), atol=1e-6)
    assert (before >= after - 1e-7).all() and not torch.allclose(before, after)  # |mean| <= mean|.|


def test_one_channel_input_ignores_space_and_abs_stage_for_the_mask(trained_alexnet, tiny_batch):
    """MNIST: σ is one positive constant and the mean is over one channel, so the masked pixels are the same."""
    x, y = tiny_batch
    base = lowest_saliency_indices(saliency(trained_alexnet, x, y), 0.3)
    normalized = lowest_saliency_indices(saliency(trained_alexnet, x, y, SaliencyConvention(space="normalized")), 0.3)
    assert torch.equal(base, normalized)
    a = saliency(trained_alexnet, x, y, SaliencyConvention(absolute=True))
    b = saliency(trained_alexnet, x, y, SaliencyConvention(absolute=True, abs_stage="after_mean"))
    assert torch.allclose(a, b)


@pytest.mark.parametrize("kwargs", [{"of": "softmax"}, {"space": "logits"}, {"abs_stage": "never"}])
def test_unknown_convention_is_refused(kwargs):
    with pytest.raises(ValueError, match="unknown; allowed values"):
        SaliencyConvention(**kwargs)


def test_mask_overlap_is_one_for_the_same_convention_and_random_level_for_unrelated_maps(trained_alexnet,
                                                                                         tiny_batch):
    from asgt_lib.core.saliency import convention_variants, mask_overlap

    x, y = tiny_batch
    base = SaliencyConvention()
    assert mask_overlap(trained_alexnet, x, y, 0.3, base, base) == 1.0
    variants = convention_variants(base)
    assert variants["saliency_of"].of == "log_softmax" and variants["saliency_space"].space == "normalized"
    # MNIST: one channel, so the normalised space keeps every masked pixel
    assert mask_overlap(trained_alexnet, x, y, 0.3, base, variants["saliency_space"]) == 1.0
    # against sets built by hand from the two masks
    a = lowest_saliency_indices(saliency(trained_alexnet, x, y, base), 0.3)
    b = lowest_saliency_indices(saliency(trained_alexnet, x, y, variants["saliency_of"]), 0.3)
    jaccard = [len(set(i.tolist()) & set(j.tolist())) / len(set(i.tolist()) | set(j.tolist())) for i, j in zip(a, b)]
    ours = mask_overlap(trained_alexnet, x, y, 0.3, base, variants["saliency_of"])
    assert abs(ours - sum(jaccard) / len(jaccard)) < 1e-6 and ours < 1.0
