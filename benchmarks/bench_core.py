"""Benchmark: the four-equation solve, and the exact infinite-width CK at n = 2000.

Run:  python benchmarks/bench_core.py [--quick]

The baseline is written here, as a script author would without this package: plain
fixed-point iteration on tau (20 iterations) with every moment computed by
scipy.integrate.quad over the whole real line, then the alphas from quad moments.
Both run in the same process; the ratio is what is reported (absolute times depend on the
machine).  The baseline's accuracy is reported too: it is not only slower.

Solve times are warm (best of repeats): for activations without closed forms (tanh) the
default solve uses the per-activation moment table (rmt_deq.moments.table.moment_table), built
on the first call in a process and cached.  That one-off build is reported separately
("first call": the build alone, and a cold first solve including it), and the quadrature
engine's solve (method="quadrature", no table) is reported beside it.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from scipy import integrate

import rmt_deq.moments.table as table_engine
from rmt_deq.activations import get_activation
from rmt_deq.experiments.manifest import start_run
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.exact import exact_ck

SQRT2PI = math.sqrt(2 * math.pi)


def _quad_moment(h) -> float:
    return integrate.quad(lambda s: h(s) * math.exp(-0.5 * s * s) / SQRT2PI,
                          -np.inf, np.inf, limit=200)[0]


def baseline_solve(spec: str, sa: float, tau0: float) -> dict:
    """20 plain fixed-point iterations; each moment by quad on (-inf, inf)."""
    act = get_activation(spec)
    f = lambda x: float(act.fn(np.array(x)))          # noqa: E731
    d = lambda x: float(act.d1(np.array(x)))          # noqa: E731
    sb = 1 - sa
    tau = tau0
    for _ in range(20):
        m = _quad_moment(lambda s: f(tau * s))
        v0 = _quad_moment(lambda s: f(tau * s) ** 2) - m * m
        tau = math.sqrt(sa * v0 + sb * tau0 ** 2)
    m = _quad_moment(lambda s: f(tau * s))
    e1 = _quad_moment(lambda s: d(tau * s))
    e2 = _quad_moment(lambda s: s * d(tau * s)) / tau
    g4 = 2 * _quad_moment(lambda s: s * (f(tau * s) - m) * d(tau * s)) / tau
    g1, g2 = e1 * e1, e2 * e2
    a1 = sb / (1 - sa * g1)
    a4 = sb / (1 - sa * g4 / 2)
    return {"tau": tau, "alpha1": a1, "alpha2": sa * g2 * a4 ** 2 / (4 * (1 - sa * g1)),
            "alpha3": sa * g2 * a1 ** 2 / (2 * (1 - sa * g1)), "alpha4": a4}


def _best_time(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_solver(repeat: int) -> list[dict]:
    rows = []
    for spec in ("relu", "tanh"):
        for sa in (0.2, 0.5):
            ref = solve_four_equations(spec, sa, 1.0, method="mpmath", dps=30)
            base = baseline_solve(spec, sa, 1.0)
            t_base = _best_time(lambda: baseline_solve(spec, sa, 1.0), max(1, repeat // 3))
            t_full = _best_time(lambda: solve_four_equations(spec, sa, 1.0), repeat)
            t_fast = _best_time(lambda: solve_four_equations(spec, sa, 1.0,
                                                             check_uniqueness=False), repeat)
            err_base = max(abs(base[k] - getattr(ref, k)) / abs(getattr(ref, k))
                           for k in ("tau", "alpha1", "alpha4"))
            t_quad = _best_time(lambda: solve_four_equations(spec, sa, 1.0,
                                                             method="quadrature"), repeat)
            ours = solve_four_equations(spec, sa, 1.0)
            err_ours = max(abs(getattr(ours, k) - getattr(ref, k)) / abs(getattr(ref, k))
                           for k in ("tau", "alpha1", "alpha4"))
            rows.append({"activation": spec, "sa": sa, "baseline_s": t_base,
                         "rmt_deq_s": t_full, "rmt_deq_no_uniqueness_scan_s": t_fast,
                         "ratio": t_base / t_full, "ratio_no_scan": t_base / t_fast,
                         "method": ours.method, "quadrature_engine_s": t_quad,
                         "ratio_quadrature_engine": t_base / t_quad,
                         "baseline_rel_err": err_base, "rmt_deq_rel_err": err_ours})
    return rows


def bench_first_call() -> list[dict]:
    """One-off cost of the moment table: the build alone, and a cold solve including it.

    The process-wide caches are cleared first, so this is what a fresh process pays once
    per activation (a relu solve needs no table: closed forms).
    """
    rows = []
    for spec in ("tanh", "swish", "gelu", "sigmoid"):
        table_engine.clear_table_cache()
        t = time.perf_counter()
        solve_four_equations(spec, 0.2, 1.0)
        cold = time.perf_counter() - t
        tab = table_engine.moment_table(spec)
        rows.append({"activation": spec, "cold_first_solve_s": cold,
                     "table_build_s": tab.build_seconds, "table_degree": tab.degree,
                     "table_valid": tab.valid, "table_max_validation_error": tab.max_error})
    return rows


def _convergence(kernel) -> tuple:
    """(iterations, residual) of an exact kernel's fixed-point solve."""
    return kernel.report.iterations, kernel.report.residual


def bench_exact_ck(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    p = n // 2
    mu = np.zeros((p, 2))
    mu[0, 0], mu[1, 1] = 2.0, 2.0
    labels = np.repeat([0, 1], n // 2)
    X = (mu[:, labels] + rng.standard_normal((p, n))) / math.sqrt(p)
    rows = []
    for spec in ("relu", "tanh"):
        t = time.perf_counter()
        k = exact_ck(X, spec, 0.2)
        seconds = time.perf_counter() - t
        iterations, residual = _convergence(k)
        rows.append({"activation": spec, "n": n, "p": p, "seconds": seconds,
                     "iterations": iterations, "residual": residual})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller kernel")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()
    run = start_run(seeds={"exact_ck_data": 0})
    out = {"first_call": bench_first_call(), "solver": bench_solver(5 if args.quick else 20),
           "exact_ck": bench_exact_ck(400 if args.quick else 2000)}
    if args.json:
        print(json.dumps(run.record(out), indent=1))
        return
    print("first call per activation in a fresh process (moment-table build, once)")
    for r in out["first_call"]:
        print(f"{r['activation']:8s} table build {r['table_build_s']*1e3:6.1f} ms "
              f"({r['table_degree']} points/panel, valid={r['table_valid']}, validation "
              f"error {r['table_max_validation_error']:.2f} of admissible); cold first solve "
              f"{r['cold_first_solve_s']*1e3:6.1f} ms")
    print("\nfour-equation solve, warm (best of repeats; same process; default method, "
          "uniqueness scan included unless 'no-scan')")
    print(f"{'activation':10s} {'sa':>4s} {'baseline':>10s} {'rmt_deq':>10s} {'ratio':>7s} "
          f"{'no-scan':>8s} {'ratio':>7s} {'engine':>8s} {'quad-only':>10s} {'ratio':>6s} "
          f"{'base err':>9s} {'our err':>9s}")
    for r in out["solver"]:
        print(f"{r['activation']:10s} {r['sa']:4.1f} {r['baseline_s']*1e3:8.1f}ms "
              f"{r['rmt_deq_s']*1e3:8.3f}ms {r['ratio']:7.0f} "
              f"{r['rmt_deq_no_uniqueness_scan_s']*1e3:6.3f}ms {r['ratio_no_scan']:7.0f} "
              f"{r['method']:>8s} {r['quadrature_engine_s']*1e3:8.3f}ms "
              f"{r['ratio_quadrature_engine']:6.0f} "
              f"{r['baseline_rel_err']:9.1e} {r['rmt_deq_rel_err']:9.1e}")
    print("\nexact infinite-width CK")
    for r in out["exact_ck"]:
        print(f"{r['activation']:6s} n={r['n']} p={r['p']}: {r['seconds']:.2f} s "
              f"({r['iterations']} Newton iterations, residual {r['residual']})")


if __name__ == "__main__":
    main()
