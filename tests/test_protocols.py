"""Why the paper's numbers differ (issue 36): the cells of width × attack step × ε_train, the sentences that say which
difference changes a verdict, the collapse counts at both widths and the float32 twins."""

from __future__ import annotations

import pandas as pd
import pytest

from asgt_lib.core import config as C
from asgt_lib.judgement import protocols
from asgt_lib.judgement.claims import CLAIMS, INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from asgt_lib.pipeline import experiment
from asgt_lib.report import book

from .test_claims import make_table


def _claim(key):
    return next(c for c in CLAIMS if c.key == key)


def test_the_claims_budget_swaps_in_the_runs_trained_at_0_2_and_only_those():
    headline = protocols.at_budget(_claim("headline_mnist"), 0.2)
    assert (headline.method, headline.baseline) == ("asgt-eps0.2", "st")
    ranking = protocols.at_budget(_claim("mnist_asgt_highest"), 0.2)
    assert ranking.method == "asgt-eps0.2" and "at-fgsm-eps0.2" in ranking.rivals and "sga-k0.3" in ranking.rivals
    assert protocols.at_budget(_claim("mnist_pgd_sgt_gain"), 0.2) is None  # SGT and ST train on clean images
    assert protocols.at_budget(_claim("mnist_pgd_sgt_gain"), 0.3) is _claim("mnist_pgd_sgt_gain")


def test_cells_judge_every_mnist_claim_per_width_and_say_what_is_not_computed():
    cells = protocols.cells(book.PAGE_FIXTURE, "smoke")
    assert set(cells.width) == {"smoke", "paper-cpu"}
    assert not cells[cells.width == "paper-cpu"].computed.any()
    assert (cells[cells.width == "paper-cpu"].verdict == "not computed").all()
    smoke = cells[(cells.width == "smoke") & (cells.attack_step == "scaled") & (cells.eps_train == 0.3)]
    assert set(smoke.key) == {c.key for c in CLAIMS if c.dataset == "mnist"} and smoke.computed.all()
    table = protocols.wide(cells, "smoke")
    assert list(table.columns)[0] == "paper" and len(table) == len(smoke)
    assert table.loc["mnist_pgd_sgt_gain", "step sized to ε, ε_train 0.2"] == "same as at 0.3"
    assert protocols.wide(cells, "absent").empty


def _cell(key, width, step, eps, verdict, kind="gain", measured=float("nan"), paper=20.0):
    return {"key": key, "width": width, "attack_step": step, "eps_train": eps, "verdict": verdict,
            "computed": True, "measured": "x", "seeds": 3, "kind": kind, "measured_value": measured,
            "paper_value": paper}


def test_differences_name_the_verdicts_each_protocol_difference_changes():
    cells = pd.DataFrame([
        _cell("a", "reference", "scaled", 0.3, NOT_REPRODUCED), _cell("b", "reference", "scaled", 0.3, NOT_REPRODUCED),
        _cell("a", "reference", "fixed", 0.3, REPRODUCED), _cell("b", "reference", "fixed", 0.3, NOT_REPRODUCED),
        _cell("a", "paper-cpu", "scaled", 0.3, INCONCLUSIVE), _cell("b", "paper-cpu", "scaled", 0.3, NOT_REPRODUCED),
    ])
    step, budget, width = protocols.differences(cells, "reference")  # no absolute claim: three sentences
    assert "changes 1 of the 2 verdicts" in step and "a: not reproduced → reproduced" in step
    assert "1 of them become reproduced" in step
    assert "not computed yet" in budget
    assert "changes 1 of the 2" in width and "a: not reproduced → inconclusive" in width
    assert "0 of them become reproduced" in width


def test_a_width_measured_only_on_claims_the_reference_cannot_judge_is_partly_computed():
    """The first paper-cpu runs measure absolute claims only (not comparable at reference width): the width's
    sentence says it is partly computed, not that it is missing, and still draws no conclusion."""
    cells = pd.DataFrame([
        _cell("gain", "reference", "scaled", 0.3, NOT_REPRODUCED),
        _cell("abs", "reference", "scaled", 0.3, "not comparable", "absolute", 2.0, 16.36),
        _cell("abs", "paper-cpu", "scaled", 0.3, NOT_REPRODUCED, "absolute", 4.1, 16.36)])
    width = next(s for s in protocols.differences(cells, "reference") if s.startswith("The paper's width"))
    assert "partly computed (1 claim measured)" in width and "what it changes is not known" in width
    assert "verdicts judged in both cells" not in width


def test_collapse_counts_read_the_training_monitors_of_each_width():
    counts = protocols.collapse_counts(book.PAGE_FIXTURE, "smoke")
    assert list(counts.index) == ["at-fgsm", "asgt-k0.3"]
    assert counts.loc["at-fgsm", "smoke width"].endswith("of 1 seeds")
    assert (counts["paper width (paper-cpu)"] == "not computed").all()


def test_float32_twins_are_paired_by_seed_with_their_bf16_runs(tmp_path, data_dir):
    spec = C.ROOT / "params" / "mnist" / "st.yaml"
    for seed in (0, 1):
        bf16 = C.resolve(spec, "smoke", seed, {"preset": "reference", "precision": "bf16"})
        experiment.run(bf16, data_dir, tmp_path, progress=False)
    twin = C.resolve(spec, "smoke", 0, {"preset": "reference-fp32", "precision": "fp32"})
    experiment.run(twin, data_dir, tmp_path, progress=False)
    table = protocols.precision_comparison(tmp_path, "reference", "reference-fp32")
    assert set(table.point) == {"clean", "FGSM ε=0.25", "PGD ε=0.2", "MI-FGSM ε=0.25"}
    assert (table["seeds paired"] == 1).all() and (table["bf16 seeds"] == 2).all()
    assert set(table["within the seed spread"]) <= {"yes", "NO"}
    assert protocols.precision_comparison(tmp_path, "reference", "paper-cpu").empty  # no twin: nothing to compare


def test_the_paper_width_runs_trained_in_fp32_on_a_cpu_without_bf16_are_named(tmp_path, data_dir, monkeypatch):
    """paper-cpu asks for bf16; a seed computed where bf16 fell back to fp32 is named, a bf16 seed is not."""
    from asgt_lib.core import compute

    spec = C.ROOT / "params" / "mnist" / "st.yaml"
    assert protocols.fallback_note(tmp_path) == ""  # no paper-cpu run at all
    monkeypatch.setattr(compute, "cpu_bf16_support", lambda: "AMX")  # autocast runs on any CPU, slowly
    experiment.run(C.resolve(spec, "smoke", 1, {"preset": "paper-cpu", "precision": "bf16"}), data_dir, tmp_path,
                   progress=False)
    assert protocols.fallback_note(tmp_path) == ""
    experiment.run(C.resolve(spec, "smoke", 0, {"preset": "paper-cpu", "precision": "fp32"}), data_dir, tmp_path,
                   progress=False)
    note = protocols.fallback_note(tmp_path)
    assert "Of the 2 finished `paper-cpu` runs, 1 trained in fp32" in note and note.endswith(": MNIST st seed 0.")
    experiment.run(C.resolve(spec, "smoke", 0, {"preset": "reference-fp32", "precision": "fp32"}), data_dir,
                   tmp_path, progress=False)
    assert protocols.fallback_note(tmp_path, "reference-fp32") == ""  # it asks for fp32: nothing fell back


def test_a_twin_difference_is_judged_against_what_two_seeds_differ_by(tmp_path, monkeypatch):
    """bf16 seeds 0-2 with sd σ at a point; the fp32 twin of seed 0 differs by d: within the seed spread while
    |d| <= 2·√2·σ (two seeds differ by √2·σ in sd), not beyond."""
    bf16 = make_table(preset="reference", seeds=(0, 1, 2), per_seed={("st", 0): 0.50, ("st", 1): 0.52, ("st", 2): 0.54},
                      names=("st",))
    sigma = 2.0  # points: the sd of 50, 52, 54
    for d, within in ((5.6, "yes"), (5.8, "NO")):
        fp32 = make_table(preset="reference-fp32", seeds=(0,), per_seed={("st", 0): 0.50 - d / 100}, names=("st",))
        tables = {"reference": bf16, "reference-fp32": fp32}
        monkeypatch.setattr(protocols, "run_dirs", lambda root, preset: [preset])
        monkeypatch.setattr(protocols, "collect", lambda root, preset: tables[preset])
        row = protocols.precision_comparison(tmp_path).set_index("point").loc["PGD ε=0.2"]
        assert row["bf16 seed sd (points)"] == sigma and row["two seeds differ by up to (points)"] == 5.7
        assert row["within the seed spread"] == within, d


def test_a_verdict_that_moves_with_precision_is_reported():
    """The same seeds judged on bf16 runs and their fp32 twins: SGT's PGD gain over ST (paper: about +20 points) is
    +22 in bf16 and +2 in fp32, so that verdict moves; its MI-FGSM gain (about +30) fails in both, so it does not."""
    def runs(preset, sgt):
        return make_table(preset=preset, seeds=(0, 1), per_seed={("st", 0): 0.30, ("st", 1): 0.40,
                                                                 ("sgt-k0.3", 0): 0.30 + sgt, ("sgt-k0.3", 1): 0.40 + sgt})
    table = protocols.verdicts_by_precision(runs("reference", 0.22), runs("reference-fp32", 0.02)).set_index("claim")
    assert table.loc["mnist_pgd_sgt_gain", ["bf16 verdict", "fp32 verdict", "moves"]].tolist() == \
        [REPRODUCED, NOT_REPRODUCED, "yes"]
    assert table.loc["mnist_mifgsm_sgt_gain", "moves"] == "no"
    assert (table["seeds"] == 2).all() and "mnist_pgd_asgt" not in table.index  # absolutes: not comparable in both
    assert protocols.verdicts_by_precision(runs("reference", 0.2).iloc[:0], runs("reference-fp32", 0.0)).empty
    twins = pd.DataFrame([{"model": "st", "point": "clean", "seeds paired": 2, "bf16 − fp32 (points)": "+0.1, -0.2",
                           "two seeds differ by up to (points)": 0.6, "within the seed spread": "yes"}])
    summary = protocols.precision_summary(twins, table.reset_index())
    assert "all bf16 − fp32 differences lie within the seed spread" in summary
    assert "1 verdict moves with precision: mnist_pgd_sgt_gain (reproduced in bf16, not reproduced in fp32)" in summary
    assert protocols.precision_summary(twins.iloc[:0], table) == "No float32 twin is finished yet, so the question is open."


def test_differences_name_the_cell_nearest_each_absolute_number():
    cells = pd.DataFrame([
        _cell("abs", "reference", "scaled", 0.3, "not comparable", "absolute", 2.0, 16.36),
        _cell("abs", "reference", "fixed", 0.3, "not comparable", "absolute", 15.0, 16.36),
        _cell("abs", "paper-cpu", "scaled", 0.3, REPRODUCED, "absolute", 20.0, 16.36),
    ])
    *_, nearest = protocols.differences(cells, "reference")
    assert nearest == ("For the absolute accuracies, the cell nearest the paper's number: abs 15.0% against 16.36% "
                       "(reference width, fixed 2/255, ε_train 0.3).")
