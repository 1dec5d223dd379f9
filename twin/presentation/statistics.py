"""Statistics of a comparison, all from :mod:`scipy.stats`: means with intervals, paired or Welch
differences, multiplicity control, and a verdict per cell.

- **Means.** A KPI bounded below by 0 (counts, waits, shares, costs) gets the 95% bootstrap percentile
  interval of its mean (``scipy.stats.bootstrap(method="percentile")``, 2,000 resamples, fixed seed):
  it never goes below 0 because no resampled mean does. Other KPIs get the Student-t interval.
- **Differences** "other minus reference". Runs made with the same root seed and replication count share
  their random numbers replication by replication (common random numbers: the model gives every entity
  and purpose its own stream), so replication *i* of one run is paired with replication *i* of the other:
  ``scipy.stats.ttest_rel`` and its confidence interval. Otherwise the runs are independent samples:
  Welch's ``scipy.stats.ttest_ind(equal_var=False)``. Differences that do not vary across replications
  (identical phases under common random numbers, coverage) are exact and have no p-value.
- **Multiplicity.** The p-values of a table are adjusted together with Benjamini-Hochberg
  (``scipy.stats.false_discovery_control``): a cell is significant when its adjusted p < 0.05, so about
  5% of the cells called significant may be false discoveries, whatever the number of cells.
- **Verdict.** Each KPI has a direction and a practical threshold (:mod:`twin.presentation.kpimeta`):
  "better" / "worse" when significant and at least the threshold; "no practical difference" when the
  interval lies inside ± the threshold (or an exact difference is smaller than it); else "uncertain"
  (more replications would tell). KPIs with no direction say "higher" / "lower".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from twin.presentation.kpimeta import NEUTRAL, KpiMeta

#: Significance level (of the Benjamini-Hochberg adjusted p-values).
ALPHA = 0.05

#: Bootstrap resamples of a mean's interval, and the generator's seed (reports are reproducible).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20050701

BETTER, WORSE, SAME, UNCERTAIN, HIGHER, LOWER, NA = (
    "better", "worse", "no practical difference", "uncertain", "higher", "lower", "n/a")


@dataclass(frozen=True)
class Interval:
    """A mean over replications with its 95% interval.

    Attributes:
        mean: the mean (NaN when no value).
        low, high: the interval (equal to the mean when the values do not vary; NaN when n < 2).
        n: values used.
        method: ``bootstrap`` (percentile), ``t`` (Student), ``exact`` (no variation) or ``none``.
    """

    mean: float
    low: float
    high: float
    n: int
    method: str


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[~np.isnan(x)]


def mean_interval(values: Sequence[float] | np.ndarray, nonnegative: bool = True) -> Interval:
    """Mean and 95% interval of per-replication values (NaNs left out); see the module docstring."""
    x = _clean(values)
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return Interval(nan, nan, nan, 0, "none")
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, nan, nan, 1, "none")
    if np.ptp(x) <= 1e-12 * max(1.0, abs(mean)):
        return Interval(mean, mean, mean, n, "exact")
    if nonnegative:
        res = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=BOOTSTRAP_RESAMPLES,
                              rng=np.random.default_rng(BOOTSTRAP_SEED), vectorized=True)
        return Interval(mean, float(res.confidence_interval.low), float(res.confidence_interval.high), n, "bootstrap")
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, "t")


@dataclass(frozen=True)
class Difference:
    """Other minus reference, with its 95% interval and test.

    Attributes:
        diff: mean difference (paired: mean of the replication-wise differences).
        low, high: its 95% confidence interval (the difference itself when exact; NaN if not computable).
        p_value: two-sided p-value before adjustment (NaN: exact or not computable).
        method: ``paired`` (t-test of replication-wise differences), ``welch``, ``exact`` or ``none``.
        n: pairs (paired) or the smaller sample size.
    """

    diff: float
    low: float
    high: float
    p_value: float
    method: str
    n: int

    def negated(self) -> Difference:
        """The same difference the other way round (reference minus other)."""
        return Difference(-self.diff, -self.high, -self.low, self.p_value, self.method, self.n)


def _exact(diff: float, n: int) -> Difference:
    return Difference(diff, diff, diff, math.nan, "exact", n)


def paired_difference(reference: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray) -> Difference:
    """Replication-wise difference ``other[i] - reference[i]`` (same length; pairs with a NaN left out),
    tested with ``scipy.stats.ttest_rel``."""
    a, b = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, "none", 0)
    d = b - a
    diff = float(d.mean())
    scale = max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    if np.ptp(d) <= 1e-12 * scale:
        return _exact(0.0 if abs(diff) <= 1e-12 * scale else diff, n)
    if n < 2:
        return Difference(diff, math.nan, math.nan, math.nan, "none", n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(b, a)
    ci = res.confidence_interval(0.95)
    return Difference(diff, float(ci.low), float(ci.high), float(res.pvalue), "paired", n)


def welch_difference(reference: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray) -> Difference:
    """Difference of means of independent samples, tested with Welch's ``scipy.stats.ttest_ind``."""
    a, b = _clean(reference), _clean(other)
    n = int(min(a.size, b.size))
    if n == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, "none", 0)
    diff = float(b.mean() - a.mean())
    scale = max(1.0, abs(float(a.mean())), abs(float(b.mean())))
    if np.ptp(a) <= 1e-12 * scale and np.ptp(b) <= 1e-12 * scale:
        return _exact(0.0 if abs(diff) <= 1e-12 * scale else diff, n)
    if a.size < 2 or b.size < 2:
        return Difference(diff, math.nan, math.nan, math.nan, "none", n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.95)
    return Difference(diff, float(ci.low), float(ci.high), float(res.pvalue), "welch", n)


def adjust_p_values(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return [float(v) for v in out]


def verdict(meta: KpiMeta, reference_mean: float, d: Difference, p_adjusted: float) -> str:
    """better / worse / no practical difference / uncertain (higher / lower for KPIs without a direction)."""
    if math.isnan(d.diff):
        return NA
    threshold = meta.threshold(reference_mean)
    if d.method == "exact":
        material = abs(d.diff) >= threshold and d.diff != 0
        significant = material
    else:
        significant = not math.isnan(p_adjusted) and p_adjusted < ALPHA
        material = abs(d.diff) >= threshold
    if significant and material:
        if meta.direction == NEUTRAL:
            return HIGHER if d.diff > 0 else LOWER
        return BETTER if d.diff * meta.direction > 0 else WORSE
    if d.method == "exact" or (not math.isnan(d.low) and -threshold < d.low and d.high < threshold):
        return SAME
    return UNCERTAIN


__all__ = ["ALPHA", "BETTER", "NA", "SAME", "UNCERTAIN", "WORSE", "Difference", "Interval", "adjust_p_values",
           "mean_interval", "paired_difference", "verdict", "welch_difference"]
