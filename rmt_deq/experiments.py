"""Verification by convergence: how fast theory and exact kernels meet as p grows.

The functions here return plain records (lists of dicts) so that tests, benchmarks and the
figure script all use the same measurements.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._validation import as_data_matrix, as_rng, check_choice, check_positive_int
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.design.families import DesignFamily, get_family
from rmt_deq.design.network import DesignedNetwork
from rmt_deq.design.solve import design_network
from rmt_deq.design.targets import TARGETS, design_target
from rmt_deq.errors import InvalidParameterError
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.exact import exact_ck
from rmt_deq.data.mixture import default_mixture
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate
from rmt_deq.kernels.exact import exact_ntk
from rmt_deq.kernels.explicit import exact_explicit_kernels
from rmt_deq.kernels.explicit_surrogate import explicit_ntk_surrogate
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate
from rmt_deq.networks.explicit import ExplicitNetwork
from rmt_deq.sampling.deq import sampled_ck

__all__ = ["relative_operator_error", "fitted_slope", "ck_surrogate_convergence",
           "ntk_surrogate_convergence", "explicit_ntk_convergence", "design_convergence",
           "sampled_comparison"]


def relative_operator_error(exact: np.ndarray, approx: np.ndarray) -> float:
    """||exact - approx||_2 / ||exact||_2 (spectral norms; symmetric matrices)."""
    num = np.abs(np.linalg.eigvalsh(exact - approx)).max()
    den = np.abs(np.linalg.eigvalsh(exact)).max()
    return float(num / den)


def fitted_slope(p: Sequence[float], err: Sequence[float]) -> float:
    """Least-squares slope of log(err) against log(p)."""
    return float(np.polyfit(np.log(np.asarray(p, float)), np.log(np.asarray(err, float)), 1)[0])


def ck_surrogate_convergence(
    activation: ActivationLike,
    sa: float,
    ps: Iterable[int] = (200, 400, 800, 1600),
    *,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    progress: Callable[[str], Any] | None = None,
) -> dict:
    """Relative operator-norm error of the CK surrogate G~ against the exact G over p.

    For each p: a :func:`rmt_deq.data.mixture.default_mixture` with K classes (distinct means
    and covariances), n = ratio * p samples, the four equations solved at the mixture's
    tau0, the exact Implicit-CK at that solution, and the surrogate with the uncentred T
    and with the published centred T° (which drops the alpha3 s2 (1/p) 1 1^T block).

    Returns
    -------
    dict with ``rows`` (p, n, error, error_centred, norm_G) and the fitted log-log
    ``slope`` and ``slope_centred``.
    """
    act = get_activation(activation)
    rows = []
    for p in ps:
        mix = default_mixture(int(p), K, rng=seed)
        data = mix.sample(int(round(ratio * p)), rng=seed + 1000 + int(p))
        sol = solve_four_equations(act, sa, mix.statistics(data).tau0)
        G = exact_ck(data.X, act, sa, solution=sol).G
        err = relative_operator_error(G, mixture_ck_surrogate(mix, data, solution=sol).G)
        err_c = relative_operator_error(
            G, mixture_ck_surrogate(mix, data, solution=sol, T_convention="centred").G)
        rows.append({"p": int(p), "n": data.n, "error": err, "error_centred": err_c,
                     "norm_G": float(np.abs(np.linalg.eigvalsh(G)).max())})
        if progress:
            progress(f"{act.name} sa={sa:g} K={K} p={p}: {err:.4f} (centred T: {err_c:.4f})")
    pv = [r["p"] for r in rows]
    return {"activation": act.name, "sa": float(sa), "K": K, "rows": rows,
            "slope": fitted_slope(pv, [r["error"] for r in rows]),
            "slope_centred": fitted_slope(pv, [r["error_centred"] for r in rows])}


def _errors(exact: Mapping[str, np.ndarray], approx: Mapping[str, np.ndarray]) -> dict:
    return {g: relative_operator_error(exact[g], approx[g]) for g in exact}


def _slopes(ps: list, rows: list, key: str) -> dict:
    names = rows[0][key].keys()
    return {g: fitted_slope(ps, [r[key][g] for r in rows]) for g in names}


def ntk_surrogate_convergence(
    activation: ActivationLike,
    sa: float,
    ps: Iterable[int] = (200, 400, 800, 1600),
    *,
    sb: float | None = None,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[str], Any] | None = None,
) -> dict:
    """Relative operator-norm error of the DEQ NTK surrogate against the exact NTK over p.

    For each p: :func:`rmt_deq.data.mixture.default_mixture` (K classes), n = ratio p samples
    (seeds as in :func:`rmt_deq.experiments.ck_surrogate_convergence`), the four equations at the
    mixture's tau0, the exact NTK (:func:`rmt_deq.kernels.exact.exact_ntk`) and the surrogate,
    plain and refined, for the groups "v", "A", "B", their sum "total", and "v+A" (the
    published G/(1 - sa Gdot)); "total_centred" is the plain total with the centred T°.

    Returns
    -------
    dict with ``rows`` (p, n, ``errors`` and ``errors_refined``: group -> error,
    ``norm_total``), the fitted log-log ``slopes`` and ``slopes_refined`` (group -> slope),
    activation, sa, sb, K.
    """

    act = get_activation(activation)
    rows = []
    for p in ps:
        mix = default_mixture(int(p), K, rng=seed)
        data = mix.sample(int(round(ratio * p)), rng=seed + 1000 + int(p))
        sol = solve_four_equations(act, sa, mix.statistics(data).tau0, sb)
        ex = exact_ntk(data.X, act, sol.sa, sol.sb, solution=sol, workers=workers)
        exact = dict(ex.groups)
        exact["total"] = ex.total
        exact["v+A"] = ex.groups["v"] + ex.groups["A"]
        rec: dict = {"p": int(p), "n": data.n,
                     "norm_total": float(np.abs(np.linalg.eigvalsh(ex.total)).max())}
        for key, refine in (("errors", False), ("errors_refined", True)):
            sur = mixture_ntk_surrogate(mix, data, solution=sol, refine=refine)
            approx = dict(sur.groups)
            approx["total"] = sur.total
            approx["v+A"] = sur.groups["v"] + sur.groups["A"]
            rec[key] = _errors(exact, approx)
        cen = mixture_ntk_surrogate(mix, data, solution=sol, T_convention="centred")
        rec["errors"]["total_centred"] = _errors({"t": ex.total}, {"t": cen.total})["t"]
        rows.append(rec)
        if progress:
            progress(f"{act.name} sa={sol.sa:g} p={p}: total {rec['errors']['total']:.4f} "
                     f"(refined {rec['errors_refined']['total']:.4f})")
    pv = [r["p"] for r in rows]
    return {"activation": act.name, "sa": float(sa), "sb": float(sol.sb), "K": K,
            "rows": rows, "slopes": _slopes(pv, rows, "errors"),
            "slopes_refined": _slopes(pv, rows, "errors_refined")}


def explicit_ntk_convergence(
    activations: Sequence[ActivationLike],
    ps: Iterable[int] = (200, 400, 800, 1600),
    *,
    K: int = 2,
    ratio: float = 0.8,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[str], Any] | None = None,
) -> dict:
    """As :func:`ntk_surrogate_convergence` for an explicit network (groups "v" = the CK,
    "W1".."WL", "total"), against :func:`exact_explicit_kernels`."""

    net = ExplicitNetwork(activations)
    acts = net.activations
    rows = []
    for p in ps:
        mix = default_mixture(int(p), K, rng=seed)
        data = mix.sample(int(round(ratio * p)), rng=seed + 1000 + int(p))
        ex = exact_explicit_kernels(data.X, net, tau0=mix.statistics(data).tau0,
                                    workers=workers)
        exact = dict(ex.groups)
        exact["total"] = ex.ntk
        rec: dict = {"p": int(p), "n": data.n,
                     "norm_total": float(np.abs(np.linalg.eigvalsh(ex.ntk)).max())}
        for key, refine in (("errors", False), ("errors_refined", True)):
            sur = explicit_ntk_surrogate(mix, data, net, refine=refine)
            approx = dict(sur.groups)
            approx["total"] = sur.ntk
            rec[key] = _errors(exact, approx)
        rows.append(rec)
        if progress:
            progress(f"{'+'.join(a.name for a in acts)} p={p}: total "
                     f"{rec['errors']['total']:.4f} (refined {rec['errors_refined']['total']:.4f})")
    pv = [r["p"] for r in rows]
    return {"activations": [a.name for a in acts], "K": K, "rows": rows,
            "slopes": _slopes(pv, rows, "errors"),
            "slopes_refined": _slopes(pv, rows, "errors_refined")}


def design_convergence(
    activation: ActivationLike,
    sa: float,
    ps: Iterable[int] = (200, 400, 800, 1600),
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
) -> dict:
    """Exact ENN kernel vs exact DEQ kernel vs the DEQ's surrogate, over p.

    For each p: :func:`rmt_deq.data.mixture.default_mixture` (K classes) with n = ratio p
    samples (the seeds of :func:`rmt_deq.experiments.ck_surrogate_convergence`), the DEQ solved
    at the sample's tau0, a network of ``family`` designed for that target, and

    * ``enn_vs_deq`` = ||K_ENN - K_DEQ|| / ||K_DEQ|| (exact infinite-width kernels: the
      ENN's layer recursion of bivariate expectations, the DEQ's fixed point);
    * ``surrogate_vs_deq`` = ||K~ - K_DEQ|| / ||K_DEQ|| (section 4 / 5 surrogate);
    * ``surrogate_vs_enn`` = ||K~ - K_ENN|| / ||K_ENN|| (the same surrogate: the design
      makes the two networks' surrogates equal).

    K is the CK G for ``target="ck"`` and the NTK summed over ``ntk_groups`` (DEQ) / all
    groups (ENN) for ``target="ntk"``.  With ``refine`` (NTK, odd activation, odd family)
    the design matches the refined target of :func:`design_target` and the surrogate is
    the refined one (``mixture_ntk_surrogate(..., refine=True)``).

    Returns
    -------
    dict with ``rows`` (p, n, the three errors, the design residual, norm of K_DEQ and,
    with ``keep_eigenvalues``, the three spectra), the log-log ``slopes`` of each error,
    activation, sa, family, target.

    Raises
    ------
    InfeasibleDesignError
        The family cannot match the target.
    """

    check_choice("target", target, TARGETS)
    if target != "ntk" and (ntk_groups is not None or refine):
        raise InvalidParameterError("ntk_groups and refine apply to target='ntk' only")
    act = get_activation(activation)
    rows = []
    for p in ps:
        p = check_positive_int("p", p)
        mix = default_mixture(p, K, rng=seed)
        data = mix.sample(int(round(ratio * p)), rng=seed + 1000 + p)
        tau0 = mix.statistics(data).tau0
        sol = solve_four_equations(act, sa, tau0, sb)
        tgt = design_target(sol, target=target, ntk_groups=ntk_groups, refine=refine)
        net = design_network(tgt, family)
        if target == "ck":
            K_deq = exact_ck(data.X, act, sol.sa, sol.sb, solution=sol, workers=workers).G
            K_enn = net.exact_kernels(data.X, groups=("v",), workers=workers).ck
            K_sur = mixture_ck_surrogate(mix, data, solution=sol).G
        else:
            K_deq = exact_ntk(data.X, act, sol.sa, sol.sb, solution=sol,
                              groups=tgt.ntk_groups, workers=workers).total
            K_enn = net.exact_kernels(data.X, workers=workers).ntk
            K_sur = mixture_ntk_surrogate(mix, data, solution=sol, groups=tgt.ntk_groups,
                                          refine=refine).total
        rec = {"p": p, "n": data.n, "tau0": tau0,
               "enn_vs_deq": relative_operator_error(K_deq, K_enn),
               "surrogate_vs_deq": relative_operator_error(K_deq, K_sur),
               "surrogate_vs_enn": relative_operator_error(K_enn, K_sur),
               "design_residual": net.residual, "params": dict(net.params),
               "norm_deq": float(np.abs(np.linalg.eigvalsh(K_deq)).max())}
        if keep_eigenvalues:
            rec["eigenvalues"] = {"deq": np.linalg.eigvalsh(K_deq),
                                  "enn": np.linalg.eigvalsh(K_enn),
                                  "surrogate": np.linalg.eigvalsh(K_sur)}
        rows.append(rec)
        if progress:
            progress(f"{act.name} sa={sa:g} {net.family} {target} p={p}: ENN-DEQ "
                     f"{rec['enn_vs_deq']:.4g}, surrogate-DEQ {rec['surrogate_vs_deq']:.4g}, "
                     f"surrogate-ENN {rec['surrogate_vs_enn']:.4g}")
    pv = [r["p"] for r in rows]
    slopes = {k: fitted_slope(pv, [r[k] for r in rows]) if len(rows) > 1 else float("nan")
              for k in ("enn_vs_deq", "surrogate_vs_deq", "surrogate_vs_enn")}
    return {"activation": act.name, "sa": float(sa), "family": get_family(family).name,
            "target": target, "refine": bool(refine), "K": K, "rows": rows,
            "slopes": slopes}


def sampled_comparison(net: DesignedNetwork, X: Any, *, width: int, realizations: int = 4,
                       rng: Any = 0, workers: int | None = None) -> dict:
    """Sampled (finite-width) ENN and DEQ CK Gram matrices against the exact kernels.

    The ENN Gram matrix is averaged over ``realizations`` draws of :meth:`DesignedNetwork.
    forward`; the DEQ's comes from :func:`rmt_deq.sampling.deq.sampled_ck` with the target's
    four-equation solution (same centring as the exact kernels).

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
        Randomness: the ENN's weights are drawn from it, and the DEQ sampler's seed too.
    workers : int, optional
        Threads of the exact-kernel engines.

    Returns
    -------
    dict of relative operator-norm errors: ``enn_sampled_vs_deq_sampled``,
    ``enn_sampled_vs_enn_exact``, ``deq_sampled_vs_deq_exact``, ``enn_exact_vs_deq_exact``,
    ``enn_sampled_vs_deq_exact``; and the DEQ sampler's Monte-Carlo error bar.
    """

    if not isinstance(net, DesignedNetwork):
        raise InvalidParameterError(f"net must be a DesignedNetwork, got {type(net).__name__}")
    sol = net.target.solution
    if sol is None or net.target.kind != "ck":
        raise InvalidParameterError("sampled_comparison needs a CK design of a DEQ "
                                    "(design_target(activation, sa, ...))")
    Xa = as_data_matrix(X)
    m = check_positive_int("width", width)
    R = check_positive_int("realizations", realizations)
    gen = as_rng(rng)
    seed = int(gen.integers(2 ** 62))
    G_enn = np.zeros((Xa.shape[1], Xa.shape[1]))
    for _ in range(R):
        G_enn += net.forward(Xa, width=m, rng=gen).gram
    G_enn /= R
    deq = sampled_ck(Xa, sol.activation, sol.sa, sol.sb, width=m, realizations=R,
                     rng=seed, solution=sol, batches=min(R, 16))
    E_deq = exact_ck(Xa, sol.activation, sol.sa, sol.sb, solution=sol, workers=workers).G
    E_enn = net.exact_kernels(Xa, groups=("v",), workers=workers).ck
    rel = relative_operator_error
    return {"width": m, "realizations": R,
            "enn_sampled_vs_deq_sampled": rel(deq.G, G_enn),
            "enn_sampled_vs_enn_exact": rel(E_enn, G_enn),
            "deq_sampled_vs_deq_exact": rel(E_deq, deq.G),
            "enn_exact_vs_deq_exact": rel(E_deq, E_enn),
            "enn_sampled_vs_deq_exact": rel(E_deq, G_enn),
            "deq_mc_error_relative": float(deq.mc_error_relative)}
