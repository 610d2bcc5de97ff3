"""Committed results are what the current code and parameters would compute (issue 10, section 2).

Results are keyed by their parameters, data source and numerics versions (``config.NUMERICS``). If a commit
changes any of these for a committed run without recomputing it, the book would silently stop finding that run
(or recompute hours): these tests fail instead, naming the runs.
"""

from pathlib import Path

from asgt_lib.pipeline import batch, experiment
from asgt_lib.judgement import audit
from asgt_lib.report import export
from asgt_lib.core import config as C

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "results"
PRESET = "reference"
#: Every preset with committed runs: reference, and the presets of issue 36 as their runs land (paper-cpu, the
#: float32 twins reference-fp32).
PRESETS = [p for p in C.PRESETS if experiment.run_dirs(COMMITTED, p)]


def committed_runs(preset: str = PRESET) -> list[Path]:
    return experiment.run_dirs(COMMITTED, preset)


def test_reference_results_are_committed():
    assert committed_runs(), f"no finished {PRESET} runs under {COMMITTED}/{PRESET}"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_committed_run_is_a_run_of_the_current_grid(data_dir, preset):
    stale = batch.stale_runs(preset, data_dir, COMMITTED)
    assert not stale, ("committed results whose key the current code and parameters no longer give (recompute "
                       "them, or undo the change that moved their key):\n" + "\n".join(map(str, stale)))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_committed_run_has_its_audit_and_notebook(data_dir, preset):
    """Every report, except a check at an extra budget added to audit.yaml after the run was committed without its
    weights (audit.unauditable_budgets: the audit leaves it out, and the pages say so)."""
    missing = audit.unaudited(preset, COMMITTED, auditable_only=True)
    assert not missing, "committed runs without their audit reports:\n" + "\n".join(missing)
    standard = {d: audit.audit_settings(preset).budgets(d)[0] for d in C.DATASETS}
    lacking = [line for line in audit.unaudited(preset, COMMITTED)
               if "faithfulness" in line or any(line.endswith(f"sanity at eps={b:g}") for b in standard.values())]
    assert not lacking, "committed runs without their standard-budget audit:\n" + "\n".join(lacking)
    notebooks = {j.run_dir.resolve(): j.notebook for j in batch.plan(preset, data_dir=data_dir, results_dir=COMMITTED)}
    for run in committed_runs(preset):
        assert notebooks[run.resolve()].is_file(), f"{run}: its executed notebook is not committed"


def test_the_check_catches_a_changed_numerics_version_or_parameter(tmp_path, data_dir, monkeypatch):
    """On a finished smoke run: nothing stale; then a bumped numerics version of evaluation, or a changed
    evaluation parameter in the run file, makes it stale, and a bumped audit version makes its audit missing."""
    params = tmp_path / "params"
    for source in (ROOT / "params").rglob("*.yaml"):
        target = params / source.relative_to(ROOT / "params")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text())
    assert batch.run_batch("smoke", ["mnist"], ["st"], 1, data_dir, tmp_path / "results", params,
                           tmp_path / "nb", progress=False, after_run=audit.audit_run) == 0
    assert batch.stale_runs("smoke", data_dir, tmp_path / "results", params) == []
    assert audit.unaudited("smoke", tmp_path / "results", params) == []
    with monkeypatch.context() as m:
        m.setitem(C.NUMERICS, "evaluate", C.NUMERICS["evaluate"] + 1)
        assert len(batch.stale_runs("smoke", data_dir, tmp_path / "results", params)) == 1
    with monkeypatch.context() as m:
        m.setitem(C.NUMERICS, "faithfulness", C.NUMERICS["faithfulness"] + 1)
        assert [line.rsplit(": ", 1)[1] for line in audit.unaudited("smoke", tmp_path / "results", params)] == \
            ["faithfulness"]
    run_file = params / "mnist" / "st.yaml"
    run_file.write_text(run_file.read_text() + "pgd_step_factor: 2.0\n")
    assert len(batch.stale_runs("smoke", data_dir, tmp_path / "results", params)) == 1


@pytest.mark.parametrize("preset", PRESETS)
def test_the_committed_export_is_the_export_of_the_committed_runs(data_dir, preset):
    result = audit.audit(COMMITTED, preset, data_dir, progress=False, jobs=1)
    for kind, frame in export.tables(COMMITTED, preset, result).items():
        path = COMMITTED / preset / export.FILES[kind]
        assert path.is_file(), f"{path} is not committed: run `asgt export --preset {preset}` (or make book)"
        assert path.read_text() == export.csv_text(frame), (f"{path} no longer matches the committed runs: run "
                                                            f"`asgt export --preset {preset}` (or make book)")
