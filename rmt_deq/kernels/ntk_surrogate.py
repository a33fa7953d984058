"""The RMT surrogate of the infinite-width NTK (docs/theory.md §5), DEQs and explicit networks.

For mixture data (X is p x n, columns are samples) every NTK parameter group, and every sum
of groups, has a surrogate of the CK surrogate's form (docs/theory.md §4)::

    Theta~ = c1 X^T X + V D V^T + c0 I,        c0 = theta_diag - c1 tau0^2,
    D      = [[d2 t t^T + d3 T, d2 t],
              [d2 t^T,          d2 ]]           ((K+1) x (K+1), T uncentred)

with V = [J/sqrt(p), psi] and t, T, tau0 the docs/theory.md §1 statistics (the constant block
d3 s2 (1/p) 1 1^T is carried by the uncentred T).  The scalars come from expanding each
group entrywise (derivations/ntk_expansion.py): off the diagonal Sigma_ij = O(p^{-1/2}) and
Gdot_ij = g1 + g2 Sigma_ij + (e1 e3/2)(d_i + d_j) + ... is O(1), so it only rescales and
corrects the O(p^{-1/2}) entries it multiplies; on the diagonal Gdot_ii = h0 = E[phi'^2].
With r = 1 - sa g1, q = 1 - sa h0 (all moments at the fixed-point scale tau)::

    group  c1                   d2                d3                        theta_diag
    v      g1 alpha1            alpha2/sa         g2 alpha1^2/(2r)          V0
    A      sa g1^2 alpha1/r     g1 alpha2/r       3 sa g1 g2 alpha1^2/(2r^2) sa V0 h0/q
    B      sb g1/r              0                 g2 alpha1^2/r             sb tau0^2 h0/q

(sums of groups add; v + A is the published convention G/(1 - sa Gdot)).

Optional refinement (``refine=True``): the two second-order corrections whose matrices vanish
in operator norm only like sqrt(log p / p), i.e. an off-diagonal term
c5 (x_i.x_j)(delta_i + delta_j) and the first-order diagonal theta_diag + theta_slope delta_i,
with delta_i = ||x_i||^2 - tau0^2 taken from the data::

    group  c5                              theta_slope
    v      e1 e3 alpha1 alpha4/(2r)        g4 alpha4/2
    A      sa g1 e1 e3 alpha1 alpha4/r^2   sa alpha4 (g4 h0/(2q) + V0 h2/(2q^2))
    B      e1 e3 alpha1 alpha4/(2r)        sb h0/q + sb tau0^2 h2 alpha4/(2q^2)

The refined matrix is no longer low rank plus identity (the spectral code uses the plain
coefficients).

Explicit networks (docs/theory.md §6): h_l = sigma_l(W_l h_{l-1})/sqrt(m), h_0 = x, f = v^T h_L,
each sigma_l centred at its input scale tau_{l-1}.  With K_l the CK of layer l and
Kdot_l = E[sigma_l'(u) sigma_l'(v)] at covariance K_{l-1},

    Theta = K_L (v) + sum_{l=1}^{L} K_{l-1} o Kdot_l o ... o Kdot_L   (group W_l),

and the same expansion gives the layer recursion of :func:`explicit_network_coefficients`.

* :class:`NTKCoefficients` and :func:`ntk_group_coefficients` -- the scalar coefficients of
  each group (from the four-equation solution alone);
* :func:`ntk_surrogate_coefficients` -- the sum of groups as
  :class:`~rmt_deq.kernels.surrogate.SurrogateCoefficients` (with the statistics: the
  input of the spectral code), the twin of
  :func:`rmt_deq.kernels.ck_surrogate.ck_surrogate_coefficients`;
* :func:`ntk_surrogate_matrix` -- the NTK surrogate as an n x n array (the twin of
  :func:`rmt_deq.kernels.ck_surrogate.ck_surrogate_matrix`);
* :func:`mixture_ntk_surrogate` / :func:`plugin_ntk_surrogate` -- as a
  :class:`~rmt_deq.kernels.result.Kernel` (:func:`assemble_ntk_surrogate` builds it from
  any per-group coefficients, explicit networks' too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._validation import (as_data_matrix, check_bool, check_choice, check_groups,
                                 check_positive_finite)
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.data.statistics import MixtureStatistics
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.exact import NTK_GROUPS
from rmt_deq.kernels.result import Kernel
from rmt_deq.kernels.surrogate import (T_CONVENTIONS, SurrogateCoefficients, SurrogateData,
                                       SurrogateDetails, check_statistics_type, check_tau0,
                                       labelled_data, mixture_data, plugin_data,
                                       resolve_solution, tau0_source)
from rmt_deq.moments.bivariate import DEFAULT_KMAX, DEFAULT_TOL, METHODS as _PAIR_METHODS
from rmt_deq.moments.pairs import PairExpectations
from rmt_deq.moments.gaussian import gaussian_moments
from rmt_deq.moments.result import GaussianMoments
from rmt_deq.data.conventions import data_scale
from rmt_deq.fixed_point.centring import check_solution

__all__ = [
    "NTK_FORM",
    "NTKCoefficients",
    "sum_coefficients",
    "ntk_group_coefficients",
    "ntk_surrogate_coefficients",
    "ntk_surrogate_matrix",
    "assemble_ntk_surrogate",
    "mixture_ntk_surrogate",
    "plugin_ntk_surrogate",
    "ExplicitLayer",
    "ExplicitNetworkCoefficients",
    "explicit_network_coefficients",
    "explicit_ntk_surrogate",
    "ExactExplicitNTK",
    "exact_explicit_ntk",
]

#: the ``form`` tag of the SurrogateCoefficients built here
NTK_FORM = "NTK"
_COEF_FIELDS = ("c1", "d2", "d3", "theta_diag", "c5", "theta_slope")


# ----------------------------------------------------------------------------------------
# coefficients
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NTKCoefficients:
    """Scalar coefficients of one NTK group (or of a sum of groups).

    The surrogate is ``c1 X^T X + V D V^T + c0 I`` with
    ``D = [[d2 t t^T + d3 T, d2 t], [d2 t^T, d2]]`` and ``c0 = theta_diag - c1 tau0^2``;
    ``c5`` and ``theta_slope`` are the optional refinement (see the module docstring).

    Attributes
    ----------
    label : str
        The group ("v", "A", "B", "W1"...) or the "+"-joined groups of a sum.
    c1 : float
        Coefficient of x_i.x_j off the diagonal.
    d2 : float
        Coefficient of delta_i delta_j (the t t^T, t, 1 entries of D).
    d3 : float
        Coefficient of (x_i.x_j)^2 ~ T_ab/p (the T entry of D).
    theta_diag : float
        Limit of the diagonal entries Theta_ii.
    c5 : float
        Refinement: coefficient of (x_i.x_j)(delta_i + delta_j), i != j.
    theta_slope : float
        Refinement: Theta_ii = theta_diag + theta_slope delta_i + O(delta_i^2).
    tau0 : float
        The data scale the coefficients were computed at.
    """

    label: str
    c1: float
    d2: float
    d3: float
    theta_diag: float
    c5: float
    theta_slope: float
    tau0: float

    @property
    def c0(self) -> float:
        """Coefficient of the identity, theta_diag - c1 tau0^2."""
        return float(self.theta_diag - self.c1 * self.tau0 ** 2)

    def __add__(self, other: "NTKCoefficients") -> "NTKCoefficients":
        if not isinstance(other, NTKCoefficients):
            return NotImplemented
        if abs(self.tau0 - other.tau0) > 1e-12 * max(1.0, self.tau0):
            raise InvalidParameterError(
                f"cannot add NTK coefficients computed at tau0 = {self.tau0:g} and "
                f"{other.tau0:g}")
        vals = {f: getattr(self, f) + getattr(other, f) for f in _COEF_FIELDS}
        return NTKCoefficients(label=f"{self.label}+{other.label}", tau0=self.tau0, **vals)

    def scaled(self, factor: float, label: str | None = None) -> "NTKCoefficients":
        """All six coefficients multiplied by ``factor``."""
        vals = {f: factor * getattr(self, f) for f in _COEF_FIELDS}
        return NTKCoefficients(label=self.label if label is None else label,
                               tau0=self.tau0, **vals)

    def D(self, t: Any, T: Any) -> np.ndarray:
        """The (K+1) x (K+1) matrix D from the statistics t (K,) and T (K, K)."""
        t = np.asarray(t, dtype=float)
        T = np.asarray(T, dtype=float)
        K = t.shape[0]
        if t.ndim != 1 or T.shape != (K, K):
            raise ShapeMismatchError(f"t must be (K,) and T (K, K); got {t.shape}, {T.shape}")
        D = np.empty((K + 1, K + 1))
        D[:K, :K] = self.d2 * np.outer(t, t) + self.d3 * T
        D[:K, K] = self.d2 * t
        D[K, :K] = self.d2 * t
        D[K, K] = self.d2
        return 0.5 * (D + D.T)

    def to_surrogate(self, stats: MixtureStatistics, T_convention: str = "uncentred",
                     sa: float = float("nan"), sb: float = float("nan")
                     ) -> SurrogateCoefficients:
        """These coefficients as :class:`~rmt_deq.kernels.surrogate.SurrogateCoefficients`
        (``form="NTK"``; c1, A = D, c0), the input of the spectral code."""
        check_choice(T_convention, "T_convention", T_CONVENTIONS)
        return self._surrogate(check_statistics_type(stats), T_convention, sa, sb)

    def _surrogate(self, stats: MixtureStatistics, T_convention: str, sa: float = float("nan"),
                   sb: float = float("nan")) -> SurrogateCoefficients:
        T = stats.T if T_convention == "uncentred" else stats.T_centred
        return SurrogateCoefficients(c1=float(self.c1), A=self.D(stats.t, T), c0=self.c0,
                                     form=NTK_FORM, T_convention=T_convention, sa=float(sa),
                                     sb=float(sb))

    def matrix(self, X: Any, V: Any, stats: MixtureStatistics, *,
               T_convention: str = "uncentred", refine: bool = False) -> np.ndarray:
        """The surrogate of this group (or sum of groups), n x n, exactly symmetric.

        Parameters
        ----------
        X : array_like, shape (p, n)
            Data; columns are samples.
        V : array_like, shape (n, K+1)
            [J/sqrt(p), psi].
        stats : MixtureStatistics
            docs/theory.md §1 statistics of the sample (t, T, tau0).
        T_convention : {"uncentred", "centred"}
        refine : bool
            Add c5 (x_i.x_j)(delta_i + delta_j) off the diagonal and (theta_slope - c1)
            delta_i on it, delta_i = ||x_i||^2 - tau0^2 (stats.tau0), so that the diagonal
            is theta_diag + theta_slope delta_i to first order.

        Raises
        ------
        ShapeMismatchError, NonFiniteInputError
            X or V not finite, V not n x (K+1).
        """
        check_choice(T_convention, "T_convention", T_CONVENTIONS)
        refine = check_bool(refine, "refine")
        sc = self._surrogate(check_statistics_type(stats), T_convention)
        Xa = as_data_matrix(X)
        Va = as_data_matrix(V, "V")
        if Va.shape != (Xa.shape[1], sc.K + 1):
            raise ShapeMismatchError(
                f"V must have shape (n, K+1) = ({Xa.shape[1]}, {sc.K + 1}); got {Va.shape}")
        return _group_matrix(self, sc, Xa.T @ Xa, Va, stats, refine)

    def as_dict(self) -> dict:
        """JSON-ready dictionary (c0 included)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["c0"] = self.c0
        return d


def sum_coefficients(parts: Sequence[NTKCoefficients], label: str | None = None
                     ) -> NTKCoefficients:
    """The coefficients of a sum of groups (in the order given), labelled ``label`` (default
    the "+"-joined labels)."""
    total = parts[0]
    for c in parts[1:]:
        total = total + c
    return total if label is None else replace(total, label=label)


def _group_matrix(coef: NTKCoefficients, sc: SurrogateCoefficients, XtX: np.ndarray,
                  V: np.ndarray, stats: MixtureStatistics, refine: bool) -> np.ndarray:
    """One group's surrogate from X^T X and V (trusted), with the refinement if asked."""
    M = sc.from_gram(XtX, V)
    if refine:
        delta = np.diag(XtX) - float(stats.tau0) ** 2
        E = coef.c5 * (delta[:, None] * XtX + XtX * delta[None, :])
        np.fill_diagonal(E, (coef.theta_slope - coef.c1) * delta)
        M = M + E
    return M


def ntk_group_coefficients(solution: FixedPointSolution,
                           groups: Iterable[str] = NTK_GROUPS) -> dict[str, NTKCoefficients]:
    """Scalar surrogate coefficients of the DEQ's NTK groups (docs/theory.md §5).

    Parameters
    ----------
    solution : FixedPointSolution
        The four-equation solution (its tau0 is the data scale of ``c0``).
    groups : iterable of {"v", "A", "B"}
        Groups to return; ``"total"`` (their sum) is always added.  ("v", "A") is the
        published convention G/(1 - sa Gdot).

    Returns
    -------
    dict of str -> NTKCoefficients
        One entry per selected group, plus ``"total"``.

    Raises
    ------
    InvalidParameterError
        ``solution`` is not a FixedPointSolution, or sa E[phi'^2] >= 1 (the diagonal factor
        1/(1 - sa h0) of the NTK diverges).
    UnknownOptionError
        an unknown group name.
    """
    sol = check_solution(solution)
    sel = check_groups(groups, NTK_GROUPS)
    m: GaussianMoments = sol.moments
    sa, sb = float(sol.sa), float(sol.sb)
    g1, g2, g4 = float(sol.g1), float(sol.g2), float(sol.g4)
    a1, a2, a4 = float(sol.alpha1), float(sol.alpha2), float(sol.alpha4)
    e1e3 = float(m.e1) * float(m.e3)
    h0, h2, V0 = float(m.h0), float(m.h2), float(m.V0)
    t02 = float(sol.tau0) ** 2
    r = 1.0 - sa * g1
    q = 1.0 - sa * h0
    if not q > 0:
        raise InvalidParameterError(
            f"sa E[phi'^2] = {sa * h0:.6g} >= 1 ({sol.activation}, sa = {sa:g}): the NTK factor "
            f"1/(1 - sa Gdot_ii) diverges, there is no NTK surrogate; reduce sa")
    tau0 = float(sol.tau0)
    table = {
        "v": (g1 * a1, a2 / sa, g2 * a1 ** 2 / (2 * r), V0,
              e1e3 * a1 * a4 / (2 * r), g4 * a4 / 2),
        "A": (sa * g1 ** 2 * a1 / r, g1 * a2 / r, 3 * sa * g1 * g2 * a1 ** 2 / (2 * r ** 2),
              sa * V0 * h0 / q, sa * g1 * e1e3 * a1 * a4 / r ** 2,
              sa * a4 * (g4 * h0 / (2 * q) + V0 * h2 / (2 * q ** 2))),
        "B": (sb * g1 / r, 0.0, g2 * a1 ** 2 / r, sb * t02 * h0 / q,
              e1e3 * a1 * a4 / (2 * r), sb * h0 / q + sb * t02 * h2 * a4 / (2 * q ** 2)),
    }
    out = {g: NTKCoefficients(g, *(float(v) for v in table[g]), tau0=tau0) for g in sel}
    out["total"] = sum_coefficients([out[g] for g in sel], label="+".join(sel))
    return out


def ntk_surrogate_coefficients(solution: FixedPointSolution, stats: MixtureStatistics, *,
                               groups: Iterable[str] = NTK_GROUPS,
                               T_convention: str = "uncentred",
                               allow_tau0_mismatch: bool = False) -> SurrogateCoefficients:
    """The surrogate of the sum of ``groups`` as SurrogateCoefficients (c1, A = D, c0).

    This is what the spectral code takes: the NTK surrogate has exactly the structure of the
    CK one (c1 X^T X + V A V^T + c0 I), so every spectral result applies with these
    coefficients (``form="NTK"``; docs/theory.md §5).

    Parameters
    ----------
    solution : FixedPointSolution
        Solved at ``tau0 = stats.tau0``.
    stats : MixtureStatistics
    groups : iterable of {"v", "A", "B"}
    T_convention : {"uncentred", "centred"}
    allow_tau0_mismatch : bool
        See :func:`rmt_deq.kernels.ck_surrogate.ck_surrogate_coefficients`.

    Returns
    -------
    SurrogateCoefficients
        ``form="NTK"``.
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    sol = check_solution(solution)
    check_statistics_type(stats)
    check_tau0(sol, stats, check_bool(allow_tau0_mismatch, "allow_tau0_mismatch"))
    coef = ntk_group_coefficients(sol, groups)["total"]
    return coef._surrogate(stats, T_convention, sa=sol.sa, sb=sol.sb)


def ntk_surrogate_matrix(X: Any, labels: Any, solution: FixedPointSolution,
                         stats: MixtureStatistics, psi: Any, *,
                         groups: Iterable[str] = NTK_GROUPS, T_convention: str = "uncentred",
                         refine: bool = False, allow_tau0_mismatch: bool = False) -> np.ndarray:
    """The NTK surrogate summed over ``groups``, n x n (docs/theory.md §5).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Class of each column (as in :func:`rmt_deq.kernels.ck_surrogate.ck_surrogate_matrix`).
    solution : FixedPointSolution
        Solved at ``tau0 = stats.tau0``.
    stats : MixtureStatistics
        docs/theory.md §1 statistics for this sample.
    psi : array_like, shape (n,)
    groups : iterable of {"v", "A", "B"}
    T_convention : {"uncentred", "centred"}
    refine : bool
        Add the second-order refinement (module docstring).
    allow_tau0_mismatch : bool
        See :func:`rmt_deq.kernels.ck_surrogate.ck_surrogate_coefficients`.

    Returns
    -------
    ndarray, shape (n, n), exactly symmetric
        The sum of the groups' surrogates (the ``ntk`` of :func:`mixture_ntk_surrogate`).

    Raises
    ------
    ShapeMismatchError, NonFiniteInputError, InvalidParameterError, UnknownOptionError
        As :func:`rmt_deq.kernels.ck_surrogate.ck_surrogate_matrix`; an unknown group.
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    sel = check_groups(groups, NTK_GROUPS)
    refine = check_bool(refine, "refine")
    allow = check_bool(allow_tau0_mismatch, "allow_tau0_mismatch")
    data = labelled_data(X, labels, stats, psi)
    sol = check_solution(solution)
    check_tau0(sol, stats, allow)
    coefs = ntk_group_coefficients(sol, sel)
    return _group_matrices(data, coefs, sel, T_convention, refine)[1]


def _group_matrices(data: SurrogateData, coefs: Mapping[str, NTKCoefficients],
                    selected: tuple, T_convention: str, refine: bool
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    stats = data.statistics
    mats = {g: _group_matrix(coefs[g], coefs[g]._surrogate(stats, T_convention), data.XtX,
                             data.V, stats, refine) for g in selected}
    return mats, np.asarray(sum(mats[g] for g in selected))


def assemble_ntk_surrogate(data: SurrogateData, coefficients: Mapping[str, NTKCoefficients],
                           selected: Sequence[str], *, T_convention: str, refine: bool,
                           network: str = "deq", tau0: float,
                           solution: FixedPointSolution | None = None,
                           network_coefficients: Any = None) -> Kernel:
    """The NTK surrogate :class:`~rmt_deq.kernels.result.Kernel` of per-group coefficients.

    Parameters
    ----------
    data : SurrogateData
        The data (:func:`~rmt_deq.kernels.surrogate.mixture_data` or
        :func:`~rmt_deq.kernels.surrogate.plugin_data`).
    coefficients : mapping of str to NTKCoefficients
        One entry per selected group, plus "total" (their sum).
    selected : sequence of str
        The groups summed into ``ntk``, in canonical order (already checked).
    T_convention : {"uncentred", "centred"}
    refine : bool
    network : {"deq", "explicit"}
    tau0 : float
        The data scale of the coefficients (the solution's or the explicit network's).
    solution : FixedPointSolution, optional
        The DEQ's four-equation solution (its sa, sb go into the SurrogateCoefficients).
    network_coefficients : optional
        An explicit network's layer coefficients (``info.network``).

    Returns
    -------
    Kernel
        ``route="surrogate"``: ``ntk``, ``groups``, ``selected``; ``info`` a
        :class:`~rmt_deq.kernels.surrogate.SurrogateDetails` (``coefficients`` as
        SurrogateCoefficients per group and "total", ``group_coefficients``).
    """
    sel = tuple(selected)
    mats, total = _group_matrices(data, coefficients, sel, T_convention, refine)
    nan = float("nan")
    sa, sb = (nan, nan) if solution is None else (solution.sa, solution.sb)
    sc = {k: c._surrogate(data.statistics, T_convention, sa=sa, sb=sb)
          for k, c in coefficients.items()}
    info = SurrogateDetails.of(data, T_convention, sc, group_coefficients=coefficients,
                               refine=refine, network=network_coefficients)
    return Kernel(route="surrogate", network=network, ntk=total, groups=mats, selected=sel,
                  tau0=float(tau0), tau0_source=tau0_source(tau0, data.statistics, data.plugin),
                  solution=solution, info=info)


def _deq_kernel(data: SurrogateData, sol: FixedPointSolution, sel: tuple, T_convention: str,
                refine: bool, allow: bool) -> Kernel:
    check_tau0(sol, data.statistics, allow)
    coefs = ntk_group_coefficients(sol, sel)
    return assemble_ntk_surrogate(data, coefs, sel, T_convention=T_convention, refine=refine,
                                  tau0=sol.tau0, solution=sol)


# ----------------------------------------------------------------------------------------
# DEQ surrogates for a mixture sample or labelled data
# ----------------------------------------------------------------------------------------
def mixture_ntk_surrogate(mixture: GaussianMixture, sample: MixtureSample,
                          activation: ActivationLike | FixedPointSolution | None = None,
                          sa: float | None = None, sb: float | None = None, *,
                          solution: FixedPointSolution | None = None,
                          groups: Iterable[str] = NTK_GROUPS,
                          T_convention: str = "uncentred", refine: bool = False,
                          allow_tau0_mismatch: bool = False) -> Kernel:
    """NTK surrogate of a DEQ on a sample of a known mixture (exact statistics and psi).

    Parameters
    ----------
    mixture : GaussianMixture
    sample : MixtureSample
        Drawn from ``mixture`` (X is p x n, columns are samples).
    activation, sa, sb :
        Solve the four equations at ``tau0 = statistics.tau0`` (sb defaults to 1 - sa); or
        pass a FixedPointSolution (positionally or as ``solution=``) instead.
    groups : iterable of {"v", "A", "B"}
        Parameter groups summed into ``ntk`` (("v", "A"): the published G/(1 - sa Gdot)).
    T_convention : {"uncentred", "centred"}
        "centred" (published T°) only for comparisons.
    refine : bool
        Add the second-order refinement (module docstring).
    allow_tau0_mismatch : bool
        See :func:`rmt_deq.kernels.ck_surrogate.ck_surrogate_coefficients`.

    Returns
    -------
    Kernel
        ``route="surrogate"``: ``ntk``, ``groups``, ``selected``, ``solution``; ``info`` a
        :class:`~rmt_deq.kernels.surrogate.SurrogateDetails` (the readout group "v" is the
        CK surrogate G~ of :func:`rmt_deq.kernels.ck_surrogate.mixture_ck_surrogate`).

    Raises
    ------
    InvalidParameterError
        bad mixture / solution, tau0 mismatch, sa E[phi'^2] >= 1.
    UnknownOptionError
        unknown group or T_convention.
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    sel = check_groups(groups, NTK_GROUPS)
    refine = check_bool(refine, "refine")
    allow = check_bool(allow_tau0_mismatch, "allow_tau0_mismatch")
    data = mixture_data(mixture, sample)
    sol = resolve_solution(activation, sa, sb, solution, data.statistics)
    return _deq_kernel(data, sol, sel, T_convention, refine, allow)


def plugin_ntk_surrogate(X: Any, labels: Any,
                         activation: ActivationLike | FixedPointSolution | None = None,
                         sa: float | None = None, sb: float | None = None, *,
                         solution: FixedPointSolution | None = None,
                         groups: Iterable[str] = NTK_GROUPS,
                         T_convention: str = "uncentred", refine: bool = False,
                         diag_estimator: str = "distribution_free",
                         allow_tau0_mismatch: bool = False) -> Kernel:
    """NTK surrogate of a DEQ on any labelled data, with plug-in statistics.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Any labels (classes numbered in sorted order).
    activation, sa, sb, solution, groups, T_convention, refine, allow_tau0_mismatch :
        As in :func:`mixture_ntk_surrogate`.
    diag_estimator : {"distribution_free", "gaussian"}
        Estimator of tr(C_a^2)/p (:func:`rmt_deq.data.statistics.plugin_statistics`).

    Returns
    -------
    Kernel
        As :func:`mixture_ntk_surrogate`, with ``info.plugin`` the
        :class:`~rmt_deq.data.statistics.PluginEstimate`.
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    sel = check_groups(groups, NTK_GROUPS)
    refine = check_bool(refine, "refine")
    allow = check_bool(allow_tau0_mismatch, "allow_tau0_mismatch")
    data = plugin_data(X, labels, diag_estimator)
    sol = resolve_solution(activation, sa, sb, solution, data.statistics)
    return _deq_kernel(data, sol, sel, T_convention, refine, allow)


# ----------------------------------------------------------------------------------------
# explicit networks (theory.md section 6)
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplicitLayer:
    """Layer l of an explicit network: moments of sigma_l at its input scale, CK coefficients.

    Attributes
    ----------
    activation : str
        Canonical spec of sigma_l (uncentred; the network uses sigma_l - centring).
    tau_in, tau_out : float
        tau_{l-1} and tau_l = sqrt(E[sigma_{l,c}(tau_{l-1} xi)^2]).
    centring : float
        E[sigma_l(tau_{l-1} xi)].
    alpha1, alpha2, alpha3, alpha4, alpha5 : float
        CK coefficients of K_l: off the diagonal alpha1 P + alpha2 delta_i delta_j
        + alpha3 P^2 + alpha5 P (delta_i + delta_j), on it tau_l^2 + alpha4 delta_i.
    moments : GaussianMoments
        All moments of sigma_l at tau_{l-1} (e1, e2, e3, h0, h2, g4, V0).
    """

    activation: str
    tau_in: float
    tau_out: float
    centring: float
    alpha1: float
    alpha2: float
    alpha3: float
    alpha4: float
    alpha5: float
    moments: GaussianMoments = field(repr=False)


@dataclass(frozen=True)
class ExplicitNetworkCoefficients:
    """Surrogate coefficients of an L-layer explicit network's CK and NTK.

    Attributes
    ----------
    layers : tuple of ExplicitLayer
    tau0 : float
    ck : NTKCoefficients
        The CK K_L (label "v": it is also the readout group of the NTK).
    groups : dict of str -> NTKCoefficients
        "v" (readout, = ck) and "W1".."WL" (K_{l-1} o Kdot_l o ... o Kdot_L).
    total : NTKCoefficients
        Sum of all groups.
    """

    layers: tuple
    tau0: float
    ck: NTKCoefficients
    groups: Mapping[str, NTKCoefficients]
    total: NTKCoefficients

    @property
    def L(self) -> int:
        """Number of hidden layers."""
        return len(self.layers)

    @property
    def group_names(self) -> tuple:
        """("v", "W1", ..., "WL")."""
        return ("v",) + tuple(f"W{l}" for l in range(1, self.L + 1))


def _as_activation_list(activations: Any) -> list[Activation]:
    if isinstance(activations, (str, Activation)) or callable(activations):
        activations = [activations]
    try:
        acts = [get_activation(a) for a in activations]
    except TypeError:
        raise InvalidParameterError(
            f"activations must be a sequence of activations (one per layer), got "
            f"{activations!r}") from None
    if not acts:
        raise InvalidParameterError("an explicit network needs at least one layer")
    return acts


def _propagate(c: NTKCoefficients, layer: ExplicitLayer, prev_alpha1: float,
               prev_alpha4: float) -> NTKCoefficients:
    """Entrywise product of a kernel expansion with Kdot_l (derivations/ntk_expansion.py):
    off the diagonal Kdot = g1 + g2 K_{l-1} + (e1 e3/2)(d_i + d_j), d = alpha4_{l-1} delta;
    on it Kdot_ii = h0 + (h2/2) d_i."""
    m = layer.moments
    g1, g2 = float(m.g1), float(m.g2)
    e1e3, h0, h2 = float(m.e1) * float(m.e3), float(m.h0), float(m.h2)
    return NTKCoefficients(
        label=c.label, tau0=c.tau0,
        c1=g1 * c.c1, d2=g1 * c.d2, d3=g1 * c.d3 + g2 * prev_alpha1 * c.c1,
        theta_diag=h0 * c.theta_diag,
        c5=g1 * c.c5 + 0.5 * e1e3 * prev_alpha4 * c.c1,
        theta_slope=h0 * c.theta_slope + 0.5 * h2 * prev_alpha4 * c.theta_diag)


def explicit_network_coefficients(activations: Sequence[ActivationLike], tau0: float, *,
                                  method: str = "auto") -> ExplicitNetworkCoefficients:
    """CK and NTK surrogate coefficients of h_l = sigma_l(W_l h_{l-1})/sqrt(m), f = v^T h_L.

    The CK recursion (theory.md section 6, with alpha5 the second-order refinement), moments
    of sigma_l at tau_{l-1}, starting from alpha1 = alpha4 = 1, alpha2 = alpha3 = alpha5 = 0::

        alpha1_l = g1 alpha1_{l-1}
        alpha2_l = g1 alpha2_{l-1} + g2 alpha4_{l-1}^2/4
        alpha3_l = g1 alpha3_{l-1} + g2 alpha1_{l-1}^2/2
        alpha4_l = g4 alpha4_{l-1}/2
        alpha5_l = g1 alpha5_{l-1} + e1 e3 alpha1_{l-1} alpha4_{l-1}/2
        tau_l^2  = V0 = E[sigma_{l,c}(tau_{l-1} xi)^2]

    The NTK group W_l is K_{l-1} multiplied entrywise by Kdot_l, ..., Kdot_L; each product
    maps (c1, d2, d3, theta_diag, c5, theta_slope) by (moments of layer k)::

        c1 -> g1 c1,  d2 -> g1 d2,  d3 -> g1 d3 + g2 alpha1_{k-1} c1,
        theta_diag -> h0 theta_diag,  c5 -> g1 c5 + (e1 e3/2) alpha4_{k-1} c1,
        theta_slope -> h0 theta_slope + (h2/2) alpha4_{k-1} theta_diag,

    starting from K_{l-1} = (alpha1, alpha2, alpha3, tau^2, alpha5, alpha4)_{l-1} (for l = 1:
    X^T X = (1, 0, 0, tau0^2, 0, 1)).  Equivalently Theta_l = K_l + Theta_{l-1} o Kdot_l.
    Checked symbolically for L = 1, 2, 3 in derivations/ntk_expansion.py.

    Parameters
    ----------
    activations : sequence of name, Activation or callable
        sigma_1 .. sigma_L, uncentred (each is centred at its input scale tau_{l-1}).
    tau0 : float
        Data scale sqrt(tr C°/p) > 0.
    method : {"auto", "closed", "quadrature", "mpmath"}
        Moment engine (:func:`rmt_deq.moments.gaussian.gaussian_moments`).

    Returns
    -------
    ExplicitNetworkCoefficients

    Raises
    ------
    InvalidParameterError
        tau0 not finite and > 0, no layer, or a layer whose output is constant (tau_l = 0).
    """
    acts = _as_activation_list(activations)
    t0 = check_positive_finite(tau0, "tau0")
    check_choice(method, "method", ("auto", "closed", "quadrature", "mpmath"))
    layers: list[ExplicitLayer] = []
    a1, a2, a3, a4, a5, tau = 1.0, 0.0, 0.0, 1.0, 0.0, t0
    for l, act in enumerate(acts, start=1):
        m = gaussian_moments(act, tau, method=method)
        g1, g2, g4 = float(m.g1), float(m.g2), float(m.g4)
        e1e3, V0 = float(m.e1) * float(m.e3), float(m.V0)
        if not V0 > 0:
            raise InvalidParameterError(
                f"layer {l} ({act.name}) has E[sigma_c(tau xi)^2] = {V0:.3g} at tau = {tau:g}: "
                f"its output is constant and the next layer's scale is zero")
        b1 = g1 * a1
        b2 = g1 * a2 + g2 * a4 ** 2 / 4
        b3 = g1 * a3 + g2 * a1 ** 2 / 2
        b4 = g4 * a4 / 2
        b5 = g1 * a5 + e1e3 * a1 * a4 / 2
        tau_out = math.sqrt(V0)
        layers.append(ExplicitLayer(activation=act.name, tau_in=tau, tau_out=tau_out,
                                    centring=float(m.mean), alpha1=b1, alpha2=b2, alpha3=b3,
                                    alpha4=b4, alpha5=b5, moments=m))
        a1, a2, a3, a4, a5, tau = b1, b2, b3, b4, b5, tau_out

    def ck_of(l: int, label: str) -> NTKCoefficients:
        if l == 0:
            return NTKCoefficients(label, 1.0, 0.0, 0.0, t0 * t0, 0.0, 1.0, tau0=t0)
        L_ = layers[l - 1]
        return NTKCoefficients(label, L_.alpha1, L_.alpha2, L_.alpha3, L_.tau_out ** 2,
                               L_.alpha5, L_.alpha4, tau0=t0)

    L = len(layers)
    groups: dict[str, NTKCoefficients] = {"v": ck_of(L, "v")}
    for l in range(1, L + 1):
        c = ck_of(l - 1, f"W{l}")
        for k in range(l, L + 1):          # multiply by Kdot_k, k = l..L
            prev = ck_of(k - 1, "")
            c = _propagate(c, layers[k - 1], prev.c1, prev.theta_slope)
        groups[f"W{l}"] = c
    total = sum_coefficients(list(groups.values()), label="total")
    return ExplicitNetworkCoefficients(layers=tuple(layers), tau0=t0, ck=groups["v"],
                                       groups=groups, total=total)


def explicit_ntk_surrogate(mixture: GaussianMixture | None, sample: MixtureSample | None,
                           activations: Sequence[ActivationLike], *,
                           X: Any = None, labels: Any = None,
                           groups: Iterable[str] | None = None,
                           T_convention: str = "uncentred", refine: bool = False,
                           diag_estimator: str = "distribution_free",
                           method: str = "auto") -> Kernel:
    """NTK surrogate of an explicit network, on a mixture sample or on labelled data.

    Give either (mixture, sample) (exact statistics and psi) or ``mixture=None,
    sample=None`` with ``X=`` and ``labels=`` (plug-in statistics).

    Parameters
    ----------
    mixture, sample : GaussianMixture, MixtureSample, or None
    activations : sequence of name, Activation or callable
        sigma_1 .. sigma_L (each centred at its input scale).
    X : array_like, shape (p, n), optional
        Labelled data for the plug-in route (columns are samples).
    labels : array_like, shape (n,), optional
    groups : iterable of {"v", "W1", ..., "WL"}, optional
        Groups summed into ``total`` (default: all).
    T_convention : {"uncentred", "centred"}
    refine : bool
    diag_estimator : {"distribution_free", "gaussian"}
        Plug-in route only.
    method : {"auto", "closed", "quadrature", "mpmath"}
        Moment engine.

    Returns
    -------
    Kernel
        ``network="explicit"``, ``info.network`` the layer coefficients, ``solution`` None;
        the CK surrogate is ``groups["v"]``.
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    refine = check_bool(refine, "refine")
    if (mixture is None) != (sample is None):
        raise InvalidParameterError("give both mixture and sample, or neither (then X, labels)")
    if mixture is not None:
        if X is not None or labels is not None:
            raise InvalidParameterError("give (mixture, sample) or (X, labels), not both")
        data = mixture_data(mixture, sample)
    else:
        if X is None or labels is None:
            raise InvalidParameterError("give (mixture, sample) or X= and labels=")
        data = plugin_data(X, labels, diag_estimator)
    stats = data.statistics
    net = explicit_network_coefficients(activations, stats.tau0, method=method)
    sel = check_groups(net.group_names if groups is None else groups, net.group_names)
    coefs = {g: net.groups[g] for g in sel}
    coefs["total"] = sum_coefficients([coefs[g] for g in sel], label="+".join(sel))
    return assemble_ntk_surrogate(data, coefs, sel, T_convention=T_convention, refine=refine,
                                  network="explicit", tau0=net.tau0, network_coefficients=net)


@dataclass(frozen=True, eq=False)
class ExactExplicitNTK:
    """Exact infinite-width kernels of an explicit network.

    Attributes
    ----------
    total : ndarray, shape (n, n)
        Sum of the selected groups.
    groups : dict of str -> ndarray, shape (n, n)
        "v" (K_L) and "W1".."WL" (K_{l-1} o Kdot_l o ... o Kdot_L), as selected.
    selected : tuple of str
    ck : tuple of ndarray
        K_0 = X^T X, K_1, ..., K_L.
    dck : tuple of ndarray
        Kdot_1, ..., Kdot_L.
    network : ExplicitNetworkCoefficients
        The scales and centrings used (from tau0).
    """

    total: np.ndarray = field(repr=False)
    groups: Mapping[str, np.ndarray] = field(repr=False)
    selected: tuple
    ck: tuple = field(repr=False)
    dck: tuple = field(repr=False)
    network: ExplicitNetworkCoefficients = field(repr=False)


def exact_explicit_ntk(X: Any, activations: Sequence[ActivationLike], *,
                       tau0: float | None = None, labels: Any = None,
                       groups: Iterable[str] | None = None,
                       method: str = "auto", tol: float = DEFAULT_TOL,
                       kmax: int = DEFAULT_KMAX, workers: int | None = None
                       ) -> ExactExplicitNTK:
    """Exact infinite-width CK and NTK of h_l = sigma_l(W_l h_{l-1})/sqrt(m), f = v^T h_L.

    K_0 = X^T X; K_l = E[sigma_{l,c}(u) sigma_{l,c}(v)] and Kdot_l = E[sigma_l'(u) sigma_l'(v)]
    with (u, v) ~ N(0, K_{l-1}) (entrywise, :class:`rmt_deq.moments.pairs.PairExpectations`),
    sigma_{l,c} = sigma_l - E[sigma_l(tau_{l-1} xi)] with the population scales tau_l of
    :func:`explicit_network_coefficients` at ``tau0``.  No fixed point: one pass per layer.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples (nonzero).
    activations : sequence of name, Activation or callable
    tau0 : float, optional
        Data scale sqrt(tr C°/p) fixing the centrings; default
        :func:`rmt_deq.data.conventions.data_scale` (plug-in from ``labels``, else all samples
        as one class), as for every kernel of the package.
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0.
    groups : iterable of {"v", "W1", ..., "WL"}, optional
        Default: all.
    method : {"auto", "closed", "mehler", "quadrature"}
        Bivariate engine.
    tol, kmax, workers :
        As in :func:`rmt_deq.kernels.exact.exact_ck`.

    Returns
    -------
    ExactExplicitNTK
    """
    Xa = as_data_matrix(X)
    check_choice(method, "method", _PAIR_METHODS)
    norms2 = np.sum(Xa * Xa, axis=0)
    if np.any(norms2 <= 0):
        raise InvalidParameterError("X has a zero column; every sample must be nonzero")
    tau0 = data_scale(Xa, labels, tau0=tau0).tau0
    acts = _as_activation_list(activations)
    net = explicit_network_coefficients(acts, tau0)
    sel = check_groups(net.group_names if groups is None else groups, net.group_names)
    K = Xa.T @ Xa
    cks, dcks = [K], []
    for act, layer in zip(acts, net.layers):
        engine = PairExpectations(act, np.diag(K).copy(), layer.centring,
                                  method=method, tol=tol, kmax=kmax, workers=workers)
        K, Kd = engine.evaluate(K)
        cks.append(K)
        dcks.append(Kd)
    L = net.L
    mats: dict[str, np.ndarray] = {}
    for g in sel:
        if g == "v":
            mats[g] = cks[L].copy()
        else:
            l = int(g[1:])
            M = cks[l - 1].copy()
            for k in range(l, L + 1):
                M *= dcks[k - 1]
            mats[g] = M
    total = sum(mats[g] for g in sel)
    return ExactExplicitNTK(total=np.asarray(total), groups=mats, selected=sel,
                            ck=tuple(cks), dck=tuple(dcks), network=net)
