"""Run parameters: the paper's values, presets that change only the size of a run, validation and hashing.

A run is fully described by one :class:`RunConfig`. It is resolved in layers, each overriding the one before:

1. ``params/datasets.yaml``: the paper's Table 1 values and evaluation grid for the dataset;
2. a run file such as ``params/mnist/asgt.yaml`` (method, k, λ, ...), or the same keys given directly;
3. the preset (``params/presets.yaml``: ``smoke``, ``quick``, ``paper``), which overrides only the keys in PRESET_KEYS;
4. explicit overrides (``asgt run --set key=value`` or notebook parameters).

Every value is validated and cast here, because papermill reads YAML 1.1 (``1e-3`` arrives as a string).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

DATASETS = ("mnist", "cifar10")
METHODS = ("st", "sgt", "at-fgsm", "sga", "asgt", "asgt-code", "fgsm-rs", "pgd-at", "asgt-rs")
MODELS = ("alexnet", "resnet18")
ATTACKS = ("fgsm", "pgd", "mifgsm")
#: Step-size conventions of the evaluation's iterative attacks (:func:`asgt_lib.core.evaluate.attack_fn`):
#: ``scaled``, the step sized to the budget (PGD α = pgd_step_factor·ε/steps, MI-FGSM α = ε/steps), and ``fixed``,
#: torchattacks' defaults (α = 2/255, 10 steps whatever ε), which the paper's probable code left in place (issue 35).
ATTACK_STEPS = ("scaled", "fixed")
TRAIN_ATTACKS = ("fgsm", "fgsm-rs", "pgd")
MASK_FILLS = ("uniform", "mean")
SALIENCY_OF = ("logit", "log_softmax")
SALIENCY_SPACES = ("pixels", "normalized")
ABS_STAGES = ("before_mean", "after_mean")
PRESETS = ("smoke", "quick", "reference", "reference-fp32", "paper-cpu", "paper")
PRECISIONS = ("fp32", "bf16")
LR_SCHEDULES = ("constant", "cyclic")
AUGMENTATIONS = ("none", "crop-flip")

#: Methods whose loss uses the saliency mask M_k (and therefore k and λ).
MASKING_METHODS = ("sgt", "sga", "asgt", "asgt-code", "asgt-rs")
#: Methods that craft adversarial examples during training (and therefore use eps_train).
ADVERSARIAL_METHODS = ("at-fgsm", "sga", "asgt", "asgt-code", "fgsm-rs", "pgd-at", "asgt-rs")
#: Methods defined by their training attack: ``train_attack`` must be this one (their run files say so).
METHOD_ATTACKS = {"at-fgsm": "fgsm", "fgsm-rs": "fgsm-rs", "pgd-at": "pgd", "asgt-rs": "fgsm-rs"}

#: Keys that a preset may override: the size of a run (and lr, since a fast preset takes a few hundredths of
#: the paper's SGD steps), never its algorithm (method, k, λ, ε_train, attacks).
PRESET_KEYS = (
    "epochs", "width", "n_train_per_class", "n_test_per_class", "eval_eps", "eval_batch_size",
    "pgd_steps", "mifgsm_steps", "n_saliency_maps", "lr", "precision", "monitor_n", "lr_schedule", "augment",
)
#: Keys that do not change the trained weights (so a change re-evaluates without re-training).
EVAL_ONLY_KEYS = (
    "eval_attacks", "eval_eps", "eval_batch_size", "pgd_steps", "pgd_step_factor", "mifgsm_steps",
    "mifgsm_decay", "n_test_per_class", "n_saliency_maps",
)
#: Keys that name or file a run but do not change any number it produces.
LABEL_KEYS = ("name", "preset")
#: Keys that choose *which* numbers a run's evaluation computes, never their values: every attack-step convention's
#: rows are computed from the same weights, independently of the others. Left out of every key, so a run scored under
#: one convention is the same run once another is added (``experiment.add_attack_steps``), not a stale one.
EXTENT_KEYS = ("attack_step",)

#: Numerics versions, one per part of the computation. A result is keyed by its parameters, its data source and
#: the versions of the parts that produced it, never by the library version, so that hours of committed compute
#: survive a release. Bump a part's number in the same commit that changes the numbers it produces (a bug fix, a
#: changed internal default), and only then; ``tests/test_staleness.py`` fails when a committed result no longer
#: carries the key that the current code and parameters give it.
NUMERICS = {
    "train": 1,          # data loading, models, methods, attacks used in training, the training loop
    "evaluate": 1,       # the robustness sweep, clean accuracy, saliency maps, mask overlaps
    "sanity": 1,         # the audit's attacks and checks (sanity.py)
    "faithfulness": 1,   # the audit's saliency metrics (faithfulness.py)
}
#: Parameters added after results were first keyed, left out of the key while they have the value that computes
#: what the code computed before they existed, so that adding a parameter never invalidates a result.
NEUTRAL_VALUES = {"lr_schedule": "constant", "augment": "none", "eps_warmup": 0.0}


class ConfigError(ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range. The message names it and the fix.

    ``keys``: the parameters the error is about, so that :func:`resolve` can name the layer that set them.
    """

    def __init__(self, message: str, keys: tuple[str, ...] = ()):
        super().__init__(message)
        self.keys = keys


#: Upper bounds on the sizes that allocate memory, checked before anything is built (a typo such as
#: ``width=1e9`` would otherwise end in an allocator traceback).
SIZE_LIMITS = {"width": 8.0, "batch_size": 16384, "eval_batch_size": 65536, "n_saliency_maps": 1000,
               "monitor_n": 10000}


#: The checkout this package runs from: its ``params/``, ``notebooks/``, ``book/`` and ``results/``.
ROOT = Path(__file__).resolve().parents[2]


def default_params_dir() -> Path:
    """``$ASGT_PARAMS_DIR``, else the ``params/`` folder of this checkout."""
    env = os.environ.get("ASGT_PARAMS_DIR")
    return Path(env) if env else ROOT / "params"


@dataclass(frozen=True)
class RunConfig:
    """Every parameter of one training-and-evaluation run (one dataset, method, seed)."""

    dataset: str
    method: str
    name: str = ""
    seed: int = 0
    preset: str = "paper"
    # model
    model: str = "alexnet"
    width: float = 1.0
    # optimisation (Table 1)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # constant | cyclic (per-step, 0 -> lr -> 0; train.learning_rate)
    augment: str = "none"          # none | crop-flip (random 4-pixel-padded crop and horizontal flip; data.augment)
    precision: str = "fp32"   # training step: fp32, or bf16 autocast (evaluation is always fp32; see compute)
    # saliency-guided terms (Alg. 1/2)
    k: float = 0.3
    lam: float = 1.0
    saliency_abs: bool = False
    saliency_of: str = "logit"              # logit | log_softmax (the official SGT MNIST code): see saliency.py
    saliency_space: str = "pixels"          # pixels | normalized (the official SGT CIFAR-10 code)
    saliency_abs_stage: str = "before_mean"  # before_mean | after_mean (the official SGT --abs)
    mask_fill: str = "uniform"
    # adversarial terms (Alg. 2 line 6)
    eps_train: float = 0.3
    train_attack: str = "fgsm"
    train_attack_steps: int = 10
    eps_warmup: float = 0.0   # fraction of the steps over which the training ε rises from 0 (train.training_eps)
    # catastrophic-overfitting signal (Wong et al. 2020): FGSM and PGD accuracy at eps_train on monitor_n fixed
    # training images (one batch) after every epoch (0: off)
    monitor_n: int = 128
    monitor_pgd_steps: int = 5
    # data
    n_train_per_class: int | None = None
    n_test_per_class: int | None = None
    subset_seed: int = 0
    # evaluation (Fig. 2-5)
    eval_attacks: tuple[str, ...] = ATTACKS
    eval_eps: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)
    eval_batch_size: int = 500
    pgd_steps: int = 10
    pgd_step_factor: float = 2.5
    mifgsm_steps: int = 10
    mifgsm_decay: float = 1.0
    attack_step: tuple[str, ...] = ("scaled",)  # the step conventions the sweep scores (ATTACK_STEPS; one or both)
    n_saliency_maps: int = 8

    def __post_init__(self) -> None:
        _validate(self)

    # ----------------------------------------------------------------- identity
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["eval_attacks"] = list(self.eval_attacks)
        d["eval_eps"] = list(self.eval_eps)
        d["attack_step"] = list(self.attack_step)
        return d

    def _digest(self, drop: tuple[str, ...], extra: Mapping[str, Any]) -> str:
        d = {k: v for k, v in self.to_dict().items()
             if k not in drop and not (k in NEUTRAL_VALUES and v == NEUTRAL_VALUES[k])}
        d.update(extra)
        return digest(d, 16)

    def run_hash(self, data_source: str) -> str:
        """Hash of everything that changes a result number (labels excluded, data source and the numerics
        versions of training and evaluation included)."""
        return self._digest(LABEL_KEYS + EXTENT_KEYS,
                            {"data_source": data_source, "numerics": numerics("train", "evaluate")})

    def train_hash(self, data_source: str) -> str:
        """Hash of everything that changes the trained weights."""
        return self._digest(LABEL_KEYS + EXTENT_KEYS + EVAL_ONLY_KEYS, {"data_source": data_source, "numerics": numerics("train")})

    @property
    def label(self) -> str:
        return self.name or default_name(self.method, self.k)


def numerics(*parts: str) -> dict[str, int]:
    """The numerics versions of ``parts`` (keys of NUMERICS), for a cache key."""
    return {part: NUMERICS[part] for part in parts}


def digest(obj: Any, length: int = 16) -> str:
    """A short SHA-256 of ``obj`` as canonical JSON: the one way every cache key is computed."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def default_name(method: str, k: float) -> str:
    return f"{method}-k{k:g}" if method in MASKING_METHODS else method


# --------------------------------------------------------------------------- validation and casting
_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
FIELD_NAMES = tuple(_FIELDS)
_TYPES = typing.get_type_hints(RunConfig)


def _cast(key: str, value: Any, source: str, cls: type = RunConfig) -> Any:
    """Cast one raw value (YAML, CLI string or Python) to the type of field ``key`` of the dataclass ``cls``
    (RunConfig by default), or raise ConfigError."""
    tp = _TYPES[key] if cls is RunConfig else typing.get_type_hints(cls)[key]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    where = f"{source}: " if source else ""
    try:
        if value is None:
            if type(None) in args:
                return None
            raise TypeError("null is not allowed")
        if origin in (typing.Union, types.UnionType):
            tp = next(a for a in args if a is not type(None))
        if origin is tuple:
            items = value
            if isinstance(items, str):
                items = yaml.safe_load(items) if items.strip().startswith("[") else items.split(",")
            if not isinstance(items, (list, tuple)):
                items = [items]
            return tuple(_scalar(args[0], v) for v in items)
        return _scalar(tp, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where}key '{key}' has value {value!r}, which is not a valid {_type_name(tp)} ({exc}). "
            f"Write it as a {_type_name(tp)}, e.g. {key}: {_example(key, cls)}"
        ) from None


def _scalar(tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise TypeError("expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise TypeError("expected an integer, got a boolean")
        f = float(value)
        if not f.is_integer():
            raise ValueError("expected a whole number")
        return int(f)
    if tp is float:
        if isinstance(value, bool):
            raise TypeError("expected a number, got a boolean")
        if isinstance(value, str) and "/" in value:  # YAML 1.1 leaves 8/255 as a string
            num, den = value.split("/", 1)
            f = float(num) / float(den)
        else:
            f = float(value)
        if not math.isfinite(f):
            raise ValueError("not a finite number")
        return f
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise TypeError("expected a string")
        return str(value)
    raise TypeError(f"unsupported type {tp}")


def _type_name(tp: Any) -> str:
    return {int: "integer", float: "number", bool: "boolean", str: "string"}.get(tp, "list")


def _example(key: str, cls: type = RunConfig) -> str:
    default = {f.name: f for f in dataclasses.fields(cls)}[key].default
    return json.dumps(list(default) if isinstance(default, tuple) else default)


def _check(cond: bool, message: str, *keys: str) -> None:
    if not cond:
        raise ConfigError(message, keys)


def check_attack_step(step: str) -> str:
    """``step`` if it is an attack-step convention (ATTACK_STEPS), else a ValueError naming the allowed ones."""
    if step not in ATTACK_STEPS:
        raise ValueError(f"attack step '{step}' is unknown; allowed values: {', '.join(ATTACK_STEPS)}")
    return step


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, f"{key} '{value}' is unknown; allowed values: {', '.join(allowed)}",
           key.split()[0])


def _validate(c: RunConfig) -> None:
    _one_of("dataset", c.dataset, DATASETS)
    _one_of("method", c.method, METHODS)
    _one_of("model", c.model, MODELS)
    _one_of("preset", c.preset, PRESETS)
    _one_of("mask_fill", c.mask_fill, MASK_FILLS)
    _one_of("precision", c.precision, PRECISIONS)
    _one_of("lr_schedule", c.lr_schedule, LR_SCHEDULES)
    _one_of("augment", c.augment, AUGMENTATIONS)
    _one_of("saliency_of", c.saliency_of, SALIENCY_OF)
    _one_of("saliency_space", c.saliency_space, SALIENCY_SPACES)
    _one_of("saliency_abs_stage", c.saliency_abs_stage, ABS_STAGES)
    _one_of("train_attack", c.train_attack, TRAIN_ATTACKS)
    if c.method in METHOD_ATTACKS:
        _check(c.train_attack == METHOD_ATTACKS[c.method],
               f"method {c.method} trains against {METHOD_ATTACKS[c.method]}, but train_attack is "
               f"'{c.train_attack}': set train_attack: {METHOD_ATTACKS[c.method]} (or choose another method)",
               "train_attack", "method")
    for a in c.eval_attacks:
        _one_of("eval_attacks entry", a, ATTACKS)
    for a in c.attack_step:
        _one_of("attack_step entry", a, ATTACK_STEPS)
    _check(len(c.attack_step) > 0 and len(set(c.attack_step)) == len(c.attack_step),
           f"attack_step={list(c.attack_step)} must name each convention once, at least one of: "
           f"{', '.join(ATTACK_STEPS)}", "attack_step")
    _check(0.0 < c.k < 1.0, f"k={c.k} is outside (0, 1): k is the fraction of input features masked, e.g. 0.3", "k")
    _check(c.lam >= 0.0, f"lam={c.lam} is negative: λ weighs the KL term and must be >= 0 (the paper uses 1)", "lam")
    _check(c.eps_train >= 0.0, f"eps_train={c.eps_train} is negative: an L∞ budget must be >= 0", "eps_train")
    _check(0.0 <= c.eps_warmup < 1.0, f"eps_warmup={c.eps_warmup} is outside [0, 1): it is the fraction of the "
           f"training steps over which ε_train rises from 0, e.g. 0.25 (0: the full ε from the first step)",
           "eps_warmup")
    _check(c.eps_warmup == 0.0 or c.method in ADVERSARIAL_METHODS,
           f"eps_warmup={c.eps_warmup} is set, but method {c.method} crafts no adversarial examples: remove it",
           "eps_warmup", "method")
    _check(all(e >= 0.0 for e in c.eval_eps), f"eval_eps={list(c.eval_eps)} has a negative ε: budgets must be >= 0",
           "eval_eps")
    _check(list(c.eval_eps) == sorted(set(c.eval_eps)), f"eval_eps={list(c.eval_eps)} must be strictly increasing",
           "eval_eps")
    _check(len(c.eval_eps) > 0 and len(c.eval_attacks) > 0, "eval_eps and eval_attacks must not be empty",
           "eval_eps", "eval_attacks")
    _check(c.width > 0, f"width={c.width} must be > 0 (1.0 is the full architecture)", "width")
    for key in ("epochs", "batch_size", "eval_batch_size", "pgd_steps", "mifgsm_steps", "train_attack_steps"):
        _check(getattr(c, key) >= 1, f"{key}={getattr(c, key)} must be >= 1", key)
    for key, limit in SIZE_LIMITS.items():
        _check(getattr(c, key) <= limit, f"{key}={getattr(c, key):g} is larger than {limit:g}, the most this "
               f"project allocates for it: write a smaller value (the paper's runs use {key}={_paper_size(key)})", key)
    for key in ("n_train_per_class", "n_test_per_class"):
        v = getattr(c, key)
        _check(v is None or v >= 1, f"{key}={v} must be >= 1, or null for the whole split", key)
    _check(c.lr > 0, f"lr={c.lr} must be > 0", "lr")
    _check(c.momentum >= 0 and c.weight_decay >= 0, "momentum and weight_decay must be >= 0", "momentum",
           "weight_decay")
    _check(c.n_saliency_maps >= 0, "n_saliency_maps must be >= 0", "n_saliency_maps")
    _check(c.monitor_n >= 0 and c.monitor_pgd_steps >= 1, "monitor_n must be >= 0 and monitor_pgd_steps >= 1",
           "monitor_n", "monitor_pgd_steps")
    _check(c.pgd_step_factor > 0 and c.mifgsm_decay >= 0, "pgd_step_factor must be > 0, mifgsm_decay >= 0",
           "pgd_step_factor", "mifgsm_decay")


def _paper_size(key: str) -> str:
    return {"width": "1.0", "batch_size": "128 (MNIST) / 256 (CIFAR-10)"}.get(key, str(_FIELDS[key].default))


# --------------------------------------------------------------------------- files and layers
def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file in every error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such parameter file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def _typed(raw: Mapping[str, Any], source: str, allowed: tuple[str, ...] = FIELD_NAMES) -> dict[str, Any]:
    out = {}
    for key, value in raw.items():
        if key not in allowed:
            hint = f"; allowed keys: {', '.join(allowed)}"
            raise ConfigError(f"{source}: key '{key}' is unknown{hint}")
        out[key] = _cast(key, value, source)
    return out


def settings_from(cls: type, raw: Any, source: str) -> Any:
    """An instance of the frozen dataclass ``cls`` from a YAML mapping: unknown keys and wrong types raise a
    ConfigError naming ``source``, the key and the allowed keys; keys left out keep ``cls``'s defaults."""
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of key: value, got {type(raw).__name__}")
    allowed = tuple(f.name for f in dataclasses.fields(cls))
    values = {}
    for key, value in raw.items():
        if key not in allowed:
            raise ConfigError(f"{source}: key '{key}' is unknown; allowed keys: {', '.join(allowed)}")
        values[key] = _cast(key, value, source, cls)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None


def preset_overrides(preset: str, dataset: str, params_dir: Path | None = None) -> dict[str, Any]:
    """The keys (PRESET_KEYS) that ``preset`` sets for ``dataset`` (``seeds`` excluded)."""
    params_dir = Path(params_dir or default_params_dir())
    path = params_dir / "presets.yaml"
    presets = load_yaml(path)
    _one_of("preset", preset, tuple(presets) or PRESETS)
    per_dataset = presets[preset] or {}
    raw = dict(per_dataset.get(dataset) or {})
    for key in ("seeds", "run_seeds", "runs"):
        raw.pop(key, None)
    return _typed(raw, f"{path} [{preset}.{dataset}]", PRESET_KEYS)


def _preset_section(preset: str, dataset: str, params_dir: Path | None) -> tuple[dict, str, Path]:
    """A preset's section of ``presets.yaml`` for ``dataset`` (empty where it has none), the place to name in an
    error, and the params folder."""
    params_dir = Path(params_dir or default_params_dir())
    path = params_dir / "presets.yaml"
    presets = load_yaml(path)
    _one_of("preset", preset, tuple(presets))
    return (presets[preset] or {}).get(dataset) or {}, f"{path} [{preset}.{dataset}]", params_dir


def _check_run_names(names, key: str, where: str, dataset: str, params_dir: Path) -> None:
    """Every name a preset gives under ``key`` must be a run file of ``dataset`` (its stem)."""
    unknown = sorted(set(names) - {p.stem for p in run_files(dataset, params_dir)})
    if unknown:
        raise ConfigError(f"{where}: {key} names {', '.join(unknown)}, which is no run file of "
                          f"{params_dir / dataset}: write a run file's name without .yaml")


def preset_runs(preset: str, dataset: str, params_dir: Path | None = None) -> list[str] | None:
    """The run files (stems) a preset plans for ``dataset``: its ``runs:`` list where it has one (``[]``: none,
    e.g. a protocol that needs a GPU for that dataset), else None (every run file of ``params/<dataset>/``)."""
    section, where, params_dir = _preset_section(preset, dataset, params_dir)
    if "runs" not in section:
        return None
    runs = section["runs"] or []
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise ConfigError(f"{where}: runs must list run-file names, e.g. runs: [st, asgt]")
    _check_run_names(runs, "runs", where, dataset, params_dir)
    return runs


def preset_seeds(preset: str, dataset: str, params_dir: Path | None = None, run: str | None = None) -> list[int]:
    """The seeds a preset averages over (the paper: five): ``seeds``, or for the run file named ``run`` (its stem)
    the preset's ``run_seeds: {<run>: [...]}`` where it lists it (costly baselines may run fewer seeds)."""
    section, where, params_dir = _preset_section(preset, dataset, params_dir)
    per_run = section.get("run_seeds") or {}
    if not isinstance(per_run, Mapping):
        raise ConfigError(f"{where}: run_seeds must map run-file names to seed lists, e.g. run_seeds: {{pgd-at: [0]}}")
    seeds = per_run.get(run, section.get("seeds", [0])) if run else section.get("seeds", [0])
    try:
        seeds = [int(_scalar(int, s)) for s in (seeds if isinstance(seeds, list) else [seeds])]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: seeds {seeds!r} are not whole numbers ({exc}); write e.g. seeds: [0, 1, 2]") from None
    if not seeds:
        raise ConfigError(f"{where}: the seed list of {run or 'seeds'} is empty; give at least one seed")
    _check_run_names(per_run, "run_seeds", where, dataset, params_dir)
    return seeds


def resolve(
    spec: Mapping[str, Any] | str | Path,
    preset: str = "paper",
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    params_dir: Path | None = None,
    overrides_source: str = "overrides",
) -> RunConfig:
    """Resolve a run file (path) or mapping into a validated RunConfig (layers: see module docstring).

    An invalid value is reported with the layer that set it: ``overrides_source`` (the CLI passes ``--set``),
    the preset's section of ``presets.yaml``, the run file, or ``datasets.yaml``."""
    params_dir = Path(params_dir or default_params_dir())
    if isinstance(spec, (str, Path)):
        source = str(spec)
        raw_spec = load_yaml(Path(spec))
    else:
        source = "run parameters"
        raw_spec = dict(spec)
    run = _typed(raw_spec, source)
    explicit = _typed(dict(overrides or {}), overrides_source)
    dataset = explicit.get("dataset", run.get("dataset"))
    if dataset is None:
        raise ConfigError(f"{source}: key 'dataset' is missing; allowed values: {', '.join(DATASETS)}")
    _one_of("dataset", dataset, DATASETS)
    defaults_path = params_dir / "datasets.yaml"
    base = _typed(load_yaml(defaults_path).get(dataset) or {}, f"{defaults_path} [{dataset}]")
    from_preset = preset_overrides(preset, dataset, params_dir)
    layers = {**base, **run, **from_preset, **explicit}
    layers.update(preset=explicit.get("preset", preset), seed=_cast("seed", explicit.get("seed", seed), "seed"))
    if "method" not in layers:
        raise ConfigError(f"{source}: key 'method' is missing; allowed values: {', '.join(METHODS)}")
    try:
        return RunConfig(**layers)
    except ConfigError as exc:
        sources = [(explicit, overrides_source), (from_preset, f"{params_dir / 'presets.yaml'} [{preset}.{dataset}]"),
                   (run, source), (base, f"{defaults_path} [{dataset}]")]
        where = next((name for layer, name in sources for key in exc.keys if key in layer), source)
        raise ConfigError(f"{where}: {exc}", exc.keys) from None


def run_files(dataset: str | None = None, params_dir: Path | None = None) -> list[Path]:
    """The run files of the grid (``params/<dataset>/*.yaml``), sorted."""
    params_dir = Path(params_dir or default_params_dir())
    datasets = [dataset] if dataset else list(DATASETS)
    return sorted(p for d in datasets for p in (params_dir / d).glob("*.yaml"))


def spec_from_namespace(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The run parameters among a notebook's variables (what papermill injected from ``-f`` and ``-p``).

    Every field of RunConfig that is set (not None) is taken, except ``seed`` and ``preset``, which
    :func:`resolve` takes as arguments.
    """
    return {key: namespace[key] for key in FIELD_NAMES
            if key not in ("seed", "preset") and namespace.get(key) is not None}


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``["k=0.5", "eval_eps=[0,0.1]"]`` -> dict, YAML-typed (then cast by :func:`resolve`)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set '{item}' is not of the form key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
