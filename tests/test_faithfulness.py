"""Faithfulness metrics: hand-computed references for every hand-written piece, behaviour on toy and trained
models, and the cached report of a run."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from asgt_lib.core import config as C
from asgt_lib.pipeline import experiment
from asgt_lib.judgement import faithfulness as F
from asgt_lib.core.saliency import mask_pixels

FAST = F.FaithfulnessSettings(ks=(0.0, 0.1, 0.3), n_steps=4, n_bootstrap=200)


# --------------------------------------------------------------------------- statistics
def test_gini_of_known_vectors():
    v = torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 1], [1, 2, 3, 4], [4, 3, 2, 1], [0, 0, 0, 0], [-2, -4, -6, -8]])
    assert torch.allclose(F.gini(v), torch.tensor([0.0, 0.75, 0.25, 0.25, 0.0, 0.25]), atol=1e-6)
    maps = torch.rand(3, 5, 5)
    assert torch.allclose(F.gini(maps), F.gini(7 * maps.flip(-1)), atol=1e-6)  # scale and order invariant


def test_row_wise_spearman_matches_scipy_per_pair():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (4, 30), generator=g).float()  # many ties
    b = a + torch.randint(0, 4, (4, 30), generator=g).float()
    for i in range(4):
        assert math.isclose(F.spearman(a, b)[i].item(), stats.spearmanr(a[i], b[i]).statistic, abs_tol=1e-5)
    assert F.spearman(a, a).allclose(torch.ones(4)) and F.spearman(a, -a).allclose(-torch.ones(4))
    assert F.spearman(torch.ones(1, 5), a[:1, :5]).isnan().all()


def test_auc_of_known_curves():
    assert math.isclose(F.auc([0, 0.5, 1], torch.tensor([0.0, 0.5, 1.0])).item(), 0.5)
    assert math.isclose(F.auc([0, 0.5, 1], torch.tensor([1.0, 1.0, 1.0])).item(), 1.0)
    assert math.isclose(F.auc([0, 0.25, 1], torch.tensor([1.0, 1.0, 0.0])).item(), 0.625)
    assert math.isclose(F.auc([0, 0.1, 0.5], torch.tensor([1.0, 1.0, 0.0])).item(), (0.1 + 0.2) / 0.5, rel_tol=1e-6)


def test_intervals_against_references():
    m, lo, hi = F.mean_ci(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    half = stats.t.ppf(0.975, 5) * np.std([1, 2, 3, 4, 5, 6], ddof=1) / math.sqrt(6)
    assert m == 3.5 and math.isclose(hi - m, half, rel_tol=1e-3) and math.isclose(m - lo, half, rel_tol=1e-3)
    p, lo, hi = F.wilson_ci(5, 10)  # hand-computed: 0.5 ± 1.96·sqrt(0.025 + 1.96²/400) / (1 + 1.96²/10)
    assert p == 0.5 and math.isclose(lo, 0.2366, abs_tol=1e-4) and math.isclose(hi, 0.7634, abs_tol=1e-4)
    r, lo, hi = F.ratio_ci(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0]), n_boot=100)
    assert r == 0.5 and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)


# --------------------------------------------------------------------------- ROAD imputation
def _dense_reference(x: np.ndarray, removed: np.ndarray, kernel) -> np.ndarray:
    """The same linear system built entry by entry and solved densely (an independent reference)."""
    h, w = x.shape
    unknown = [(i, j) for i in range(h) for j in range(w) if removed[i, j]]
    pos = {p: n for n, p in enumerate(unknown)}
    a, b = np.zeros((len(unknown), len(unknown))), np.zeros(len(unknown))
    for (i, j), n in pos.items():
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                wgt, ii, jj = kernel[di + 1][dj + 1], i + di, j + dj
                if wgt == 0 or not (0 <= ii < h and 0 <= jj < w):
                    continue
                a[n, n] += wgt
                if removed[ii, jj]:
                    a[n, pos[(ii, jj)]] -= wgt
                else:
                    b[n] += wgt * x[ii, jj]
    out = x.copy()
    for (i, j), n in pos.items():
        out[i, j] = np.linalg.solve(a, b)[n]
    return out


@pytest.mark.parametrize("neighbours", [4, 8])
def test_imputation_solves_the_linear_system(neighbours):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 2, 6, 7, generator=g)
    removed = torch.rand(2, 6, 7, generator=g) < 0.6
    out = F.noisy_linear_impute(x, removed, noise=0.0, neighbours=neighbours, tol=1e-8)
    loose = F.noisy_linear_impute(x, removed, noise=0.0, neighbours=neighbours)  # the default tolerance
    assert (loose - out).abs().max() < 1e-3  # far below the imputation noise (0.01)
    for i in range(2):
        for c in range(2):
            ref = _dense_reference(x[i, c].double().numpy(), removed[i].numpy(), F._KERNELS[neighbours])
            assert np.allclose(out[i, c].numpy(), ref.clip(0, 1), atol=1e-4)


def test_imputation_of_known_images():
    ramp = torch.linspace(0, 1, 9).expand(1, 1, 9, 9).clone()  # linear: reproduced exactly by the harmonic fill
    hole = torch.zeros(1, 9, 9, dtype=torch.bool)
    hole[0, 2:7, 2:7] = True
    assert torch.allclose(F.noisy_linear_impute(ramp, hole, noise=0.0, tol=1e-8), ramp, atol=1e-5)
    # one missing pixel: 1/6 of each direct neighbour + 1/12 of each diagonal one (weights sum to 1)
    img = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.0, 0.6], [0.7, 0.8, 0.9]]).view(1, 1, 3, 3)
    centre = torch.zeros(1, 3, 3, dtype=torch.bool)
    centre[0, 1, 1] = True
    expected = (0.2 + 0.4 + 0.6 + 0.8) / 6 + (0.1 + 0.3 + 0.7 + 0.9) / 12
    assert math.isclose(F.noisy_linear_impute(img, centre, noise=0.0, tol=1e-8)[0, 0, 1, 1].item(), expected,
                        abs_tol=1e-6)
    # everything removed: the image's channel mean; noise only on removed pixels, reproducible, within [0, 1]
    everything = torch.ones(1, 3, 3, dtype=torch.bool)
    assert torch.allclose(F.noisy_linear_impute(img, everything, noise=0.0), img.mean().expand(1, 1, 3, 3))
    noisy = [F.noisy_linear_impute(img, centre, 0.5, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(noisy[0], noisy[1]) and noisy[0][0, 0, 1, 1] != expected
    assert torch.equal(noisy[0][~centre.unsqueeze(1)], img[~centre.unsqueeze(1)])
    assert 0 <= noisy[0].min() and noisy[0].max() <= 1


def test_fill_pixels_reuses_mask_pixels_and_checks_its_fill():
    x = torch.rand(3, 1, 5, 5)
    idx = torch.tensor([[0, 6, 7], [1, 2, 3], [24, 12, 5]])
    for fill in ("uniform", "mean"):
        ours = F.fill_pixels(x, idx, fill, torch.Generator().manual_seed(0))
        assert torch.equal(ours, mask_pixels(x, idx, fill, torch.Generator().manual_seed(0)))
    assert torch.equal(F.fill_pixels(x, idx[:, :0], "road"), x)
    road = F.fill_pixels(x, idx, "road", noise=0.0)
    mask = F.indices_to_mask(idx, 5, 5).unsqueeze(1)
    assert torch.equal(road[~mask], x[~mask]) and not torch.equal(road[mask], x[mask])
    with pytest.raises(ValueError, match="fill 'zero' is unknown"):
        F.fill_pixels(x, idx, "zero")


def test_importance_order_ranks_and_breaks_ties_at_random():
    score = torch.tensor([[0.1, 0.9, 0.5, 0.5, 0.0]])
    orders = {tuple(F.importance_order(score, torch.Generator().manual_seed(s))[0].tolist()) for s in range(20)}
    assert orders == {(1, 2, 3, 0, 4), (1, 3, 2, 0, 4)}


# --------------------------------------------------------------------------- behaviour on models
class Linear(nn.Module):
    def __init__(self, hidden: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        layers = [nn.Flatten(), nn.Linear(784, hidden), nn.Linear(hidden, 10)] if hidden else \
            [nn.Flatten(), nn.Linear(784, 10)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def test_randomisation_check_fails_when_the_map_ignores_the_last_layer(mnist_sample):
    _, test = mnist_sample
    x, y = test.x[:20], test.y[:20]
    # a one-unit bottleneck: saliency = a_y · w for every class, so |saliency| ranks never change
    ignores = F.faithfulness(Linear(hidden=1), x, y, settings=FAST)
    assert ignores.value("randomisation_spearman") > 0.99 and ignores.value("randomisation_check") == 0.0
    # a linear model's map is its class weight row: randomised, it is unrelated
    depends = F.faithfulness(Linear(), x, y, settings=FAST)
    assert depends.value("randomisation_spearman") < 0.3 and depends.value("randomisation_check") == 1.0
    assert "FAIL" in ignores.summary.set_index("metric").detail["randomisation_check"]


def test_trained_model_saliency_beats_random_order(trained_alexnet, mnist_sample):
    _, test = mnist_sample
    settings = F.FaithfulnessSettings(ks=(0.0, 0.1, 0.3, 0.5), n_steps=4, n_bootstrap=200)
    res = F.faithfulness(trained_alexnet, test.x[:60], test.y[:60], "uniform", settings)
    s = res.summary
    assert list(s.columns) == F.SUMMARY_COLUMNS and set(res.curves.curve) == {"top-k", "deletion", "insertion"}
    # SGT's test (training fill): salient pixels matter more than random ones
    assert res.value("topk_accuracy_auc", "uniform", "saliency") < res.value("topk_accuracy_auc", "uniform", "random")
    ratio = s[(s.metric == "deletion_ratio") & (s.fill == "road")]
    assert ratio.ci_high.iloc[0] < 1  # ROAD deletion: the map beats a random order, interval included
    assert res.value("insertion_ratio", "road", "saliency/random") > 1
    assert set(s.fill) == {"", "road", "uniform"} and "deletion_auc" not in set(s[s.fill == "uniform"].metric)
    finite = s[s.metric != "randomisation_check"]
    assert ((finite.ci_low <= finite.value + 1e-9) & (finite.value <= finite.ci_high + 1e-9)).all()
    assert 0 < res.value("gini") < 1
    top = res.curves[(res.curves.curve == "top-k") & (res.curves.order == "saliency") & (res.curves.fill == "road")]
    assert top.value.iloc[0] >= top.value.iloc[-1]  # accuracy falls as salient pixels go
    dele = res.curves[(res.curves.curve == "deletion") & (res.curves.order == "random")]
    ins = res.curves[(res.curves.curve == "insertion") & (res.curves.order == "random")]
    assert math.isclose(dele.value.iloc[-1], ins.value.iloc[0], abs_tol=0.05)  # both: everything removed


# --------------------------------------------------------------------------- cached report of a run
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir):
    cfg = C.resolve({"dataset": "mnist", "method": "sgt"}, preset="smoke")
    return experiment.run(cfg, data_dir, tmp_path_factory.mktemp("faith-results"), device="cpu", progress=False)


def test_faithfulness_report_is_cached_beside_the_run(smoke_run, data_dir, monkeypatch):
    first = F.faithfulness_report(smoke_run.run_dir, data_dir, n_per_class=2, settings=FAST)
    assert not first.cached and first.path.parent == smoke_run.run_dir.parent
    assert first.path.name.startswith(f"faithfulness-{smoke_run.run_dir.name}-")
    assert set(first.summary.method) == {"sgt"} and first.value("clean_accuracy") >= 0

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(F, "faithfulness", boom)
    again = F.faithfulness_report(smoke_run.run_dir, data_dir, n_per_class=2, settings=FAST)
    assert again.cached
    pd.testing.assert_frame_equal(again.summary, first.summary)
    pd.testing.assert_frame_equal(again.curves, first.curves)
    with pytest.raises(AssertionError, match="recomputed"):
        F.faithfulness_report(smoke_run.run_dir, data_dir, n_per_class=3, settings=FAST)
