"""Figures shared by the run notebook and the book's pages (drawing only: the numbers come from ``experiment``)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

ATTACK_TITLES = {"fgsm": "FGSM", "pgd": "PGD", "mifgsm": "MI-FGSM"}
METHOD_ORDER = ["st", "sgt-k0.3", "sgt-k0.5", "sgt-k0.1", "sgt-k0.2", "at-fgsm", "sga-k0.3", "sga-k0.1",
                "asgt-k0.3", "asgt-k0.1", "asgt-code-k0.3", "asgt-code-k0.1", "asgt-rs-lam0", "asgt-rs-k0.3",
                "asgt-rs-k0.1", "fgsm-rs", "pgd-at"]


#: How the book names the attack-step conventions (``config.ATTACK_STEPS``) in legends and tables.
STEP_LABELS = {"scaled": "step sized to ε (this project)",
               "fixed": "paper's probable attack (torchattacks defaults, α = 2/255)"}


def robustness_panels(table: pd.DataFrame, names: Sequence[str] | None = None, title: str = "") -> plt.Figure:
    """Accuracy (%) vs ε, one panel per attack, one line per run name: the mean over seeds with a 95% interval
    band (seaborn's bootstrap; a single seed draws the line alone). A table with both attack-step conventions
    draws the ``scaled`` lines solid and the ``fixed`` ones dashed (:data:`STEP_LABELS`)."""
    data = table.copy()
    if names is not None:
        data = data[data["name"].isin(names)]
    data["accuracy (%)"] = 100 * data["accuracy"]
    order = [n for n in (names or METHOD_ORDER) if n in set(data["name"])]
    order += sorted(set(data["name"]) - set(order))
    attacks = [a for a in ATTACK_TITLES if a in set(data["attack"])]
    steps = [s for s in STEP_LABELS if "attack_step" in data and s in set(data["attack_step"])]
    style = {}
    if len(steps) > 1:
        data["attack step"] = data["attack_step"].map(STEP_LABELS)
        style = dict(style="attack step", style_order=[STEP_LABELS[s] for s in steps],
                     dashes={STEP_LABELS["scaled"]: "", STEP_LABELS["fixed"]: (4, 2)})
    else:
        style = dict(style="name", style_order=order, dashes=False)
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.2 * len(attacks), 3.4), sharey=True, squeeze=False)
    for ax, attack in zip(axes[0], attacks):
        sns.lineplot(data=data[data["attack"] == attack], x="eps", y="accuracy (%)", hue="name", hue_order=order,
                     markers=True, errorbar=("ci", 95), n_boot=1000, seed=0, ax=ax, legend=ax is axes[0][-1],
                     **style)
        ax.set_title(ATTACK_TITLES[attack])
        ax.set_xlabel("ε (L∞, pixels in [0, 1])")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    if axes[0][-1].get_legend():
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1), title="method")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def saliency_grid(maps: dict[str, dict[str, torch.Tensor]], n: int = 6, title: str = "") -> plt.Figure:
    """Fig. 6: for each method (rows), the images and their |saliency| heat maps, on the same test images."""
    names = list(maps)
    first = next(iter(maps.values()))
    n = min(n, len(first["y"]))
    fig, axes = plt.subplots(len(names) + 1, n, figsize=(1.6 * n, 1.7 * (len(names) + 1)), squeeze=False)
    for j in range(n):
        img = first["x"][j]
        ax = axes[0][j]
        ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray" if img.shape[0] == 1 else None)
        ax.set_title(f"label {int(first['y'][j])}", fontsize=8)
        for i, name in enumerate(names, start=1):
            m = maps[name]
            heat = m["saliency"][j].abs()
            axes[i][j].imshow(heat / heat.max().clamp_min(1e-12), cmap="hot", vmin=0, vmax=1)
            axes[i][j].set_title(f"pred {int(m['pred'][j])}", fontsize=7)
    for i, label in enumerate(["input"] + names):
        axes[i][0].set_ylabel(label, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _order(names) -> list[str]:
    present = list(dict.fromkeys(names))
    return [n for n in METHOD_ORDER if n in present] + sorted(set(present) - set(METHOD_ORDER))


def attack_accuracies(attacks: pd.DataFrame, runs: pd.DataFrame, dataset: str, attack_names: dict[str, str],
                      title: str = "") -> plt.Figure:
    """Robust accuracy (%) of each model (one marker colour each) under each attack of the sanity checks, one
    panel per budget ε (column ``budget``), attacks in the order of ``attack_names`` (row name -> axis label),
    weakest first. The attacks are categories, so the points are not joined: a model whose marker drops at one
    attack shows which attack its robustness depended on. Attacks no model was run with are left out."""
    a = attacks[attacks.run.isin(runs.loc[runs.dataset == dataset, "key"])]
    a = a[(((a.eps - a.budget).abs() < 1e-12) | (a.attack == "clean")) & a.attack.isin(attack_names)]
    a = a.drop_duplicates(["run", "budget", "attack"]).copy()
    present = [title for key, title in attack_names.items() if key in set(a.attack)]
    a["attack"] = pd.Categorical(a.attack.map(attack_names), categories=present, ordered=True)
    a["accuracy (%)"] = 100 * a["accuracy"]
    order = _order(a["name"])
    budgets = sorted(set(a.budget))
    fig, axes = plt.subplots(len(budgets), 1, figsize=(11, 3.6 * len(budgets)), squeeze=False, sharex=True)
    for ax, budget in zip(axes[:, 0], budgets):
        sns.pointplot(data=a[a.budget == budget].sort_values("attack"), x="attack", y="accuracy (%)", hue="name",
                      hue_order=order, errorbar=None, markers="o", linestyle="none", dodge=0.5, ax=ax,
                      legend=ax is axes[0, 0])
        ax.set_title(f"ε = {budget:.4g}", fontsize=10)
        ax.set_xlabel("")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3, axis="y")
        for edge in range(len(present) - 1):  # one band per attack
            ax.axvline(edge + 0.5, color="0.85", linewidth=0.8)
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    sns.move_legend(axes[0, 0], "upper left", bbox_to_anchor=(1.02, 1), title="model")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def faithfulness_curves(curves: pd.DataFrame, runs: pd.DataFrame, dataset: str, panels: Sequence[tuple[str, str]],
                        titles: Sequence[str], title: str = "") -> plt.Figure:
    """One panel per (curve, fill) of ``panels``: the saliency-order curve of each model (solid, with its 95%
    interval band) and its random-order curve (dotted, same colour). x: fraction of pixels removed or revealed."""
    c = curves[curves.run.isin(runs.loc[runs.dataset == dataset, "key"])]
    order = _order(c["name"])
    colours = dict(zip(order, sns.color_palette(n_colors=len(order))))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.5), squeeze=False)
    for ax, (curve, fill), panel_title in zip(axes[0], panels, titles):
        for name in order:
            for order_name, style in (("saliency", "-"), ("random", ":")):
                g = c[(c.curve == curve) & (c.fill == fill) & (c.order == order_name) & (c.name == name)]
                g = g.groupby("x", as_index=False)[["value", "ci_low", "ci_high"]].mean()  # mean over seeds
                if g.empty:
                    continue
                ax.plot(g.x, g.value, style, color=colours[name], label=name if order_name == "saliency" else None)
                if order_name == "saliency":
                    ax.fill_between(g.x, g.ci_low, g.ci_high, color=colours[name], alpha=0.12, linewidth=0)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("fraction of pixels")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy / true-class probability")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), title="model (dotted: random order)",
                       fontsize=8, title_fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def overfitting_curves(monitor: pd.DataFrame, dataset: str, title: str = "") -> plt.Figure:
    """The catastrophic-overfitting signal during training (Wong et al. 2020): FGSM and PGD accuracy (%) at
    ε_train on the fixed training monitor batch after each epoch, one panel per model (mean over seeds). A PGD
    line that collapses while FGSM stays high is catastrophic overfitting."""
    m = monitor[monitor.dataset == dataset]
    names = _order(m["name"])
    cols = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        g = m[m.name == name].groupby("epoch")[["clean", "fgsm", "pgd"]].mean().mul(100)
        for column, style in (("clean", ":"), ("fgsm", "-"), ("pgd", "--")):
            ax.plot(g.index, g[column], style, marker="o", markersize=3, label=column.upper()
                    if column != "clean" else "clean")
        ax.set_title(name, fontsize=9)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("train-batch acc. (%)")
    if len(names):
        axes.flat[0].legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


VERDICT_COLOURS = {"reproduced": "#1a9850", "not reproduced": "#d73027", "inconclusive": "#fdae61"}


def forest_claims(verdicts: pd.DataFrame, title: str = "") -> plt.Figure:
    """Forest plot (a): every judged gain claim of the paper as its measured gain (mean with its 95% interval, or
    the seeds' range below three seeds) beside the paper's bound, one row per claim, coloured by verdict."""
    gains = verdicts[(verdicts.kind == "gain") & verdicts.verdict.isin(list(VERDICT_COLOURS))].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, 0.55 * max(len(gains), 1) + 1.4))
    for i, r in gains.iterrows():
        y = len(gains) - 1 - i
        colour = VERDICT_COLOURS[r.verdict]
        if r.low == r.low and r.high == r.high:
            ax.plot([r.low, r.high], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot(r.measured_value, y, "o", color=colour, ms=7)
        ax.plot(r.paper_value, y, marker="|", color="black", ms=16, mew=2.5)
        ax.annotate(r.verdict, (1.01, y), xycoords=("axes fraction", "data"), va="center", color=colour,
                    fontsize=9)
    ax.set_yticks(range(len(gains)))
    ax.set_yticklabels([f"{r.key} ({r.seeds} seeds)" for r in gains.itertuples()][::-1], fontsize=9)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("gain over ST (points): measured mean and 95% interval (range below 3 seeds);  | = paper")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def forest_autoattack(summary: pd.DataFrame, published: pd.DataFrame | None = None, title: str = "") -> plt.Figure:
    """Forest plot (b): AutoAttack accuracy per run (mean with its 95% interval, or the seeds' range below three
    seeds), one panel per budget, the collapsed seeds written beside each row; published reference defences at the
    same budget marked with a star (other architectures: for scale)."""
    budgets = list(dict.fromkeys(summary.eps_text))
    fig, axes = plt.subplots(1, max(len(budgets), 1), figsize=(4.6 * max(len(budgets), 1), 0.42 * max(
        summary.model.nunique(), 1) + 1.6), sharey=True, squeeze=False)
    models = list(dict.fromkeys(summary.model))
    for ax, budget in zip(axes[0], budgets):
        part = summary[summary.eps_text == budget].set_index("model")
        for m in models:
            if m not in part.index:
                continue
            r, y = part.loc[m], len(models) - 1 - models.index(m)
            if r.seeds >= 2:
                ax.plot([r.low, r.high], [y, y], color="C0", lw=2.5, solid_capstyle="butt")
            ax.plot(r["mean"], y, "o", color="C0", ms=6)
            if r.collapsed:
                ax.annotate(f"collapsed {r.collapsed}", (101, y), va="center", fontsize=8, color="#d73027",
                            annotation_clip=False)
        if published is not None and len(published):
            ref = published[published["ε"] == budget]
            for _, p in ref.iterrows():
                ax.axvline(p["AutoAttack (%)"], color="black", ls=":", lw=1)
                ax.plot(p["AutoAttack (%)"], len(models) - 0.4, "*", color="black", ms=10, clip_on=False)
        ax.set_title(f"AutoAttack, ε = {budget}")
        ax.set_xlim(-2, 100)
        ax.set_xlabel("accuracy (%)" + ("   ★ published (other nets)" if published is not None and len(
            published[published["ε"] == budget]) else ""))
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(models)))
    axes[0][0].set_yticklabels(models[::-1], fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
