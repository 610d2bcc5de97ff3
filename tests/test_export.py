"""``asgt export``: every finished run of a preset as two tidy tables, read back and checked against the run
folders (the page fixture's smoke runs, whose audit caches are committed: nothing is computed)."""

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from asgt_lib import cli
from asgt_lib.core.config import ADVERSARIAL_METHODS, MASKING_METHODS
from asgt_lib.judgement import audit
from asgt_lib.pipeline import experiment
from asgt_lib.report import export

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "page-results"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    results = tmp_path_factory.mktemp("export") / "results"
    shutil.copytree(FIXTURE, results)
    assert cli.main(["export", "--preset", "smoke", "--results-dir", str(results), "--quiet"]) == 0
    return results


def test_the_robustness_export_is_every_run_folder_row_for_row(exported):
    table = pd.read_csv(exported / "smoke" / export.FILES["robustness"])
    assert list(table.columns) == export.ROBUSTNESS_COLUMNS
    runs = experiment.run_dirs(exported, "smoke")
    assert len(runs) > 2 and table.groupby(["dataset", "name", "seed"]).ngroups == len(runs)
    for d in runs:
        cfg, raw = experiment.run_config(d)
        own = experiment.read_robustness(d / "robustness.csv")
        rows = table[(table.dataset == cfg.dataset) & (table.name == cfg.label) & (table.seed == cfg.seed)]
        assert len(rows) == len(own) and set(rows.attack_step) == {"scaled", "fixed"}  # issue 35
        merged = own.merge(rows, on=["attack_step", "attack", "eps"], suffixes=("", "_x"))
        assert len(merged) == len(own)
        assert (merged.accuracy == merged.accuracy_x).all() and (merged.n == merged.n_x).all()
        r = rows.iloc[0]
        assert r.data_source == raw["data_source"] and r.method == cfg.method and r.precision == cfg.precision
        assert r.device == json.loads((d / "metrics.json").read_text())["provenance"]["device"]
        assert r.eps_train == cfg.eps_train if cfg.method in ADVERSARIAL_METHODS else math.isnan(r.eps_train)
        assert r.k == cfg.k and r.lam == cfg.lam if cfg.method in MASKING_METHODS else math.isnan(r.k)


def test_the_audit_export_is_every_model_and_budget_of_the_audit(exported):
    table = pd.read_csv(exported / "smoke" / export.FILES["audit"])
    assert list(table.columns) == export.AUDIT_COLUMNS
    result = audit.audit(exported, "smoke", progress=False, jobs=1)
    verdicts = result.verdicts()
    assert len(table) == len(verdicts)
    for v in verdicts.to_dict("records"):
        row = table[(table.dataset == v["dataset"]) & (table.name == v["model"]) & (table.seed == v["seed"])
                    & ((table.budget - v["ε"]).abs() < 1e-4)]
        assert len(row) == 1
        assert row.verdict.iloc[0] == v["verdict"]
        assert row.acc_autoattack.iloc[0] == pytest.approx(v["AutoAttack (%)"] / 100)
    flags = result.overfitting_flags()
    for f in flags.to_dict("records"):
        rows = table[(table.dataset == f["dataset"]) & (table.name == f["model"]) & (table.seed == f["seed"])]
        judged = rows.collapsed.dropna()
        assert (judged == (f["catastrophic overfitting"] == "FLAG")).all()


def test_export_text_is_stable(exported):
    """Exporting again writes the same bytes: the staleness test can compare the committed file with a fresh one."""
    before = {k: (exported / "smoke" / name).read_text() for k, name in export.FILES.items()}
    result = audit.audit(exported, "smoke", progress=False, jobs=1)
    fresh = {k: export.csv_text(t) for k, t in export.tables(exported, "smoke", result).items()}
    assert fresh == before


def test_export_announces_the_audit_it_must_compute_first(tmp_path, monkeypatch, capsys):
    """A run whose audit is not there yet (a batch still auditing it elsewhere) makes the export compute it: said on
    stderr even with --quiet, naming the run, before anything is computed; nothing is said when every report is
    cached."""
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    computed = []

    class Stopped(Exception):
        pass

    def stop_at_the_audit(*args, **kwargs):
        computed.append(args)
        raise Stopped

    monkeypatch.setattr(audit, "audit", stop_at_the_audit)
    with pytest.raises(Stopped):
        cli.main(["export", "--preset", "smoke", "--results-dir", str(results), "--quiet"])
    assert "lack" not in capsys.readouterr().err

    run = experiment.run_dirs(results, "smoke")[0]
    report = next(d for d in run.parent.iterdir() if d.name.startswith(f"faithfulness-{run.name}-"))
    shutil.rmtree(report)
    with pytest.raises(Stopped):
        cli.main(["export", "--preset", "smoke", "--results-dir", str(results), "--quiet"])
    err = capsys.readouterr().err
    assert "1 finished run(s) lack 1 audit report(s), computed first" in err and str(run) in err
    assert len(computed) == 2, "the announcement comes before the audit, which then runs as before"
