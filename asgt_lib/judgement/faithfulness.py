"""Interpretability in numbers: how faithful, sparse and model-dependent a model's saliency maps are.

Per model, mean over test samples with 95% intervals:

* **SGT's own test** (Ismail et al. 2021): remove the top-k most salient pixels (k = 0…50% of the pixels) and
  measure accuracy; a more faithful map makes accuracy fall faster (lower area under accuracy-vs-k). Pixels are
  ranked by |saliency| (channel-averaged |∂ logit_y / ∂x|, :func:`asgt_lib.core.saliency.saliency` with
  ``absolute=True``) and picked with :func:`~asgt_lib.core.saliency.lowest_saliency_indices` on −|saliency|, so the
  removed set is M_k's construction turned upside down; they are replaced with the training fill (as M_k does)
  and, separately, with the ROAD fill below. A random ranking gives the reference curve.
* **Deletion and insertion** (Petsiuk et al. 2018): remove (deletion) or reveal (insertion) pixels most-important
  first in ``n_steps`` equal steps and record the softmax probability of the true class; the area under the
  curve (AUC, fraction of pixels on the x-axis) is normalised by the same model's curve under a *random* order:
  ``deletion_ratio`` = AUC_del(saliency) / AUC_del(random) (lower = more faithful), ``insertion_ratio`` =
  AUC_ins(saliency) / AUC_ins(random) (higher = more faithful); the interval of a ratio is a seeded bootstrap
  over the test samples.
* **Gini index** (Hurley & Rickard 2009, as in Chalasani et al. 2020) of each |saliency| map: 0 for a uniform
  map, 1 − 1/n for a map with one non-zero pixel.
* **Randomisation sanity check** (Adebayo et al. 2018): the last layer's weights of a copy of the model are
  redrawn (Gaussian, same std as the trained weights, seeded) and the Spearman rank correlation between the
  original and the randomised |saliency| maps is computed per sample; if its mean exceeds 0.5, the map barely
  depends on what the model learnt and the check fails.

**Why the headline fill is not the training fill.** SGT, SGA and ASGT train the model with a KL term that makes
its output *invariant* to replacing its lowest-saliency pixels by the training fill (uniform noise in the
image's range, :func:`asgt_lib.core.saliency.mask_pixels`). Deletion with that very fill measures partly how well the
model learnt this invariance, not how faithful its saliency is: it favours the saliency-trained models by
construction, and removed pixels of that fill are out of distribution for every other model. The headline
deletion and insertion numbers therefore use ROAD's noisy linear imputation (Rong et al. 2022), which none of the
models saw in training and which leaks little of the removed pixels' shape: every removed pixel is the weighted
mean of its 8 neighbours (weight 1/6 for the 4 direct ones, 1/12 for the diagonals, renormalised at the image
border), removed neighbours included, solved exactly as one sparse linear system per image and channel (batched
conjugate gradients, no loop over samples), plus Gaussian noise (std ``noise``) on the imputed values. SGT's
top-k test is reported with both fills; deletion and insertion with the training fill too on request
(``deletion_with_train_fill``).

The whole computation is cached beside the run directory (:func:`faithfulness_report`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from ..core.data import load_split
from ..pipeline.experiment import derived_dir, load_trained_model, run_config
from ..core.models import eval_mode
from ..core.saliency import FILLS, SaliencyConvention, lowest_saliency_indices, mask_pixels, saliency
from ..core.storage import is_finished, staging_dir, write_json

#: Fills: the library's M_k fills, and ROAD's noisy linear imputation.
ALL_FILLS = FILLS + ("road",)
#: ROAD's neighbour weights: direct neighbours 1/6, diagonal ones 1/12 (``neighbours=8``); 4: direct only.
_KERNELS = {
    8: ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12)),
    4: ((0.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
}


@dataclass(frozen=True)
class FaithfulnessSettings:
    """Everything that changes a faithfulness number (hashed into the cache key)."""

    ks: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
    n_steps: int = 10
    headline_fill: str = "road"
    deletion_with_train_fill: bool = False  # deletion/insertion also with the training fill (twice the time)
    noise: float = 0.01
    neighbours: int = 8
    absolute: bool = True
    seed: int = 0
    spearman_threshold: float = 0.5
    n_bootstrap: int = 2000
    batch_size: int = 500

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SUMMARY_COLUMNS = ["metric", "fill", "order", "value", "ci_low", "ci_high", "n", "better", "detail"]
CURVE_COLUMNS = ["curve", "fill", "order", "x", "value", "ci_low", "ci_high", "n"]


@dataclass
class FaithfulnessResult:
    """``summary``: one row per metric; ``curves``: the accuracy-vs-k and deletion/insertion curves."""

    summary: pd.DataFrame
    curves: pd.DataFrame
    seconds: float = 0.0
    cached: bool = False
    path: Path | None = None

    def value(self, metric: str, fill: str = "", order: str = "") -> float:
        s = self.summary
        row = s[(s.metric == metric) & (s.fill.fillna("") == fill) & (s.order.fillna("") == order)]
        if row.empty:
            raise KeyError(f"no summary row metric={metric} fill={fill!r} order={order!r}")
        return float(row.value.iloc[0])


# --------------------------------------------------------------------------- statistics (scipy.stats)
def mean_ci(values: torch.Tensor, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its Student-t interval over the samples (NaN interval for fewer than 2 samples)."""
    v = values.detach().double().flatten().cpu().numpy()
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    if float(v.std()) == 0.0:
        return mean, mean, mean
    lo, hi = stats.t.interval(level, len(v) - 1, loc=mean, scale=stats.sem(v))
    return mean, float(lo), float(hi)


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """Proportion and its Wilson score interval."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return successes / n, float(ci.low), float(ci.high)


def ratio_ci(num: torch.Tensor, den: torch.Tensor, n_boot: int = 2000, seed: int = 0,
             level: float = 0.95) -> tuple[float, float, float]:
    """mean(num) / mean(den) over paired samples, with a seeded percentile-bootstrap interval."""
    a = num.detach().double().flatten().cpu().numpy()
    b = den.detach().double().flatten().cpu().numpy()
    ratio = float(a.mean() / b.mean())
    if len(a) < 2:
        return ratio, float("nan"), float("nan")
    res = stats.bootstrap((a, b), lambda p, q, axis: p.mean(axis) / q.mean(axis), paired=True, vectorized=True,
                          n_resamples=n_boot, confidence_level=level, method="percentile",
                          random_state=np.random.default_rng(seed))
    return ratio, float(res.confidence_interval.low), float(res.confidence_interval.high)


def gini(values: torch.Tensor) -> torch.Tensor:
    """Gini index of each row of |values| (B, n) -> (B,): 0 uniform, 1 − 1/n one non-zero entry.

    G = 1 − 2 Σ_k (c_(k) / ‖c‖₁) · (n − k + ½) / n with c sorted ascending (Hurley & Rickard 2009).
    An all-zero row has G = 0.
    """
    c = values.detach().abs().flatten(1).double().sort(dim=1).values
    n = c.shape[1]
    total = c.sum(1, keepdim=True)
    k = torch.arange(1, n + 1, dtype=torch.float64, device=c.device)
    g = 1 - 2 * ((c / total.clamp_min(1e-300)) * ((n - k + 0.5) / n)).sum(1)
    return torch.where(total.squeeze(1) > 0, g, torch.zeros_like(g)).float()


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of rows of (B, ...) tensors -> (B,); NaN for a constant row.

    Ties share their mean rank (``scipy.stats.rankdata``); ρ is the Pearson correlation of the ranks.
    """
    ra = stats.rankdata(a.detach().flatten(1).double().cpu().numpy(), axis=1)
    rb = stats.rankdata(b.detach().flatten(1).double().cpu().numpy(), axis=1)
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    den = np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, (ra * rb).sum(1) / den, np.nan)
    return torch.from_numpy(rho).float()


def auc(x: torch.Tensor | list[float], y: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under each row of ``y`` (..., m) over the grid ``x`` (m,), divided by x's range."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y).double()
    width = x[-1] - x[0]
    area = ((y[..., 1:] + y[..., :-1]) / 2 * (x[1:] - x[:-1])).sum(-1)
    return (area / width).float()


# --------------------------------------------------------------------------- removal and fills
def indices_to_mask(indices: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, n) flat pixel indices -> (B, H, W) boolean mask of those pixels."""
    mask = torch.zeros(indices.shape[0], height * width, dtype=torch.bool, device=indices.device)
    mask.scatter_(1, indices, True)
    return mask.view(-1, height, width)


def noisy_linear_impute(
    x: torch.Tensor, removed: torch.Tensor, noise: float = 0.01, neighbours: int = 8,
    generator: torch.Generator | None = None, tol: float = 1e-4, max_iter: int = 1000,
) -> torch.Tensor:
    """ROAD's noisy linear imputation: removed pixels become the weighted mean of their neighbours, plus noise.

    ``x`` (B, C, H, W), ``removed`` (B, H, W) bool (one mask for every channel). For each image and channel the
    values u on the removed set U solve d_i·u_i − Σ_j w_ij·u_j = Σ_{j kept} w_ij·x_j, i ∈ U (j over the in-image
    neighbours, w from the 3×3 kernel, d_i = Σ_j w_ij): the graph-Laplacian system, symmetric positive definite
    whenever a pixel is kept. It is solved by conjugate gradients batched over all images and channels. An
    image with every pixel removed gets its own per-channel mean. Gaussian noise of std ``noise`` is then added
    to the imputed values only, and the result clipped to [0, 1].
    """
    if neighbours not in _KERNELS:
        raise ValueError(f"neighbours={neighbours} is not supported; allowed values: 4, 8")
    b, c, h, w = x.shape
    x = x.detach()
    rem = removed.to(x.device).view(b, 1, h, w).expand(b, c, h, w).reshape(b * c, 1, h, w).to(x.dtype)
    keep = 1 - rem
    xs = x.reshape(b * c, 1, h, w)
    kernel = torch.tensor(_KERNELS[neighbours], dtype=x.dtype, device=x.device).view(1, 1, 3, 3)

    def conv(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, kernel, padding=1)

    degree = conv(torch.ones_like(xs))

    def apply(v: torch.Tensor) -> torch.Tensor:  # A·v on U (v is zero outside U)
        return rem * (degree * v - conv(v))

    rhs = rem * conv(xs * keep)
    n_kept = keep.flatten(1).sum(1)
    solvable = (n_kept > 0).view(-1, 1, 1, 1).to(x.dtype)
    # initial guess: a coarse-to-fine (pull-push) average of the kept pixels, which leaves CG only the fine detail
    u = rem * torch.where(solvable > 0, _pull_push(xs * keep, keep), xs.flatten(1).mean(1).view(-1, 1, 1, 1))
    r = (rhs - apply(u)) * solvable
    p = r.clone()
    rs = (r * r).flatten(1).sum(1)
    scale = (rhs * rhs).flatten(1).sum(1).clamp_min(1e-30)
    for _ in range(max_iter):
        if bool((rs <= (tol * tol) * scale).all()):
            break
        ap = apply(p)
        alpha = rs / (p * ap).flatten(1).sum(1).clamp_min(1e-30)
        u = u + alpha.view(-1, 1, 1, 1) * p
        r = r - alpha.view(-1, 1, 1, 1) * ap
        rs_new = (r * r).flatten(1).sum(1)
        p = r + (rs_new / rs.clamp_min(1e-30)).view(-1, 1, 1, 1) * p
        rs = rs_new
    if noise > 0:
        eps = torch.randn(u.shape, generator=generator, device=x.device, dtype=x.dtype) if generator is not None \
            else torch.randn_like(u)
        u = u + noise * eps
    out = xs * keep + (u * rem).clamp(0.0, 1.0)
    return out.view(b, c, h, w)


def _pull_push(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted average of the kept pixels at the finest scale where a cell has any, upsampled from coarser
    scales elsewhere (``values`` = x·keep, ``weights`` = keep, both (N, 1, H, W))."""
    h, w = values.shape[-2:]
    est = values / weights.clamp_min(1e-12)
    if h <= 1 and w <= 1:
        return est
    coarse = _pull_push(torch.nn.functional.avg_pool2d(values, 2, ceil_mode=True),
                        torch.nn.functional.avg_pool2d(weights, 2, ceil_mode=True))
    up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return torch.where(weights > 0, est, up)


def fill_pixels(
    x: torch.Tensor, indices: torch.Tensor, fill: str, generator: torch.Generator | None = None,
    noise: float = 0.01, neighbours: int = 8,
) -> torch.Tensor:
    """``x`` with the pixels ``indices`` (B, n) of every channel replaced: ``uniform``/``mean`` as M_k
    (:func:`asgt_lib.core.saliency.mask_pixels`), ``road`` by :func:`noisy_linear_impute`."""
    if fill not in ALL_FILLS:
        raise ValueError(f"fill '{fill}' is unknown; allowed values: {', '.join(ALL_FILLS)}")
    if indices.shape[1] == 0:
        return x.detach().clone()
    if fill == "road":
        h, w = x.shape[-2:]
        return noisy_linear_impute(x, indices_to_mask(indices, h, w), noise, neighbours, generator)
    return mask_pixels(x, indices, fill, generator)


def importance_order(score: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flat pixel indices of each map (B, H, W) from most to least important, exact ties in random order."""
    s = score.detach().flatten(1)
    perm = torch.rand(s.shape, generator=generator, device=s.device).argsort(1)
    order = s.gather(1, perm).argsort(dim=1, descending=True, stable=True)
    return perm.gather(1, order)


def random_order(shape: tuple[int, int], generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """A uniformly random order of the H·W pixels for each of B samples: (B, H·W)."""
    b, n = shape
    return torch.rand((b, n), generator=generator, device=device).argsort(1)


@torch.no_grad()
def _probs(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat([torch.softmax(model(x[i:i + batch_size].to(device)), 1).cpu()
                      for i in range(0, len(x), batch_size)])


# --------------------------------------------------------------------------- the metrics
def top_k_removal(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, score: torch.Tensor | None, ks: tuple[float, ...],
    fill: str, generator: torch.Generator | None = None, batch_size: int = 500, noise: float = 0.01,
    neighbours: int = 8,
) -> torch.Tensor:
    """Correctness (B, len(ks)) after removing the ⌊k·H·W⌋ highest-``score`` pixels (``score=None``: random)."""
    h, w = x.shape[-2:]
    out = []
    for k in ks:
        if k <= 0:
            idx = torch.zeros(len(x), 0, dtype=torch.long)
        elif score is None:
            idx = random_order((len(x), h * w), generator)[:, :int(k * h * w)].sort(1).values
        else:
            idx = lowest_saliency_indices(-score, k)
        xk = fill_pixels(x, idx, fill, generator, noise, neighbours)
        out.append(_probs(model, xk, batch_size).argmax(1) == y)
    return torch.stack(out, 1)


def deletion_insertion(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor, n_steps: int, fill: str,
    generator: torch.Generator | None = None, batch_size: int = 500, noise: float = 0.01, neighbours: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """True-class probability along deletion and insertion of pixels in ``order`` (B, H·W), most important first.

    Returns (fractions (n_steps+1,), deletion (B, n_steps+1), insertion (B, n_steps+1)). At fraction f the
    first round(f·H·W) pixels of the order are removed (deletion) or are the only ones kept (insertion).
    """
    n_pix = order.shape[1]
    fractions = torch.linspace(0, 1, n_steps + 1)
    dele, ins = [], []
    for f in fractions.tolist():
        n = int(round(f * n_pix))
        for removed, acc in ((order[:, :n], dele), (order[:, n:], ins)):
            xr = fill_pixels(x, removed, fill, generator, noise, neighbours)
            acc.append(_probs(model, xr, batch_size).gather(1, y.view(-1, 1)).squeeze(1))
    return fractions, torch.stack(dele, 1), torch.stack(ins, 1)


def randomise_last_layer(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose last ``nn.Linear`` (else last conv) has Gaussian weights and bias of the same
    std as the trained ones (a seeded draw): the model-parameter randomisation of Adebayo et al. (2018)."""
    clone = copy.deepcopy(model)
    layers = [m for m in clone.modules() if isinstance(m, nn.Linear)] or \
        [m for m in clone.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if not layers:
        raise ValueError("the model has no Linear or convolution layer to randomise")
    last = layers[-1]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("weight", "bias"):
            p = getattr(last, name, None)
            if p is None:
                continue
            std = p.std().item() if p.numel() > 1 else 0.0
            new = torch.randn(p.shape, generator=g) * (std if std > 0 else 0.01)
            p.copy_(new.to(p.device, p.dtype))
    return clone


def faithfulness(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, train_fill: str = "uniform",
    settings: FaithfulnessSettings | None = None,
) -> FaithfulnessResult:
    """Every metric of the module docstring for ``model`` on the test points ``x`` (in [0, 1]), ``y``.

    ``train_fill``: the fill of M_k in the model's training (the run's ``mask_fill``): SGT's top-k test runs with
    it and with the headline fill (``settings.headline_fill``, ROAD by default); deletion and insertion run with
    the headline fill, and with the training fill too if ``settings.deletion_with_train_fill``.
    """
    start = time.perf_counter()
    s = settings or FaithfulnessSettings()
    if s.headline_fill not in ALL_FILLS or train_fill not in ALL_FILLS:
        raise ValueError(f"fills must be among {', '.join(ALL_FILLS)}")
    device = next(model.parameters()).device
    x, y = x.detach().cpu(), y.detach().cpu()
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    fills = list(dict.fromkeys([s.headline_fill, train_fill]))

    def summary(metric: str, fill: str, order: str, stats: tuple[float, float, float], n: int, better: str,
                detail: str) -> None:
        rows.append({"metric": metric, "fill": fill, "order": order, "value": stats[0], "ci_low": stats[1],
                     "ci_high": stats[2], "n": n, "better": better, "detail": detail})

    with eval_mode(model):
        sal = saliency(model, x.to(device), y.to(device), SaliencyConvention(absolute=s.absolute)).cpu()
        correct = _probs(model, x, s.batch_size).argmax(1) == y
        summary("clean_accuracy", "", "", wilson_ci(int(correct.sum()), len(y)), len(y), "higher",
                "accuracy on the test points (Wilson interval)")
        score = sal.abs()

        # SGT's test: accuracy after removing the top-k pixels
        for fill in fills:
            for order in ("saliency", "random"):
                g = torch.Generator().manual_seed(s.seed)
                ok = top_k_removal(model, x, y, score if order == "saliency" else None, s.ks, fill, g,
                                   s.batch_size, s.noise, s.neighbours)
                for j, k in enumerate(s.ks):
                    curves.append({"curve": "top-k", "fill": fill, "order": order, "x": float(k),
                                   **_stats(wilson_ci(int(ok[:, j].sum()), len(y))), "n": len(y)})
                area = auc(list(s.ks), ok.float()) if len(s.ks) > 1 else ok.float()[:, 0]
                summary("topk_accuracy_auc", fill, order, mean_ci(area), len(y), "lower" if order == "saliency"
                        else "", f"mean accuracy over k ∈ [{min(s.ks):g}, {max(s.ks):g}] after removing the top-k "
                        f"{'most salient' if order == 'saliency' else 'random'} pixels (area under accuracy-vs-k)")

        # deletion / insertion, normalised by the random order
        for fill in (fills if s.deletion_with_train_fill else fills[:1]):
            per = {}
            for order in ("saliency", "random"):
                g = torch.Generator().manual_seed(s.seed)
                o = importance_order(score, g) if order == "saliency" else random_order(score.flatten(1).shape, g)
                fr, dele, ins = deletion_insertion(model, x, y, o, s.n_steps, fill, g, s.batch_size, s.noise,
                                                   s.neighbours)
                for name, curve in (("deletion", dele), ("insertion", ins)):
                    per[(name, order)] = auc(fr, curve)
                    for j, f in enumerate(fr.tolist()):
                        curves.append({"curve": name, "fill": fill, "order": order, "x": f,
                                       **_stats(mean_ci(curve[:, j])), "n": len(y)})
            for name, better in (("deletion", "lower"), ("insertion", "higher")):
                for order in ("saliency", "random"):
                    summary(f"{name}_auc", fill, order, mean_ci(per[(name, order)]), len(y),
                            better if order == "saliency" else "",
                            f"area under the true-class probability as pixels are "
                            f"{'removed' if name == 'deletion' else 'revealed'} ({order} order)")
                summary(f"{name}_ratio", fill, "saliency/random",
                        ratio_ci(per[(name, "saliency")], per[(name, "random")], s.n_bootstrap, s.seed), len(y),
                        better, f"{name} AUC of the saliency order / of a random order (bootstrap interval); "
                        f"{'< 1' if name == 'deletion' else '> 1'} means the map beats chance")

        summary("gini", "", "", mean_ci(gini(score)), len(y), "higher",
                "Gini index of the |saliency| map (0 uniform, 1 one pixel)")

        randomised = randomise_last_layer(model, s.seed)
        sal_rand = saliency(randomised, x.to(device), y.to(device), SaliencyConvention(absolute=s.absolute)).cpu()
        rho = spearman(score, sal_rand.abs())
        rho = rho[~rho.isnan()]
        stats = mean_ci(rho)
        passed = bool(stats[0] <= s.spearman_threshold)
        summary("randomisation_spearman", "", "", stats, len(rho), "lower",
                "Spearman rank correlation of |saliency| before and after randomising the last layer")
        summary("randomisation_check", "", "", (float(passed), float("nan"), float("nan")), len(rho), "higher",
                f"{'PASS' if passed else 'FAIL'}: mean ρ = {stats[0]:.2f} "
                f"{'≤' if passed else '>'} {s.spearman_threshold:g} (Adebayo et al. 2018)")

    return FaithfulnessResult(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), pd.DataFrame(curves, columns=CURVE_COLUMNS),
                              time.perf_counter() - start)


def _stats(t: tuple[float, float, float]) -> dict[str, float]:
    return {"value": t[0], "ci_low": t[1], "ci_high": t[2]}


# --------------------------------------------------------------------------- runs on disk, cached
def faithfulness_key(run_dir: Path, n_per_class: int, settings: FaithfulnessSettings) -> dict[str, Any]:
    """What :func:`faithfulness_report`'s numbers depend on (its cache is ``derived_dir(run_dir, "faithfulness",
    key)``): the run's hash, ``n_per_class``, the run's subset seed and ``settings``."""
    cfg, raw = run_config(Path(run_dir))
    return {"run": raw["run_hash"], "n_per_class": n_per_class, "subset_seed": cfg.subset_seed,
            "settings": settings.to_dict()}


def faithfulness_report(
    run_dir: Path,
    data_dir: Path | None = None,
    n_per_class: int = 10,
    settings: FaithfulnessSettings | None = None,
    device: str | torch.device | None = None,
    force: bool = False,
) -> FaithfulnessResult:
    """The faithfulness metrics of a finished run, computed once and cached beside the run directory.

    The cache directory (:func:`asgt_lib.pipeline.experiment.derived_dir`, kind ``faithfulness``) holds ``summary.csv``,
    ``curves.csv`` and ``meta.json``; it is keyed by the run's hash, ``n_per_class`` and ``settings`` and written
    atomically, so a second call only reads it. The training fill is the run's ``mask_fill``.
    """
    settings = settings or FaithfulnessSettings()
    run_dir = Path(run_dir)
    cfg, _ = run_config(run_dir)
    key = faithfulness_key(run_dir, n_per_class, settings)
    out = derived_dir(run_dir, "faithfulness", key)
    if not force and is_finished(out):
        return _read(out)
    model, _, _ = load_trained_model(run_dir, data_dir, device)
    test = load_split(cfg.dataset, False, data_dir, n_per_class, cfg.subset_seed)
    result = faithfulness(model, test.x, test.y, cfg.mask_fill, settings)
    ident = {"dataset": cfg.dataset, "method": cfg.method, "name": cfg.label, "seed": cfg.seed, "preset": cfg.preset}
    with staging_dir(out) as stage:
        result.summary.assign(**ident).to_csv(stage / "summary.csv", index=False)
        result.curves.assign(**ident).to_csv(stage / "curves.csv", index=False)
        write_json(stage / "meta.json", {"seconds": result.seconds, "key": key, "n_test": len(test),
                                         "run_dir": str(run_dir)})
    return _read(out, cached=False)


def _read(out: Path, cached: bool = True) -> FaithfulnessResult:
    meta = json.loads((out / "meta.json").read_text())
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])
    for col in ("fill", "order", "better", "detail"):
        summary[col] = summary[col].fillna("")
    return FaithfulnessResult(summary, pd.read_csv(out / "curves.csv"), meta["seconds"], cached, out)
