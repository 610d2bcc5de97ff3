"""Robustness sanity checks for one trained model: is its robust accuracy real, or an artefact of the evaluation?

The checks follow Carlini et al. (2019, "On evaluating adversarial robustness") and Athalye et al. (2018): accuracy
must fall with ε and reach (near) zero at a large ε; iterative attacks must beat one-step ones; more steps and
restarts must not change the answer; a gradient-free or a transfer attack must not beat the white-box one
(that would mean the gradients mislead: gradient masking); a margin loss must not beat cross-entropy by much;
and AutoAttack (Croce & Hein 2020) gives the reference number at the standard budget.

What runs, all at the standard budget ε_std (MNIST 0.3, CIFAR-10 8/255) unless said, on the clean-correct points
(a misclassified point counts as not robust); row names with the default settings:

* ``fgsm``: one signed step of ε (:func:`asgt_lib.core.attacks.fgsm`);
* ``pgd-10``: the run's PGD (:func:`asgt_lib.core.attacks.pgd`, 10 steps of 2.5·ε/10, seeded random start, scored at
  the last iterate, exactly as the run's evaluation);
* ``pgd-100x1`` / ``pgd-100x5``: PGD with 100 steps of 2.5·ε/100 and 1 / 5 random restarts
  (:func:`asgt_lib.core.attacks.pgd_search`): a point counts as broken as soon as *any* iterate of any restart is
  misclassified, and restarts run only on the points still unbroken;
* ``pgd-cw-100x1``: the same search (1 restart) on the Carlini-Wagner margin max_{j≠y} z_j − z_y instead of
  cross-entropy: the margin-loss attack beside ``pgd-100x1``;
* ``transfer``: ``pgd-10`` crafted on the ST model of the same dataset and seed, scored on this model;
* ``autoattack``: the *standard* AutoAttack (``version='standard'`` of github.com/fra31/auto-attack), assembled
  from torchattacks 3.5.1 parts with the official settings (:func:`autoattack_parts`): APGD-CE (``APGD``, loss
  ``ce``, 100 steps, 1 restart, ρ 0.75, EOT 1) → APGD-T (``APGDT``, targeted DLR loss, 9 target classes,
  100 steps, 1 restart, ρ 0.75) → FAB-T (``FAB(multi_targeted=True)``, 9 target classes, 100 steps, 1 restart,
  α_max 0.1, η 1.05, β 0.9) → Square (``Square``, 5000 queries, p_init 0.8, margin loss, 1 restart,
  ``resc_schedule=False``); every attack is seeded with ``settings.seed`` and runs only on the points that the
  attacks before it left robust, as the official ``run_standard_evaluation`` does (one shortcut: the Square
  run also covers the ``pgd+square`` points below in the same batch; Square treats points independently apart
  from the random draws they share, so this changes which random squares a point sees, not the attack). The rows
  ``autoattack:<part>`` give the accuracy after each part. torchattacks' own ``AutoAttack`` class is *not*
  used: it leaves APGD, APGD-T and FAB at their 10-step defaults, Square at ``resc_schedule=True``, and seeds
  them from the clock. ``apgd-ce`` (the first part, which attacks every clean-correct point) also counts as an
  attack of its own;
* ``pgd+square``: Square (same settings) on the points that white-box PGD (``pgd-10`` and ``pgd-100x5``) left
  (in AutoAttack's Square run when there is one): the accuracy under PGD *and* Square.
  Square breaking more than 3 points that PGD could not means the gradients mislead (gradient masking). This
  is stricter than comparing the two accuracies (Square alone can only be weaker than PGD ∪ Square) and far
  cheaper, since Square, which needs up to 5000 forward passes per point, then runs only where PGD failed;
* ``worst-case``: per example, robust only if robust to every attack above (the mean over inputs of the minimum
  over attacks, never higher than any single attack's accuracy);
* and, at a large ε (MNIST 0.5, CIFAR-10 0.1), ``pgd-10`` once more.

Every adversarial example is projected onto the ε-ball ∩ [0, 1] before it is scored. Every attack seeds its own
generator and the global RNG is restored afterwards (torchattacks reseeds it).

The checks (:func:`evaluate_checks`; tolerances in :class:`SanitySettings`, 1 point = 0.01):

=============================  ==================================================================================
``accuracy_falls_with_eps``    no attack's accuracy rises from one ε to the next in the run's robustness table
``pgd_beats_fgsm_table``       PGD ≤ FGSM + 1 point at every ε of the run's table
``breaks_at_large_eps``        ``pgd-10`` at the large ε ≤ 10%
``pgd_beats_fgsm``             ``pgd-10`` ≤ ``fgsm`` + 1 point at ε_std
``pgd_converged``              ``pgd-100x5`` and ``pgd-10`` differ by at most 1 point (both reported)
``no_masking_square``          Square breaks at most 3 points that white-box PGD left (``pgd+square``)
``no_masking_transfer``        ``transfer`` ≥ white-box PGD − 3 points (only with an ST model)
``margin_loss_not_stronger``   ``pgd-cw-100x1`` ≥ ``pgd-100x1`` − 3 points
``autoattack_vs_pgd``          ``autoattack`` ≥ ``pgd-10`` − 3 points: the run's PGD does not overstate robustness
``worst_case_vs_best_attack``  ``worst-case`` ≥ the strongest single attack − 3 points
=============================  ==================================================================================

Cost: the attacks are cheap on points they break (the PGD searches stop, Square stops querying), so a model
without robustness costs about one APGD-CE run (100 gradient steps on every clean-correct point): ~6 s for the
quick MNIST AlexNet or CIFAR-10 ResNet on 10 images per class on 2 idle CPU cores. Every point that survives
costs the full budget of every attack (500 PGD steps, 100 + 900 APGD steps, 900 FAB steps, 5000 Square
queries): ~45 s for the quick CIFAR-10 ASGT model, 16 of whose 100 points survive PGD. On cores shared with
other jobs these times grew 5-10 fold. ``SanitySettings`` makes the budget smaller for tests; the defaults are
the standard budgets above.

The results of a run are cached beside its directory (:func:`sanity_report`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pandas as pd
import torch
from torch import nn

from ..core.attacks import fgsm, pgd, pgd_search, project
from ..core.data import load_split
from ..pipeline.experiment import (DEFAULT_ATTACK_STEP, derived_dir, load_trained_model, read_robustness,
                                   run_config, weights_record)
from ..core.models import eval_mode, predict
from ..core.storage import is_finished, staging_dir, write_json

#: The standard L∞ budgets of the robustness literature (Madry et al. 2018; RobustBench).
STANDARD_EPS = {"mnist": 0.3, "cifar10": 8 / 255}
#: Budgets at which any classifier must fall to (near) chance: half the pixel range on MNIST, 0.1 on CIFAR-10.
LARGE_EPS = {"mnist": 0.5, "cifar10": 0.1}

#: Published reference figures (robust accuracy under AutoAttack at the standard budget) for the book page.
REFERENCE = (
    {"dataset": "mnist", "eps": 0.3, "model": "Madry et al. (2018) PGD adversarial training, MNIST challenge CNN",
     "attack": "AutoAttack", "accuracy": 0.8850, "accuracy_text": "88.50%",
     "source": "Croce & Hein (2020), AutoAttack (an earlier AutoAttack version listed 88.43% in its README)"},
    {"dataset": "cifar10", "eps": 8 / 255, "model": "PGD / FGSM-RS adversarial training, (PreAct) ResNet-18",
     "attack": "AutoAttack", "accuracy": 0.435,
     "accuracy_text": "≈43–44% (FGSM-RS, Wong et al. 2020: 43.21% on RobustBench)",
     "source": "RobustBench CIFAR-10 L∞ leaderboard; Croce & Hein (2020)"},
)


def reference_table() -> pd.DataFrame:
    """:data:`REFERENCE` as a table (dataset, eps, model, attack, accuracy, accuracy_text, source)."""
    return pd.DataFrame(list(REFERENCE))


@dataclass(frozen=True)
class SanitySettings:
    """Everything that changes a sanity number (it is hashed into the cache key). Defaults: the text above."""

    seed: int = 0
    standard_eps: float | None = None  # None: STANDARD_EPS[dataset]
    large_eps: float | None = None  # None: LARGE_EPS[dataset]
    pgd_steps: int = 10
    pgd_step_factor: float = 2.5
    strong_steps: int = 100
    strong_restarts: int = 5
    aa_steps: int = 100
    aa_targets: int = 9
    square_queries: int = 5000
    square_p_init: float = 0.8
    autoattack: bool = True
    # pass/fail thresholds (fractions, 0.01 = 1 point)
    max_large_eps_accuracy: float = 0.10
    tol_fgsm: float = 0.01
    tol_steps: float = 0.01
    tol_masking: float = 0.03
    tol_autoattack: float = 0.03
    batch_size: int = 500

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def names(self) -> dict[str, str]:
        """Row names of the attacks that depend on the settings: ``pgd`` (the run's PGD), ``pgd1`` and
        ``pgdR`` (the early-stopping search, 1 and R restarts) and ``cw`` (the search on the CW margin)."""
        st, r = self.strong_steps, self.strong_restarts
        return {"pgd": f"pgd-{self.pgd_steps}", "pgd1": f"pgd-{st}x1", "pgdR": f"pgd-{st}x{r}",
                "cw": f"pgd-cw-{st}x1"}


CHECK_COLUMNS = ["check", "passed", "value", "baseline", "tolerance", "eps", "detail"]
ATTACK_COLUMNS = ["attack", "eps", "accuracy", "n", "n_attacked", "seconds"]


@dataclass
class SanityResult:
    """The checks (one row each), the accuracy under every attack, and a one-line verdict."""

    checks: pd.DataFrame
    attacks: pd.DataFrame
    verdict: str
    seconds: float = 0.0
    cached: bool = False
    path: Path | None = None
    #: :func:`~asgt_lib.pipeline.experiment.weights_record` of the model and of the ST model (transfer source)
    #: the report checked; None in reports written before it was recorded.
    weights: dict[str, Any] | None = None
    st_weights: dict[str, Any] | None = None
    #: Per-example robust flags (N,) of every attack at the standard ε (in memory only, not cached).
    flags: dict[str, torch.Tensor] | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks.passed.all())


# --------------------------------------------------------------------------- small helpers
@contextlib.contextmanager
def _rng_guard(device: torch.device) -> Iterator[None]:
    """Restore the global RNG (CPU and this CUDA device) afterwards: torchattacks reseeds it."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _attack_points(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, alive: torch.Tensor,
    craft: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], eps: float, batch_size: int,
    judge: nn.Module | None = None,
) -> torch.Tensor:
    """Robust flags after attacking the points ``alive`` with ``craft(xb, yb) -> x_adv``; others stay as given.

    ``judge`` (default ``model``) is the model the adversarial examples are scored on.
    """
    judge = judge or model
    device = _model_device(judge)
    robust = alive.clone()
    idx = alive.nonzero().flatten()
    for i in range(0, len(idx), batch_size):
        b = idx[i:i + batch_size]
        xb, yb = x[b].to(device), y[b].to(device)
        with torch.enable_grad():
            x_adv = craft(xb, yb)
        x_adv = project(x_adv.detach().to(device), xb, eps)
        with torch.no_grad():
            robust[b] = (judge(x_adv).argmax(1) == yb).cpu()
    return robust


# --------------------------------------------------------------------------- AutoAttack from parts
def autoattack_parts(
    model: nn.Module, eps: float, settings: SanitySettings, n_classes: int = 10, square: Any = None,
) -> dict[str, Any]:
    """The four attacks of standard AutoAttack, in order, built from torchattacks with the official settings."""
    import torchattacks

    s, steps, targets = settings.seed, settings.aa_steps, settings.aa_targets
    return {
        "apgd-ce": torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=s, loss="ce",
                                     eot_iter=1, rho=0.75),
        "apgd-t": _with_targets(torchattacks.APGDT(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=s,
                                                   eot_iter=1, rho=0.75, n_classes=n_classes), targets),
        "fab-t": _with_targets(torchattacks.FAB(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=s,
                                                alpha_max=0.1, eta=1.05, beta=0.9, multi_targeted=True,
                                                n_classes=n_classes), targets),
        "square": square if square is not None else square_attack(model, eps, settings),
    }


def _with_targets(attack: Any, n_targets: int) -> Any:
    attack.n_target_classes = n_targets
    return attack


def square_attack(model: nn.Module, eps: float, settings: SanitySettings) -> Any:
    import torchattacks

    return torchattacks.Square(model, norm="Linf", eps=eps, n_queries=settings.square_queries, n_restarts=1,
                               p_init=settings.square_p_init, loss="margin", resc_schedule=False,
                               seed=settings.seed)


# --------------------------------------------------------------------------- the checks
def sanity_checks(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    dataset: str,
    st_model: nn.Module | None = None,
    robustness: pd.DataFrame | None = None,
    settings: SanitySettings | None = None,
    label: str = "",
) -> SanityResult:
    """Run every attack and check on ``model`` (inputs in [0, 1]) at the test points ``x``, ``y``.

    ``st_model``: the ST model of the same dataset and seed (source of the transfer attack; without it the
    transfer check is left out). ``robustness``: the run's robustness table (columns attack, eps, accuracy);
    without it the two checks that read it are left out.
    """
    start = time.perf_counter()
    settings = settings or SanitySettings()
    eps = settings.standard_eps if settings.standard_eps is not None else STANDARD_EPS[dataset]
    large = settings.large_eps if settings.large_eps is not None else LARGE_EPS[dataset]
    bs, seed, nm = settings.batch_size, settings.seed, settings.names
    device = _model_device(model)
    x, y = x.detach().cpu(), y.detach().cpu()
    robust: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []

    def record(name: str, flags: torch.Tensor, at: float, n_attacked: int, t0: float) -> float:
        acc = flags.float().mean().item()
        rows.append({"attack": name, "eps": at, "accuracy": acc, "n": len(flags), "n_attacked": n_attacked,
                     "seconds": round(time.perf_counter() - t0, 3)})
        return acc

    def pgd10(m: nn.Module, at: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        alpha = settings.pgd_step_factor * at / settings.pgd_steps
        return lambda xb, yb: pgd(m, xb, yb, at, steps=settings.pgd_steps, alpha=alpha,
                                  generator=_generator(xb.device, seed))

    others = [m for m in (model, st_model) if m is not None]
    with contextlib.ExitStack() as stack, _rng_guard(device):
        for m in others:
            stack.enter_context(eval_mode(m))
        t0 = time.perf_counter()
        clean = predict(model, x, bs) == y
        n_clean = int(clean.sum())
        record("clean", clean, 0.0, 0, t0)

        t0 = time.perf_counter()
        robust["fgsm"] = _attack_points(model, x, y, clean, lambda xb, yb: fgsm(model, xb, yb, eps), eps, bs)
        record("fgsm", robust["fgsm"], eps, n_clean, t0)

        t0 = time.perf_counter()
        robust[nm["pgd"]] = _attack_points(model, x, y, clean, pgd10(model, eps), eps, bs)
        record(nm["pgd"], robust[nm["pgd"]], eps, n_clean, t0)

        t0 = time.perf_counter()
        hist = pgd_search(model, x, y, eps, settings.strong_steps, settings.strong_restarts, seed=seed,
                          alive=clean, batch_size=bs)
        robust[nm["pgd1"]], robust[nm["pgdR"]] = hist[0], hist[-1]
        record(nm["pgd1"], hist[0], eps, n_clean, t0)
        record(nm["pgdR"], hist[-1], eps, n_clean, t0)

        t0 = time.perf_counter()
        robust[nm["cw"]] = pgd_search(
            model, x, y, eps, settings.strong_steps, 1, loss="cw", seed=seed, alive=clean, batch_size=bs)[0]
        record(nm["cw"], robust[nm["cw"]], eps, n_clean, t0)

        if st_model is not None:
            t0 = time.perf_counter()
            robust["transfer"] = _attack_points(st_model, x, y, clean, pgd10(st_model, eps), eps, bs, judge=model)
            record("transfer", robust["transfer"], eps, n_clean, t0)

        white = robust[nm["pgd"]] & robust[nm["pgdR"]]
        square = square_attack(model, eps, settings)
        square_robust = torch.zeros_like(clean)  # Square's verdict, on the points where it ran
        square_ran = torch.zeros_like(clean)
        if settings.autoattack:
            aa_start = time.perf_counter()
            parts = autoattack_parts(model, eps, settings, square=square)
            aa = clean.clone()
            for name in ("apgd-ce", "apgd-t", "fab-t"):
                t0 = time.perf_counter()
                n_att = int(aa.sum())
                atk = parts[name]
                aa = _attack_points(model, x, y, aa, lambda xb, yb, atk=atk: atk(xb, yb), eps, bs)
                if name == "apgd-ce":
                    robust["apgd-ce"] = aa.clone()
                record(f"autoattack:{name}", aa, eps, n_att, t0)
            # one Square run serves AutoAttack (its survivors) and pgd+square (PGD's survivors) together
            t0 = time.perf_counter()
            n_att, targets = int(aa.sum()), aa | white
            flags = _attack_points(model, x, y, targets, lambda xb, yb: square(xb, yb), eps, bs)
            square_robust[targets] = flags[targets]
            square_ran = targets
            aa = aa & flags
            record("autoattack:square", aa, eps, n_att, t0)
            robust["autoattack"] = aa
            record("autoattack", aa, eps, n_clean, aa_start)
        t0 = time.perf_counter()
        rest = white & ~square_ran
        flags = _attack_points(model, x, y, rest, lambda xb, yb: square(xb, yb), eps, bs)
        square_robust[rest] = flags[rest]
        robust["pgd+square"] = white & square_robust
        record("pgd+square", robust["pgd+square"], eps, int(white.sum()), t0)

        worst = clean.clone()
        for attack_flags in robust.values():
            worst &= attack_flags
        record("worst-case", worst, eps, n_clean, start)

        t0 = time.perf_counter()
        robust_large = _attack_points(model, x, y, clean, pgd10(model, large), large, bs)
        record(nm["pgd"], robust_large, large, n_clean, t0)

    attacks = pd.DataFrame(rows, columns=ATTACK_COLUMNS)
    acc = {k: v.float().mean().item() for k, v in robust.items()}
    acc.update({"white-box": white.float().mean().item(), "worst-case": worst.float().mean().item(),
                "large-eps": robust_large.float().mean().item()})
    checks = evaluate_checks(acc, robustness, settings, eps, large)
    seconds = time.perf_counter() - start
    flags = {**robust, "clean": clean, "white-box": white, "worst-case": worst, "large-eps": robust_large}
    return SanityResult(checks, attacks, verdict(checks, attacks, label), seconds, flags=flags)


#: Keys of ``acc`` in :func:`evaluate_checks` that are not single attacks.
_AGGREGATES = ("white-box", "worst-case", "large-eps")


def evaluate_checks(
    acc: Mapping[str, float], robustness: pd.DataFrame | None, s: SanitySettings, eps: float, large: float,
) -> pd.DataFrame:
    """Pass or fail of every check from the accuracies (fractions) under each attack at the standard ε.

    ``acc`` holds one entry per attack (``fgsm``, the four of :attr:`SanitySettings.names`, ``pgd+square``,
    optionally ``transfer``, ``apgd-ce`` and ``autoattack``) and the aggregates ``white-box`` (robust to both
    PGD runs), ``worst-case`` (robust to every attack) and ``large-eps`` (the run's PGD at ``large``).
    ``robustness`` is the run's table (attack, eps, accuracy) or None.
    """
    rows = []

    def add(check: str, passed: bool, value: float, baseline: float | None, tol: float, at: float | None,
            detail: str) -> None:
        rows.append({"check": check, "passed": bool(passed), "value": float(value),
                     "baseline": float("nan") if baseline is None else float(baseline), "tolerance": float(tol),
                     "eps": float("nan") if at is None else float(at), "detail": detail})

    def pct(v: float) -> str:
        return f"{100 * v:.1f}%"

    if robustness is not None and len(robustness):
        rises = []
        for name, g in robustness.sort_values("eps").groupby("attack", sort=True):
            rises.append((float(g.accuracy.diff().max()) if len(g) > 1 else 0.0, str(name)))
        rise, name = max(rises)
        add("accuracy_falls_with_eps", rise <= 1e-9, rise, None, 0.0, None,
            f"largest rise of accuracy from one ε to the next in the run's table: {100 * rise:+.1f} points "
            f"({name}); must be ≤ 0 for every attack")
        t = robustness.pivot_table(index="eps", columns="attack", values="accuracy")
        if {"pgd", "fgsm"} <= set(t.columns):
            gap = (t["pgd"] - t["fgsm"]).dropna()
            at = float(gap.idxmax())
            where = f"at ε={at:g}" if gap.max() > 0 else "(PGD at least as strong at every ε)"
            add("pgd_beats_fgsm_table", gap.max() <= s.tol_fgsm, float(gap.max()), None, s.tol_fgsm, at,
                f"largest PGD − FGSM accuracy over the run's ε grid: {100 * gap.max():+.1f} points {where}; "
                f"PGD must be at least as strong (within {100 * s.tol_fgsm:g} point)")
    add("breaks_at_large_eps", acc["large-eps"] <= s.max_large_eps_accuracy, acc["large-eps"], None,
        s.max_large_eps_accuracy, large,
        f"PGD-{s.pgd_steps} accuracy at ε={large:g} is {pct(acc['large-eps'])}; must be ≤ "
        f"{pct(s.max_large_eps_accuracy)} (a model unbroken at this budget means a broken attack)")
    nm = s.names
    pgd10, strong = acc[nm["pgd"]], acc[nm["pgdR"]]
    add("pgd_beats_fgsm", pgd10 - acc["fgsm"] <= s.tol_fgsm, pgd10, acc["fgsm"], s.tol_fgsm, eps,
        f"PGD-{s.pgd_steps} {pct(pgd10)} vs FGSM {pct(acc['fgsm'])}")
    add("pgd_converged", abs(pgd10 - strong) <= s.tol_steps, strong, pgd10, s.tol_steps, eps,
        f"PGD {s.strong_steps} steps × {s.strong_restarts} restarts {pct(strong)} vs PGD-{s.pgd_steps} "
        f"{pct(pgd10)} ({100 * (strong - pgd10):+.1f} points; at most {100 * s.tol_steps:g} allowed)")
    white = acc["white-box"]
    lead = white - acc["pgd+square"]
    add("no_masking_square", lead <= s.tol_masking, acc["pgd+square"], white, s.tol_masking, eps,
        f"gradient-free Square breaks {100 * lead:.1f}% of the points that white-box PGD left "
        f"(PGD {pct(white)} → PGD+Square {pct(acc['pgd+square'])}); more than {100 * s.tol_masking:g} points "
        f"means gradient masking")
    if "transfer" in acc:
        lead = white - acc["transfer"]
        add("no_masking_transfer", lead <= s.tol_masking, acc["transfer"], white, s.tol_masking, eps,
            f"PGD-{s.pgd_steps} transferred from the ST model {pct(acc['transfer'])} vs white-box PGD {pct(white)}"
            + (f": stronger by {100 * lead:.1f} points (gradient masking)" if lead > s.tol_masking else ""))
    margin, ce = acc[nm["cw"]], acc[nm["pgd1"]]
    add("margin_loss_not_stronger", ce - margin <= s.tol_masking, margin, ce, s.tol_masking, eps,
        f"PGD-{s.strong_steps} on the CW margin {pct(margin)} vs on cross-entropy {pct(ce)}")
    if "autoattack" in acc:
        lead = pgd10 - acc["autoattack"]
        add("autoattack_vs_pgd", lead <= s.tol_autoattack, acc["autoattack"], pgd10, s.tol_autoattack, eps,
            f"AutoAttack (standard) {pct(acc['autoattack'])} vs PGD-{s.pgd_steps} {pct(pgd10)}: PGD overstates "
            f"robust accuracy by {100 * lead:.1f} points")
    singles = {k: v for k, v in acc.items() if k not in _AGGREGATES}
    best_name = min(singles, key=singles.get)
    lead = singles[best_name] - acc["worst-case"]
    add("worst_case_vs_best_attack", lead <= s.tol_masking, acc["worst-case"], singles[best_name], s.tol_masking,
        eps, f"worst case per example over {len(singles)} attacks {pct(acc['worst-case'])} vs the strongest "
        f"single attack ({best_name}) {pct(singles[best_name])}")
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def checks_line(checks: pd.DataFrame) -> str:
    """``PASS 10/10 checks`` or ``FAIL 8/10 checks``: the head of :func:`verdict` and of the audit's progress line."""
    passed = int(checks.passed.astype(bool).sum())
    return ("PASS" if passed == len(checks) else "FAIL") + f" {passed}/{len(checks)} checks"


def verdict(checks: pd.DataFrame, attacks: pd.DataFrame | None = None, label: str = "") -> str:
    """One line: how many checks passed, which failed, and the headline numbers at the standard budget."""
    failed = checks.loc[~checks.passed.astype(bool), "check"].tolist()
    line = (f"{label}: " if label else "") + checks_line(checks)
    if failed:
        line += " (failed: " + ", ".join(failed) + ")"
    if attacks is not None and (attacks.attack == "worst-case").any():
        eps = float(attacks.loc[attacks.attack == "worst-case", "eps"].iloc[0])
        at_eps = attacks[(attacks.eps - eps).abs() < 1e-12].drop_duplicates("attack").set_index("attack").accuracy
        clean = attacks.loc[attacks.attack == "clean", "accuracy"]
        parts = [f"clean {100 * float(clean.iloc[0]):.1f}%"] if len(clean) else []
        pgd = next((a for a in at_eps.index if re.fullmatch(r"pgd-\d+", str(a))), "pgd-10")
        parts += [f"{text} {100 * float(at_eps[name]):.1f}%" for name, text in
                  ((pgd, pgd.upper()), ("autoattack", "AutoAttack"), ("worst-case", "worst case"))
                  if name in at_eps.index]
        line += f"; ε={eps:.4g}: " + ", ".join(parts)
    return line


# --------------------------------------------------------------------------- runs on disk, cached
def sanity_key(run_dir: Path, st_run_dir: Path | None, n_per_class: int, settings: SanitySettings,
               ) -> dict[str, Any]:
    """What :func:`sanity_report`'s numbers depend on (its cache is ``derived_dir(run_dir, "sanity", key)``): the
    run's hash, the ST run's hash, ``n_per_class``, the run's subset seed and ``settings``."""
    cfg, raw = run_config(Path(run_dir))
    st_raw = run_config(Path(st_run_dir))[1] if st_run_dir is not None else None
    return {"run": raw["run_hash"], "st_run": st_raw["run_hash"] if st_raw else None,
            "n_per_class": n_per_class, "subset_seed": cfg.subset_seed, "settings": settings.to_dict()}


def sanity_report(
    run_dir: Path,
    st_run_dir: Path | None,
    data_dir: Path | None = None,
    n_per_class: int = 10,
    settings: SanitySettings | None = None,
    device: str | torch.device | None = None,
    force: bool = False,
) -> SanityResult:
    """The sanity checks of a finished run, computed once and cached beside the run directory.

    The cache directory (:func:`asgt_lib.pipeline.experiment.derived_dir`, kind ``sanity``) holds
    ``sanity.csv`` (the checks), ``attacks.csv`` (accuracy per attack) and ``meta.json`` (verdict, settings,
    time); it is keyed by the run's hash, the ST run's hash, ``n_per_class`` and ``settings``, and written
    atomically, so a second call only reads it. The test points are ``n_per_class`` images per class of the test split (the run's subset seed).
    """
    settings = settings or SanitySettings()
    run_dir = Path(run_dir)
    cfg, _ = run_config(run_dir)
    key = sanity_key(run_dir, st_run_dir, n_per_class, settings)
    out = derived_dir(run_dir, "sanity", key)
    label = f"{cfg.dataset}/{cfg.label}/seed{cfg.seed}"
    if not force and is_finished(out):
        return _read_sanity(out)
    model, _, _ = load_trained_model(run_dir, data_dir, device)
    st_model = None
    if st_run_dir is not None:
        st_model = model if Path(st_run_dir).resolve() == run_dir.resolve() else \
            load_trained_model(Path(st_run_dir), data_dir, device)[0]
    weights = _checked_weights(run_dir, label)
    st_weights = (None if st_run_dir is None else weights if Path(st_run_dir).resolve() == run_dir.resolve()
                  else _checked_weights(Path(st_run_dir), f"the ST run of {label}"))
    test = load_split(cfg.dataset, False, data_dir, n_per_class, cfg.subset_seed)
    robustness = read_robustness(run_dir / "robustness.csv")  # the checks read the budget-sized steps
    robustness = robustness[robustness.attack_step == DEFAULT_ATTACK_STEP]
    result = sanity_checks(model, test.x, test.y, cfg.dataset, st_model, robustness, settings, label)
    ident = {"dataset": cfg.dataset, "method": cfg.method, "name": cfg.label, "seed": cfg.seed, "preset": cfg.preset}
    checks = result.checks.assign(**ident)
    attacks = result.attacks.assign(**ident)
    with staging_dir(out) as stage:
        checks.to_csv(stage / "sanity.csv", index=False)
        attacks.to_csv(stage / "attacks.csv", index=False)
        write_json(stage / "meta.json", {"verdict": result.verdict, "seconds": result.seconds, "key": key,
                                         "n_test": len(test), "run_dir": str(run_dir),
                                         "st_run_dir": str(st_run_dir) if st_run_dir else None,
                                         "weights": weights, "st_weights": st_weights})
    return _read_sanity(out, cached=False)


def _checked_weights(run_dir: Path, label: str) -> dict[str, Any]:
    """:func:`~asgt_lib.pipeline.experiment.weights_record` of the weights a report checks, with a warning when
    they were trained again and do not repeat the committed training: the report then checks a model of the same
    recipe, not the one the run's curves measured."""
    record = weights_record(run_dir)
    if record["trained_again"] and not record["same_history"]:
        by = "" if record["max_difference"] is None else f" (by up to {record['max_difference']:.3g})"
        warnings.warn(f"{label}: its weights were trained again and their training history differs from the "
                      f"committed one{by}: the audit checks a retrained model of the same recipe, and its report "
                      f"says so (meta.json 'weights')", RuntimeWarning, stacklevel=3)
    return record


def _read_sanity(out: Path, cached: bool = True) -> SanityResult:
    meta = json.loads((out / "meta.json").read_text())
    checks = pd.read_csv(out / "sanity.csv")
    checks["passed"] = checks["passed"].astype(bool)
    return SanityResult(checks, pd.read_csv(out / "attacks.csv"), meta["verdict"], meta["seconds"], cached, out,
                        meta.get("weights"), meta.get("st_weights"))
