"""The SGD training loop shared by every method (eq. 2 / Alg. 1-2 line 13: θ ← θ - τ∇L).

Each epoch also records the *catastrophic-overfitting signal* of Wong et al. (2020, Sec. 5.2): FGSM and PGD
accuracy at ε_train on a fixed batch of training images. When FGSM training overfits to FGSM, FGSM accuracy
stays high while PGD accuracy collapses; the audit flags that gap (``params/audit.yaml``).
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from . import compute
from .attacks import fgsm, pgd
from .config import RunConfig
from .data import augment
from .methods import MethodParams, get_method
from .models import eval_mode, predict
from .saliency import SaliencyConvention
from .storage import atomic_path


def method_params(cfg: RunConfig) -> MethodParams:
    return MethodParams(
        k=cfg.k, lam=cfg.lam, eps=cfg.eps_train, attack=cfg.train_attack, attack_steps=cfg.train_attack_steps,
        saliency=saliency_convention(cfg), fill=cfg.mask_fill,
    )


def saliency_convention(cfg: RunConfig) -> SaliencyConvention:
    """The run's saliency convention (``saliency_of``, ``saliency_space``, ``saliency_abs``, ``saliency_abs_stage``)."""
    return SaliencyConvention(of=cfg.saliency_of, space=cfg.saliency_space, absolute=cfg.saliency_abs,
                              abs_stage=cfg.saliency_abs_stage)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def overfitting_signal(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig) -> dict[str, float]:
    """Clean, FGSM and PGD (``cfg.monitor_pgd_steps`` steps) accuracy at ε_train on the monitor batch (float32,
    eval mode, a generator of its own so that training's random numbers are untouched)."""
    if len(y) == 0:
        return {}
    with eval_mode(model), torch.enable_grad():
        x_fgsm = fgsm(model, x, y, cfg.eps_train)
        x_pgd = pgd(model, x, y, cfg.eps_train, steps=cfg.monitor_pgd_steps,
                    generator=make_generator(cfg.seed + 2, x.device))
    acc = {name: (predict(model, xs, len(y)) == y.cpu()).float().mean().item()
           for name, xs in (("clean", x), ("fgsm", x_fgsm), ("pgd", x_pgd))}
    return {f"monitor_{name}_acc": value for name, value in acc.items()}


def monitor_batch(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed training images the overfitting signal is measured on (the same ones every epoch)."""
    idx = torch.randperm(len(y), generator=make_generator(seed + 3))[:n]
    return x[idx], y[idx]


def learning_rate(cfg: RunConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total_steps``.

    ``constant``: ``cfg.lr`` throughout (Table 1). ``cyclic``: the one-cycle schedule of Smith & Topin (2019) in
    the piecewise-linear form of Wong et al. (2020): from 0 up to ``cfg.lr`` over the first 2/5 of the steps, then
    down to 0 at the last. A function of the step alone, so a resumed run continues the same schedule.
    """
    if cfg.lr_schedule == "constant":
        return cfg.lr
    t, peak = (step + 1) / total_steps, 0.4
    return cfg.lr * (t / peak if t <= peak else max(0.0, (1 - t) / (1 - peak)))


def training_eps(cfg: RunConfig, step: int, total_steps: int) -> float:
    """The training budget ε of optimizer step ``step`` (0-based) of ``total_steps``.

    ``cfg.eps_train`` throughout when ``cfg.eps_warmup`` is 0 (Alg. 2 line 6 as written). Otherwise ε rises
    linearly from ε_train/n to ε_train over the first n = ``eps_warmup`` · ``total_steps`` steps, then stays: the
    ε warm-up that lets a small net learn under a strong attack (without it, PGD-AT at ε=0.3 on MNIST sits at
    chance from the first epoch). A function of the step alone, so a resumed run continues the same ramp.
    """
    ramp = cfg.eps_warmup * total_steps
    return cfg.eps_train if step + 1 >= ramp else cfg.eps_train * (step + 1) / ramp


class TrainingState:
    """What a run needs to continue after a kill from its last finished epoch and end with the same weights as an
    uninterrupted run: the weights (with batch-norm statistics), SGD's momentum buffers, the state of every random
    generator training draws from, and the history so far. One safetensors file, replaced atomically after each
    epoch; ``identity`` (the run's train hash) guards against resuming another run's state. ``machine`` (CPU or GPU
    and thread count) is recorded for every epoch, since a run resumed elsewhere repeats bit for bit nowhere:
    :attr:`machines` lists the machine of each epoch trained so far (``None`` for a state saved without it)."""

    FILE = "state.safetensors"

    def __init__(self, folder: Path, identity: str, machine: str | None = None):
        self.path, self.identity, self.machine = Path(folder) / self.FILE, identity, machine
        self.restored_epochs = 0
        self.machines: list[str | None] = []

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, generators: dict[str, torch.Generator],
             history: list[dict[str, float]]) -> None:
        tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        for i, p in enumerate(optimizer.param_groups[0]["params"]):
            buffer = optimizer.state.get(p, {}).get("momentum_buffer")
            if buffer is not None:
                tensors[f"momentum.{i}"] = buffer.detach().contiguous().clone()
        tensors.update({f"rng.{name}": g.get_state() for name, g in generators.items()})
        tensors["rng.global"] = torch.get_rng_state()
        self.machines = (self.machines + [self.machine] * len(history))[:len(history)]
        meta = {"identity": self.identity, "history": json.dumps(history), "machines": json.dumps(self.machines)}
        with atomic_path(self.path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                generators: dict[str, torch.Generator]) -> list[dict[str, float]]:
        """Load the saved state into the arguments and return the history; [] when there is no usable state
        (none saved, another run's, or unreadable: then training starts from epoch 1, with a warning)."""
        if not self.path.is_file():
            return []
        try:
            with safe_open(str(self.path), "pt") as f:  # one read: tensors and metadata
                header = f.metadata() or {}
                tensors = {key: f.get_tensor(key) for key in f.keys()}
        except (SafetensorError, OSError, ValueError, KeyError) as exc:
            warnings.warn(f"{self.path}: unreadable training state ({exc}); training from epoch 1", RuntimeWarning,
                          stacklevel=3)
            return []
        if header.get("identity") != self.identity:
            warnings.warn(f"{self.path}: state of another run ({header.get('identity')}); training from epoch 1",
                          RuntimeWarning, stacklevel=3)
            return []
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
        for i, p in enumerate(optimizer.param_groups[0]["params"]):
            if f"momentum.{i}" in tensors:
                optimizer.state[p]["momentum_buffer"] = tensors[f"momentum.{i}"].to(p.device)
        for name, g in generators.items():
            g.set_state(tensors[f"rng.{name}"])
        torch.set_rng_state(tensors["rng.global"])
        history = json.loads(header["history"])
        self.restored_epochs = len(history)
        self.machines = (json.loads(header.get("machines", "[]")) + [None] * len(history))[:len(history)]
        if self.machine is not None and any(m != self.machine for m in self.machines):
            warnings.warn(f"{self.path}: resuming on {self.machine} a run trained so far on "
                          f"{', '.join(sorted({m or 'an unrecorded machine' for m in self.machines}))}; its weights will repeat bit for bit "
                          "on neither alone (the run records both: train_info.trained_on)", RuntimeWarning, stacklevel=3)
        return history

    @classmethod
    def epochs_saved(cls, folder: Path) -> int:
        """How many epochs the state in ``folder`` holds (0 when there is none or it is unreadable); reads the
        header only, for estimates of what is left."""
        try:
            with safe_open(str(Path(folder) / cls.FILE), "pt") as f:
                return len(json.loads((f.metadata() or {}).get("history", "[]")))
        except (SafetensorError, OSError, ValueError):
            return 0

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def training_step(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor, params: MethodParams,
                  noise: torch.Generator, optimizer: torch.optim.Optimizer, precision: str,
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One SGD step of a method's loss (Algorithm 1 or 2, one iteration): the loss under the autocast of
    ``precision``, the backward pass and the update in float32. Returns the loss and its terms (undetached)."""
    with compute.autocast(precision, next(model.parameters()).device):
        loss, terms = loss_fn(model, x, y, params, noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, terms


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: RunConfig,
    progress: bool = True,
    state: TrainingState | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place on (x, y) with ``cfg.method``; returns one record per epoch.

    Shuffling, augmentation and the random mask fill draw from generators seeded with ``cfg.seed``, so a run is
    reproducible bit for bit on the CPU. The training step runs under the autocast of ``cfg.precision``
    (:func:`asgt_lib.pipeline.experiment.effective_config` has already replaced an unsupported bf16 by fp32), the
    backward pass and the optimizer in float32. With ``state``, the run is saved after every epoch and resumed
    from the last saved epoch (:class:`TrainingState`).
    """
    loss_fn, params = get_method(cfg.method), method_params(cfg)
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    generators = {"shuffle": make_generator(cfg.seed), "noise": make_generator(cfg.seed + 1, device),
                  "augment": make_generator(cfg.seed + 4)}
    shuffle, noise = generators["shuffle"], generators["noise"]
    x_monitor, y_monitor = (t.to(device) for t in monitor_batch(x, y, cfg.monitor_n, cfg.seed))
    x, y = compute.place_dataset(x, y, device)
    history = state.restore(model, optimizer, generators) if state else []
    if history and progress:
        print(f"{cfg.label}: resuming after epoch {len(history)} of {cfg.epochs} ({state.path})", flush=True)
    model.train()
    n_batches = (len(y) + cfg.batch_size - 1) // cfg.batch_size
    total_steps = cfg.epochs * n_batches
    for epoch in range(len(history), cfg.epochs):
        start, sums = time.perf_counter(), {}
        order = torch.randperm(len(y), generator=shuffle).to(x.device)
        bar = tqdm(range(n_batches), desc=f"{cfg.label} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, unit="batch")
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            xb, yb = x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
            xb = augment(xb, cfg.augment, generators["augment"])
            step = epoch * n_batches + b
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step, total_steps)
            if cfg.eps_warmup:
                params = replace(params, eps=training_eps(cfg, step, total_steps))
            loss, terms = training_step(model, loss_fn, xb, yb, params, noise, optimizer, cfg.precision)
            for key, value in {"loss": loss, **terms}.items():
                sums[key] = sums.get(key, 0.0) + value.detach().float() * len(yb)
            if progress:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        record = {"epoch": epoch + 1, **{k: float(v) / len(y) for k, v in sums.items()},
                  "seconds": time.perf_counter() - start}
        if not all(map(_finite, record.values())):
            raise FloatingPointError(f"{cfg.label}: loss is not finite in epoch {epoch + 1} ({record}); "
                                     f"lower lr or check the data")
        record.update(overfitting_signal(model, x_monitor, y_monitor, cfg))
        model.train()
        history.append(record)
        if state:
            state.save(model, optimizer, generators, history)
    model.eval()
    return history


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")
