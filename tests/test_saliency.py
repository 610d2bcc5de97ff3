"""Saliency and M_k against a plain per-sample reference implementation (a loop, as the SGT code has)."""

import pytest
import torch
from torch import nn

from asgt_lib.saliency import lowest_saliency_indices, mask_lowest, mask_pixels, num_masked, saliency


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
    ours = saliency(trained_alexnet, x, y, absolute=absolute)
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
    assert torch.allclose(saliency(model, x, y, absolute=absolute), theirs, atol=1e-7)
