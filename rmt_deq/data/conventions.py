"""The data conventions, and the checks where data meets the mixture theory.

The package's units (docs/theory.md §1): the columns of X (p x n) are the samples and,
for a sample of class a,

    x_i = (mu_a + omega_i) / sqrt(p),    omega_i ~ N(0, C_a),

so ``means[a] = mu_a`` is the class mean of sqrt(p) x_i (||mu_a|| = O(1)), ``covs[a] = C_a``
is the covariance of sqrt(p) x_i (||C_a|| = O(1)), and ||x_i||^2 = O(1).  The data scale is

    tau0^2 = tr(C°)/p,    C° = sum_a c_a C_a,   c_a = n_a / n.

* :func:`data_scale` is the one function that decides tau0 for every kernel of the
  package (exact, sampled, surrogate, explicit networks) and says where it came from;
* :func:`check_statistics` refuses class means/covariances that contradict the data
  they are given with (wrong units, transposed arrays, permuted rows);
* :func:`scale_note` says when X itself looks unscaled (columns of squared norm ~ p).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from rmt_deq._validation import as_data_matrix, as_real_array
from rmt_deq.data._scale import (CONVENTION, SCALE_P_MIN, SOURCE_GIVEN, SOURCE_MIXTURE,
                                 SOURCE_ONE_SAMPLE, SOURCE_PLUGIN, SOURCE_POOLED,
                                 SOURCE_SOLUTION, DataScale, note_of, resolve_scale)
from rmt_deq.errors import InconsistentDataError, ShapeMismatchError

__all__ = ["DataScale", "data_scale", "scale_note", "check_statistics", "CONVENTION",
           "SOURCE_GIVEN", "SOURCE_SOLUTION", "SOURCE_MIXTURE", "SOURCE_PLUGIN",
           "SOURCE_POOLED", "SOURCE_ONE_SAMPLE"]

#: tail parameter of the consistency checks: each Gaussian tail bound fails with
#: probability at most exp(-_TAIL_X) (about 4e-18)
_TAIL_X = 40.0
#: safety factor on the fluctuation part of every tolerance (non-Gaussian data, model error)
_SAFETY = 2.0
#: relative floor of every tolerance (statistics known to about 1% are never refused)
_FLOOR = 1e-2


def scale_note(X: Any) -> str | None:
    """A sentence when X looks unscaled (or doubly scaled), else None.

    Rule: with m2 the mean squared column norm, the theory's units give m2 = O(1) and
    forgetting the 1/sqrt(p) gives m2 = O(p); m2 above the geometric midpoint sqrt(p) is
    reported as "unscaled" and m2 below 1/sqrt(p) (the mirror case, x_i divided by p) as
    "scaled twice".  Only for p >= 16, where the two cases are told apart by a factor of
    at least 4.  The exact kernels are valid at any scale; the surrogates and spectra are
    computed at the data's own tau0 (their expansion is in Sigma_ij / tau^2, which does not
    depend on the scale, and for the ReLU family they scale exactly), so this is a note,
    recorded in their results, not a refusal (docs/theory.md §1).
    """
    return note_of(as_data_matrix(X))


def data_scale(X: Any, labels: Any = None, *, tau0: Any = None,
               statistics: Any = None) -> DataScale:
    """The data scale tau0 = sqrt(tr(C°)/p) used by every kernel, and its source.

    Exactly one source is used, in this order of what is given (docs/theory.md §1):

    * ``tau0`` (a number, or a :class:`DataScale` passed through): ``"given"``;
    * ``statistics`` (:class:`~rmt_deq.data.statistics.MixtureStatistics` of a known
      mixture): its tau0, ``"mixture statistics"``;
    * ``labels``: the plug-in estimate sum_a c_a tr(S_a)/p with S_a the unbiased class
      sample covariance of sqrt(p) x_i (the tau0 of
      :func:`~rmt_deq.data.statistics.plugin_statistics`, to the last bit), ``"plug-in
      from labels"``;
    * nothing: without labels the class means cannot be separated from the noise; the
      fallback treats all samples as one class, tau0^2 = sum_i ||x_i - xbar||^2 / (n - 1)
      (:data:`SOURCE_POOLED`; it exceeds tr(C°)/p by sum_a c_a ||mu_a - mubar||^2 / p), or
      ||x_1||^2 for a single sample (:data:`SOURCE_ONE_SAMPLE`).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,), optional
    tau0 : float or DataScale, optional
    statistics : MixtureStatistics, optional

    Returns
    -------
    DataScale
        With the :func:`scale_note` of X.

    Raises
    ------
    InvalidParameterError
        More than one of labels / tau0 / statistics; tau0 not finite and > 0; a class
        with a single sample (the plug-in needs two per class); data with no spread.
    """
    Xa = as_data_matrix(X)
    if isinstance(tau0, DataScale) and labels is None and statistics is None:
        return tau0
    t, source = resolve_scale(Xa, labels, tau0, statistics)
    return DataScale(t, source, note_of(Xa))


# ---------------------------------------------------------------------------------------
# consistency of given statistics with the data
# ---------------------------------------------------------------------------------------
def _near(ratio: float, target: float) -> bool:
    """ratio within a factor 2 of target (both > 0)."""
    return ratio > 0 and abs(math.log(ratio / target)) < math.log(2.0)


def _check_shapes(p: int, n: int, K: int, means: np.ndarray, covs: np.ndarray) -> None:
    tr = (f"X looks transposed: X must be p x n with samples as columns (pass X.T); here "
          f"X has p = {p} rows and n = {n} columns")
    if means.ndim != 2 or means.shape != (K, p):
        if means.ndim == 2 and means.shape == (K, n) and n != p:
            raise ShapeMismatchError(f"means have n = {n} columns instead of p = {p}: {tr}")
        if means.ndim == 2 and means.shape == (p, K) and p != K:
            raise ShapeMismatchError(
                f"means have shape {means.shape} = (p, K): they look transposed; pass "
                f"means.T (one row mu_a per class, in sorted label order)")
        raise ShapeMismatchError(
            f"means must be K x p = {K} x {p} (one row per class, in sorted label order); "
            f"got shape {means.shape}")
    if covs.shape in ((K, p), (K, p, p)):
        return
    if covs.shape in ((K, n), (K, n, n)) and n != p:
        raise ShapeMismatchError(f"covs have shape {covs.shape}, sized by n = {n}: {tr}")
    raise ShapeMismatchError(
        f"covs must be K x p = {K} x {p} (diagonals) or K x p x p; got shape {covs.shape}")


def _cov_summaries(C: np.ndarray) -> tuple[float, float, float]:
    """tr C, tr C^2 and an upper bound of the largest eigenvalue (Gershgorin, Frobenius)."""
    if C.ndim == 1:
        return float(C.sum()), float(C @ C), float(np.max(np.abs(C)))
    fro2 = float(np.einsum("ij,ij->", C, C))
    gersh = float(np.max(np.sum(np.abs(C), axis=1)))
    return float(np.trace(C)), fro2, min(gersh, math.sqrt(fro2))


def check_statistics(X: Any, codes: Any, means: Any, covs: Any, *,
                     classes: Any = None) -> None:
    """Refuse class means/covariances that contradict the labelled data they come with.

    For each class a (n_a samples, y_i = sqrt(p) x_i), two statistics of the data are
    compared with their expectation under the given mu_a, C_a (module docstring):

    * the class average ybar_a: ||ybar_a - mu_a||^2 has mean tr(C_a)/n_a; it must not
      exceed tr(C_a)/n_a + 2 (2 sqrt(x tr C_a^2) + 2 x lambda_max(C_a)) / n_a, the
      Gaussian tail bound (Laurent-Massart) at x = 40 with a safety factor 2 on the
      fluctuation part, tr C_a replaced by the class's empirical trace when that is larger
      (so that too-small covariances are blamed on the covariances), plus 1% of
      ||mu_a||^2;
    * the mean of ||y_i||^2 over the class, whose expectation is tr C_a + ||mu_a||^2: it
      must agree to 2 (sqrt(2x var/n_a) + 2 x lambda_max(C_a)/n_a) + 1% of the expectation,
      where var = the larger of the Gaussian value 2 tr C_a^2 + 4 mu_a^T C_a mu_a (split
      into its two tail terms) and (heavy tails) the class's empirical squared coefficient
      of variation of ||y_i||^2 times the squared expectation.

    For Gaussian data with the given statistics each bound fails with probability below
    exp(-40); lambda_max is bounded above (Gershgorin / Frobenius), which only widens them.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    codes : array_like of int, shape (n,)
        Class of each column in 0..K-1 (sorted order of the original labels).
    means : array_like, shape (K, p)
    covs : array_like, shape (K, p) or (K, p, p)
    classes : array_like, shape (K,), optional
        The original labels, for the messages.

    Raises
    ------
    ShapeMismatchError
        Shapes that disagree; "X looks transposed" when means/covs are sized by n, "means
        look transposed" for a p x K array.
    InvalidParameterError
        Complex, boolean or object arrays (as everywhere).
    InconsistentDataError
        A statistic off beyond its tolerance; the message names each class and statistic,
        the factor by which it is off and the likely fix (means divided by sqrt(p), covs
        divided by p, X unscaled, rows of means permuted).
    """
    Xa = as_data_matrix(X)
    p, n = Xa.shape
    codes = np.asarray(codes)
    if codes.ndim != 1 or codes.shape[0] != n or codes.dtype.kind not in "iu" \
            or codes.min() < 0:
        hint = (f"; X looks transposed: the codes have p = {p} entries, the number of rows "
                f"of X, but X must be p x n with samples as columns (pass X.T)"
                if codes.ndim == 1 and codes.shape[0] == p != n else "")
        raise ShapeMismatchError(f"codes must be n = {n} class indices in 0..K-1; got "
                                 f"shape {codes.shape}, dtype {codes.dtype}{hint}")
    K = int(codes.max()) + 1
    mu = as_real_array(means, "means")
    cv = as_real_array(covs, "covs")
    _check_shapes(p, n, K, mu, cv)
    names = list(range(K)) if classes is None else list(np.asarray(classes).tolist())
    y_norm2 = p * np.einsum("ij,ij->j", Xa, Xa)            # ||sqrt(p) x_i||^2
    m2 = float(np.mean(y_norm2)) / p
    unscaled = p >= SCALE_P_MIN and m2 > math.sqrt(p)
    doubled = p >= SCALE_P_MIN and m2 < 1.0 / math.sqrt(p)
    sq_p = math.sqrt(p)
    x, S = _TAIL_X, _SAFETY
    ybar = np.stack([sq_p * Xa[:, codes == a].mean(axis=1) for a in range(K)])
    problems: list[str] = []
    for a in range(K):
        idx = codes == a
        na = int(idx.sum())
        ma = mu[a]
        trC, trC2, lam = _cov_summaries(cv[a])
        mu2 = float(ma @ ma)
        muCmu = float(ma @ (cv[a] * ma if cv.ndim == 2 else cv[a] @ ma))
        ya = y_norm2[idx]
        emp_tr = (float(np.sum((sq_p * Xa[:, idx] - ybar[a][:, None]) ** 2)) / (na - 1)
                  if na >= 2 else trC)
        # ---- class average against mu_a
        if trC > 0:
            r = max(1.0, emp_tr / trC)
            tr_e, tr2_e, lam_e = trC * r, trC2 * r * r, lam * r
        else:
            tr_e, tr2_e, lam_e = emp_tr, emp_tr ** 2, emp_tr
        d2 = float(np.sum((ybar[a] - ma) ** 2))
        tol_m = (tr_e + S * (2.0 * math.sqrt(x * tr2_e) + 2.0 * x * lam_e)) / na \
            + _FLOOR * mu2
        if d2 > tol_m:
            problems.append(_means_problem(a, names[a], ybar, mu, d2, tol_m, na, p,
                                           unscaled, doubled))
        # ---- mean squared norm against tr C_a + ||mu_a||^2
        e = trC + mu2
        mbar = float(ya.mean())
        dev = math.sqrt(2.0 * x * 2.0 * trC2 / na) + math.sqrt(2.0 * x * 4.0 * max(muCmu, 0)
                                                             / na)
        if na >= 2 and mbar > 0:
            # heavy tails: the class's own relative spread of ||y_i||^2, applied to the
            # expectation (so that data on the wrong scale does not widen its tolerance)
            cv2 = float(np.var(ya, ddof=1)) / mbar ** 2
            dev = max(dev, math.sqrt(2.0 * x * cv2 * e * e / na))
        tol_t = S * (dev + 2.0 * x * lam / na) + _FLOOR * e
        if abs(mbar - e) > tol_t:
            q = emp_tr / trC if (na >= 2 and trC > 0) else mbar / e if e > 0 else math.inf
            problems.append(_trace_problem(names[a], mbar, e, tol_t, q, p, unscaled, doubled))
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more"
                                           if len(problems) > 4 else "")
        raise InconsistentDataError(
            f"the given means/covs contradict X ({CONVENTION}): {shown}")


def _means_problem(a: int, name: Any, ybar: np.ndarray, mu: np.ndarray, d2: float,
                   tol: float, na: int, p: int, unscaled: bool, doubled: bool) -> str:
    head = (f"class {name!r}: ||mean of sqrt(p) x_i - means[{a}]|| = {math.sqrt(d2):.4g}, "
            f"expected at most {math.sqrt(tol):.3g} for n_a = {na}")
    ma = mu[a]
    mu2 = float(ma @ ma)
    if mu2 > 0:
        s = float(ybar[a] @ ma) / mu2
        if _near(s, math.sqrt(p)):
            if unscaled:
                return (f"{head}: the class averages are about sqrt(p) = {math.sqrt(p):.3g} "
                        f"times the means and X looks unscaled; divide X by sqrt(p)")
            return (f"{head}: the means look divided by sqrt(p) (the class means of the "
                    f"columns of X; factor {s:.3g}); pass means * sqrt(p)")
        if _near(s, 1.0 / math.sqrt(p)):
            if doubled:
                return (f"{head}: the class averages are about 1/sqrt(p) times the means "
                        f"and X looks scaled twice; multiply X by sqrt(p)")
            return (f"{head}: the means look multiplied by sqrt(p) (factor {s:.3g}); pass "
                    f"means / sqrt(p)")
        others = [b for b in range(mu.shape[0])
                  if b != a and float(np.sum((ybar[a] - mu[b]) ** 2)) <= tol]
        if others:
            return (f"{head}: it matches means[{others[0]}] instead, so the rows of means "
                    f"look permuted; row a must be the mean of the a-th label in sorted "
                    f"order")
        return f"{head} (best scale factor between them {s:.3g}; ||means[{a}]|| = " \
               f"{math.sqrt(mu2):.4g})"
    return f"{head}, but means[{a}] = 0"


def _trace_problem(name: Any, mbar: float, e: float, tol: float, q: float, p: int,
                   unscaled: bool, doubled: bool) -> str:
    """``q``: the class's empirical tr(C_a) over the given one (mbar / e for one sample)."""
    lo, hi = max(0.0, 1.0 - tol / e) if e > 0 else 0.0, 1.0 + tol / e if e > 0 else math.inf
    head = (f"class {name!r}: the mean of ||x_i||^2 is {mbar / p:.4g} but (tr C_a + "
            f"||mu_a||^2)/p = {e / p:.4g} from means/covs (ratio {mbar / e if e > 0 else math.inf:.4g}, "
            f"allowed {lo:.3g} to {hi:.3g}); the class covariance of sqrt(p) x_i has a trace "
            f"{q:.3g} times tr(covs[a])")
    if math.isfinite(q) and _near(q, p):
        if unscaled:
            return f"{head} (~ p): X looks unscaled; divide X by sqrt(p)"
        return (f"{head} (~ p): covs look divided by p (the covariance of the columns of X); "
                f"pass covs * p")
    if math.isfinite(q) and _near(q, 1.0 / p):
        if doubled:
            return f"{head} (~ 1/p): X looks scaled twice; multiply X by sqrt(p)"
        return f"{head} (~ 1/p): covs look multiplied by p; pass covs / p"
    return head
