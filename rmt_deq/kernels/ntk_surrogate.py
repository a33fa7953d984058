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

and the same expansion gives the layer recursion of
:func:`rmt_deq.kernels.explicit_surrogate.explicit_network_coefficients`.

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

from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._validation import (as_data_matrix, check_bool, check_choice, check_groups)
from rmt_deq.activations import ActivationLike
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
from rmt_deq.moments.result import GaussianMoments
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
                           network_coefficients: Any = None,
                           ck: NTKCoefficients | None = None) -> Kernel:
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
    ck : NTKCoefficients, optional
        Coefficients of the CK (an explicit network's readout group "v"): when given, the
        Kernel's ``ck`` is its surrogate matrix (selected in ``ntk`` or not).

    Returns
    -------
    Kernel
        ``route="surrogate"``: ``ntk``, ``groups``, ``selected``; ``info`` a
        :class:`~rmt_deq.kernels.surrogate.SurrogateDetails` (``coefficients`` as
        SurrogateCoefficients per group and "total", ``group_coefficients``).
    """
    sel = tuple(selected)
    mats, total = _group_matrices(data, coefficients, sel, T_convention, refine)
    ck_matrix = None
    if ck is not None:
        ck_matrix = mats["v"] if "v" in mats else _group_matrices(
            data, {"v": ck}, ("v",), T_convention, refine)[1]
    nan = float("nan")
    sa, sb = (nan, nan) if solution is None else (solution.sa, solution.sb)
    sc = {k: c._surrogate(data.statistics, T_convention, sa=sa, sb=sb)
          for k, c in coefficients.items()}
    info = SurrogateDetails.of(data, T_convention, sc, group_coefficients=coefficients,
                               refine=refine, network=network_coefficients)
    return Kernel(route="surrogate", network=network, ck=ck_matrix, ntk=total, groups=mats,
                  selected=sel,
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
