"""What a sitting can finish: each run's cost measured on this machine, and the runs that fit (``--plan``,
``--within``). A sitting's machine may not outlive it, so a run started and not finished is lost."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asgt_lib.core import config as C, storage
from asgt_lib.core.data import data_source
from asgt_lib.core.train import TrainingState
from asgt_lib.judgement.audit import audit_seconds
from asgt_lib.pipeline import batch, experiment, sitting
from asgt_lib.pipeline.sitting import RunCost

ROOT = Path(__file__).resolve().parent.parent


def test_a_sitting_takes_what_its_workers_finish_in_time_and_pays_each_transfer_source_once():
    costs = [RunCost("sga/seed0", 3000, 1000, 500, source=1100, source_key="st/seed0", fixed=0),
             RunCost("at-fgsm/seed0", 2400, 1000, 500, source=1100, source_key="st/seed0", fixed=0),
             RunCost("sgt/seed1", 2400, 1000, 300, source=1100, source_key="st/seed1", fixed=0),
             RunCost("st/seed2", 1100, 900, 200, fixed=0)]
    # one worker: 5,600 (sga with its source) + 3,900 (at-fgsm, source paid) = 9,500; sgt/seed1 would need 4,800 more
    assert [c.title for c in sitting.fit(costs, 11_000)] == ["sga/seed0", "at-fgsm/seed0"]
    # a run that does not fit is left and a cheaper one after it is still taken
    assert [c.title for c in sitting.fit(costs, 12_000)] == ["sga/seed0", "at-fgsm/seed0", "st/seed2"]
    assert [c.title for c in sitting.fit(costs, 4_000)] == ["st/seed2"]
    # two workers: each run goes to the least loaded one
    assert [c.title for c in sitting.fit(costs, 6_000, jobs=2)] == ["sga/seed0", "at-fgsm/seed0"]
    assert sitting.fit(costs, 1.0) == []
    assert RunCost("st/seed2", 1100, 900, 200).own == 1100 + 900 + 200 + sitting.FIXED_SECONDS


class _Planned:
    """A planned run as ``run_costs`` sees it (config, run_dir, title, done)."""

    def __init__(self, name: str, seed: int, finished: bool, results: Path, data_dir: Path, preset: str = "smoke"):
        self.config = C.resolve(f"params/mnist/{name}.yaml", preset, seed)
        self.run_dir = experiment.run_dir_for(self.config, data_source("mnist", data_dir), results)
        self.finished = finished

    @property
    def title(self) -> str:
        return f"mnist/{self.config.label}/seed{self.config.seed}"

    def done(self) -> bool:
        return self.finished


def test_each_run_costs_its_measured_steps_its_sweep_its_audit_and_its_seeds_st_once(tmp_path, data_dir):
    measured = []

    def step_of(cfg, device):
        measured.append(cfg.method)
        return {"st": 0.1, "sgt": 0.3, "asgt": 0.5}[cfg.method]

    measure = (step_of, lambda cfg, device: 1000.0)
    st0, st1 = _Planned("st", 0, True, tmp_path, data_dir), _Planned("st", 1, False, tmp_path, data_dir)
    asgt0, sgt0, asgt1 = (_Planned("asgt", 0, False, tmp_path, data_dir), _Planned("sgt", 0, False, tmp_path, data_dir),
                          _Planned("asgt", 1, False, tmp_path, data_dir))
    todo = [st1, asgt0, sgt0, asgt1]
    costs = sitting.run_costs(todo, [st0] + todo, data_dir, tmp_path, torch.device("cpu"), audit_seconds,
                              measure=measure)
    assert [c.title for c in costs] == [j.title for j in todo]
    assert sorted(measured) == ["asgt", "sgt", "st"]  # each shape measured once
    cfg = asgt0.config
    steps = batch.steps_per_epoch(cfg) * cfg.epochs
    k = sitting.CALIBRATION  # what a real run took against its plan
    assert costs[1].training == pytest.approx(k * 0.5 * steps)
    assert costs[1].evaluation == pytest.approx(k * batch.sweep_image_steps(cfg) / 1000.0)  # no committed run: bound
    assert costs[1].audit == pytest.approx(k * audit_seconds(cfg) / batch.image_step_seconds(cfg) / 1000.0)
    # seed 0's ST is finished and its checkpoint is not here: its audits train it again (0.1 s a step)
    assert costs[1].source_key == st0.title and costs[1].source == pytest.approx(k * 0.1 * steps)
    assert costs[2].source_key == st0.title
    # seed 1's ST is in this batch: its checkpoint will be here
    assert costs[3].source_key is None and costs[3].source == 0
    without_audit = sitting.run_costs(todo, [st0] + todo, data_dir, tmp_path, torch.device("cpu"), measure=measure)
    assert all(c.audit == 0 and c.source_key is None for c in without_audit)

    # a stopped batch left 1 epoch of asgt seed 0; a finished checkpoint of sgt seed 0 leaves only its evaluation
    checkpoint = experiment.checkpoint_dir_for(cfg, data_source("mnist", data_dir), tmp_path)
    model = torch.nn.Linear(2, 2)
    TrainingState(experiment.training_state_dir(checkpoint), "id").save(
        model, torch.optim.SGD(model.parameters(), lr=0.1), {}, [{"epoch": 1, "loss": 1.0}])
    finished = experiment.checkpoint_dir_for(sgt0.config, data_source("mnist", data_dir), tmp_path)
    finished.mkdir(parents=True)
    (finished / "weights.txt").write_text("w")
    storage.write_manifest(finished)
    again = sitting.run_costs(todo, [st0] + todo, data_dir, tmp_path, torch.device("cpu"), measure=measure)
    assert again[1].training == pytest.approx(k * 0.5 * batch.steps_per_epoch(cfg) * (cfg.epochs - 1))
    assert "1 of" in again[1].note
    assert again[2].training == 0 and again[2].evaluation > 0


def test_the_evaluation_is_the_share_of_attack_steps_the_committed_runs_of_its_run_file_spent(tmp_path):
    cfg = C.resolve("params/mnist/st.yaml", "paper-cpu", 0)
    assert sitting.attacked_share(cfg, tmp_path) == (1.0, "no committed run")
    folder = tmp_path / "reference" / "mnist" / cfg.label / "seed0-abc"
    folder.mkdir(parents=True)
    # 100 images: FGSM attacks all at ε=0.1 and half at 0.2; PGD (10 steps here) 80 then 10; the ε=0 row is free
    (folder / "robustness.csv").write_text(
        "attack_step,attack,eps,accuracy,n,n_attacked\n"
        "scaled,fgsm,0.0,1.0,100,0\nscaled,fgsm,0.1,0.5,100,100\nscaled,fgsm,0.2,0.1,100,50\n"
        "scaled,pgd,0.0,1.0,100,0\nscaled,pgd,0.1,0.1,100,80\nscaled,pgd,0.2,0.0,100,10\n")
    share, basis = sitting.attacked_share(cfg, tmp_path)
    assert share == pytest.approx((100 + 50 + 10 * (80 + 10)) / (2 * 100 + 2 * 100 * cfg.pgd_steps))
    assert basis == "reference: 1 run(s)"
    # the preset's own runs come first
    own = tmp_path / "paper-cpu" / "mnist" / cfg.label / "seed1-def"
    own.mkdir(parents=True)
    (own / "robustness.csv").write_text("attack_step,attack,eps,accuracy,n,n_attacked\n"
                                        "scaled,fgsm,0.1,1.0,100,100\n")
    assert sitting.attacked_share(cfg, tmp_path) == (1.0, "paper-cpu: 1 run(s)")


def test_the_audit_is_estimated_from_the_committed_audits_of_its_run_file_at_the_same_width(tmp_path, data_dir):
    cfg = C.resolve("params/mnist/sgt.yaml", "paper-cpu", 2)
    assert sitting.audit_share(cfg, tmp_path) is None
    folder = tmp_path / "paper-cpu" / "mnist" / cfg.label
    for seed, evaluation, reports in ((0, 1000.0, (60.0, 30.0, 10.0)), (1, 2000.0, (100.0,))):
        run = folder / f"seed{seed}-abc"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"eval_seconds": evaluation}))
        for i, seconds in enumerate(reports):
            report = folder / f"{('sanity', 'faithfulness')[i % 2]}-{run.name}-{i}"
            report.mkdir()
            (report / "meta.json").write_text(json.dumps({"seconds": seconds}))
    # a committed run at another width says nothing of this one's robustness, so it is not read
    other = tmp_path / "reference" / "mnist" / cfg.label / "seed0-abc"
    other.mkdir(parents=True)
    (other / "metrics.json").write_text(json.dumps({"eval_seconds": 1.0}))
    assert sitting.audit_share(cfg, tmp_path) == (pytest.approx(0.1), "paper-cpu: 2 run(s)")
    measure = (lambda c, device: 0.1, lambda c, device: 1000.0)
    cost = sitting.run_costs([_Planned("sgt", 2, False, tmp_path, data_dir, "paper-cpu")], [], data_dir, tmp_path,
                             torch.device("cpu"), audit_seconds, measure=measure)[0]
    assert cost.audit == pytest.approx(0.1 * cost.evaluation) and "from paper-cpu: 2 run(s)" in cost.audit_basis


def _asgt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asgt_lib", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_plan_prints_each_runs_cost_here_and_executes_nothing(tmp_path, data_dir):
    out = _asgt("batch", "--preset", "smoke", "--dataset", "mnist", "--only", "st", "--only", "asgt",
                "--audit", "--plan", "--within", "1", "--results-dir", str(tmp_path / "results"),
                "--notebooks-dir", str(tmp_path / "runs"), "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("  mnist/")]
    assert len(lines) == 2 and all("training" in line and "evaluation" in line and "audit" in line
                                   for line in lines)
    assert "fit within 1 s" in out.stdout and all(line.endswith("left for another sitting") for line in lines)
    assert "0 to execute" not in out.stdout  # a plan stops before the batch
    # without --plan, a batch of which nothing fits executes nothing and says what it left
    out = _asgt("batch", "--preset", "smoke", "--dataset", "mnist", "--only", "st", "--only", "asgt",
                "--within", "1", "--results-dir", str(tmp_path / "results"),
                "--notebooks-dir", str(tmp_path / "runs"), "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    assert "2 runs, 0 already finished, 0 to execute with 1 job(s) (2 left for another sitting)" in out.stdout
    assert not (tmp_path / "runs").exists() and not list((tmp_path / "results").rglob("robustness.csv"))


def test_a_plan_of_only_some_run_files_still_counts_the_st_their_audit_trains_again(tmp_path, data_dir, monkeypatch,
                                                                                    capsys):
    # `--only asgt --seed 0` after seed 0's ST was committed from another machine: the audit of the asgt run trains
    # that ST again (its checkpoint is not here), though the batch does not run ST itself
    results, notebooks = tmp_path / "results", tmp_path / "runs"
    st0 = next(j for j in batch.plan("smoke", ["mnist"], ["st"], data_dir, results, notebooks_dir=notebooks,
                                     seeds=[0]))
    st0.run_dir.mkdir(parents=True)
    (st0.run_dir / "metrics.json").write_text("{}")
    storage.write_manifest(st0.run_dir)
    st0.notebook.parent.mkdir(parents=True)
    st0.notebook.write_text("{}")
    assert st0.done()
    monkeypatch.setattr(sitting, "step_seconds", lambda cfg, device: 0.01)
    monkeypatch.setattr(sitting, "attack_step_rate", lambda cfg, device: 1000.0)
    assert batch.run_batch("smoke", ["mnist"], ["asgt"], data_dir=data_dir, results_dir=results,
                           notebooks_dir=notebooks, seeds=[0], plan_only=True, after_run=lambda *args: None,
                           audit_estimate=audit_seconds) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  mnist/asgt"))
    assert f"{st0.title} trained again for the audit" in line
    steps = batch.steps_per_epoch(st0.config) * st0.config.epochs
    assert f"{sitting.CALIBRATION * 0.01 * steps:,.0f} (once a seed)" in line


@pytest.mark.parametrize("args, message", [(["--within", "-5"], "not a time left"),
                                           (["--within", "3h"], "not a number of seconds"),
                                           (["--within", "100", "--add-attack-steps"], "batch of their own")])
def test_a_bad_time_budget_is_refused_with_the_fix(args, message, tmp_path):
    out = _asgt("batch", "--preset", "smoke", "--results-dir", str(tmp_path), *args)
    assert out.returncode != 0 and message in out.stderr
