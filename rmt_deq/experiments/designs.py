"""Designed explicit networks against the DEQ they were designed for (docs/theory.md §6).

* :func:`design_convergence`: exact infinite-width kernels of the designed network and of
  the DEQ, and the DEQ's surrogate, over p;
* :func:`sampled_comparison`: finite-width (sampled) kernels of both networks against the
  exact ones, on one data set.

Errors are relative operator-norm distances
(:func:`rmt_deq.metrics.relative_operator_distance`; the second kernel named is the
reference).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from rmt_deq._results import frozen_mapping
from rmt_deq._validation import as_data_matrix, as_rng, check_choice, check_positive_int
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.design.families import DesignFamily, get_family
from rmt_deq.design.network import DesignedNetwork
from rmt_deq.design.solve import design_network
from rmt_deq.design.targets import TARGETS, design_target
from rmt_deq.errors import InvalidParameterError
from rmt_deq.experiments.harness import Record, SlopeFit, fitted_slopes, sweep_dimension
from rmt_deq.experiments.surrogates import DEFAULT_PS
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate
from rmt_deq.kernels.exact import exact_ck, exact_ntk
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate
from rmt_deq.metrics import operator_norm, relative_operator_distance
from rmt_deq.sampling.deq import sampled_ck

__all__ = ["DesignConvergenceRow", "DesignConvergence", "design_convergence",
           "SampledComparison", "sampled_comparison"]

#: the error series of :func:`design_convergence`, each with its fitted slope
DESIGN_ERRORS = ("explicit_vs_deq", "surrogate_vs_deq", "surrogate_vs_explicit")
#: the DEQ sampler of :func:`sampled_comparison` splits its realizations into at most this
#: many batches for its Monte-Carlo error bar (docs/theory.md §8.2)
MAX_BATCHES = 16


# ----------------------------------------------------------------------------------------
# adapters: the only places that read the kernels' and the design's result fields
# ----------------------------------------------------------------------------------------
def _deq_kernels(target: str, act: Activation, mixture: GaussianMixture,
                 sample: MixtureSample, sol: FixedPointSolution, ntk_groups: Any,
                 refine: bool, workers: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(exact kernel, surrogate) of the DEQ: the CK G, or the NTK summed over
    ``ntk_groups``."""
    if target == "ck":
        exact = exact_ck(sample.X, act, sol.sa, sol.sb, solution=sol, workers=workers).ck
        return exact, mixture_ck_surrogate(mixture, sample, solution=sol).ck
    exact = exact_ntk(sample.X, act, sol.sa, sol.sb, solution=sol, groups=ntk_groups,
                      workers=workers).ntk
    return exact, mixture_ntk_surrogate(mixture, sample, solution=sol, groups=ntk_groups,
                                        refine=refine).ntk


def _explicit_kernel(net: DesignedNetwork, X: np.ndarray, target: str,
                     workers: int | None) -> np.ndarray:
    """The exact kernel of the designed network: its CK, or its NTK over all groups."""
    if target == "ck":
        return net.exact_kernels(X, groups=("v",), workers=workers).ck
    return net.exact_kernels(X, workers=workers).ntk


def _explicit_sampled_ck(net: DesignedNetwork, X: np.ndarray, width: int,
                         realizations: int, gen: np.random.Generator) -> np.ndarray:
    """The designed network's CK Gram matrix averaged over ``realizations`` weight draws."""
    G = np.zeros((X.shape[1], X.shape[1]))
    for _ in range(realizations):
        G += net.forward(X, width=width, rng=gen).gram
    return G / realizations


# ----------------------------------------------------------------------------------------
# exact kernels over p
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DesignConvergenceRow(Record):
    """The designed network and the DEQ at one p.

    Attributes
    ----------
    p, n : int
    tau0 : float
        The sample's data scale (the DEQ is solved and the network designed there).
    explicit_vs_deq : float
        ||K_explicit - K_DEQ|| / ||K_DEQ|| (exact infinite-width kernels).
    surrogate_vs_deq : float
        ||K~ - K_DEQ|| / ||K_DEQ|| (the DEQ's surrogate, docs/theory.md §4 / §5).
    surrogate_vs_explicit : float
        ||K~ - K_explicit|| / ||K_explicit|| (the design makes the two networks'
        surrogates equal).
    design_residual : float
        Max absolute equation error of the design.
    params : mapping str -> float
        The designed parameters.
    norm_deq : float
        ||K_DEQ||.
    eigenvalues : mapping str -> ndarray, or None
        With ``keep_eigenvalues``: the spectra of the three kernels ("deq", "explicit",
        "surrogate"), read-only.
    """

    p: int
    n: int
    tau0: float
    explicit_vs_deq: float
    surrogate_vs_deq: float
    surrogate_vs_explicit: float
    design_residual: float
    params: Mapping[str, float]
    norm_deq: float
    eigenvalues: Mapping[str, np.ndarray] | None = None


@dataclass(frozen=True)
class DesignConvergence(Record):
    """Result of :func:`design_convergence`.

    Attributes
    ----------
    activation : str
    sa : float
    family : str
    target : {"ck", "ntk"}
    refine : bool
    K : int
    rows : tuple of DesignConvergenceRow
    slopes : mapping str -> SlopeFit
        Log-log decay rate of each error series (:data:`DESIGN_ERRORS`).
    """

    activation: str
    sa: float
    family: str
    target: str
    refine: bool
    K: int
    rows: tuple
    slopes: Mapping[str, SlopeFit]


def design_convergence(
    activation: ActivationLike,
    sa: float,
    ps: Iterable[int] = DEFAULT_PS,
    *,
    family: str | DesignFamily = "quadcubic2",
    target: str = "ck",
    sb: float | None = None,
    ntk_groups: Iterable[str] | None = None,
    refine: bool = False,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    workers: int | None = None,
    keep_eigenvalues: bool = False,
    progress: Callable[[str], Any] | None = None,
) -> DesignConvergence:
    """Exact explicit-network kernel vs exact DEQ kernel vs the DEQ's surrogate, over p.

    For each p (:func:`rmt_deq.experiments.harness.sweep_dimension`, the data of
    :func:`rmt_deq.experiments.surrogates.ck_surrogate_convergence`): the DEQ solved at the
    sample's tau0, a network of ``family`` designed for that target (docs/theory.md §6.4),
    and the three distances of :class:`DesignConvergenceRow`: the exact kernels are the
    explicit network's layer recursion of bivariate expectations (§6.2, §6.3) and the
    DEQ's fixed point (§2.2, §2.3).

    K is the CK G for ``target="ck"`` and the NTK summed over ``ntk_groups`` (DEQ) / all
    groups (explicit network) for ``target="ntk"``.  With ``refine`` (NTK, odd activation,
    odd family) the design matches the refined target of
    :func:`rmt_deq.design.targets.design_target` and the surrogate is the refined one (§5.3).

    Parameters
    ----------
    activation, sa, sb :
        The DEQ (sb defaults to 1 - sa).
    ps : iterable of int
    family : str or DesignFamily
    target : {"ck", "ntk"}
    ntk_groups : iterable of {"v", "A", "B"}, optional
        DEQ groups of the NTK target (target="ntk" only).
    refine : bool
        Refined NTK target (target="ntk" only).
    K, ratio, seed, progress :
        As in :func:`~rmt_deq.experiments.surrogates.ck_surrogate_convergence`.
    workers : int, optional
        Threads of the exact kernels.
    keep_eigenvalues : bool
        Keep the three spectra in each row.

    Returns
    -------
    DesignConvergence

    Raises
    ------
    InvalidParameterError
        ``ntk_groups`` or ``refine`` with target="ck".
    UnknownOptionError
        Unknown target or family.
    InfeasibleDesignError
        The family cannot match the target.
    """
    check_choice(target, "target", TARGETS)
    if target != "ntk" and (ntk_groups is not None or refine):
        raise InvalidParameterError("ntk_groups and refine apply to target='ntk' only")
    act = get_activation(activation)
    family_name = get_family(family).name

    def compare(p: int, mixture: GaussianMixture,
                sample: MixtureSample) -> DesignConvergenceRow:
        tau0 = mixture.statistics(sample).tau0
        sol = solve_four_equations(act, sa, tau0, sb)
        tgt = design_target(sol, target=target, ntk_groups=ntk_groups, refine=refine)
        net = design_network(tgt, family)
        K_deq, K_sur = _deq_kernels(target, act, mixture, sample, sol, tgt.ntk_groups,
                                    refine, workers)
        K_exp = _explicit_kernel(net, sample.X, target, workers)
        eigenvalues = None
        if keep_eigenvalues:
            eigenvalues = frozen_mapping({"deq": np.linalg.eigvalsh(K_deq),
                                          "explicit": np.linalg.eigvalsh(K_exp),
                                          "surrogate": np.linalg.eigvalsh(K_sur)})
        return DesignConvergenceRow(
            p=p, n=sample.n, tau0=tau0,
            explicit_vs_deq=relative_operator_distance(K_exp, K_deq),
            surrogate_vs_deq=relative_operator_distance(K_sur, K_deq),
            surrogate_vs_explicit=relative_operator_distance(K_sur, K_exp),
            design_residual=net.residual, params=frozen_mapping(net.params),
            norm_deq=operator_norm(K_deq), eigenvalues=eigenvalues)

    def describe(r: DesignConvergenceRow) -> str:
        return (f"{act.name} sa={sa:g} {family_name} {target} p={r.p}: explicit-DEQ "
                f"{r.explicit_vs_deq:.4g}, surrogate-DEQ {r.surrogate_vs_deq:.4g}, "
                f"surrogate-explicit {r.surrogate_vs_explicit:.4g}")

    rows = sweep_dimension(compare, ps, K=K, ratio=ratio, seed=seed, describe=describe,
                           progress=progress)
    slopes = fitted_slopes([r.p for r in rows],
                           {k: [getattr(r, k) for r in rows] for k in DESIGN_ERRORS})
    return DesignConvergence(activation=act.name, sa=float(sa), family=family_name,
                             target=target, refine=bool(refine), K=K, rows=rows,
                             slopes=slopes)


# ----------------------------------------------------------------------------------------
# finite width
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampledComparison(Record):
    """Result of :func:`sampled_comparison`: relative operator-norm distances (the second
    kernel named is the reference) and the DEQ sampler's Monte-Carlo error bar.

    Attributes
    ----------
    width, realizations : int
    explicit_sampled_vs_deq_sampled : float
    explicit_sampled_vs_explicit_exact : float
    deq_sampled_vs_deq_exact : float
    explicit_exact_vs_deq_exact : float
    explicit_sampled_vs_deq_exact : float
    deq_mc_error_relative : float
        The DEQ sampler's error bar relative to the norm of its average (docs/theory.md
        §8.2).
    """

    width: int
    realizations: int
    explicit_sampled_vs_deq_sampled: float
    explicit_sampled_vs_explicit_exact: float
    deq_sampled_vs_deq_exact: float
    explicit_exact_vs_deq_exact: float
    explicit_sampled_vs_deq_exact: float
    deq_mc_error_relative: float


def sampled_comparison(net: DesignedNetwork, X: Any, *, width: int, realizations: int = 4,
                       rng: Any = 0, workers: int | None = None) -> SampledComparison:
    """Sampled (finite-width) CK Gram matrices of a designed network and of its DEQ
    against the exact kernels.

    The explicit network's Gram matrix is averaged over ``realizations`` draws of
    :meth:`DesignedNetwork.forward`; the DEQ's comes from
    :func:`rmt_deq.sampling.deq.sampled_ck` with the target's four-equation solution (same
    centring as the exact kernels; docs/theory.md §8).

    Parameters
    ----------
    net : DesignedNetwork
        A CK design for a DEQ (``net.target.solution`` set).
    X : array_like, shape (p, n)
        Data; columns are samples (tau0 should be the design's).
    width : int
        m, for both networks.
    realizations : int
    rng : int or Generator
        Randomness: the explicit network's weights are drawn from it, and the DEQ
        sampler's seed too.
    workers : int, optional
        Threads of the exact-kernel engines.

    Returns
    -------
    SampledComparison

    Raises
    ------
    InvalidParameterError
        ``net`` is not a CK design of a DEQ; bad width or realizations.
    """
    if not isinstance(net, DesignedNetwork):
        raise InvalidParameterError(f"net must be a DesignedNetwork, got {type(net).__name__}")
    sol = net.target.solution
    if sol is None or net.target.kind != "ck":
        raise InvalidParameterError("sampled_comparison needs a CK design of a DEQ "
                                    "(design_target(activation, sa, ...))")
    Xa = as_data_matrix(X)
    m = check_positive_int(width, "width")
    R = check_positive_int(realizations, "realizations")
    gen = as_rng(rng)
    seed = int(gen.integers(2 ** 62))
    G_exp = _explicit_sampled_ck(net, Xa, m, R, gen)
    deq = sampled_ck(Xa, sol.activation, sol.sa, sol.sb, width=m, realizations=R,
                     rng=seed, solution=sol, batches=min(R, MAX_BATCHES))
    G_deq = deq.ck
    E_deq = exact_ck(Xa, sol.activation, sol.sa, sol.sb, solution=sol, workers=workers).ck
    E_exp = _explicit_kernel(net, Xa, "ck", workers)
    dist = relative_operator_distance
    return SampledComparison(
        width=m, realizations=R,
        explicit_sampled_vs_deq_sampled=dist(G_exp, G_deq),
        explicit_sampled_vs_explicit_exact=dist(G_exp, E_exp),
        deq_sampled_vs_deq_exact=dist(G_deq, E_deq),
        explicit_exact_vs_deq_exact=dist(E_exp, E_deq),
        explicit_sampled_vs_deq_exact=dist(G_exp, E_deq),
        deq_mc_error_relative=float(deq.error_relative["ck"]))
