"""Why the paper's numbers differ (issue 36): every MNIST claim judged in each cell of the three protocol differences
that stand between this project's verdicts and the paper's numbers.

* **width**: the book's preset (``reference``: AlexNet28 at a quarter of the paper's width) against ``paper-cpu``
  (Table 1 at full width, bf16 training step, 2,000 test images);
* **attack step**: ``scaled`` (the step sized to ε) against ``fixed`` (torchattacks' defaults, α = 2/255, the
  paper's probable attack; :mod:`asgt_lib.core.evaluate`);
* **ε_train**: the standard MNIST budget 0.3 against the claims' own 0.2 (``at-fgsm-eps0.2``, ``asgt-eps0.2``),
  for the claims that read AT-FGSM or ASGT.

A cell is judged exactly as the claims page judges a preset (:func:`asgt_lib.judgement.claims.evaluate`), on the
runs of that cell; a cell without runs says so. Everything here reads finished runs and cached audits only.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..core.config import ATTACK_STEPS, preset_overrides
from ..pipeline.experiment import collect, run_config, run_dirs
from .claims import (ATTACK_NAMES, CLAIMS, DATASET_NAMES, INCONCLUSIVE, JUDGED, NOT_REPRODUCED, REPRODUCED, Claim,
                     evaluate)

#: The preset that runs the paper's MNIST protocol on a CPU.
PAPER_WIDTH = "paper-cpu"
#: ε_train of the grid and the claims' own, and the run names each swaps in for the claims' adversarial runs.
EPS_TRAIN = {0.3: {}, 0.2: {"at-fgsm": "at-fgsm-eps0.2", "asgt-k0.3": "asgt-eps0.2"}}
#: Short verdict marks for the wide tables (a verdict spelled out in full would wrap at 1280 px).
MARKS = {REPRODUCED: "✓", NOT_REPRODUCED: "✗", INCONCLUSIVE: "?"}
STEP_NAMES = {"scaled": "step sized to ε", "fixed": "fixed 2/255"}


def mnist_claims() -> list[Claim]:
    return [c for c in CLAIMS if c.dataset == "mnist"]


def at_budget(claim: Claim, eps_train: float) -> Claim | None:
    """``claim`` with the runs trained at ``eps_train`` swapped in (:data:`EPS_TRAIN`); None when the claim reads
    no run that ε_train changes (ST and SGT train on clean images only)."""
    swap = EPS_TRAIN[eps_train]
    if not swap:
        return claim
    names = (claim.method, claim.baseline, *claim.rivals)
    if not any(n in swap for n in names if n):
        return None
    return dataclasses.replace(claim, method=swap.get(claim.method, claim.method),
                               baseline=swap.get(claim.baseline, claim.baseline) if claim.baseline else None,
                               rivals=tuple(swap.get(r, r) for r in claim.rivals))


def width_label(preset: str) -> str:
    return "paper width (paper-cpu)" if preset == PAPER_WIDTH else f"{preset} width"


def cells(results_dir: Path, preset: str, claims: Sequence[Claim] | None = None) -> pd.DataFrame:
    """One row per MNIST claim × width (``preset``, then ``paper-cpu``) × attack step × ε_train: the verdict row of
    :func:`claims.evaluate` with ``width``, ``attack_step`` and ``eps_train``; ``computed`` False where the cell has
    no runs yet (its verdict then says why)."""
    claims = list(claims or mnist_claims())
    rows = []
    for width in dict.fromkeys([preset, PAPER_WIDTH]):
        has_runs = bool(run_dirs(results_dir, width))
        table = collect(results_dir, width, attack_step=None) if has_runs else pd.DataFrame()
        for step in ATTACK_STEPS:
            rows_step = table[(table["attack_step"] == step) & (table["dataset"] == "mnist")] if has_runs else table
            for eps_train in EPS_TRAIN:
                for claim in claims:
                    judged = at_budget(claim, eps_train)
                    if judged is None:
                        continue
                    base = {"key": claim.key, "claim": claim.statement, "paper": claim.paper_text, "width": width,
                            "attack_step": step, "eps_train": eps_train, "kind": claim.kind,
                            "paper_value": claim.value}
                    if rows_step.empty:
                        rows.append({**base, "measured": "–", "seeds": 0, "verdict": "not computed", "computed": False,
                                     "measured_value": math.nan, "reason": f"no {width} run scored under {step}"})
                        continue
                    v = evaluate(rows_step, width, claims=[judged]).iloc[0].to_dict()
                    rows.append({**base, **{k: v[k] for k in ("measured", "seeds", "verdict", "measured_value",
                                                              "reason")}, "computed": v["seeds"] > 0})
    return pd.DataFrame(rows)


def cell_text(row) -> str:
    if not row["computed"]:
        return "not computed"
    mark = MARKS.get(row["verdict"], "–")
    return f"{row['measured'].removesuffix(' points')} {mark} ({row['seeds']})"  # gains: points, as the paper's


def wide(cells_: pd.DataFrame, width: str) -> pd.DataFrame:
    """The cells of one width as a table: one row per claim (with the paper's value), one column per attack step ×
    ε_train, each "measured mark (seeds)" (✓ reproduced, ✗ not reproduced, ? inconclusive, – not judged)."""
    sub = cells_[cells_["width"] == width].copy()
    if sub.empty:
        return pd.DataFrame()
    sub["cell"] = sub.apply(cell_text, axis=1)
    sub["column"] = sub.apply(lambda r: f"{STEP_NAMES[r['attack_step']]}, ε_train {r['eps_train']:g}", axis=1)
    order = list(dict.fromkeys(sub["key"]))
    out = sub.pivot(index="key", columns="column", values="cell").reindex(order)
    columns = [f"{STEP_NAMES[s]}, ε_train {e:g}" for s in ATTACK_STEPS for e in EPS_TRAIN]
    out = out[[c for c in columns if c in out.columns]].fillna("same as at 0.3")  # ST, SGT: clean training
    out.insert(0, "paper", sub.drop_duplicates("key").set_index("key")["paper"].reindex(order))
    out.index.name = "claim"
    out.columns.name = None
    return out


def differences(cells_: pd.DataFrame, preset: str) -> list[str]:
    """Plain sentences: for each protocol difference, how many of the judged verdicts it changes, measured from
    the reference cell (``preset``, step sized to ε, ε_train 0.3) with the other two held fixed; and which cell
    comes closest to the paper's number for the absolute claims."""
    def rows_of(width=preset, attack_step="scaled", eps_train=0.3) -> pd.DataFrame:
        return cells_[(cells_.width == width) & (cells_.attack_step == attack_step) & (cells_.eps_train == eps_train)]

    def judged_in(rows: pd.DataFrame) -> pd.DataFrame:
        return rows[rows["computed"] & rows["verdict"].isin(list(MARKS))].set_index("key")

    base = judged_in(rows_of())
    sentences = []
    moves = {"the paper's probable attack (fixed 2/255 step)": dict(attack_step="fixed"),
             "the claims' ε_train of 0.2": dict(eps_train=0.2),
             "the paper's width (paper-cpu)": dict(width=PAPER_WIDTH)}
    for what, change in moves.items():
        in_cell = rows_of(**change)
        other = judged_in(in_cell)
        common = base.index.intersection(other.index)
        if not len(common):
            started = in_cell[in_cell["computed"]]
            sentences.append(f"{what[0].upper()}{what[1:]}: " + (
                f"partly computed ({len(started)} claim{'s' if len(started) > 1 else ''} measured), but no verdict "
                "judged in the reference cell is judged there yet" if len(started) else "not computed yet")
                + ", so what it changes is not known.")
            continue
        changed = [k for k in common if base.loc[k, "verdict"] != other.loc[k, "verdict"]]
        to_yes = [k for k in changed if other.loc[k, "verdict"] == REPRODUCED]
        which = "; ".join(f"{k}: {base.loc[k, 'verdict']} → {other.loc[k, 'verdict']}" for k in changed)
        sentences.append(f"{what[0].upper()}{what[1:]} changes {len(changed)} of the {len(common)} verdicts judged "
                         f"in both cells" + (f" ({which}); {len(to_yes)} of them become reproduced" if changed else "")
                         + ".")
    nearest = []
    absolute = cells_[cells_["computed"] & (cells_["kind"] == "absolute")].dropna(subset=["measured_value"])
    for key, rows in absolute.groupby("key", sort=False):
        best = rows.loc[(rows["measured_value"] - rows["paper_value"]).abs().idxmin()]
        nearest.append(f"{key} {best['measured_value']:.1f}% against {best['paper_value']:.2f}% "
                       f"({width_label(best['width'])}, {STEP_NAMES[best['attack_step']]}, ε_train "
                       f"{best['eps_train']:g})")
    if nearest:
        sentences.append("For the absolute accuracies, the cell nearest the paper's number: " + "; ".join(nearest)
                         + ".")
    return sentences


def collapse_counts(results_dir: Path, preset: str, names: Sequence[str] = ("at-fgsm", "asgt-k0.3")) -> pd.DataFrame:
    """Catastrophic overfitting of AT-FGSM and ASGT at each width: seeds collapsed of seeds judged, by the audit's
    collapse rule (``params/audit.yaml``) on the finished runs' training monitors; nothing is computed."""
    from ..pipeline.experiment import overfitting_history, run_config
    from .audit import audit_settings

    rows = []
    for width in dict.fromkeys([preset, PAPER_WIDTH]):
        rule = audit_settings(width).collapse
        for name in names:
            flags = []
            for d in run_dirs(results_dir, width):
                cfg, _ = run_config(d)
                history = overfitting_history(d, str(d), cfg) if cfg.dataset == "mnist" and cfg.label == name else []
                if history:
                    flags.append(rule.judge(pd.DataFrame(history))[0])
            rows.append({"model": name, "width": width_label(width),
                         "collapsed": f"{sum(flags)} of {len(flags)} seeds" if flags else "not computed"})
    return pd.DataFrame(rows).pivot(index="model", columns="width", values="collapsed").reindex(list(names))


#: The points the float32 twins are compared at (issue 36, item 3): the claims' attacks and budgets.
PRECISION_POINTS = (("clean", 0.0), ("fgsm", 0.25), ("pgd", 0.2), ("mifgsm", 0.25))


def precision_comparison(results_dir: Path, preset: str = "reference", twin: str = "reference-fp32",
                         points=PRECISION_POINTS) -> pd.DataFrame:
    """Is bfloat16 innocent? Per run name and point (step sized to ε): the bf16 − fp32 difference of each seed that
    has its float32 twin (same weights at start, same data order; only the training precision differs), against the
    seed-to-seed spread of the bf16 runs. Two runs of different seeds differ by √2 × σ in standard deviation (σ: the
    bf16 runs' standard deviation over every seed of ``preset``), so a difference is within the seed spread when its
    size is at most 2·√2·σ, about what two seeds differ by at 95%."""
    if not run_dirs(results_dir, twin):
        return pd.DataFrame()
    bf16 = collect(results_dir, preset)
    fp32 = collect(results_dir, twin)
    rows = []
    for name in dict.fromkeys(fp32.loc[fp32.dataset == "mnist", "name"]):
        for attack, eps in points:
            def acc(t):
                sel = t[(t.dataset == "mnist") & (t.name == name) & ((t.eps - eps).abs() < 1e-9)]
                sel = sel[sel.attack == ("fgsm" if attack == "clean" else attack)]
                return sel.groupby("seed")["accuracy"].first() * 100
            a, b = acc(bf16), acc(fp32)
            paired = b.index.intersection(a.index)
            if not len(paired):
                continue
            diff = a[paired] - b[paired]
            sd = float(a.std(ddof=1)) if len(a) > 1 else math.nan
            bound = 2 * math.sqrt(2) * sd
            rows.append({"model": name, "point": "clean" if attack == "clean" else f"{ATTACK_NAMES[attack]} ε={eps:g}",
                         "seeds paired": len(paired), "bf16 − fp32 (points)": ", ".join(f"{d:+.1f}" for d in diff),
                         "bf16 seed sd (points)": round(sd, 1), "bf16 seeds": len(a),
                         "two seeds differ by up to (points)": round(bound, 1),
                         "within the seed spread": "yes" if float(diff.abs().max()) <= bound + 1e-9 else "NO"})
    return pd.DataFrame(rows)


def verdicts_by_precision(bf16: pd.DataFrame, fp32: pd.DataFrame, preset: str = "reference") -> pd.DataFrame:
    """Does a verdict move with precision? Every claim judged twice under ``preset``'s rules, on the same runs and
    seeds: on the bf16 runs (``bf16``: ``collect`` of ``preset``, restricted here to the run names and seeds that
    have a float32 twin) and on their twins (``fp32``). One row per claim judged in either, with both verdicts and
    ``moves`` ("yes" where they differ)."""
    pairs = set(zip(fp32["name"], fp32["seed"]))
    same = bf16[[pair in pairs for pair in zip(bf16["name"], bf16["seed"])]]
    if same.empty:
        return pd.DataFrame()
    a = evaluate(same.assign(preset=preset), preset).set_index("key")
    b = evaluate(fp32.assign(preset=preset), preset).set_index("key")
    judged = [k for k in a.index if a.at[k, "verdict"] in JUDGED or b.at[k, "verdict"] in JUDGED]
    return pd.DataFrame([{"claim": k, "paper": a.at[k, "paper"], "seeds": int(a.at[k, "seeds"]),
                          "bf16": a.at[k, "measured"], "bf16 verdict": a.at[k, "verdict"],
                          "fp32": b.at[k, "measured"], "fp32 verdict": b.at[k, "verdict"],
                          "moves": "yes" if a.at[k, "verdict"] != b.at[k, "verdict"] else "no"} for k in judged])


def precision_verdicts(results_dir: Path, preset: str = "reference", twin: str = "reference-fp32") -> pd.DataFrame:
    """:func:`verdicts_by_precision` of the finished runs of ``preset`` and of their float32 twins (``twin``); empty
    while no twin is finished."""
    if not run_dirs(results_dir, twin):
        return pd.DataFrame()
    return verdicts_by_precision(collect(results_dir, preset), collect(results_dir, twin), preset)


def fallback_note(results_dir: Path, preset: str = PAPER_WIDTH) -> str:
    """A sentence naming the runs of ``preset`` that trained in fp32 although the preset asks for bf16 (computed on a
    CPU without bf16 hardware, :func:`asgt_lib.core.compute.effective_precision`), so that a reader of the default
    book knows which seeds of the paper's width were trained in which precision; empty when there are none."""
    configs = [(d, run_config(d)[0]) for d in run_dirs(results_dir, preset)]  # config.json only: no checksums
    fell_back = sorted((DATASET_NAMES[cfg.dataset], d.parent.name, cfg.seed) for d, cfg in configs
                       if cfg.precision == "fp32"
                       and preset_overrides(preset, cfg.dataset).get("precision", "fp32") != "fp32")
    if not fell_back:
        return ""
    return (f" Of the {len(configs)} finished `{preset}` runs, {len(fell_back)} trained in fp32, the paper's own "
            f"precision, because the CPU that computed {'them' if len(fell_back) > 1 else 'it'} has no bf16 hardware: "
            + "; ".join(f"{d} {name} seed {seed}" for d, name, seed in fell_back) + ".")


def precision_summary(twins: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    """The Table 1 page's answer to "is bfloat16 innocent?", in one or two plain sentences, from
    :func:`precision_comparison` and :func:`precision_verdicts`."""
    if twins.empty:
        return "No float32 twin is finished yet, so the question is open."
    outside = twins[twins["within the seed spread"] != "yes"]
    models = twins["model"].nunique()
    text = (f"Of the {len(twins)} points compared ({models} model{'s' if models > 1 else ''}, "
            f"{int(twins['seeds paired'].max())} seed{'s' if twins['seeds paired'].max() > 1 else ''} paired at most), "
            + ("all bf16 − fp32 differences lie within the seed spread." if outside.empty else
               f"{len(twins) - len(outside)} lie within the seed spread and {len(outside)} outside it: "
               + "; ".join(f"{r['model']} {r['point']} ({r['bf16 − fp32 (points)']} points against up to "
                         f"{r['two seeds differ by up to (points)']})" for _, r in outside.iterrows()) + "."))
    if verdicts.empty:
        return text + " No claim can be judged on the twins yet."
    moved = verdicts[verdicts["moves"] == "yes"]
    return text + (f" Of the {len(verdicts)} claims judged on the same seeds in both precisions, "
                   + ("no verdict moves with precision." if moved.empty else
                      f"{len(moved)} verdict{'s' if len(moved) > 1 else ''} move{'' if len(moved) > 1 else 's'} with "
                      "precision: " + "; ".join(f"{r['claim']} ({r['bf16 verdict']} in bf16, {r['fp32 verdict']} in fp32)"
                                                for _, r in moved.iterrows()) + "."))
