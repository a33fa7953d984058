"""Benchmark: designing an explicit network (rmt_deq.design) and running it.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_design.py [--quick] [--json]
(benchmarks/bench_design.json is the --json output of one full run on a shared 2-core
machine.)

1. Solve time of :func:`rmt_deq.design.solve.design_network` (the DEQ's four-equation solve is done
   beforehand and not counted; median and best of the repeats: on a shared machine the
   median carries other processes' load, the best is the intrinsic cost, as timeit
   reports), against a baseline written here as a script author would
   without this package: scipy SLSQP minimising the sum of squared (relatively weighted)
   equation errors, every layer moment by scipy.integrate.quad (split at the kinks), the
   layer recursion of docs/theory.md §6.2 (CK) or the NTK layer map (§6.3), the same gauge-fixed
   unknowns and a generic start.  Both run in the same process; the ratio is reported, and
   so is the baseline's accuracy (max absolute equation error).  Target: <= 10 ms a solve.
2. Forward pass of a finite-width DEQ (rmt_deq.networks.deq.deq_forward: fixed-point solve)
   against the designed network's plain numpy forward pass (DesignedNetwork.forward) at
   equal width.

The --json output carries the run's manifest (rmt_deq.experiments.manifest).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings

import numpy as np
from scipy import integrate, optimize

from rmt_deq.data.mixture import default_mixture
from rmt_deq.design.families import get_family
from rmt_deq.design.solve import design_for_deq, design_network
from rmt_deq.design.targets import design_target
from rmt_deq.errors import InfeasibleDesignError
from rmt_deq.experiments.manifest import start_run
from rmt_deq.networks.deq import deq_forward, sample_deq_weights

SQRT2PI = math.sqrt(2 * math.pi)


# ----------------------------------------------------------------------------------------
# the baseline
# ----------------------------------------------------------------------------------------
def _E(h, tau: float, kinks=()) -> float:
    """E[h(tau xi)] by quad in the preactivation variable, split at the kinks."""
    w = lambda y: h(y) * math.exp(-0.5 * (y / tau) ** 2) / (SQRT2PI * tau)   # noqa: E731
    L = 12.0 * tau
    pts = sorted(k for k in kinks if -L < k < L)
    edges = [-L] + pts + [L]
    return sum(integrate.quad(w, lo, hi, limit=200)[0]     # scipy's default tolerances
               for lo, hi in zip(edges[:-1], edges[1:]))


def _layer_moments(sig, dsig, kinks, tau):
    """(g1, g2, g4, V0, h0) of sigma at input scale tau, each by quad."""
    mean = _E(sig, tau, kinks)
    e1 = _E(lambda y: (y / tau) * sig(y), tau, kinks) / tau
    he2 = _E(lambda y: ((y / tau) ** 2 - 1) * sig(y), tau, kinks)
    V0 = _E(lambda y: (sig(y) - mean) ** 2, tau, kinks)
    g4 = _E(lambda y: ((y / tau) ** 2 - 1) * (sig(y) - mean) ** 2, tau, kinks) / tau ** 2
    h0 = _E(lambda y: dsig(y) ** 2, tau, kinks)
    return e1 * e1, (he2 / tau ** 2) ** 2, g4, V0, h0


def _baseline_layers(family: str, x, tau_in_sq: float, index: int):
    if family == "lrelu2":
        a, b = (1.0, x[0]) if index == 0 else (x[1], x[2])
        return (lambda y: a * y if y > 0 else b * y), (lambda y: a if y > 0 else b), (0.0,)
    if family in ("quad2", "quadcubic2"):
        a, b, c = (1.0, x[0], 0.0) if index == 0 else \
            (x[1], x[2], x[3] if family == "quadcubic2" else 0.0)
        q = tau_in_sq
        return (lambda y: a * y + b * (y * y - q) + c * (y ** 3 - 3 * q * y),
                lambda y: a + 2 * b * y + c * (3 * y * y - 3 * q), ())
    a, c = x[0], math.exp(x[1])
    return (lambda y: a * min(max(y, -c), c), lambda y: a if abs(y) < c else 0.0, (-c, c))


def baseline_outputs(family: str, x, tau0: float, kind: str):
    L = 1 if family == "htanh1" else 2
    a1, a2, a3, a4, q = 1.0, 0.0, 0.0, 1.0, tau0 * tau0
    ks, mom = [(1.0, 0.0, 0.0, q)], []
    for l in range(L):
        sig, dsig, kinks = _baseline_layers(family, x, q, l)
        g1, g2, g4, V0, h0 = _layer_moments(sig, dsig, kinks, math.sqrt(q))
        a1, a2, a3, a4, q = (g1 * a1, g1 * a2 + g2 * a4 * a4 / 4, g1 * a3 + g2 * a1 * a1 / 2,
                             g4 * a4 / 2, V0)
        ks.append((a1, a2, a3, q))
        mom.append((g1, g2, h0))
    if kind == "ck":
        return np.array([a1, a2, a3, q])
    total = np.array(ks[L], dtype=float)           # group v
    for l in range(1, L + 1):                       # group W_l
        c = ks[l - 1]
        for k in range(l, L + 1):
            g1, g2, h0 = mom[k - 1]
            c = (g1 * c[0], g1 * c[1], g1 * c[2] + g2 * ks[k - 1][0] * c[0], h0 * c[3])
        total += np.array(c)
    return total


def baseline_solve(family: str, target, x0) -> dict:
    T = np.array(target.values)
    v = np.abs(T)
    w = 1.0 / np.maximum(v, 1e-3 * v.max())
    evals = [0]

    def obj(x):
        evals[0] += 1
        try:
            r = w * (baseline_outputs(family, x, target.tau0, target.kind) - T)
        except (ValueError, OverflowError, ZeroDivisionError):
            return 1e30
        return float(r @ r)

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        res = optimize.minimize(obj, np.array(x0, float), method="SLSQP",
                                options={"ftol": 1e-30, "maxiter": 300})
    el = time.perf_counter() - t
    F = baseline_outputs(family, res.x, target.tau0, target.kind)
    return {"time_s": el, "residual": float(np.max(np.abs(F - T))), "evals": evals[0],
            "iterations": int(res.nit)}


# ----------------------------------------------------------------------------------------
# the package
# ----------------------------------------------------------------------------------------
def package_solve(family: str, target, repeats: int) -> dict:
    times, net = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        try:
            net = design_network(target, family)
            ok = True
        except InfeasibleDesignError as e:
            net, ok = e.best, False
        times.append(time.perf_counter() - t)
    return {"time_s": statistics.median(times), "time_min_s": min(times),
            "residual": net.residual, "matched": ok,
            "starts": net.diagnostics.get("starts"), "net": net}


def generic_start(family: str, target) -> np.ndarray:
    """A start that is not a closed-form solution: the family's last deterministic start."""
    starts = get_family(family).starts(target)
    return np.array(starts[-1], dtype=float)


CASES = ([("relu", s, "lrelu2", "ck") for s in (0.1, 0.2, 0.3, 0.5)]
         + [("tanh", s, "htanh1", "ck") for s in (0.1, 0.2, 0.3, 0.5)]
         + [("tanh", s, "htanh1", "ntk") for s in (0.1, 0.2, 0.3, 0.5)]
         + [(a, 0.2, "quadcubic2", "ck") for a in ("relu", "tanh", "swish", "gelu")]
         + [("relu", 0.2, "quadcubic2", "ntk"), ("tanh", 0.3, "quadcubic2", "ntk")])
INFEASIBLE = [("relu", 0.2, "quad2", "ck"), ("swish", 0.2, "lrelu2", "ck"),
              ("relu", 0.2, "lrelu2", "ntk"), ("relu", 0.2, "htanh1", "ck")]


def forward_bench(m: int, p: int, n: int, repeats: int) -> dict:
    mix = default_mixture(p, 2, rng=0)
    data = mix.sample(n, rng=1)
    tau0 = mix.statistics(data).tau0
    out = {}
    for act, fam in (("relu", "lrelu2"), ("tanh", "htanh1")):
        net = design_for_deq(act, 0.2, tau0, family=fam)
        wd = sample_deq_weights(m, p, rng=2)
        W = net.sample_weights(m, p, rng=3)
        td, te, iters = [], [], None
        for _ in range(repeats):
            t = time.perf_counter()
            fw = deq_forward(data.X, act, 0.2, weights=wd, tau0=tau0)
            td.append(time.perf_counter() - t)
            iters = fw.report.iterations
            t = time.perf_counter()
            net.forward(data.X, W)
            te.append(time.perf_counter() - t)
        out[f"{act}/{fam}"] = {"m": m, "p": p, "n": n, "deq_s": statistics.median(td),
                               "enn_s": statistics.median(te),
                               "ratio": statistics.median(td) / statistics.median(te),
                               "deq_iterations": iters, "enn_layers": net.L}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()
    run = start_run(seeds={"forward_mixture": 0, "forward_sample": 1, "deq_weights": 2,
                           "explicit_weights": 3})
    repeats = 3 if args.quick else 7
    cases = CASES[::4] if args.quick else CASES
    rows = []
    for act, sa, fam, kind in cases + INFEASIBLE:
        target = design_target(act, sa, 1.0, target=kind)
        mine = package_solve(fam, target, repeats)
        base = baseline_solve(fam, target, generic_start(fam, target))
        rows.append({"activation": act, "sa": sa, "family": fam, "target": kind,
                     "matched": mine["matched"], "solve_ms": 1e3 * mine["time_s"],
                     "solve_min_ms": 1e3 * mine["time_min_s"],
                     "residual": mine["residual"], "starts": mine["starts"],
                     "baseline_ms": 1e3 * base["time_s"],
                     "baseline_residual": base["residual"],
                     "baseline_evals": base["evals"],
                     "ratio": base["time_s"] / mine["time_s"]})
        if not args.json:
            r = rows[-1]
            print(f"{act:5s} sa={sa:.1f} {fam:10s} {kind:3s} "
                  f"{'match' if r['matched'] else 'CANNOT'}: {r['solve_ms']:7.2f} ms "
                  f"(best {r['solve_min_ms']:.2f}) "
                  f"(residual {r['residual']:.1e}); SLSQP+quad {r['baseline_ms']:8.1f} ms "
                  f"(residual {r['baseline_residual']:.1e}); ratio {r['ratio']:6.0f}",
                  flush=True)
    fwd = forward_bench(500 if args.quick else 2000, 400, 320, 2 if args.quick else 3)
    matched = [r for r in rows if r["matched"]]
    summary = {
        "matched_cases": len(matched),
        "solve_ms_median": statistics.median(r["solve_ms"] for r in matched),
        "solve_ms_max": max(r["solve_ms"] for r in matched),
        "within_10ms": sum(r["solve_ms"] <= 10 for r in matched),
        "best_of_repeats_ms_max": max(r["solve_min_ms"] for r in matched),
        "best_within_10ms": sum(r["solve_min_ms"] <= 10 for r in matched),
        "ratio_median": statistics.median(r["ratio"] for r in matched),
        "ratio_min": min(r["ratio"] for r in matched),
        "package_residual_max": max(r["residual"] for r in matched),
        "baseline_residual_median": statistics.median(r["baseline_residual"]
                                                      for r in matched),
    }
    out = {"solve": rows, "forward": fwd, "summary": summary}
    if args.json:
        print(json.dumps(run.record(out), indent=1, default=float))
        return
    for k, v in fwd.items():
        print(f"forward {k}: m = {v['m']}, p = {v['p']}, n = {v['n']}: DEQ {1e3 * v['deq_s']:.1f}"
              f" ms ({v['deq_iterations']} iterations), designed ENN ({v['enn_layers']} "
              f"layer(s)) {1e3 * v['enn_s']:.1f} ms, ratio {v['ratio']:.1f}")
    print("summary:", json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
