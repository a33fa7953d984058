"""The RMT surrogate of the Implicit-CK (docs/theory.md §4).

For mixture data (X is p x n, columns are samples), in the preactivation form::

    Sigma~ = alpha1 X^T X + V A V^T + (tau^2 - tau0^2 alpha1) I
    A      = [[alpha2 t t^T + alpha3 T, alpha2 t],
              [alpha2 t^T,             alpha2 ]]          ((K+1) x (K+1), T uncentred)
    G~     = (Sigma~ - sb X^T X) / sa

with V = [J/sqrt(p), psi] (n x (K+1)) and t, T, tau0 the docs/theory.md §1 statistics
(:mod:`rmt_deq.data.statistics`).  Both forms are ``c1 X^T X + V A V^T + c0 I``; the
coefficients are :class:`~rmt_deq.kernels.surrogate.SurrogateCoefficients`
(:func:`ck_surrogate_coefficients`, the input of the spectral code).

``T_convention="centred"`` reproduces the published formula, which has the centred T°
in place of T; in the J block it differs from the uncentred surrogate by exactly
alpha3 J (T - T°) J^T / p, i.e. it loses the constant block alpha3 s2 (1/p) 1 1^T and the
cross terms tr(C° C_b°)/p + tr(C_a° C°)/p (O(1) in operator norm; docs/theory.md §4).

* :func:`ck_surrogate_coefficients` -- (c1, A, c0) from a solution and the statistics;
* :func:`ck_surrogate_matrix` -- one form as an n x n array, from data, labels, a
  solution, the statistics and psi (the twin of
  :func:`rmt_deq.kernels.ntk_surrogate.ntk_surrogate_matrix`);
* :func:`mixture_ck_surrogate` / :func:`plugin_ck_surrogate` -- the surrogate of a mixture
  sample (exact statistics) or of any labelled data (plug-in), as a
  :class:`~rmt_deq.kernels.result.Kernel` (``ck`` = G~, ``info.Sigma`` = Sigma~).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rmt_deq._validation import check_bool, check_choice
from rmt_deq.activations import ActivationLike
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.data.statistics import MixtureStatistics
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.result import Kernel
from rmt_deq.kernels.surrogate import (T_CONVENTIONS, SurrogateCoefficients, SurrogateData,
                                       SurrogateDetails, check_statistics_type, check_tau0,
                                       labelled_data, mixture_data, plugin_data,
                                       resolve_solution, tau0_source)
from rmt_deq.fixed_point.centring import check_solution

__all__ = ["CK_FORMS", "ck_surrogate_coefficients", "ck_surrogate_matrix",
           "mixture_ck_surrogate", "plugin_ck_surrogate"]

#: the two forms of the CK surrogate: G~ (the CK) and Sigma~ (the preactivations)
CK_FORMS = ("G", "Sigma")


def _coefficients(sol: FixedPointSolution, stats: MixtureStatistics, form: str,
                  T_convention: str) -> SurrogateCoefficients:
    """(c1, A, c0) of one form (trusted inputs)."""
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
    return SurrogateCoefficients(c1=float(c1), A=A, c0=float(c0), form=form,
                                 T_convention=T_convention, sa=float(sol.sa),
                                 sb=float(sol.sb))


def ck_surrogate_coefficients(solution: FixedPointSolution, stats: MixtureStatistics, *,
                              form: str = "G", T_convention: str = "uncentred",
                              allow_tau0_mismatch: bool = False) -> SurrogateCoefficients:
    """Coefficients (c1, A, c0) of the CK surrogate (docs/theory.md §4).

    Parameters
    ----------
    solution : FixedPointSolution
        The four-equation solution, solved at ``tau0 = stats.tau0``.
    stats : MixtureStatistics
        Exact (:meth:`GaussianMixture.statistics`) or plug-in
        (:func:`~rmt_deq.data.statistics.plugin_statistics`).
    form : {"G", "Sigma"}
        "Sigma": c1 = alpha1, A as in docs/theory.md §4, c0 = tau^2 - tau0^2 alpha1.
        "G": (Sigma~ - sb X^T X)/sa, i.e. c1 = (alpha1 - sb)/sa, A/sa, c0/sa.
    T_convention : {"uncentred", "centred"}
        "uncentred" (correct): T_ab = tr(C_a C_b)/p.  "centred": the published formula with
        T°_ab = tr(C_a° C_b°)/p (for comparisons only).
    allow_tau0_mismatch : bool
        If False (default) a solution whose tau0 differs from stats.tau0 by more than
        :data:`~rmt_deq.kernels.surrogate.TAU0_RTOL` (relative) raises.  If True the
        solution's own (tau, tau0) pair is used in c0 = tau^2 - tau0^2 alpha1 (the
        self-consistent pair of the solver).

    Returns
    -------
    SurrogateCoefficients
        ``form`` "G" or "Sigma".

    Raises
    ------
    InvalidParameterError
        solution not a FixedPointSolution, stats not MixtureStatistics, tau0 mismatch.
    UnknownOptionError
        unknown form / T_convention.
    """
    check_choice(form, "form", CK_FORMS)
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    sol = check_solution(solution)
    check_statistics_type(stats)
    check_tau0(sol, stats, check_bool(allow_tau0_mismatch, "allow_tau0_mismatch"))
    return _coefficients(sol, stats, form, T_convention)


def ck_surrogate_matrix(X: Any, labels: Any, solution: FixedPointSolution,
                        stats: MixtureStatistics, psi: Any, *, form: str = "G",
                        T_convention: str = "uncentred",
                        allow_tau0_mismatch: bool = False) -> np.ndarray:
    """The CK surrogate matrix G~ (or Sigma~), n x n (docs/theory.md §4).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Class of each column: integers in 0..K-1, or any labels (mapped in sorted order,
        as :func:`~rmt_deq.data.statistics.plugin_statistics` does).
    solution : FixedPointSolution
        Solved at ``tau0 = stats.tau0``.
    stats : MixtureStatistics
        docs/theory.md §1 statistics for this sample (p, class sizes must match X and
        labels).
    psi : array_like, shape (n,)
        psi_i = (||omega_i||^2 - tr C_a)/p (exact, :meth:`GaussianMixture.psi`, or plug-in).
    form : {"G", "Sigma"}
    T_convention : {"uncentred", "centred"}
    allow_tau0_mismatch : bool
        See :func:`ck_surrogate_coefficients`.

    Returns
    -------
    ndarray, shape (n, n), exactly symmetric

    Raises
    ------
    ShapeMismatchError
        X / labels / psi / stats disagree on p, n, K or the class sizes.
    NonFiniteInputError
        NaN/inf in X or psi.
    InvalidParameterError
        tau0 mismatch (see :func:`ck_surrogate_coefficients`).
    """
    data = labelled_data(X, labels, stats, psi)
    coef = ck_surrogate_coefficients(solution, stats, form=form, T_convention=T_convention,
                                     allow_tau0_mismatch=allow_tau0_mismatch)
    return coef.from_gram(data.XtX, data.V)


def _ck_kernel(data: SurrogateData, sol: FixedPointSolution, T_convention: str,
               allow: bool) -> Kernel:
    """Both forms of the CK surrogate on resolved data, as a Kernel."""
    stats = data.statistics
    check_tau0(sol, stats, allow)
    cS = _coefficients(sol, stats, "Sigma", T_convention)
    cG = _coefficients(sol, stats, "G", T_convention)
    Sigma = cS.from_gram(data.XtX, data.V)
    G = cG.from_gram(data.XtX, data.V)
    info = SurrogateDetails.of(data, T_convention, {"G": cG, "Sigma": cS}, Sigma=Sigma)
    return Kernel(route="surrogate", network="deq", ck=G, tau0=float(sol.tau0),
                  tau0_source=tau0_source(sol.tau0, stats, data.plugin), solution=sol,
                  info=info)


def mixture_ck_surrogate(mixture: GaussianMixture, sample: MixtureSample,
                         activation: ActivationLike | FixedPointSolution | None = None,
                         sa: float | None = None, sb: float | None = None, *,
                         solution: FixedPointSolution | None = None,
                         T_convention: str = "uncentred",
                         allow_tau0_mismatch: bool = False) -> Kernel:
    """CK surrogate of a sample of a known mixture, with the exact statistics and psi.

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
        See :func:`ck_surrogate_coefficients`.

    Returns
    -------
    Kernel
        ``route="surrogate"``: ``ck`` = G~, ``solution``, ``tau0`` (of the statistics) and
        ``info`` a :class:`~rmt_deq.kernels.surrogate.SurrogateDetails` (``Sigma`` =
        Sigma~, ``coefficients["G"]`` and ``["Sigma"]``, V, psi, the statistics, notes).
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    allow = check_bool(allow_tau0_mismatch, "allow_tau0_mismatch")
    data = mixture_data(mixture, sample)
    sol = resolve_solution(activation, sa, sb, solution, data.statistics)
    return _ck_kernel(data, sol, T_convention, allow)


def plugin_ck_surrogate(X: Any, labels: Any,
                        activation: ActivationLike | FixedPointSolution | None = None,
                        sa: float | None = None, sb: float | None = None, *,
                        solution: FixedPointSolution | None = None,
                        T_convention: str = "uncentred",
                        diag_estimator: str = "distribution_free",
                        allow_tau0_mismatch: bool = False) -> Kernel:
    """CK surrogate of any labelled data, with plug-in statistics
    (:func:`~rmt_deq.data.statistics.plugin_statistics`).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Any labels (classes numbered in sorted order).
    activation, sa, sb, solution, T_convention, allow_tau0_mismatch :
        As in :func:`mixture_ck_surrogate` (the four equations at the estimated tau0).
    diag_estimator : {"distribution_free", "gaussian"}
        Estimator of tr(C_a^2)/p (see :func:`~rmt_deq.data.statistics.plugin_statistics`).

    Returns
    -------
    Kernel
        As :func:`mixture_ck_surrogate`, with ``info.plugin`` the
        :class:`~rmt_deq.data.statistics.PluginEstimate`.
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    allow = check_bool(allow_tau0_mismatch, "allow_tau0_mismatch")
    data = plugin_data(X, labels, diag_estimator)
    sol = resolve_solution(activation, sa, sb, solution, data.statistics)
    return _ck_kernel(data, sol, T_convention, allow)
