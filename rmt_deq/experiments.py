"""Verification by convergence: how fast theory and exact kernels meet as p grows.

The functions here return plain records (lists of dicts) so that tests, benchmarks and the
figure script all use the same measurements.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.exact import exact_ck
from rmt_deq.data.mixture import default_mixture
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate

__all__ = ["relative_operator_error", "fitted_slope", "ck_surrogate_convergence"]


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
