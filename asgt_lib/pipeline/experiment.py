"""The experiment runner that the CLI and the notebooks call: train (or load), evaluate, record, cache.

Layout under the results directory::

    checkpoints/<dataset>/<train-hash>/   model.safetensors, config.json, history.csv, manifest.json
    checkpoints/<dataset>/<train-hash>.training/   state.safetensors while the run trains (resume after a kill)
    <preset>/<dataset>/<name>/seed<N>-<run-hash>/
        config.json         resolved parameters (+ data source, hashes)
        robustness.csv      tidy: dataset, data_source, model, method, name, k, lam, seed, preset, attack_step, attack,
                            eps, accuracy, n (attack_step: the step convention, config.ATTACK_STEPS; a table written
                            before the column existed holds ``scaled`` rows only)
        attack_steps.json   where a convention was added to a finished run later (add_attack_steps): its provenance
        metrics.json        clean accuracy, wall times, provenance (git commit, versions, device)
        saliency.safetensors   Fig. 6 material (test images, labels, saliency)
        manifest.json       SHA-256 of every file: present and matching <=> the run is finished

A run is keyed by the hash of every parameter that changes a number, so a finished run is never recomputed
and a changed parameter is; weights are keyed by the training parameters alone, so changing only the
evaluation re-evaluates without re-training. Every directory appears atomically, with its manifest last.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch
import torchvision
from safetensors.torch import load_file, save_file

from .. import __version__
from ..core import compute
from ..core.compute import resolve_device
from ..core.config import ATTACK_STEPS, FIELD_NAMES, MASKING_METHODS, RunConfig, check_attack_step, digest, numerics
from ..core.data import SOURCE_LABELS, Split, data_source, default_data_dir, load_split
from ..core.evaluate import attack_fn, robustness_curve, saliency_examples
from ..core.models import build_model, predict
from ..core.storage import (MANIFEST, CorruptFileError, is_finished, load_checkpoint, save_checkpoint, staging_dir,
                            verify_dir, write_json)
from ..core.saliency import convention_variants, mask_overlap
from ..core.train import TrainingState, saliency_convention, train

RESULT_COLUMNS = ["dataset", "data_source", "model", "method", "name", "k", "lam", "seed", "preset",
                  "attack_step", "attack", "eps", "accuracy", "n"]
#: The step convention of every row written before the ``attack_step`` column existed.
DEFAULT_ATTACK_STEP = "scaled"
#: Where a finished run records the conventions added to it after it was committed (:func:`add_attack_steps`).
ADDED_STEPS_FILE = "attack_steps.json"


class WeightsMismatchError(RuntimeError):
    """The weights trained again for a finished run are not the ones its committed numbers came from."""


def read_robustness(path: Path) -> pd.DataFrame:
    """A run's ``robustness.csv`` with its ``attack_step`` column, ``scaled`` where the table predates it: the one
    way every reader loads the table."""
    table = pd.read_csv(path)
    if "attack_step" not in table.columns:
        table.insert(list(table.columns).index("attack") if "attack" in table.columns else len(table.columns),
                     "attack_step", DEFAULT_ATTACK_STEP)
    return table


def attack_steps_of(table: pd.DataFrame) -> list[str]:
    """The step conventions a robustness table holds, in ``config.ATTACK_STEPS`` order."""
    present = set(table["attack_step"]) if "attack_step" in table.columns else {DEFAULT_ATTACK_STEP}
    return [s for s in ATTACK_STEPS if s in present]


def default_results_dir() -> Path:
    """``$ASGT_RESULTS_DIR``, else ``./results``."""
    return Path(os.environ.get("ASGT_RESULTS_DIR") or "results")


@dataclass
class RunResult:
    """What a finished run left on disk, loaded back."""

    run_dir: Path
    config: dict[str, Any]
    robustness: pd.DataFrame
    metrics: dict[str, Any]
    cached: bool = False

    @property
    def clean_accuracy(self) -> float:
        return float(self.metrics["clean_accuracy"])

    @property
    def attack_steps(self) -> list[str]:
        """The step conventions this run was scored under."""
        return attack_steps_of(self.robustness)

    def accuracy(self, attack: str, eps: float, attack_step: str = DEFAULT_ATTACK_STEP) -> float:
        r = self.robustness
        row = r[(r.attack == attack) & ((r.eps - eps).abs() < 1e-9) & (r.attack_step == attack_step)]
        if row.empty:
            raise KeyError(f"no result for attack={attack} eps={eps} attack_step={attack_step} in {self.run_dir}")
        return float(row.accuracy.iloc[0])

    def saliency(self) -> dict[str, torch.Tensor]:
        return load_file(str(self.run_dir / "saliency.safetensors"))


def run_dir_for(cfg: RunConfig, source: str, results_dir: Path) -> Path:
    return Path(results_dir) / cfg.preset / cfg.dataset / cfg.label / f"seed{cfg.seed}-{cfg.run_hash(source)}"


def checkpoint_dir_for(cfg: RunConfig, source: str, results_dir: Path) -> Path:
    return Path(results_dir) / "checkpoints" / cfg.dataset / cfg.train_hash(source)


def run_config(run_dir: Path) -> tuple[RunConfig, dict[str, Any]]:
    """The RunConfig of a finished run directory, and its raw ``config.json`` (with data_source, hashes)."""
    raw = json.loads((Path(run_dir) / "config.json").read_text())
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in FIELD_NAMES}
    return RunConfig(**fields), raw


def results_dir_of(run_dir: Path) -> Path:
    """The results directory that holds ``run_dir`` (the inverse of :func:`run_dir_for`, checked against it)."""
    run_dir = Path(run_dir)
    cfg, raw = run_config(run_dir)
    root = run_dir.parents[3] if len(run_dir.parents) > 3 else run_dir.parent
    if run_dir_for(cfg, raw["data_source"], root).resolve() != run_dir.resolve():
        raise ValueError(f"{run_dir} is not laid out as <results>/<preset>/<dataset>/<name>/seed<N>-<hash> "
                         f"for its config.json: pass a run directory written by `asgt run` or `asgt batch`")
    return root


def load_trained_model(run_dir: Path, data_dir: Path | None = None, device: str | torch.device | None = None,
                       ) -> tuple[torch.nn.Module, RunConfig, dict[str, Any]]:
    """The trained model of a finished run (eval mode), from the checkpoint cache of its results directory.

    Goes through :func:`trained_model`, which retrains (and saves) only if the checkpoint is missing or corrupt,
    in the run's own precision; the global RNG is left as it was.
    """
    cfg, raw = run_config(run_dir)
    dev = resolve_device(str(device) if device is not None else None)
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        model, _, _ = trained_model(cfg, raw["data_source"], Path(data_dir or default_data_dir()),
                                    results_dir_of(run_dir), dev, progress=False, fallback=False)
    return model.eval(), cfg, raw


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the trained weights of a finished run are on this machine (its checkpoint cache), so that numbers
    derived from the model can be computed without training it again. Checkpoints stay out of git: on a fresh
    clone no committed run has one."""
    cfg, raw = run_config(run_dir)
    return is_finished(checkpoint_dir_for(cfg, raw["data_source"], results_dir_of(run_dir)), warn=False)


def weights_record(run_dir: Path) -> dict[str, Any]:
    """Are the weights on this machine the ones a finished run's numbers came from? Numbers derived later from the
    model (the audit) say so, since a checkpoint trained again (``asgt audit --retrain``, for a budget added after
    the run was committed without its weights) on another CPU, thread count or bf16 kernel need not repeat the
    committed training to the bit. The evidence: the checkpoint's per-epoch history (loss and monitor accuracies)
    against the run's committed ``metrics.json``; the original checkpoint matches it exactly.

    Returns ``same_history`` (every epoch's numbers equal), ``max_difference`` (the largest absolute difference of
    any of them, 0 when equal) and ``trained_again`` (its training time is not the run's: a later training)."""
    cfg, raw = run_config(run_dir)
    saved = json.loads((checkpoint_dir_for(cfg, raw["data_source"], results_dir_of(run_dir)) / "config.json")
                       .read_text())
    committed = json.loads((Path(run_dir) / "metrics.json").read_text())
    ours, theirs = saved["history"], committed.get("history", [])
    diffs = [abs(float(a[k]) - float(b[k])) for a, b in zip(ours, theirs) for k in a.keys() & b.keys()
             if k not in ("epoch", "seconds") and isinstance(a[k], (int, float)) and isinstance(b[k], (int, float))]
    same = len(ours) == len(theirs) and bool(diffs) and max(diffs) == 0
    return {"same_history": same, "max_difference": max(diffs) if diffs else None,
            "trained_again": saved["train_info"].get("train_seconds") != committed.get("train_seconds")}


def derived_dir(run_dir: Path, kind: str, key: Mapping[str, Any]) -> Path:
    """Where numbers derived from a finished run are cached: ``<run_dir>/../<kind>-<run dir name>-<hash>``.

    A sibling of the run, keyed by everything the numbers depend on: ``key`` (which includes the run's hash) and
    the numerics version of ``kind`` (``config.NUMERICS``).
    """
    run_dir = Path(run_dir)
    return run_dir.parent / f"{kind}-{run_dir.name}-{derived_key(kind, key)}"


def derived_key(kind: str, key: Mapping[str, Any]) -> str:
    """The hash part of :func:`derived_dir`'s name."""
    return digest({**key, "numerics": numerics(kind)}, 12)


def load_result(run_dir: Path, cached: bool = True) -> RunResult:
    run_dir = Path(run_dir)
    verify_dir(run_dir)
    return RunResult(
        run_dir=run_dir,
        config=json.loads((run_dir / "config.json").read_text()),
        robustness=read_robustness(run_dir / "robustness.csv"),
        metrics=json.loads((run_dir / "metrics.json").read_text()),
        cached=cached,
    )


def run(
    cfg: RunConfig,
    data_dir: Path | None = None,
    results_dir: Path | None = None,
    device: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> RunResult:
    """Train (or load the cached weights), evaluate and record one run; return the finished run from disk."""
    start = time.perf_counter()
    data_dir = Path(data_dir or default_data_dir())
    results_dir = Path(results_dir or default_results_dir())
    source = data_source(cfg.dataset, data_dir)
    dev = resolve_device(device)
    cfg = keyed_config(cfg, source, results_dir, dev)
    run_dir = run_dir_for(cfg, source, results_dir)
    if not force and is_finished(run_dir):
        return load_result(run_dir, cached=True)

    where = provenance(dev, cfg.model)  # the code and machine the run starts with (a commit during it changes nothing)
    test = load_split(cfg.dataset, False, data_dir, cfg.n_test_per_class, cfg.subset_seed)
    model, history, train_info = trained_model(cfg, source, data_dir, results_dir, dev, progress, force)

    eval_start = time.perf_counter()
    curve = score(model, test, cfg, cfg.attack_step, progress)
    clean_accuracy = (predict(model, test.x, cfg.eval_batch_size) == test.y).float().mean().item()
    maps = saliency_examples(model, test.x, test.y, cfg.n_saliency_maps)
    overlaps = convention_overlaps(model, test.x, test.y, cfg, dev)
    eval_seconds = time.perf_counter() - eval_start

    table = _tidy(curve, cfg, source)
    config = {**cfg.to_dict(), "data_source": source, "data_label": SOURCE_LABELS[source],
              "run_hash": cfg.run_hash(source), "train_hash": cfg.train_hash(source)}
    metrics = {
        "clean_accuracy": clean_accuracy,
        "n_train": train_info["n_train"],
        "n_test": len(test),
        "train_seconds": train_info["train_seconds"],
        "train_cached": train_info["cached"],
        "trained_on": train_info.get("trained_on"),  # more than one stretch: resumed on another machine
        "eval_seconds": eval_seconds,
        "attack_seconds": _attack_seconds(curve),
        "wall_seconds": time.perf_counter() - start,
        "history": history,
        "mask_overlap": overlaps,
        "provenance": where,
    }
    with staging_dir(run_dir) as stage:
        write_json(stage / "config.json", config)
        table.to_csv(stage / "robustness.csv", index=False)
        write_json(stage / "metrics.json", metrics)
        if maps:
            save_file({k: v.contiguous() for k, v in maps.items()}, str(stage / "saliency.safetensors"))
    return load_result(run_dir, cached=False)


def score(model: torch.nn.Module, test: Split, cfg: RunConfig, steps: tuple[str, ...] | list[str],
          progress: bool = False) -> pd.DataFrame:
    """The robustness sweep (Figs. 2-5) of ``cfg``'s attacks and ε grid under each step convention in ``steps``,
    one after the other (each convention's rows depend on the weights alone, not on the others)."""
    curves = []
    for step in steps:
        attacks = {name: attack_fn(name, cfg, seed=cfg.seed, step=step) for name in cfg.eval_attacks}
        curve = robustness_curve(model, test.x, test.y, attacks, cfg.eval_eps, cfg.eval_batch_size,
                                 progress=progress)
        curves.append(curve.assign(attack_step=step))
    return pd.concat(curves, ignore_index=True)


def _attack_seconds(curve: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Seconds of each attack's sweep, per step convention."""
    return {step: g.groupby("attack")["seconds"].sum().round(3).to_dict()
            for step, g in curve.groupby("attack_step", sort=False)}


def add_attack_steps(run_dir: Path, steps: tuple[str, ...] | list[str], data_dir: Path | None = None,
                     device: str | None = None, progress: bool = False) -> list[str]:
    """Score a finished run under the step conventions in ``steps`` it lacks, and add their rows to its
    ``robustness.csv``; every other file of the run stays as it is, byte for byte. Returns the conventions added.

    The model comes from the checkpoint cache, trained again where it is not on this machine (the committed weights
    are not in git), with the thread count the run was trained with. The additions are kept only when they score
    the committed weights: the checkpoint's per-epoch history must equal the committed one (:func:`weights_record`;
    it does on the CPU family and thread count the run was computed with), and FGSM, which has no step, must give
    the committed numbers again. Otherwise :class:`WeightsMismatchError` names the difference and the fix (recompute
    the run whole), and nothing is written. ``attack_steps.json`` records each addition's provenance."""
    run_dir = Path(run_dir)
    verify_dir(run_dir)
    cfg, raw = run_config(run_dir)
    table = read_robustness(run_dir / "robustness.csv")
    for step in steps:
        check_attack_step(step)
    missing = [s for s in ATTACK_STEPS if s in steps and s not in attack_steps_of(table)]
    if not missing:
        return []
    metrics = json.loads((run_dir / "metrics.json").read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(int(metrics.get("provenance", {}).get("threads") or threads))
    try:
        start = time.perf_counter()
        model, cfg, raw = load_trained_model(run_dir, data_dir, device)
        weights = weights_record(run_dir)
        fix = (f"recompute the run whole (asgt run --params <its run file> --preset {cfg.preset} --seed {cfg.seed} "
               f"--force, then its audit) on this machine, or add the conventions on the CPU family and thread "
               f"count it was computed with ({metrics.get('provenance', {}).get('device')}, "
               f"{metrics.get('provenance', {}).get('threads')} thread(s))")
        if not weights["same_history"]:
            raise WeightsMismatchError(
                f"{run_dir}: the weights trained again here differ from the committed run's (per-epoch history "
                f"differs by up to {weights['max_difference']}): {fix}")
        eval_start = time.perf_counter()
        test = load_split(cfg.dataset, False, Path(data_dir or default_data_dir()), cfg.n_test_per_class,
                          cfg.subset_seed)
        curve = score(model, test, cfg, missing, progress)
        eval_seconds = time.perf_counter() - eval_start
        where = provenance(resolve_device(device), cfg.model)  # with the thread count it computed with
    finally:
        torch.set_num_threads(threads)
    added = _tidy(curve, cfg, raw["data_source"])
    old_fgsm = table[(table.attack == "fgsm") & (table.attack_step == DEFAULT_ATTACK_STEP)]
    for step in missing:
        new_fgsm = added[(added.attack == "fgsm") & (added.attack_step == step)]
        if len(old_fgsm) and not (new_fgsm.accuracy.to_numpy() == old_fgsm.accuracy.to_numpy()).all():
            raise WeightsMismatchError(f"{run_dir}: FGSM, the same under every step convention, no longer gives the "
                                       f"committed accuracies on the weights trained again: {fix}")
    records = (json.loads((run_dir / ADDED_STEPS_FILE).read_text())
               if (run_dir / ADDED_STEPS_FILE).is_file() else {})
    for step in missing:
        records[step] = {"weights": weights, "eval_seconds": eval_seconds,
                         "wall_seconds": time.perf_counter() - start,
                         "attack_seconds": _attack_seconds(curve)[step],
                         "provenance": where}
    merged = pd.concat([table, added], ignore_index=True)
    with staging_dir(run_dir) as stage:
        for f in run_dir.iterdir():
            if f.is_file() and f.name not in (MANIFEST, "robustness.csv", ADDED_STEPS_FILE):
                shutil.copy2(f, stage / f.name)
        merged[RESULT_COLUMNS + ["n_attacked"]].to_csv(stage / "robustness.csv", index=False)
        write_json(stage / ADDED_STEPS_FILE, records)
    return missing


def convention_overlaps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig,
                        device: torch.device, n: int = 200) -> dict[str, float]:
    """For a masking run: how much of M_k's mask survives when one saliency convention of the official SGT code
    is flipped (:func:`saliency.convention_variants`), as the mean Jaccard index on ``n`` test images, measured
    on this run's own model while it is at hand. Empty for other methods."""
    if cfg.method not in MASKING_METHODS or len(y) == 0:
        return {}
    base = saliency_convention(cfg)
    xs, ys = x[:n].to(device), y[:n].to(device)
    out = {name: mask_overlap(model, xs, ys, cfg.k, base if name != "saliency_abs_stage"
                              else dataclasses.replace(base, absolute=True), variant)
           for name, variant in convention_variants(base).items()}
    out["random"] = cfg.k / (2 - cfg.k)  # what two independent random masks of that size share on average
    return out


def effective_config(cfg: RunConfig, device: torch.device) -> RunConfig:
    """``cfg`` with the precision this device really trains in (bf16 falls back to fp32 where unsupported), so
    that a run is keyed by what it computed."""
    precision = compute.effective_precision(cfg.precision, device)
    return cfg if precision == cfg.precision else dataclasses.replace(cfg, precision=precision)


def keyed_config(cfg: RunConfig, source: str, results_dir: Path, device: torch.device) -> RunConfig:
    """The config under which ``cfg``'s run is found or computed on ``device``: ``cfg`` itself when that run is
    finished, since finished results hold on any machine (a bf16 run read on a CPU without bf16); else its fp32
    fallback when a machine without bf16 finished that one (a seed of a bf16 preset computed there is not trained
    again in bf16 here); else :func:`effective_config`. ``run`` and ``batch.plan`` both ask here, so a batch finds
    what its runs wrote, on whichever machine it wrote it."""
    if is_finished(run_dir_for(cfg, source, results_dir)):
        return cfg
    fallback = dataclasses.replace(cfg, precision="fp32")
    if fallback != cfg and is_finished(run_dir_for(fallback, source, results_dir)):
        return fallback
    return effective_config(cfg, device)


def trained_model(
    cfg: RunConfig, source: str, data_dir: Path, results_dir: Path, device: torch.device,
    progress: bool = True, force: bool = False, fallback: bool = True,
) -> tuple[torch.nn.Module, list[dict], dict[str, Any]]:
    """Weights for ``cfg``: loaded from the checkpoint cache when present and intact, else trained and saved.

    ``fallback=False`` trains in ``cfg.precision`` even where it has no hardware support (slowly, but the same
    recipe): for the model of a finished run, whose numbers came from that precision."""
    if fallback:
        cfg = effective_config(cfg, device)
    torch.manual_seed(cfg.seed)
    model = compute.prepare_model(build_model(cfg.dataset, cfg.model, cfg.width), cfg.model, device)
    ckpt_dir = checkpoint_dir_for(cfg, source, results_dir)
    if not force and is_finished(ckpt_dir):
        try:
            load_checkpoint(model, ckpt_dir / "model.safetensors")
            saved = json.loads((ckpt_dir / "config.json").read_text())
            return model.eval(), saved["history"], {**saved["train_info"], "cached": True}
        except (CorruptFileError, KeyError, ValueError) as exc:
            warnings.warn(f"{exc}; retraining", RuntimeWarning, stacklevel=2)
            torch.manual_seed(cfg.seed)
            model = compute.prepare_model(build_model(cfg.dataset, cfg.model, cfg.width), cfg.model, device)
    train_split: Split = load_split(cfg.dataset, True, data_dir, cfg.n_train_per_class, cfg.subset_seed)
    machine = f"{compute.device_name(device)}, {torch.get_num_threads()} thread(s)"
    state = TrainingState(training_state_dir(ckpt_dir), cfg.train_hash(source), machine)
    if force:
        state.clear()
    t0 = time.perf_counter()
    history = train(model, train_split.x, train_split.y, cfg, progress=progress, state=state)
    earlier = history[:state.restored_epochs]  # epochs trained by a process that was killed later
    info = {"n_train": len(train_split), "resumed_after_epoch": state.restored_epochs,
            "train_seconds": time.perf_counter() - t0 + sum(h["seconds"] for h in earlier),
            "trained_on": trained_on(state.machines[:state.restored_epochs] + [machine] * (len(history)
                                                                                         - state.restored_epochs))}
    with staging_dir(ckpt_dir) as stage:
        save_checkpoint(model, stage / "model.safetensors", {"train_hash": cfg.train_hash(source)})
        write_json(stage / "config.json", {"config": cfg.to_dict(), "data_source": source, "history": history,
                                           "train_info": info})
    state.clear()
    return model.eval(), history, {**info, "cached": False}


def trained_on(machines: list[str | None]) -> list[dict[str, Any]]:
    """The machine of each epoch, in stretches: ``[{"epochs": [first, last], "machine": ...}]``, one entry for a
    run trained in one go (or resumed where it was killed), several where a resumed run changed machine."""
    out: list[dict[str, Any]] = []
    for epoch, machine in enumerate(machines, start=1):
        if out and out[-1]["machine"] == (machine or "not recorded"):
            out[-1]["epochs"][1] = epoch
        else:
            out.append({"epochs": [epoch, epoch], "machine": machine or "not recorded"})
    return out


def training_state_dir(checkpoint_dir: Path) -> Path:
    """Where a run in training keeps its per-epoch state (beside its future checkpoint directory)."""
    return Path(checkpoint_dir).with_name(Path(checkpoint_dir).name + ".training")


def _tidy(curve: pd.DataFrame, cfg: RunConfig, source: str) -> pd.DataFrame:
    masking = cfg.method in MASKING_METHODS
    ident = {"dataset": cfg.dataset, "data_source": source, "model": cfg.model, "method": cfg.method,
             "name": cfg.label, "k": cfg.k if masking else None, "lam": cfg.lam if masking else None,
             "seed": cfg.seed, "preset": cfg.preset}
    table = curve.assign(**ident)
    if "attack_step" not in table.columns:
        table = table.assign(attack_step=DEFAULT_ATTACK_STEP)
    return table[RESULT_COLUMNS + ["n_attacked"]]  # no timings: the table is bit-identical across reruns


def provenance(device: torch.device, model_name: str | None = None) -> dict[str, Any]:
    """Where and with what a number was computed."""
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "asgt_lib": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "device": compute.device_name(device),
        "cpu_bf16": compute.cpu_bf16_support(),
        "channels_last": compute.uses_channels_last(model_name, device) if model_name else None,
        "threads": torch.get_num_threads(),
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def overfitting_history(run_dir: Path, key: str, cfg: RunConfig) -> list[dict]:
    """The run's per-epoch monitor accuracies (``metrics.json`` history), one record per epoch; none for a run
    trained before the monitor existed or with ``monitor_n: 0``."""
    history = json.loads((Path(run_dir) / "metrics.json").read_text()).get("history", [])
    return [{"run": key, "dataset": cfg.dataset, "name": cfg.label, "method": cfg.method, "seed": cfg.seed,
             "epoch": h["epoch"], "clean": h["monitor_clean_acc"], "fgsm": h["monitor_fgsm_acc"],
             "pgd": h["monitor_pgd_acc"]} for h in history if "monitor_pgd_acc" in h]


def run_dirs(results_dir: Path | None = None, preset: str | None = None) -> list[Path]:
    """Finished, verified run directories under ``results_dir`` (optionally one preset), sorted.

    Staging directories (hidden, ``.partial``) are never considered, even if a kill left a manifest in one.
    """
    results_dir = Path(results_dir or default_results_dir())
    root = results_dir / preset if preset else results_dir
    if not root.is_dir():
        return []
    found = []
    for table in sorted(root.rglob("robustness.csv")):
        relative = table.parent.relative_to(root).parts
        if "checkpoints" in relative or any(part.startswith(".") for part in relative):
            continue
        if is_finished(table.parent):
            found.append(table.parent)
    return found


def collect(results_dir: Path | None = None, preset: str | None = None,
            attack_step: str | None = DEFAULT_ATTACK_STEP) -> pd.DataFrame:
    """Every finished run's robustness table under ``results_dir`` (optionally one preset), concatenated: the rows
    of one step convention (``attack_step``, by default ``scaled``, what every verdict reads), or of all (None)."""
    if attack_step is not None:
        check_attack_step(attack_step)
    tables = [read_robustness(d / "robustness.csv") for d in run_dirs(results_dir, preset)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=RESULT_COLUMNS)
    if attack_step is not None:
        table = table[table.attack_step == attack_step].reset_index(drop=True)
    return table


def finished_runs(results_dir: Path | None = None, preset: str | None = None) -> list[RunResult]:
    """Every finished run under ``results_dir`` (optionally one preset), loaded."""
    return [load_result(d) for d in run_dirs(results_dir, preset)]
