"""The RMT surrogate of the infinite-width NTK (theory.md section 5), DEQs and explicit networks.

For mixture data (X is p x n, columns are samples) every NTK parameter group, and every sum
of groups, has a surrogate of the section-4 form::

    Theta~ = c1 X^T X + V D V^T + c0 I,        c0 = theta_diag - c1 tau0^2,
    D      = [[d2 t t^T + d3 T, d2 t],
              [d2 t^T,          d2 ]]           ((K+1) x (K+1), T uncentred)

with V = [J/sqrt(p), psi] and t, T, tau0 the section-1 statistics (the constant block
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

Explicit networks (theory.md section 6): h_l = sigma_l(W_l h_{l-1})/sqrt(m), h_0 = x, f = v^T h_L,
each sigma_l centred at its input scale tau_{l-1}.  With K_l the CK of layer l and
Kdot_l = E[sigma_l'(u) sigma_l'(v)] at covariance K_{l-1},

    Theta = K_L (v) + sum_{l=1}^{L} K_{l-1} o Kdot_l o ... o Kdot_L   (group W_l),

and the same expansion gives the layer recursion of
:func:`rmt_deq.kernels.explicit_surrogate.explicit_network_coefficients`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._validation import as_data_matrix, check_choice, check_groups
from rmt_deq.activations import ActivationLike
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.fixed_point.four_equations import FixedPointSolution
from rmt_deq.moments.gaussian import GaussianMoments
from rmt_deq.kernels.exact import NTK_GROUPS
from rmt_deq.data.mixture import (GaussianMixture, MixtureSample, MixtureStatistics, PluginEstimate,
                      build_V, plugin_statistics)
from rmt_deq.data.conventions import scale_note
from rmt_deq.kernels.ck_surrogate import SurrogateCoefficients, _check_tau0, _resolve_solution, _tau0_source

__all__ = [
    "NTKCoefficients",
    "NTKSurrogate",
    "ntk_coefficients",
    "ntk_surrogate_coefficients",
    "ntk_surrogate_matrix",
    "mixture_ntk_surrogate",
    "plugin_ntk_surrogate",
    "ntk_surrogate_convergence",
    "NTK_FORM",
]

#: the ``form`` tag of the SurrogateCoefficients built here
NTK_FORM = "NTK"
_T_CONVENTIONS = ("uncentred", "centred")
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
        """These coefficients as :class:`~rmt_deq.kernels.ck_surrogate.SurrogateCoefficients`
        (``form="NTK"``; c1, A = D, c0), the input of the spectral code."""
        check_choice("T_convention", T_convention, _T_CONVENTIONS)
        if not isinstance(stats, MixtureStatistics):
            raise InvalidParameterError(
                f"stats must be MixtureStatistics, got {type(stats).__name__}")
        T = stats.T if T_convention == "uncentred" else stats.T_centred
        A = self.D(stats.t, T)
        A.setflags(write=False)
        return SurrogateCoefficients(c1=float(self.c1), A=A, c0=self.c0, form=NTK_FORM,
                                     T_convention=T_convention, sa=float(sa), sb=float(sb))

    def as_dict(self) -> dict:
        """JSON-ready dictionary (c0 included)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["c0"] = self.c0
        return d


def _sum_coefficients(parts: Sequence[NTKCoefficients]) -> NTKCoefficients:
    total = parts[0]
    for c in parts[1:]:
        total = total + c
    return total


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_solution(solution: Any) -> FixedPointSolution:
    if not isinstance(solution, FixedPointSolution):
        raise InvalidParameterError(
            f"solution must be a FixedPointSolution (from solve_four_equations), got "
            f"{type(solution).__name__}")
    return solution


def ntk_coefficients(solution: FixedPointSolution,
                     groups: Iterable[str] = NTK_GROUPS) -> dict[str, NTKCoefficients]:
    """Surrogate coefficients of the DEQ's NTK groups (theory.md section 5).

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
    sol = _check_solution(solution)
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
    total = _sum_coefficients([out[g] for g in sel])
    out["total"] = replace(total, label="+".join(sel))
    return out


def ntk_surrogate_coefficients(solution: FixedPointSolution, stats: MixtureStatistics, *,
                               groups: Iterable[str] = NTK_GROUPS,
                               T_convention: str = "uncentred",
                               allow_tau0_mismatch: bool = False) -> SurrogateCoefficients:
    """The surrogate of the sum of ``groups`` as SurrogateCoefficients (c1, A = D, c0).

    This is what the spectral code takes: the NTK surrogate has exactly the structure of the
    CK one (c1 X^T X + V A V^T + c0 I), so every spectral result applies with these
    coefficients (``form="NTK"``).

    Parameters
    ----------
    solution : FixedPointSolution
        Solved at ``tau0 = stats.tau0``.
    stats : MixtureStatistics
    groups : iterable of {"v", "A", "B"}
    T_convention : {"uncentred", "centred"}
    allow_tau0_mismatch : bool
        See :func:`rmt_deq.kernels.ck_surrogate.surrogate_coefficients`.
    """
    check_choice("T_convention", T_convention, _T_CONVENTIONS)
    sol = _check_solution(solution)
    if not isinstance(stats, MixtureStatistics):
        raise InvalidParameterError(
            f"stats must be MixtureStatistics, got {type(stats).__name__}")
    _check_tau0(sol, stats, _check_bool("allow_tau0_mismatch", allow_tau0_mismatch))
    coef = ntk_coefficients(sol, groups)["total"]
    return coef.to_surrogate(stats, T_convention, sa=sol.sa, sb=sol.sb)


def ntk_surrogate_matrix(X: Any, V: Any, coefficients: NTKCoefficients, stats: MixtureStatistics,
                         *, T_convention: str = "uncentred", refine: bool = False) -> np.ndarray:
    """Build one NTK surrogate matrix (n x n).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    V : array_like, shape (n, K+1)
        [J/sqrt(p), psi].
    coefficients : NTKCoefficients
    stats : MixtureStatistics
        Section-1 statistics of the sample (t, T, tau0).
    T_convention : {"uncentred", "centred"}
    refine : bool
        Add c5 (x_i.x_j)(delta_i + delta_j) off the diagonal and (theta_slope - c1) delta_i
        on it, delta_i = ||x_i||^2 - tau0^2 (stats.tau0), so that the diagonal is
        theta_diag + theta_slope delta_i to first order.

    Returns
    -------
    ndarray, shape (n, n), exactly symmetric
    """
    if not isinstance(coefficients, NTKCoefficients):
        raise InvalidParameterError(
            f"coefficients must be NTKCoefficients, got {type(coefficients).__name__}")
    refine = _check_bool("refine", refine)
    Xa = as_data_matrix(X)
    sc = coefficients.to_surrogate(stats, T_convention)
    M = sc.matrix(Xa, np.asarray(V, dtype=float))
    if refine:
        P = Xa.T @ Xa
        delta = np.diag(P) - float(stats.tau0) ** 2
        E = coefficients.c5 * (delta[:, None] * P + P * delta[None, :])
        np.fill_diagonal(E, (coefficients.theta_slope - coefficients.c1) * delta)
        M = M + E
    return M


# ----------------------------------------------------------------------------------------
# DEQ surrogates for a mixture sample or labelled data
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NTKSurrogate:
    """The NTK surrogate of one data set, split by parameter group.

    Attributes
    ----------
    total : ndarray, shape (n, n)
        Sum of the selected groups' surrogates.
    groups : dict of str -> ndarray, shape (n, n)
        One surrogate per selected group.
    selected : tuple of str
        The selected groups, in canonical order.
    coefficients : dict of str -> NTKCoefficients
        Per group and ``"total"``.
    surrogate_coefficients : dict of str -> SurrogateCoefficients
        The same as (c1, A = D, c0) with ``form="NTK"`` (for the spectral code).
    V : ndarray, shape (n, K+1)
    psi : ndarray, shape (n,)
    codes : ndarray of int, shape (n,)
    statistics : MixtureStatistics
    T_convention : str
    refine : bool
    solution : FixedPointSolution or None
        The DEQ's four-equation solution (None for an explicit network).
    network : ExplicitNetworkCoefficients or None
        The explicit network's layer coefficients (None for a DEQ).
    plugin : PluginEstimate or None
        The plug-in estimate when the statistics were estimated from the data.
    notes : tuple of str
        Remarks about the data, e.g. that X looks unscaled
        (:func:`rmt_deq.data.conventions.scale_note`); empty when there are none.
    """

    total: np.ndarray = field(repr=False)
    groups: Mapping[str, np.ndarray] = field(repr=False)
    selected: tuple
    coefficients: Mapping[str, NTKCoefficients]
    surrogate_coefficients: Mapping[str, SurrogateCoefficients] = field(repr=False)
    V: np.ndarray = field(repr=False)
    psi: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    statistics: MixtureStatistics = field(repr=False)
    T_convention: str
    refine: bool
    solution: FixedPointSolution | None = field(default=None, repr=False)
    network: Any = field(default=None, repr=False)
    plugin: PluginEstimate | None = field(default=None, repr=False)
    notes: tuple = ()

    @property
    def tau0_source(self) -> str:
        """Where tau0 came from (same vocabulary as :func:`rmt_deq.data.conventions.data_scale`)."""
        t0 = self.solution.tau0 if self.solution is not None else self.network.tau0
        return _tau0_source(t0, self.statistics, self.plugin)


def _assemble(X: np.ndarray, codes: np.ndarray, psi: np.ndarray, stats: MixtureStatistics,
              coefs: dict[str, NTKCoefficients], selected: tuple, T_convention: str,
              refine: bool, sa: float, sb: float, solution: FixedPointSolution | None,
              network: Any,
              plugin: PluginEstimate | None) -> NTKSurrogate:
    p = X.shape[0]
    V = build_V(codes, psi, p, stats.K)
    V.setflags(write=False)
    mats = {g: ntk_surrogate_matrix(X, V, coefs[g], stats, T_convention=T_convention,
                                    refine=refine) for g in selected}
    total = sum(mats[g] for g in selected)
    sc = {k: c.to_surrogate(stats, T_convention, sa=sa, sb=sb) for k, c in coefs.items()}
    return NTKSurrogate(total=np.asarray(total), groups=mats, selected=selected,
                        coefficients=coefs, surrogate_coefficients=sc, V=V, psi=psi,
                        codes=codes, statistics=stats, T_convention=T_convention,
                        refine=refine, solution=solution, network=network, plugin=plugin,
                        notes=tuple(x for x in (scale_note(X),) if x is not None))


def mixture_ntk_surrogate(mixture: GaussianMixture, sample: MixtureSample,
                          activation: ActivationLike | FixedPointSolution | None = None,
                          sa: float | None = None, sb: float | None = None, *,
                          solution: FixedPointSolution | None = None,
                          groups: Iterable[str] = NTK_GROUPS,
                          T_convention: str = "uncentred", refine: bool = False,
                          allow_tau0_mismatch: bool = False) -> NTKSurrogate:
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
        Parameter groups summed into ``total`` (("v", "A"): the published G/(1 - sa Gdot)).
    T_convention : {"uncentred", "centred"}
        "centred" (published T°) only for comparisons.
    refine : bool
        Add the second-order refinement (module docstring).
    allow_tau0_mismatch : bool
        See :func:`rmt_deq.kernels.ck_surrogate.surrogate_coefficients`.

    Returns
    -------
    NTKSurrogate

    Raises
    ------
    InvalidParameterError
        bad mixture / solution, tau0 mismatch, sa E[phi'^2] >= 1.
    UnknownOptionError
        unknown group or T_convention.
    """
    check_choice("T_convention", T_convention, _T_CONVENTIONS)
    sel = check_groups(groups, NTK_GROUPS)
    refine = _check_bool("refine", refine)
    allow = _check_bool("allow_tau0_mismatch", allow_tau0_mismatch)
    if not isinstance(mixture, GaussianMixture):
        raise InvalidParameterError(
            f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    stats = mixture.statistics(sample)
    psi = mixture.psi(sample)
    sol = _resolve_solution(activation, sa, sb, solution, stats)
    _check_tau0(sol, stats, allow)
    coefs = ntk_coefficients(sol, sel)
    X = as_data_matrix(sample.X)
    return _assemble(X, np.asarray(sample.labels, dtype=np.int64), psi, stats, coefs, sel,
                     T_convention, refine, sol.sa, sol.sb, sol, None, None)


def plugin_ntk_surrogate(X: Any, labels: Any,
                         activation: ActivationLike | FixedPointSolution | None = None,
                         sa: float | None = None, sb: float | None = None, *,
                         solution: FixedPointSolution | None = None,
                         groups: Iterable[str] = NTK_GROUPS,
                         T_convention: str = "uncentred", refine: bool = False,
                         diag_estimator: str = "distribution_free",
                         allow_tau0_mismatch: bool = False) -> NTKSurrogate:
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
        Estimator of tr(C_a^2)/p (:func:`rmt_deq.data.mixture.plugin_statistics`).

    Returns
    -------
    NTKSurrogate
        With ``plugin`` set to the :class:`PluginEstimate`.
    """
    check_choice("T_convention", T_convention, _T_CONVENTIONS)
    sel = check_groups(groups, NTK_GROUPS)
    refine = _check_bool("refine", refine)
    allow = _check_bool("allow_tau0_mismatch", allow_tau0_mismatch)
    est = plugin_statistics(X, labels, diag_estimator=diag_estimator)
    stats = est.statistics
    sol = _resolve_solution(activation, sa, sb, solution, stats)
    _check_tau0(sol, stats, allow)
    coefs = ntk_coefficients(sol, sel)
    Xa = as_data_matrix(X)
    return _assemble(Xa, np.asarray(est.codes), np.asarray(est.psi), stats, coefs, sel,
                     T_convention, refine, sol.sa, sol.sb, sol, None, est)


# ----------------------------------------------------------------------------------------
# verification by convergence (records in the style of rmt_deq.experiments)
# ----------------------------------------------------------------------------------------


