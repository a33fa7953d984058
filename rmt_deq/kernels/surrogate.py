"""What the CK and NTK surrogates share (docs/theory.md §4, §5).

Both surrogates (and those of explicit networks) are matrices of one form on mixture data
(X is p x n, columns are samples)::

    c1 X^T X + V A V^T + c0 I,      V = [J/sqrt(p), psi]   (n x (K+1)),

with scalars c1, c0 and a symmetric (K+1) x (K+1) matrix A built from the docs/theory.md §1
statistics; :class:`SurrogateCoefficients` holds them (the input of the spectral code).  A
surrogate is computed either on a sample of a known mixture (exact statistics and psi,
:func:`mixture_data`) or on any labelled data (plug-in estimates, :func:`plugin_data`); both
give a :class:`SurrogateData` (validated X, X^T X formed once, codes, psi, statistics, V and
the scale note), from which the CK (:mod:`rmt_deq.kernels.ck_surrogate`) and NTK
(:mod:`rmt_deq.kernels.ntk_surrogate`) surrogates build their
:class:`~rmt_deq.kernels.result.Kernel` (``route="surrogate"``, ``info`` a
:class:`SurrogateDetails`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rmt_deq._results import frozen_mapping, readonly
from rmt_deq._validation import as_data_matrix, as_labels
from rmt_deq.activations import ActivationLike
from rmt_deq.data._scale import SOURCE_MIXTURE, SOURCE_PLUGIN, SOURCE_SOLUTION, note_of
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.data.statistics import MixtureStatistics, PluginEstimate, build_V, plugin_statistics
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.fixed_point.centring import check_solution

__all__ = ["SurrogateCoefficients", "SurrogateData", "SurrogateDetails", "T_CONVENTIONS",
           "TAU0_RTOL", "mixture_data", "plugin_data", "labelled_data", "resolve_solution",
           "check_tau0", "tau0_source", "check_statistics_type"]

#: the T of the J block: "uncentred" T_ab = tr(C_a C_b)/p (correct) or "centred" T° (the
#: published formula, for comparisons only)
T_CONVENTIONS = ("uncentred", "centred")
#: relative tolerance for solution.tau0 vs stats.tau0
TAU0_RTOL = 1e-6


@dataclass(frozen=True, eq=False)
class SurrogateCoefficients:
    """A surrogate as ``c1 X^T X + V A V^T + c0 I``.

    Attributes
    ----------
    c1 : float
        Coefficient of X^T X: alpha1 (Sigma form of the CK) or (alpha1 - sb)/sa (G form).
    A : ndarray, shape (K+1, K+1)
        Symmetric low-rank coefficient matrix (the docs/theory.md §4 A, divided by sa in
        the G form; D of docs/theory.md §5 for the NTK).  Blocks: ``A[:K, :K]`` (J block,
        multiplies J J^T/p), ``A[:K, K]`` (J-psi), ``A[K, K]`` (psi-psi).
    c0 : float
        Coefficient of I: tau^2 - tau0^2 alpha1 (Sigma form) or that divided by sa (G form).
    form : {"G", "Sigma", "NTK"}
    T_convention : {"uncentred", "centred"}
    sa, sb : float
        The variances of the solution (G = (Sigma - sb X^T X)/sa; nan for explicit
        networks).
    """

    c1: float
    A: np.ndarray
    c0: float
    form: str
    T_convention: str
    sa: float
    sb: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "A", readonly(self.A, dtype=float))

    @property
    def K(self) -> int:
        """Number of classes."""
        return int(self.A.shape[0]) - 1

    def matrix(self, X: Any, V: Any) -> np.ndarray:
        """Build c1 X^T X + V A V^T + c0 I (n x n, exactly symmetric).

        Parameters
        ----------
        X : array_like, shape (p, n)
            Data; columns are samples.
        V : array_like, shape (n, K+1)
            [J/sqrt(p), psi].

        Raises
        ------
        ShapeMismatchError, NonFiniteInputError
            X or V not finite, or V not n x (K+1).
        """
        Xa = as_data_matrix(X)
        Va = as_data_matrix(V, "V")
        n = Xa.shape[1]
        if Va.shape != (n, self.K + 1):
            raise ShapeMismatchError(
                f"V must have shape (n, K+1) = ({n}, {self.K + 1}); got {Va.shape}")
        return self.from_gram(Xa.T @ Xa, Va)

    def from_gram(self, XtX: np.ndarray, V: np.ndarray) -> np.ndarray:
        """c1 X^T X + V A V^T + c0 I from the Gram matrix X^T X and V, as the caller
        computed them (nothing is checked: :meth:`matrix` is the validated form)."""
        M = self.c1 * XtX + (V @ self.A) @ V.T
        M = 0.5 * (M + M.T)
        M[np.diag_indices(M.shape[0])] += self.c0
        return M


@dataclass(frozen=True, eq=False)
class SurrogateData:
    """The data a surrogate is built on, resolved once.

    Attributes
    ----------
    X : ndarray, shape (p, n)
        The validated data (columns are samples).
    XtX : ndarray, shape (n, n)
        X^T X, formed once.
    codes : ndarray of int, shape (n,)
        Class of each column in 0..K-1.
    psi : ndarray, shape (n,)
        psi_i = (||omega_i||^2 - tr C_a)/p, exact or estimated.
    statistics : MixtureStatistics
        The docs/theory.md §1 statistics (exact or plug-in).
    V : ndarray, shape (n, K+1)
        [J/sqrt(p), psi].
    plugin : PluginEstimate or None
        The plug-in estimate when the statistics were estimated from the data.
    notes : tuple of str
        Remarks about the data, e.g. that X looks unscaled
        (:func:`rmt_deq.data.conventions.scale_note`); empty when there are none.
    """

    X: np.ndarray = field(repr=False)
    XtX: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    psi: np.ndarray = field(repr=False)
    statistics: MixtureStatistics = field(repr=False)
    V: np.ndarray = field(repr=False)
    plugin: PluginEstimate | None = field(default=None, repr=False)
    notes: tuple = ()

    def __post_init__(self) -> None:
        for name in ("X", "XtX", "codes", "psi", "V"):
            object.__setattr__(self, name, readonly(getattr(self, name)))


def _data(X: np.ndarray, codes: np.ndarray, psi: np.ndarray, stats: MixtureStatistics,
          plugin: PluginEstimate | None) -> SurrogateData:
    note = note_of(X)
    return SurrogateData(X=X, XtX=X.T @ X, codes=codes, psi=psi, statistics=stats,
                         V=build_V(codes, psi, X.shape[0], stats.K), plugin=plugin,
                         notes=() if note is None else (note,))


def mixture_data(mixture: GaussianMixture, sample: MixtureSample) -> SurrogateData:
    """A sample of a known mixture: its exact statistics and psi.

    Raises
    ------
    InvalidParameterError
        ``mixture`` is not a GaussianMixture or ``sample`` not a MixtureSample.
    ShapeMismatchError
        The sample does not come from this mixture (p, K).
    """
    if not isinstance(mixture, GaussianMixture):
        raise InvalidParameterError(
            f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    stats = mixture.statistics(sample)
    psi = mixture.psi(sample)
    X = as_data_matrix(sample.X)
    return _data(X, np.asarray(sample.labels, dtype=np.int64), psi, stats, None)


def plugin_data(X: Any, labels: Any, diag_estimator: str = "distribution_free"
                ) -> SurrogateData:
    """Any labelled data: plug-in statistics and psi
    (:func:`rmt_deq.data.statistics.plugin_statistics`, which validates X and the labels).
    """
    est = plugin_statistics(X, labels, diag_estimator=diag_estimator)
    # X passed plugin_statistics' validation: this is the float64 array it validated
    Xa = np.asarray(X, dtype=np.float64)
    return _data(Xa, np.asarray(est.codes), np.asarray(est.psi), est.statistics, est)


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


def check_statistics_type(stats: Any) -> MixtureStatistics:
    """``stats`` if it is a MixtureStatistics, else InvalidParameterError."""
    if not isinstance(stats, MixtureStatistics):
        raise InvalidParameterError(
            f"stats must be MixtureStatistics, got {type(stats).__name__}")
    return stats


def labelled_data(X: Any, labels: Any, stats: MixtureStatistics, psi: Any) -> SurrogateData:
    """Labelled data with given statistics and psi (the matrix builders
    :func:`~rmt_deq.kernels.ck_surrogate.ck_surrogate_matrix` and
    :func:`~rmt_deq.kernels.ntk_surrogate.ntk_surrogate_matrix`, which return arrays: no
    scale note is made).

    Raises
    ------
    ShapeMismatchError
        X / labels / psi / stats disagree on p, n, K or the class sizes.
    NonFiniteInputError
        NaN/inf in X or psi.
    InvalidParameterError
        ``stats`` is not a MixtureStatistics.
    """
    Xa = as_data_matrix(X)
    p, n = Xa.shape
    check_statistics_type(stats)
    if stats.p != p:
        raise ShapeMismatchError(f"X has p = {p} rows but the statistics are for p = {stats.p}")
    codes = _codes_for(labels, n, stats.K)
    counts = np.bincount(codes, minlength=stats.K)
    if not np.array_equal(counts, np.asarray(stats.sizes)):
        raise ShapeMismatchError(
            f"class sizes of the labels {counts.tolist()} differ from those of the "
            f"statistics {np.asarray(stats.sizes).tolist()} (C° uses the sample proportions)")
    V = build_V(codes, psi, p, stats.K)          # validates psi
    return SurrogateData(X=Xa, XtX=Xa.T @ Xa, codes=codes, psi=V[:, stats.K].copy(),
                         statistics=stats, V=V)


def resolve_solution(activation: ActivationLike | FixedPointSolution | None, sa: Any,
                     sb: Any, solution: FixedPointSolution | None,
                     stats: MixtureStatistics) -> FixedPointSolution:
    """The four-equation solution of a surrogate: given (positionally in place of the
    activation, or as ``solution=``), or solved at ``tau0 = stats.tau0``.

    Raises
    ------
    InvalidParameterError
        Both or neither of a solution and (activation, sa); a solution that is not a
        FixedPointSolution.
    """
    if isinstance(activation, FixedPointSolution):
        if solution is not None:
            raise InvalidParameterError("pass the solution either positionally or as "
                                        "solution=, not both")
        solution, activation = activation, None
    if solution is not None:
        if activation is not None or sa is not None or sb is not None:
            raise InvalidParameterError(
                "give either solution= or (activation, sa[, sb]), not both")
        return check_solution(solution)
    if activation is None or sa is None:
        raise InvalidParameterError(
            "give a FixedPointSolution, or an activation and sa (sb defaults to 1 - sa)")
    return solve_four_equations(activation, sa, tau0=stats.tau0, sb=sb)


def check_tau0(solution: FixedPointSolution, stats: MixtureStatistics,
               allow_tau0_mismatch: bool) -> None:
    """Refuse a solution solved at another tau0 than the statistics' (unless allowed)."""
    if allow_tau0_mismatch:
        return
    if abs(solution.tau0 - stats.tau0) > TAU0_RTOL * stats.tau0:
        raise InvalidParameterError(
            f"the fixed point was solved at tau0 = {solution.tau0:.10g} but the data "
            f"statistics have tau0 = sqrt(tr C°/p) = {stats.tau0:.10g}; re-solve with "
            f"solve_four_equations(activation, sa, tau0=stats.tau0, sb=sb), or pass "
            f"allow_tau0_mismatch=True to use the solution as is")


def tau0_source(tau0: float, stats: MixtureStatistics, plugin: Any) -> str:
    """"plug-in from labels" / "mixture statistics" when tau0 is that of ``stats``, else
    "given (four-equation solution)" (a solution passed with allow_tau0_mismatch)."""
    if abs(float(tau0) - stats.tau0) > TAU0_RTOL * stats.tau0:
        return SOURCE_SOLUTION
    return SOURCE_PLUGIN if plugin is not None else SOURCE_MIXTURE


@dataclass(frozen=True, eq=False)
class SurrogateDetails:
    """Diagnostics of a surrogate kernel (the ``info`` of its :class:`Kernel`).

    Attributes
    ----------
    coefficients : mapping of str to SurrogateCoefficients
        The matrices as c1 X^T X + V A V^T + c0 I (the input of the spectral code): for
        the CK its "G" and "Sigma" forms, for the NTK each selected group and "total".
    group_coefficients : mapping of str to NTKCoefficients
        The NTK expansion's scalar coefficients per group and "total" (empty for the CK).
    Sigma : ndarray, shape (n, n), or None
        The CK surrogate's preactivation form Sigma~ = sa G~ + sb X^T X (None for NTKs).
    V : ndarray, shape (n, K+1)
        [J/sqrt(p), psi].
    psi : ndarray, shape (n,)
    codes : ndarray of int, shape (n,)
    statistics : MixtureStatistics
    T_convention : {"uncentred", "centred"}
    refine : bool
        Whether the NTK's second-order refinement was added (False for the CK).
    plugin : PluginEstimate or None
        The plug-in estimate when the statistics were estimated from the data.
    notes : tuple of str
        Remarks about the data, e.g. that X looks unscaled
        (:func:`rmt_deq.data.conventions.scale_note`); empty when there are none.
    network : object or None
        An explicit network's layer coefficients (None for a DEQ).
    """

    coefficients: Mapping[str, SurrogateCoefficients] = field(repr=False)
    V: np.ndarray = field(repr=False)
    psi: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    statistics: MixtureStatistics = field(repr=False)
    T_convention: str
    group_coefficients: Mapping[str, Any] = field(default_factory=dict)
    Sigma: np.ndarray | None = field(default=None, repr=False)
    refine: bool = False
    plugin: PluginEstimate | None = field(default=None, repr=False)
    notes: tuple = ()
    network: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("coefficients", "group_coefficients"):
            object.__setattr__(self, name, frozen_mapping(getattr(self, name)))
        for name in ("V", "psi", "codes"):
            object.__setattr__(self, name, readonly(getattr(self, name)))
        if self.Sigma is not None:
            object.__setattr__(self, "Sigma", readonly(self.Sigma, dtype=float))
        object.__setattr__(self, "notes", tuple(self.notes))

    @classmethod
    def of(cls, data: SurrogateData, T_convention: str,
           coefficients: Mapping[str, SurrogateCoefficients], **fields: Any
           ) -> "SurrogateDetails":
        """The details of a surrogate built on ``data``."""
        return cls(coefficients=coefficients, V=data.V, psi=data.psi, codes=data.codes,
                   statistics=data.statistics, T_convention=T_convention,
                   plugin=data.plugin, notes=data.notes, **fields)

    def to_dict(self) -> dict:
        """JSON-ready summary: the statistics, the convention, refine, the notes and the
        scalar coefficients of each matrix."""
        return {"statistics": self.statistics.as_dict(), "T_convention": self.T_convention,
                "refine": bool(self.refine), "notes": list(self.notes),
                "coefficients": {k: {"c1": c.c1, "c0": c.c0, "A": c.A.tolist(),
                                     "form": c.form}
                                 for k, c in self.coefficients.items()}}

    def replace(self, **changes: Any) -> "SurrogateDetails":
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
