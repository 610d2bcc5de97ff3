"""The paper's claims and the verdict logic (asgt_lib.judgement.claims), on hand-made tables whose answer is known."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from asgt_lib.judgement import claims
from asgt_lib.report import book
from asgt_lib.core import config as C
from asgt_lib.judgement.claims import INCONCLUSIVE, NOT_COMPARABLE, NOT_EVALUATED, NOT_REPRODUCED, REPRODUCED, Claim

ATTACKS = ("fgsm", "pgd", "mifgsm")


def make_table(acc: dict[tuple[str, str], float] | None = None, preset: str = "smoke", dataset: str = "mnist",
               eps=(0.0, 0.1, 0.2, 0.25, 0.3), seeds=(0,), default: float = 0.5, n: int = 1000,
               per_seed: dict[tuple[str, int], float] | None = None, names=("st", "sgt-k0.3")) -> pd.DataFrame:
    """A collect()-shaped table; accuracy (0-1) per (name, attack) from ``acc``, the same at every ε > 0."""
    rows = []
    for name in names:
        for seed in seeds:
            for attack in ATTACKS:
                for e in eps:
                    a = (acc or {}).get((name, attack), default)
                    if per_seed and (name, seed) in per_seed:
                        a = per_seed[(name, seed)]
                    rows.append(dict(dataset=dataset, data_source=dataset, model="m", method=name.split("-k")[0],
                                     name=name, k=None, lam=None, seed=seed, preset=preset, attack=attack, eps=e,
                                     accuracy=1.0 if e == 0 else a, n=n, n_attacked=0))
    return pd.DataFrame(rows)


ABS = Claim("abs", "Sec. x", "ST reaches 30 %", "absolute", "mnist", ("fgsm",), "st", 0.25, 30.0)
GAIN = Claim("gain", "Sec. x", "SGT gains 20", "gain", "mnist", ("pgd",), "sgt-k0.3", 0.25, 20.0, "st", "approx")
OVER = Claim("over", "Sec. x", "SGT gains over 20", "gain", "mnist", ("pgd",), "sgt-k0.3", 0.25, 20.0, "st",
             "more-than")
BEST = Claim("best", "Sec. x", "SGT is best", "highest", "mnist", ATTACKS, "sgt-k0.3", rivals=("st",))


def verdict(claim, table, preset=None, **kw):
    return claims.evaluate(table, preset, claims=[claim], **kw).iloc[0]


# --------------------------------------------------------------------------- absolute
def test_absolute_claim_is_not_comparable_outside_the_paper_preset_but_shows_the_value():
    for preset in ("smoke", "quick"):
        row = verdict(ABS, make_table({("st", "fgsm"): 0.30}, preset=preset))
        assert row.verdict == NOT_COMPARABLE
        assert row.measured_value == pytest.approx(30.0)
        assert row.preset == preset


def test_absolute_claim_under_paper_preset_uses_the_tolerance():
    assert verdict(ABS, make_table({("st", "fgsm"): 0.34}, preset="paper")).verdict == REPRODUCED
    assert verdict(ABS, make_table({("st", "fgsm"): 0.36}, preset="paper")).verdict == NOT_REPRODUCED
    assert verdict(ABS, make_table({("st", "fgsm"): 0.24}, preset="paper")).verdict == NOT_REPRODUCED
    row = verdict(ABS, make_table({("st", "fgsm"): 0.34}, preset="paper"), tolerance=1.0)
    assert row.verdict == NOT_REPRODUCED


def test_measured_value_is_the_mean_over_seeds():
    table = make_table(seeds=(0, 1, 2), per_seed={("st", 0): 0.2, ("st", 1): 0.3, ("st", 2): 0.4}, preset="paper")
    row = verdict(ABS, table)
    assert row.measured_value == pytest.approx(30.0)
    assert row.seeds == 3
    assert row.verdict == REPRODUCED


# --------------------------------------------------------------------------- gains
@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_approximate_gain_is_judged_under_every_preset(preset):
    ok = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.26}, preset=preset)   # +16 >= 20 - 5
    bad = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.24}, preset=preset)  # +14 <  20 - 5
    assert verdict(GAIN, ok).verdict == REPRODUCED
    assert verdict(GAIN, ok).measured_value == pytest.approx(16.0)
    assert verdict(GAIN, bad).verdict == NOT_REPRODUCED


def test_a_gain_in_the_wrong_direction_is_not_reproduced():
    table = make_table({("st", "pgd"): 0.60, ("sgt-k0.3", "pgd"): 0.10})
    row = verdict(GAIN, table)
    assert row.measured_value == pytest.approx(-50.0)
    assert row.verdict == NOT_REPRODUCED


def test_more_than_gain_needs_strictly_more():
    assert verdict(OVER, make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.31})).verdict == REPRODUCED
    assert verdict(OVER, make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.29})).verdict == NOT_REPRODUCED


def test_gain_is_read_at_the_claimed_eps_only():
    table = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.40})
    far = (table.eps != 0.25) & (table.name == "sgt-k0.3")
    table.loc[far & (table.eps > 0), "accuracy"] = 0.0  # other ε: no gain at all
    assert verdict(GAIN, table).measured_value == pytest.approx(30.0)


# --------------------------------------------------------------------------- not evaluated
def test_missing_eps_run_or_attack_is_not_evaluated_with_the_reason():
    row = verdict(GAIN, make_table(eps=(0.0, 0.1, 0.2, 0.3)))
    assert row.verdict == NOT_EVALUATED and "0.25" in row.reason
    row = verdict(GAIN, make_table(names=("st",)))
    assert row.verdict == NOT_EVALUATED and "sgt-k0.3" in row.reason
    table = make_table()
    row = verdict(GAIN, table[table.attack != "pgd"])
    assert row.verdict == NOT_EVALUATED and "pgd" in row.reason


def test_other_dataset_does_not_count():
    row = verdict(GAIN, make_table({("st", "pgd"): 0.1, ("sgt-k0.3", "pgd"): 0.9}, dataset="cifar10"))
    assert row.verdict == NOT_EVALUATED


# --------------------------------------------------------------------------- highest
def test_highest_needs_the_top_on_every_attack():
    top = make_table({("st", a): 0.2 for a in ATTACKS} | {("sgt-k0.3", a): 0.5 for a in ATTACKS})
    assert verdict(BEST, top).verdict == REPRODUCED
    one_lost = make_table({("st", a): 0.2 for a in ATTACKS} | {("sgt-k0.3", a): 0.5 for a in ATTACKS}
                          | {("st", "mifgsm"): 0.7})
    row = verdict(BEST, one_lost)
    assert row.verdict == NOT_REPRODUCED
    assert row.measured_value == 2.0
    assert "MI-FGSM: best st" in row.reason


def test_highest_ignores_clean_accuracy():
    table = make_table({("st", a): 0.2 for a in ATTACKS} | {("sgt-k0.3", a): 0.5 for a in ATTACKS})
    table.loc[(table.eps == 0) & (table.name == "st"), "accuracy"] = 1.0
    table.loc[(table.eps == 0) & (table.name == "sgt-k0.3"), "accuracy"] = 0.0
    assert verdict(BEST, table).verdict == REPRODUCED


# --------------------------------------------------------------------------- tables and presets
def test_evaluate_refuses_mixed_or_mismatched_presets():
    mixed = pd.concat([make_table(preset="smoke"), make_table(preset="paper")])
    with pytest.raises(ValueError, match="mixes presets"):
        claims.evaluate(mixed)
    with pytest.raises(ValueError, match="not 'paper'"):
        claims.evaluate(make_table(preset="smoke"), "paper")


def test_every_verdict_is_one_of_the_four_and_counts_add_up():
    verdicts = claims.evaluate(make_table())
    assert set(verdicts.verdict) <= set(claims.VERDICTS)
    assert sum(claims.verdict_counts(verdicts).values()) == len(claims.CLAIMS)


def test_claims_name_runs_of_the_grid_and_the_papers_numbers():
    labels = {(C.resolve(f).dataset, C.resolve(f).label) for f in C.run_files()}
    for c in claims.CLAIMS:
        for name in (c.method, c.baseline, *c.rivals):
            if name:
                assert (c.dataset, name) in labels, f"claim {c.key} names {name}, not a run of the grid"
    keys = [c.key for c in claims.CLAIMS]
    assert len(keys) == len(set(keys))
    stated = {(c.dataset, c.attacks[0], c.eps, c.method): c.value for c in claims.CLAIMS if c.kind == "absolute"}
    assert stated[("mnist", "fgsm", 0.25, "st")] == 27.88
    assert stated[("mnist", "pgd", 0.2, "asgt-k0.3")] == 55.69
    assert {c.value for c in claims.CLAIMS if c.key.startswith("headline")} == {35, 20}


def test_a_malformed_claim_is_refused():
    with pytest.raises(ValueError):
        Claim("x", "", "", "gain", "mnist", ("pgd",), "sgt-k0.3", 0.2, 10.0)  # no baseline
    with pytest.raises(ValueError):
        Claim("x", "", "", "highest", "mnist", ATTACKS, "asgt-k0.3")  # no rivals


# --------------------------------------------------------------------------- paper vs. code
def test_identical_variants_are_within_the_noise():
    table = make_table(names=("asgt-k0.3", "asgt-code-k0.3"))
    d = claims.variant_difference(table, "mnist", "asgt-k0.3", "asgt-code-k0.3")
    assert d.max_abs_delta == 0 and not d.matters
    assert "within the noise" in d.sentence()


def test_a_large_gap_on_many_test_images_matters_and_is_located():
    table = make_table({("asgt-code-k0.3", "pgd"): 0.2}, names=("asgt-k0.3", "asgt-code-k0.3"), default=0.5)
    d = claims.variant_difference(table, "mnist", "asgt-k0.3", "asgt-code-k0.3")
    assert d.max_abs_delta == pytest.approx(30.0)
    assert d.attack == "pgd" and d.eps > 0
    assert d.noise_kind == "binomial" and d.matters
    assert "matters" in d.sentence()


def test_the_same_gap_on_few_test_images_is_noise():
    table = make_table({("asgt-code-k0.3", "pgd"): 0.45}, names=("asgt-k0.3", "asgt-code-k0.3"), n=20)
    assert not claims.variant_difference(table, "mnist", "asgt-k0.3", "asgt-code-k0.3").matters


def test_with_several_seeds_the_seed_spread_is_the_yardstick():
    names = ("asgt-k0.3", "asgt-code-k0.3")
    noisy = make_table(names=names, seeds=(0, 1, 2), per_seed={("asgt-k0.3", 0): 0.2, ("asgt-k0.3", 1): 0.5,
                                                                ("asgt-k0.3", 2): 0.8, ("asgt-code-k0.3", 0): 0.3,
                                                                ("asgt-code-k0.3", 1): 0.6,
                                                                ("asgt-code-k0.3", 2): 0.9})
    d = claims.variant_difference(noisy, "mnist", *names)
    assert d.noise_kind == "seeds" and d.seeds == 3
    assert d.max_abs_delta == pytest.approx(10.0) and not d.matters
    steady = make_table(names=names, seeds=(0, 1, 2), per_seed={("asgt-k0.3", s): 0.5 + 0.01 * s for s in range(3)}
                        | {("asgt-code-k0.3", s): 0.4 + 0.01 * s for s in range(3)})
    assert claims.variant_difference(steady, "mnist", *names).matters


def test_variant_difference_needs_both_runs():
    with pytest.raises(ValueError, match="asgt-code"):
        claims.variant_difference(make_table(names=("asgt-k0.3",)), "mnist", "asgt-k0.3", "asgt-code-k0.3")


# --------------------------------------------------------------------------- figure tables
def test_accuracy_and_robustness_tables_average_seeds_and_skip_clean():
    table = make_table(seeds=(0, 1), per_seed={("st", 0): 0.2, ("st", 1): 0.4})
    acc = claims.accuracy_table(table, "mnist", ["sgt-k0.3", "st"])
    assert list(acc["PGD"].columns) == ["sgt-k0.3", "st"]  # the runs in the order asked, under each attack
    assert list(acc.columns.get_level_values("attack").unique()) == ["FGSM", "PGD", "MI-FGSM"]
    assert list(acc.index) == sorted(acc.index, key=float)  # ε down the rows, ascending
    assert acc.loc["0.1", ("PGD", "st")] == pytest.approx(30.0)
    assert acc.loc["0", ("PGD", "st")] == pytest.approx(100.0)
    rob = claims.robustness_summary(table, "mnist", ["st"])
    assert rob.loc["st", "FGSM"] == pytest.approx(30.0)  # ε = 0 (100 %) left out


# --------------------------------------------------------------------------- Table 1
def _run(dataset, method, k=0.3, seed=0, **over):
    cfg = C.resolve({"dataset": dataset, "method": method, "k": k}, "paper", seed).to_dict()
    cfg.update(over)
    return SimpleNamespace(config=cfg, metrics={"n_train": 60000, "n_test": 10000})


def test_hyperparameters_read_the_runs_and_flag_differences():
    runs = [_run("mnist", m, seed=s) for m in ("st", "sgt") for s in range(5)] + [_run("mnist", "sgt", k=0.5)]
    hp = claims.hyperparameters(runs).set_index("parameter")
    assert hp.loc["epochs", "used"] == "20" and hp.loc["epochs", "matches"]
    assert hp.loc["seeds", "used"] == "5" and hp.loc["seeds", "matches"]
    assert hp.loc["k", "used"] == "0.3, 0.5" and hp.loc["k", "matches"]
    assert hp.loc["momentum", "paper"] == "not stated" and hp.loc["momentum", "matches"] is None
    short = claims.hyperparameters([_run("mnist", "st", epochs=3)]).set_index("parameter")
    assert short.loc["epochs", "used"] == "3" and not short.loc["epochs", "matches"]
    assert not short.loc["seeds", "matches"]


# --------------------------------------------------------------------------- book helpers
def test_page_settings_resolve_from_the_checkout_not_the_cwd(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASGT_PRESET", raising=False)
    monkeypatch.delenv("ASGT_RESULTS_DIR", raising=False)
    monkeypatch.delenv("ASGT_NOTEBOOKS_DIR", raising=False)
    assert book.preset() == "smoke"
    assert book.results_dir() == book.ROOT / "results"
    assert book.notebooks_dir() == book.ROOT / "book" / "runs"
    monkeypatch.setenv("ASGT_RESULTS_DIR", "elsewhere/r")
    monkeypatch.setenv("ASGT_PRESET", "paper")
    assert book.results_dir() == book.ROOT / "elsewhere" / "r"
    assert book.preset() == "paper"
    monkeypatch.setenv("ASGT_RESULTS_DIR", str(tmp_path))
    assert book.results_dir() == tmp_path


def test_banner_warns_unless_paper():
    assert "not the paper's protocol" in book.preset_banner("smoke")
    assert "{warning}" in book.preset_banner("quick")
    assert "{warning}" not in book.preset_banner("paper")


def test_a_preset_that_plans_part_of_the_grid_has_no_book_of_its_own_and_says_where_its_runs_are_read(
        capsys, tmp_path):
    assert book.partial_grid("reference") == "" and book.partial_grid("smoke") == ""
    assert book.partial_grid("paper-cpu") == "MNIST: st, sgt, sgt-k0.5, at-fgsm, sga, asgt; CIFAR-10: none"
    assert book.build("paper-cpu", results=tmp_path, output=tmp_path) == 2  # before any batch, audit or build
    err = capsys.readouterr().err
    assert "has no book of its own: the default book (make book) reads its runs" in err
    assert "asgt batch --preset paper-cpu --audit" in err and not (tmp_path / "_build").exists()


# --------------------------------------------------------------------------- intervals (reference)
def test_reference_gain_counts_only_when_its_interval_over_seeds_clears_the_bound():
    steady = make_table(preset="reference", seeds=(0, 1, 2), per_seed={
        ("st", 0): 0.10, ("st", 1): 0.12, ("st", 2): 0.11,
        ("sgt-k0.3", 0): 0.27, ("sgt-k0.3", 1): 0.29, ("sgt-k0.3", 2): 0.28})          # +17 every seed
    row = verdict(GAIN, steady)
    assert row.verdict == REPRODUCED and row.seeds == 3 and row.measured_value == pytest.approx(17.0)
    assert "95% interval over 3 seeds" in row.reason and "[+17.00, +17.00]" in row.measured
    noisy = make_table(preset="reference", seeds=(0, 1, 2), per_seed={
        ("st", 0): 0.10, ("st", 1): 0.10, ("st", 2): 0.10,
        ("sgt-k0.3", 0): 0.05, ("sgt-k0.3", 1): 0.27, ("sgt-k0.3", 2): 0.49})          # mean +17, spread 22
    row = verdict(GAIN, noisy)  # +17 ± 4.30·22/√3: [-37.6, +71.6] contains the bound 20 − 5
    assert row.measured_value == pytest.approx(17.0) and row.verdict == INCONCLUSIVE
    assert "it contains +20 − 5" in row.reason
    assert verdict(GAIN, noisy.assign(preset="quick")).verdict == REPRODUCED  # point rule elsewhere
    short = make_table(preset="reference", seeds=(0, 1, 2), per_seed={
        ("st", 0): 0.10, ("st", 1): 0.12, ("st", 2): 0.11,
        ("sgt-k0.3", 0): 0.14, ("sgt-k0.3", 1): 0.19, ("sgt-k0.3", 2): 0.15})          # +4, +7, +4
    row = verdict(GAIN, short)
    assert row.verdict == NOT_REPRODUCED and "its high end" in row.reason and "falls short of +20 − 5" in row.reason


def test_reference_lower_bound_is_inconclusive_while_its_interval_contains_the_bound():
    # OVER claims a gain of more than 20: +21 [+19.6, +22.4] straddles it, +30 clears it, +10 falls short
    per_seed = {("st", s): 0.10 for s in range(3)}
    straddles = {("sgt-k0.3", 0): 0.30, ("sgt-k0.3", 1): 0.31, ("sgt-k0.3", 2): 0.32}
    assert verdict(OVER, make_table(preset="reference", seeds=(0, 1, 2), per_seed=per_seed | straddles)
                   ).verdict == INCONCLUSIVE
    clears = {("sgt-k0.3", s): 0.40 for s in range(3)}
    assert verdict(OVER, make_table(preset="reference", seeds=(0, 1, 2), per_seed=per_seed | clears)
                   ).verdict == REPRODUCED
    short = {("sgt-k0.3", s): 0.20 for s in range(3)}
    assert verdict(OVER, make_table(preset="reference", seeds=(0, 1, 2), per_seed=per_seed | short)
                   ).verdict == NOT_REPRODUCED


def test_reference_gain_on_one_seed_uses_the_test_images():
    table = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.26}, preset="reference", n=100)
    row = verdict(GAIN, table)  # +16 ± 1.96·sqrt(.09/100 + .1924/100) = ±10.4: [+5.6, +26.4] contains 15
    assert row.verdict == INCONCLUSIVE and row.seeds == 1 and "over test images" in row.reason
    big = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.26}, preset="reference", n=100000)
    assert verdict(GAIN, big).verdict == REPRODUCED


def test_reference_highest_needs_a_lead_whose_interval_is_above_zero_on_every_attack():
    per_seed = {("st", s): 0.20 + 0.01 * s for s in range(3)} | {("sgt-k0.3", s): 0.30 + 0.01 * s for s in range(3)}
    clear = make_table(preset="reference", seeds=(0, 1, 2), per_seed=per_seed)
    assert verdict(BEST, clear).verdict == REPRODUCED
    tied = dict(per_seed) | {("sgt-k0.3", 0): 0.10, ("sgt-k0.3", 1): 0.31, ("sgt-k0.3", 2): 0.50}
    row = verdict(BEST, make_table(preset="reference", seeds=(0, 1, 2), per_seed=tied))
    assert row.verdict == INCONCLUSIVE and "lead over st" in row.reason and "clearly behind" not in row.reason
    beaten = dict(per_seed) | {("sgt-k0.3", s): 0.10 + 0.01 * s for s in range(3)}
    row = verdict(BEST, make_table(preset="reference", seeds=(0, 1, 2), per_seed=beaten))
    assert row.verdict == NOT_REPRODUCED and "clearly behind a rival on FGSM, PGD, MI-FGSM" in row.reason


def test_interval_judgement_needs_the_per_seed_table():
    curves = claims.mean_curves(make_table(preset="reference"))
    with pytest.raises(ValueError, match="per-seed table"):
        claims.judge(GAIN, curves, "reference")


def test_findings_tally_the_verdicts_they_summarise():
    table = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.26}, names=("st", "sgt-k0.3", "sgt-k0.5"))
    found = claims.findings(claims.evaluate(table))
    assert found["sgt"] == ("Of the 2 claimed gains of SGT over ST judged under the preset smoke, 1 hold "
                            "(mnist_pgd_sgt_gain), 1 is not reproduced; 1 more could not be judged.")
    assert found["asgt"].startswith("Of the 0 claims that ASGT is the most robust judged under the preset smoke, 0 "
                                    "hold, 0 are not reproduced; 4 more")


def test_findings_count_the_inconclusive_claims_apart():
    table = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.26}, preset="reference", n=100,
                       names=("st", "sgt-k0.3", "sgt-k0.5"))
    found = claims.findings(claims.evaluate(table))
    assert found["sgt"] == ("Of the 2 claimed gains of SGT over ST judged under the preset reference, 0 hold, 1 is "
                            "not reproduced, 1 is inconclusive (mnist_pgd_sgt_gain); 1 more could not be judged.")
    verdicts = claims.evaluate(table).set_index("key")
    assert verdicts.loc["mnist_pgd_sgt_gain", "measured"] == "+16.00 [+5.58, +26.42] points"
    assert "the seeds needed, is unknown" in verdicts.loc["mnist_pgd_sgt_gain", "reason"]  # one seed




# --------------------------------------------------------------------------- paper-cpu: absolute claims by intervals
def test_absolute_claim_under_paper_cpu_is_judged_by_its_interval_over_seeds():
    """Issue 36: reproduced when the seeds' 95% interval lies within paper ± tolerance, not reproduced when it lies
    outside, inconclusive when it straddles an edge (with the seeds that would decide it)."""
    def table(*accs):
        return make_table(seeds=tuple(range(len(accs))), per_seed={("st", s): a for s, a in enumerate(accs)},
                          preset="paper-cpu")
    inside = verdict(ABS, table(0.29, 0.30, 0.31))
    assert inside.verdict == REPRODUCED and inside.low >= 25 and inside.high <= 35
    assert "sampling error" in inside.reason and "1,000 test images" in inside.reason
    assert verdict(ABS, table(0.50, 0.52, 0.54)).verdict == NOT_REPRODUCED
    wide = verdict(ABS, table(0.20, 0.30, 0.40))
    assert wide.verdict == INCONCLUSIVE and "seeds would decide it" in wide.reason
    one = verdict(ABS, make_table({("st", "fgsm"): 0.30}, preset="paper-cpu", n=2000))
    assert one.verdict == REPRODUCED and "over test images" in one.reason


def test_paper_cpu_judges_mnist_absolutes_only():
    cifar = Claim("abs_c", "Sec. x", "ST reaches 30 %", "absolute", "cifar10", ("fgsm",), "st", 0.25, 30.0)
    row = verdict(cifar, make_table({("st", "fgsm"): 0.30}, preset="paper-cpu", dataset="cifar10"))
    assert row.verdict == NOT_COMPARABLE


# --------------------------------------------------------------------------- the two attack-step conventions
def _both_steps(pgd_fixed: float = 0.9):
    scaled = make_table({("st", "pgd"): 0.10, ("sgt-k0.3", "pgd"): 0.35}, preset="reference", seeds=(0, 1, 2),
                        names=claims.CLAIM_RUNS).assign(attack_step="scaled")
    fixed = scaled.copy().assign(attack_step="fixed")
    fixed.loc[fixed.attack == "pgd", "accuracy"] = fixed.loc[fixed.attack == "pgd", "eps"].map(
        lambda e: 1.0 if e == 0 else pgd_fixed)
    return pd.concat([scaled, fixed], ignore_index=True)


def test_claims_are_judged_under_each_attack_step_on_its_own_rows():
    table = _both_steps()
    with pytest.raises(ValueError, match="mixes attack-step conventions"):
        claims.evaluate(table, "reference")
    by_step = claims.evaluate_by_attack_step(table, "reference", claims=[GAIN])
    assert set(by_step.attack_step) == {"scaled", "fixed"}
    gains = by_step.set_index("attack_step").measured_value
    assert gains["scaled"] == pytest.approx(25.0) and gains["fixed"] == pytest.approx(0.0)
    side = claims.side_by_side(by_step)
    assert side.loc["gain", ("scaled", "verdict")] == REPRODUCED
    assert side.loc["gain", ("fixed", "verdict")] == NOT_REPRODUCED
    findings = claims.attack_step_findings(table, by_step)
    assert "1 changes verdict: gain (reproduced → not reproduced)" in findings["verdicts"]


def test_attack_step_effect_pairs_each_seed_and_sets_the_paper_beside():
    effect = claims.attack_step_effect(_both_steps(0.9))
    assert len(effect) == 3 * len(claims.CLAIM_RUNS)  # every run and seed scored under both
    st = effect[effect.name == "st"].iloc[0]
    assert st["PGD 0.2 scaled"] == pytest.approx(10.0) and st["PGD 0.2 fixed"] == pytest.approx(90.0)
    assert st["FGSM 0.25 scaled"] == st["FGSM 0.25 fixed"]
    summary = claims.attack_step_summary(effect)
    assert summary.loc["st", ("PGD ε=0.2", "paper")] == pytest.approx(16.36)
    assert summary.loc["st", ("", "seeds")] == 3
    text = claims.attack_step_findings(_both_steps(0.9), claims.evaluate_by_attack_step(_both_steps(), "reference"))
    assert "PGD at ε = 0.2 leaves" in text["mnist"] and "3 seeds each" in text["mnist"]


def test_a_fixed_step_mifgsm_curve_is_measured_flat_beyond_its_reach():
    table = _both_steps()
    reach, span, n = claims.flat_beyond_reach(table)
    assert reach == pytest.approx(20 / 255) and span == pytest.approx(0.0) and n == 3 * len(claims.CLAIM_RUNS)
    table.loc[(table.attack == "mifgsm") & (table.attack_step == "fixed") & (table.eps == 0.3), "accuracy"] = 0.4
    assert claims.flat_beyond_reach(table)[1] == pytest.approx(10.0)


def test_the_book_judges_absolute_mnist_claims_at_the_paper_width_whatever_its_preset():
    """Issue 36: under reference the absolute claims are taken from paper-cpu, convention by convention; without a
    paper-cpu run they are "not evaluated", saying so, never "not comparable"."""
    ref = make_table({("st", "fgsm"): 0.6}, preset="reference", seeds=(0, 1, 2)).assign(attack_step="scaled")
    alone = claims.evaluate_by_attack_step(ref, "reference", claims=[ABS], paper_width=pd.DataFrame())
    assert alone.verdict.tolist() == [NOT_EVALUATED] and "no paper-cpu run" in alone.reason.iloc[0]
    paper = make_table(seeds=(0, 1, 2), per_seed={("st", 0): 0.29, ("st", 1): 0.30, ("st", 2): 0.31},
                       preset="paper-cpu").assign(attack_step="scaled")
    judged = claims.evaluate_by_attack_step(ref, "reference", claims=[ABS], paper_width=paper).iloc[0]
    assert judged.verdict == REPRODUCED and judged.preset == "paper-cpu" and judged.measured_value == pytest.approx(30)
    assert claims.evaluate_by_attack_step(ref, "reference", claims=[ABS]).verdict.tolist() == [NOT_COMPARABLE]
