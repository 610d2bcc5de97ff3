"""The batch: determinism from scratch, SIGKILL at random points, resumption, failure reporting."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from asgt_lib.core import compute, config as C, storage
from asgt_lib.core.data import data_source
from asgt_lib.judgement.audit import audit_seconds
from asgt_lib.pipeline import batch, experiment

#: Runs of the smoke grid: one per run file (one seed).
GRID = len(C.run_files())

ROOT = Path(__file__).resolve().parent.parent


def _tables(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in results.rglob("robustness.csv")
            if not any(part.startswith(".") for part in p.relative_to(results).parts)}


def test_smoke_batch_covers_the_grid_and_keeps_every_notebook(smoke_batch):
    table = experiment.collect(smoke_batch / "results", "smoke")
    assert len(experiment.run_dirs(smoke_batch / "results", "smoke")) == GRID
    assert set(table.name) == {"st", "sgt-k0.3", "sgt-k0.5", "sgt-k0.1", "sgt-k0.2", "at-fgsm", "sga-k0.3",
                               "sga-k0.1", "asgt-k0.3", "asgt-k0.1", "asgt-code-k0.3", "asgt-code-k0.1",
                               "fgsm-rs", "pgd-at", "asgt-rs-k0.3", "asgt-rs-k0.1", "asgt-rs-lam0", "sgt-official",
                               "at-fgsm-eps0.2", "asgt-eps0.2", "at-fgsm-eps0.02", "asgt-eps0.02"}
    notebooks = sorted((smoke_batch / "notebooks" / "smoke").glob("*.ipynb"))
    assert len(notebooks) == GRID and not [n for n in notebooks if "FAILED" in n.name]
    assert "clean accuracy" in (smoke_batch / "notebooks" / "smoke" / "mnist-asgt-k0.3-seed0.ipynb").read_text()


def test_two_smoke_batches_from_scratch_are_bit_identical(smoke_batch, tmp_path, data_dir):
    code = batch.run_batch(preset="smoke", jobs=2, data_dir=data_dir, results_dir=tmp_path / "results",
                           notebooks_dir=tmp_path / "notebooks", progress=False)
    assert code == 0
    first, second = _tables(smoke_batch / "results"), _tables(tmp_path / "results")
    assert len(first) == GRID and first == second
    weights = lambda root: {p.parent.name: p.read_bytes() for p in (root / "checkpoints").rglob("*.safetensors")}
    assert weights(smoke_batch / "results") == weights(tmp_path / "results")


def test_rerun_skips_finished_runs(smoke_batch, capsys, data_dir):
    code = batch.run_batch(preset="smoke", jobs=1, data_dir=data_dir, results_dir=smoke_batch / "results",
                           notebooks_dir=smoke_batch / "notebooks", progress=False)
    assert code == 0 and f"{GRID} already finished, 0 to execute" in capsys.readouterr().out


def _params_dir(tmp_path: Path) -> Path:
    """A params folder with the real datasets.yaml and presets.yaml and an empty mnist/ for test run files."""
    params = tmp_path / "params"
    (params / "mnist").mkdir(parents=True)
    for name in ("datasets.yaml", "presets.yaml"):
        (params / name).write_text((C.default_params_dir() / name).read_text())
    return params


def _stamps(results: Path) -> dict[Path, tuple[int, int]]:
    return {d: ((d / storage.MANIFEST).stat().st_ino, (d / storage.MANIFEST).stat().st_mtime_ns)
            for d in experiment.run_dirs(results, "smoke")}


def test_sigkill_at_random_points_never_corrupts_and_never_recomputes(tmp_path, data_dir):
    results, notebooks = tmp_path / "results", tmp_path / "notebooks"
    cmd = [sys.executable, "-m", "asgt_lib", "batch", "--preset", "smoke", "--dataset", "mnist", "--quiet",
           "--results-dir", str(results), "--notebooks-dir", str(notebooks), "--data-dir", str(data_dir)]
    rng, seen = random.Random(0), {}
    for attempt in range(4):
        proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(3.0, 14.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)  # orphaned kernels notice their parent is gone
        now = _stamps(results)
        for run_dir, stamp in seen.items():
            assert now.get(run_dir) == stamp, f"attempt {attempt}: finished run {run_dir.name} was redone"
        for run_dir in now:  # whatever looks finished verifies
            storage.verify_dir(run_dir)
        seen.update(now)
    n_mnist = len(C.run_files("mnist"))
    assert len(seen) < n_mnist, "the kills came too late to interrupt anything"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    final = _stamps(results)
    assert len(final) == n_mnist and all(final[d] == s for d, s in seen.items())
    assert len(list((notebooks / "smoke").glob("*.ipynb"))) == n_mnist
    assert not list(results.rglob("*.partial")), "a staging directory of a killed run was left behind"


WORKER_OF_A_BATCH = """
import concurrent.futures, multiprocessing, os, time
from asgt_lib.pipeline import batch
with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=batch.die_with_parent, initargs=(os.getpid(),)) as pool:
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 600)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_ends_when_its_batch_alone_is_killed():
    # `kill <batch pid>` reaches the batch process only: its worker (and the worker's kernel, which polls for its
    # parent) must not go on training unseen, which it did before the workers asked for their parent's death signal
    proc = subprocess.Popen([sys.executable, "-c", WORKER_OF_A_BATCH], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    worker = int(proc.stdout.readline())
    assert _alive(worker)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _alive(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the batch's worker outlived the batch"


def test_a_failing_run_is_named_with_its_notebook_and_the_others_finish(tmp_path, data_dir, capsys):
    params = _params_dir(tmp_path)
    (params / "mnist" / "st.yaml").write_text("dataset: mnist\nmethod: st\n")
    (params / "mnist" / "sgt.yaml").write_text("dataset: mnist\nmethod: sgt\n")
    (params / "mnist" / "diverges.yaml").write_text("dataset: mnist\nmethod: st\nname: diverges\nlr: 1.0e+6\n")
    code = batch.run_batch(preset="smoke", datasets=["mnist"], jobs=1, data_dir=data_dir, params_dir=params,
                           results_dir=tmp_path / "results", notebooks_dir=tmp_path / "nb", progress=False)
    captured = capsys.readouterr()
    assert code == 1
    assert "run mnist/diverges/seed0 failed" in captured.err and "FAILED.ipynb" in captured.err
    assert "not finite" in captured.err  # the loss is NaN
    assert (tmp_path / "nb" / "smoke" / "mnist-diverges-seed0.FAILED.ipynb").is_file()
    assert len(experiment.run_dirs(tmp_path / "results", "smoke")) == 2  # the other runs finished


def test_two_run_files_with_one_name_are_refused(tmp_path, data_dir):
    params = _params_dir(tmp_path)
    (params / "mnist" / "a.yaml").write_text("dataset: mnist\nmethod: st\n")
    (params / "mnist" / "b.yaml").write_text("dataset: mnist\nmethod: st\nlr: 0.5\n")
    with pytest.raises(C.ConfigError, match="both resolve to the run name 'st'; give one of them a distinct"):
        batch.plan("smoke", ["mnist"], data_dir=data_dir, params_dir=params, results_dir=tmp_path / "r")


def test_bad_run_file_stops_the_batch_before_anything_runs(tmp_path, data_dir):
    params = _params_dir(tmp_path)
    (params / "mnist" / "ok.yaml").write_text("dataset: mnist\nmethod: st\n")
    (params / "mnist" / "typo.yaml").write_text("dataset: mnist\nmethod: sgt\nlamda: 1.0\n")
    with pytest.raises(C.ConfigError, match=r"typo.yaml: key 'lamda' is unknown"):
        batch.run_batch(preset="smoke", datasets=["mnist"], data_dir=data_dir, params_dir=params,
                        results_dir=tmp_path / "results", notebooks_dir=tmp_path / "nb", progress=False)
    assert not (tmp_path / "results").exists() and not (tmp_path / "nb").exists()


def test_snakemake_workflow_runs_the_grid_locally_and_resumes(tmp_path, data_dir):
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-j", "2", "--quiet", "--directory", str(ROOT),
           "--snakefile", str(ROOT / "Snakefile"), "--config", "preset=smoke", "datasets=mnist", "only=st,asgt",
           f"results_dir={tmp_path / 'results'}", f"notebooks_dir={tmp_path / 'nb'}", f"data_dir={data_dir}"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(p.name for p in (tmp_path / "nb" / "smoke").glob("*.ipynb")) == [
        "mnist-asgt-k0.3-seed0.ipynb", "mnist-st-seed0.ipynb"]
    assert len(experiment.run_dirs(tmp_path / "results", "smoke")) == 2
    verdicts = pd.read_csv(tmp_path / "results" / "smoke" / "audit-verdicts.csv")  # rule audit ran after the runs
    assert sorted(set(verdicts.model)) == ["asgt-k0.3", "st"] and set(verdicts.verdict) <= {"PASS", "FAIL"}
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


# --------------------------------------------------------------------------- estimates, seeds, kernels
def test_reference_plan_has_every_run_file_with_the_seeds_its_verdicts_need(data_dir, monkeypatch):
    # the estimate is the protocol's, fitted on the Intel Xeon with AMX in bf16; on a CPU without bf16 the plan
    # would key the unfinished runs as fp32 and estimate them at fp32 step times
    monkeypatch.setattr(compute, "cpu_bf16_support", lambda: "AMX")
    jobs = batch.plan("reference", data_dir=data_dir)
    assert {j.config.precision for j in jobs} == {"bf16"}
    seeds = {(j.config.dataset, j.run_file.stem): set() for j in jobs}
    for j in jobs:
        seeds[(j.config.dataset, j.run_file.stem)].add(j.config.seed)
    assert {k for k in seeds} == {(f.parent.name, f.stem) for f in C.run_files()}
    # issue 20: five seeds wherever a claim or a field answer reads a run, at least three for the rest, one for
    # CIFAR-10's ablation-only runs; issue 21: three for the claims'-budget runs
    five = {"mnist": {"st", "sgt", "sgt-k0.5", "at-fgsm", "sga", "asgt", "asgt-rs", "asgt-rs-lam0", "fgsm-rs", "pgd-at"},
            "cifar10": {"st", "at-fgsm", "asgt", "asgt-rs", "asgt-rs-lam0"}}
    one = {"cifar10": {"sgt-k0.2", "asgt-code", "sgt-official"}, "mnist": set()}
    for (dataset, name), s in seeds.items():
        expected = set(range(5)) if name in five[dataset] else {0} if name in one[dataset] else {0, 1, 2}
        assert s == expected, f"{dataset}/{name}: seeds {sorted(s)}"
    assert all(j.config.n_train_per_class is None and j.config.n_test_per_class * 10 >= 2000 for j in jobs)
    # the whole protocol stays a matter of sittings, not weeks, on 2 cores (params/presets.yaml has the arithmetic)
    hours = sum(batch.expected_seconds(j.config) + audit_seconds(j.config) for j in jobs) / 2 / 3600
    assert 15 < hours < 40, f"the reference protocol is estimated at {hours:.1f} h on 2 cores"


def test_the_claims_budget_runs_differ_from_their_standard_runs_in_eps_train_and_name_only():
    pairs = {"mnist": 0.2, "cifar10": 0.02}
    for dataset, eps in pairs.items():
        for method in ("at-fgsm", "asgt"):
            standard = C.resolve(f"params/{dataset}/{method}.yaml", "reference", 1)
            budget = C.resolve(f"params/{dataset}/{method}-eps{eps:g}.yaml", "reference", 1)
            assert budget.eps_train == eps != standard.eps_train
            differing = {k for k, v in budget.to_dict().items() if standard.to_dict()[k] != v}
            assert differing == {"eps_train", "name"}, differing
            assert C.preset_seeds("reference", dataset, run=f"{method}-eps{eps:g}") == [0, 1, 2]


def test_run_seeds_must_be_a_mapping_of_seed_lists(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "mnist").mkdir()
    for name in ("st", "pgd-at"):
        (params / "mnist" / f"{name}.yaml").write_text(f"method: {name}\n")
    (params / "presets.yaml").write_text("tiny:\n  mnist:\n    seeds: [0, 1]\n    run_seeds: {pgd-at: [3]}\n")
    assert C.preset_seeds("tiny", "mnist", params, run="pgd-at") == [3]
    assert C.preset_seeds("tiny", "mnist", params, run="st") == [0, 1]
    (params / "presets.yaml").write_text("tiny:\n  mnist:\n    run_seeds: [0]\n")
    with pytest.raises(C.ConfigError, match="run_seeds must map run-file names to seed lists"):
        C.preset_seeds("tiny", "mnist", params, run="st")
    (params / "presets.yaml").write_text("tiny:\n  mnist:\n    run_seeds: {st: []}\n")
    with pytest.raises(C.ConfigError, match="the seed list of st is empty"):
        C.preset_seeds("tiny", "mnist", params, run="st")
    (params / "presets.yaml").write_text("tiny:\n  mnist:\n    run_seeds: {pgd_at: [0]}\n")
    with pytest.raises(C.ConfigError, match="run_seeds names pgd_at, which is no run file"):
        C.preset_seeds("tiny", "mnist", params, run="st")


def test_estimates_rank_runs_by_their_cost():
    def cfg(name, dataset="mnist", **overrides):
        return C.resolve(f"params/{dataset}/{name}.yaml", "reference", overrides=overrides)

    st, asgt, pgd = (batch.expected_seconds(cfg(n)) for n in ("st", "asgt", "pgd-at"))
    assert st < asgt < pgd
    assert batch.expected_seconds(cfg("st", precision="fp32")) > st
    assert batch.expected_seconds(cfg("st")) + audit_seconds(cfg("st")) > st
    assert batch.expected_seconds(cfg("st", "cifar10")) > batch.expected_seconds(cfg("st", "cifar10", epochs=6))
    assert 0 < batch.expected_training_seconds(cfg("st")) < st
    assert batch.expected_training_seconds(cfg("pgd-at")) > batch.expected_training_seconds(cfg("asgt"))


def test_a_batch_finishes_the_runs_a_stopped_batch_left_half_done_before_opening_new_ones(tmp_path, data_dir):
    """ST first, then runs with a per-epoch training state or a checkpoint on this machine, then by cost."""
    grid = batch.plan("smoke", ["mnist"], data_dir=data_dir, results_dir=tmp_path)
    fresh = batch.execution_order(grid, data_dir, tmp_path)
    assert [j.config.method for j in fresh][:1] == ["st"]
    costs = [batch.expected_seconds(j.config) for j in fresh if j.config.method != "st"]
    assert costs == sorted(costs, reverse=True)
    cheapest, second = fresh[-1], fresh[-2]
    source = data_source("mnist", data_dir)
    checkpoint = experiment.checkpoint_dir_for(cheapest.config, source, tmp_path)
    experiment.training_state_dir(checkpoint).mkdir(parents=True)
    experiment.checkpoint_dir_for(second.config, source, tmp_path).mkdir(parents=True)
    order = batch.execution_order(grid, data_dir, tmp_path)
    first_non_st = [j.title for j in order if j.config.method != "st"][:2]
    assert order[0].config.method == "st" and set(first_non_st) == {cheapest.title, second.title}


def test_the_pending_estimate_counts_each_transfer_source_the_audits_must_train_again(tmp_path, monkeypatch):
    """Checkpoints stay out of git: on a fresh clone the audit of every new run trains its seed's ST run again
    (once per seed), and that is part of what the batch will cost."""
    from asgt_lib.judgement import audit

    class Planned:
        def __init__(self, name: str, seed: int, finished: bool):
            self.config = C.resolve(f"params/cifar10/{name}.yaml", "reference", seed)
            self.run_dir, self.finished = tmp_path / f"{name}-seed{seed}", finished

        def done(self) -> bool:
            return self.finished

    grid = [Planned("st", 0, True), Planned("st", 1, True), Planned("asgt", 0, False), Planned("asgt", 1, False),
            Planned("at-fgsm", 1, False)]
    on_machine: set[Path] = set()
    monkeypatch.setattr(batch, "plan", lambda *a, **k: grid)
    monkeypatch.setattr(audit, "unaudited_runs", lambda *a, **k: {})
    monkeypatch.setattr(audit, "has_checkpoint", lambda d: d in on_machine)
    runs = sum(batch.expected_seconds(j.config) + audit_seconds(j.config) for j in grid[2:])
    st0, st1 = (batch.expected_training_seconds(j.config) for j in grid[:2])
    assert audit.pending_work("reference", jobs=1) == (3, 0, pytest.approx(runs + st0 + st1))
    on_machine.add(grid[0].run_dir)
    assert audit.pending_work("reference", jobs=1) == (3, 0, pytest.approx(runs + st1))
    # a finished run that lacks its audit and whose checkpoint is gone is trained again too
    grid.append(Planned("sga", 0, True))
    monkeypatch.setattr(audit, "unaudited_runs", lambda *a, **k: {str(grid[-1].run_dir): 2})
    sga = audit_seconds(grid[-1].config) + batch.expected_training_seconds(grid[-1].config)
    assert audit.pending_work("reference", jobs=1) == (3, 1, pytest.approx(runs + st1 + sga))


def test_book_builds_from_the_finished_runs_rather_than_start_hours_of_work_without_compute(tmp_path, monkeypatch,
                                                                                            capsys):
    from asgt_lib.judgement import audit
    from asgt_lib.report import book

    monkeypatch.setattr(audit, "pending_work", lambda *a, **k: (30, 2, 9 * 3600.0))
    started, audited, built = [], [], []
    monkeypatch.setattr(batch, "run_batch", lambda **k: started.append(k) or 1)
    monkeypatch.setattr(audit, "audit", lambda *a, **k: audited.append(a))
    monkeypatch.setattr("asgt_lib.report.export.export", lambda *a, **k: {})
    monkeypatch.setattr(book, "sync_run_notebooks", lambda *a, **k: None)
    monkeypatch.setattr(book, "_run_quietly", lambda cmd, *a, **k: built.append(cmd) or 0)
    assert book.build("reference", tmp_path / "results", tmp_path / "nb") == 0
    err = capsys.readouterr().err
    assert "30 run(s) of the grid to compute and 2 finished run(s) to audit: about 9.0 h" in err
    assert "not computed without --compute" in err and not started and audited and built
    assert book.build("reference", tmp_path / "results", tmp_path / "nb", compute=True) == 1 and started


def test_parallel_kernels_get_sockets_of_their_own():
    from asgt_lib.pipeline.kernels import LocalKernelManager

    a, b = LocalKernelManager(kernel_name="python3"), LocalKernelManager(kernel_name="python3")
    assert a.transport == b.transport == "ipc" and a.ip != b.ip


def test_the_run_notebook_declares_every_parameter_the_batch_passes():
    """papermill warns "Passed unknown parameter" for every key that the parameters cell does not declare: the
    batch passes a run file's keys (any RunConfig field), seed, preset and the folders."""
    import ast

    import nbformat

    nb = nbformat.read(batch.RUN_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    declared = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets}
    job = batch.plan("smoke", ["mnist"], ["sgt-official"])[0]
    passed = set(batch.notebook_parameters(job, Path("data"), Path("results"), None))
    assert passed <= declared and set(C.FIELD_NAMES) <= declared, sorted((passed | set(C.FIELD_NAMES)) - declared)


def _png(draw) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _pixels(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.int16)


def test_compacting_a_plot_keeps_its_look_in_a_fraction_of_the_bytes():
    import numpy as np

    def curves(ax):
        eps = np.linspace(0, 0.4, 9)
        for i in range(5):
            ax.plot(eps, np.exp(-i * eps * 5), marker="o", label=f"method {i}")
        ax.legend()

    plot = _png(curves)
    compact = batch.compact_png(plot)
    assert len(compact) < 0.6 * len(plot)
    original, kept = _pixels(plot), _pixels(compact)
    assert kept.shape == original.shape and np.abs(kept - original).mean() <= batch.PALETTE_TOLERANCE
    assert _pixels(batch.compact_png(compact)).tolist() == kept.tolist()  # compacting twice changes nothing more


def test_compacting_keeps_an_image_with_many_colours_lossless():
    """Natural images (CIFAR-10 saliency grids) would band in 256 colours: they keep every pixel."""
    import numpy as np

    noise = np.random.default_rng(0).random((32, 48, 3))
    photo = _png(lambda ax: ax.imshow(noise, interpolation="bilinear"))
    compact = batch.compact_png(photo)
    assert len(compact) <= len(photo) and _pixels(compact).tolist() == _pixels(photo).tolist()


def test_a_finished_notebook_gets_its_title_and_compact_figures_and_keeps_its_text(tmp_path):
    import base64

    import nbformat

    plot = _png(lambda ax: ax.plot([0, 1, 2], [3, 1, 2]))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Run notebook: one dataset\nbody"),
        nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": base64.b64encode(plot).decode(), "text/plain": "<Figure>"})]),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")])])
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    batch._finish_notebook(path, "Run: mnist · st · seed 0 (smoke)")
    done = nbformat.read(path, as_version=4)
    assert done.cells[0].source == "# Run: mnist · st · seed 0 (smoke)\nbody"
    figure = done.cells[1].outputs[0].data
    assert len(base64.b64decode(figure["image/png"])) < len(plot) and figure["text/plain"] == "<Figure>"
    assert done.cells[2].outputs == nb.cells[2].outputs


@pytest.mark.parametrize("value, message", [("0", "0 is not a number of parallel jobs; write a whole number >= 1"),
                                            ("-2", "-2 is not a number of parallel jobs"),
                                            ("two", "'two' is not a whole number")])
def test_jobs_must_be_a_positive_whole_number(value, message, capsys):
    from asgt_lib import cli

    for command in ("batch", "audit", "book"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--jobs", value])
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_add_attack_steps_scores_committed_runs_in_place_and_nothing_becomes_stale(tmp_path, data_dir, capsys):
    """A batch committed before ``fixed`` existed (datasets.yaml asks for ``scaled`` alone) is neither stale nor
    re-executed once both are asked for; ``add_attack_steps`` adds the missing rows, only for the seeds named."""
    params = _params_dir(tmp_path)
    (params / "mnist" / "st.yaml").write_text("dataset: mnist\nmethod: st\n")
    datasets = params / "datasets.yaml"
    both = datasets.read_text()
    datasets.write_text(both.replace("attack_step: [scaled, fixed]", "attack_step: [scaled]"))
    kwargs = dict(preset="smoke", datasets=["mnist"], data_dir=data_dir, results_dir=tmp_path / "results",
                  params_dir=params, notebooks_dir=tmp_path / "nb", progress=False)
    assert batch.run_batch(**kwargs) == 0
    datasets.write_text(both)
    assert batch.stale_runs("smoke", data_dir, tmp_path / "results", params) == []
    [job] = batch.plan("smoke", ["mnist"], data_dir=data_dir, results_dir=tmp_path / "results", params_dir=params,
                       notebooks_dir=tmp_path / "nb")
    assert job.done() and batch.missing_attack_steps(job) == ["fixed"]
    capsys.readouterr()
    with pytest.raises(C.ConfigError, match=r"no run of preset smoke matches .*seeds=\[1\]"):  # not in the grid
        batch.run_batch(**kwargs, seeds=[1], add_attack_steps=True)
    assert batch.missing_attack_steps(job) == ["fixed"]
    assert batch.run_batch(**kwargs, seeds=[0], add_attack_steps=True) == 0
    out = capsys.readouterr().out
    assert "0 to execute" in out and "1 finished run(s) to score" in out and "(+fixed)" in out
    assert batch.missing_attack_steps(job) == []
    assert experiment.load_result(job.run_dir).attack_steps == ["scaled", "fixed"]
    assert batch.stale_runs("smoke", data_dir, tmp_path / "results", params) == []
