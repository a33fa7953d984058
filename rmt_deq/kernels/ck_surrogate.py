"""The RMT surrogate of the Implicit-CK (theory.md section 4).

For mixture data (X is p x n, columns are samples), in the preactivation form::

    Sigma~ = alpha1 X^T X + V A V^T + (tau^2 - tau0^2 alpha1) I
    A      = [[alpha2 t t^T + alpha3 T, alpha2 t],
              [alpha2 t^T,             alpha2 ]]          ((K+1) x (K+1), T uncentred)
    G~     = (Sigma~ - sb X^T X) / sa

with V = [J/sqrt(p), psi] (n x (K+1)) and t, T, tau0 the section-1 statistics
(:mod:`rmt_deq.data.mixture`).  Both forms are ``c1 X^T X + V A V^T + c0 I``; the coefficients
are exposed as :class:`SurrogateCoefficients` (used by the spectral code).

``T_convention="centred"`` reproduces the published formula, which has the centred T°
in place of T; in the J block it differs from the uncentred surrogate by exactly
alpha3 J (T - T°) J^T / p, i.e. it loses the constant block alpha3 s2 (1/p) 1 1^T and the
cross terms tr(C° C_b°)/p + tr(C_a° C°)/p (O(1) in operator norm; see theory.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rmt_deq._validation import as_data_matrix, as_labels, check_choice
from rmt_deq.activations import ActivationLike
from rmt_deq.data.conventions import SOURCE_MIXTURE, SOURCE_PLUGIN, SOURCE_SOLUTION, scale_note
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.data.mixture import (GaussianMixture, MixtureSample, MixtureStatistics, PluginEstimate,
                      build_V, plugin_statistics)

__all__ = [
    "SurrogateCoefficients",
    "CKSurrogate",
    "surrogate_coefficients",
    "ck_surrogate",
    "mixture_ck_surrogate",
    "plugin_ck_surrogate",
    "TAU0_RTOL",
]

_FORMS = ("G", "Sigma")
_T_CONVENTIONS = ("uncentred", "centred")

#: relative tolerance for solution.tau0 vs stats.tau0
TAU0_RTOL = 1e-6


@dataclass(frozen=True, eq=False)
class SurrogateCoefficients:
    """The surrogate as ``c1 X^T X + V A V^T + c0 I``.

    Attributes
    ----------
    c1 : float
        Coefficient of X^T X: alpha1 (Sigma form) or (alpha1 - sb)/sa (G form).
    A : ndarray, shape (K+1, K+1)
        Symmetric low-rank coefficient matrix (the section-4 A, divided by sa in the G form).
        Blocks: ``A[:K, :K]`` (J block, multiplies J J^T/p), ``A[:K, K]`` (J-psi),
        ``A[K, K]`` (psi-psi).
    c0 : float
        Coefficient of I: tau^2 - tau0^2 alpha1 (Sigma form) or that divided by sa (G form).
    form : {"G", "Sigma"}
    T_convention : {"uncentred", "centred"}
    sa, sb : float
        The variances of the solution (G = (Sigma - sb X^T X)/sa).
    """

    c1: float
    A: np.ndarray
    c0: float
    form: str
    T_convention: str
    sa: float
    sb: float

    @property
    def K(self) -> int:
        return int(self.A.shape[0]) - 1

    def matrix(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Build c1 X^T X + V A V^T + c0 I (n x n, exactly symmetric).

        Parameters
        ----------
        X : ndarray, shape (p, n)
            Data; columns are samples.
        V : ndarray, shape (n, K+1)
            [J/sqrt(p), psi].
        """
        X = np.asarray(X, dtype=float)
        V = np.asarray(V, dtype=float)
        n = X.shape[1]
        if V.shape != (n, self.K + 1):
            raise ShapeMismatchError(
                f"V must have shape (n, K+1) = ({n}, {self.K + 1}); got {V.shape}")
        M = self.c1 * (X.T @ X) + (V @ self.A) @ V.T
        M = 0.5 * (M + M.T)
        M[np.diag_indices(n)] += self.c0
        return M


def _check_solution(solution: Any) -> FixedPointSolution:
    if not isinstance(solution, FixedPointSolution):
        raise InvalidParameterError(
            f"solution must be a FixedPointSolution (from solve_four_equations), got "
            f"{type(solution).__name__}")
    return solution


def _check_tau0(solution: FixedPointSolution, stats: MixtureStatistics,
                allow_tau0_mismatch: bool) -> None:
    if allow_tau0_mismatch:
        return
    if abs(solution.tau0 - stats.tau0) > TAU0_RTOL * stats.tau0:
        raise InvalidParameterError(
            f"the fixed point was solved at tau0 = {solution.tau0:.10g} but the data "
            f"statistics have tau0 = sqrt(tr C°/p) = {stats.tau0:.10g}; re-solve with "
            f"solve_four_equations(activation, sa, tau0=stats.tau0, sb=sb), or pass "
            f"allow_tau0_mismatch=True to use the solution as is")


def surrogate_coefficients(solution: FixedPointSolution, stats: MixtureStatistics, *,
                           form: str = "G", T_convention: str = "uncentred",
                           allow_tau0_mismatch: bool = False) -> SurrogateCoefficients:
    """Coefficients (c1, A, c0) of the section-4 surrogate.

    Parameters
    ----------
    solution : FixedPointSolution
        The four-equation solution, solved at ``tau0 = stats.tau0``.
    stats : MixtureStatistics
        Exact (:meth:`GaussianMixture.statistics`) or plug-in (:func:`plugin_statistics`).
    form : {"G", "Sigma"}
        "Sigma": c1 = alpha1, A as in theory.md, c0 = tau^2 - tau0^2 alpha1.
        "G": (Sigma~ - sb X^T X)/sa, i.e. c1 = (alpha1 - sb)/sa, A/sa, c0/sa.
    T_convention : {"uncentred", "centred"}
        "uncentred" (correct): T_ab = tr(C_a C_b)/p.  "centred": the published formula with
        T°_ab = tr(C_a° C_b°)/p (for comparisons only).
    allow_tau0_mismatch : bool
        If False (default) a solution whose tau0 differs from stats.tau0 by more than
        ``TAU0_RTOL`` (relative) raises.  If True the solution's own (tau, tau0) pair is
        used in c0 = tau^2 - tau0^2 alpha1 (the self-consistent pair of the solver).

    Raises
    ------
    InvalidParameterError
        solution not a FixedPointSolution, or tau0 mismatch.
    UnknownOptionError
        unknown form / T_convention.
    """
    check_choice(form, "form", _FORMS)
    check_choice(T_convention, "T_convention", _T_CONVENTIONS)
    sol = _check_solution(solution)
    if not isinstance(stats, MixtureStatistics):
        raise InvalidParameterError(
            f"stats must be MixtureStatistics, got {type(stats).__name__}")
    _check_tau0(sol, stats, allow_tau0_mismatch)
    K = stats.K
    t = np.asarray(stats.t, dtype=float)
    T = np.asarray(stats.T if T_convention == "uncentred" else stats.T_centred, dtype=float)
    a1, a2, a3 = float(sol.alpha1), float(sol.alpha2), float(sol.alpha3)
    A = np.empty((K + 1, K + 1))
    A[:K, :K] = a2 * np.outer(t, t) + a3 * T
    A[:K, K] = a2 * t
    A[K, :K] = a2 * t
    A[K, K] = a2
    A = 0.5 * (A + A.T)
    c1 = a1
    c0 = float(sol.tau) ** 2 - float(sol.tau0) ** 2 * a1
    if form == "G":
        c1 = (a1 - sol.sb) / sol.sa
        A = A / sol.sa
        c0 = c0 / sol.sa
    A.setflags(write=False)
    return SurrogateCoefficients(c1=float(c1), A=A, c0=float(c0), form=form,
                                 T_convention=T_convention, sa=float(sol.sa),
                                 sb=float(sol.sb))


def _codes_for(labels: Any, n: int, K: int) -> np.ndarray:
    """Class codes 0..K-1: integer labels already in range are used as is (mixture samples);
    anything else is mapped in sorted order of the distinct labels (as plugin_statistics)."""
    lab = np.asarray(labels)
    if lab.ndim == 1 and lab.shape[0] == n and np.issubdtype(lab.dtype, np.integer) \
            and n > 0 and lab.min() >= 0 and lab.max() < K:
        return lab.astype(np.int64)
    codes, classes = as_labels(labels, n)
    if classes.size != K:
        raise ShapeMismatchError(
            f"labels have {classes.size} distinct classes but the statistics have K = {K}")
    return codes.astype(np.int64)


def ck_surrogate(X: Any, labels: Any, solution: FixedPointSolution, stats: MixtureStatistics,
                 psi: Any, *, form: str = "G", T_convention: str = "uncentred",
                 allow_tau0_mismatch: bool = False) -> np.ndarray:
    """The section-4 surrogate matrix G~ (or Sigma~), n x n.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Class of each column: integers in 0..K-1, or any labels (mapped in sorted order,
        as :func:`~rmt_deq.data.mixture.plugin_statistics` does).
    solution : FixedPointSolution
        Solved at ``tau0 = stats.tau0``.
    stats : MixtureStatistics
        Section-1 statistics for this sample (p, class sizes must match X and labels).
    psi : array_like, shape (n,)
        psi_i = (||omega_i||^2 - tr C_a)/p (exact, :meth:`GaussianMixture.psi`, or plug-in).
    form : {"G", "Sigma"}
    T_convention : {"uncentred", "centred"}
    allow_tau0_mismatch : bool
        See :func:`surrogate_coefficients`.

    Returns
    -------
    ndarray, shape (n, n)

    Raises
    ------
    ShapeMismatchError
        X / labels / psi / stats disagree on p, n, K or the class sizes.
    NonFiniteInputError
        NaN/inf in X or psi.
    InvalidParameterError
        tau0 mismatch (see :func:`surrogate_coefficients`).
    """
    X = as_data_matrix(X)
    p, n = X.shape
    if not isinstance(stats, MixtureStatistics):
        raise InvalidParameterError(
            f"stats must be MixtureStatistics, got {type(stats).__name__}")
    if stats.p != p:
        raise ShapeMismatchError(f"X has p = {p} rows but the statistics are for p = {stats.p}")
    codes = _codes_for(labels, n, stats.K)
    counts = np.bincount(codes, minlength=stats.K)
    if not np.array_equal(counts, np.asarray(stats.sizes)):
        raise ShapeMismatchError(
            f"class sizes of the labels {counts.tolist()} differ from those of the "
            f"statistics {np.asarray(stats.sizes).tolist()} (C° uses the sample proportions)")
    coef = surrogate_coefficients(solution, stats, form=form, T_convention=T_convention,
                                  allow_tau0_mismatch=allow_tau0_mismatch)
    V = build_V(codes, psi, p, stats.K)
    return coef.matrix(X, V)


@dataclass(frozen=True, eq=False)
class CKSurrogate:
    """Both forms of the section-4 surrogate for one data set.

    Attributes
    ----------
    G, Sigma : ndarray, shape (n, n)
        G~ and Sigma~ = sa G~ + sb X^T X.
    coefficients_G, coefficients_Sigma : SurrogateCoefficients
    V : ndarray, shape (n, K+1)
        [J/sqrt(p), psi].
    psi : ndarray, shape (n,)
    codes : ndarray of int, shape (n,)
    statistics : MixtureStatistics
    solution : FixedPointSolution
    T_convention : str
    plugin : PluginEstimate or None
        The plug-in estimate when the statistics were estimated from the data.
    notes : tuple of str
        Remarks about the data, e.g. that X looks unscaled
        (:func:`rmt_deq.data.conventions.scale_note`); empty when there are none.
    """

    G: np.ndarray
    Sigma: np.ndarray
    coefficients_G: SurrogateCoefficients
    coefficients_Sigma: SurrogateCoefficients
    V: np.ndarray
    psi: np.ndarray
    codes: np.ndarray
    statistics: MixtureStatistics
    solution: FixedPointSolution
    T_convention: str
    plugin: PluginEstimate | None = None
    notes: tuple = ()

    @property
    def tau0(self) -> float:
        """The data scale of the solution (tau0 = sqrt(tr C°/p) of the statistics)."""
        return float(self.solution.tau0)

    @property
    def tau0_source(self) -> str:
        """Where tau0 came from (same vocabulary as :func:`rmt_deq.data.conventions.data_scale`)."""
        return _tau0_source(self.solution.tau0, self.statistics, self.plugin)


def _tau0_source(tau0: float, stats: MixtureStatistics, plugin: Any) -> str:
    """"plug-in from labels" / "mixture statistics" when tau0 is that of ``stats``, else
    "given (four-equation solution)" (a solution passed with allow_tau0_mismatch)."""
    if abs(float(tau0) - stats.tau0) > TAU0_RTOL * stats.tau0:
        return SOURCE_SOLUTION
    return SOURCE_PLUGIN if plugin is not None else SOURCE_MIXTURE


def _resolve_solution(activation: ActivationLike | FixedPointSolution | None, sa: Any,
                      sb: Any, solution: FixedPointSolution | None,
                      stats: MixtureStatistics) -> FixedPointSolution:
    if isinstance(activation, FixedPointSolution):
        if solution is not None:
            raise InvalidParameterError("pass the solution either positionally or as "
                                        "solution=, not both")
        solution, activation = activation, None
    if solution is not None:
        if activation is not None or sa is not None or sb is not None:
            raise InvalidParameterError(
                "give either solution= or (activation, sa[, sb]), not both")
        return _check_solution(solution)
    if activation is None or sa is None:
        raise InvalidParameterError(
            "give a FixedPointSolution, or an activation and sa (sb defaults to 1 - sa)")
    return solve_four_equations(activation, sa, tau0=stats.tau0, sb=sb)


def _assemble(X: np.ndarray, codes: np.ndarray, psi: np.ndarray, stats: MixtureStatistics,
              sol: FixedPointSolution, T_convention: str, allow: bool,
              plugin: PluginEstimate | None) -> CKSurrogate:
    p = X.shape[0]
    cS = surrogate_coefficients(sol, stats, form="Sigma", T_convention=T_convention,
                                allow_tau0_mismatch=allow)
    cG = surrogate_coefficients(sol, stats, form="G", T_convention=T_convention,
                                allow_tau0_mismatch=allow)
    V = build_V(codes, psi, p, stats.K)
    V.setflags(write=False)
    Sigma = cS.matrix(X, V)
    G = cG.matrix(X, V)
    note = scale_note(X)
    return CKSurrogate(G=G, Sigma=Sigma, coefficients_G=cG, coefficients_Sigma=cS, V=V,
                       psi=psi, codes=codes, statistics=stats, solution=sol,
                       T_convention=T_convention, plugin=plugin,
                       notes=() if note is None else (note,))


def mixture_ck_surrogate(mixture: GaussianMixture, sample: MixtureSample,
                         activation: ActivationLike | FixedPointSolution | None = None,
                         sa: float | None = None, sb: float | None = None, *,
                         solution: FixedPointSolution | None = None,
                         T_convention: str = "uncentred",
                         allow_tau0_mismatch: bool = False) -> CKSurrogate:
    """Surrogate of a sample of a known mixture, with the exact statistics and psi.

    Parameters
    ----------
    mixture : GaussianMixture
    sample : MixtureSample
        Drawn from ``mixture`` (X is p x n, columns are samples).
    activation, sa, sb :
        Solve the four equations at ``tau0 = statistics.tau0``; or pass a
        FixedPointSolution (positionally or as ``solution=``) instead.
    T_convention : {"uncentred", "centred"}
    allow_tau0_mismatch : bool
        See :func:`surrogate_coefficients`.

    Returns
    -------
    CKSurrogate
    """
    check_choice(T_convention, "T_convention", _T_CONVENTIONS)
    if not isinstance(mixture, GaussianMixture):
        raise InvalidParameterError(
            f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    stats = mixture.statistics(sample)
    psi = mixture.psi(sample)
    sol = _resolve_solution(activation, sa, sb, solution, stats)
    X = as_data_matrix(sample.X)
    return _assemble(X, np.asarray(sample.labels, dtype=np.int64), psi, stats, sol,
                     T_convention, allow_tau0_mismatch, None)


def plugin_ck_surrogate(X: Any, labels: Any,
                        activation: ActivationLike | FixedPointSolution | None = None,
                        sa: float | None = None, sb: float | None = None, *,
                        solution: FixedPointSolution | None = None,
                        T_convention: str = "uncentred",
                        diag_estimator: str = "distribution_free",
                        allow_tau0_mismatch: bool = False) -> CKSurrogate:
    """Surrogate of any labelled data, with plug-in statistics (:func:`plugin_statistics`).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Any labels (classes numbered in sorted order).
    activation, sa, sb :
        Solve the four equations at the estimated tau0; or pass a FixedPointSolution.
    T_convention : {"uncentred", "centred"}
    diag_estimator : {"distribution_free", "gaussian"}
        Estimator of tr(C_a^2)/p (see :func:`plugin_statistics`).
    allow_tau0_mismatch : bool

    Returns
    -------
    CKSurrogate
        With ``plugin`` set to the :class:`PluginEstimate`.
    """
    check_choice(T_convention, "T_convention", _T_CONVENTIONS)
    est = plugin_statistics(X, labels, diag_estimator=diag_estimator)
    stats = est.statistics
    sol = _resolve_solution(activation, sa, sb, solution, stats)
    Xa = as_data_matrix(X)
    return _assemble(Xa, np.asarray(est.codes), np.asarray(est.psi), stats, sol,
                     T_convention, allow_tau0_mismatch, est)
