"""Refined NTK design for an odd DEQ: exact explicit-network NTK vs exact DEQ NTK over p.

For the tanh DEQ at sa in {0.2, 0.5} (tau0 from the sample, two-class default mixture,
n = 0.8 p, p in {200, 400, 800, 1600}) this compares

* ``htanh1`` designed for the plain NTK target (c1, d2, d3, theta_diag), and
* ``htanhlin2`` designed for the refined target (c1, theta_diag, c5, theta_slope)
  (``design_target(..., target="ntk", refine=True)``),

by ||Theta_explicit - Theta_DEQ|| / ||Theta_DEQ|| (exact infinite-width kernels, all
groups: DEQ v + A + B, explicit network v + W1 (+ W2)), beside the DEQ's plain and refined
surrogate errors, with log-log slopes (rmt_deq.experiments.designs.design_convergence;
docs/theory.md §5.3, §6.5).  It also records why one odd layer is
not enough for the refined target: in the orthonormal Hermite coefficients c_n of an odd
sigma(tau0 xi) (tau0 = 1), c1 = 2 c_1^2, theta_diag = sum (n+1) c_n^2,
c5 = sqrt(6) c_1 c_3 and theta_slope = sum n(n+1) c_n^2 + sum (n+1) sqrt((n+1)(n+2))
c_n c_{n+2}; the first three fix c_1, c_3 and the budget sum_{n>=5} (n+1) c_n^2, and the
smallest theta_slope this budget allows (SLSQP over c_5 .. c_101, 5 starts) is reported
against the DEQ's.

Writes ``design_refined_ntk.json`` next to this file, with the run's manifest.

Run:  OPENBLAS_NUM_THREADS=1 python figures/design_refined_ntk.py [--ps 200,400,800,1600]
      [--sas 0.2,0.5]
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import numpy as np
from scipy.optimize import minimize

from rmt_deq.design.targets import design_target
from rmt_deq.experiments.designs import design_convergence
from rmt_deq.experiments.harness import SAMPLE_SEED_OFFSET
from rmt_deq.experiments.manifest import portable_path, start_run

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
#: random starts of the one-layer bound's minimisation (seeds 0 .. N_STARTS - 1)
N_STARTS = 5


def one_layer_bound(sa: float, n_max: int = 101) -> dict:
    """Smallest theta_slope one odd layer can have given the DEQ's c1, theta_diag, c5
    (tau0 = 1), against the DEQ's theta_slope."""
    t = design_target("tanh", sa, 1.0, target="ntk", refine=True)
    T1, Th, C5, Ts = t.values
    c1 = math.sqrt(T1 / 2.0)
    c3 = C5 / (math.sqrt(6.0) * c1)
    budget = Th - 2.0 * c1 ** 2 - 4.0 * c3 ** 2
    ns = np.arange(5, n_max + 1, 2)

    def slope(c: np.ndarray) -> float:
        full = np.concatenate(([c1, c3], c))
        nn = np.concatenate(([1, 3], ns)).astype(float)
        s = float(np.sum(nn * (nn + 1) * full ** 2))
        s += float(np.sum((nn[:-1] + 1) * np.sqrt((nn[:-1] + 1) * (nn[:-1] + 2))
                          * full[:-1] * full[1:]))
        return s

    cons = {"type": "eq", "fun": lambda c: float(np.sum((ns + 1) * c ** 2)) - budget}
    best = math.inf
    for seed in range(N_STARTS):
        x0 = np.random.default_rng(seed).normal(size=ns.size)
        x0 *= math.sqrt(budget / float(np.sum((ns + 1) * x0 ** 2)))
        r = minimize(slope, x0, constraints=[cons], method="SLSQP",
                     options={"maxiter": 1000})
        if r.success or r.status == 9:
            best = min(best, float(r.fun))
    return {"sa": sa, "deq_theta_slope": Ts, "one_layer_min_theta_slope": best,
            "budget_n_ge_5": budget, "n_max": n_max}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ps", default="200,400,800,1600")
    ap.add_argument("--sas", default="0.2,0.5")
    args = ap.parse_args()
    run = start_run(seeds={"mixture": SEED, "sample": f"{SEED} + {SAMPLE_SEED_OFFSET} + p",
                           "one_layer_bound_starts": list(range(N_STARTS))})
    ps = tuple(int(v) for v in args.ps.split(","))
    sas = tuple(float(v) for v in args.sas.split(","))
    out = {"ps": ps, "cases": [], "one_layer_bound": []}
    for sa in sas:
        for fam, refine in (("htanh1", False), ("htanhlin2", True)):
            t = time.perf_counter()
            res = design_convergence("tanh", sa, ps, family=fam, target="ntk", refine=refine,
                                     seed=SEED)
            case = {**res.to_dict(), "wall_s": time.perf_counter() - t}
            out["cases"].append(case)
            rows = res.rows
            print(f"tanh sa={sa:g} {fam:9s} {'refined' if refine else 'plain  '} NTK: ENN-DEQ "
                  + " ".join(f"{r.explicit_vs_deq:.2e}" for r in rows)
                  + f" (slope {res.slopes['explicit_vs_deq'].value:+.2f}); surrogate-DEQ "
                  + " ".join(f"{r.surrogate_vs_deq:.2e}" for r in rows)
                  + f" (slope {res.slopes['surrogate_vs_deq'].value:+.2f}); max design "
                  f"residual {max(r.design_residual for r in rows):.1e}  "
                  f"[{case['wall_s']:.0f} s]", flush=True)
        b = one_layer_bound(sa)
        out["one_layer_bound"].append(b)
        print(f"  one odd layer, tau0 = 1: smallest theta_slope "
              f"{b['one_layer_min_theta_slope']:.4f} > DEQ's {b['deq_theta_slope']:.4f}", flush=True)
    out["wall_s"] = run.elapsed
    path = HERE / "design_refined_ntk.json"
    path.write_text(json.dumps(run.record(out, outputs=[path]), indent=1, default=float))
    print(f"wrote {portable_path(path)} ({out['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
