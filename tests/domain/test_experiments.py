"""A/B verdicts: rates with Wilson intervals, a planned horizon, and a winner only once every variant reached it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from outbound_pipeline.domain.experiments import (
    planned_sample_size,
    two_proportion_p_value,
    variant_rates,
    verdict,
    wilson_interval,
)


def frame(*rows: tuple[str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["variant", "trials", "successes"])


def test_wilson_interval_matches_published_values() -> None:
    # Reference values: statsmodels proportion_confint(method="wilson") and Wilson (1927).
    assert wilson_interval(8, 10) == pytest.approx((0.4901625, 0.9433178), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775328), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((0.7224672, 1.0), abs=1e-6)
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_planned_sample_size_matches_the_textbook_formula() -> None:
    # Fleiss without continuity correction (also G*Power): 10% vs 15%, alpha 0.05, power 0.8 -> 686 per group.
    assert planned_sample_size(0.10, 0.05) == 686
    assert planned_sample_size(0.10, 0.05, alpha=0.025) > 686  # a stricter alpha needs more sends
    assert planned_sample_size(0.10, 0.10) < 686  # a bigger effect needs fewer
    assert planned_sample_size(0.98, 0.05) == planned_sample_size(0.98, 0.05)  # near 100% the effect is taken downwards
    with pytest.raises(ValueError, match="baseline_rate"):
        planned_sample_size(1.5, 0.05)
    with pytest.raises(ValueError, match="minimum_detectable_effect"):
        planned_sample_size(0.1, 0.0)


def test_a_clear_winner_after_the_horizon() -> None:
    result = verdict(frame(("direct", 900, 73), ("warm", 900, 128)), baseline_rate=0.08, mde=0.04)
    assert result.planned_n <= 900
    assert result.state == "winner" and result.winner == "warm"
    assert result.p_value is not None and result.p_value < 0.001
    assert result.text == "winner: warm (reply rate 14.2% vs 8.1%, p<0.001)"
    assert result.needed_more == {"direct": 0, "warm": 0}


def test_the_same_difference_before_the_horizon_is_no_verdict_yet() -> None:
    # The gap already looks significant on its own, but the variants have not reached the planned sends.
    early = verdict(frame(("direct", 200, 12), ("warm", 200, 30)), baseline_rate=0.08, mde=0.04)
    assert two_proportion_p_value(30, 200, 12, 200) < 0.05
    assert early.state == "no_difference_yet" and early.winner is None
    assert early.needed_more == {"direct": early.planned_n - 200, "warm": early.planned_n - 200}
    assert early.text == f"no difference yet: about {early.planned_n - 200} more sends per variant needed"


def test_too_few_sends_gives_a_sensible_number_still_needed() -> None:
    result = verdict(frame(("a", 120, 10), ("b", 80, 9)), baseline_rate=0.10, mde=0.05)
    assert result.state == "no_difference_yet"
    assert result.planned_n == 686
    assert result.needed_more == {"a": 566, "b": 606}
    assert result.text == "no difference yet: about 606 more sends per variant needed"


def test_no_difference_after_the_horizon() -> None:
    result = verdict(frame(("direct", 1000, 80), ("warm", 1000, 85)), baseline_rate=0.08, mde=0.05)
    assert result.state == "no_difference" and result.winner is None
    assert result.p_value == pytest.approx(two_proportion_p_value(85, 1000, 80, 1000))
    assert result.text.startswith("no difference (reply rate warm 8.5% vs direct 8.0%, p=0.")


def test_three_variants_compare_the_best_with_each_other_at_a_bonferroni_alpha() -> None:
    three = frame(("a", 1500, 120), ("b", 1500, 150), ("c", 1500, 175))
    result = verdict(three, baseline_rate=0.08, mde=0.04, alpha=0.05)
    assert result.alpha == pytest.approx(0.025)
    assert result.planned_n == planned_sample_size(0.08, 0.04, alpha=0.025)
    # c beats a clearly, but not b: the best must beat every rival, so there is no winner.
    assert two_proportion_p_value(175, 1500, 120, 1500) < 0.025 < two_proportion_p_value(175, 1500, 150, 1500)
    assert result.state == "no_difference"
    assert result.p_value == pytest.approx(two_proportion_p_value(175, 1500, 150, 1500))

    clear = verdict(frame(("a", 1500, 110), ("b", 1500, 115), ("c", 1500, 190)), baseline_rate=0.08, mde=0.04)
    assert clear.state == "winner" and clear.winner == "c"
    assert clear.text.startswith("winner: c (reply rate 12.7% vs 7.7%")  # against the runner-up


def test_zero_trials_is_no_verdict_yet_and_never_a_division_by_zero() -> None:
    result = verdict(frame(("a", 0, 0), ("b", 0, 0)))
    assert result.state == "no_difference_yet"
    assert result.p_value == 1.0
    assert [v.rate for v in result.variants] == [None, None]
    assert result.needed_more["a"] == result.planned_n > 0

    one_side = verdict(frame(("a", 900, 90), ("b", 0, 0)), baseline_rate=0.1)
    assert one_side.state == "no_difference_yet" and one_side.needed_more == {"a": 0, "b": one_side.planned_n}


def test_frames_with_repeated_variants_are_summed_and_bad_counts_refused() -> None:
    rates = variant_rates(frame(("a", 10, 2), ("a", 10, 3), ("b", 5, 0)))
    assert rates[["variant", "trials", "successes"]].values.tolist() == [["a", 20, 5], ["b", 5, 0]]
    assert rates["rate"].tolist() == [0.25, 0.0]
    with pytest.raises(ValueError, match="between 0 and trials"):
        verdict(frame(("a", 10, 11), ("b", 10, 1)))
    with pytest.raises(ValueError, match="at least two variants"):
        verdict(frame(("a", 10, 1)))
    with pytest.raises(ValueError, match="successes"):
        verdict(pd.DataFrame({"variant": ["a", "b"], "trials": [1, 1]}))


def test_the_verdict_table_has_one_row_per_variant() -> None:
    table = verdict(frame(("a", 100, 10), ("b", 100, 20)), step="intro").to_frame()
    assert list(table.columns) == ["variant", "trials", "successes", "rate", "ci_low", "ci_high", "needed_more"]
    assert table["rate"].tolist() == [0.1, 0.2]
    assert (table["ci_low"] < table["rate"]).all() and (table["rate"] < table["ci_high"]).all()


def test_looking_every_hour_does_not_inflate_false_positives() -> None:
    """A/A tests (no real difference) checked after every batch of sends: winners declared stay near alpha.

    A naive test at every look would declare a winner in well over alpha of these experiments.
    """
    rng = np.random.default_rng(14)
    baseline, mde, alpha = 0.3, 0.15, 0.05
    planned = planned_sample_size(baseline, mde, alpha)
    experiments, batch = 300, 20
    fixed_horizon_winners = naive_winners = 0
    for _ in range(experiments):
        outcomes = rng.random((2, planned + batch)) < baseline
        naive_declared = False
        for looked_at in range(batch, planned + batch, batch):
            successes = outcomes[:, :looked_at].sum(axis=1)
            naive_declared |= two_proportion_p_value(int(successes[0]), looked_at, int(successes[1]), looked_at) < alpha
            result = verdict(frame(("a", looked_at, int(successes[0])), ("b", looked_at, int(successes[1]))),
                             baseline_rate=baseline, mde=mde, alpha=alpha)
            if result.state != "no_difference_yet":  # the horizon is reached: the verdict is final
                fixed_horizon_winners += result.state == "winner"
                break
        naive_winners += naive_declared
    assert fixed_horizon_winners / experiments <= alpha + 3 * (alpha * (1 - alpha) / experiments) ** 0.5
    assert naive_winners / experiments > 2 * alpha


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99, 0.999])
def test_the_interval_and_sample_size_use_the_same_normal_quantiles_as_scipy(confidence: float) -> None:
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    low, high = wilson_interval(37, 250, confidence)
    p, n = 37 / 250, 250
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert low == pytest.approx(centre - half, rel=1e-12)
    assert high == pytest.approx(centre + half, rel=1e-12)


@pytest.mark.parametrize(("a", "b"), [((10, 100), (12, 100)), ((50, 400), (80, 400)), ((5, 2000), (400, 2000)), ((1, 3), (2, 3))])
def test_the_p_value_is_scipys_two_sided_normal_tail_even_far_out(a: tuple[int, int], b: tuple[int, int]) -> None:
    from scipy.stats import norm

    pooled = (a[0] + b[0]) / (a[1] + b[1])
    z = (a[0] / a[1] - b[0] / b[1]) / np.sqrt(pooled * (1 - pooled) * (1 / a[1] + 1 / b[1]))
    expected = min(1.0, 2 * float(norm.sf(abs(z))))
    assert two_proportion_p_value(a[0], a[1], b[0], b[1]) == pytest.approx(expected, rel=1e-9, abs=1e-300)
