"""Benchmark of the Monte-Carlo error bar of the sampled CK against the sampling itself.

Cases (p, n, m) = (300, 240, 1000), (500, 400, 1000), (1000, 2000, 2000): tanh, sa = 0.3,
data ``default_mixture(p, 2, rng=0).sample(n, rng=1)``, the sampler's defaults (float32
solves, the control variate, 100 sign draws; before this release float64, no control
variate, 200 draws: the runs of that release stay in the JSON under their own key),
R = 16 realizations and b = 16 batches (``--R-large`` for the largest case).

For each case one :func:`rmt_deq.sampling.deq.sampled_ck` call is timed through its progress
callback: the sampling time is the elapsed time at the first "error bar" event, the
error-bar time what follows it (the certified Lanczos norms of the package).  The batch
deviations Delta_j of that error bar are recorded on the way (by wrapping the bootstrap the
accumulator calls), and the previous estimator -- one ``metrics.symmetric_operator_norm``
(LAPACK below n = 257, ARPACK above, to 1e-10) per sign draw, the same signs -- is timed on
them in the same process, as is the new one again, and a dense-eigendecomposition reference
of the bar (to check the stated tolerance: new / exact in [1, 1 + NORM_RTOL]).

Usage::

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/bench_errorbar.py [--R 16] [--R-large 16]
        [--cases small,medium,large] [--out benchmarks/bench_errorbar.json]

Prints a table and merges the numbers into the JSON (one entry per thread setting).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np
from scipy import special

import rmt_deq.sampling._montecarlo as montecarlo
from rmt_deq.data.mixture import default_mixture
from rmt_deq.metrics import symmetric_operator_norm
from rmt_deq.sampling._bootstrap import NORM_RTOL, bootstrap_bound, sign_draws
from rmt_deq.sampling.deq import sampled_ck

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = {"small": (300, 240, 1000), "medium": (500, 400, 1000), "large": (1000, 2000, 2000)}


def previous_bound(Delta, counts, confidence, draws, rng):
    """The estimator before the certified norms: one symmetric_operator_norm per draw."""
    b, n = Delta.shape[0], Delta.shape[1]
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    eps = sign_draws(gen, b, draws)
    flat = Delta.reshape(b, -1)
    scale = math.sqrt(b / (b - 1.0)) / float(np.sum(counts))
    norms = np.array([symmetric_operator_norm((e @ flat).reshape(n, n)) * scale
                      for e in eps])
    two_sided = 0.5 * (1.0 + confidence)
    return (float(np.quantile(norms, confidence))
            * float(special.stdtrit(b - 1, two_sided) / special.ndtri(two_sided)))


def run_case(p, n, m, R):
    X = default_mixture(p, 2, rng=0).sample(n, rng=1).X
    events = []
    captured = {}
    real = montecarlo.bootstrap_bound

    def spy(Delta, counts, **kw):
        # Delta is the accumulator's own copy and bootstrap_bound does not modify it: kept
        # by reference, so that no copy is timed as part of the error bar
        captured["Delta"], captured["counts"] = Delta, np.array(counts)
        captured["rng_state"] = kw["rng"].bit_generator.state
        return real(Delta, counts, **kw)

    montecarlo.bootstrap_bound = spy
    try:
        K = sampled_ck(X, "tanh", 0.3, width=m, realizations=R, rng=0,
                       progress=events.append)
    finally:
        montecarlo.bootstrap_bound = real
    bar = [e for e in events if e.phase == "error bar"]
    t_sampling = bar[0].elapsed
    t_new = bar[-1].elapsed - bar[0].elapsed
    Delta, counts = captured["Delta"], captured["counts"]
    info = K.info

    def gen():
        g = np.random.default_rng()
        g.bit_generator.state = captured["rng_state"]
        return g

    t = time.perf_counter()
    old = previous_bound(Delta, counts, info.confidence, info.draws, gen())
    t_old = time.perf_counter() - t
    t = time.perf_counter()
    new = bootstrap_bound(Delta, counts, confidence=info.confidence, draws=info.draws,
                          rng=gen())
    t_new_again = time.perf_counter() - t
    exact = bootstrap_bound(Delta, counts, confidence=info.confidence, draws=info.draws,
                            rng=gen(), exact=True)
    assert new == K.error["ck"]
    return {"p": p, "n": n, "m": m, "R": R, "batches": info.batches, "draws": info.draws,
            "sampling_s": t_sampling, "error_bar_new_s": t_new,
            "error_bar_new_again_s": t_new_again, "error_bar_old_s": t_old,
            "fraction_new": t_new / t_sampling, "fraction_old": t_old / t_sampling,
            "speedup": t_old / t_new_again,
            "bar_new": new, "bar_old": old, "bar_exact": exact,
            "new_over_exact": new / exact, "old_over_exact": old / exact,
            "relative_error_bar": K.error_relative["ck"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--R", type=int, default=16)
    ap.add_argument("--R-large", type=int, default=16)
    ap.add_argument("--cases", default="small,medium,large")
    ap.add_argument("--out", default=os.path.join(HERE, "bench_errorbar.json"))
    args = ap.parse_args()
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    rows = []
    for name in args.cases.split(","):
        p, n, m = CASES[name]
        r = run_case(p, n, m, args.R_large if name == "large" else args.R)
        rows.append(r)
        print(f"p={p:5d} n={n:5d} m={m:5d} R={r['R']:3d}  sampling {r['sampling_s']:7.1f} s"
              f"  error bar: old {r['error_bar_old_s']:6.2f} s ({r['fraction_old']:6.1%})"
              f"  new {r['error_bar_new_s']:6.2f} s ({r['fraction_new']:6.1%})"
              f"  speed-up {r['speedup']:4.1f}x  new/exact {r['new_over_exact']:.4f}"
              f" (stated [1, {1 + NORM_RTOL}])", flush=True)
    data = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            data = json.load(f)
    data["cpu"] = platform.processor() or platform.machine()
    data.setdefault("runs", {})[f"OPENBLAS_NUM_THREADS={threads}, float32 defaults"] = {
        "command": f"PYTHONPATH=. OPENBLAS_NUM_THREADS={threads} python "
                   f"benchmarks/bench_errorbar.py "
                   f"--R {args.R} --R-large {args.R_large} --cases {args.cases}",
        "cases": rows}
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)
    print(f"wrote {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
