"""Where and how a run computes: device, training precision, memory format, threads and the machine's name.

One code path for every device: the training and evaluation functions take a model and tensors and never branch
on the device themselves; they ask this module for the few things that differ.

* **Precision** (run parameter ``precision``): ``fp32``, or ``bf16`` = ``torch.autocast`` with bfloat16 for the
  *training step only*. Evaluation attacks, the audit and the saliency maps always run in float32, because
  reduced-precision input gradients can mask gradients and flatter robustness. Where bfloat16 has no hardware
  support (a CPU with neither AMX nor AVX-512 BF16, a GPU without bf16), :func:`effective_precision` falls back to
  ``fp32`` with a warning that says so, and the run is keyed by the precision it really used.
* **Memory format**: channels-last where it measured faster (``bench/step_cost.py``), per model and device type.
  It changes the order of floating-point sums only, not the algorithm.
* **CUDA**: ``cudnn.benchmark``, pinned host memory with non-blocking copies, the training set kept on the device
  when it fits (:func:`place_dataset`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import warnings
from functools import lru_cache

import torch
from torch import nn

from .config import PRECISIONS

#: Memory format per (model, device type), from ``bench/step_cost.py --channels-last on|off`` (README, "Speed").
#: CPU (Intel Xeon with AMX, quick widths), seconds per step contiguous -> channels-last: MNIST AlexNet ASGT at one
#: thread fp32 0.363 -> 0.279, bf16 0.185 -> 0.148 (two threads: bf16 0.152 -> 0.121), so channels-last. The CIFAR
#: ResNet-18's ASGT bf16 step at two threads went 0.81 -> 1.10 s, and the quick batch with it channels-last took
#: 638 s against 623 s, so it stays contiguous on the CPU. On an AMD EPYC with AVX2 only (fp32) the ResNet was
#: twice as fast channels-last at one thread (ST step 0.731 -> 0.366 s, ASGT 3.56 -> 1.83 s; 18% on the quick
#: batch's CIFAR-10 runs beside a second job), but there torch 2.14.1 aborts in its backward pass at width 0.0625
#: ("double free or corruption", a heap corruption), so no CPU gets it. On CUDA both use channels-last (for tensor
#: cores).
CHANNELS_LAST = {("alexnet", "cpu"): True, ("resnet18", "cpu"): False,
                 ("alexnet", "cuda"): True, ("resnet18", "cuda"): True}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``auto`` (default; or ``$ASGT_DEVICE``): CUDA when available, else CPU."""
    device = str(device) if device is not None else (os.environ.get("ASGT_DEVICE") or "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device '{device}' was asked for but CUDA is not available here; "
                               f"use --device cpu (or auto)")
        torch.backends.cudnn.benchmark = True
    return dev


# --------------------------------------------------------------------------- the machine
@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first value of each key of ``/proc/cpuinfo`` (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_flags() -> frozenset[str]:
    return frozenset(_cpuinfo().get("flags", "").split())


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_bf16_support() -> str:
    """``AMX``, ``AVX-512 BF16`` or ``none``: the hardware bfloat16 matrix support of this CPU."""
    flags = cpu_flags()
    if "amx_bf16" in flags or torch.cpu._is_amx_tile_supported():
        return "AMX"
    if "avx512_bf16" in flags or torch.cpu._is_avx512_bf16_supported():
        return "AVX-512 BF16"
    return "none"


def device_name(device: torch.device) -> str:
    """A human name for the device, with the CPU's bf16 support (timings are only comparable on the same one)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {os.cpu_count()} cores, bf16: {cpu_bf16_support()})"


# --------------------------------------------------------------------------- precision
def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_bf16_support() != "none"


def supported_precision(requested: str, device: torch.device) -> str:
    """``requested`` if this device can run it fast, else ``fp32``; silent (:func:`effective_precision` warns)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision '{requested}' is unknown; allowed values: {', '.join(PRECISIONS)}")
    return "fp32" if requested == "bf16" and not bf16_supported(device) else requested


def effective_precision(requested: str, device: torch.device) -> str:
    """``requested`` if this device can run it fast, else ``fp32`` with a warning naming the reason."""
    precision = supported_precision(requested, device)
    if precision != requested:
        warnings.warn(f"precision bf16 was asked for, but {device_name(device)} has no bfloat16 hardware "
                      f"support (neither AMX nor AVX-512 BF16): training in fp32 instead, and the run is keyed "
                      f"as fp32. Set precision: fp32 to silence this.", RuntimeWarning, stacklevel=2)
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The training step's autocast context: bfloat16 for ``bf16``, a no-op for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- memory format and data placement
def uses_channels_last(model_name: str, device: torch.device) -> bool:
    return CHANNELS_LAST.get((model_name, device.type), False)


def prepare_model(model: nn.Module, model_name: str, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device`` in the memory format that is fastest there."""
    model = model.to(device)
    if uses_channels_last(model_name, device):
        model = model.to(memory_format=torch.channels_last)
    return model


def place_dataset(x: torch.Tensor, y: torch.Tensor, device: torch.device, max_fraction: float = 0.25,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """On CUDA: the whole split on the device when it takes at most ``max_fraction`` of the free memory, else
    pinned host memory (for non-blocking copies). On the CPU: unchanged (no copy)."""
    if device.type != "cuda":
        return x, y
    free, _ = torch.cuda.mem_get_info(device)
    if x.element_size() * x.nelement() <= max_fraction * free:
        return x.to(device), y.to(device)
    return x.pin_memory(), y.pin_memory()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so that a timing measures the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_threads(threads: int | None = None) -> int:
    """Intra-op threads = the physical cores (or ``threads``); returns the number set."""
    n = threads or physical_cores()
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def physical_cores() -> int:
    """Cores, not hyper-threads (``os.sched_getaffinity`` divided by the threads per core where known)."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        siblings, cores = int(_cpuinfo()["siblings"]), int(_cpuinfo()["cpu cores"])
    except (KeyError, ValueError):
        return logical
    return max(1, logical * cores // siblings) if siblings > cores else logical
