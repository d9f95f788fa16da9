"""Scoring: olympic mean (as the MLPerf result summarizer computes it) and the convergence test of the MLCommons
rcp_checker (reference convergence points, trimmed mean, one-sided t-test) for training; the median and its
coefficient of variation for inference. Plain Python: no numpy, no scipy.
"""
from __future__ import annotations

import math
import statistics
from functools import lru_cache


def olympic_mean(scores: list[float], failed: int, drop: int = 1) -> float | None:
    """Mean of the successful runs' scores after dropping the `drop` fastest and the `drop - failed` slowest:
    a failed run counts as one of the slowest. None when more than `drop` runs failed or nothing is left.
    This is mlperf_logging.result_summarizer's _compute_olympic_average: scores[drop : n - (drop - failed)]."""
    if failed > drop:
        return None
    kept = sorted(scores)[drop:len(scores) - (drop - failed)]
    return sum(kept) / len(kept) if kept else None


def trimmed_mean(values: list[float], trim: int = 1) -> float:
    kept = sorted(values)[trim:len(values) - trim]
    return sum(kept) / len(kept) if kept else math.nan


# --- Student's t distribution (for the one-sided test) ----------------------------------------------------------
def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's continued fraction for the incomplete beta function (Numerical Recipes, betacf)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t < 0 else 1.0 - tail


def one_sided_p(mean1, std1, n1, mean2, std2, n2) -> float:
    """p-value that mean1 < mean2 (pooled-variance t-test), as rcp_checker derives it from scipy's two-sided
    ttest_ind_from_stats: for t < 0, p/2; else 1 - p/2, which is the t CDF at t."""
    df = n1 + n2 - 2
    pooled = ((n1 - 1) * std1 ** 2 + (n2 - 1) * std2 ** 2) / df
    t = (mean1 - mean2) / math.sqrt(pooled * (1.0 / n1 + 1.0 / n2))
    return t_cdf(t, df)


@lru_cache(maxsize=256)  # one reference per benchmark: computed once, not once per system
def min_acceptable_mean(ref_mean: float, ref_std: float, n_ref: int, n_subm: int, alpha: float,
                        tolerance: float = 1e-4) -> float:
    """The smallest submission mean that a one-sided t-test at level alpha does not call faster than the
    reference: rcp_checker's binary search between 0 and the reference mean (same sample sizes, same order)."""
    if ref_std == 0:
        return ref_mean
    low, high = 0.0, ref_mean
    mid = (low + high) / 2
    while high - low > tolerance:
        if one_sided_p(mid, ref_std, n_ref, ref_mean, ref_std, n_subm) > alpha:
            high = mid
        else:
            low = mid
        mid = (low + high) / 2
    return mid


def convergence_test(reference: list[float], submission: list[float], required_runs: int,
                     alpha: float = 0.05) -> dict:
    """Compare samples (or epochs) to target with the reference convergence points, as rcp_checker does.

    reference: one value per reference seed. submission: one value per run, math.inf for a failed run.
    The reference mean is the trimmed mean (drop the fastest and the slowest), its spread the population stdev of
    all points; a submission whose trimmed mean is below min_acceptable_mean fails. A submission faster than the
    reference mean but within that bound has its score scaled by reference_mean / submission_mean (>= 1).
    """
    ref_mean = trimmed_mean(reference)
    ref_std = statistics.pstdev(reference)
    n_ref, n_subm = len(reference) - 2, required_runs - 2
    subm_mean = trimmed_mean(submission)
    if n_ref + n_subm - 2 < 1:
        bound = ref_mean
    else:
        bound = min_acceptable_mean(ref_mean, ref_std, n_ref, n_subm, alpha)
    passed = subm_mean >= bound
    scale = ref_mean / subm_mean if passed and subm_mean < ref_mean else 1.0
    return {"reference_mean": ref_mean, "reference_stdev": ref_std, "min_acceptable_mean": bound,
            "submission_mean": subm_mean if math.isfinite(subm_mean) else None, "passed": passed,
            "alpha": alpha, "score_scale": scale}


def score_result(result, drop: int) -> None:
    """Set result.score_minutes (olympic mean x scaling factor) when the result has no error; a result left without
    a score gets an error saying why. Runs whose score_ms is None (errors, failed) count as failed."""
    scores = [run.score_ms for run in result.runs if run.score_ms is not None]
    failed = sum(1 for run in result.runs if run.score_ms is None)
    olympic = olympic_mean(scores, failed, drop)
    if olympic is None and not result.errors:
        result.errors.append(f"no olympic score: {len(scores)} successful runs, {failed} failed")
    if olympic is not None and not result.errors:
        result.score_minutes = olympic / 60000 * result.scaling_factor


# --- inference --------------------------------------------------------------------------------------------------
def median_and_cv(values: list[float]) -> tuple[float, float | None]:
    """(median, coefficient of variation) of the runs' performance metric. The coefficient of variation is the
    population standard deviation over the mean (every run of the result is measured, none is a sample of more);
    None when the mean is 0."""
    mean = statistics.fmean(values)
    return statistics.median(values), (statistics.pstdev(values) / abs(mean) if mean else None)


def unit_of(metric: str | None) -> str:
    """The unit of an inference performance metric, for the reports: tokens_per_second -> tokens/s,
    p90_latency_ms -> ms."""
    if not metric:
        return ""
    if metric.endswith("_per_second"):
        return metric[:-len("_per_second")] + "/s"
    return metric.rsplit("_", 1)[-1]
