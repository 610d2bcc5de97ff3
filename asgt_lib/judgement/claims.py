"""Every number the paper states, and how a set of runs is judged against it.

Kinds of claim:

* ``absolute``: an accuracy the paper reports (e.g. ST reaches 27.88 % under FGSM ε=0.25 on MNIST). It can only
  be compared with runs of the paper's protocol (:data:`PAPER_PROTOCOLS`: ``paper``, and ``paper-cpu`` for MNIST):
  under any other preset the verdict is ``not comparable`` (the measured value is still shown), and the book takes
  the verdict of ``paper-cpu`` instead (:func:`book_verdicts`). Under ``paper`` it is ``reproduced`` when the mean
  over seeds lies within ``tolerance`` percentage points of the paper's value; under ``paper-cpu`` (an interval
  preset) when its 95% interval lies within that band, ``not reproduced`` when it lies outside, ``inconclusive``
  otherwise.
* ``gain``: a difference in accuracy between two methods, in percentage points. ``bound="approx"`` ("gains of
  20 %") is reproduced when the measured gain is at least the stated gain minus ``tolerance``;
  ``bound="more-than"`` ("a gain of over 20 %") when it is strictly larger than the stated gain. Judged under
  every preset (the preset is always shown beside the verdict).
* ``highest``: one method is the most robust of a figure's methods on every attack, robustness being the mean
  accuracy over the ε > 0 of the grid. Judged under every preset.

Under the presets of INTERVAL_PRESETS (``reference``, ``paper-cpu``), gains and rankings are judged with 95% intervals instead of
point values, with three outcomes: a gain is ``reproduced`` when its whole interval clears the bound, ``not
reproduced`` when its whole interval falls short of it, and ``inconclusive`` when the interval contains the bound
(the runs neither support nor contradict the claim). A method is highest on an attack when its robustness exceeds
every rival's by an interval above 0; the claim is not reproduced when on some attack a rival leads it by an
interval above 0, and inconclusive otherwise. The interval is over seeds (paired by seed, Student's t) when there
are at least two, and over test images (binomial) when there is one, and the verdict's reason says which and how
many seeds stand behind it.

A claim whose runs, attack or ε are absent from the table is ``not evaluated`` (the reason says which).
Every claim can be judged under either attack-step convention of the evaluation (:func:`evaluate_by_attack_step`:
the step sized to ε, or torchattacks' fixed 2/255, the paper's probable attack), each on its own rows.
The paper writes gains as "%"; they are differences of accuracies in percent, so percentage points here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pandas as pd

from . import stats

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"   # only under INTERVAL_PRESETS: the 95% interval contains the paper's bound
NOT_COMPARABLE = "not comparable"
NOT_EVALUATED = "not evaluated"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_COMPARABLE, NOT_EVALUATED)
#: The verdicts that judge a claim (the others say why it was not judged).
JUDGED = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
#: The only preset whose absolute numbers may be set against the paper's.
PAPER_PRESET = "paper"
#: The presets that run the paper's protocol, and for which datasets: absolute accuracies are judged only there.
#: ``paper-cpu`` is Table 1 at full width for MNIST on a CPU (bf16 training step, 2,000 test images; issue 36).
PAPER_PROTOCOLS: dict[str, tuple[str, ...]] = {"paper": ("mnist", "cifar10"), "paper-cpu": ("mnist",)}
#: The sampling error of an accuracy measured on the 2,000 test images of ``reference`` and ``paper-cpu``: the
#: half-width of a 95% binomial interval at p = 0.5, in points (the widest; stated beside absolute verdicts).
SUBSET_ERROR_2000 = 1.96 * 100 * math.sqrt(0.25 / 2000)
#: Default tolerance, in percentage points, for absolute values and approximate gains.
TOLERANCE = 5.0
#: Presets whose gains and rankings are judged by 95% intervals (module docstring).
INTERVAL_PRESETS = ("reference", "paper-cpu")
ATTACK_NAMES = {"fgsm": "FGSM", "pgd": "PGD", "mifgsm": "MI-FGSM"}
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
_EPS_TOL = 1e-9


@dataclass(frozen=True)
class Claim:
    """One statement of the paper, in a form that a table of runs can be checked against."""

    key: str                 # identifier (also the glue key prefix on the claims page)
    where: str               # where the paper says it
    statement: str           # what it says, paraphrased
    kind: str                # "absolute" | "gain" | "highest"
    dataset: str
    attacks: tuple[str, ...]
    method: str              # run name, e.g. "sgt-k0.3"
    eps: float | None = None
    value: float | None = None       # accuracy in % (absolute) or points (gain)
    baseline: str | None = None      # gain: the run name the gain is measured against
    bound: str = "approx"            # gain: "approx" | "more-than"
    rivals: tuple[str, ...] = ()     # highest: the other methods of the figure

    def __post_init__(self) -> None:
        if self.kind not in ("absolute", "gain", "highest"):
            raise ValueError(f"claim {self.key}: unknown kind {self.kind!r}")
        if self.kind in ("absolute", "gain") and (self.eps is None or self.value is None or len(self.attacks) != 1):
            raise ValueError(f"claim {self.key}: {self.kind} needs one attack, eps and value")
        if self.kind == "gain" and (self.baseline is None or self.bound not in ("approx", "more-than")):
            raise ValueError(f"claim {self.key}: a gain needs a baseline and bound 'approx' or 'more-than'")
        if self.kind == "highest" and not self.rivals:
            raise ValueError(f"claim {self.key}: 'highest' needs rivals")

    @property
    def paper_text(self) -> str:
        if self.kind == "absolute":
            return f"{self.value:.2f} %"
        if self.kind == "gain":
            return f"{'> ' if self.bound == 'more-than' else '≈ '}{self.value:+g} points"
        return f"highest on {len(self.attacks)}/{len(self.attacks)} attacks"


def _abs(key, where, dataset, attack, eps, method, value, label):
    return Claim(key, where, f"{DATASET_NAMES[dataset]}, {ATTACK_NAMES[attack]} ε={eps:g}: {label} reaches "
                 f"{value:.2f} %", "absolute", dataset, (attack,), method, eps, value)


def _gain(key, where, dataset, attack, eps, method, baseline, value, bound, label):
    word = "over " if bound == "more-than" else ""
    return Claim(key, where, f"{DATASET_NAMES[dataset]}, {ATTACK_NAMES[attack]} ε={eps:g}: {label} gains "
                 f"{word}{value:g} points over ST", "gain", dataset, (attack,), method, eps, value, baseline, bound)


#: The paper's statements (Abstract, Sec. 4.2, Sec. 4.3). Where the paper does not say which k a gain is for,
#: the k it fine-tuned (0.3 on MNIST per Fig. 4, 0.1 on CIFAR-10 per Sec. 4.1) is taken.
CLAIMS: tuple[Claim, ...] = (
    _abs("mnist_fgsm_st", "Sec. 4.2", "mnist", "fgsm", 0.25, "st", 27.88, "ST"),
    _abs("mnist_fgsm_sgt03", "Sec. 4.2", "mnist", "fgsm", 0.25, "sgt-k0.3", 51.79, "SGT (k=0.3)"),
    _abs("mnist_fgsm_sgt05", "Sec. 4.2", "mnist", "fgsm", 0.25, "sgt-k0.5", 44.29, "SGT (k=0.5)"),
    _gain("mnist_pgd_sgt_gain", "Sec. 4.2", "mnist", "pgd", 0.25, "sgt-k0.3", "st", 20, "approx", "SGT (k=0.3)"),
    _gain("mnist_mifgsm_sgt_gain", "Sec. 4.2", "mnist", "mifgsm", 0.25, "sgt-k0.3", "st", 30, "approx",
          "SGT (k=0.3)"),
    _gain("cifar_fgsm_sgt_gain", "Sec. 4.2", "cifar10", "fgsm", 0.025, "sgt-k0.1", "st", 20, "more-than",
          "SGT (k=0.1)"),
    _abs("mnist_pgd_st", "Sec. 4.3", "mnist", "pgd", 0.2, "st", 16.36, "ST"),
    _abs("mnist_pgd_sgt", "Sec. 4.3", "mnist", "pgd", 0.2, "sgt-k0.3", 49.08, "SGT (k=0.3)"),
    _abs("mnist_pgd_at", "Sec. 4.3", "mnist", "pgd", 0.2, "at-fgsm", 8.33, "AT-FGSM"),
    _abs("mnist_pgd_sga", "Sec. 4.3", "mnist", "pgd", 0.2, "sga-k0.3", 48.95, "SGA (k=0.3)"),
    _abs("mnist_pgd_asgt", "Sec. 4.3", "mnist", "pgd", 0.2, "asgt-k0.3", 55.69, "ASGT (k=0.3)"),
    Claim("mnist_asgt_highest", "Sec. 4.3", "MNIST: ASGT is the most robust of ST, SGT, AT-FGSM, SGA and ASGT "
          "across attacks (mean accuracy over ε > 0)", "highest", "mnist", ("fgsm", "pgd", "mifgsm"), "asgt-k0.3",
          rivals=("st", "sgt-k0.3", "at-fgsm", "sga-k0.3")),
    _gain("cifar_fgsm_asgt_gain", "Sec. 4.3", "cifar10", "fgsm", 0.025, "asgt-k0.1", "st", 30, "more-than",
          "ASGT (k=0.1)"),
    _gain("headline_mnist", "Abstract", "mnist", "pgd", 0.2, "asgt-k0.3", "st", 35, "approx", "ASGT (k=0.3)"),
    _gain("headline_cifar", "Abstract", "cifar10", "pgd", 0.02, "asgt-k0.1", "st", 20, "approx", "ASGT (k=0.1)"),
)

#: Table 1 of the paper, plus what Sec. 4.1 states (k, λ, five seeds). None: the paper does not say.
PAPER_TABLE1: dict[str, dict[str, Any]] = {
    "mnist": {"model": "alexnet", "epochs": 20, "batch_size": 128, "lr": 1e-2, "k": 0.3, "lam": 1.0, "seeds": 5},
    "cifar10": {"model": "resnet18", "epochs": 100, "batch_size": 256, "lr": 1e-4, "k": 0.1, "lam": 1.0,
                "seeds": 5},
}


# --------------------------------------------------------------------------- aggregation
def mean_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy in % per (dataset, name, attack, ε): mean and standard deviation over seeds, seeds, test images."""
    if table.empty:
        return pd.DataFrame(columns=["dataset", "name", "attack", "eps", "mean", "sd", "seeds", "n", "data_source"])
    data = table.assign(acc=100 * table["accuracy"].astype(float))
    g = data.groupby(["dataset", "name", "attack", "eps"], sort=True)
    out = g.agg(mean=("acc", "mean"), sd=("acc", "std"), seeds=("seed", "nunique"), n=("n", "min"),
                data_source=("data_source", "first"))
    return out.reset_index()


def robustness_summary(table: pd.DataFrame, dataset: str, names: Sequence[str]) -> pd.DataFrame:
    """Mean accuracy (%) over the ε > 0 of the grid (and over seeds): one row per run name, one column per attack."""
    curves = mean_curves(table[(table["dataset"] == dataset) & table["name"].isin(list(names))])
    curves = curves[curves.eps > _EPS_TOL]
    out = curves.groupby(["name", "attack"])["mean"].mean().unstack("attack")
    out = out.reindex(index=[n for n in names if n in out.index],
                      columns=[a for a in ATTACK_NAMES if a in out.columns])
    out.columns = [ATTACK_NAMES[a] for a in out.columns]
    out.index.name = "name"
    return out


def accuracy_table(table: pd.DataFrame, dataset: str, names: Sequence[str], decimals: int = 1) -> pd.DataFrame:
    """The numbers behind a robustness figure: mean accuracy (%) per ε (rows) and (attack, run name) (columns),
    laid out as the figure is (one panel per attack, one curve per run, ε along the axis). The ε grid runs down
    the rows so that the table stays narrow: three attacks times the ε grid across would not read at 1280 px."""
    curves = mean_curves(table[(table["dataset"] == dataset) & table["name"].isin(list(names))])
    out = curves.pivot_table(index="eps", columns=["attack", "name"], values="mean")
    out = out.reindex(columns=[(a, n) for a in ATTACK_NAMES for n in names if (a, n) in out.columns])
    out.columns = pd.MultiIndex.from_tuples([(ATTACK_NAMES[a], n) for a, n in out.columns], names=["attack", "run"])
    out.index = pd.Index([f"{e:g}" for e in out.index], name="ε")
    return out.round(decimals)


def _single_preset(table: pd.DataFrame, preset: str | None) -> str:
    presets = sorted(set(table["preset"])) if "preset" in table and not table.empty else []
    if len(presets) > 1:
        raise ValueError(f"the table mixes presets {presets}: judge one preset at a time")
    if preset is None:
        if not presets:
            raise ValueError("an empty table carries no preset: pass preset=")
        return presets[0]
    if presets and presets[0] != preset:
        raise ValueError(f"the table holds preset {presets[0]!r}, not {preset!r}")
    return preset


def _point(curves: pd.DataFrame, dataset: str, name: str, attack: str, eps: float) -> pd.Series | None:
    rows = curves[(curves.dataset == dataset) & (curves.name == name) & (curves.attack == attack)
                  & ((curves.eps - eps).abs() < _EPS_TOL)]
    return None if rows.empty else rows.iloc[0]


def _missing(curves: pd.DataFrame, claim: Claim, names: Iterable[str]) -> str | None:
    """Why ``claim`` cannot be evaluated on ``curves``, or None."""
    sub = curves[curves.dataset == claim.dataset]
    for name in names:
        if sub[sub.name == name].empty:
            return f"no finished run of {name} on {claim.dataset}"
        for attack in claim.attacks:
            if sub[(sub.name == name) & (sub.attack == attack)].empty:
                return f"{name} was not evaluated against {attack}"
    if claim.eps is not None:
        grid = sorted(set(sub["eps"]))
        if not any(abs(e - claim.eps) < _EPS_TOL for e in grid):
            return f"ε={claim.eps:g} is not in this preset's grid ({', '.join(f'{e:g}' for e in grid)})"
    return None


def _data_label(curves: pd.DataFrame, dataset: str) -> str:
    from ..core.data import SOURCE_LABELS

    sources = sorted(set(curves.loc[curves.dataset == dataset, "data_source"]))
    return " + ".join(SOURCE_LABELS.get(s, s) for s in sources) or DATASET_NAMES.get(dataset, dataset)


# --------------------------------------------------------------------------- intervals
@dataclass(frozen=True)
class Interval:
    """A difference in percentage points with its 95% interval (clipped to [−100, 100]), and what the interval
    covers; ``values``: the paired differences per seed."""

    mean: float
    low: float
    high: float
    seeds: int
    kind: str     # "seeds" (paired over seeds, Student's t) or "test images" (one seed, binomial)
    values: tuple[float, ...] = ()

    def text(self) -> str:
        """``mean [low, high]``; below three seeds the seeds' range (stats.MIN_SEEDS_FOR_T), which is what a reader
        can take from two numbers."""
        if self.kind == "seeds" and self.seeds < stats.MIN_SEEDS_FOR_T:
            return f"{self.mean:+.2f} (range {min(self.values):+.2f} to {max(self.values):+.2f})"
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"

    def basis(self) -> str:
        if self.kind == "seeds" and self.seeds < stats.MIN_SEEDS_FOR_T:
            return (f"{self.seeds} seeds, paired: their range is shown; the verdict uses the 95% t interval "
                    f"[{self.low:+.2f}, {self.high:+.2f}]")
        return (f"95% interval over {self.seeds} seeds, paired" if self.kind == "seeds" else
                "95% interval over test images (1 seed: the seed-to-seed spread is unknown)")


def paired_interval(a: pd.DataFrame, b: pd.DataFrame) -> Interval:
    """The 95% interval of mean(a − b) in points, ``a`` and ``b`` holding ``seed``, ``acc`` (%) and ``n`` (test
    images): Student's t over the seeds both have when there are two or more, else the binomial standard error
    of the two accuracies on their test images."""
    from scipy.stats import norm

    joined = a.merge(b, on="seed", suffixes=("_a", "_b"))
    diff = joined["acc_a"] - joined["acc_b"]
    if len(diff) >= 2:
        d = stats.difference(diff.to_numpy(dtype=float))
        return Interval(d.mean, d.low, d.high, d.seeds, "seeds", d.values)
    pa, pb = joined["acc_a"].iloc[0] / 100, joined["acc_b"].iloc[0] / 100
    se = 100 * math.sqrt(pa * (1 - pa) / joined["n_a"].iloc[0] + pb * (1 - pb) / joined["n_b"].iloc[0])
    half, mean = float(norm.ppf(0.975) * se), float(diff.mean())
    return Interval(mean, max(-100.0, mean - half), min(100.0, mean + half), 1, "test images", (mean,))


def _per_seed(table: pd.DataFrame, dataset: str, name: str, attack: str, eps: float | None) -> pd.DataFrame:
    """Accuracy (%) per seed of run ``name`` under ``attack``: at ``eps``, or averaged over the ε > 0 of the grid
    (robustness) when ``eps`` is None; with the number of test images ``n``."""
    rows = table[(table.dataset == dataset) & (table.name == name) & (table.attack == attack)]
    rows = rows[(rows.eps - eps).abs() < _EPS_TOL] if eps is not None else rows[rows.eps > _EPS_TOL]
    rows = rows.assign(acc=100 * rows["accuracy"].astype(float))
    return rows.groupby("seed").agg(acc=("acc", "mean"), n=("n", "min")).reset_index()


# --------------------------------------------------------------------------- verdicts
def _absolute_by_interval(claim: Claim, per_seed: pd.DataFrame, tolerance: float) -> dict[str, Any]:
    """An absolute accuracy judged by its 95% interval (over seeds; over test images for one seed) against the band
    paper ± ``tolerance``: reproduced when the interval lies within it, not reproduced when it lies outside,
    inconclusive otherwise, with the seeds that would decide it."""
    from scipy.stats import norm

    values = per_seed["acc"].to_numpy(dtype=float)
    lo_band, hi_band = claim.value - tolerance, claim.value + tolerance
    if len(values) >= 2:
        est = stats.estimate(values)
        low, high, mean = est.low, est.high, est.mean
        basis = (f"95% interval over {len(values)} seeds" if not est.shows_range else
                 f"{len(values)} seeds: their range is shown; the verdict uses the 95% t interval "
                 f"[{low:.2f}, {high:.2f}]")
        text = est.text(2)
    else:
        mean = float(values[0])
        n = int(per_seed["n"].iloc[0])
        half = float(norm.ppf(0.975) * 100 * math.sqrt(mean / 100 * (1 - mean / 100) / n))
        low, high = max(0.0, mean - half), min(100.0, mean + half)
        basis, text = "95% interval over test images (1 seed: the seed-to-seed spread is unknown)", \
            f"{mean:.2f} [{low:.2f}, {high:.2f}]"
    band = f"{claim.value:.2f} ± {tolerance:g}"
    if lo_band <= low and high <= hi_band:
        verdict, rule = REPRODUCED, f"[{low:.2f}, {high:.2f}] lies within {band}"
    elif high < lo_band or low > hi_band:
        verdict, rule = NOT_REPRODUCED, f"[{low:.2f}, {high:.2f}] lies outside {band}"
    else:
        edge = lo_band if abs(mean - lo_band) < abs(mean - hi_band) else hi_band
        to_decide = (stats.seeds_note(values, edge) if len(values) >= 2 else
                     "one seed: the spread over seeds, and so the seeds needed, is unknown")
        verdict, rule = INCONCLUSIVE, f"[{low:.2f}, {high:.2f}] straddles an edge of {band}; {to_decide}"
    n_test = int(per_seed["n"].min())
    sampling = (f" (each seed on {n_test:,} test images: about ±{1.96 * 100 * math.sqrt(0.25 / n_test):.1f} points "
                f"of sampling error at 95%)")
    return {"measured": f"{text} %", "measured_value": mean, "low": low, "high": high, "seeds": len(values),
            "verdict": verdict, "reason": f"{basis}: {rule}{sampling}"}


def _clears(claim: Claim, gain: float, tolerance: float) -> bool:
    """Whether a gain of ``gain`` points meets a gain claim's bound: strictly above a lower bound ("a gain of over
    X"), at least X − ``tolerance`` for an approximate gain ("gains of X")."""
    return gain > claim.value if claim.bound == "more-than" else gain >= claim.value - tolerance


def judge(claim: Claim, curves: pd.DataFrame, preset: str, tolerance: float = TOLERANCE,
          table: pd.DataFrame | None = None) -> dict[str, Any]:
    """One claim against the mean curves (:func:`mean_curves`) of one preset; under INTERVAL_PRESETS gains and
    rankings are judged by intervals from the per-seed ``table``."""
    row: dict[str, Any] = {"key": claim.key, "where": claim.where, "claim": claim.statement, "kind": claim.kind,
                           "dataset": claim.dataset, "data": _data_label(curves, claim.dataset), "preset": preset,
                           "paper": claim.paper_text, "paper_value": claim.value, "measured": "–",
                           "measured_value": math.nan, "low": math.nan, "high": math.nan, "seeds": 0,
                           "verdict": NOT_EVALUATED, "reason": ""}
    names = [claim.method] + ([claim.baseline] if claim.baseline else []) + list(claim.rivals)
    why = _missing(curves, claim, names)
    if why:
        row["reason"] = why
        return row

    if claim.kind == "absolute":
        p = _point(curves, claim.dataset, claim.method, claim.attacks[0], claim.eps)
        measured, seeds = float(p["mean"]), int(p["seeds"])
        row.update(measured=f"{measured:.2f} %", measured_value=measured, seeds=seeds)
        if claim.dataset not in PAPER_PROTOCOLS.get(preset, ()):
            row.update(verdict=NOT_COMPARABLE, reason=f"an absolute accuracy; preset {preset!r} is not the "
                                                      f"paper's protocol")
        elif preset in INTERVAL_PRESETS:
            if table is None:
                raise ValueError(f"preset {preset!r} judges by intervals over seeds: pass the per-seed table")
            row.update(_absolute_by_interval(claim, _per_seed(table, claim.dataset, claim.method, claim.attacks[0],
                                                              claim.eps), tolerance))
        else:
            ok = abs(measured - claim.value) <= tolerance
            row.update(verdict=REPRODUCED if ok else NOT_REPRODUCED,
                       reason=f"|{measured:.2f} − {claim.value:.2f}| {'≤' if ok else '>'} {tolerance:g} points")
        return row

    intervals = preset in INTERVAL_PRESETS
    if intervals and table is None:
        raise ValueError(f"preset {preset!r} judges by intervals over seeds: pass the per-seed table")
    if claim.kind == "gain" and intervals:
        gain = paired_interval(*(_per_seed(table, claim.dataset, name, claim.attacks[0], claim.eps)
                                 for name in (claim.method, claim.baseline)))
        bound = f"{claim.value:+g}" if claim.bound == "more-than" else f"{claim.value:+g} − {tolerance:g}"
        if _clears(claim, gain.low, tolerance):
            verdict, rule = REPRODUCED, f"its low end {gain.low:+.2f} clears {bound}"
        elif not _clears(claim, gain.high, tolerance):
            verdict, rule = NOT_REPRODUCED, f"its high end {gain.high:+.2f} falls short of {bound}"
        else:
            bound_value = claim.value if claim.bound == "more-than" else claim.value - tolerance
            to_decide = (stats.seeds_note(gain.values, bound_value) if gain.kind == "seeds" else
                         "one seed: the spread over seeds, and so the seeds needed, is unknown")
            verdict, rule = INCONCLUSIVE, f"it contains {bound}; {to_decide}"
        row.update(measured=f"{gain.text()} points", measured_value=gain.mean, low=gain.low, high=gain.high,
                   seeds=gain.seeds,
                   verdict=verdict, reason=f"{gain.basis()}: {rule}")
        return row

    if claim.kind == "gain":
        a = _point(curves, claim.dataset, claim.method, claim.attacks[0], claim.eps)
        b = _point(curves, claim.dataset, claim.baseline, claim.attacks[0], claim.eps)
        gain = float(a["mean"]) - float(b["mean"])
        row.update(measured=f"{gain:+.2f} points", measured_value=gain, seeds=int(min(a["seeds"], b["seeds"])))
        ok = _clears(claim, gain, tolerance)
        if claim.bound == "more-than":
            rule = f"{gain:+.2f} {'>' if ok else '≤'} {claim.value:+g}"
        else:
            rule = f"{gain:+.2f} {'≥' if ok else '<'} {claim.value:+g} − {tolerance:g}"
        row.update(verdict=REPRODUCED if ok else NOT_REPRODUCED, reason=rule)
        return row

    if intervals:  # highest, by intervals: ahead of every rival on every attack, each lead's interval above 0
        top, behind, notes, seeds, open_ = [], [], [], 0, []
        for attack in claim.attacks:
            own = _per_seed(table, claim.dataset, claim.method, attack, None)
            leads = {rival: paired_interval(own, _per_seed(table, claim.dataset, rival, attack, None))
                     for rival in claim.rivals}
            seeds = max(seeds, max(lead.seeds for lead in leads.values()))
            closest = min(leads, key=lambda r: leads[r].low)
            if leads[closest].low > 0:
                top.append(attack)
            if min(lead.high for lead in leads.values()) < 0:  # a rival is ahead, by an interval above 0
                behind.append(attack)
            elif leads[closest].low <= 0:
                lead = leads[closest]
                open_.append(f"{ATTACK_NAMES[attack]}: " + (stats.seeds_note(lead.values) if lead.kind == "seeds" else
                                                            "one seed: the seeds needed are unknown"))
            notes.append(f"{ATTACK_NAMES[attack]}: lead over {closest} {leads[closest].text()}")
        basis = next(iter(leads.values())).basis()
        verdict = (REPRODUCED if len(top) == len(claim.attacks) else NOT_REPRODUCED if behind else INCONCLUSIVE)
        row.update(measured=f"highest on {len(top)}/{len(claim.attacks)} attacks"
                            + (f" ({', '.join(ATTACK_NAMES[a] for a in top)})" if top else ""),
                   measured_value=float(len(top)), paper_value=float(len(claim.attacks)), seeds=seeds,
                   verdict=verdict, reason=f"{basis}; the smallest lead per attack: " + "; ".join(notes)
                   + (f"; clearly behind a rival on {', '.join(ATTACK_NAMES[a] for a in behind)}" if behind else "")
                   + (f"; to decide it: {'; '.join(open_)}" if verdict == INCONCLUSIVE else ""))
        return row

    # highest: robustness = mean accuracy over ε > 0, per attack
    sub = curves[(curves.dataset == claim.dataset) & (curves.eps > _EPS_TOL)
                 & curves.name.isin([claim.method, *claim.rivals])]
    robust = sub.groupby(["attack", "name"])["mean"].mean().unstack("name")
    top = [a for a in claim.attacks if robust.loc[a, claim.method] >= robust.loc[a].max() - 1e-9]
    seeds = int(sub["seeds"].min())
    row.update(measured=f"highest on {len(top)}/{len(claim.attacks)} attacks"
                        + (f" ({', '.join(ATTACK_NAMES[a] for a in top)})" if top else ""),
               measured_value=float(len(top)), paper_value=float(len(claim.attacks)), seeds=seeds,
               verdict=REPRODUCED if len(top) == len(claim.attacks) else NOT_REPRODUCED,
               reason="; ".join(f"{ATTACK_NAMES[a]}: best {robust.loc[a].idxmax()} "
                                f"{robust.loc[a].max():.1f} %" for a in claim.attacks))
    return row


def evaluate(table: pd.DataFrame, preset: str | None = None, claims: Sequence[Claim] = CLAIMS,
             tolerance: float = TOLERANCE) -> pd.DataFrame:
    """Every claim judged against ``table`` (:func:`asgt_lib.pipeline.experiment.collect` of one preset)."""
    preset = _single_preset(table, preset)
    if "attack_step" in table and table["attack_step"].nunique() > 1:
        raise ValueError(f"the table mixes attack-step conventions {sorted(set(table['attack_step']))}: judge one at a "
                         f"time (evaluate_by_attack_step)")
    curves = mean_curves(table)
    return pd.DataFrame([judge(c, curves, preset, tolerance, table) for c in claims])


def with_paper_width(verdicts: pd.DataFrame, paper_width: pd.DataFrame | None,
                     paper_preset: str = "paper-cpu") -> pd.DataFrame:
    """The claims page's verdicts: those of the book's preset, but each absolute claim that preset cannot judge
    ("not comparable": not the paper's protocol) judged instead at the paper's width (``paper_width``:
    :func:`evaluate` of ``paper-cpu``, issue 36) where that preset runs the claim's dataset; where it has no run of
    the claim yet, "not evaluated", saying so."""
    out = verdicts.copy()
    replace = (out["kind"] == "absolute") & (out["verdict"] == NOT_COMPARABLE) & out["dataset"].isin(
        PAPER_PROTOCOLS.get(paper_preset, ()))
    theirs = paper_width.set_index("key") if paper_width is not None and len(paper_width) else None
    for i in out.index[replace]:
        key = out.at[i, "key"]
        if theirs is not None and key in theirs.index and theirs.at[key, "verdict"] != NOT_EVALUATED:
            for column in out.columns:
                if column in theirs.columns:
                    out.at[i, column] = theirs.at[key, column]
        else:
            out.loc[i, ["measured", "measured_value", "seeds", "verdict", "preset", "reason"]] = [
                "–", math.nan, 0, NOT_EVALUATED, paper_preset, f"an absolute accuracy, judged at the paper's width: no {paper_preset} "
                f"run of it yet (asgt batch --preset {paper_preset})"]
    return out


def book_verdicts(results_dir, preset: str, table: pd.DataFrame | None = None,
                  paper_preset: str = "paper-cpu") -> pd.DataFrame:
    """Every claim as the book judges it (the claims page and the index): :func:`evaluate` on the book's preset
    (``table``, else its finished runs under ``results_dir``), with the absolute MNIST claims judged at the paper's
    width (:func:`with_paper_width`) from the finished ``paper-cpu`` runs under the same folder."""
    from ..pipeline.experiment import collect

    table = collect(results_dir, preset) if table is None else table
    verdicts = evaluate(table, preset)
    if preset == paper_preset:
        return verdicts
    paper = collect(results_dir, paper_preset)
    return with_paper_width(verdicts, evaluate(paper, paper_preset) if len(paper) else None, paper_preset)


# --------------------------------------------------------------------------- attack-step conventions (issue 35)
#: Where the book and the closing note set the two conventions side by side: the attacks and budgets of the claims.
STEP_POINTS: tuple[tuple[str, float], ...] = (("fgsm", 0.25), ("pgd", 0.2), ("mifgsm", 0.25))
#: The MNIST runs the claims read.
CLAIM_RUNS = ("st", "sgt-k0.3", "sgt-k0.5", "at-fgsm", "sga-k0.3", "asgt-k0.3")


def evaluate_by_attack_step(table: pd.DataFrame, preset: str | None = None, claims: Sequence[Claim] = CLAIMS,
                            tolerance: float = TOLERANCE, paper_width: pd.DataFrame | None = None,
                            paper_preset: str = "paper-cpu") -> pd.DataFrame:
    """Every claim judged under each attack-step convention ``table`` holds (``experiment.collect(...,
    attack_step=None)``), each on the seeds scored under it: :func:`evaluate`'s rows with a column
    ``attack_step``. ``paper_width``: the same of ``paper-cpu``, whose verdicts replace the absolute claims the
    book's preset cannot judge (:func:`with_paper_width`), convention by convention."""
    from ..core.config import ATTACK_STEPS

    def rows(t: pd.DataFrame, step: str) -> pd.DataFrame:
        return t[t["attack_step"] == step] if "attack_step" in t else (t if step == "scaled" else t.iloc[:0])

    present = set(table["attack_step"]) if "attack_step" in table else {"scaled"}
    frames = []
    for step in (s for s in ATTACK_STEPS if s in present):
        verdicts = evaluate(rows(table, step), preset, claims, tolerance)
        if paper_width is not None and verdicts["preset"].iloc[0] != paper_preset:
            theirs = rows(paper_width, step)
            verdicts = with_paper_width(verdicts, evaluate(theirs, paper_preset, claims, tolerance)
                                        if len(theirs) else None, paper_preset)
        frames.append(verdicts.assign(attack_step=step))
    return pd.concat(frames, ignore_index=True)


def side_by_side(by_step: pd.DataFrame) -> pd.DataFrame:
    """One row per claim (in the paper's order): the paper's value, then the measured value, the seeds and the
    verdict under each convention of :func:`evaluate_by_attack_step`, columns (convention, what)."""
    from ..core.config import ATTACK_STEPS

    order = list(dict.fromkeys(by_step["key"]))
    steps = [s for s in ATTACK_STEPS if s in set(by_step["attack_step"])]
    paper = by_step.drop_duplicates("key").set_index("key")["paper"]
    wide = by_step.pivot(index="key", columns="attack_step", values=["measured", "seeds", "verdict"])
    wide = wide.swaplevel(axis=1)[[(s, w) for s in steps for w in ("measured", "seeds", "verdict")]]
    wide.insert(0, ("paper", ""), paper)
    return wide.reindex(order)


def paper_points(dataset: str) -> dict[tuple[str, str, float], float]:
    """The absolute accuracies the paper prints for ``dataset``: (run name, attack, ε) -> %."""
    return {(c.method, c.attacks[0], round(c.eps, 6)): c.value for c in CLAIMS
            if c.kind == "absolute" and c.dataset == dataset}


def attack_step_effect(table: pd.DataFrame, dataset: str = "mnist", names: Sequence[str] = CLAIM_RUNS,
                       points: Sequence[tuple[str, float]] = STEP_POINTS) -> pd.DataFrame:
    """Per run name and seed scored under both conventions: clean accuracy and, at each (attack, ε) of ``points``,
    the accuracy (%) with the step sized to ε (``scaled``) and with torchattacks' fixed 2/255 (``fixed``).
    ``table``: ``experiment.collect(..., attack_step=None)``."""
    rows = table[(table["dataset"] == dataset) & table["name"].isin(list(names))]
    scored = rows.groupby(["name", "seed"])["attack_step"].agg(lambda s: {"scaled", "fixed"} <= set(s))
    out = []
    for (name, seed), both in scored.items():
        if not both:
            continue
        run = rows[(rows.name == name) & (rows.seed == seed)]
        record: dict[str, Any] = {"name": name, "seed": int(seed),
                                  "clean": 100 * float(run.loc[run.eps.abs() < _EPS_TOL, "accuracy"].iloc[0])}
        for attack, eps in points:
            for step in ("scaled", "fixed"):
                hit = run[(run.attack == attack) & ((run.eps - eps).abs() < _EPS_TOL) & (run.attack_step == step)]
                record[f"{ATTACK_NAMES[attack]} {eps:g} {step}"] = (100 * float(hit.accuracy.iloc[0]) if len(hit)
                                                                   else math.nan)
        out.append(record)
    order = {n: i for i, n in enumerate(names)}
    frame = pd.DataFrame(out)
    return frame.sort_values(["name", "seed"], key=lambda c: c.map(order) if c.name == "name" else c,
                             ignore_index=True) if len(frame) else frame


def attack_step_summary(effect: pd.DataFrame, dataset: str = "mnist",
                        points: Sequence[tuple[str, float]] = STEP_POINTS) -> pd.DataFrame:
    """:func:`attack_step_effect` averaged over seeds, with the paper's number beside each point it prints; one row
    per run name, columns (point, scaled | fixed | paper) and the seeds."""
    if effect.empty:
        return pd.DataFrame()
    paper = paper_points(dataset)
    mean = effect.groupby("name", sort=False).mean(numeric_only=True)
    columns: dict[tuple[str, str], pd.Series] = {("", "seeds"): effect.groupby("name", sort=False)["seed"].nunique(),
                                                 ("clean", "both"): mean["clean"]}
    for attack, eps in points:
        point = f"{ATTACK_NAMES[attack]} ε={eps:g}"
        columns[(point, "scaled")] = mean[f"{ATTACK_NAMES[attack]} {eps:g} scaled"].round(1)
        columns[(point, "fixed")] = mean[f"{ATTACK_NAMES[attack]} {eps:g} fixed"].round(1)
        columns[(point, "paper")] = pd.Series({n: paper.get((n, attack, round(eps, 6)), "–")
                                               for n in mean.index})  # as the paper prints it; – where it does not
    columns[("clean", "both")] = columns[("clean", "both")].round(1)
    out = pd.DataFrame(columns)
    out.index.name = "model"
    return out


def flat_beyond_reach(table: pd.DataFrame, dataset: str = "mnist", attack: str = "mifgsm") -> tuple[float, float, int]:
    """How flat the fixed-step ``attack`` curve is where ε exceeds the distance its steps can travel (10·2/255):
    (the reach, the largest change of any run's accuracy in points across those ε, the runs measured)."""
    from ..core.evaluate import FIXED_ALPHA, FIXED_STEPS

    reach = FIXED_STEPS * FIXED_ALPHA
    rows = table[(table["dataset"] == dataset) & (table["attack"] == attack) & (table["attack_step"] == "fixed")
                 & (table["eps"] >= reach)]
    spans = rows.groupby(["name", "seed"])["accuracy"].agg(lambda a: 100 * (a.max() - a.min()))
    return reach, float(spans.max()) if len(spans) else math.nan, len(spans)


def findings(verdicts: pd.DataFrame) -> dict[str, str]:
    """The short answers the book's index gives after its verdict table, in plain text, from :func:`evaluate`'s
    verdicts: ``sgt`` (do SGT's claimed gains over ST hold?) and ``asgt`` (is ASGT the most robust, and do its
    headline gains hold?). Each names the preset and counts the verdicts; the table above them has the numbers."""
    rows = {r.key: r for r in verdicts.itertuples()}
    preset = verdicts["preset"].iloc[0] if not verdicts.empty else "?"

    def tally(keys: Sequence[str], what: str) -> str:
        judged = [k for k in keys if rows[k].verdict in JUDGED]
        by = {v: [k for k in judged if rows[k].verdict == v] for v in JUDGED}
        missing = len(keys) - len(judged)
        parts = [f"{len(by[REPRODUCED])} hold" + (f" ({', '.join(by[REPRODUCED])})" if by[REPRODUCED] else ""),
                 f"{len(by[NOT_REPRODUCED])} {'is' if len(by[NOT_REPRODUCED]) == 1 else 'are'} not reproduced"]
        if by[INCONCLUSIVE]:
            parts.append(f"{len(by[INCONCLUSIVE])} {'is' if len(by[INCONCLUSIVE]) == 1 else 'are'} inconclusive "
                         f"({', '.join(by[INCONCLUSIVE])})")
        return (f"Of the {len(judged)} {what} judged under the preset {preset}, " + ", ".join(parts)
                + (f"; {missing} more could not be judged" if missing else "") + ".")

    sgt = [c.key for c in CLAIMS if c.kind == "gain" and c.method.startswith("sgt") and c.key in rows]
    asgt = [c.key for c in CLAIMS if c.method.startswith("asgt") and c.kind != "absolute" and c.key in rows]
    return {"sgt": tally(sgt, "claimed gains of SGT over ST"),
            "asgt": tally(asgt, "claims that ASGT is the most robust")}


def verdict_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    counts = verdicts["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


# --------------------------------------------------------------------------- paper vs. code
@dataclass(frozen=True)
class VariantDifference:
    """How far two run names' curves are apart on one dataset, against the noise of the measurement."""

    dataset: str
    a: str
    b: str
    max_abs_delta: float          # points, max over the grid of |mean_a − mean_b|
    attack: str                   # where the max is
    eps: float
    noise: float                  # standard error of the difference at that point, points
    noise_kind: str               # "seeds" (spread across seeds) or "binomial" (one seed: test-set sampling)
    n_points: int                 # grid points compared
    n_exceeding: int              # points where |Δ| > 2 standard errors
    seeds: int

    @property
    def matters(self) -> bool:
        return self.n_exceeding > 0

    def sentence(self) -> str:
        yardstick = ("the standard error from the spread across seeds" if self.noise_kind == "seeds" else
                     "the binomial standard error of an accuracy on this many test images (one seed: the spread "
                     "across seeds is unknown)")
        verdict = ("the difference matters" if self.matters else "the difference is within the noise")
        return (f"On {DATASET_NAMES.get(self.dataset, self.dataset)}, {self.a} and {self.b} differ by at most "
                f"{self.max_abs_delta:.1f} points ({ATTACK_NAMES.get(self.attack, self.attack)}, ε={self.eps:g}), "
                f"where twice {yardstick} is {2 * self.noise:.1f} points; {self.n_exceeding} of {self.n_points} "
                f"grid points differ by more than twice their standard error, so {verdict}.")


def variant_difference(table: pd.DataFrame, dataset: str, a: str, b: str) -> VariantDifference:
    """Compare the curves of run names ``a`` and ``b`` on ``dataset`` point by point (every attack and ε)."""
    curves = mean_curves(table[table["dataset"] == dataset])
    ca = curves[curves.name == a].set_index(["attack", "eps"])
    cb = curves[curves.name == b].set_index(["attack", "eps"])
    if ca.empty or cb.empty:
        raise ValueError(f"no finished runs of {a if ca.empty else b} on {dataset}")
    joined = ca.add_suffix("_a").join(cb.add_suffix("_b"), how="inner")
    if joined.empty:
        raise ValueError(f"{a} and {b} on {dataset} share no (attack, ε) point")
    seeds = int(min(joined["seeds_a"].min(), joined["seeds_b"].min()))
    delta = joined["mean_a"] - joined["mean_b"]
    if seeds >= 2:
        se = ((joined["sd_a"] ** 2 / joined["seeds_a"]) + (joined["sd_b"] ** 2 / joined["seeds_b"])) ** 0.5
        kind = "seeds"
    else:
        pa, pb = joined["mean_a"] / 100, joined["mean_b"] / 100
        se = 100 * (pa * (1 - pa) / joined["n_a"] + pb * (1 - pb) / joined["n_b"]) ** 0.5
        kind = "binomial"
    se = se.fillna(0.0)
    exceeding = int((delta.abs() > 2 * se + 1e-9).sum())
    at = delta.abs().idxmax()
    return VariantDifference(dataset, a, b, float(delta.abs().max()), at[0], float(at[1]), float(se.loc[at]), kind,
                             len(joined), exceeding, seeds)


def mask_overlaps(runs: Sequence[Any], dataset: str) -> pd.DataFrame:
    """Per masking run of ``dataset`` (mean over seeds): the Jaccard overlap between its M_k mask and the mask
    under each flipped convention of the official SGT code (``metrics.json`` ``mask_overlap``), and what two
    random masks share."""
    rows: dict[str, list[dict]] = {}
    for r in runs:
        if r.config["dataset"] == dataset and r.metrics.get("mask_overlap"):
            rows.setdefault(r.run_dir.parent.name, []).append(r.metrics["mask_overlap"])
    titles = {"saliency_of": "log p_y instead of the logit", "saliency_space": "normalised input instead of pixels",
              "saliency_abs_stage": "|·| after the channel mean instead of before", "random": "two random masks"}
    table = {name: pd.DataFrame(v).mean() for name, v in rows.items()}
    if not table:
        return pd.DataFrame(columns=list(titles.values()))
    return pd.DataFrame(table).T.rename(columns=titles)[list(titles.values())].round(3)


# --------------------------------------------------------------------------- Table 1
TABLE1_KEYS = ("model", "width", "epochs", "batch_size", "lr", "lr_schedule", "augment", "momentum",
               "weight_decay", "precision", "k", "lam", "eps_train", "seeds", "n_train", "n_test", "eval_eps",
               "pgd_steps", "mifgsm_steps")


def _fmt(values: Iterable[Any]) -> str:
    vals = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals) if vals else "–"


def hyperparameters(runs: Sequence[Any]) -> pd.DataFrame:
    """Table 1 beside the parameters the runs actually used (read from each run's resolved parameters).

    ``runs``: :class:`asgt_lib.pipeline.experiment.RunResult` objects (anything with ``.config`` and ``.metrics``).
    One row per (dataset, parameter): ``paper`` (None where the paper is silent), ``used``, ``matches``.
    """
    from ..core.config import MASKING_METHODS

    rows = []
    for dataset in sorted({r.config["dataset"] for r in runs}):
        rs = [r for r in runs if r.config["dataset"] == dataset]
        masking = [r for r in rs if r.config["method"] in MASKING_METHODS]
        used: dict[str, Any] = {}
        for key in TABLE1_KEYS:
            if key == "seeds":
                used[key] = len({r.config["seed"] for r in rs})
            elif key in ("n_train", "n_test"):
                used[key] = _fmt(r.metrics.get(key) for r in rs)
            elif key == "eval_eps":
                grids = {tuple(r.config["eval_eps"]) for r in rs}
                used[key] = "; ".join(_fmt(g) for g in sorted(grids))
            elif key in ("k", "lam"):
                used[key] = _fmt(r.config[key] for r in masking)
            else:
                used[key] = _fmt(r.config.get(key) for r in rs)
        paper = PAPER_TABLE1.get(dataset, {})
        for key in TABLE1_KEYS:
            p = paper.get(key)
            shown = _fmt([p]) if p is not None else "not stated"
            u = used[key] if not isinstance(used[key], int) else str(used[key])
            rows.append({"dataset": dataset, "parameter": key, "paper": shown, "used": u,
                         "matches": None if p is None else _matches(p, u, key)})
    return pd.DataFrame(rows)


#: The methods of the paper's figures (Figs. 2-5), with the variant of its authors' probable code.
GRID_METHODS = ("st", "sgt", "at-fgsm", "sga", "asgt", "asgt-code")


def is_grid_run(config: dict[str, Any]) -> bool:
    """Whether a run (its resolved ``config.json``) belongs to the paper's grid, as Table 1 describes it: a method
    of the figures with λ and ε_train as every run of that dataset has them (``params/datasets.yaml``), the
    attack of the paper. The field's baselines and controls (FGSM-RS, PGD-AT, ASGT-RS, λ = 0, other ε_train) are
    not, and the Table 1 page lists them apart."""
    from ..core.config import default_params_dir, load_yaml

    base = load_yaml(default_params_dir() / "datasets.yaml")[config["dataset"]]
    return (config["method"] in GRID_METHODS and float(config.get("lam", base["lam"])) == float(base["lam"])
            and abs(float(config.get("eps_train", base["eps_train"])) - float(base["eps_train"])) < 1e-9
            and config.get("train_attack", base["train_attack"]) == base["train_attack"])


def controls_table(runs: Sequence[Any]) -> pd.DataFrame:
    """The runs outside the paper's grid (:func:`is_grid_run`), one row per run name: what differs from the grid
    (method, λ, ε_train, inner attack) and how many seeds; what they answer is on the field page."""
    from ..core.config import MASKING_METHODS, default_name

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in runs:
        c = r.config
        if is_grid_run(c):
            continue
        key = (c["dataset"], c["name"] or default_name(c["method"], c["k"]))
        row = rows.setdefault(key, {"dataset": c["dataset"], "run": key[1], "method": c["method"],
                                    "λ": _fmt([c["lam"]]) if c["method"] in MASKING_METHODS else "–",
                                    "ε_train": _fmt([c["eps_train"]]), "inner attack": c["train_attack"],
                                    "seeds": 0})
        row["seeds"] += 1
    return pd.DataFrame(list(rows.values()), columns=["dataset", "run", "method", "λ", "ε_train", "inner attack",
                                                      "seeds"])


def _matches(paper: Any, used: str, key: str) -> bool:
    parts = [s.strip() for s in used.split(",")]
    if key == "k":  # Fig. 2/3 add a second k: the paper's k must be among those used
        return _fmt([paper]) in parts
    return parts == [_fmt([paper])]


def attack_step_findings(table: pd.DataFrame, by_step: pd.DataFrame) -> dict[str, str]:
    """The claims page's plain sentences on the two conventions, from ``experiment.collect(..., attack_step=None)``
    and :func:`evaluate_by_attack_step`: ``mnist`` (what the fixed step does to the claims' MNIST numbers),
    ``flat`` (why the fixed-step MI-FGSM curve is flat), ``cifar10`` (whether the conventions agree on CIFAR-10),
    ``verdicts`` (which verdicts change)."""
    out: dict[str, str] = {}
    effect = attack_step_effect(table, "mnist")
    if effect.empty:
        out["mnist"] = ("No MNIST run the claims read has been scored under the paper's probable attack yet "
                        "(asgt batch --add-attack-steps).")
    else:
        parts = []
        for attack, eps in STEP_POINTS[1:]:
            name = f"{ATTACK_NAMES[attack]} {eps:g}"
            gap = effect[f"{name} fixed"] - effect[f"{name} scaled"]
            parts.append(f"{ATTACK_NAMES[attack]} at ε = {eps:g} leaves {gap.mean():+.1f} points on average "
                         f"(from {gap.min():+.1f} to {gap.max():+.1f})")
        runs = effect.groupby("name")["seed"].nunique()
        seeds = f"{runs.min()}" if runs.min() == runs.max() else f"{runs.min()}–{runs.max()}"
        out["mnist"] = (f"On the {len(effect)} MNIST runs scored under both ({len(runs)} models, "
                        f"{seeds} seed{'s' if runs.max() > 1 else ''} each), the paper's probable attack against the step sized "
                        f"to ε: " + "; ".join(parts) + ". FGSM has no step and gives the same numbers under both.")
    reach, span, n = flat_beyond_reach(table, "mnist")
    out["flat"] = (f"With α = 2/255 and 10 steps, MI-FGSM (which starts at the image itself) never moves more than "
                   f"10 × 2/255 ≈ {reach:.3f} from it, so for every ε above that the projection onto the ε-ball "
                   f"never binds and the attack returns the same images: " +
                   (f"across the ε ≥ {reach:.3f} of the grid, the accuracy of the {n} MNIST runs scored so changes "
                    f"by at most {span:.1f} points." if n else "no MNIST run has been scored so yet.") +
                   " PGD adds a random start drawn from the whole ε-ball, so its curve still falls slowly with ε.")
    cifar = (table[(table["dataset"] == "cifar10") & (table["eps"] > _EPS_TOL)] if "attack_step" in table
             else table.iloc[:0])
    wide = (cifar.pivot_table(index=["name", "seed", "attack", "eps"], columns="attack_step", values="accuracy")
            if not cifar.empty else pd.DataFrame())
    if {"scaled", "fixed"} <= set(wide.columns) and wide.dropna().shape[0]:
        both = wide.dropna()
        gap = 100 * (both["fixed"] - both["scaled"]).abs()
        worst = gap.idxmax()
        runs = sorted({f"{n} seed {s}" for n, s, _, _ in both.index})
        which = ", ".join(runs) if len(runs) <= 4 else f"{len(runs)} runs"
        out["cifar10"] = (f"CIFAR-10 (ε ≤ 0.03, within the fixed step's reach): on {which}, the two "
                          f"conventions differ by at most {gap.max():.1f} points ({ATTACK_NAMES[worst[2]]} at "
                          f"ε = {worst[3]:g}), {gap.mean():.1f} on average over the attacks and ε of the grid.")
    else:
        out["cifar10"] = "No CIFAR-10 run has been scored under the paper's probable attack yet."
    steps = set(by_step["attack_step"])
    if {"scaled", "fixed"} <= steps:
        wide_v = by_step.pivot(index="key", columns="attack_step", values="verdict")
        judged = wide_v[wide_v["fixed"].isin(JUDGED) & wide_v["scaled"].isin(JUDGED)]
        moved = judged[judged["fixed"] != judged["scaled"]]
        out["verdicts"] = (f"Of the {len(judged)} claims judged under both conventions, "
                           + (f"{len(moved)} change{'s' if len(moved) == 1 else ''} verdict: " + "; ".join(f"{k} ({r.scaled} → {r.fixed})"
                                                                           for k, r in moved.iterrows())
                              if len(moved) else "none changes verdict") + ".")
    else:
        out["verdicts"] = "No claim can be judged under the paper's probable attack yet."
    return out
