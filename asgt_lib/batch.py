"""The grid: papermill executes ``notebooks/run.ipynb`` once per (run file, seed) of a preset.

Each executed notebook is kept (``book/runs/<preset>/<dataset>-<name>-seed<N>.ipynb``) so a reader can open the
exact notebook that produced a number. A run whose results and notebook both exist is skipped, so a batch
killed half-way finishes only what is left when started again. A failure names the run and keeps its executed
notebook (``...FAILED.ipynb``) for inspection; every other run still completes.
"""

from __future__ import annotations

import concurrent.futures as futures
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as C
from .compute import physical_cores
from .data import data_source, default_data_dir

ROOT = Path(__file__).resolve().parent.parent
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
        from .storage import is_finished

        return self.notebook.is_file() and is_finished(self.run_dir)


def plan(
    preset: str,
    datasets: list[str] | None = None,
    only: list[str] | None = None,
    data_dir: Path | None = None,
    results_dir: Path | None = None,
    params_dir: Path | None = None,
    notebooks_dir: Path | None = None,
) -> list[Job]:
    """Resolve and validate every run of the grid before anything runs (a bad file stops the batch at once)."""
    from .experiment import default_results_dir, run_dir_for

    data_dir = Path(data_dir or default_data_dir())
    results_dir = Path(results_dir or default_results_dir())
    notebooks_dir = Path(notebooks_dir or default_notebooks_dir()) / preset
    jobs = []
    for dataset in datasets or list(C.DATASETS):
        files = [f for f in C.run_files(dataset, params_dir) if not only or f.stem in only]
        if not files:
            continue
        source = data_source(dataset, data_dir)
        for seed in C.preset_seeds(preset, dataset, params_dir):
            for f in files:
                cfg = C.resolve(f, preset, seed, params_dir=params_dir)
                nb = notebooks_dir / notebook_name(cfg.dataset, cfg.label, cfg.seed)
                jobs.append(Job(f, cfg, run_dir_for(cfg, source, results_dir), nb))
    if not jobs:
        raise C.ConfigError(f"no run files match datasets={datasets} only={only} in {params_dir or 'params/'}")
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.notebook in seen and seen[job.notebook] != job.run_file:
            raise C.ConfigError(f"{job.run_file} and {seen[job.notebook]} both resolve to the run name "
                                f"'{job.config.label}'; give one of them a distinct `name:`")
        seen[job.notebook] = job.run_file
    return jobs


def notebook_parameters(job: Job, data_dir: Path, results_dir: Path, params_dir: Path | None) -> dict[str, Any]:
    """What papermill injects: the run file's keys (as ``-f`` would) plus seed, preset and folders."""
    params = C.load_yaml(job.run_file)
    params.update(seed=job.config.seed, preset=job.config.preset, data_dir=str(Path(data_dir).resolve()),
                  results_dir=str(Path(results_dir).resolve()),
                  params_dir=str(Path(params_dir or C.default_params_dir()).resolve()))
    return params


def execute(job: Job, parameters: dict[str, Any], threads: int, device: str | None) -> tuple[str, float, str | None]:
    """Run one notebook with papermill; the output appears atomically. Returns (title, seconds, error)."""
    import papermill

    start = time.perf_counter()
    job.notebook.parent.mkdir(parents=True, exist_ok=True)
    partial = job.notebook.with_name(f".{job.notebook.stem}.partial.ipynb")
    failed = job.notebook.with_name(f"{job.notebook.stem}.FAILED.ipynb")
    os.environ["ASGT_THREADS"] = str(threads)
    if device:
        os.environ["ASGT_DEVICE"] = device
    try:
        papermill.execute_notebook(str(RUN_NOTEBOOK), str(partial), parameters=parameters, kernel_name="python3",
                                   cwd=str(ROOT), progress_bar=False, log_output=False)
    except Exception as exc:  # papermill raises PapermillExecutionError and others; keep the evidence
        if partial.exists():
            os.replace(partial, failed)
        reason = str(exc).strip().splitlines()
        return job.title, time.perf_counter() - start, f"{reason[-1] if reason else exc!r} (notebook: {failed})"
    _retitle(partial, f"Run: {job.config.dataset} · {job.config.label} · seed {job.config.seed} "
                      f"({job.config.preset})")
    os.replace(partial, job.notebook)
    failed.unlink(missing_ok=True)
    return job.title, time.perf_counter() - start, None


def _retitle(notebook: Path, title: str) -> None:
    """Give an executed run notebook its own first heading (the book's sidebar shows it)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            cell.source = f"# {title}" + cell.source[cell.source.index("\n"):] if "\n" in cell.source else f"# {title}"
            break
    nbformat.write(nb, notebook)


def relative_cost(cfg: C.RunConfig) -> float:
    """A run's training cost in ST steps of its dataset (forward-backward passes per step, from
    ``bench/step_cost.py``), times its epochs and training images: only the order matters."""
    passes = {"st": 1.0, "sgt": 3.0, "at-fgsm": 2.5, "sga": 3.0, "asgt": 3.5, "asgt-code": 3.5,
              "fgsm-rs": 2.0, "asgt-rs": 4.0}.get(cfg.method, 1.0 + cfg.train_attack_steps)
    per_image = {"mnist": 1.0, "cifar10": 4.0}[cfg.dataset] * cfg.width ** 2
    return passes * per_image * cfg.epochs * (cfg.n_train_per_class or 6000)


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
) -> int:
    """Execute the grid of ``preset``; print one line per run with its wall time; 0 if every run finished."""
    from .experiment import default_results_dir

    data_dir = Path(data_dir or default_data_dir())
    results_dir = Path(results_dir or default_results_dir())
    grid = plan(preset, datasets, only, data_dir, results_dir, params_dir, notebooks_dir)
    # the costliest runs first (longest-processing-time order), so that no worker idles at the end of the batch
    todo = sorted((j for j in grid if not j.done()), key=lambda j: -relative_cost(j.config))
    print(f"asgt batch [{preset}]: {len(grid)} runs, {len(grid) - len(todo)} already finished, "
          f"{len(todo)} to execute with {jobs} job(s)", flush=True)
    threads = max(1, physical_cores() // max(1, jobs))  # the cores, shared out between the jobs
    start, failures = time.perf_counter(), []
    with futures.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending = {pool.submit(execute, j, notebook_parameters(j, data_dir, results_dir, params_dir), threads,
                               device): j for j in todo}
        for i, done in enumerate(futures.as_completed(pending), start=1):
            title, seconds, error = done.result()
            status = "FAILED: " + error if error else "ok"
            print(f"  [{i}/{len(todo)}] {title}: {seconds:.1f} s {status}", flush=True)
            if error:
                failures.append((title, error))
    print(f"asgt batch [{preset}]: wall time {time.perf_counter() - start:.1f} s, "
          f"{len(todo) - len(failures)} executed, {len(failures)} failed", flush=True)
    for title, error in failures:
        print(f"asgt batch: run {title} failed: {error}", file=sys.stderr)
    return 1 if failures else 0
