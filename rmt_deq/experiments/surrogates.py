"""The surrogates against the exact infinite-width kernels, as p grows.

* :func:`ck_surrogate_convergence`: the CK surrogate G~ (docs/theory.md §4) against the
  exact Implicit-CK G (§2.2);
* :func:`ntk_surrogate_convergence`: the DEQ's NTK surrogate (§5) against the exact NTK
  (§2.3), group by group, plain and refined;
* :func:`explicit_ntk_convergence`: the same for an explicit network (§6).

Each is :func:`rmt_deq.experiments.harness.sweep_dimension` with its own "compare at this
p"; errors are relative operator-norm distances
(:func:`rmt_deq.metrics.relative_operator_distance`, the exact kernel as reference) and the
decay rates are log-log slope fits with their standard errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._results import frozen_mapping
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.experiments.harness import (Record, SlopeFit, fitted_slope, fitted_slopes,
                                         sweep_dimension)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq._validation import check_variances
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate
from rmt_deq.kernels.exact import exact_ck, exact_ntk
from rmt_deq.kernels.explicit import exact_explicit_kernels
from rmt_deq.kernels.explicit_surrogate import explicit_ntk_surrogate
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate
from rmt_deq.networks.explicit import ExplicitNetwork
from rmt_deq.metrics import operator_norm, relative_operator_distance

__all__ = ["CKConvergenceRow", "CKConvergence", "ck_surrogate_convergence",
           "NTKConvergenceRow", "NTKConvergence", "ntk_surrogate_convergence",
           "ExplicitNTKConvergence", "explicit_ntk_convergence"]

#: the dimensions of the convergence checks by default (n = 0.8 p samples)
DEFAULT_PS = (200, 400, 800, 1600)


# ----------------------------------------------------------------------------------------
# adapters: the only places that read the kernels' result fields
# ----------------------------------------------------------------------------------------
def _ck_matrix(kernel: Any) -> np.ndarray:
    """The CK G of a CK result (exact or surrogate)."""
    return kernel.ck


def _ntk_matrices(kernel: Any) -> dict[str, np.ndarray]:
    """Group -> matrix of an NTK result (exact or surrogate, DEQ or explicit network),
    its parameter groups in order, then "total" (their sum)."""
    out = dict(kernel.groups)
    out["total"] = kernel.ntk
    return out


def _errors(exact: Mapping[str, np.ndarray], approx: Mapping[str, np.ndarray]) -> dict:
    """Group -> ||approx - exact|| / ||exact|| over the groups of ``exact``."""
    return {g: relative_operator_distance(approx[g], exact[g]) for g in exact}


# ----------------------------------------------------------------------------------------
# the CK surrogate
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CKConvergenceRow(Record):
    """The CK surrogate at one p.

    Attributes
    ----------
    p, n : int
    error : float
        ||G~ - G|| / ||G|| with the uncentred T (the package's convention, docs/theory.md
        §4.3).
    error_centred : float
        The same with the published centred T° (which drops the alpha3 s2 (1/p) 1 1^T
        block).
    norm_G : float
        ||G||.
    """

    p: int
    n: int
    error: float
    error_centred: float
    norm_G: float


@dataclass(frozen=True)
class CKConvergence(Record):
    """Result of :func:`ck_surrogate_convergence`.

    Attributes
    ----------
    activation : str
    sa : float
    K : int
        Number of classes.
    rows : tuple of CKConvergenceRow
        One per p, in order.
    slope, slope_centred : SlopeFit
        Log-log decay rate of ``error`` and ``error_centred``.
    """

    activation: str
    sa: float
    K: int
    rows: tuple
    slope: SlopeFit
    slope_centred: SlopeFit


def ck_surrogate_convergence(
    activation: ActivationLike,
    sa: float,
    ps: Iterable[int] = DEFAULT_PS,
    *,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    progress: Callable[[str], Any] | None = None,
) -> CKConvergence:
    """Relative operator-norm error of the CK surrogate G~ against the exact G over p.

    For each p (:func:`rmt_deq.experiments.harness.sweep_dimension`: a
    :func:`rmt_deq.data.mixture.default_mixture` with K classes, n = ratio p samples): the
    four equations (docs/theory.md §3) solved at the sample's tau0, the exact Implicit-CK
    at that solution (§2.2), and the surrogate (§4) with the uncentred T and with the
    published centred T°.

    Parameters
    ----------
    activation : name, Activation or callable
    sa : float
        Variance of the recurrent weights (sb = 1 - sa).
    ps : iterable of int
        Dimensions.
    K, ratio, seed :
        The data of :func:`~rmt_deq.experiments.harness.sweep_dimension`.
    progress : callable, optional
        Called with one line per p.

    Returns
    -------
    CKConvergence
    """
    act = get_activation(activation)

    def compare(p: int, mixture: GaussianMixture, sample: MixtureSample) -> CKConvergenceRow:
        sol = solve_four_equations(act, sa, mixture.statistics(sample).tau0)
        G = _ck_matrix(exact_ck(sample.X, act, sa, solution=sol))
        plain = _ck_matrix(mixture_ck_surrogate(mixture, sample, solution=sol))
        centred = _ck_matrix(mixture_ck_surrogate(mixture, sample, solution=sol,
                                                  T_convention="centred"))
        return CKConvergenceRow(p=p, n=sample.n, error=relative_operator_distance(plain, G),
                                error_centred=relative_operator_distance(centred, G),
                                norm_G=operator_norm(G))

    def describe(r: CKConvergenceRow) -> str:
        return (f"{act.name} sa={sa:g} K={K} p={r.p}: {r.error:.4f} "
                f"(centred T: {r.error_centred:.4f})")

    rows = sweep_dimension(compare, ps, K=K, ratio=ratio, seed=seed, describe=describe,
                           progress=progress)
    pv = [r.p for r in rows]
    return CKConvergence(activation=act.name, sa=float(sa), K=K, rows=rows,
                         slope=fitted_slope(pv, [r.error for r in rows]),
                         slope_centred=fitted_slope(pv, [r.error_centred for r in rows]))


# ----------------------------------------------------------------------------------------
# the NTK surrogate: DEQs and explicit networks
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NTKConvergenceRow(Record):
    """An NTK surrogate at one p.

    Attributes
    ----------
    p, n : int
    errors : mapping str -> float
        Group -> ||Theta~_g - Theta_g|| / ||Theta_g|| of the plain surrogate.
    errors_refined : mapping str -> float
        The same for the refined surrogate (``refine=True``, docs/theory.md §5.3).
    norm_total : float
        ||Theta|| of the exact NTK summed over all groups.
    """

    p: int
    n: int
    errors: Mapping[str, float]
    errors_refined: Mapping[str, float]
    norm_total: float


@dataclass(frozen=True)
class NTKConvergence(Record):
    """Result of :func:`ntk_surrogate_convergence`.

    Attributes
    ----------
    activation : str
    sa, sb : float
    K : int
    rows : tuple of NTKConvergenceRow
    slopes, slopes_refined : mapping str -> SlopeFit
        Group -> log-log decay rate of ``errors`` / ``errors_refined``.
    """

    activation: str
    sa: float
    sb: float
    K: int
    rows: tuple
    slopes: Mapping[str, SlopeFit]
    slopes_refined: Mapping[str, SlopeFit]


@dataclass(frozen=True)
class ExplicitNTKConvergence(Record):
    """Result of :func:`explicit_ntk_convergence`.

    Attributes
    ----------
    activations : tuple of str
        One per layer.
    K : int
    rows : tuple of NTKConvergenceRow
    slopes, slopes_refined : mapping str -> SlopeFit
    """

    activations: tuple
    K: int
    rows: tuple
    slopes: Mapping[str, SlopeFit]
    slopes_refined: Mapping[str, SlopeFit]


def _ntk_row(p: int, n: int, exact: dict, plain: dict, refined: dict,
             extra: Mapping[str, float] | None = None) -> NTKConvergenceRow:
    """The row of the plain and refined surrogates' errors (``extra`` appended to the
    plain ones)."""
    errors = _errors(exact, plain)
    errors.update(extra or {})
    return NTKConvergenceRow(p=p, n=n, errors=frozen_mapping(errors),
                             errors_refined=frozen_mapping(_errors(exact, refined)),
                             norm_total=operator_norm(exact["total"]))


def _describe_ntk(name: str) -> Callable[[NTKConvergenceRow], str]:
    def describe(r: NTKConvergenceRow) -> str:
        return (f"{name} p={r.p}: total {r.errors['total']:.4f} "
                f"(refined {r.errors_refined['total']:.4f})")
    return describe


def _group_slopes(rows: Sequence[NTKConvergenceRow], key: str) -> Mapping[str, SlopeFit]:
    errs = [getattr(r, key) for r in rows]
    return fitted_slopes([r.p for r in rows], {g: [e[g] for e in errs] for g in errs[0]})


def ntk_surrogate_convergence(
    activation: ActivationLike,
    sa: float,
    ps: Iterable[int] = DEFAULT_PS,
    *,
    sb: float | None = None,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[str], Any] | None = None,
) -> NTKConvergence:
    """Relative operator-norm error of the DEQ NTK surrogate against the exact NTK over p.

    For each p (the data of :func:`ck_surrogate_convergence`): the four equations at the
    sample's tau0, the exact NTK (:func:`rmt_deq.kernels.exact.exact_ntk`, docs/theory.md
    §2.3) and the surrogate (§5), plain and refined, for the groups "v", "A", "B", their
    sum "total", and "v+A" (the published G/(1 - sa Gdot)); "total_centred" (plain errors
    only) is the total with the published centred T°.

    Parameters
    ----------
    activation, sa, sb :
        The DEQ (sb defaults to 1 - sa).
    ps, K, ratio, seed, progress :
        As in :func:`ck_surrogate_convergence`.
    workers : int, optional
        Threads of the exact kernel.

    Returns
    -------
    NTKConvergence
    """
    act = get_activation(activation)
    sa_f, sb_f = check_variances(sa, sb)

    def compare(p: int, mixture: GaussianMixture, sample: MixtureSample) -> NTKConvergenceRow:
        sol = solve_four_equations(act, sa, mixture.statistics(sample).tau0, sb)
        exact = _ntk_matrices(exact_ntk(sample.X, act, sol.sa, sol.sb, solution=sol,
                                        workers=workers))
        exact["v+A"] = exact["v"] + exact["A"]
        approx = []
        for refine in (False, True):
            sur = _ntk_matrices(mixture_ntk_surrogate(mixture, sample, solution=sol,
                                                      refine=refine))
            sur["v+A"] = sur["v"] + sur["A"]
            approx.append(sur)
        centred = _ntk_matrices(mixture_ntk_surrogate(mixture, sample, solution=sol,
                                                      T_convention="centred"))
        return _ntk_row(p, sample.n, exact, *approx, extra={
            "total_centred": relative_operator_distance(centred["total"], exact["total"])})

    rows = sweep_dimension(compare, ps, K=K, ratio=ratio, seed=seed,
                           describe=_describe_ntk(f"{act.name} sa={sa_f:g}"),
                           progress=progress)
    return NTKConvergence(activation=act.name, sa=float(sa), sb=sb_f, K=K, rows=rows,
                          slopes=_group_slopes(rows, "errors"),
                          slopes_refined=_group_slopes(rows, "errors_refined"))


def explicit_ntk_convergence(
    activations: Sequence[ActivationLike],
    ps: Iterable[int] = DEFAULT_PS,
    *,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[str], Any] | None = None,
) -> ExplicitNTKConvergence:
    """As :func:`ntk_surrogate_convergence` for an explicit network (docs/theory.md §6):
    groups "v" (the CK), "W1".."WL" and "total", against the exact NTK of
    :func:`rmt_deq.kernels.explicit.exact_explicit_kernels` at the sample's tau0.

    Parameters
    ----------
    activations : sequence of name, Activation or callable
        One per layer (a single activation: one layer).
    ps, K, ratio, seed, workers, progress :
        As in :func:`ntk_surrogate_convergence`.

    Returns
    -------
    ExplicitNTKConvergence
    """
    net = ExplicitNetwork(activations)
    acts = net.activations

    def compare(p: int, mixture: GaussianMixture, sample: MixtureSample) -> NTKConvergenceRow:
        exact = _ntk_matrices(exact_explicit_kernels(
            sample.X, net, tau0=mixture.statistics(sample).tau0, workers=workers))
        approx = [_ntk_matrices(explicit_ntk_surrogate(mixture, sample, net, refine=refine))
                  for refine in (False, True)]
        return _ntk_row(p, sample.n, exact, *approx)

    rows = sweep_dimension(compare, ps, K=K, ratio=ratio, seed=seed,
                           describe=_describe_ntk("+".join(a.name for a in acts)),
                           progress=progress)
    return ExplicitNTKConvergence(activations=tuple(a.name for a in acts), K=K, rows=rows,
                                  slopes=_group_slopes(rows, "errors"),
                                  slopes_refined=_group_slopes(rows, "errors_refined"))
