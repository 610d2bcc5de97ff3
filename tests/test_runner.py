"""Training, evaluation sweep, the cached runner, storage safety and the CLI."""

import json
import os
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch

from asgt_lib import cli
from asgt_lib.core import config as C, storage
from asgt_lib.pipeline import experiment
from asgt_lib.core.evaluate import attack_fn, robustness_curve
from asgt_lib.core.models import build_model
from asgt_lib.core.train import train


def smoke(method="st", dataset="mnist", **overrides):
    return C.resolve({"dataset": dataset, "method": method}, preset="smoke", overrides=overrides)


# --------------------------------------------------------------------------- training
def test_training_is_deterministic_and_learns(mnist_sample):
    train_split, test = mnist_sample
    cfg = C.resolve({"dataset": "mnist", "method": "sgt"}, preset="smoke",
                    overrides={"epochs": 3, "width": 0.125, "batch_size": 50})
    weights = []
    for _ in range(2):
        torch.manual_seed(cfg.seed)
        model = build_model("mnist", "alexnet", cfg.width)
        history = train(model, train_split.x, train_split.y, cfg, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])
    assert history[-1]["loss"] < history[0]["loss"] and {"ce", "kl"} <= set(history[0])
    assert (model(test.x).argmax(1) == test.y).float().mean() > 0.3


def test_history_records_the_catastrophic_overfitting_signal(mnist_sample):
    """Every epoch: clean, FGSM and PGD accuracy at eps_train on the same fixed training images; PGD is the
    stronger attack, and the monitor leaves training's random numbers untouched."""
    train_split, _ = mnist_sample
    weights = {}
    for n in (0, 64):
        cfg = C.resolve({"dataset": "mnist", "method": "at-fgsm"}, preset="smoke",
                        overrides={"epochs": 2, "width": 0.125, "batch_size": 50, "monitor_n": n})
        torch.manual_seed(0)
        model = build_model("mnist", "alexnet", cfg.width)
        history = train(model, train_split.x, train_split.y, cfg, progress=False)
        weights[n] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.equal(weights[0], weights[64])
    keys = {"monitor_clean_acc", "monitor_fgsm_acc", "monitor_pgd_acc"}
    assert all(keys <= set(h) for h in history)
    last = history[-1]
    assert 0 <= last["monitor_pgd_acc"] <= 1 and 0.2 < last["monitor_clean_acc"] <= 1
    assert last["monitor_pgd_acc"] < last["monitor_clean_acc"]  # the attack has something to break


def test_diverging_training_stops_with_a_clear_error(mnist_sample):
    train_split, _ = mnist_sample
    cfg = C.resolve({"dataset": "mnist", "method": "st"}, preset="smoke", overrides={"lr": 1e6, "epochs": 2})
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match="not finite.*lower lr"):
        train(build_model("mnist", "alexnet", 0.125), train_split.x, train_split.y, cfg, progress=False)


# --------------------------------------------------------------------------- evaluation sweep
def test_incremental_sweep_is_monotone_and_never_above_the_full_sweep(trained_alexnet, mnist_sample):
    _, test = mnist_sample
    cfg = smoke(pgd_steps=5, mifgsm_steps=5)
    attacks = {name: attack_fn(name, cfg) for name in ("fgsm", "pgd", "mifgsm")}
    grid = [0.0, 0.05, 0.1, 0.2, 0.3]
    inc = robustness_curve(trained_alexnet, test.x, test.y, attacks, grid, incremental=True)
    full = robustness_curve(trained_alexnet, test.x, test.y, attacks, grid, incremental=False)
    merged = inc.merge(full, on=["attack", "eps"], suffixes=("_inc", "_full"))
    deterministic = merged[merged.attack != "pgd"]  # FGSM and MI-FGSM: the same example whatever the batch
    assert (deterministic.accuracy_inc <= deterministic.accuracy_full + 1e-9).all()
    # PGD's random start is drawn per batch, so a sample attacked in a smaller batch starts elsewhere: the union
    # bound holds up to chance (seen: one sample in 100 on an Intel AMX CPU)
    assert (merged.accuracy_inc <= merged.accuracy_full + 0.03).all()
    for _, curve in inc.groupby("attack"):
        assert curve.accuracy.is_monotonic_decreasing
    assert inc[inc.eps == 0].accuracy.nunique() == 1 and inc[inc.eps == 0].accuracy.iloc[0] > 0.8
    assert inc.n_attacked.sum() < full.n_attacked.sum()  # the point of the incremental sweep


# --------------------------------------------------------------------------- runner and caching
def test_run_writes_a_tidy_table_and_is_cached(tmp_path, data_dir):
    cfg = smoke("asgt")
    first = experiment.run(cfg, data_dir, tmp_path, progress=False)
    table = first.robustness
    assert list(table.columns[:len(experiment.RESULT_COLUMNS)]) == experiment.RESULT_COLUMNS
    assert set(table.attack) == {"fgsm", "pgd", "mifgsm"} and sorted(set(table.eps)) == list(cfg.eval_eps)
    assert (table.dataset == "mnist").all() and (table.data_source == "mnist").all()
    assert not first.cached and first.metrics["provenance"]["torch"].startswith("2.14.1")
    assert set(first.saliency()) == {"index", "x", "y", "pred", "saliency"}
    again = experiment.run(cfg, data_dir, tmp_path, progress=False)
    assert again.cached and again.run_dir == first.run_dir
    pd.testing.assert_frame_equal(again.robustness, table)


def test_changed_eval_parameter_re_evaluates_without_retraining(tmp_path, data_dir):
    base = experiment.run(smoke("st"), data_dir, tmp_path, progress=False)
    changed = experiment.run(smoke("st", eval_eps=[0.0, 0.25]), data_dir, tmp_path, progress=False)
    assert changed.run_dir != base.run_dir and sorted(set(changed.robustness.eps)) == [0.0, 0.25]
    assert changed.metrics["train_cached"] and not base.metrics["train_cached"]
    retrained = experiment.run(smoke("sgt", k=0.5), data_dir, tmp_path, progress=False)
    assert not retrained.metrics["train_cached"]


def test_a_run_killed_half_way_leaves_nothing_that_looks_finished(tmp_path, data_dir, monkeypatch):
    cfg = smoke("st")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed during evaluation")

    monkeypatch.setattr(experiment, "robustness_curve", crash)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(cfg, data_dir, tmp_path, progress=False)
    assert experiment.collect(tmp_path, "smoke").empty
    assert not list((tmp_path / "smoke").rglob("manifest.json"))
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name]  # staging cleaned up
    monkeypatch.undo()
    result = experiment.run(cfg, data_dir, tmp_path, progress=False)
    assert result.metrics["train_cached"]  # the checkpoint finished before the crash and is reused


def test_altered_results_file_is_detected_and_recomputed(tmp_path, data_dir):
    first = experiment.run(smoke("st"), data_dir, tmp_path, progress=False)
    csv = first.run_dir / "robustness.csv"
    csv.write_text(csv.read_text().replace("0.1", "0.9"))
    with pytest.raises(storage.CorruptFileError, match="checksum differs"):
        experiment.load_result(first.run_dir)
    with pytest.warns(RuntimeWarning, match="recomputed"):
        again = experiment.run(smoke("st"), data_dir, tmp_path, progress=False)
    assert not again.cached
    pd.testing.assert_frame_equal(again.robustness, first.robustness)


def test_truncated_checkpoint_is_detected_and_retrained(tmp_path, data_dir):
    cfg = smoke("st")
    first = experiment.run(cfg, data_dir, tmp_path, progress=False)
    ckpt = experiment.checkpoint_dir_for(cfg, "mnist", tmp_path) / "model.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="recomputed"):  # a new evaluation needs the weights
        again = experiment.run(smoke("st", eval_eps=[0.0, 0.2]), data_dir, tmp_path, progress=False)
    assert not again.metrics["train_cached"]
    assert torch.equal(again.saliency()["saliency"], first.saliency()["saliency"])  # retrained bit for bit


def test_weights_record_tells_the_committed_weights_from_a_retraining_that_differs(tmp_path, data_dir):
    """The audit records whether it checks the weights the run's curves came from: the original checkpoint repeats
    the committed history exactly, one trained again on the same machine does too (and says it was trained again),
    one whose history differs (another CPU's bf16 kernels) is recorded as different and warned about."""
    import shutil

    from asgt_lib.judgement import sanity

    cfg = smoke("st")
    run = experiment.run(cfg, data_dir, tmp_path, progress=False)
    assert experiment.weights_record(run.run_dir) == {"same_history": True, "max_difference": 0.0,
                                                      "trained_again": False}
    shutil.rmtree(experiment.checkpoint_dir_for(cfg, "mnist", tmp_path))
    experiment.load_trained_model(run.run_dir, data_dir, "cpu")
    again = experiment.weights_record(run.run_dir)
    assert again["trained_again"] and again["same_history"]

    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    metrics["history"][-1]["loss"] += 1e-3
    (run.run_dir / "metrics.json").write_text(json.dumps(metrics))
    differs = experiment.weights_record(run.run_dir)
    assert not differs["same_history"] and differs["max_difference"] == pytest.approx(1e-3)
    with pytest.warns(RuntimeWarning, match="trained again and their training history differs"):
        assert sanity._checked_weights(run.run_dir, "mnist/st/seed0") == differs


def test_pickled_checkpoint_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps({"weight": Payload()}))
    torch.save({"weight": torch.zeros(1)}, tmp_path / "torch.pt")
    for path in (evil, tmp_path / "torch.pt"):
        with pytest.raises(storage.CorruptFileError, match="never unpickled"):
            storage.load_checkpoint(build_model("mnist", "alexnet", 0.125), path)
    assert not (tmp_path / "pwned").exists()


def test_collect_concatenates_finished_runs(tmp_path, data_dir):
    for method in ("st", "sgt"):
        experiment.run(smoke(method), data_dir, tmp_path, progress=False)
    table = experiment.collect(tmp_path, "smoke")
    assert set(table.name) == {"st", "sgt-k0.3"} and len(experiment.finished_runs(tmp_path, "smoke")) == 2
    assert set(table.attack_step) == {"scaled"}  # what every verdict reads, by default
    both = experiment.collect(tmp_path, "smoke", attack_step=None)
    assert set(both.attack_step) == {"scaled", "fixed"} and len(both) == 2 * len(table)
    assert len(experiment.collect(tmp_path, "smoke", attack_step="fixed")) == len(table)
    with pytest.raises(ValueError, match="attack step 'tiny' is unknown; allowed values: scaled, fixed"):
        experiment.collect(tmp_path, "smoke", attack_step="tiny")


def test_a_run_scores_both_attack_step_conventions_and_fgsm_is_the_same_under_both(tmp_path, data_dir):
    result = experiment.run(smoke("st", eval_eps=[0.0, 0.1, 0.2, 0.3]), data_dir, tmp_path, progress=False)
    assert result.attack_steps == ["scaled", "fixed"]
    wide = result.robustness.pivot(index="eps", columns=["attack_step", "attack"], values="accuracy")
    assert wide["scaled"]["fgsm"].equals(wide["fixed"]["fgsm"])
    assert set(result.metrics["attack_seconds"]) == {"scaled", "fixed"}
    assert result.accuracy("pgd", 0.2, "fixed") == wide["fixed"]["pgd"][0.2]


def test_a_convention_added_to_a_finished_run_changes_nothing_else(tmp_path, data_dir):
    """A run committed under ``scaled`` alone gains its ``fixed`` rows in place: same directory (the key does not
    move), every other file byte for byte, the scaled rows' numbers unchanged, the addition's provenance recorded;
    the same when its weights must be trained again (the checkpoint is not in git)."""
    import shutil

    cfg = smoke("sgt", attack_step="scaled")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = experiment.run(cfg, data_dir, tmp_path, progress=False)
    before = {f.name: f.read_bytes() for f in run.run_dir.iterdir()}
    shutil.rmtree(experiment.checkpoint_dir_for(cfg, "mnist", tmp_path))
    torch.set_num_threads(2)  # the caller's count; the addition computes with the run's own (1)
    try:
        assert experiment.add_attack_steps(run.run_dir, ("scaled", "fixed"), data_dir) == ["fixed"]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    after = experiment.load_result(run.run_dir)  # verifies the new manifest
    assert after.attack_steps == ["scaled", "fixed"]
    assert experiment.run_dir_for(smoke("sgt"), "mnist", tmp_path) == run.run_dir
    for name in before.keys() - {"robustness.csv", "manifest.json"}:
        assert (run.run_dir / name).read_bytes() == before[name], name
    scaled = after.robustness[after.robustness.attack_step == "scaled"].reset_index(drop=True)
    pd.testing.assert_frame_equal(scaled, run.robustness.reset_index(drop=True))
    record = json.loads((run.run_dir / experiment.ADDED_STEPS_FILE).read_text())["fixed"]
    assert record["weights"]["same_history"] and record["weights"]["trained_again"]
    assert record["provenance"]["threads"] == run.metrics["provenance"]["threads"] == 1  # computed as the run was
    assert experiment.add_attack_steps(run.run_dir, ("fixed",), data_dir) == []  # nothing left to add


def test_a_convention_is_not_added_to_weights_that_differ_from_the_committed_run(tmp_path, data_dir):
    cfg = smoke("st", attack_step="scaled")
    run = experiment.run(cfg, data_dir, tmp_path, progress=False)
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    metrics["history"][-1]["loss"] += 1e-3  # as if the committed run came from another CPU's bf16 kernels
    (run.run_dir / "metrics.json").write_text(json.dumps(metrics))
    storage.write_manifest(run.run_dir)
    table = (run.run_dir / "robustness.csv").read_bytes()
    with pytest.raises(experiment.WeightsMismatchError, match="differ from the committed run's.*recompute the run whole"):
        experiment.add_attack_steps(run.run_dir, ("fixed",), data_dir)
    assert (run.run_dir / "robustness.csv").read_bytes() == table
    assert not (run.run_dir / experiment.ADDED_STEPS_FILE).exists()
    with pytest.raises(ValueError, match="attack step 'tiny' is unknown"):
        experiment.add_attack_steps(run.run_dir, ("tiny",), data_dir)


# --------------------------------------------------------------------------- command line
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
@pytest.mark.parametrize("method", C.METHODS)
def test_cli_smoke_run_for_every_dataset_and_method(tmp_path, capsys, dataset, method):
    code = cli.main(["run", "--dataset", dataset, "--method", method, "--preset", "smoke",
                     "--results-dir", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "clean accuracy" in out and "pgd" in out
    table = experiment.collect(tmp_path, "smoke")
    assert set(table.method) == {method} and set(table.dataset) == {dataset}


@pytest.mark.parametrize("args, message", [
    (["--method", "trades"], "method 'trades' is unknown"),
    (["--method", "st", "--set", "width=1e9"], r"^asgt: error: --set: width=1e\+09 is larger than 8"),
    (["--method", "st", "--set", "eval_eps=[0.1,.nan]"], "--set: key 'eval_eps' .*not a finite number"),
    (["--method", "sgt", "--set", "k=2"], r"--set: k=2.0 is outside \(0, 1\)"),
    (["--method", "st", "--set", "precision=fp16"], "--set: precision 'fp16' is unknown"),
    (["--method", "sgt", "--k", "1.5"], r"k=1.5 is outside \(0, 1\)"),
    (["--method", "sgt", "--lam", "-1"], "lam=-1.0 is negative"),
    (["--method", "asgt", "--set", "eps_train=-0.1"], "eps_train=-0.1 is negative"),
    (["--method", "asgt", "--set", "eval_eps=[0, -0.1]"], "negative ε"),
    (["--method", "asgt", "--preset", "huge"], "preset 'huge' is unknown"),
    (["--method", "asgt", "--set", "epochz=3"], "key 'epochz' is unknown"),
    (["--method", "asgt", "--data-dir", "/nonexistent"], "mnist data not found. Looked in: /nonexistent"),
])
def test_cli_bad_input_exits_2_with_one_message_and_writes_nothing(tmp_path, capsys, args, message):
    code = cli.main(["run", "--dataset", "mnist", "--preset", "smoke", "--results-dir", str(tmp_path / "r"),
                     "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("asgt: error: ") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err)
    assert not (tmp_path / "r").exists()


def test_cli_params_prints_the_resolved_configuration(capsys):
    assert cli.main(["params", "--params", "params/cifar10/sgt-k0.2.yaml", "--preset", "paper"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["k"] == 0.2 and shown["epochs"] == 100 and shown["lr"] == 1e-4


def test_module_entry_point_runs(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "asgt_lib", "params", "--dataset", "mnist", "--method", "st"],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0 and json.loads(out.stdout)["method"] == "st"


# --------------------------------------------------------------------------- resuming after a kill
@pytest.mark.parametrize("dataset, method", [("cifar10", "asgt"), ("mnist", "sgt")])
def test_a_run_killed_mid_training_resumes_to_the_same_weights(tmp_path, data_dir, monkeypatch, dataset, method):
    """Killed after epoch 2 of 3 (several batches per epoch, batch norm on CIFAR-10, the cyclic schedule, an ε
    warm-up that ends in epoch 3, and augmentation drawing random numbers), the run resumes from epoch 2 and ends
    bit for bit where an uninterrupted run ends."""
    from asgt_lib.core import train as T
    from safetensors.torch import load_file

    warmup = {"eps_warmup": 0.8} if method == "asgt" else {}
    cfg = smoke(method, dataset, epochs=3, batch_size=16, lr_schedule="cyclic", augment="crop-flip", lr=0.05,
                **warmup)
    whole = experiment.run(cfg, data_dir, tmp_path / "whole", progress=False)
    save, saved = T.TrainingState.save, []

    def killed_after_epoch_2(self, *args, **kwargs):
        save(self, *args, **kwargs)
        saved.append(self.path)
        if len(saved) == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(T.TrainingState, "save", killed_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(cfg, data_dir, tmp_path / "killed", progress=False)
    assert saved[-1].is_file() and not experiment.run_dirs(tmp_path / "killed")
    monkeypatch.undo()
    resumed = experiment.run(cfg, data_dir, tmp_path / "killed", progress=False)
    def numbers(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert numbers(resumed.metrics["history"]) == numbers(whole.metrics["history"])
    assert not saved[-1].exists() and not saved[-1].parent.exists()        # the state is gone once finished
    ckpt = [experiment.checkpoint_dir_for(cfg, whole.config["data_source"], root) / "model.safetensors"
            for root in (tmp_path / "whole", tmp_path / "killed")]
    a, b = (load_file(str(p)) for p in ckpt)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    pd.testing.assert_frame_equal(resumed.robustness, whole.robustness)
    train_info = json.loads((ckpt[1].parent / "config.json").read_text())["train_info"]
    assert train_info["resumed_after_epoch"] == 2
    assert [t["epochs"] for t in train_info["trained_on"]] == [[1, cfg.epochs]]  # killed and resumed on one machine
    assert resumed.metrics["trained_on"] == train_info["trained_on"]


def test_a_run_resumed_on_another_machine_says_so(tmp_path):
    """The training state records the machine of every epoch; resuming elsewhere warns, and the run's
    ``trained_on`` lists both stretches, since its weights then repeat bit for bit on neither machine alone."""
    from asgt_lib.core.train import TrainingState
    from asgt_lib.core.models import build_model

    model = build_model("mnist", "alexnet", 0.25)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    generators = {"shuffle": torch.Generator().manual_seed(0)}
    first = TrainingState(tmp_path, "run", "CPU A, 1 thread(s)")
    for epochs in (1, 2):
        first.save(model, optimizer, generators, [{"loss": 1.0, "seconds": 1.0}] * epochs)
    same = TrainingState(tmp_path, "run", "CPU A, 1 thread(s)")
    assert len(same.restore(model, optimizer, generators)) == 2 and same.machines == ["CPU A, 1 thread(s)"] * 2
    other = TrainingState(tmp_path, "run", "CPU B, 2 thread(s)")
    with pytest.warns(RuntimeWarning, match="resuming on CPU B, 2 thread.s. a run trained so far on CPU A"):
        history = other.restore(model, optimizer, generators)
    other.save(model, optimizer, generators, history + [{"loss": 0.5, "seconds": 1.0}])
    assert experiment.trained_on(other.machines) == [{"epochs": [1, 2], "machine": "CPU A, 1 thread(s)"},
                                                     {"epochs": [3, 3], "machine": "CPU B, 2 thread(s)"}]
    assert experiment.trained_on([None, None]) == [{"epochs": [1, 2], "machine": "not recorded"}]


def test_eps_warmup_ramps_the_training_budget_linearly_then_holds_it():
    from asgt_lib.core.train import training_eps

    cfg = smoke("pgd-at", train_attack="pgd", eps_warmup=0.25)
    eps = [training_eps(cfg, step, 100) for step in range(100)]
    assert eps[0] == pytest.approx(0.3 / 25) and eps[24] == pytest.approx(0.3) and set(eps[24:]) == {0.3}
    assert all(a < b for a, b in zip(eps[:25], eps[1:25]))
    assert {training_eps(smoke("at-fgsm"), step, 100) for step in range(100)} == {0.3}


def test_the_training_loop_attacks_with_the_warmed_up_budget(mnist_sample, monkeypatch):
    """The loss sees ε_train/n, 2ε_train/n, ... in the first n = eps_warmup x steps, then ε_train."""
    from asgt_lib.core import train as T

    x, y = mnist_sample[0].x, mnist_sample[0].y
    seen, method = [], T.get_method("at-fgsm")

    def recording(model, xb, yb, p, g=None):
        seen.append(p.eps)
        return method(model, xb, yb, p, g)

    monkeypatch.setattr(T, "get_method", lambda name: recording)
    cfg = smoke("at-fgsm", epochs=2, batch_size=len(y) // 4, eps_warmup=0.5, monitor_n=0)
    T.train(build_model("mnist", "alexnet", cfg.width), x[: 4 * cfg.batch_size], y[: 4 * cfg.batch_size], cfg,
            progress=False)
    assert seen == pytest.approx([0.3 / 4, 0.3 / 2, 0.3 * 3 / 4, 0.3, 0.3, 0.3, 0.3, 0.3])


def test_training_state_of_another_run_is_not_resumed(tmp_path, data_dir):
    from asgt_lib.core.train import TrainingState

    cfg = smoke("st", epochs=2)
    ckpt = experiment.checkpoint_dir_for(cfg, "mnist", tmp_path)
    state_dir = experiment.training_state_dir(ckpt)
    model = build_model("mnist", "alexnet", cfg.width)
    TrainingState(state_dir, "some-other-run").save(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                                    {}, [{"epoch": 1}])
    with pytest.warns(RuntimeWarning, match="state of another run"):
        result = experiment.run(cfg, data_dir, tmp_path, progress=False)
    assert [h["epoch"] for h in result.metrics["history"]] == [1, 2]


def test_cyclic_learning_rate_rises_to_lr_then_falls_to_zero():
    from asgt_lib.core.train import learning_rate

    cfg = smoke("st", lr=0.1, lr_schedule="cyclic")
    rates = [learning_rate(cfg, step, 100) for step in range(100)]
    assert max(rates) == pytest.approx(0.1) and rates.index(max(rates)) == 39
    assert all(a < b for a, b in zip(rates[:40], rates[1:40])) and all(a > b for a, b in zip(rates[39:], rates[40:]))
    assert rates[-1] == 0.0 and rates[0] == pytest.approx(0.1 / 40)
    assert {learning_rate(smoke("st", lr=0.1), step, 100) for step in range(100)} == {0.1}
