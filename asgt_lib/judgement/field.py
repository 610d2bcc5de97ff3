"""ASGT against the field: the baselines a reviewer asks for, and the question the paper leaves open.

The paper's AT-FGSM baseline falls *below* ST under PGD on MNIST, the signature of catastrophic overfitting, which
Wong et al. (2020) remove with a random start (FGSM-RS). So is ASGT's gain over AT-FGSM its saliency term, or
only another way out of catastrophic overfitting? The grid answers it with a 2×2 design plus two references:

==================  ===================  ===============================================
run                 inner attack         loss
==================  ===================  ===============================================
``at-fgsm``         FGSM                 CE(X) + CE(X')
``asgt``            FGSM                 CE(X) + CE(X') + λ·KL[f(X̃') ‖ f(X)]
``asgt-rs-lam0``    FGSM-RS              CE(X) + CE(X')               (``asgt-rs`` with λ = 0)
``asgt-rs``         FGSM-RS              CE(X) + CE(X') + λ·KL[f(X̃') ‖ f(X)]
``fgsm-rs``         FGSM-RS              CE(X')   (Wong et al. 2020, as published)
``pgd-at``          PGD                  CE(X')   (Madry et al. 2018, as published)
==================  ===================  ===============================================

Everything here reads finished runs (robustness tables) and the audit (AutoAttack at the standard budget), so the
page and the closing notes show the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .audit import Audit
from .sanity import STANDARD_EPS

#: The budget of the paper's PGD claims (MNIST: Sec. 4.3 and the abstract; CIFAR-10: Fig. 3 and 5).
PAPER_PGD_EPS = {"mnist": 0.2, "cifar10": 0.02}
#: Run names of the field, in the order the tables show them (masking runs carry their k in the name).
FIELD_ORDER = ("st", "sgt", "at-fgsm", "sga", "asgt", "asgt-code", "asgt-rs-lam0", "asgt-rs", "fgsm-rs", "pgd-at")

#: Published AutoAttack accuracies of reference defences at the standard budgets. Other architectures, budgets
#: and training lengths than this project's: for scale only.
PUBLISHED = (
    {"dataset": "mnist", "eps": 0.3, "defence": "PGD-AT (Madry et al. 2018), MNIST challenge CNN",
     "AutoAttack (%)": 88.50, "source": "Croce & Hein (2020), AutoAttack"},
    {"dataset": "mnist", "eps": 0.3, "defence": "FGSM-RS (Wong et al. 2020), their MNIST CNN",
     "AutoAttack (%)": 82.93, "source": "Croce & Hein (2020), AutoAttack"},
    {"dataset": "cifar10", "eps": 8 / 255, "defence": "FGSM-RS (Wong et al. 2020), PreAct ResNet-18",
     "AutoAttack (%)": 43.21, "source": "RobustBench CIFAR-10 L∞ leaderboard"},
)


def _family(name: str) -> str:
    """``asgt-k0.3`` -> ``asgt``; ``asgt-rs-lam0`` stays; unknown names stay as they are."""
    for family in sorted(FIELD_ORDER, key=len, reverse=True):
        if name == family or name.startswith(f"{family}-k"):
            return family
    return name


def _order(names) -> list[str]:
    rank = {f: i for i, f in enumerate(FIELD_ORDER)}
    return sorted(names, key=lambda n: (rank.get(_family(n), len(rank)), n))


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds and its Student-t interval (NaN bounds for one seed)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    if len(v) < 2 or v.std() == 0:
        return float(v.mean()), (math.nan if len(v) < 2 else float(v.mean())), \
            (math.nan if len(v) < 2 else float(v.mean()))
    lo, hi = stats.t.interval(level, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    return float(v.mean()), float(lo), float(hi)


def _fmt(m: tuple[float, float, float]) -> str:
    mean, lo, hi = m
    if math.isnan(mean):
        return "–"
    return f"{mean:.1f}" if math.isnan(lo) else f"{mean:.1f} [{lo:.1f}, {hi:.1f}]"


def per_seed(table: pd.DataFrame, result: Audit, dataset: str) -> pd.DataFrame:
    """One row per run and seed: clean, PGD at the paper's ε (the run's own PGD-10, full test subset of the
    preset), AutoAttack and the per-example worst case at the standard budget (audit points), all in %."""
    t = table[table.dataset == dataset]
    eps = PAPER_PGD_EPS[dataset]
    v = result.verdicts(dataset)
    v = v[(v["ε"] - round(STANDARD_EPS[dataset], 4)).abs() < 1e-9]  # verdicts() rounds ε to 4 decimals
    rows = []
    for (name, seed), g in t.groupby(["name", "seed"]):
        clean = g[(g.eps == 0) & (g.attack == "pgd")].accuracy
        pgd = g[(g.attack == "pgd") & ((g.eps - eps).abs() < 1e-9)].accuracy
        a = v[(v.model == name) & (v.seed == seed)]
        rows.append({"dataset": dataset, "model": name, "method": g.method.iloc[0], "seed": int(seed),
                     "clean": 100 * float(clean.iloc[0]) if len(clean) else math.nan,
                     "pgd": 100 * float(pgd.iloc[0]) if len(pgd) else math.nan,
                     "autoattack": float(a["AutoAttack (%)"].iloc[0]) if len(a) else math.nan,
                     "worst": float(a["worst case (%)"].iloc[0]) if len(a) else math.nan})
    return pd.DataFrame(rows)


def field_table(table: pd.DataFrame, result: Audit, dataset: str) -> pd.DataFrame:
    """Per run: seeds, clean, PGD at the paper's ε, AutoAttack and worst case at the standard budget (mean
    [95% t-interval] over seeds, %), and the catastrophic-overfitting flag of the audit."""
    s = per_seed(table, result, dataset)
    flags = result.overfitting_flags(dataset)
    eps = PAPER_PGD_EPS[dataset]
    std = "0.3" if dataset == "mnist" else "8/255"
    rows = []
    for name in _order(s.model.unique()):
        g = s[s.model == name]
        f = flags[flags.model == name] if len(flags) else flags
        co = (f["catastrophic overfitting"] == "FLAG").sum() if len(f) else 0
        rows.append({"model": name, "seeds": len(g), "clean (%)": _fmt(mean_interval(g.clean)),
                     f"PGD-10 ε={eps:g} (%)": _fmt(mean_interval(g.pgd)),
                     f"AutoAttack ε={std} (%)": _fmt(mean_interval(g.autoattack)),
                     f"worst case ε={std} (%)": _fmt(mean_interval(g.worst)),
                     "catastrophic overfitting": f"{co}/{len(f)} seeds" if len(f) else "not monitored"})
    return pd.DataFrame(rows).set_index("model")


def published_table(dataset: str) -> pd.DataFrame:
    p = pd.DataFrame([r for r in PUBLISHED if r["dataset"] == dataset])
    p["ε"] = p.eps.map(lambda e: "0.3" if abs(e - 0.3) < 1e-9 else "8/255")
    return p[["defence", "ε", "AutoAttack (%)", "source"]].set_index("defence")


def compare(s: pd.DataFrame, a: str, b: str, metric: str) -> dict:
    """a − b on ``metric`` over the seeds both have: mean difference, its paired t-interval (seeds ≥ 2), and a
    verdict word: ``higher`` / ``lower`` only when the interval excludes 0, ``level`` when it contains 0,
    ``one seed`` when there is no interval, ``missing`` when a run is absent."""
    x, y = (s[s.model == n].set_index("seed")[metric] for n in (a, b))
    seeds = sorted(set(x.index) & set(y.index))
    if not seeds:
        return {"diff": math.nan, "lo": math.nan, "hi": math.nan, "word": "missing", "seeds": 0}
    d = (x.loc[seeds] - y.loc[seeds]).to_numpy(dtype=float)
    mean, lo, hi = mean_interval(d)
    if len(d) < 2:
        word = "one seed"
    elif lo > 0:
        word = "higher"
    elif hi < 0:
        word = "lower"
    else:
        word = "level"
    return {"diff": mean, "lo": lo, "hi": hi, "word": word, "seeds": len(d)}


def _name(s: pd.DataFrame, family: str) -> str | None:
    names = [n for n in s.model.unique() if _family(n) == family]
    return names[0] if names else None


def _sentence(s: pd.DataFrame, a: str, b: str, metric: str, what: str) -> str:
    na, nb = _name(s, a), _name(s, b)
    if na is None or nb is None:
        return f"{what}: not computed (run {a if na is None else b} missing)."
    c = compare(s, na, nb, metric)
    if c["word"] == "missing":
        return f"{what}: no seed in common."
    diff = f"{c['diff']:+.1f} points"
    if c["word"] == "one seed":
        return (f"{what}: {na} − {nb} = {diff} on one seed; with no interval over seeds this is NOT "
                f"ESTABLISHED.")
    interval = f"[{c['lo']:+.1f}, {c['hi']:+.1f}]"
    verdict = {"higher": "YES", "lower": "NO, it is lower", "level": "NOT DISTINGUISHABLE"}[c["word"]]
    return f"{what}: {verdict} ({na} − {nb} = {diff}, 95% interval {interval} over {c['seeds']} seeds)."


def answers(table: pd.DataFrame, result: Audit, dataset: str) -> dict[str, str]:
    """The page's sentences for ``dataset`` (plain text: ``glue:text`` shows no markup), each from the numbers: does ASGT beat ``asgt-rs`` and ``fgsm-rs``,
    does the saliency term add anything once the random start is there, and does ASGT's robustness survive
    AutoAttack."""
    s = per_seed(table, result, dataset)
    eps = PAPER_PGD_EPS[dataset]
    out = {
        "asgt_vs_asgt_rs": _sentence(s, "asgt", "asgt-rs", "autoattack",
                                     "Does ASGT beat ASGT-RS under AutoAttack (is the plain FGSM start better?)"),
        "asgt_vs_fgsm_rs": _sentence(s, "asgt", "fgsm-rs", "autoattack", "Does ASGT beat FGSM-RS under AutoAttack"),
        "saliency_term_rs": _sentence(s, "asgt-rs", "asgt-rs-lam0", "autoattack",
                                      "Does the saliency term add robustness once the random start is there "
                                      "(ASGT-RS vs. the same loss with λ = 0)"),
        "saliency_term_fgsm": _sentence(s, "asgt", "at-fgsm", "pgd",
                                        f"Does ASGT beat AT-FGSM under the paper's PGD-10 at ε = {eps:g}"),
    }
    asgt, st = _name(s, "asgt"), _name(s, "st")
    if asgt and st:
        a, b = mean_interval(s[s.model == asgt].autoattack)[0], mean_interval(s[s.model == st].autoattack)[0]
        p = mean_interval(s[s.model == asgt].pgd)[0]
        survives = _sentence(s, "asgt", "st", "autoattack", "Does ASGT's gain over ST survive AutoAttack")
        out["asgt_survives_autoattack"] = (f"{survives} ASGT keeps {a:.1f}% under AutoAttack at the standard "
                                           f"budget (ST {b:.1f}%), against {p:.1f}% under the paper's PGD-10 at "
                                           f"ε = {eps:g}.")
    else:
        out["asgt_survives_autoattack"] = "Does ASGT's robustness survive AutoAttack: not computed (run missing)."
    return out
