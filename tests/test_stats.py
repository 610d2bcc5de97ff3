"""The statistics of the verdicts (asgt_lib.judgement.stats), against values worked out by hand or by scipy."""

import math

import pytest
from scipy import stats as sps

from asgt_lib.judgement import stats


def test_an_accuracy_interval_is_clipped_to_what_an_accuracy_can_be():
    e = stats.estimate([0.0, 40.2])  # CIFAR-10 AT-FGSM's PGD-10 over its two seeds
    assert e.mean == pytest.approx(20.1)
    assert e.low == 0.0 and e.high == 100.0  # the raw t interval is [-235.3, 275.5]
    d = stats.difference([-90.0, 80.0])
    assert d.low == -100.0 and d.high == 100.0


def test_below_three_seeds_the_range_is_printed_and_said():
    assert stats.estimate([64.0, 69.8]).text() == "66.9 (range 64.0 to 69.8, 2 seeds)"
    assert stats.estimate([50.0]).text() == "50.0"
    three = stats.estimate([50.0, 52.0, 51.0])
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert three.text() == f"51.0 [{51 - half:.1f}, {51 + half:.1f}]"
    assert stats.difference([1.0, -2.0]).interval_text() == "range -2.0 to +1.0"


def test_seeds_to_decide_is_where_the_half_width_falls_below_the_distance_to_the_bound():
    values = [1.0, 3.0, 2.0, 0.0, 4.0]  # mean 2, sd 1.58
    n = stats.seeds_to_decide(values, bound=0.0)
    sd = sps.tstd(values)
    assert sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < 2.0 <= sps.t.ppf(0.975, n - 2) * sd / math.sqrt(n - 1)
    assert stats.seeds_to_decide(values, bound=2.0) is None  # the mean sits on the bound
    assert stats.seeds_to_decide([5.0]) is None
    assert "one seed" in stats.seeds_note([5.0]) and f"about {n} seeds" in stats.seeds_note(values)


def test_fisher_matches_scipy():
    assert stats.fisher(0, 5, 5, 5) == pytest.approx(sps.fisher_exact([[0, 5], [5, 0]]).pvalue)
    assert stats.fisher(2, 2, 1, 2) == pytest.approx(1.0)


def test_fisher_seeds_to_decide_is_the_first_count_the_exact_test_separates():
    def p(n, rate_a, rate_b):  # scaled counts, halves rounded up, tested with scipy directly
        a, b = math.floor(rate_a * n + 0.5), math.floor(rate_b * n + 0.5)
        return sps.fisher_exact([[a, n - a], [b, n - b]]).pvalue

    n = stats.fisher_seeds_to_decide(5, 5, 3, 5)  # collapsed on 5 of 5 seeds against 3 of 5
    assert p(n, 1.0, 0.6) < 0.05 and all(p(m, 1.0, 0.6) >= 0.05 for m in range(2, n))
    assert n > 5 and stats.fisher_seeds_to_decide(3, 5, 5, 5) == n  # symmetric in the two methods
    assert stats.fisher_seeds_to_decide(2, 5, 2, 5) is None  # equal rates: no number of seeds separates them
    assert stats.fisher_seeds_to_decide(5, 5, 4, 5, max_seeds=10) is None
