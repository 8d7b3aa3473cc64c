"""A/B verdicts for steps with variants: per-variant rates with confidence intervals and a fixed-horizon two-proportion test.

Why a fixed horizon: the metrics are recomputed every hour, and a plain significance test read every
hour declares a winner far more often than its alpha promises (each look is another chance for noise
to cross the line). Here the sample size per variant is planned from the baseline rate and the
smallest effect worth detecting, and no winner is declared before every variant has reached it, so
looking at the verdict as often as you like cannot inflate false positives. After the horizon the
verdict is meant to be final: stop splitting traffic and keep the winner.

With more than two variants the best variant is compared with each of the others, with the alpha
split between those comparisons (Bonferroni), and it wins only if it beats every one of them.

Rates and effects are proportions in [0, 1]; the minimum detectable effect is absolute
(0.05 = five percentage points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

import pandas as pd

VerdictState = Literal["winner", "no_difference_yet", "no_difference"]

DEFAULT_MDE = 0.05  # five percentage points: a smaller lift on a reply rate rarely changes a decision
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
# Used when there is no baseline and no data yet: a rate of one half has the largest variance, so the planned n is the safest.
UNINFORMED_BASELINE = 0.5
_STANDARD_NORMAL = NormalDist()  # the standard library's quantile (Wichura AS241) and tails: no numerical stack to import


@dataclass(frozen=True)
class VariantResult:
    """One variant's observed rate, its Wilson interval, and how many more sends it needs to reach the planned horizon."""

    variant: str
    trials: int
    successes: int
    rate: float | None  # None when nothing was sent yet
    ci_low: float
    ci_high: float
    needed_more: int


@dataclass(frozen=True)
class ABVerdict:
    """The outcome of one step's A/B test, ready for a table, a chart or a one-line status."""

    state: VerdictState
    variants: tuple[VariantResult, ...]
    planned_n: int  # sends per variant before a verdict may be given
    p_value: float | None  # the best variant against its strongest rival (the largest of the comparisons' p-values)
    alpha: float  # the level each comparison is held to, after the Bonferroni split
    winner: str | None
    text: str
    metric: str = "reply rate"
    step: str | None = None
    confidence: float = 0.95  # of the per-variant intervals: 1 - alpha, before the split
    needed_more: dict[str, int] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per variant: variant, trials, successes, rate, ci_low, ci_high, needed_more."""
        return pd.DataFrame(
            [(v.variant, v.trials, v.successes, v.rate, v.ci_low, v.ci_high, v.needed_more) for v in self.variants],
            columns=["variant", "trials", "successes", "rate", "ci_low", "ci_high", "needed_more"],
        )


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion: unlike the normal approximation it stays inside [0, 1] and behaves at 0 or n successes."""
    _check_counts(successes, trials)
    if trials == 0:
        return 0.0, 1.0
    z = _STANDARD_NORMAL.inv_cdf(1 - (1 - confidence) / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; the arithmetic would leave a rounding crumb.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == trials else min(1.0, centre + half_width)
    return low, high


def variant_rates(variants: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per variant (columns variant, trials, successes): rate with its Wilson interval, variants summed if repeated."""
    counts = _counts(variants)
    rows = []
    for name, trials, successes in counts:
        low, high = wilson_interval(successes, trials, confidence)
        rows.append((name, trials, successes, successes / trials if trials else None, low, high))
    return pd.DataFrame(rows, columns=["variant", "trials", "successes", "rate", "ci_low", "ci_high"])


def planned_sample_size(baseline_rate: float, minimum_detectable_effect: float, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER) -> int:
    """Sends per variant for a two-sided two-proportion z-test to detect an absolute lift of `minimum_detectable_effect`.

    The classic pooled-variance formula (Fleiss, without continuity correction): baseline 10%, effect 5 points,
    alpha 0.05 and power 0.8 give 686 per variant. If baseline + effect would pass 100%, the effect is taken downwards.
    """
    if not 0.0 <= baseline_rate <= 1.0:
        raise ValueError(f"baseline_rate must be a proportion in [0, 1], got {baseline_rate}")
    if not 0.0 < minimum_detectable_effect < 1.0:
        raise ValueError(f"minimum_detectable_effect must be an absolute difference in (0, 1), got {minimum_detectable_effect}")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got alpha={alpha}, power={power}")
    p1 = baseline_rate
    p2 = p1 + minimum_detectable_effect if p1 + minimum_detectable_effect <= 1.0 else p1 - minimum_detectable_effect
    if p2 < 0.0:
        raise ValueError(f"an effect of {minimum_detectable_effect} cannot be detected around a baseline of {baseline_rate}")
    pooled = (p1 + p2) / 2
    z_alpha = _STANDARD_NORMAL.inv_cdf(1 - alpha / 2)
    z_power = _STANDARD_NORMAL.inv_cdf(power)
    root = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    # Rounded before the ceiling so floating-point noise (686.0000000001) does not cost a whole extra send.
    return max(1, math.ceil(round(root * root / (p2 - p1) ** 2, 6)))


def two_proportion_p_value(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test; 1.0 when there is nothing to compare."""
    _check_counts(successes_a, trials_a)
    _check_counts(successes_b, trials_b)
    if trials_a == 0 or trials_b == 0:
        return 1.0
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0.0:  # every send succeeded, or none did: the variants are indistinguishable
        return 1.0
    z = (successes_a / trials_a - successes_b / trials_b) / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2)))  # 2 x the upper tail, exact far out where 1 - cdf is 0


def verdict(
    variants: pd.DataFrame,
    baseline_rate: float | None = None,
    mde: float = DEFAULT_MDE,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    metric: str = "reply rate",
    step: str | None = None,
) -> ABVerdict:
    """The verdict for one step's variants (columns variant, trials, successes), e.g. delivered and replied from `variant_metrics`.

    Pass `baseline_rate` (the rate you expect without the change, e.g. the previous campaign's) to fix the
    horizon before the test starts. Without it the horizon is planned from the pooled rate of all variants;
    that estimate does not look at the difference between variants (a blinded re-estimate), so it does not
    favour a winner, but the number of sends needed can move a little as data arrives.
    """
    counts = _counts(variants)
    if len(counts) < 2:
        raise ValueError(f"an A/B verdict needs at least two variants, got {len(counts)}")
    comparisons = len(counts) - 1
    corrected_alpha = alpha / comparisons
    total_trials = sum(trials for _, trials, _ in counts)
    if baseline_rate is None:
        baseline_rate = sum(successes for *_, successes in counts) / total_trials if total_trials else UNINFORMED_BASELINE
    planned = planned_sample_size(baseline_rate, mde, corrected_alpha, power)

    results = tuple(
        VariantResult(name, trials, successes, successes / trials if trials else None, *wilson_interval(successes, trials, 1 - alpha),
                      max(0, planned - trials))
        for name, trials, successes in counts
    )
    needed = {r.variant: r.needed_more for r in results}
    ranked = sorted(results, key=lambda r: (-(r.rate or 0.0), r.variant))
    best, runner_up = ranked[0], ranked[1]
    p_value = max(two_proportion_p_value(best.successes, best.trials, other.successes, other.trials) for other in ranked[1:])

    state: VerdictState
    if any(n > 0 for n in needed.values()):
        state, winner = "no_difference_yet", None
        text = f"no difference yet: about {max(needed.values())} more sends per variant needed"
    elif p_value < corrected_alpha:
        state, winner = "winner", best.variant
        text = f"winner: {best.variant} ({metric} {_percent(best.rate)} vs {_percent(runner_up.rate)}, {_p(p_value)})"
    else:
        state, winner = "no_difference", None
        text = f"no difference ({metric} {best.variant} {_percent(best.rate)} vs {runner_up.variant} {_percent(runner_up.rate)}, {_p(p_value)})"
    return ABVerdict(state=state, variants=results, planned_n=planned, p_value=p_value, alpha=corrected_alpha, winner=winner,
                     text=text, metric=metric, step=step, confidence=1 - alpha, needed_more=needed)


def _counts(variants: pd.DataFrame) -> list[tuple[str, int, int]]:
    """(variant, trials, successes) per variant in first-seen order, checked and summed over repeated rows."""
    missing = {"variant", "trials", "successes"} - set(variants.columns)
    if missing:
        raise ValueError(f"variants frame lacks column(s) {sorted(missing)}; it needs variant, trials, successes")
    summed = variants.groupby(variants["variant"].astype(str), sort=False)[["trials", "successes"]].sum()
    counts = [(str(name), int(row.trials), int(row.successes)) for name, row in summed.iterrows()]
    for _, trials, successes in counts:
        _check_counts(successes, trials)
    return counts


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"successes must be between 0 and trials, got {successes} of {trials}")


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _p(p_value: float) -> str:
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"
