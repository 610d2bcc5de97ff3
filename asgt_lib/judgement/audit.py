"""The audit of a preset's finished runs: are the robust accuracies real, and are the saliency maps faithful?

For every finished run of a preset, :func:`audit` computes (or reads from the cache beside the run) the
robustness sanity checks of :mod:`asgt_lib.judgement.sanity` (the transfer attack crafted on the ST run of the same
dataset and seed) and the faithfulness metrics of :mod:`asgt_lib.judgement.faithfulness`, with the budgets that
``params/audit.yaml`` sets for the preset. ``asgt audit`` prints the result, ``asgt book`` runs it before the
build, and the pages "Is the robustness real?" and "Are the maps better?" show it (their wording:
:mod:`asgt_lib.report.audit_pages`); all three call this module, so they show the same numbers.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .claims import CLAIMS
from ..core.config import (ADVERSARIAL_METHODS, DATASETS, ConfigError, RunConfig, _one_of, _scalar,
                           default_params_dir, load_yaml, settings_from)
from ..pipeline.experiment import (default_results_dir, derived_dir, has_checkpoint, overfitting_history, run_config,
                                   run_dirs)
from .faithfulness import FaithfulnessResult, FaithfulnessSettings, faithfulness_key, faithfulness_report
from .sanity import STANDARD_EPS, SanityResult, SanitySettings, checks_line, sanity_key, sanity_report
from ..core.storage import is_finished


@dataclass(frozen=True)
class CollapseRule:
    """Catastrophic overfitting as Wong et al. (2020, Sec. 5.2) define it: during FGSM-based training, accuracy
    under PGD on the training data collapses towards 0 while accuracy under FGSM stays high or rises. Read from a
    run's monitor (FGSM and PGD at ε_train on a fixed batch of training images after every epoch), a run has
    collapsed when after its last epoch either

    * its PGD accuracy is below ``pgd_fgsm_ratio`` of its own FGSM accuracy, with FGSM ahead by at least
      ``min_gap`` (a collapse against FGSM; the gap keeps a near-zero FGSM accuracy, a model that resists no
      attack at all, from counting), or
    * its PGD accuracy has fallen more than ``drop_from_best`` below its own best epoch (a collapse in time).

    A PGD accuracy that climbs steadily, however far below FGSM, is not a collapse. The thresholds come from the
    definition, once (``params/audit.yaml``), not from particular runs."""

    pgd_fgsm_ratio: float = 0.25
    min_gap: float = 0.10
    drop_from_best: float = 0.30

    def judge(self, history: pd.DataFrame) -> tuple[bool, str]:
        """(collapsed, why) for one run's monitor history (columns ``epoch``, ``fgsm``, ``pgd``; accuracies in
        [0, 1])."""
        h = history.sort_values("epoch")
        last = h.iloc[-1]
        best = h.loc[h.pgd.idxmax()]
        fgsm, pgd = float(last.fgsm), float(last.pgd)
        if pgd < self.pgd_fgsm_ratio * fgsm and fgsm - pgd >= self.min_gap:
            return True, (f"PGD {100 * pgd:.0f}% < {self.pgd_fgsm_ratio:g} × FGSM {100 * fgsm:.0f}% after epoch "
                          f"{int(last.epoch)}")
        if float(best.pgd) - pgd > self.drop_from_best:
            return True, (f"PGD fell from {100 * float(best.pgd):.0f}% (epoch {int(best.epoch)}) to {100 * pgd:.0f}% "
                          f"(epoch {int(last.epoch)})")
        return False, ""


@dataclass(frozen=True)
class AuditSettings:
    """The budgets of one preset's audit (a section of ``params/audit.yaml``)."""

    n_per_class: int = 10
    sanity: SanitySettings = field(default_factory=SanitySettings)
    faithfulness: FaithfulnessSettings = field(default_factory=FaithfulnessSettings)
    #: Budgets checked besides the standard one, per dataset, e.g. MNIST 0.2 where the paper's PGD claims are.
    extra_eps: tuple[tuple[str, float], ...] = ()
    #: When a run of an adversarial method has catastrophically overfitted (its monitor's PGD accuracy collapsed).
    collapse: CollapseRule = field(default_factory=CollapseRule)

    def budgets(self, dataset: str) -> list[float]:
        """Every ε the sanity checks run at for ``dataset``: the standard budget first, then the extra ones."""
        standard = self.sanity.standard_eps if self.sanity.standard_eps is not None else STANDARD_EPS[dataset]
        extra = [e for d, e in self.extra_eps if d == dataset and abs(e - standard) > 1e-12]
        return [standard] + sorted(set(extra))


def audit_settings(preset: str, params_dir: Path | None = None) -> AuditSettings:
    """The audit budgets of ``preset`` from ``<params_dir>/audit.yaml``; every bad key or value is a ConfigError
    naming the file, the section and the allowed keys."""
    path = Path(params_dir or default_params_dir()) / "audit.yaml"
    sections = load_yaml(path)
    _one_of("preset", preset, tuple(sections))
    raw = sections[preset] or {}
    where = f"{path} [{preset}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of key: value, got {type(raw).__name__}")
    allowed = ("n_per_class", "sanity", "faithfulness", "extra_eps", "collapse")
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: key '{unknown[0]}' is unknown; allowed keys: {', '.join(allowed)}")
    n = raw.get("n_per_class", AuditSettings.n_per_class)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{where}: key 'n_per_class' has value {n!r}; write a whole number >= 1, e.g. "
                          f"n_per_class: 10")
    extra = raw.get("extra_eps") or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"{where}: key 'extra_eps' must map a dataset to a list of budgets, e.g. "
                          f"extra_eps: {{mnist: [0.2]}}")
    pairs = []
    for dataset, values in extra.items():
        _one_of(f"{where}: extra_eps dataset", dataset, DATASETS)
        for v in values if isinstance(values, list) else [values]:
            try:
                eps = _scalar(float, v)
            except (TypeError, ValueError):
                eps = float("nan")
            if not eps >= 0:
                raise ConfigError(f"{where}: extra_eps.{dataset} has {v!r}; write budgets >= 0, e.g. [0.2]")
            pairs.append((dataset, eps))
    collapse = settings_from(CollapseRule, raw.get("collapse"), f"{where}.collapse")
    for key, value in dataclasses.asdict(collapse).items():
        if not 0 < value < 1:
            raise ConfigError(f"{where}: collapse.{key} has value {value!r}; write a fraction in (0, 1), e.g. "
                              f"{key}: {getattr(CollapseRule, key)}")
    return AuditSettings(
        collapse=collapse,
        extra_eps=tuple(pairs),
        n_per_class=n,
        sanity=settings_from(SanitySettings, raw.get("sanity"), f"{where}.sanity"),
        faithfulness=settings_from(FaithfulnessSettings, raw.get("faithfulness"), f"{where}.faithfulness"),
    )


#: Worker processes of ``asgt audit`` and ``asgt book`` (see :func:`audit`): 1.7x faster on 2 CPU cores.
DEFAULT_JOBS = 2

#: Columns of :attr:`Audit.verdicts`: attack rows of the sanity checks shown beside each verdict.
VERDICT_ATTACKS = {"clean": "clean", "fgsm": "FGSM", "pgd": "PGD-10", "pgdR": "PGD-100×5", "cw": "PGD-CW",
                   "transfer": "transfer", "pgd+square": "PGD+Square", "autoattack": "AutoAttack",
                   "worst-case": "worst case"}


@dataclass
class Audit:
    """Every run's sanity checks (one report per budget) and faithfulness metrics, as long tables."""

    preset: str
    settings: AuditSettings
    runs: pd.DataFrame            # key, dataset, name, method, seed, label, mask_fill, run_dir, st_run_dir, ...
    checks: pd.DataFrame          # sanity.csv of every run and budget (column ``budget``: the ε it ran at)
    attacks: pd.DataFrame         # attacks.csv of every run and budget
    faithfulness: pd.DataFrame    # summary.csv of every run
    curves: pd.DataFrame          # curves.csv of every run
    overfitting: pd.DataFrame = field(default_factory=pd.DataFrame)  # per run and epoch: the monitor accuracies
    seconds: float = 0.0
    #: reports that checked weights trained again whose history differs from the committed run's: run, budget,
    #: role ("model" or "transfer source"), max_difference (sanity.weights_record)
    retrained: pd.DataFrame = field(default_factory=pd.DataFrame)

    FLAG_COLUMNS = ["dataset", "model", "seed", "epoch", "clean (%)", "FGSM (%)", "PGD (%)", "best PGD (%)",
                    "catastrophic overfitting", "why"]

    def overfitting_flags(self, dataset: str | None = None) -> pd.DataFrame:
        """One row per run: clean, FGSM and PGD accuracy (%) on the training monitor batch after the last epoch,
        the best PGD accuracy of any epoch, and whether the run collapsed (:class:`CollapseRule`, catastrophic
        overfitting, Wong et al. 2020) with the reason. Only methods that train on adversarial examples are
        flagged: for ST or SGT a PGD accuracy near 0 says that no attack is resisted, not that training
        overfitted to one."""
        o = self.overfitting
        if o.empty:
            return pd.DataFrame(columns=self.FLAG_COLUMNS)
        o = o if dataset is None else o[o.dataset == dataset]
        rows = []
        for _, h in o.groupby("run", sort=False):
            r = h.sort_values("epoch").iloc[-1]
            collapsed, why = self.settings.collapse.judge(h) if r.method in ADVERSARIAL_METHODS else (False, "")
            rows.append({"dataset": r.dataset, "model": r["name"], "seed": int(r.seed), "epoch": int(r.epoch),
                         "clean (%)": round(100 * r.clean, 1), "FGSM (%)": round(100 * r.fgsm, 1),
                         "PGD (%)": round(100 * r.pgd, 1), "best PGD (%)": round(100 * h.pgd.max(), 1),
                         "catastrophic overfitting": "FLAG" if collapsed else "–", "why": why})
        return pd.DataFrame(rows, columns=self.FLAG_COLUMNS)

    # ----------------------------------------------------------------- tables the pages show
    def _pairs(self, dataset: str | None):
        """(run, budget) of ``dataset`` (or all), budgets ascending, then runs in order."""
        runs = self._runs(dataset)
        budgets = sorted({b for b in self.checks.budget} if dataset is None else
                         {b for b in self.checks[self.checks.run.isin([r.key for r in runs])].budget})
        return [(r, b) for b in budgets for r in runs if ((self.checks.run == r.key) & (self.checks.budget == b)).any()]

    def verdicts(self, dataset: str | None = None) -> pd.DataFrame:
        """One row per run and budget: PASS/FAIL, the failed checks, the accuracy (%) under each attack at that ε,
        the worst case per example, and the paper's claims that a failed check weakens."""
        names = self.settings.sanity.names
        rows = []
        for run, budget in self._pairs(dataset):
            report = self.attacks[(self.attacks.run == run.key) & (self.attacks.budget == budget)]
            acc = report[(report.eps - budget).abs() < 1e-12].drop_duplicates("attack").set_index("attack").accuracy
            # the clean accuracy of this budget's report: the same model and points at every budget, unless its
            # weights were trained again for a budget added later (sanity.weights_record)
            clean = report[report.attack == "clean"].accuracy
            c = self.checks[(self.checks.run == run.key) & (self.checks.budget == budget)]
            failed = c.loc[~c.passed, "check"].tolist()
            row = {"dataset": run.dataset, "model": run.name, "seed": run.seed, "ε": round(budget, 4),
                   "verdict": "PASS" if not failed else "FAIL", "checks passed": f"{len(c) - len(failed)}/{len(c)}",
                   "failed checks": ", ".join(failed) or "–"}
            for key, title in VERDICT_ATTACKS.items():
                attack = names.get(key, key)
                value = clean.iloc[0] if key == "clean" and len(clean) else acc.get(attack, float("nan"))
                row[f"{title} (%)"] = round(100 * float(value), 1)
            weakened = ", ".join(claims_weakened(run.dataset, run.name)) or "none stated"
            row["claims weakened"] = weakened if failed else "–"
            rows.append(row)
        return pd.DataFrame(rows)

    def check_matrix(self, dataset: str | None = None) -> pd.DataFrame:
        """Pass (✓) or fail (✗, – where a check was not run) of every check (columns, in the order they are
        applied) for every run and budget (rows, as in :meth:`verdicts`). Runs go down the rows because a
        reference grid has over 60 run-budget pairs and only ten checks; the check names are spelt with spaces,
        as a page prints them (:func:`asgt_lib.report.audit_pages.check_table` turns them upright)."""
        order = list(dict.fromkeys(self.checks.check)) if len(self.checks) else []
        rows, index = [], []
        for run, budget in self._pairs(dataset):
            c = self.checks[(self.checks.run == run.key) & (self.checks.budget == budget)]
            rows.append(c.set_index("check").passed.map(lambda v: "✓" if v else "✗"))
            index.append((run.name, run.seed, round(budget, 4)))
        out = pd.DataFrame(rows, columns=order).fillna("–")
        out.index = pd.MultiIndex.from_tuples(index, names=["model", "seed", "ε"]) if index else out.index
        out.columns = [c.replace("_", " ") for c in order]
        return out

    def faithfulness_table(self, dataset: str | None = None) -> pd.DataFrame:
        """One row per run: deletion and insertion AUC (headline fill) with their random-order reference and
        ratio, SGT's top-k test (both fills), Gini and the randomisation check, each with its 95% interval."""
        s = self.faithfulness
        fill = self.settings.faithfulness.headline_fill
        rows = []
        for run in self._runs(dataset):
            f = s[s.run == run.key]

            def get(metric: str, fill_: str = "", order: str = "") -> pd.Series:
                r = f[(f.metric == metric) & (f.fill == fill_) & (f.order == order)]
                return r.iloc[0] if len(r) else pd.Series({"value": float("nan"), "ci_low": float("nan"),
                                                           "ci_high": float("nan")})

            def fmt(r: pd.Series, digits: int = 3) -> str:
                return f"{r.value:.{digits}f} [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"

            rows.append({
                "dataset": run.dataset, "model": run.name, "seed": run.seed,
                "clean (%)": round(100 * get("clean_accuracy").value, 1),
                f"deletion AUC ({fill}) ↓": fmt(get("deletion_auc", fill, "saliency")),
                "deletion AUC, random order": fmt(get("deletion_auc", fill, "random")),
                "deletion ratio ↓": fmt(get("deletion_ratio", fill, "saliency/random")),
                "insertion ratio ↑": fmt(get("insertion_ratio", fill, "saliency/random")),
                f"top-k acc. AUC ({fill}) ↓": fmt(get("topk_accuracy_auc", fill, "saliency")),
                "top-k acc. AUC (training fill) ↓": fmt(get("topk_accuracy_auc", run.mask_fill, "saliency")),
                "Gini": fmt(get("gini"), 2),
                "randomisation ρ": fmt(get("randomisation_spearman"), 2),
                "randomisation check": "PASS" if get("randomisation_check").value == 1 else "FAIL",
            })
        return pd.DataFrame(rows)

    def _runs(self, dataset: str | None):
        r = self.runs if dataset is None else self.runs[self.runs.dataset == dataset]
        return list(r.itertuples(index=False))


def claims_weakened(dataset: str, name: str) -> list[str]:
    """Keys of the paper's claims about the robustness of run ``name`` on ``dataset`` (see
    :mod:`asgt_lib.judgement.claims`): those a failed sanity check of that run weakens (an overstated robust
    accuracy inflates exactly these)."""
    return [c.key for c in CLAIMS if c.dataset == dataset and c.method == name]


def transfer_sources(configs: dict[Path, RunConfig]) -> dict[Path, Path | None]:
    """For each run directory (with its config), the ST run of the same dataset, preset and seed (None when there
    is none)."""
    st = {(c.dataset, c.preset, c.seed): d for d, c in configs.items() if c.method == "st"}
    return {d: st.get((c.dataset, c.preset, c.seed)) for d, c in configs.items()}


def _sanity_per_budget(settings: AuditSettings, dataset: str) -> dict[float, SanitySettings]:
    """The sanity settings of each budget the audit checks ``dataset`` at (:meth:`AuditSettings.budgets`)."""
    return {budget: dataclasses.replace(settings.sanity, standard_eps=budget) for budget in settings.budgets(dataset)}


def _reports(d: Path, dataset: str, st: Path | None, data_dir: Path | None, settings: AuditSettings,
             device: str | None, force: bool, skip: tuple[float, ...] = ()
             ) -> tuple[dict[float, SanityResult], FaithfulnessResult]:
    """The sanity reports (per budget, but those in ``skip``) and the faithfulness report of one run (computed or
    cached)."""
    sanity = {budget: sanity_report(d, st, data_dir, settings.n_per_class, per_budget, device, force)
              for budget, per_budget in _sanity_per_budget(settings, dataset).items() if budget not in skip}
    return sanity, faithfulness_report(d, data_dir, settings.n_per_class, settings.faithfulness, device, force)


def _missing_reports(d: Path, cfg: RunConfig, source: Path | None, settings: AuditSettings) -> dict[str, float | None]:
    """The reports run ``d`` lacks: name -> its budget (None for the faithfulness report)."""
    wanted = {f"sanity at eps={budget:g}": (budget, derived_dir(d, "sanity", sanity_key(d, source, settings.n_per_class,
                                                                                      per_budget)))
              for budget, per_budget in _sanity_per_budget(settings, cfg.dataset).items()}
    wanted["faithfulness"] = (None, derived_dir(d, "faithfulness",
                                                faithfulness_key(d, settings.n_per_class, settings.faithfulness)))
    return {name: budget for name, (budget, path) in wanted.items() if not is_finished(path, warn=False)}


def unauditable_budgets(d: Path, cfg: RunConfig, source: Path | None, settings: AuditSettings) -> tuple[float, ...]:
    """The extra budgets (``extra_eps``) whose sanity report run ``d`` lacks while its model, or its transfer
    source's, is not on this machine: a budget added to ``audit.yaml`` after the run was computed and committed
    without its weights. The audit leaves these out unless told to train the models again (``retrain``), hours of
    work for a check the run's other budgets already make; the pages say which runs lack them."""
    return _unauditable(d, source, settings.budgets(cfg.dataset)[0], _missing_reports(d, cfg, source, settings))


def _unauditable(d: Path, source: Path | None, standard: float, missing: dict[str, float | None]
                 ) -> tuple[float, ...]:
    """:func:`unauditable_budgets` from the reports run ``d`` lacks (:func:`_missing_reports`)."""
    extra = [b for b in missing.values() if b is not None and b != standard]
    if not extra or (has_checkpoint(d) and (source is None or has_checkpoint(source))):
        return ()
    return tuple(extra)


def unaudited(preset: str, results_dir: Path | None = None, params_dir: Path | None = None,
              auditable_only: bool = False) -> list[str]:
    """Every audit report that the finished runs of ``preset`` lack under the current code and ``audit.yaml``
    (a sanity report per budget and a faithfulness report per run), as ``<run dir>: <report>`` lines; empty when
    the audit would only read its caches. ``auditable_only``: without the :func:`unauditable_budgets`, which the
    audit does not compute unless told to train the models again."""
    settings = audit_settings(preset, params_dir)
    configs = {d: run_config(d)[0] for d in run_dirs(Path(results_dir or default_results_dir()), preset)}
    sources = transfer_sources(configs)
    missing = []
    for d, cfg in configs.items():
        lacking = _missing_reports(d, cfg, sources[d], settings)
        skip = _unauditable(d, sources[d], settings.budgets(cfg.dataset)[0], lacking) if auditable_only else ()
        missing += [f"{d}: {name}" for name, budget in lacking.items() if budget not in skip]
    return missing


def unaudited_runs(preset: str, results_dir: Path | None = None, params_dir: Path | None = None) -> dict[str, int]:
    """The finished runs whose audit the next ``audit`` call computes: run directory -> how many reports it lacks
    (the :func:`unaudited` lines, ``auditable_only``, counted per run)."""
    counts: dict[str, int] = {}
    for line in unaudited(preset, results_dir, params_dir, auditable_only=True):
        run = line.split(": ", 1)[0]
        counts[run] = counts.get(run, 0) + 1
    return dict(sorted(counts.items()))


def audit_run(run_dir: Path, preset: str, data_dir: Path | None = None, device: str | None = None,
              params_dir: Path | None = None) -> bool:
    """Compute (or find cached) the audit of one finished run, while its checkpoint is at hand: what
    ``asgt batch --audit`` does after each run, so that a committed run never needs its weights again. Needs the
    ST run of the same dataset and seed (the transfer source) to be finished; returns False, computing nothing,
    when it is not yet (``asgt audit`` does it later)."""
    run_dir = Path(run_dir)
    results_dir = run_dir.parents[3]
    configs = {d: run_config(d)[0] for d in run_dirs(results_dir, preset)}
    if run_dir not in configs:
        raise FileNotFoundError(f"{run_dir} is not a finished run of preset {preset!r}")
    source = transfer_sources(configs)[run_dir]
    if source is None:
        return False
    _reports(run_dir, configs[run_dir].dataset, source, data_dir, audit_settings(preset, params_dir), device, False)
    return True


#: Seconds of one thread to audit a run at one budget and ``n_per_class: 10`` at the reference widths (official
#: AutoAttack settings; the quick audit).
AUDIT_SECONDS = 180.0


def audit_seconds(cfg: RunConfig, params_dir: Path | None = None) -> float:
    """A rough estimate of the seconds of one thread that auditing a run of ``cfg`` takes, at every budget of its
    preset (:meth:`AuditSettings.budgets`): for a model robust at them, an upper bound (AutoAttack only attacks
    the points a model still classifies correctly)."""
    from ..pipeline.batch import STEP_SHAPE

    width = STEP_SHAPE[cfg.dataset][0]
    settings = audit_settings(cfg.preset, params_dir)
    per_budget = AUDIT_SECONDS * settings.n_per_class / 10 * (cfg.width / width) ** 1.5
    return per_budget * len(settings.budgets(cfg.dataset)) * (0.1 if cfg.preset == "smoke" else 1.0)


def pending_work(preset: str, jobs: int = 1, data_dir: Path | None = None, results_dir: Path | None = None,
                 params_dir: Path | None = None) -> tuple[int, int, float]:
    """(runs of the grid missing or stale, runs finished but not audited, estimated wall seconds with ``jobs``
    jobs) of what ``asgt book`` would compute for ``preset``: the runs with their audits, the audits that
    finished runs lack, and the training of every model those audits need whose checkpoint is not on this machine
    (a finished transfer source, or a finished run itself; checkpoints stay out of git, so on a fresh clone every
    seed's ST run is trained again once for its audits)."""
    from ..core.compute import physical_cores
    from ..pipeline.batch import expected_seconds, expected_training_seconds, plan

    grid = plan(preset, data_dir=data_dir, results_dir=results_dir, params_dir=params_dir)
    todo = [j for j in grid if not j.done()]
    lacking = unaudited_runs(preset, results_dir, params_dir)
    by_dir = {str(j.run_dir): j for j in grid}
    st = {(j.config.dataset, j.config.seed): j for j in grid if j.config.method == "st"}
    audited = [j for j in todo if j.config.method != "st"] + [by_dir[d] for d in lacking if d in by_dir]
    needed = {str(j.run_dir): j for j in audited if str(j.run_dir) in lacking}  # finished runs audited later
    for j in audited:
        source = st.get((j.config.dataset, j.config.seed))
        if source is not None and source.done():
            needed[str(source.run_dir)] = source
    retrained = [j for j in needed.values() if not has_checkpoint(j.run_dir)]
    seconds = sum(expected_seconds(j.config) + audit_seconds(j.config, params_dir) for j in todo)
    seconds += sum(audit_seconds(by_dir[d].config, params_dir) for d in lacking if d in by_dir)
    seconds += sum(expected_training_seconds(j.config) for j in retrained)
    return len(todo), len(lacking), seconds / max(1, min(jobs, physical_cores()))


def _compute_in_worker(job: tuple) -> tuple[str, float, bool]:
    """Pool worker: compute (or find cached) one run's reports with ``threads`` threads; return the run
    directory, the seconds it took, and whether everything was cached."""
    import torch

    d, dataset, st, data_dir, settings, device, force, skip, threads = job
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    sanity, fai = _reports(d, dataset, st, data_dir, settings, device, force, skip)
    return str(d), time.perf_counter() - t0, all(s.cached for s in sanity.values()) and fai.cached


def audit(
    results_dir: Path | None = None,
    preset: str = "quick",
    data_dir: Path | None = None,
    device: str | None = None,
    params_dir: Path | None = None,
    datasets: list[str] | None = None,
    progress: bool = True,
    force: bool = False,
    jobs: int | None = None,
    retrain: bool = False,
) -> Audit:
    """Sanity checks and faithfulness metrics of every finished run of ``preset`` (cached per run).

    ``jobs`` > 1 computes the missing reports in that many worker processes, each with an equal share of the
    CPU threads. That helps because the strong attacks spend most of their time on few surviving points, where one
    process cannot keep the cores busy. Every attack is seeded per run, so ``jobs`` changes only the threads per
    process (which can move the last bits of a float sum), not what is computed.
    ``progress`` prints one line per run. A budget added to ``audit.yaml`` after a run was committed without its
    weights (:func:`unauditable_budgets`) is left out for that run, and said so, unless ``retrain`` trains the
    model again. Raises FileNotFoundError when the preset has no finished run under ``results_dir``.
    """
    start = time.perf_counter()
    settings = audit_settings(preset, params_dir)
    results_dir = Path(results_dir or default_results_dir())
    configs = {d: run_config(d)[0] for d in run_dirs(results_dir, preset)}
    configs = {d: c for d, c in configs.items() if not datasets or c.dataset in datasets}
    dirs = list(configs)
    if not dirs:
        raise FileNotFoundError(f"no finished runs of preset {preset!r} under {results_dir}: run "
                                f"`asgt batch --preset {preset}` first")
    jobs = DEFAULT_JOBS if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs={jobs} must be >= 1")
    sources = transfer_sources(configs)
    skips = {d: () if retrain else unauditable_budgets(d, configs[d], sources[d], settings) for d in dirs}
    if progress and any(skips.values()):
        lacking = [d for d in dirs if skips[d]]
        budgets = sorted({b for d in lacking for b in skips[d]})
        print(f"asgt audit [{preset}]: {len(lacking)} run(s) lack the check at ε = "
              f"{', '.join(f'{b:g}' for b in budgets)}, added after them; their weights are not here: left out "
              f"(--retrain trains them again)", file=sys.stderr, flush=True)
    seconds: dict[str, float] = {}
    if jobs > 1 and len(dirs) > 1:
        import multiprocessing

        import torch

        threads = max(1, torch.get_num_threads() // jobs)
        work = [(d, configs[d].dataset, sources[d], data_dir, settings, device, force, skips[d], threads)
                for d in dirs]
        with multiprocessing.get_context("spawn").Pool(min(jobs, len(dirs))) as pool:
            for n, (done, took, was_cached) in enumerate(pool.imap_unordered(_compute_in_worker, work), 1):
                if not was_cached:
                    seconds[done] = took
                if progress and not was_cached:
                    print(f"asgt audit [{preset}] computed {n}/{len(dirs)} {Path(done).relative_to(results_dir)} "
                          f"({took:.0f} s)", file=sys.stderr, flush=True)
        force = False  # the workers did the work: read their caches below
    headline = settings.faithfulness.headline_fill
    runs, checks, attacks, summaries, curves, monitor, retrained = [], [], [], [], [], [], []
    for i, (d, cfg) in enumerate(configs.items(), 1):
        t0 = time.perf_counter()
        key = f"{cfg.dataset}/{cfg.label}/seed{cfg.seed}"
        sanity, fai = _reports(d, cfg.dataset, sources[d], data_dir, settings, device, force, skips[d])
        for budget, san in sanity.items():
            checks.append(san.checks.assign(run=key, budget=budget))
            attacks.append(san.attacks.assign(run=key, budget=budget))
            retrained += [{"run": key, "dataset": cfg.dataset, "budget": budget, "role": role,
                           "max_difference": w["max_difference"]}
                          for role, w in (("model", san.weights), ("transfer source", san.st_weights))
                          if w and w["trained_again"] and not w["same_history"]
                          and not (role == "transfer source" and sources[d] == d)]
        runs.append({"key": key, "dataset": cfg.dataset, "name": cfg.label, "method": cfg.method, "seed": cfg.seed,
                     "label": f"{cfg.label}" + (f"/s{cfg.seed}" if cfg.seed else ""), "mask_fill": cfg.mask_fill,
                     "run_dir": str(d), "st_run_dir": str(sources[d]) if sources[d] else "",
                     "faithfulness_dir": str(fai.path)})
        summaries.append(fai.summary.assign(run=key))
        curves.append(fai.curves.assign(run=key))
        monitor.extend(overfitting_history(d, key, cfg))
        if progress:
            cached = all(s.cached for s in sanity.values()) and fai.cached and str(d) not in seconds
            took = seconds.get(str(d), time.perf_counter() - t0)
            verdicts = " | ".join(f"ε={budget:.4g} {checks_line(s.checks)}" for budget, s in sanity.items())
            print(f"asgt audit [{preset}] {i}/{len(dirs)} {key}: {verdicts}; deletion ratio "
                  f"{fai.value('deletion_ratio', headline, 'saliency/random'):.3f} "
                  f"({'cached' if cached else f'{took:.0f} s'})", file=sys.stderr, flush=True)
    checks_df = pd.concat(checks, ignore_index=True)
    checks_df["passed"] = checks_df["passed"].astype(bool)
    result = Audit(preset, settings, pd.DataFrame(runs), checks_df, pd.concat(attacks, ignore_index=True),
                   pd.concat(summaries, ignore_index=True), pd.concat(curves, ignore_index=True),
                   pd.DataFrame(monitor), time.perf_counter() - start,
                   pd.DataFrame(retrained, columns=["run", "dataset", "budget", "role", "max_difference"]))
    if progress:
        flags = result.overfitting_flags()
        for r in flags[flags["catastrophic overfitting"] == "FLAG"].to_dict("records"):
            print(f"asgt audit [{preset}] catastrophic overfitting: {r['dataset']}/{r['model']}/seed{r['seed']}: "
                  f"{r['why']} on the training monitor batch", file=sys.stderr, flush=True)
    return result
