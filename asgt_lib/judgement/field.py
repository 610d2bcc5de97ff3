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

Everything here reads finished runs (robustness tables) and the audit (AutoAttack at each audited budget, the
collapse rule), so the page, the index and the closing notes show the same numbers. Intervals, ranges and the
seeds that would decide an open question follow :mod:`asgt_lib.judgement.stats`.
"""

from __future__ import annotations

import math

import pandas as pd

from ..core.config import ADVERSARIAL_METHODS
from . import stats
from .audit import Audit
from .claims import CLAIMS, INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, TOLERANCE
from .sanity import STANDARD_EPS

#: The budget of the paper's PGD claims (MNIST: Sec. 4.3 and the abstract; CIFAR-10: Fig. 3 and 5).
PAPER_PGD_EPS = {"mnist": 0.2, "cifar10": 0.02}
#: The AutoAttack budget the field's answers read: MNIST 0.2, since at the standard 0.3 every FGSM-based model sits
#: at 0-12% and the column cannot separate them; CIFAR-10 the standard 8/255.
ANSWER_AA_EPS = {"mnist": 0.2, "cifar10": STANDARD_EPS["cifar10"]}
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


def eps_text(eps: float) -> str:
    """0.3 -> "0.3"; 8/255 -> "8/255"."""
    return "8/255" if abs(eps - 8 / 255) < 1e-6 else f"{eps:g}"


def _autoattack(verdicts: pd.DataFrame, eps: float) -> pd.DataFrame:
    return verdicts[(verdicts["ε"] - round(eps, 4)).abs() < 1e-9]  # verdicts() rounds ε to 4 decimals


def per_seed(table: pd.DataFrame, result: Audit | None, dataset: str) -> pd.DataFrame:
    """One row per run and seed: clean, PGD at the paper's ε (the run's own PGD-10, full test subset of the
    preset), AutoAttack at every audited budget (``aa@<ε>``) and the per-example worst case at the standard
    budget (audit points), all in %; and whether the run collapsed (NaN where it is not judged). Without the
    audit (``result`` None), the robustness tables' columns alone."""
    t = table[table.dataset == dataset]
    eps = PAPER_PGD_EPS[dataset]
    v = result.verdicts(dataset) if result is not None else pd.DataFrame(columns=["ε", "model", "seed"])
    budgets = result.settings.budgets(dataset) if result is not None else [STANDARD_EPS[dataset]]
    flags = result.overfitting_flags(dataset) if result is not None else pd.DataFrame()
    rows = []
    for (name, seed), g in t.groupby(["name", "seed"]):
        clean = g[(g.eps == 0) & (g.attack == "pgd")].accuracy
        pgd = g[(g.attack == "pgd") & ((g.eps - eps).abs() < 1e-9)].accuracy
        row = {"dataset": dataset, "model": name, "method": g.method.iloc[0], "seed": int(seed),
               "clean": 100 * float(clean.iloc[0]) if len(clean) else math.nan,
               "pgd": 100 * float(pgd.iloc[0]) if len(pgd) else math.nan}
        for budget in budgets:
            a = _autoattack(v, budget)
            a = a[(a.model == name) & (a.seed == seed)]
            row[f"aa@{budget:g}"] = float(a["AutoAttack (%)"].iloc[0]) if len(a) else math.nan
            if budget == budgets[0]:
                row["worst"] = float(a["worst case (%)"].iloc[0]) if len(a) else math.nan
        f = flags[(flags.model == name) & (flags.seed == seed)] if len(flags) else flags
        row["collapsed"] = (float(f["catastrophic overfitting"].iloc[0] == "FLAG")
                            if len(f) and g.method.iloc[0] in ADVERSARIAL_METHODS else math.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["autoattack"] = out[f"aa@{budgets[0]:g}"] if len(out) else []
    return out


def collapse_count(s: pd.DataFrame, name: str) -> tuple[int, int]:
    """(seeds that collapsed, seeds judged) of run ``name`` in :func:`per_seed`'s table."""
    c = s.loc[s.model == name, "collapsed"].dropna()
    return int(c.sum()), len(c)


def collapse_text(k: int, n: int) -> str:
    return f"{k} of {n} seeds" if n else "not judged"


def field_table(table: pd.DataFrame, result: Audit, dataset: str) -> pd.DataFrame:
    """Per run: seeds, clean, PGD at the paper's ε, AutoAttack at every audited budget and worst case at the
    standard budget (mean [95% t-interval] over seeds, clipped to [0, 100]; the range below three seeds; %), and
    how many seeds collapsed (catastrophic overfitting, the audit's rule)."""
    s = per_seed(table, result, dataset)
    budgets = result.settings.budgets(dataset)
    std = eps_text(budgets[0])
    rows = []
    for name in _order(s.model.unique()):
        g = s[s.model == name]
        row = {"model": name, "seeds": len(g), "clean (%)": stats.estimate(g.clean).text(),
               f"PGD-10 ε={PAPER_PGD_EPS[dataset]:g} (%)": stats.estimate(g.pgd).text()}
        for budget in sorted(budgets):
            values = g[f"aa@{budget:g}"]
            audited = int(values.notna().sum())
            text = stats.estimate(values).text()
            row[f"AutoAttack ε={eps_text(budget)} (%)"] = (
                text if audited == len(g) or not audited else f"{text} ({audited} of {len(g)} seeds audited)")
        row[f"worst case ε={std} (%)"] = stats.estimate(g.worst).text()
        row["catastrophic overfitting"] = collapse_text(*collapse_count(s, name))
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


#: The AutoAttack budgets of the forest plot of the field, per dataset: MNIST's 0.2 separates the FGSM-based models,
#: which all sit near 0 at the standard 0.3.
FOREST_AA_EPS = {"mnist": (0.2, STANDARD_EPS["mnist"]), "cifar10": (STANDARD_EPS["cifar10"],)}


def autoattack_summary(table: pd.DataFrame, result: Audit, dataset: str) -> pd.DataFrame:
    """Per run and budget of :data:`FOREST_AA_EPS`: AutoAttack accuracy (%) over seeds (mean, clipped 95% interval
    or, below three seeds, the range), seeds, and collapsed seeds; what the field's forest plot draws."""
    s = per_seed(table, result, dataset)
    rows = []
    for budget in FOREST_AA_EPS[dataset]:
        column = f"aa@{budget:g}"
        if column not in s:
            continue
        for name in _order(s.model.unique()):
            e = stats.estimate(s.loc[s.model == name, column])
            if not e.seeds:
                continue
            low, high = ((min(e.values), max(e.values)) if e.shows_range else (e.low, e.high))
            k, n = collapse_count(s, name)
            rows.append({"dataset": dataset, "model": name, "eps": budget, "eps_text": eps_text(budget),
                         "mean": e.mean, "low": low, "high": high, "seeds": e.seeds,
                         "interval": "range" if e.shows_range else "t" if e.seeds >= 2 else "none",
                         "collapsed": f"{k}/{n}" if n else ""})
    return pd.DataFrame(rows, columns=["dataset", "model", "eps", "eps_text", "mean", "low", "high", "seeds",
                                       "interval", "collapsed"])


def published_table(dataset: str) -> pd.DataFrame:
    p = pd.DataFrame([r for r in PUBLISHED if r["dataset"] == dataset])
    p["ε"] = p.eps.map(eps_text)
    return p[["defence", "ε", "AutoAttack (%)", "source"]].set_index("defence")


def compare(s: pd.DataFrame, a: str, b: str, metric: str) -> dict:
    """a − b on ``metric`` over the seeds both have: the paired difference (:func:`stats.difference`), its values,
    and a verdict word: ``higher`` / ``lower`` only when the 95% interval excludes 0, ``level`` when it contains 0,
    ``one seed`` when there is no interval, ``missing`` when a run is absent or no seed has both numbers."""
    if metric not in s.columns:  # e.g. AutoAttack at a budget this preset's audit does not check
        return {"diff": math.nan, "lo": math.nan, "hi": math.nan, "word": "missing", "seeds": 0, "values": ()}
    x, y = (s[s.model == n].set_index("seed")[metric].dropna() for n in (a, b))
    seeds = sorted(set(x.index) & set(y.index))
    if not seeds:
        return {"diff": math.nan, "lo": math.nan, "hi": math.nan, "word": "missing", "seeds": 0, "values": ()}
    d = stats.difference((x.loc[seeds] - y.loc[seeds]).to_numpy(dtype=float))
    word = ("one seed" if d.seeds < 2 else "equal" if d.mean == 0 and d.sd == 0 else "higher" if d.low > 0
            else "lower" if d.high < 0 else "level")
    return {"diff": d.mean, "lo": d.low, "hi": d.high, "word": word, "seeds": d.seeds, "values": d.values,
            "estimate": d}


def _name(s: pd.DataFrame, family: str) -> str | None:
    names = [n for n in s.model.unique() if _family(n) == family]
    return names[0] if names else None


#: The answer words of a paired comparison (question asked as "is a higher than b?").
ANSWERS = {"higher": "YES", "lower": "NO, it is lower", "level": "NOT DISTINGUISHABLE", "one seed": "NOT ESTABLISHED",
           "equal": "NO, equal on every seed"}


def _unanswered(key: str, question: str, compared: str) -> dict:
    """An answer row before its numbers are in (the columns of :func:`answer_rows`)."""
    return {"key": key, "question": question, "compared": compared, "difference": "–", "interval": "–", "seeds": 0,
            "answer": "NOT COMPUTED", "to decide": "", "sentence": ""}


def _row(s: pd.DataFrame, key: str, a: str, b: str, metric: str, question: str) -> dict:
    """One answer: ``a`` − ``b`` on ``metric``, paired by seed."""
    na, nb = _name(s, a), _name(s, b)
    row = _unanswered(key, question, f"{na or a} − {nb or b}")
    if na is None or nb is None:
        row["sentence"] = f"{question}: not computed (run {a if na is None else b} missing)."
        return row
    c = compare(s, na, nb, metric)
    if c["word"] == "missing":
        row.update(sentence=f"{question}: not computed (" + ("no seed has both numbers" if metric in s.columns else
                                                           "not audited at this budget in this preset") + ").")
        return row
    d: stats.Estimate = c["estimate"]
    answer = ANSWERS[c["word"]]
    open_ = c["word"] in ("level", "one seed")
    row.update(difference=f"{d.mean:+.1f}", interval=d.interval_text(), seeds=d.seeds, answer=answer,
               **{"to decide": stats.seeds_note(d.values) if open_ else ""})
    detail = (f"{na} − {nb} = {d.mean:+.1f} points on one seed" if d.seeds < 2 else
              f"{na} − {nb} = {d.mean:+.1f} points, {'range' if d.shows_range else '95% interval'} "
              f"{d.interval_text().removeprefix('range ')} over {d.seeds} seeds")
    row["sentence"] = f"{question}: {answer} ({detail}" + (f"; {row['to decide']}" if open_ else "") + ")."
    return row


def _collapse_row(s: pd.DataFrame, key: str, a: str, b: str, question: str) -> dict:
    """Does ``a`` collapse less often than ``b``? Counts of collapsed seeds, Fisher's exact test."""
    na, nb = _name(s, a), _name(s, b)
    row = _unanswered(key, question, f"{na or a} vs {nb or b}")
    if na is None or nb is None:
        row["sentence"] = f"{question}: not computed (run {a if na is None else b} missing)."
        return row
    (ka, n_a), (kb, n_b) = collapse_count(s, na), collapse_count(s, nb)
    if not n_a or not n_b:
        row["sentence"] = f"{question}: not judged (no training monitor)."
        return row
    p = stats.fisher(ka, n_a, kb, n_b)
    one_seed = min(n_a, n_b) < 2
    every_or_none = not one_seed and {ka / n_a, kb / n_b} in ({0.0}, {1.0})  # both on every seed, or on none
    if p < 0.05:
        answer = "YES" if ka / n_a < kb / n_b else "NO, it collapses more often"
    elif one_seed:
        answer = ANSWERS["one seed"]
    elif every_or_none:
        answer = ANSWERS["equal"]
    else:
        answer = "NOT DISTINGUISHABLE"
    open_ = p >= 0.05 and not every_or_none
    row.update(difference=f"{ka}/{n_a} vs {kb}/{n_b}", interval=f"Fisher p = {p:.2g}", seeds=min(n_a, n_b),
               answer=answer, **{"to decide": _collapse_seeds_note(ka, n_a, kb, n_b) if open_ else ""})
    row["sentence"] = (f"{question}: {answer} ({na} collapsed on {collapse_text(ka, n_a)}, {nb} on "
                       f"{collapse_text(kb, n_b)}; Fisher's exact test p = {p:.2g}"
                       + (f"; {row['to decide']}" if row["to decide"] else "") + ").")
    return row


def _collapse_seeds_note(ka: int, n_a: int, kb: int, n_b: int) -> str:
    """The seeds that would decide an open collapse comparison (:func:`stats.fisher_seeds_to_decide`)."""
    if min(n_a, n_b) < 2:
        return "one seed: the collapse rates, and so the seeds needed, are unknown"
    if ka / n_a == kb / n_b:
        return "the rates are equal: no number of seeds would separate them"
    n = stats.fisher_seeds_to_decide(ka, n_a, kb, n_b)
    if n is None:
        return f"no number of seeds up to {stats.MAX_SEEDS} each would decide it at the measured rates"
    return f"about {n} seeds each would decide it at the measured rates (Fisher's exact test; {min(n_a, n_b)} now)"


def answer_rows(table: pd.DataFrame, result: Audit, dataset: str) -> pd.DataFrame:
    """The field's questions for ``dataset``, one row each, from the numbers: question, the runs compared, the
    difference with its interval (or range, below three seeds), seeds, the answer, and for an open question the
    seeds that would decide it. Does ASGT beat AT-FGSM under the paper's PGD, does it beat the random-start runs
    under AutoAttack, does the saliency term add anything once the random start is there, does ASGT's gain over ST
    survive AutoAttack, and does ASGT collapse less often than AT-FGSM?"""
    s = per_seed(table, result, dataset)
    eps, aa = PAPER_PGD_EPS[dataset], ANSWER_AA_EPS[dataset]
    metric, at = f"aa@{aa:g}", f"AutoAttack at ε = {eps_text(aa)}"
    rows = [
        _row(s, "saliency_term_fgsm", "asgt", "at-fgsm", "pgd",
             f"Does ASGT beat AT-FGSM under the paper's PGD-10 at ε = {eps:g}?"),
        _collapse_row(s, "collapse_asgt_vs_at", "asgt", "at-fgsm",
                      "Does ASGT collapse (catastrophic overfitting) on fewer seeds than AT-FGSM?"),
        _row(s, "asgt_vs_asgt_rs", "asgt", "asgt-rs", metric,
             f"Does ASGT beat ASGT-RS under {at} (is the plain FGSM start better)?"),
        _row(s, "asgt_vs_fgsm_rs", "asgt", "fgsm-rs", metric, f"Does ASGT beat FGSM-RS under {at}?"),
        _row(s, "saliency_term_rs", "asgt-rs", "asgt-rs-lam0", metric,
             f"Does the saliency term add robustness once the random start is there (ASGT-RS against the same loss "
             f"with λ = 0, {at})?"),
        _row(s, "asgt_survives_autoattack", "asgt", "st", metric, f"Does ASGT's gain over ST survive {at}?"),
    ]
    return pd.DataFrame(rows)


def answers(table: pd.DataFrame, result: Audit, dataset: str) -> dict[str, str]:
    """The answers of :func:`answer_rows` as plain sentences (``glue:text`` shows no markup), by key."""
    return dict(zip(*answer_rows(table, result, dataset)[["key", "sentence"]].to_numpy().T))


# --------------------------------------------------------------------------- the claims' training budget (issue 21)
#: The paper's headline gains of ASGT over ST under PGD-10 at the claims' ε (Abstract), by dataset.
HEADLINE = {c.dataset: c for c in CLAIMS if c.key in ("headline_mnist", "headline_cifar")}


def budget_suffix(dataset: str) -> str:
    """The run-name suffix of the runs trained at the claims' budget: ``-eps0.2`` (MNIST), ``-eps0.02``."""
    return f"-eps{PAPER_PGD_EPS[dataset]:g}"


def _gain_row(s: pd.DataFrame, key: str, a: str, b: str, metric: str, question: str, claim) -> dict:
    """``a`` − ``b`` on ``metric`` against a gain claim of the paper: reproduced when the whole interval clears its
    bound, not reproduced when it falls short, inconclusive when it contains it (as the claims page judges)."""
    from .claims import _clears

    row = _unanswered(key, question, f"{a} − {b}")
    c = compare(s, a, b, metric)
    if c["word"] == "missing":
        row["sentence"] = f"{question}: not computed (run {a} or {b} missing)."
        return row
    d: stats.Estimate = c["estimate"]
    bound = claim.value if claim.bound == "more-than" else claim.value - TOLERANCE
    if d.seeds < 2:
        answer = INCONCLUSIVE
    elif _clears(claim, d.low, TOLERANCE):
        answer = REPRODUCED
    elif not _clears(claim, d.high, TOLERANCE):
        answer = NOT_REPRODUCED
    else:
        answer = INCONCLUSIVE
    note = stats.seeds_note(d.values, bound) if answer == INCONCLUSIVE else ""
    row.update(difference=f"{d.mean:+.1f}", interval=d.interval_text(), seeds=d.seeds, answer=answer.upper(),
               **{"to decide": note})
    spread = ("on one seed" if d.seeds < 2 else f"{'range' if d.shows_range else '95% interval'} "
              f"{d.interval_text().removeprefix('range ')} over {d.seeds} seeds")
    row["sentence"] = (f"{question}: {answer.upper()} ({a} − {b} = {d.mean:+.1f} points, {spread}; the paper "
                       f"{claim.paper_text}" + (f"; {note}" if note else "") + ").")
    return row


def budget_rows(table: pd.DataFrame, result: Audit, dataset: str) -> pd.DataFrame:
    """The questions of the runs trained at the claims' budget (ε_train = MNIST 0.2, CIFAR-10 0.02; issue 21),
    paired by seed: does AT-FGSM still collapse there, does ASGT's gain over ST reach the paper's headline gain
    under PGD-10 at that ε and survive AutoAttack at it, and does ASGT beat AT-FGSM there?"""
    s = per_seed(table, result, dataset)
    eps, suffix = PAPER_PGD_EPS[dataset], budget_suffix(dataset)
    at, asgt, st = f"at-fgsm{suffix}", f"asgt{suffix}", _name(s, "st") or "st"
    rows = [
        _collapse_row(s, "budget_at_collapse", f"at-fgsm{suffix}", "at-fgsm",
                      f"Does AT-FGSM collapse on fewer seeds when trained at ε_train = {eps:g} than at the standard "
                      f"budget?"),
        _gain_row(s, "budget_headline", asgt, st, "pgd",
                  f"Does ASGT trained at ε_train = {eps:g} reach the paper's gain over ST under PGD-10 at "
                  f"ε = {eps:g}?", HEADLINE[dataset]),
        _row(s, "budget_autoattack", asgt, st, f"aa@{eps:g}",
             f"Does that gain survive AutoAttack at ε = {eps:g}?"),
        _row(s, "budget_saliency_term", asgt, at,
             "pgd", f"Does ASGT beat AT-FGSM when both train at ε_train = {eps:g} (PGD-10 at ε = {eps:g})?"),
    ]
    return pd.DataFrame(rows)


def budget_headline(table: pd.DataFrame, dataset: str) -> str:
    """One sentence for the claims page: what the runs trained at the claims' budget say of the paper's headline
    gain of ASGT over ST (PGD-10 at that ε; robustness tables only)."""
    s = per_seed(table, None, dataset)
    eps, suffix = PAPER_PGD_EPS[dataset], budget_suffix(dataset)
    return _gain_row(s, "budget_headline", f"asgt{suffix}", _name(s, "st") or "st", "pgd",
                     f"Trained at ε_train = {eps:g}, the claims' own budget", HEADLINE[dataset])["sentence"]
