"""Command line: ``asgt run`` (one run), ``asgt params`` (show resolved parameters), ``asgt batch`` (the grid).

Every bad input ends with one message naming the problem and the fix, exit status 2, and nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

from .core import config as C
from .core.data import DataNotFoundError, default_data_dir


def _positive(parse: type, not_parsed: str, not_positive: str) -> Callable[[str], float]:
    """An argparse type: ``parse(text)`` > 0, else an error that names the value and the fix (the two messages,
    formatted with ``text`` and ``value``)."""
    def check(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(not_parsed.format(text=text)) from None
        if not value > 0:
            raise argparse.ArgumentTypeError(not_positive.format(value=value))
        return value
    return check


#: ``--jobs``: a whole number >= 1 (``--jobs 0`` or ``--jobs -2`` is refused with the fix).
positive_int = _positive(int, "{text!r} is not a whole number; write a number of parallel jobs >= 1, e.g. --jobs 2",
                         "{value} is not a number of parallel jobs; write a whole number >= 1, e.g. --jobs 2 (one "
                         "per CPU core is the most that helps)")
#: ``--within``: seconds > 0 (``--within 3h`` or ``--within -5`` is refused with the fix).
seconds = _positive(float, "{text!r} is not a number of seconds; write e.g. --within 9000 for 2.5 hours",
                    "{value} is not a time left; write a number of seconds > 0, e.g. --within 9000")


def _common(p: argparse.ArgumentParser, preset: str = "quick") -> None:
    p.add_argument("--preset", default=preset, help=f"{' | '.join(C.PRESETS)} (default: {preset})")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset folder (default: $ASGT_DATA_DIR, else ./data, else ../shared/data)")
    p.add_argument("--results-dir", type=Path, default=None, help="default: $ASGT_RESULTS_DIR, else ./results")
    p.add_argument("--params-dir", type=Path, default=None, help="default: $ASGT_PARAMS_DIR, else ./params")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default: auto)")
    p.add_argument("--download", action="store_true", help="let torchvision download missing data")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asgt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate one dataset/method (all seeds of the preset by default)")
    run.add_argument("--params", type=Path, help="a run file, e.g. params/mnist/asgt.yaml")
    run.add_argument("--dataset", choices=C.DATASETS)
    run.add_argument("--method", help=f"one of: {', '.join(C.METHODS)}")
    run.add_argument("--k", type=str, help="fraction of features masked, in (0, 1)")
    run.add_argument("--lam", type=str, help="KL weight λ >= 0")
    run.add_argument("--seed", type=int, action="append", help="seed (repeatable; default: the preset's seeds)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any parameter")
    run.add_argument("--force", action="store_true", help="recompute even if a finished run exists")
    _common(run)

    show = sub.add_parser("params", help="print the resolved parameters of a run as JSON")
    for name in ("params", "dataset", "method", "k", "lam", "set"):
        show._add_action(next(a for a in run._actions if a.dest == name))
    show.add_argument("--preset", default="quick")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--params-dir", type=Path, default=None)

    batch = sub.add_parser("batch", help="execute the run notebook for the whole grid of a preset (papermill)")
    batch.add_argument("--dataset", choices=C.DATASETS, action="append", help="restrict (repeatable)")
    batch.add_argument("--only", action="append", metavar="NAME", help="restrict to run files named NAME")
    batch.add_argument("--jobs", type=positive_int, default=1, help="runs executed in parallel (default 1)")
    batch.add_argument("--audit", action="store_true",
                       help="audit each run as soon as it finishes, while its checkpoint is on this machine")
    batch.add_argument("--notebooks-dir", type=Path, default=None,
                       help="where executed run notebooks are kept (default: $ASGT_NOTEBOOKS_DIR, else book/runs)")
    batch.add_argument("--seed", type=int, action="append", help="restrict to this seed (repeatable)")
    batch.add_argument("--add-attack-steps", action="store_true",
                       help="also score the finished runs of the selection under the attack-step conventions "
                            "(attack_step) they lack, training each again where its checkpoint is not on this "
                            "machine; the rows are kept only if the weights repeat the committed run")
    batch.add_argument("--within", type=seconds, default=None, metavar="SECONDS",
                       help="start only the runs this machine finishes (with their audit, under --audit) within "
                            "SECONDS of wall time, from training steps and attack steps measured here; the rest "
                            "are left for another sitting (a run stopped half-way is lost with the machine)")
    batch.add_argument("--plan", action="store_true",
                       help="print what each run to execute will cost on this machine (measured here, about a "
                            "minute) and, with --within, which runs fit; execute nothing")
    _common(batch)

    audit = sub.add_parser("audit", help="robustness sanity checks and saliency faithfulness of every finished run "
                                         "of a preset (cached; budgets in params/audit.yaml)")
    audit.add_argument("--dataset", choices=C.DATASETS, action="append", help="restrict (repeatable)")
    audit.add_argument("--force", action="store_true", help="recompute even if cached")
    audit.add_argument("--retrain", action="store_true",
                       help="train again the models whose checkpoints are not on this machine, to check them at a "
                            "budget added after they were committed (hours for the reference runs)")
    audit.add_argument("--jobs", type=positive_int, default=None, help="worker processes for the runs not yet audited "
                                                           "(default 2)")
    _common(audit)

    export = sub.add_parser("export", help="every finished run of a preset as two tidy CSV tables "
                                           "(<results>/<preset>/export-robustness.csv, export-audit.csv); a run "
                                           "not yet audited is audited first, which is announced")
    _common(export)

    book = sub.add_parser("book", help="run the batch of a preset (cached), then build the Jupyter Book (_build/html)")
    book.add_argument("--jobs", type=positive_int, default=1, help="runs executed in parallel (default 1)")
    book.add_argument("--notebooks-dir", type=Path, default=None,
                      help="where executed run notebooks are kept (default: $ASGT_NOTEBOOKS_DIR, else book/runs)")
    book.add_argument("--output", type=Path, default=None, help="folder that receives _build/ (default: the checkout)")
    book.add_argument("--no-batch", action="store_true", help="build from the finished runs only")
    book.add_argument("--compute", action="store_true",
                      help="allow the batch and audit to start work estimated at over an hour")
    book.add_argument("--audit-jobs", type=positive_int, default=None, help="worker processes of the audit (default 2)")
    _common(book, preset="reference")  # as `make book`: the book of the committed reference results
    return parser


def _spec(args: argparse.Namespace) -> tuple[dict | Path, dict]:
    """The run file (or a minimal mapping) and the explicit overrides from the flags."""
    overrides = C.parse_assignments(args.set)
    for key in ("k", "lam"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.params:
        if args.dataset:
            overrides["dataset"] = args.dataset
        if args.method:
            overrides["method"] = args.method
        return args.params, overrides
    if not args.dataset or not args.method:
        raise C.ConfigError("give --params FILE, or both --dataset and --method")
    params_dir = Path(args.params_dir or C.default_params_dir())
    default_file = params_dir / args.dataset / f"{args.method}.yaml"
    if default_file.is_file() and "k" not in overrides:
        return default_file, overrides
    return {"dataset": args.dataset, "method": args.method}, overrides


def _configs(args: argparse.Namespace) -> list[C.RunConfig]:
    spec, overrides = _spec(args)
    probe = C.resolve(spec, args.preset, 0, overrides, args.params_dir, overrides_source="--set")
    run = Path(spec).stem if isinstance(spec, (str, Path)) else None
    seeds = args.seed if args.seed else C.preset_seeds(args.preset, probe.dataset, args.params_dir, run=run)
    return [C.resolve(spec, args.preset, s, overrides, args.params_dir, overrides_source="--set") for s in seeds]


def cmd_run(args: argparse.Namespace) -> int:
    from .pipeline.experiment import run  # heavy imports only once the arguments are valid

    configs = _configs(args)
    for cfg in configs:
        start = time.perf_counter()
        result = run(cfg, args.data_dir, args.results_dir, args.device, progress=not args.quiet)
        table = result.robustness.pivot(index="eps", columns=["attack_step", "attack"],
                                        values="accuracy").mul(100).round(2)
        state = "cached" if result.cached else f"computed in {time.perf_counter() - start:.1f} s"
        print(f"\n{cfg.dataset} {cfg.label} seed {cfg.seed} [{cfg.preset}] ({result.config['data_label']}), "
              f"{state}\n  clean accuracy {100 * result.clean_accuracy:.2f}%   run wall time "
              f"{result.metrics['wall_seconds']:.1f} s\n  results: {result.run_dir}")
        print(table.to_string())
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    spec, overrides = _spec(args)
    cfg = C.resolve(spec, args.preset, args.seed, overrides, args.params_dir, overrides_source="--set")
    print(json.dumps(cfg.to_dict(), indent=2))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    import functools

    from .judgement.audit import audit_run, audit_seconds
    from .pipeline.batch import run_batch

    return run_batch(
        preset=args.preset, datasets=args.dataset, only=args.only, jobs=args.jobs,
        data_dir=args.data_dir, results_dir=args.results_dir, params_dir=args.params_dir,
        notebooks_dir=args.notebooks_dir, device=args.device, progress=not args.quiet,
        after_run=audit_run if args.audit else None, seeds=args.seed, add_attack_steps=args.add_attack_steps,
        within=args.within, plan_only=args.plan,
        audit_estimate=functools.partial(audit_seconds, params_dir=args.params_dir) if args.audit else None,
    )


def cmd_audit(args: argparse.Namespace) -> int:
    import pandas as pd

    from .judgement.audit import audit

    try:
        result = audit(args.results_dir, args.preset, args.data_dir, args.device, args.params_dir, args.dataset,
                       progress=not args.quiet, force=args.force, jobs=args.jobs, retrain=args.retrain)
    except FileNotFoundError as exc:
        raise C.ConfigError(str(exc)) from None
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        for dataset in dict.fromkeys(result.runs.dataset):
            print(f"\n== {dataset} [{args.preset}]: robustness sanity checks (accuracy at each budget ε, %)")
            print(result.verdicts(dataset).drop(columns=["dataset"]).to_string(index=False))
            print(f"\n== {dataset} [{args.preset}]: saliency faithfulness (mean [95% interval])")
            print(result.faithfulness_table(dataset).drop(columns=["dataset"]).to_string(index=False))
    print(f"\nasgt audit [{args.preset}]: {len(result.runs)} runs in {result.seconds:.0f} s; caches beside each run "
          f"directory under {args.results_dir or 'results'}/{args.preset}/")
    return 0


def _announce_missing_audit(preset: str, results: Path, params_dir: Path | None) -> None:
    """Say on stderr, even with ``--quiet``, when the export has audits to compute first: a user who expects a
    table dump in seconds learns that it will take minutes, and which runs lack their reports (a batch still
    auditing them, in another process, would otherwise be duplicated unnoticed)."""
    from .judgement.audit import audit_seconds, unaudited_runs
    from .pipeline.experiment import run_config

    try:
        lacking = unaudited_runs(preset, results, params_dir)
    except FileNotFoundError:
        return  # no finished runs: the audit says so, with the fix
    if lacking:
        runs = list(lacking)
        seconds = sum(audit_seconds(run_config(Path(d))[0], params_dir) for d in runs)
        print(f"asgt export [{preset}]: {len(runs)} finished run(s) lack {sum(lacking.values())} audit report(s), "
              f"computed first (about {seconds / 60:.0f} min of one thread): {', '.join(runs[:3])}"
              f"{' ...' if len(runs) > 3 else ''}", file=sys.stderr, flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    from .judgement.audit import audit
    from .pipeline.experiment import default_results_dir
    from .report.export import export

    results = Path(args.results_dir or default_results_dir())
    _announce_missing_audit(args.preset, results, args.params_dir)
    try:
        result = audit(results, args.preset, args.data_dir, args.device, args.params_dir, progress=not args.quiet)
    except FileNotFoundError as exc:
        raise C.ConfigError(str(exc)) from None
    for kind, path in export(results, args.preset, result).items():
        rows = sum(1 for _ in path.open()) - 1
        print(f"asgt export [{args.preset}]: {kind}: {rows} rows -> {path}")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from .report.book import build

    return build(name=args.preset, results=args.results_dir, notebooks=args.notebooks_dir, output=args.output,
                 batch=not args.no_batch, jobs=args.jobs, data_dir=args.data_dir, params_dir=args.params_dir,
                 device=args.device, audit_jobs=args.audit_jobs, compute=args.compute)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "download", False):
        os.environ["ASGT_DOWNLOAD"] = "1"
    if getattr(args, "data_dir", None) is None and hasattr(args, "data_dir"):
        args.data_dir = default_data_dir()
    try:
        return {"run": cmd_run, "params": cmd_params, "batch": cmd_batch, "audit": cmd_audit, "export": cmd_export,
                "book": cmd_book}[args.command](args)
    except (C.ConfigError, DataNotFoundError, ValueError, FloatingPointError) as exc:
        print(f"asgt: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
