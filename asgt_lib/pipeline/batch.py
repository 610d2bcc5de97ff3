"""The grid: papermill executes ``notebooks/run.ipynb`` once per (run file, seed) of a preset.

Each executed notebook is kept (``book/runs/<preset>/<dataset>-<name>-seed<N>.ipynb``, its figures compacted by
:func:`compact_png`) so a reader can open the exact notebook that produced a number. A run whose results and notebook
both exist is skipped, so a batch killed half-way finishes only what is left when started again, the half-done runs
first (:func:`execution_order`). A failure names the run and keeps its executed notebook (``...FAILED.ipynb``) for
inspection; every other run still completes.
"""

from __future__ import annotations

import base64
import concurrent.futures as futures
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

#: What runs after each finished run of a batch, in its worker: (run directory, preset, data folder, device,
#: params folder) -> None.
AfterRun = Callable[[Path, str, str, "str | None", str], None]

from ..core import config as C
from ..core.compute import physical_cores
from ..core.config import ROOT
from ..core.data import data_source, default_data_dir

RUN_NOTEBOOK = ROOT / "notebooks" / "run.ipynb"


def default_notebooks_dir() -> Path:
    """``$ASGT_NOTEBOOKS_DIR``, else ``book/runs`` of this checkout (where the book renders them)."""
    env = os.environ.get("ASGT_NOTEBOOKS_DIR")
    return Path(env) if env else ROOT / "book" / "runs"


def notebook_name(dataset: str, label: str, seed: int) -> str:
    """The file name of a run's executed notebook (the book links to it by this name)."""
    return f"{dataset}-{label}-seed{seed}.ipynb"


@dataclass(frozen=True)
class Job:
    run_file: Path
    config: C.RunConfig
    run_dir: Path
    notebook: Path

    @property
    def title(self) -> str:
        return f"{self.config.dataset}/{self.config.label}/seed{self.config.seed}"

    def done(self) -> bool:
        from ..core.storage import is_finished

        return self.notebook.is_file() and is_finished(self.run_dir)


def plan(
    preset: str,
    datasets: list[str] | None = None,
    only: list[str] | None = None,
    data_dir: Path | None = None,
    results_dir: Path | None = None,
    params_dir: Path | None = None,
    notebooks_dir: Path | None = None,
    device: str | None = None,
    seeds: list[int] | None = None,
) -> list[Job]:
    """Resolve and validate every run of the grid before anything runs (a bad file stops the batch at once).

    Each run is keyed as ``experiment.run`` will key it on ``device`` (:func:`experiment.keyed_config`): a bf16
    run not yet finished is planned as fp32 on a machine without bf16."""
    from ..core.compute import resolve_device
    from .experiment import default_results_dir, keyed_config, run_dir_for

    data_dir = Path(data_dir or default_data_dir())
    results_dir = Path(results_dir or default_results_dir())
    notebooks_dir = Path(notebooks_dir or default_notebooks_dir()) / preset
    dev = resolve_device(device)
    jobs = []
    for dataset in datasets or list(C.DATASETS):
        planned = C.preset_runs(preset, dataset, params_dir)  # a preset may plan some run files only
        files = [f for f in C.run_files(dataset, params_dir) if (not only or f.stem in only)
                 and (planned is None or f.stem in planned)]
        if not files:
            continue
        source = data_source(dataset, data_dir)
        for f in files:
            for seed in C.preset_seeds(preset, dataset, params_dir, run=f.stem):
                if seeds and seed not in seeds:
                    continue
                cfg = keyed_config(C.resolve(f, preset, seed, params_dir=params_dir), source, results_dir, dev)
                nb = notebooks_dir / notebook_name(cfg.dataset, cfg.label, cfg.seed)
                jobs.append(Job(f, cfg, run_dir_for(cfg, source, results_dir), nb))
    if not jobs:
        raise C.ConfigError(f"no run of preset {preset} matches datasets={datasets} only={only} seeds={seeds} in "
                            f"{params_dir or 'params/'}")
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.notebook in seen and seen[job.notebook] != job.run_file:
            raise C.ConfigError(f"{job.run_file} and {seen[job.notebook]} both resolve to the run name "
                                f"'{job.config.label}'; give one of them a distinct `name:`")
        seen[job.notebook] = job.run_file
    return jobs


def stale_runs(preset: str, data_dir: Path | None = None, results_dir: Path | None = None,
               params_dir: Path | None = None) -> list[Path]:
    """Finished run directories of ``preset`` that the current code and parameters would not produce: their key
    (parameters, data source, numerics versions) matches no run of the grid, so they were computed by older code
    or parameters."""
    from .experiment import run_dirs

    planned = {j.run_dir.resolve() for j in plan(preset, data_dir=data_dir, results_dir=results_dir,
                                                 params_dir=params_dir)}
    return [d for d in run_dirs(results_dir, preset) if d.resolve() not in planned]


def notebook_parameters(job: Job, data_dir: Path, results_dir: Path, params_dir: Path | None) -> dict[str, Any]:
    """What papermill injects: the run file's keys (as ``-f`` would) plus seed, preset and folders."""
    params = C.load_yaml(job.run_file)
    params.update(seed=job.config.seed, preset=job.config.preset, data_dir=str(Path(data_dir).resolve()),
                  results_dir=str(Path(results_dir).resolve()),
                  params_dir=str(Path(params_dir or C.default_params_dir()).resolve()))
    return params


def execute(job: Job, parameters: dict[str, Any], threads: int, device: str | None,
            after_run: AfterRun | None = None) -> tuple[str, float, str | None]:
    """Run one notebook with papermill; the output appears atomically. Then ``after_run`` (the audit, for
    :func:`asgt_lib.judgement.audit.audit_run`) while the run's checkpoint is at hand. Returns (title, seconds,
    error)."""
    import papermill

    from .kernels import LocalKernelManager

    start = time.perf_counter()
    job.notebook.parent.mkdir(parents=True, exist_ok=True)
    partial = job.notebook.with_name(f".{job.notebook.stem}.partial.ipynb")
    failed = job.notebook.with_name(f"{job.notebook.stem}.FAILED.ipynb")
    os.environ["ASGT_THREADS"] = str(threads)
    if device:
        os.environ["ASGT_DEVICE"] = device
    try:
        papermill.execute_notebook(str(RUN_NOTEBOOK), str(partial), parameters=parameters, kernel_name="python3",
                                   cwd=str(ROOT), progress_bar=False, log_output=False,
                                   kernel_manager_class=LocalKernelManager)
    except Exception as exc:  # papermill raises PapermillExecutionError and others; keep the evidence
        if partial.exists():
            os.replace(partial, failed)
        reason = str(exc).strip().splitlines()
        return job.title, time.perf_counter() - start, f"{reason[-1] if reason else exc!r} (notebook: {failed})"
    _finish_notebook(partial, f"Run: {job.config.dataset} · {job.config.label} · seed {job.config.seed} "
                              f"({job.config.preset})")
    os.replace(partial, job.notebook)
    failed.unlink(missing_ok=True)
    if after_run is not None:
        import torch

        torch.set_num_threads(threads)
        try:
            after_run(job.run_dir, job.config.preset, parameters["data_dir"], device, parameters["params_dir"])
        except Exception as exc:  # the run itself is finished and kept; `asgt audit` retries the audit
            return job.title, time.perf_counter() - start, f"run finished, {_name(after_run)} failed: {exc!r}"
    return job.title, time.perf_counter() - start, None


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", repr(fn))


def _finish_notebook(notebook: Path, title: str) -> None:
    """Give an executed run notebook its own first heading (the book's sidebar shows it) and compact its figures."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            cell.source = f"# {title}" + cell.source[cell.source.index("\n"):] if "\n" in cell.source else f"# {title}"
            break
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                output["data"]["image/png"] = base64.b64encode(
                    compact_png(base64.b64decode(output["data"]["image/png"]))).decode("ascii")
    nbformat.write(nb, notebook)


#: The largest mean absolute error, in 8-bit levels per channel, that :func:`compact_png` accepts for a palette.
PALETTE_TOLERANCE = 0.25


def compact_png(png: bytes) -> bytes:
    """The smallest of: ``png``, ``png`` re-compressed, and ``png`` as a 256-colour palette image when that stays
    within :data:`PALETTE_TOLERANCE` of every pixel on average (plots: a few hundred colours from anti-aliasing,
    error about 0.02 level; a grid of natural images is kept lossless). A run notebook's figures shrink to about a
    third: every committed run adds less to the repository (issue 36 keeps it under 80 MB)."""
    import io

    import numpy as np
    from PIL import Image

    def encoded(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG", optimize=True)
        return buffer.getvalue()

    def rgba(data: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), dtype=np.int16)

    image = Image.open(io.BytesIO(png))
    palette = encoded(image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT))
    within = np.abs(rgba(palette) - rgba(png)).mean() <= PALETTE_TOLERANCE
    return min([png, encoded(image)] + ([palette] if within else []), key=len)


#: Milliseconds per training step of each run file's method, one thread, bf16 autocast, measured with
#: ``bench/step_cost.py`` on an Intel Xeon with AMX at the reference widths (MNIST AlexNet 0.25, batch 128;
#: CIFAR-10 ResNet-18 0.125, batch 256). Only for estimates: ordering a batch and saying how long it will take.
STEP_MS = {
    "mnist": {"st": 58, "sgt": 90, "at-fgsm": 100, "sga": 115, "asgt": 117, "asgt-code": 132, "fgsm-rs": 70,
              "pgd-at": 323, "asgt-rs": 140},
    "cifar10": {"st": 262, "sgt": 630, "at-fgsm": 603, "sga": 909, "asgt": 1072, "asgt-code": 1262,
                "fgsm-rs": 419, "pgd-at": 1600, "asgt-rs": 1240},
}
STEP_SHAPE = {"mnist": (0.25, 128, 60000), "cifar10": (0.125, 256, 50000)}  # width, batch, full training set
def expected_training_seconds(cfg: C.RunConfig) -> float:
    """A rough estimate of the seconds of one thread that training a run of ``cfg`` takes: its steps at
    :data:`STEP_MS`, scaled by width^1.5, batch size, and 2x for float32. Also what the audit spends when it trains
    a transfer source again whose checkpoint is not on this machine."""
    width, batch, _ = STEP_SHAPE[cfg.dataset]
    ms = STEP_MS[cfg.dataset].get(cfg.method, STEP_MS[cfg.dataset]["st"] * (1 + cfg.train_attack_steps) / 2)
    ms *= (cfg.width / width) ** 1.5 * cfg.batch_size / batch * (2.0 if cfg.precision == "fp32" else 1.0)
    return steps_per_epoch(cfg) * cfg.epochs * ms / 1000


def steps_per_epoch(cfg: C.RunConfig) -> int:
    """Training steps of one epoch: the training set (all of it, or ``n_train_per_class`` a class) in batches."""
    n_train = cfg.n_train_per_class * 10 if cfg.n_train_per_class else STEP_SHAPE[cfg.dataset][2]
    return -(-n_train // cfg.batch_size)


def image_step_seconds(cfg: C.RunConfig) -> float:
    """A rough estimate of the seconds of one thread that one attack step on one test image takes (float32, as
    every scored attack): about an ST training step per image (:data:`STEP_MS`, scaled by width^1.5)."""
    width, batch, _ = STEP_SHAPE[cfg.dataset]
    return STEP_MS[cfg.dataset]["st"] * (cfg.width / width) ** 1.5 / batch / 1000


def sweep_image_steps(cfg: C.RunConfig) -> int:
    """The attack steps on test images of a run's sweep (test images x ε > 0 x the steps of FGSM, PGD and MI-FGSM
    under every step convention): an upper bound, since the incremental sweep skips the images already fallen."""
    from ..core.evaluate import attack_steps

    n_test = cfg.n_test_per_class * 10 if cfg.n_test_per_class else 10000
    steps = sum(attack_steps(name, cfg, step) for step in cfg.attack_step for name in cfg.eval_attacks)
    return n_test * sum(1 for e in cfg.eval_eps if e > 0) * steps


def expected_seconds(cfg: C.RunConfig) -> float:
    """A rough estimate of a run's cost in seconds of one thread: its training (:func:`expected_training_seconds`)
    and its sweep (:func:`sweep_image_steps` at :func:`image_step_seconds`). Good to a factor of about 1.5 at the
    reference widths on the machine it was measured on; ``asgt batch --plan`` measures the steps on this one."""
    return expected_training_seconds(cfg) + sweep_image_steps(cfg) * image_step_seconds(cfg)


def missing_attack_steps(job: Job) -> list[str]:
    """The step conventions a finished run's config asks for (``attack_step``) that its table lacks: a run
    committed before a convention existed. Not stale (the conventions are not part of its key); ``asgt batch
    --add-attack-steps`` scores them."""
    from .experiment import attack_steps_of, read_robustness

    if not job.done():
        return []
    present = attack_steps_of(read_robustness(job.run_dir / "robustness.csv"))
    return [s for s in job.config.attack_step if s not in present]


def add_steps(job: Job, data_dir: Path, device: str | None) -> tuple[str, float, str | None]:
    """Worker: score a finished run under the conventions it lacks (:func:`experiment.add_attack_steps`, which
    trains the model again where its checkpoint is not here, with the run's own thread count)."""
    from .experiment import add_attack_steps

    start = time.perf_counter()
    try:
        added = add_attack_steps(job.run_dir, job.config.attack_step, data_dir, device)
    except Exception as exc:  # one failure never stops the rest; nothing of the run was changed
        return job.title, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
    return f"{job.title} (+{', '.join(added) or 'nothing'})", time.perf_counter() - start, None


def execution_order(grid: list[Job], data_dir: Path, results_dir: Path) -> list[Job]:
    """The unfinished runs of ``grid`` in the order a batch executes them: ST first (every other run's audit
    transfers attacks from it); then the runs a stopped batch left half-done (their per-epoch training state or their
    checkpoint is on this machine), so that a sitting banks finished runs instead of opening new ones and stranding
    the half-done; then the costliest first (longest-processing-time order), so that no worker idles at the end."""
    from .experiment import checkpoint_dir_for, training_state_dir

    def started(job: Job) -> bool:
        checkpoint = checkpoint_dir_for(job.config, data_source(job.config.dataset, data_dir), results_dir)
        return checkpoint.is_dir() or training_state_dir(checkpoint).is_dir()

    return sorted((j for j in grid if not j.done()),
                  key=lambda j: (j.config.method != "st", not started(j), -expected_seconds(j.config)))


def run_batch(
    preset: str = "quick",
    datasets: list[str] | None = None,
    only: list[str] | None = None,
    jobs: int = 1,
    data_dir: Path | None = None,
    results_dir: Path | None = None,
    params_dir: Path | None = None,
    notebooks_dir: Path | None = None,
    device: str | None = None,
    progress: bool = True,
    after_run: AfterRun | None = None,
    seeds: list[int] | None = None,
    add_attack_steps: bool = False,
    within: float | None = None,
    plan_only: bool = False,
    audit_estimate: Callable[[C.RunConfig], float] | None = None,
) -> int:
    """Execute the grid of ``preset``; print one line per run with its wall time; 0 if every run finished.

    ``after_run``: called in the run's worker right after it finishes, while its checkpoint is on this machine:
    ``asgt batch --audit`` passes the audit (:func:`asgt_lib.judgement.audit.audit_run`), for long protocols whose
    checkpoints do not outlive the machine (``reference``); otherwise ``asgt audit`` audits the finished runs
    afterwards. A module-level function, since the workers are spawned processes.

    ``add_attack_steps``: also score every finished run of the selection under the step conventions its config asks
    for and its table lacks (:func:`missing_attack_steps`), seed by seed; hours where the weights must be trained
    again, so never implied.

    ``within``: start only the runs this machine finishes within that many seconds of wall time (with their audit
    estimated by ``audit_estimate``, one-thread seconds, where ``after_run`` audits), measured here (:mod:`.sitting`);
    ``plan_only``: print each run's cost on this machine (and, with ``within``, which runs fit) and execute
    nothing."""
    from .experiment import default_results_dir

    data_dir = Path(data_dir or default_data_dir())
    results_dir = Path(results_dir or default_results_dir())
    grid = plan(preset, datasets, only, data_dir, results_dir, params_dir, notebooks_dir, device, seeds)
    todo = execution_order(grid, data_dir, results_dir)
    unfinished = len(todo)
    if within is not None and add_attack_steps:
        raise C.ConfigError("--within plans the runs to execute, not --add-attack-steps (hours of training again "
                            "where a checkpoint is gone): run the additions in a batch of their own")
    threads = max(1, physical_cores() // max(1, jobs))  # the cores, shared out between the jobs
    if within is not None or plan_only:
        # every run file's ST of these seeds, not only those of --only: a run's audit trains its seed's ST again
        # where that checkpoint is not here, whether or not this batch runs ST
        whole = (plan(preset, datasets, None, data_dir, results_dir, params_dir, notebooks_dir, device, seeds)
                 if only else grid)
        todo = sitting_selection(todo, whole, data_dir, results_dir, device, jobs, threads,
                                 audit_estimate if after_run is not None else None, within, preset)
        if plan_only:
            return 0
    # the additions seed by seed (a finished seed is one more pair for every claim), the costliest first
    extend = sorted((j for j in grid if add_attack_steps and missing_attack_steps(j)),
                    key=lambda j: (j.config.seed, -expected_seconds(j.config)))
    print(f"asgt batch [{preset}]: {len(grid)} runs, {len(grid) - unfinished} already finished, "
          f"{len(todo)} to execute with {jobs} job(s)"
          + (f" ({unfinished - len(todo)} left for another sitting)" if len(todo) < unfinished else "")
          + (f"; {len(extend)} finished run(s) to score under the attack-step conventions they lack"
             if add_attack_steps else ""), flush=True)
    start, failures = time.perf_counter(), []
    # spawned, not forked, workers: with an after_run hook (the audit) a worker runs torch itself, and a child forked from a process
    # whose OpenMP thread pool is running (the CLI after planning, a test session) can crash or hang in it
    import multiprocessing

    with futures.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                                     initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(execute, j, notebook_parameters(j, data_dir, results_dir, params_dir), threads,
                               device, after_run): j for j in todo}
        pending.update({pool.submit(add_steps, j, data_dir, device): j for j in extend})
        for i, done in enumerate(futures.as_completed(pending), start=1):
            title, seconds, error = done.result()
            status = "FAILED: " + error if error else "ok"
            print(f"  [{i}/{len(pending)}] {title}: {seconds:.1f} s {status}", flush=True)
            if error:
                failures.append((title, error))
    print(f"asgt batch [{preset}]: wall time {time.perf_counter() - start:.1f} s, "
          f"{len(pending) - len(failures)} executed, {len(failures)} failed", flush=True)
    for title, error in failures:
        print(f"asgt batch: run {title} failed: {error}", file=sys.stderr)
    return 1 if failures else 0


def die_with_parent(parent: int) -> None:
    """A batch worker's initializer: end this worker when the batch process ``parent`` ends, however it ends.

    Without it, ``kill <batch pid>`` or ``pkill -f "asgt batch"`` ended the batch alone: its spawned worker and
    that worker's kernel went on training for hours, unseen, and slowed every later process on the machine several
    times. The worker asks Linux for SIGTERM at its parent's death (``PR_SET_PDEATHSIG``); its kernel then ends by
    itself, since ipykernel polls for its own parent (jupyter_client's ``JPY_PARENT_PID``). Training state is saved
    atomically at every epoch, so the next batch resumes from the last one. Elsewhere than Linux, nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the batch ended before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


def sitting_selection(todo: list[Job], grid: list[Job], data_dir: Path, results_dir: Path, device: str | None,
                      jobs: int, threads: int, audit_estimate: Callable[[C.RunConfig], float] | None,
                      within: float | None, preset: str) -> list[Job]:
    """Measure here, with the threads a job will have, what each run of ``todo`` costs (:func:`.sitting.run_costs`),
    print it, and return the runs that fit ``within`` seconds (all of them when ``within`` is None). ``grid``: every
    run file's runs of the batch's datasets and seeds, whatever ``--only`` keeps (where each seed's ST is found)."""
    import torch

    from ..core.compute import device_name, resolve_device
    from . import sitting

    dev = resolve_device(device)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        costs = sitting.run_costs(todo, grid, data_dir, results_dir, dev, audit_estimate)
    finally:
        torch.set_num_threads(before)
    taken = sitting.fit(costs, within, jobs) if within is not None else costs
    print(f"asgt batch [{preset}]: cost of each run on {device_name(dev)}, {threads} thread(s) a job, {jobs} job(s), "
          f"in seconds (training measured here; evaluation and audit estimated from the committed runs of the same "
          f"run file where there are some)"
          + (f"; {len(taken)} of {len(costs)} fit within {within:,.0f} s" if within is not None else ""), flush=True)
    for line in sitting.describe(costs, taken, within):
        print(line, flush=True)
    chosen = {c.title for c in taken}
    return [j for j in todo if j.title in chosen]
