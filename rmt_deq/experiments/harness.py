"""The loop every convergence check shares, and the log-log slope fit.

A convergence check measures, for each dimension p, how far an approximation is from the
exact infinite-width kernel, then fits the rate of decay.  The loop over p is written once
(:func:`sweep_dimension`): for each p it draws the same mixture and sample as every other
check (:data:`SAMPLE_SEED_OFFSET`) and calls a "compare at this p" function, which returns
one row.  :func:`fitted_slope` fits log(error) against log(p) by least squares and reports
the slope with its standard error (:class:`SlopeFit`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import numpy as np
from scipy import stats

from rmt_deq._io import json_ready
from rmt_deq._results import frozen_mapping
from rmt_deq._validation import check_positive_finite, check_positive_int
from rmt_deq.data.mixture import GaussianMixture, MixtureSample, default_mixture
from rmt_deq.errors import InvalidParameterError

__all__ = ["Record", "SlopeFit", "fitted_slope", "fitted_slopes", "sweep_dimension",
           "SAMPLE_SEED_OFFSET"]

#: the sample at dimension p is drawn with seed ``seed + SAMPLE_SEED_OFFSET + p`` (the
#: mixture's means with ``seed``): a different stream for every p and for the means
SAMPLE_SEED_OFFSET = 1000

Row = TypeVar("Row")


def _plain(obj: Any) -> Any:
    """Dataclasses and mappings as dicts, tuples as lists (values left for json_ready)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class Record:
    """Mixin of the experiments' frozen result dataclasses: ``to_dict()``."""

    def to_dict(self) -> dict:
        """JSON-ready dictionary, field by field (nested results, mappings and arrays
        included; a non-finite number becomes None)."""
        return json_ready(_plain(self))


@dataclass(frozen=True)
class SlopeFit(Record):
    """Least-squares slope of log(error) against log(p).

    Attributes
    ----------
    value : float
        The slope; NaN when fewer than two points were fitted.
    stderr : float
        Its standard error, sqrt(s^2 / sum (x - mean x)^2) with s^2 the residual variance
        on ``points - 2`` degrees of freedom; NaN when fewer than three points were fitted
        (two points fit exactly and say nothing about the scatter).
    points : int
        Number of (p, error) pairs fitted.
    """

    value: float
    stderr: float
    points: int

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided confidence interval of the slope (Student t with ``points - 2``
        degrees of freedom); (NaN, NaN) when the standard error is not defined."""
        c = check_positive_finite(confidence, "confidence")
        if not c < 1:
            raise InvalidParameterError(f"confidence must lie in (0, 1), got {confidence!r}")
        if not math.isfinite(self.stderr):
            return (math.nan, math.nan)
        half = float(stats.t.ppf(0.5 + 0.5 * c, self.points - 2)) * self.stderr
        return (self.value - half, self.value + half)


def fitted_slope(p: Sequence[float], err: Sequence[float]) -> SlopeFit:
    """Least-squares slope of log(err) against log(p), with its standard error.

    Parameters
    ----------
    p : sequence of positive numbers
    err : sequence of positive numbers, same length

    Returns
    -------
    SlopeFit

    Raises
    ------
    InvalidParameterError
        Lengths differ, or a value is not positive and finite (no logarithm).
    """
    x = np.asarray(p, dtype=float).ravel()
    y = np.asarray(err, dtype=float).ravel()
    if x.shape != y.shape:
        raise InvalidParameterError(
            f"p and err must have the same length, got {x.size} and {y.size}")
    for name, v in (("p", x), ("err", y)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise InvalidParameterError(
                f"{name} must be positive and finite to fit log(err) against log(p), got "
                f"{v.tolist()!r:.200}")
    n = int(x.size)
    if n < 2:
        return SlopeFit(math.nan, math.nan, n)
    lx, ly = np.log(x), np.log(y)
    coef = np.polyfit(lx, ly, 1)
    stderr = math.nan
    if n > 2:
        resid = ly - np.polyval(coef, lx)
        spread = float(np.sum((lx - lx.mean()) ** 2))
        stderr = math.sqrt(float(resid @ resid) / (n - 2) / spread)
    return SlopeFit(float(coef[0]), stderr, n)


def fitted_slopes(p: Sequence[float],
                  series: Mapping[str, Sequence[float]]) -> Mapping[str, SlopeFit]:
    """:func:`fitted_slope` of every named error series against p (read-only mapping)."""
    return frozen_mapping({name: fitted_slope(p, err) for name, err in series.items()})


def sweep_dimension(
    compare: Callable[[int, GaussianMixture, MixtureSample], Row],
    ps: Iterable[int],
    *,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    describe: Callable[[Row], str] | None = None,
    progress: Callable[[str], Any] | None = None,
) -> tuple[Row, ...]:
    """One row per dimension p: ``compare(p, mixture, sample)`` on the standard data.

    For each p: ``mixture = default_mixture(p, K, rng=seed)``
    (:func:`rmt_deq.data.mixture.default_mixture`, docs/theory.md §1) and
    ``sample = mixture.sample(round(ratio * p), rng=seed + SAMPLE_SEED_OFFSET + p)``, so
    every check compares its kernels on the same data.

    Parameters
    ----------
    compare : callable (p, mixture, sample) -> row
        The measurement at one p.
    ps : iterable of int
        The dimensions, in order (at least one).
    K : int
        Number of classes.
    ratio : float
        n / p.
    seed : int
        Non-negative seed of the mixture (and, offset by p, of the sample).
    describe : callable row -> str, optional
        One line about a row, passed to ``progress``.
    progress : callable, optional
        Called with ``describe(row)`` after each p.

    Returns
    -------
    tuple of rows

    Raises
    ------
    InvalidParameterError
        No dimension, a p that is not a positive integer, a bad ratio or seed.
    """
    ratio = check_positive_finite(ratio, "ratio")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
    rows = []
    for p in ps:
        p = check_positive_int(p, "p")
        mixture = default_mixture(p, K, rng=seed)
        sample = mixture.sample(int(round(ratio * p)), rng=seed + SAMPLE_SEED_OFFSET + p)
        row = compare(p, mixture, sample)
        rows.append(row)
        if progress and describe is not None:
            progress(describe(row))
    if not rows:
        raise InvalidParameterError("ps must hold at least one dimension p")
    return tuple(rows)
