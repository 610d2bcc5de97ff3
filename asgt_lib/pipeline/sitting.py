"""Which runs of a batch fit in a sitting on this machine: ``asgt batch --plan`` and ``--within SECONDS``.

A sitting (a session on a machine whose disk does not outlive it) must finish every run it starts, with its audit:
a run's per-epoch training state and its checkpoint stay out of git, so a run stopped half-way is lost. The one-thread
estimates of :mod:`.batch` (``STEP_MS``, measured on an Intel Xeon with AMX at the reference widths) are off by a
factor of two or more at other widths and on other CPUs: at the paper's MNIST width and two threads, an ST step in
bf16 took 0.121 s on that Xeon and 0.28 s on an AMD EPYC with AVX-512 BF16 (2026-12-07), where the one-thread
estimate says 0.46 (0.235 measured at one thread on the Xeon). So the plan measures here, with the threads a job
will have, what decides whether a run fits:

* its training: a few training steps of its own method, width, batch and precision (random data), times the steps
  left (none when its checkpoint is finished here, fewer when a stopped batch left its training state);
* its evaluation: the attack steps of its sweep (:func:`.batch.sweep_image_steps`) times the largest share of them
  the committed runs of its run file spent (:func:`attacked_share`: the incremental sweep skips fallen images; about
  0.5-0.7 on MNIST), at the float32 attack-step rate measured here on the run's model;
* its audit (``--audit``): its evaluation times the largest ratio of audit to evaluation seconds among the committed
  runs of its run file and preset (:func:`audit_share`: 0.09-0.21 for ST, SGT and ASGT at the paper's width); where
  there is none, the one-thread estimate of :func:`asgt_lib.judgement.audit.audit_seconds` converted to attack
  steps and timed at that rate (an upper bound: AutoAttack only attacks the points a model still classifies
  correctly, so a model robust to neither budget takes a fraction of it);
* the ST model of its seed trained again when the audit needs it as transfer source and its checkpoint is not
  here (once a seed, paid by the first run of that seed the sitting takes).

The selection (:func:`fit`) is list scheduling over the jobs in the batch's execution order: a run is taken when its
worker finishes it within the sitting; a run that would not is left for another sitting, and a cheaper one after it
may still be taken. Training is measured; evaluation and audit are estimates from committed runs where there are
some (else upper bounds); all three are scaled by :data:`CALIBRATION`, what one real run took against its plan.
Leave a margin all the same (a run's steps vary by a few per cent, and a second heavy process on the
machine slows both several-fold).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..core import compute
from ..core import config as C
from ..core.attacks import pgd
from ..core.data import data_source
from ..core.methods import get_method
from ..core.models import INPUT_SHAPE, build_model, eval_mode
from ..core.storage import is_finished
from ..core.train import TrainingState, make_generator, method_params, training_step
from .batch import Job, image_step_seconds, steps_per_epoch, sweep_image_steps


#: What a run took against the plan from its bare steps: the training loop gathers batches, sets the learning rate,
#: sums the loss terms and scores its monitor each epoch, and the sweep scores every batch besides attacking it.
#: Measured on the AMD EPYC (2026-12-07), `paper-cpu` ST seed 0 trained again at two threads with `--audit`: training
#: 2,602 s against 2,391 planned, evaluation 1,256 against 1,111, audit 152 against 138: 1.09, 1.13 and 1.10. The
#: plan multiplies all three by this; two plans of one run, from three measured steps each, differed by up to 10%
#: (now five), so leave a margin all the same.
CALIBRATION = 1.12

#: Seconds a run costs besides its steps: the notebook's kernel, the data, the saliency maps and the files (a smoke
#: run, a few hundred steps, took 9 s in all).
FIXED_SECONDS = 30.0


@dataclass(frozen=True)
class RunCost:
    """Wall seconds a run will take on this machine, by part; ``source`` is the ST model of its seed to train again
    for its audit (``source_key`` names it; 0 s when none is needed)."""

    title: str
    training: float
    evaluation: float
    audit: float = 0.0
    source: float = 0.0
    source_key: str | None = None
    note: str = ""  # what is left of the training, where a stopped batch left some of it
    basis: str = ""  # where the evaluation's share of attack steps comes from (:func:`attacked_share`)
    audit_basis: str = ""  # where the audit's estimate comes from (:func:`audit_share`, else an upper bound)
    fixed: float = FIXED_SECONDS

    @property
    def own(self) -> float:
        """Without the transfer source, which the sitting trains once for all runs of a seed."""
        return self.training + self.evaluation + self.audit + self.fixed


def step_seconds(cfg: C.RunConfig, device: torch.device, repeats: int = 5,
                 warmup: contextlib.AbstractContextManager | None = None) -> float:
    """Median seconds of one training step of ``cfg`` (method, width, batch size, precision) on random data, after
    a warm-up step (run inside ``warmup``: ``bench/step_cost.py`` counts its FLOPs there), with the threads this
    process has."""
    torch.manual_seed(0)
    model = compute.prepare_model(build_model(cfg.dataset, cfg.model, cfg.width), cfg.model, device).train()
    x = torch.rand(cfg.batch_size, *INPUT_SHAPE[cfg.dataset], device=device)
    y = torch.randint(0, 10, (cfg.batch_size,), device=device)
    loss_fn, params = get_method(cfg.method), method_params(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    noise = make_generator(0, device)
    with warmup or contextlib.nullcontext():
        training_step(model, loss_fn, x, y, params, noise, optimizer, cfg.precision)
    times = []
    for _ in range(repeats):
        compute.synchronize(device)
        start = time.perf_counter()
        training_step(model, loss_fn, x, y, params, noise, optimizer, cfg.precision)
        compute.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def attack_step_rate(cfg: C.RunConfig, device: torch.device, n_images: int = 128, steps: int = 3) -> float:
    """Attack steps on test images per second (PGD, float32, the model in eval mode, as the sweep and the audit
    attack), measured on ``n_images`` random images at the run's width after a warm-up."""
    torch.manual_seed(0)
    model = compute.prepare_model(build_model(cfg.dataset, cfg.model, cfg.width), cfg.model, device)
    x = torch.rand(n_images, *INPUT_SHAPE[cfg.dataset], device=device)
    y = torch.randint(0, 10, (n_images,), device=device)
    with eval_mode(model):
        pgd(model, x, y, 0.1, steps=1, alpha=0.01)
        compute.synchronize(device)
        start = time.perf_counter()
        pgd(model, x, y, 0.1, steps=steps, alpha=0.01)
        compute.synchronize(device)
    return n_images * steps / (time.perf_counter() - start)


def attacked_share(cfg: C.RunConfig, results_dir: Path) -> tuple[float, str]:
    """The share of its sweep's attack steps (:func:`.batch.sweep_image_steps`) a run of ``cfg`` is expected to
    spend, and where it comes from: the incremental sweep attacks only the images not yet fallen, so the largest
    share the committed runs of the same run file spent (its preset's, else ``reference``'s: the same grid at
    another width); 1 (the bound) where there is none."""
    import pandas as pd

    from ..core.evaluate import attack_steps
    from .experiment import read_robustness

    def share(table: pd.DataFrame) -> float:
        rows = table[table.eps > 0]
        steps = pd.Series([attack_steps(a, cfg, s) for a, s in zip(rows.attack, rows.attack_step)], index=rows.index)
        return float((rows.n_attacked * steps).sum() / (rows.n * steps).sum())

    for preset in dict.fromkeys([cfg.preset, "reference"]):
        tables = sorted((Path(results_dir) / preset / cfg.dataset / cfg.label).glob("seed*-*/robustness.csv"))
        shares = [share(read_robustness(t)) for t in tables]
        if shares:
            return max(shares), f"{preset}: {len(shares)} run(s)"
    return 1.0, "no committed run"


def audit_share(cfg: C.RunConfig, results_dir: Path) -> tuple[float, str] | None:
    """The audit's seconds per second of evaluation that the committed runs of the same run file and preset took
    (the largest; both on the machine of each run), and where it comes from; None where there is none. The same
    preset, not another width: what an audit costs is how robust the model is at its budgets (AutoAttack only
    attacks the points still classified correctly), and width changes that."""
    import json

    ratios = []
    for run in sorted((Path(results_dir) / cfg.preset / cfg.dataset / cfg.label).glob("seed*-*/metrics.json")):
        evaluation = json.loads(run.read_text()).get("eval_seconds")
        reports = [p for kind in ("sanity", "faithfulness")
                   for p in run.parent.parent.glob(f"{kind}-{run.parent.name}-*/meta.json")]
        if evaluation and reports:
            ratios.append(sum(json.loads(p.read_text())["seconds"] for p in reports) / evaluation)
    return (max(ratios), f"{cfg.preset}: {len(ratios)} run(s)") if ratios else None


def run_costs(todo: list[Job], grid: list[Job], data_dir: Path, results_dir: Path, device: torch.device,
              audit_estimate: Callable[[C.RunConfig], float] | None = None, measure=None) -> list[RunCost]:
    """The :class:`RunCost` of each run of ``todo`` (in that order) on this machine. ``grid``: the batch's whole
    plan (where the ST run of each seed is found). ``audit_estimate``: where the runs are audited, the one-thread
    seconds of a run's audit on the machine of :data:`.batch.STEP_MS`
    (:func:`asgt_lib.judgement.audit.audit_seconds`, passed in by the command line: the pipeline does not import
    the judgement layer). ``measure``: (step_seconds, attack_step_rate), replaceable for tests; each distinct shape
    is measured once."""
    from .experiment import checkpoint_dir_for, training_state_dir

    step_of, rate_of = measure or (step_seconds, attack_step_rate)
    steps_cache: dict[tuple, float] = {}
    rate_cache: dict[tuple, float] = {}

    def step(cfg: C.RunConfig) -> float:
        key = (cfg.dataset, cfg.model, cfg.width, cfg.batch_size, cfg.precision, cfg.method, cfg.train_attack_steps)
        if key not in steps_cache:
            steps_cache[key] = step_of(cfg, device)
        return steps_cache[key]

    def rate(cfg: C.RunConfig) -> float:
        key = (cfg.dataset, cfg.model, cfg.width)
        if key not in rate_cache:
            rate_cache[key] = rate_of(cfg, device)
        return rate_cache[key]

    shares_cache: dict[tuple, tuple] = {}

    def shares(cfg: C.RunConfig) -> tuple:
        """(attacked_share, audit_share) of the run file, read once for all its seeds."""
        key = (cfg.preset, cfg.dataset, cfg.label)
        if key not in shares_cache:
            shares_cache[key] = (attacked_share(cfg, results_dir),
                                 audit_share(cfg, results_dir) if audit_estimate is not None else None)
        return shares_cache[key]

    def checkpoint(cfg: C.RunConfig) -> Path:
        return checkpoint_dir_for(cfg, data_source(cfg.dataset, data_dir), results_dir)

    def training(cfg: C.RunConfig) -> tuple[float, str]:
        if is_finished(checkpoint(cfg), warn=False):
            return 0.0, "trained here already"
        done = TrainingState.epochs_saved(training_state_dir(checkpoint(cfg)))
        note = f"{done} of {cfg.epochs} epochs saved here" if done else ""
        return CALIBRATION * step(cfg) * steps_per_epoch(cfg) * (cfg.epochs - done), note

    st_of = {(j.config.dataset, j.config.seed): j for j in grid if j.config.method == "st"}
    todo_dirs = {str(j.run_dir) for j in todo}
    costs = []
    for job in todo:
        cfg = job.config
        train_s, note = training(cfg)
        (fraction, basis), share = shares(cfg)
        evaluation = CALIBRATION * sweep_image_steps(cfg) * fraction / rate(cfg)
        audit_s, source_s, source_key = 0.0, 0.0, None
        audit_basis = ""
        if audit_estimate is not None:
            if share is None:
                audit_s = CALIBRATION * audit_estimate(cfg) / image_step_seconds(cfg) / rate(cfg)
                audit_basis = "at most: a model robust at every budget"
            else:
                audit_s = share[0] * evaluation
                audit_basis = f"{share[0]:.2f} of the evaluation, from {share[1]}"
            st = st_of.get((cfg.dataset, cfg.seed))
            if (cfg.method != "st" and st is not None and str(st.run_dir) not in todo_dirs and st.done()
                    and not is_finished(checkpoint(st.config), warn=False)):
                source_s, source_key = training(st.config)[0], st.title
        costs.append(RunCost(job.title, train_s, evaluation, audit_s, source_s, source_key, note,
                             f"{fraction:.0%} of the bound, from {basis}", audit_basis))
    return costs


def fit(costs: list[RunCost], within: float, jobs: int = 1) -> list[RunCost]:
    """The runs of ``costs`` (in execution order) that ``jobs`` workers finish within ``within`` seconds: each
    taken run goes to the least loaded worker; a run's transfer source is paid by the first taken run that needs
    it. A run that would end past ``within`` is left, and later ones may still be taken."""
    loads, paid, taken = [0.0] * max(1, jobs), set(), []
    for cost in costs:
        worker = min(range(len(loads)), key=loads.__getitem__)
        extra = cost.source if cost.source_key and cost.source_key not in paid else 0.0
        if loads[worker] + cost.own + extra <= within:
            loads[worker] += cost.own + extra
            paid.add(cost.source_key)
            taken.append(cost)
    return taken


def describe(costs: list[RunCost], taken: list[RunCost], within: float | None) -> list[str]:
    """One line a run: its parts in seconds and whether the sitting takes it."""
    chosen = {c.title for c in taken}
    lines = []
    for c in costs:
        parts = [f"training {c.training:,.0f}" + (f" ({c.note})" if c.note else ""),
                 f"evaluation {c.evaluation:,.0f}" + (f" ({c.basis})" if c.basis else "")]
        if c.audit:
            parts.append(f"audit {c.audit:,.0f}" + (f" ({c.audit_basis})" if c.audit_basis else ""))
        if c.source_key:
            parts.append(f"{c.source_key} trained again for the audit {c.source:,.0f} (once a seed)")
        verdict = "" if within is None else (": taken" if c.title in chosen else ": left for another sitting")
        parts.append(f"{c.fixed:,.0f} fixed")
        lines.append(f"  {c.title}: {' + '.join(parts)} = {c.own + c.source:,.0f} s{verdict}")
    return lines
