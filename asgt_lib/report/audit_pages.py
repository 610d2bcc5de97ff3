"""Text and tables of the audit pages ("Is the robustness real?", "Are the maps better?"), from an
:class:`asgt_lib.judgement.audit.Audit`: the judgement is :mod:`asgt_lib.judgement`'s, only its wording lives here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..judgement.audit import VERDICT_ATTACKS, Audit, AuditSettings, audit, claims_weakened, unaudited_runs
from ..judgement.claims import CLAIMS, DATASET_NAMES
from ..judgement.sanity import reference_table
from . import book


def attack_titles(settings: AuditSettings) -> dict[str, str]:
    """Attack rows of the sanity checks at ε_std, weakest first, with their axis labels."""
    n = settings.sanity.names
    titles = {"clean": "clean", "fgsm": "FGSM", "transfer": "transfer from ST", n["pgd"]: "PGD-10 (the run's)",
              n["pgd1"]: "PGD-100", n["pgdR"]: "PGD-100×5", n["cw"]: "PGD-CW-100",
              "autoattack:apgd-ce": "APGD-CE",
              "autoattack": "AutoAttack", "pgd+square": "PGD+Square", "worst-case": "worst case"}
    return titles


def _verdicts_by_run(result: Audit, dataset: str) -> pd.DataFrame:
    v = result.verdicts(dataset)
    return v.drop(columns=["dataset"]).set_index(["model", "seed", "ε"]) if len(v) else v


def verdict_table(result: Audit, dataset: str):
    """Per model, seed and budget (rows as in :meth:`Audit.verdicts`): the verdict with the checks passed ("FAIL
    (8/10)", on one line), the failed checks (spelt with spaces, so that they wrap) and the paper's claims they
    weaken. The accuracies are :func:`accuracy_table`'s: the two side by side were 1,346 px wide, twice the text
    column at 1280 px (issue 36)."""
    v = _verdicts_by_run(result, dataset)
    if len(v):
        v = book.one_line(pd.DataFrame({"verdict": v["verdict"] + " (" + v["checks passed"] + ")",
                                        "failed checks": v["failed checks"].str.replace("_", " "),
                                        "claims weakened": v["claims weakened"]}), ["verdict"])
    return book.narrow_table(v, f"verdicts-{result.preset}-{dataset}")


def accuracy_table(result: Audit, dataset: str):
    """Per model, seed and budget: the accuracy (%) under each attack of the checks at that ε, weakest first, and
    the worst case per example; headers turned so that nine attacks fit the text column."""
    v = _verdicts_by_run(result, dataset)
    columns = {f"{title} (%)": title for title in VERDICT_ATTACKS.values()}
    return book.narrow_table(v[[c for c in columns if c in v]].rename(columns=columns),
                             f"accuracies-{result.preset}-{dataset}", vertical_headers=True)


def check_table(result: Audit, dataset: str):
    """:meth:`Audit.check_matrix` with its check names turned upright: ten ✓/✗ columns in the text column."""
    return book.narrow_table(result.check_matrix(dataset), f"checks-{result.preset}-{dataset}",
                             vertical_headers=True)


def failure_details(result: Audit, dataset: str) -> str:
    """Markdown bullets: every failed check of ``dataset``'s runs, with the numbers behind it."""
    c = result.checks[(result.checks.dataset == dataset) & ~result.checks.passed]
    if c.empty:
        return "Every check passes for every model of this dataset, at every budget."
    return "\n".join(f"- **{r.name}** at ε={r.budget:.3g}, `{r.check}`: {r.detail}." for r in c.itertuples())


def weakened_claims_text(result: Audit) -> str:
    """Markdown bullets: for each run that fails a check, the paper's claims about it (or that none is made)."""
    by_key = {c.key: c for c in CLAIMS}
    lines = []
    for dataset in sorted(set(result.runs.dataset), key=list(DATASET_NAMES).index):
        v = result.verdicts(dataset)
        for row in v[v.verdict == "FAIL"].to_dict("records"):
            keys = claims_weakened(dataset, row["model"])
            claims = "; ".join(f"{by_key[k].statement} ({by_key[k].where}, `{k}`)" for k in keys) or \
                "the paper states no number for this model"
            lines.append(f"- **{dataset}/{row['model']}** fails {row['failed checks']} at ε={row['ε']:g}: "
                         f"{claims}.")
    return "\n".join(lines) or "No model fails a check, so no claim is weakened by the evaluation."


def reference_comparison(result: Audit) -> pd.DataFrame:
    """The published AutoAttack figures beside the best AutoAttack and worst-case accuracy measured here: one
    column per dataset, so that the long texts (the published model, its source) wrap in the text column."""
    ref = reference_table()
    rows = []
    for r in ref.itertuples():
        v = result.verdicts(r.dataset)
        v = v[(v["ε"] - r.eps).abs() < 1e-4]
        best = v.sort_values("AutoAttack (%)", ascending=False).iloc[0] if len(v) else None
        rows.append({"dataset": r.dataset, "ε": round(r.eps, 4), "published model": r.model,
                     "published AutoAttack": r.accuracy_text, "source": r.source,
                     "best model here": best["model"] if best is not None else "–",
                     "its AutoAttack (%)": best["AutoAttack (%)"] if best is not None else float("nan"),
                     "its worst case (%)": best["worst case (%)"] if best is not None else float("nan")})
    return pd.DataFrame(rows).set_index("dataset").T


def runs_once(names: list[str], seeds: dict[str, int]) -> str:
    """Run names listed once each, in first-seen order, with how many of their seeds are meant:
    ``asgt-k0.1 (2 of 2 seeds), st (1 of 3 seeds)``."""
    counts = pd.Series(names, dtype=object).value_counts(sort=False)
    return ", ".join(f"{name} ({k} of {seeds.get(name, k)} seed{'s' if seeds.get(name, k) != 1 else ''})"
                     for name, k in counts.items())


def faithfulness_summary(result: Audit, dataset: str) -> str:
    """One sentence: the most faithful map by deletion ratio, and how ASGT and SGT compare with ST."""
    fill = result.settings.faithfulness.headline_fill
    s = result.faithfulness
    d = s[(s.dataset == dataset) & (s.metric == "deletion_ratio") & (s.fill == fill)]
    if d.empty:
        return "no faithfulness numbers."
    per = d.groupby("name")[["value", "ci_low", "ci_high"]].mean().sort_values("value")
    best = per.index[0]
    text = f"the most faithful maps by deletion ratio ({fill} fill) are those of {best} ({per.value.iloc[0]:.3f})"
    if "st" in per.index:
        st = per.loc["st"]
        parts = []
        for name in per.index:
            if name == "st" or not name.startswith(("asgt", "sgt")):
                continue
            r = per.loc[name]
            if r.ci_high < st.ci_low:
                word = "more faithful than ST's (intervals apart)"
            elif r.ci_low > st.ci_high:
                word = "less faithful than ST's (intervals apart)"
            else:
                word = "not distinguishable from ST's (intervals overlap)"
            parts.append(f"{name} {r.value:.3f}: {word}")
        text += f"; ST {st.value:.3f}" + ("; " + "; ".join(parts) if parts else "")
    fails = result.faithfulness_table(dataset)
    failed = fails.loc[fails["randomisation check"] == "FAIL", "model"].tolist()
    seeds = fails.groupby("model").size().to_dict()
    text += ". Randomisation check: " + (f"fails for {runs_once(failed, seeds)}" if failed else
                                         "every map passes") + "."
    return text


def deletion_by_method(result: Audit) -> pd.DataFrame:
    """Deletion AUC (headline fill), its random-order reference and their ratio per dataset and run name,
    mean over seeds (the number the closing note and the page report)."""
    fill = result.settings.faithfulness.headline_fill
    s = result.faithfulness[result.faithfulness.fill == fill]
    rows = []
    for (dataset, name), g in s.groupby(["dataset", "name"], sort=False):
        def mean(metric: str, order: str) -> float:
            return float(g[(g.metric == metric) & (g.order == order)].value.mean())

        rows.append({"dataset": dataset, "model": name, "deletion AUC": round(mean("deletion_auc", "saliency"), 4),
                     "random-order AUC": round(mean("deletion_auc", "random"), 4),
                     "deletion ratio ↓": round(mean("deletion_ratio", "saliency/random"), 4),
                     "insertion ratio ↑": round(mean("insertion_ratio", "saliency/random"), 4),
                     "seeds": int(g.run.nunique())})
    return pd.DataFrame(rows).set_index(["dataset", "model"])


def cached_audit(results_dir: Path, preset: str) -> Audit | str:
    """The audit of ``preset`` read from the reports committed beside its runs, or, where there is none to read,
    a sentence that says why and how to compute it. Never computed here: a book page that shows another preset's
    audit (the full-width ``paper-cpu`` beside ``reference``, issue 36) has no weights at hand (checkpoints stay
    out of git), so a missing report would mean hours of training during a book build."""
    lacking = unaudited_runs(preset, results_dir)  # empty where the preset has no finished run
    if lacking:
        return (f"*{len(lacking)} finished run(s) of preset `{preset}` lack their audit: `asgt audit --preset "
                f"{preset}` computes it where their weights are (the batch's `--audit` does it as each run "
                f"finishes).*")
    try:
        return audit(results_dir, preset, progress=False, jobs=1)
    except FileNotFoundError:
        return (f"*No `{preset}` run is finished yet: `asgt batch --preset {preset} --jobs 1 --audit` computes "
                f"them with their audits.*")


def verdict_summary(result: Audit) -> tuple[str, int]:
    """Markdown bullets per dataset and budget (how many models pass every check, which fail and why), and the
    number of models that pass every check at every budget."""
    lines, passing = [], 0
    for dataset in sorted(set(result.runs.dataset), key=list(DATASET_NAMES).index):
        v = result.verdicts(dataset)
        for eps, g in v.groupby("ε", sort=False):
            failed = g[g.verdict == "FAIL"]
            seeds = g.groupby("model").size()
            fails = "; ".join(f"{m} ({len(f)} of {seeds[m]} seed{'s' if seeds[m] != 1 else ''}: "
                              f"{', '.join(dict.fromkeys(c for cs in f['failed checks'] for c in cs.split(', ')))})"
                              for m, f in failed.groupby("model", sort=False))
            lines.append(f"- **{DATASET_NAMES.get(dataset, dataset)}, ε = {eps:g}**: "
                         f"{int((g.verdict == 'PASS').sum())} of {len(g)} models pass every check"
                         + (f"; failed: {fails}" if fails else "") + ".")
        per_model = v.groupby(["model", "seed"]).verdict.apply(lambda s: bool((s == "PASS").all()))
        passing += int(per_model.sum())
    retrained = retrained_weights_text(result)
    return "\n".join(lines + ([f"- {retrained}"] if retrained else [])), passing


def retrained_weights_text(result: Audit) -> str:
    """Which reports checked weights trained again (a budget added after the run was committed without its
    checkpoint) whose training history differs from the committed run's: they check a model of the same recipe,
    not the one the run's curves measured. Empty when every recorded report checked the run's own weights."""
    r = result.retrained
    if r.empty:
        return ""
    def where(g: pd.DataFrame) -> str:
        return "; ".join(f"{run} at ε = {', '.join(f'{b:.3g}' for b in sorted(set(h.budget)))}"
                         + (f" (history differs by up to {h.max_difference.max():.3g})"
                            if h.max_difference.notna().any() else "") for run, h in g.groupby("run", sort=False))
    parts = [f"as the model checked: {where(g)}" if role == "model" else f"as the transfer source of: {where(g)}"
             for role, g in r.groupby("role", sort=True)]
    return ("**Checked on weights trained again** (the checkpoint was not kept and the retraining, on another CPU "
            "or thread count, did not repeat the committed training to the bit, so these reports check a model of "
            "the same recipe): "
            + "; ".join(parts) + ".")
