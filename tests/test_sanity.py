"""Robustness sanity checks: attack assembly, check logic, gradient-masking detection, worst case, caching."""

import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

from asgt_lib.core import config as C
from asgt_lib.pipeline import experiment
from asgt_lib.judgement import sanity
from asgt_lib.core.attacks import margin_loss, pgd_search
from asgt_lib.judgement.sanity import SanitySettings, evaluate_checks, sanity_checks

#: Cheap settings for tests: the official AutoAttack budget is exercised in test_autoattack_parts_are_official.
FAST = SanitySettings(strong_steps=10, strong_restarts=2, square_queries=300, autoattack=False)


class Quantised(nn.Module):
    """Rounds the input to a few grey levels first: zero input gradients (masked), yet not robust."""

    def __init__(self, net: nn.Module, levels: int = 4):
        super().__init__()
        self.net, self.levels = net, levels

    def forward(self, x):
        return self.net(torch.round(x * self.levels) / self.levels)


@pytest.fixture(scope="module")
def points(mnist_sample):
    _, test = mnist_sample
    return test.x[:50], test.y[:50]


@pytest.fixture(scope="module")
def masked_result(trained_alexnet, points):
    x, y = points
    return sanity_checks(Quantised(trained_alexnet).eval(), x, y, "mnist", st_model=trained_alexnet,
                         settings=FAST, label="quantised")


# --------------------------------------------------------------------------- building blocks
def test_margin_loss_by_hand():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    assert torch.allclose(margin_loss(logits, torch.tensor([0, 2])), torch.tensor([2.0 - 3.0, 5.0 - 1.0]))


def test_pgd_search_is_cumulative_and_breaks_only_correct_points(trained_alexnet, points):
    x, y = points
    clean = trained_alexnet(x).argmax(1) == y
    hist = pgd_search(trained_alexnet, x, y, 0.1, steps=5, restarts=3)
    assert len(hist) == 3
    for before, after in zip([clean] + hist[:-1], hist):
        assert not (after & ~before).any()  # a broken point never comes back
    assert hist[-1].sum() < clean.sum()
    assert torch.equal(pgd_search(trained_alexnet, x, y, 0.0, steps=3, restarts=1)[0], clean)
    with pytest.raises(ValueError, match="loss 'hinge' is unknown"):
        pgd_search(trained_alexnet, x, y, 0.1, loss="hinge")


def test_autoattack_parts_are_official(trained_alexnet):
    parts = sanity.autoattack_parts(trained_alexnet, 0.3, SanitySettings(seed=7))
    assert list(parts) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    ce, t, fab, sq = parts.values()
    assert (type(ce).__name__, ce.loss, ce.steps, ce.n_restarts, ce.eot_iter, ce.thr_decr, ce.seed, ce.eps) == \
        ("APGD", "ce", 100, 1, 1, 0.75, 7, 0.3)
    assert (type(t).__name__, t.steps, t.n_restarts, t.n_target_classes, t.seed) == ("APGDT", 100, 1, 9, 7)
    assert (type(fab).__name__, fab.multi_targeted, fab.steps, fab.n_restarts, fab.n_target_classes, fab.seed) == \
        ("FAB", True, 100, 1, 9, 7)
    assert (type(sq).__name__, sq.n_queries, sq.p_init, sq.loss, sq.rescale_schedule, sq.n_restarts, sq.seed) == \
        ("Square", 5000, 0.8, "margin", False, 1, 7)


# --------------------------------------------------------------------------- the checks' logic
def _acc(**changes):
    s = SanitySettings()
    acc = {"fgsm": 0.5, "pgd-10": 0.3, "pgd-100x1": 0.3, "pgd-100x5": 0.3, "pgd-cw-100x1": 0.3, "transfer": 0.6,
           "apgd-ce": 0.3, "autoattack": 0.29, "pgd+square": 0.3, "white-box": 0.3, "worst-case": 0.29,
           "large-eps": 0.0}
    acc.update(changes)
    return evaluate_checks(acc, None, s, 0.3, 0.5).set_index("check").passed


def test_healthy_numbers_pass_every_check():
    assert _acc().all()


@pytest.mark.parametrize("changes, failing", [
    ({"large-eps": 0.4}, "breaks_at_large_eps"),
    ({"fgsm": 0.2}, "pgd_beats_fgsm"),
    ({"pgd-100x5": 0.2}, "pgd_converged"),
    ({"pgd+square": 0.1}, "no_masking_square"),
    ({"transfer": 0.1}, "no_masking_transfer"),
    ({"pgd-cw-100x1": 0.1}, "margin_loss_not_stronger"),
    ({"autoattack": 0.1}, "autoattack_vs_pgd"),
    ({"worst-case": 0.1}, "worst_case_vs_best_attack"),
])
def test_each_check_fails_on_its_symptom(changes, failing):
    passed = _acc(**changes)
    assert not passed[failing]
    assert passed.drop(failing).all()


def test_table_checks_catch_a_rising_curve_and_fgsm_beating_pgd():
    table = pd.DataFrame({"attack": ["fgsm"] * 3 + ["pgd"] * 3, "eps": [0.0, 0.1, 0.2] * 2,
                          "accuracy": [0.9, 0.5, 0.6, 0.9, 0.7, 0.4]})
    checks = evaluate_checks({**{k: 0.3 for k in ("fgsm", "pgd-10", "pgd-100x1", "pgd-100x5", "pgd-cw-100x1",
                                                    "pgd+square", "white-box", "worst-case")}, "large-eps": 0.0},
                             table, SanitySettings(), 0.3, 0.5).set_index("check")
    assert not checks.passed["accuracy_falls_with_eps"] and math.isclose(checks.value["accuracy_falls_with_eps"], 0.1)
    assert not checks.passed["pgd_beats_fgsm_table"] and checks.eps["pgd_beats_fgsm_table"] == 0.1
    line = sanity.verdict(checks.reset_index(), label="m")
    assert line.startswith("m: FAIL") and "accuracy_falls_with_eps" in line


# --------------------------------------------------------------------------- real attacks
def test_masked_gradients_fail_square_and_transfer_but_a_plain_model_passes(trained_alexnet, points,
                                                                         masked_result):
    x, y = points
    healthy = sanity_checks(trained_alexnet, x, y, "mnist", st_model=trained_alexnet, settings=FAST)
    assert healthy.passed, healthy.verdict
    masked = masked_result
    failed = set(masked.checks.loc[~masked.checks.passed, "check"])
    assert {"no_masking_square", "no_masking_transfer", "breaks_at_large_eps"} <= failed, masked.verdict
    assert masked.verdict.startswith("quantised: FAIL")


def test_worst_case_is_the_per_example_minimum(masked_result):
    res = masked_result
    flags = res.flags
    singles = [k for k in flags if k not in ("clean", "white-box", "worst-case", "large-eps")]
    per_example = torch.stack([flags[k] for k in singles]).all(0)
    assert torch.equal(flags["worst-case"], per_example)
    std = res.attacks[(res.attacks.eps - 0.3).abs() < 1e-12].set_index("attack").accuracy
    worst = std["worst-case"]
    assert all(worst <= std[k] + 1e-12 for k in singles)
    assert math.isclose(worst, per_example.float().mean().item())


def test_autoattack_attacks_only_the_survivors_and_restores_the_rng(trained_alexnet, points):
    x, y = points
    s = SanitySettings(strong_steps=5, strong_restarts=1, aa_steps=5, aa_targets=2, square_queries=100)
    state = torch.get_rng_state()
    res = sanity_checks(Quantised(trained_alexnet).eval(), x[:20], y[:20], "mnist", settings=s)
    assert torch.equal(torch.get_rng_state(), state)
    a = res.attacks.set_index("attack")
    chain = ["clean", "autoattack:apgd-ce", "autoattack:apgd-t", "autoattack:fab-t", "autoattack:square"]
    for before, after in zip(chain, chain[1:]):
        assert a.n_attacked[after] == round(a.accuracy[before] * 20)  # each part gets the survivors only
        assert a.accuracy[after] <= a.accuracy[before]
    assert a.accuracy["autoattack"] == a.accuracy["autoattack:square"] >= a.accuracy["worst-case"]
    assert a.accuracy["autoattack:apgd-t"] < a.accuracy["clean"]  # the chain did reach points, not vacuous
    assert "autoattack_vs_pgd" in set(res.checks.check)


def test_reference_figures():
    ref = sanity.reference_table().set_index("dataset")
    assert ref.accuracy["mnist"] == 0.885 and ref.eps["mnist"] == 0.3
    assert 0.43 <= ref.accuracy["cifar10"] <= 0.44 and math.isclose(ref.eps["cifar10"], 8 / 255)


# --------------------------------------------------------------------------- cached report of a run
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir):
    cfg = C.resolve({"dataset": "mnist", "method": "st"}, preset="smoke")
    return experiment.run(cfg, data_dir, tmp_path_factory.mktemp("sanity-results"), device="cpu", progress=False)


def test_sanity_report_is_cached_beside_the_run(smoke_run, data_dir, monkeypatch):
    s = SanitySettings(strong_steps=3, strong_restarts=2, aa_steps=3, aa_targets=2, square_queries=20)
    first = sanity.sanity_report(smoke_run.run_dir, smoke_run.run_dir, data_dir, n_per_class=2, settings=s)
    assert not first.cached and first.path.parent == smoke_run.run_dir.parent
    assert first.path.name.startswith(f"sanity-{smoke_run.run_dir.name}-")
    assert {"check", "passed", "value", "baseline", "detail", "method"} <= set(first.checks.columns)
    assert first.checks.passed.dtype == bool and first.verdict.startswith("mnist/st/seed0: ")
    meta = json.loads((first.path / "meta.json").read_text())  # it checked the run's own weights, and says so
    assert meta["weights"] == meta["st_weights"] == experiment.weights_record(smoke_run.run_dir)
    assert meta["weights"]["same_history"] and not meta["weights"]["trained_again"]

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(sanity, "sanity_checks", boom)
    again = sanity.sanity_report(smoke_run.run_dir, smoke_run.run_dir, data_dir, n_per_class=2, settings=s)
    assert again.cached and again.verdict == first.verdict
    pd.testing.assert_frame_equal(again.checks, first.checks)
    pd.testing.assert_frame_equal(again.attacks, first.attacks)
    with pytest.raises(AssertionError, match="recomputed"):  # other settings: another cache entry
        sanity.sanity_report(smoke_run.run_dir, smoke_run.run_dir, data_dir, n_per_class=2,
                             settings=SanitySettings(strong_steps=4))
    assert experiment.run_dirs(smoke_run.run_dir.parents[3]) == [smoke_run.run_dir]  # not mistaken for a run
