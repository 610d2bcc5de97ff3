"""Every number of a preset as two tidy tables (``asgt export``), for whoever wants to re-analyse them without
walking the run folders: another interval method, another plot, a meta-analysis.

``<results>/<preset>/export-robustness.csv``: one row per finished run × attack-step convention × attack × ε
(:data:`ROBUSTNESS_COLUMNS`; ``attack_step``: ``scaled``, α sized to ε, or ``fixed``, torchattacks' α = 2/255).
``<results>/<preset>/export-audit.csv``: one row per model × audited budget, the audit's figures
(:data:`AUDIT_COLUMNS`): AutoAttack and every other attack of the sanity checks, their verdict, and the collapse
flag of the training monitor. Both are written atomically; ``make book`` rewrites them, and
``tests/test_staleness.py`` fails when the committed ``reference`` export no longer matches the committed runs.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd

from ..core.config import ADVERSARIAL_METHODS, MASKING_METHODS
from ..core.storage import atomic_path
from ..judgement.audit import VERDICT_ATTACKS, Audit
from ..pipeline.experiment import read_robustness, run_config, run_dirs

#: Columns of the robustness export, in order.
ROBUSTNESS_COLUMNS = ["dataset", "data_source", "method", "name", "k", "lam", "eps_train", "seed", "preset",
                      "precision", "device", "attack_step", "attack", "eps", "accuracy", "n"]
#: Columns of the audit export, in order (accuracies in [0, 1]; ``collapsed`` empty where it is not judged).
AUDIT_COLUMNS = ["dataset", "data_source", "method", "name", "k", "lam", "eps_train", "seed", "preset", "budget",
                 "n_points", "verdict", "checks_passed", "checks_failed", "failed_checks",
                 *[f"acc_{key}" for key in VERDICT_ATTACKS], "collapsed", "collapse_reason"]
FILES = {"robustness": "export-robustness.csv", "audit": "export-audit.csv"}


def _run_fields(run_dir: Path) -> dict:
    """The columns every row of a run shares: what it is (dataset, method, name, k, λ, ε_train, seed) and where
    it ran; k and λ only for masking methods, ε_train only for adversarial ones (blank otherwise)."""
    cfg, raw = run_config(run_dir)
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    return {"dataset": cfg.dataset, "data_source": raw["data_source"], "method": cfg.method, "name": cfg.label,
            "k": cfg.k if cfg.method in MASKING_METHODS else math.nan,
            "lam": cfg.lam if cfg.method in MASKING_METHODS else math.nan,
            "eps_train": cfg.eps_train if cfg.method in ADVERSARIAL_METHODS else math.nan,
            "seed": cfg.seed, "preset": cfg.preset, "precision": cfg.precision,
            "device": metrics.get("provenance", {}).get("device", "")}


def robustness_table(results_dir: Path, preset: str) -> pd.DataFrame:
    """One row per finished run of ``preset`` × attack × ε (its ``robustness.csv``, with the run's fields)."""
    frames = []
    for d in run_dirs(results_dir, preset):
        r = read_robustness(d / "robustness.csv")
        frames.append(r[["attack_step", "attack", "eps", "accuracy", "n"]].assign(**_run_fields(d)))
    if not frames:
        return pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    return pd.concat(frames, ignore_index=True)[ROBUSTNESS_COLUMNS]


def audit_table(result: Audit) -> pd.DataFrame:
    """One row per audited model × budget: the accuracy under every attack of the sanity checks at that budget
    (``acc_<attack>``, in [0, 1]), the verdict and failed checks, and whether the run collapsed."""
    flags = result.overfitting_flags()
    collapse = {(r["dataset"], r["model"], r["seed"]): (r["catastrophic overfitting"], r["why"])
                for r in flags.to_dict("records")}
    fields_of = {(r.dataset, r.name, r.seed): _run_fields(Path(r.run_dir)) for r in result.runs.itertuples()}
    rows = []
    for v in result.verdicts().to_dict("records"):
        fields = fields_of[(v["dataset"], v["model"], v["seed"])]
        passed, total = (int(x) for x in v["checks passed"].split("/"))
        flag, why = collapse.get((v["dataset"], v["model"], v["seed"]), ("", ""))
        judged = fields["method"] in ADVERSARIAL_METHODS and flag != ""
        exact = {round(b, 4): b for b in result.settings.budgets(fields["dataset"])}
        row = {**fields, "budget": exact.get(v["ε"], v["ε"]), "n_points": 10 * result.settings.n_per_class, "verdict": v["verdict"],
               "checks_passed": passed, "checks_failed": total - passed,
               "failed_checks": "" if v["failed checks"] == "–" else v["failed checks"],
               "collapsed": (flag == "FLAG") if judged else math.nan, "collapse_reason": why if judged else ""}
        for key, title in VERDICT_ATTACKS.items():
            value = v[f"{title} (%)"]
            row[f"acc_{key}"] = value / 100 if value == value else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def csv_text(frame: pd.DataFrame) -> str:
    """The exact text written for ``frame`` (the staleness test compares it with the committed file)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def tables(results_dir: Path, preset: str, result: Audit) -> dict[str, pd.DataFrame]:
    return {"robustness": robustness_table(results_dir, preset), "audit": audit_table(result)}


def export(results_dir: Path, preset: str, result: Audit) -> dict[str, Path]:
    """Write both tables under ``<results_dir>/<preset>/`` atomically; returns their paths."""
    out = {}
    for kind, frame in tables(results_dir, preset, result).items():
        path = Path(results_dir) / preset / FILES[kind]
        with atomic_path(path) as tmp:
            tmp.write_text(csv_text(frame))
        out[kind] = path
    return out
