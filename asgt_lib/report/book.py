"""The Jupyter Book: where its pages find their numbers, and ``asgt book`` (batch, then ``jupyter-book build``).

The pages (``book/*.ipynb``) read three environment variables, all resolved here so that every page agrees:

* ``ASGT_PRESET`` (default ``smoke``): which preset's runs the figures and tables show;
* ``ASGT_RESULTS_DIR`` (default ``results/`` of this checkout; a relative path is taken from the checkout's
  root, not from the notebook's working directory);
* ``ASGT_NOTEBOOKS_DIR`` (default ``book/runs``): where ``asgt batch`` keeps the executed run notebooks.

The book renders the run notebooks of ``book/runs/<preset>/`` as pages (never executing them). When the
notebooks were written elsewhere, :func:`build` copies them there first.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.config import ROOT

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PRESET = "smoke"
#: Where the book's sources keep the run notebooks (relative to the source root), one folder per preset.
RUNS_SUBDIR = Path("book") / "runs"
#: The files and folders that make up the book's sources (copied by :func:`stage_sources`).
SOURCE_FILES = ("_config.yml", "_toc.yml")
SOURCE_DIRS = ("book",)
#: The smoke results (runs and audit caches, no checkpoints) that the pages' stored outputs were computed from,
#: committed so that nbval compares a pure function of the report code. A fresh smoke batch differs from one CPU
#: to another (oneDNN's AVX2, AVX-512 and AMX kernels round differently) and nbval compares every digit.
PAGE_FIXTURE = ROOT / "tests" / "fixtures" / "page-results"


# --------------------------------------------------------------------------- what the pages read
def _resolve(path: str | os.PathLike, root: Path = ROOT) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (root / p)


def preset() -> str:
    """``$ASGT_PRESET``, else ``smoke``."""
    return os.environ.get("ASGT_PRESET") or DEFAULT_PRESET


def results_dir() -> Path:
    """``$ASGT_RESULTS_DIR`` (relative: from the checkout's root), else ``<root>/results``."""
    return _resolve(os.environ.get("ASGT_RESULTS_DIR") or "results")


def notebooks_dir() -> Path:
    """``$ASGT_NOTEBOOKS_DIR`` (relative: from the checkout's root), else ``<root>/book/runs``."""
    return _resolve(os.environ.get("ASGT_NOTEBOOKS_DIR") or RUNS_SUBDIR)


def show_tables_in_full() -> None:
    """Every page's tables with all their rows, columns and text: pandas' defaults hide the middle of a table
    over 60 rows or 20 columns behind "...", and a reviewer looking for one run or one check must not find it
    elided. Wide tables are shaped long instead (runs or ε down the rows), so that they stay narrow."""
    import pandas as pd

    pd.set_option("display.width", 250)  # the text form (nbval compares it); the HTML form ignores it
    pd.set_option("display.max_rows", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_colwidth", None)


#: The CSS of :func:`narrow_table`: row labels (model names such as ``asgt-code-k0.3``) never break at their
#: hyphens, and the last row of column headers may read bottom to top, as in a printed table of many narrow
#: columns (an upper row, such as the attack above its runs, spans its columns and stays level).
_NARROW_CSS = [{"selector": "th.row_heading", "props": "white-space: nowrap"}]


def _vertical_css(level: int) -> list[dict]:
    return [{"selector": f"th.col_heading.level{level}",
             "props": "writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; vertical-align: bottom"},
            {"selector": "th.col_heading", "props": "text-align: center"},
            {"selector": "td", "props": "text-align: center; padding-left: 0.1em; padding-right: 0.1em"}]


def narrow_table(frame: pd.DataFrame, name: str, *, vertical_headers: bool = False, digits: int = 1):
    """``frame`` as the HTML a page displays, narrow enough for the 676 px text column at 1280 px (issue 36).
    A table of many short cells (✓/✗, accuracies) is as wide as its headers, so ``vertical_headers`` turns them;
    row labels stay on one line. Float columns show ``digits`` decimals and "–" where missing; a column of mixed
    values (the paper's numbers beside "–") and the index floats (ε) show as written. ``name`` is the table's
    HTML id: without it pandas draws a random one, and a page's stored output would differ at each execution
    (nbval)."""
    from IPython.display import HTML

    def as_written(value):
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:g}"
        return value

    floats = [column for column, dtype in frame.dtypes.items() if dtype.kind == "f"]
    style = (frame.style.set_uuid(name).set_table_attributes('class="dataframe"')
             .format(as_written)
             .format(precision=digits, na_rep="–", subset=floats)
             .format_index(as_written, axis=0)
             .set_table_styles(_NARROW_CSS + (_vertical_css(frame.columns.nlevels - 1) if vertical_headers else [])))
    return HTML(style.to_html())


def is_paper_protocol(name: str) -> bool:
    return name == "paper"


def preset_banner(name: str) -> str:
    """The MyST admonition every page shows first: which preset, and whether that is the paper's protocol."""
    if is_paper_protocol(name):
        return (":::{note}\nThese numbers come from the preset `paper`: the paper's protocol (Table 1 "
                "hyper-parameters, full test sets, five seeds).\n:::\n")
    if name == "paper-cpu":
        return (":::{note}\nThese numbers come from the preset `paper-cpu`: the paper's MNIST protocol (Table 1 at "
                "full width) on a CPU, with two deviations: the bfloat16 training step (fp32 for the seeds computed on a "
                "CPU without bf16, which the Table 1 page names) and 2,000 test images (about "
                "±2.2 points of sampling error at 95% on each seed). CIFAR-10 is not computed under it (it needs a "
                "GPU: the preset `paper`).\n:::\n")
    if name == "reference":
        return (":::{important}\nThese numbers come from the preset `reference`, the most faithful protocol two CPU "
                "cores finish: the full training sets, Table 1's training values for MNIST, a one-cycle schedule "
                "and augmentation for CIFAR-10 (12 epochs), narrower networks, 2,000 test images, five seeds "
                "wherever a claim or a field answer reads a run and three elsewhere (computed over several "
                "sittings: each number says how many seeds it rests on). Every deviation from Table 1 is listed on "
                "the Table 1 page. It is not the paper's protocol: gains over ST and rankings are judged, "
                "absolute accuracies are not set against the paper's.\n:::\n")
    return (f":::{{warning}}\nThese numbers come from the preset `{name}`, **not the paper's protocol**: "
            f"narrower networks, a few epochs, subsets of the data and fewer seeds. They show that the pipeline "
            f"runs end to end; they do not measure the methods. Rebuild with `make book PRESET=paper` for the "
            f"paper's protocol.\n:::\n")


def run_page(notebook: Path | str, name: str) -> str:
    """The book document (relative to a page in ``book/``) that renders a run notebook of preset ``name``."""
    return f"runs/{name}/{Path(notebook).name}"


# --------------------------------------------------------------------------- building
def stage_sources(dest: Path, source: Path = ROOT) -> Path:
    """Copy the book's sources (config, toc, ``book/`` without run notebooks) into ``dest``; return ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        shutil.copy2(source / name, dest / name)
    ignore = shutil.ignore_patterns("runs", ".ipynb_checkpoints", "__pycache__", "_build")
    for name in SOURCE_DIRS:
        shutil.copytree(source / name, dest / name, ignore=ignore, dirs_exist_ok=True)
    return dest


def sync_run_notebooks(name: str, notebooks: Path, source: Path = ROOT) -> Path:
    """Make ``<source>/book/runs/<name>/`` hold exactly the finished run notebooks of ``notebooks/<name>/``.

    Nothing is copied when the two are the same folder (the default). Failed and partial notebooks are
    left out: the book renders only runs that finished.
    """
    src = Path(notebooks) / name
    dst = Path(source) / RUNS_SUBDIR / name
    if not src.is_dir():
        raise FileNotFoundError(f"no run notebooks in {src}: run `asgt batch --preset {name}` first")
    if src.resolve() == dst.resolve():
        return dst
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for nb in sorted(src.glob("*.ipynb")):
        if not nb.name.startswith(".") and not nb.name.endswith(".FAILED.ipynb"):
            shutil.copy2(nb, dst / nb.name)
    return dst


def build_env(name: str, results: Path, notebooks: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ASGT_PRESET=name, ASGT_RESULTS_DIR=str(Path(results).resolve()),
               ASGT_NOTEBOOKS_DIR=str(Path(notebooks).resolve()))
    env.pop("MPLBACKEND", None)  # the kernel's inline backend must draw: an Agg backend drops glued figures
    return env


def jupyter_book_command(source: Path, output: Path | None = None, strict: bool = True) -> list[str]:
    """The ``jupyter-book build`` command line. ``--all`` re-renders every page: the pages read results that live
    outside the book's sources, so Sphinx's incremental build (only pages whose source changed) would keep the
    numbers of the previous build after new runs."""
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(source), "--builder", "html", "--all"]
    if output is not None:
        cmd += ["--path-output", str(output)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    return cmd


#: Above this many seconds of estimated work, ``asgt book`` says how long it expects; above LONG_SECONDS it
#: starts nothing without ``--compute``.
ANNOUNCE_SECONDS, LONG_SECONDS = 600.0, 3600.0


def partial_grid(name: str, params_dir: Path | None = None) -> str:
    """What a preset that plans only some run files (``runs:`` in ``params/presets.yaml``, e.g. ``paper-cpu``,
    ``reference-fp32``) plans, per dataset, as a short phrase; empty for a preset that plans the whole grid. The
    book's pages need the whole grid of both datasets (figures, field baselines, ablation), so such a preset is
    read by the default book instead of building its own."""
    from ..core.config import DATASETS, preset_runs
    from ..judgement.claims import DATASET_NAMES

    planned = {dataset: preset_runs(name, dataset, params_dir) for dataset in DATASETS}
    if all(runs is None for runs in planned.values()):
        return ""
    return "; ".join(f"{DATASET_NAMES[d]}: " + ("all" if runs is None else ", ".join(runs) or "none")
                     for d, runs in planned.items())


def build(
    name: str | None = None,
    results: Path | None = None,
    notebooks: Path | None = None,
    source: Path = ROOT,
    output: Path | None = None,
    batch: bool = True,
    jobs: int = 1,
    data_dir: Path | None = None,
    params_dir: Path | None = None,
    device: str | None = None,
    strict: bool = True,
    audit_jobs: int | None = None,
    compute: bool = False,
) -> int:
    """Run the batch of ``name`` (cached runs are skipped) and the audit of its runs (:mod:`asgt_lib.judgement.audit`,
    cached), then build the book to ``<output>/_build/html``.

    Work estimated at over an hour (:func:`asgt_lib.judgement.audit.pending_work`) starts only with ``compute``;
    without it the book is built from the finished runs. Over ten minutes the estimate is announced. ``output``
    defaults to ``source``, so ``_build/html`` of the checkout. Returns 0 on success, the batch's or jupyter-book's
    non-zero exit status otherwise.
    """
    name = name or preset()
    partial = partial_grid(name, params_dir)
    if partial:
        print(f"asgt book: preset {name} plans only part of the paper's grid ({partial}), so it has no book of its "
              f"own: the default book (make book) reads its runs on the pages that set them beside reference's. "
              f"Compute them with asgt batch --preset {name} --audit.", file=sys.stderr)
        return 2
    results = Path(results) if results is not None else results_dir()
    notebooks = Path(notebooks) if notebooks is not None else notebooks_dir()
    if batch:
        from ..judgement.audit import pending_work
        from ..pipeline.batch import run_batch

        runs, audits, seconds = pending_work(name, jobs, data_dir, results, params_dir)
        if seconds > ANNOUNCE_SECONDS:
            print(f"asgt book [{name}]: {runs} run(s) of the grid to compute and {audits} finished run(s) to "
                  f"audit: about {seconds / 3600:.1f} h with {jobs} job(s) (a rough estimate, "
                  f"asgt_lib.judgement.audit.pending_work)", file=sys.stderr, flush=True)
        if seconds > LONG_SECONDS and not compute:
            print(f"asgt book [{name}]: not computed without --compute (make book COMPUTE=1); the book is built from "
                  f"the finished runs, and every number says how many seeds it rests on", file=sys.stderr, flush=True)
        else:
            print(f"asgt book [{name}] 1/4: the runs of the grid (asgt batch)", flush=True)
            status = run_batch(preset=name, jobs=jobs, data_dir=data_dir, results_dir=results,
                               params_dir=params_dir, notebooks_dir=notebooks, device=device, progress=False)
            if status != 0:
                print(f"asgt book: the batch of preset {name} failed; the book was not built", file=sys.stderr)
                return status
    try:
        from ..judgement.audit import DEFAULT_JOBS, audit
        from .export import export

        # the sanity and faithfulness pages read these caches; computing them here shows progress
        print(f"asgt book [{name}] 2/4: the audit of every run (asgt audit)", flush=True)
        result = audit(results, name, data_dir, device, params_dir, progress=True, jobs=audit_jobs or DEFAULT_JOBS)
        written = export(results, name, result)
        print(f"asgt book [{name}] 2/4: the tidy tables {', '.join(p.name for p in written.values())} in "
              f"{Path(results) / name}", flush=True)
    except (FileNotFoundError, ValueError) as exc:
        print(f"asgt book: the audit of preset {name} failed ({exc}); the book was not built", file=sys.stderr)
        return 2
    print(f"asgt book [{name}] 3/4: the executed run notebooks into the book", flush=True)
    try:
        sync_run_notebooks(name, notebooks, source)
    except FileNotFoundError as exc:
        print(f"asgt book: {exc}", file=sys.stderr)
        return 2
    cmd = jupyter_book_command(source, output, strict)
    print(f"asgt book [{name}] 4/4: the pages, executed and built (jupyter-book{' -W -n' if strict else ''})",
          flush=True)
    start = time.perf_counter()
    status = _run_quietly(cmd, build_env(name, results, notebooks), source)
    html = Path(output or source) / "_build" / "html"
    if status != 0:
        print(f"asgt book: jupyter-book build failed (exit {status}) after {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
        return status
    print(f"asgt book [{name}]: built {html / 'index.html'} in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


#: Lines of jupyter-book's and Sphinx's log that say nothing to a reader: ipykernel's notice that a kernel on a
#: local TCP port is unencrypted, the configuration dumps of myst-parser and myst-nb (several hundred characters
#: each), and Sphinx's per-stage and per-document status lines, which :func:`_progress` replaces by one line per
#: executed page. Warnings, errors and tracebacks always pass (the strict build fails on them).
NOISE = (
    "Kernel is running over TCP without encryption",
    re.compile(r"^\s*(myst|myst-nb) v[\d.]+: "),
    re.compile(r"^\s*(Running Jupyter-Book|Source Folder|Config Path|Output Path|Running Sphinx v|loading translations|"
               r"making output directory|loading pickled environment|building \[|updating environment|"
               r"reading sources|looking for now-outdated|pickling environment|checking consistency|"
               r"preparing documents|copying assets|copying static files|copying extra files|copying images|"
               r"copying downloadable|writing output|highlighting module code|generating indices|writing additional|"
               r"dumping search index|dumping object inventory|done$|\[etoc\]|Finished generating HTML|"
               r"Your book's HTML pages are here|_build/html/|You can look at your book|paste this line|"
               r"file://|={5,}|Using jupyter-cache at|sphinx-multitoc-numbering|The HTML pages are in|"
               r"Or paste this line|\s*$)"),
    re.compile(r"Executing notebook using|Excluded from execution by pattern"),
)
#: Terminal colour codes, which Sphinx writes even into a pipe.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Longest line the build log prints; longer ones (a warning with a long path) are wrapped, never cut.
MAX_LINE = 200
_EXECUTED = re.compile(r"^(?P<path>\S+?)(\.ipynb|\.md)?: Executed notebook in (?P<seconds>[\d.]+) seconds")


def _progress(line: str, source: Path, done: list[str], total: int) -> str | None:
    """The line to print for one line of jupyter-book's log: one line per executed page with its time, nothing
    for :data:`NOISE`, everything else (warnings, errors, tracebacks) as it is, wrapped at :data:`MAX_LINE`."""
    text = _ANSI.sub("", line.rstrip("\n"))
    match = _EXECUTED.match(text)
    if match:
        path = Path(match["path"])
        page = str(path.relative_to(source)) if path.is_absolute() and path.is_relative_to(source) else path.name
        done.append(page)
        return f"  page {len(done)}/{total}: {page} executed in {float(match['seconds']):.1f} s"
    if any(n.search(text) if isinstance(n, re.Pattern) else n in text for n in NOISE):
        return None
    return "\n".join(textwrap.wrap(text, MAX_LINE, subsequent_indent="    ", break_long_words=True,
                                    break_on_hyphens=False)) or None


def _run_quietly(cmd: list[str], env: dict[str, str], cwd: Path) -> int:
    """Run ``cmd`` (jupyter-book), printing its log through :func:`_progress`; its exit status."""
    total, done = len(pages(Path(cwd))), []
    with subprocess.Popen(cmd, env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        for line in proc.stdout:
            shown = _progress(line, Path(cwd).resolve(), done, total)
            if shown:
                print(shown, flush=True)
    return proc.returncode


# --------------------------------------------------------------------------- page helpers (shaping, no numbers)
def _short(v: float) -> str:
    return f"{v:g}"


def params_summary(config: dict) -> str:
    """One line with the resolved parameters that tell runs apart (model, size, optimisation, method)."""
    from ..core.config import ADVERSARIAL_METHODS, MASKING_METHODS

    parts = [f"{config['model']} ×{_short(config['width'])}", f"{config['epochs']} ep", f"bs {config['batch_size']}",
             f"lr {_short(config['lr'])}"]
    if config["method"] in MASKING_METHODS:
        parts.append(f"k {_short(config['k'])}, λ {_short(config['lam'])}")
    if config["method"] in ADVERSARIAL_METHODS:
        parts.append(f"ε_train {config['eps_train']:.3g} {config['train_attack']}")
    n_tr, n_te = config.get("n_train_per_class"), config.get("n_test_per_class")
    parts.append(f"{n_tr or 'all'}/{n_te or 'all'} per class")
    parts.append(f"PGD {config['pgd_steps']} it.")
    return " · ".join(parts)


def provenance_table(runs, name: str) -> "pd.DataFrame":
    """One row per run: what it is, its parameters, data source, and where and with what it was computed."""
    import pandas as pd

    from ..pipeline.batch import notebook_name

    rows = []
    for r in sorted(runs, key=lambda r: (r.config["dataset"], r.config["method"], r.config["k"], r.config["seed"])):
        c, m = r.config, r.metrics
        p = m.get("provenance", {})
        label = _label(c)
        nb = notebook_name(c["dataset"], label, c["seed"])
        commit = (p.get("git_commit") or "unknown")[:10] + ("+dirty" if p.get("git_dirty") else "")
        rows.append({"run": nb[:-len(".ipynb")], "notebook": run_page(nb, name), "dataset": c["dataset"],
                     "method": label, "seed": c["seed"], "parameters": params_summary(c), "data": c["data_label"],
                     "run hash": c.get("run_hash", ""), "commit": commit, "asgt_lib": p.get("asgt_lib"),
                     "torch": p.get("torch"), "torchvision": p.get("torchvision"), "python": p.get("python"),
                     "device": p.get("device"), "wall (s)": round(float(m.get("wall_seconds", float("nan"))), 1)})
    return pd.DataFrame(rows)


def grid_progress(runs, name: str, params_dir: Path | None = None) -> "pd.DataFrame":
    """One row per run file of the preset's grid: the seeds it plans, how many of them are among ``runs`` and
    which are still missing. A book built while the batch is still under way (``reference`` is computed over
    several sittings) then says which seeds its numbers do not rest on yet."""
    import pandas as pd

    from ..core import config as C

    finished = {(r.config["dataset"], _label(r.config), int(r.config["seed"]))
                for r in runs if r.config.get("preset") == name}
    rows = []
    for dataset in C.DATASETS:
        planned = C.preset_runs(name, dataset, params_dir)
        for f in C.run_files(dataset, params_dir):
            if planned is not None and f.stem not in planned:
                continue
            seeds = C.preset_seeds(name, dataset, params_dir, run=f.stem)
            label = C.resolve(f, name, seeds[0], params_dir=params_dir).label
            missing = [s for s in seeds if (dataset, label, s) not in finished]
            rows.append({"dataset": dataset, "run": label, "seeds planned": len(seeds),
                         "finished": len(seeds) - len(missing),
                         "seeds missing": ", ".join(map(str, missing)) or "none"})
    return pd.DataFrame(rows)


def compute_totals(runs) -> dict[str, float]:
    """Seconds of compute behind ``runs``, as each process measured it: training (over every session a resumed
    run took; a checkpoint shared by two runs counts once), evaluation, and the audit reports cached beside them."""
    training = sum(float(r.metrics.get("train_seconds", 0.0)) for r in runs if not r.metrics.get("train_cached"))
    evaluation = sum(float(r.metrics.get("eval_seconds", 0.0)) for r in runs)
    audit = sum(float(json.loads(meta.read_text()).get("seconds", 0.0))
                for r in runs for meta in r.run_dir.parent.glob(f"*-{r.run_dir.name}-*/meta.json"))
    totals = {"training": training, "evaluation": evaluation, "audit": audit}
    from ..pipeline.experiment import ADDED_STEPS_FILE

    added = [json.loads(f.read_text()) for r in runs for f in [r.run_dir / ADDED_STEPS_FILE] if f.is_file()]
    if added:  # conventions scored later on weights trained again (issue 35): training and evaluation, wall time
        totals["attack steps added later"] = sum(float(a["wall_seconds"]) for record in added for a in record.values())
    return totals


def compute_text(runs) -> str:
    """:func:`compute_totals` in words, e.g. ``9.1 h (training 7.6 h, evaluation 0.5 h, audit 1.0 h)``."""
    totals = compute_totals(runs)

    def hours(seconds: float) -> str:
        return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"

    parts = ", ".join(f"{name} {hours(value)}" for name, value in totals.items())
    return f"{hours(sum(totals.values()))} ({parts})"


def _label(config: dict) -> str:
    """A run's name, as :attr:`RunConfig.label` gives it: its ``name``, or the method's default name."""
    from ..core.config import default_name

    return config.get("name") or default_name(config["method"], config["k"])


def markdown_table(df, link_column: str = "run", target_column: str = "notebook", columns=None) -> str:
    """A MyST pipe table of ``df``; ``link_column`` becomes a link to the document in ``target_column``."""
    columns = [c for c in (columns or df.columns) if c != target_column]
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in df.iterrows():
        cells = [f"[{esc(row[c])}]({row[target_column]})" if c == link_column else esc(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def saliency_maps(runs, dataset: str, names: list[str]) -> dict:
    """Fig. 6 material: ``{name: maps}`` of the first seed of each run name, all on the same test images.

    Raises ValueError when a run is missing or the runs did not keep maps of the same test images.
    """
    import torch

    out = {}
    for label in names:
        rs = sorted((r for r in runs if r.config["dataset"] == dataset and _label(r.config) == label),
                    key=lambda r: r.config["seed"])
        if not rs:
            raise ValueError(f"no finished run of {label} on {dataset}")
        out[label] = rs[0].saliency()
    first = next(iter(out.values()))
    for label, m in out.items():
        if not torch.equal(m["index"], first["index"]):
            raise ValueError(f"{label} kept saliency maps of other test images than {names[0]} on {dataset}")
    return out


def require(table, name: str, datasets: tuple[str, ...] = ("mnist", "cifar10")) -> None:
    """Stop a page with one clear message when the preset's runs are missing."""
    from ..core.config import preset_runs

    planned = [d for d in datasets if preset_runs(name, d) != []]  # a preset may plan no run of a dataset
    missing = [d for d in planned if table.empty or not (table["dataset"] == d).any()]
    if missing:
        raise RuntimeError(f"no finished runs of preset {name!r} for {', '.join(missing)} under $ASGT_RESULTS_DIR "
                           f"(default results/): run `asgt batch --preset {name}` or `asgt book --preset {name}`")


def data_label(table, dataset: str) -> str:
    """The data source label(s) of ``dataset``'s runs, e.g. "CIFAR-10 (JPEG q75 copy)"."""
    from ..core.data import SOURCE_LABELS

    sources = sorted(set(table.loc[table["dataset"] == dataset, "data_source"]))
    return " + ".join(SOURCE_LABELS.get(s, s) for s in sources)


def one_line(frame, columns):
    """``frame`` with the text of ``columns`` made unbreakable (non-breaking spaces and hyphens), so that a table
    read at 1280 px never wraps a verdict over two lines (issue 36)."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = out[column].map(lambda v: v.replace(" ", "\u00a0").replace("-", "\u2011")
                                          if isinstance(v, str) else v)
    return out


def attack_step_note(table, dataset: str, names: list[str]) -> str:
    """The figure caption's sentence on the two attack-step conventions (issue 35): which runs and seeds of the
    figure are also drawn dashed under the paper's probable attack, or that none is yet."""
    from .plots import STEP_LABELS

    rows = table[(table["dataset"] == dataset) & table["name"].isin(names)]
    fixed = rows[rows["attack_step"] == "fixed"] if "attack_step" in rows else rows.iloc[:0]
    if fixed.empty:
        return (f"Every line uses the {STEP_LABELS['scaled']}; no run of this figure has been scored under the "
                f"{STEP_LABELS['fixed']} yet.")
    seeds = fixed.groupby("name")["seed"].nunique()
    runs = ", ".join(f"{n} ({seeds[n]} seed{'s' if seeds[n] != 1 else ''})" for n in names if n in seeds)
    return (f"Solid lines: the {STEP_LABELS['scaled']}, on every seed; dashed: the {STEP_LABELS['fixed']}, on the "
            f"seeds scored under it: {runs}. MI-FGSM with the fixed step travels at most 10 × 2/255 ≈ 0.078 from "
            f"the image, so its dashed curve is flat beyond that ε.")


# --------------------------------------------------------------------------- stored outputs of the pages
def pages(source: Path = ROOT) -> list[Path]:
    """The book's own notebooks (figures, tables, checks): every ``book/*.ipynb``."""
    return sorted((Path(source) / "book").glob("*.ipynb"))


def execute_pages(results: Path = PAGE_FIXTURE, name: str = DEFAULT_PRESET, notebooks: Path | None = None,
                  paths: list[Path] | None = None, timeout: int = 600) -> list[Path]:
    """Execute the pages in place against ``results`` (default: the page fixture) so their stored outputs are
    what nbval compares with. After a change that alters what a page shows but not the smoke results, this is
    all it takes: ``python -c "from asgt_lib.report.book import execute_pages; execute_pages()"``; after a
    change of the results themselves, :func:`refresh_page_fixture` (``make pages``).
    """
    import nbclient
    import nbformat

    from ..pipeline.kernels import LocalKernelManager

    env = build_env(name, Path(results), Path(notebooks) if notebooks else notebooks_dir())
    done = []
    for page in paths or pages():
        nb = nbformat.read(page, as_version=4)
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                         resources={"metadata": {"path": str(Path(page).parent)}},
                                         kernel_manager_class=LocalKernelManager)
        client.execute(env=env)  # the kernel's environment; this process's is left alone
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        nbformat.write(nb, page)
        done.append(Path(page))
    return done


def refresh_page_fixture(data_dir: Path | None = None, jobs: int = 2) -> Path:
    """Recompute :data:`PAGE_FIXTURE` and the pages' stored outputs from it (``make pages``): a fresh smoke batch
    and its audit in a temporary folder, their results without the checkpoints copied over the fixture, then
    :func:`execute_pages`. Needed after a change of what the smoke runs or their audit compute (a numerics
    version, a result's layout, a new run file); ``tests/test_book.py`` says when."""
    import tempfile

    from ..judgement.audit import audit
    from ..pipeline.batch import run_batch

    name = DEFAULT_PRESET
    with tempfile.TemporaryDirectory(prefix="asgt-pages-") as tmp:
        work = Path(tmp)
        if run_batch(preset=name, jobs=jobs, data_dir=data_dir, results_dir=work / "results",
                     notebooks_dir=work / "notebooks", progress=False) != 0:
            raise RuntimeError(f"the {name} batch failed; the page fixture {PAGE_FIXTURE} was left as it was")
        audit(work / "results", name, data_dir, progress=False, jobs=jobs)
        shutil.rmtree(PAGE_FIXTURE, ignore_errors=True)
        shutil.copytree(work / "results" / name, PAGE_FIXTURE / name)
        execute_pages(PAGE_FIXTURE, name, notebooks=work / "notebooks")
    return PAGE_FIXTURE
