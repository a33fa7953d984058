"""Accuracy report for the core: worst errors of moments and of the four-equation solve.

Run:  python benchmarks/accuracy_core.py

Not a test (tests/test_moments.py and tests/test_fixed_point.py assert the tolerances);
this prints the measured worst errors that the tolerances are set against:
- every moment of every registered activation (and one user callable), tau on a grid in
  [0.05, 20], float64 engines ("closed" where it exists, "quadrature", and "table", the
  interpolation table the default solve uses for activations without closed forms) against
  a 50-digit mpmath value: worst relative error, and worst absolute error where
  |reference| < 1e-2, overall and per engine;
- tau, alpha1..alpha4 of the float64 solve against the 30-digit mpmath solve for the
  common activations at several (sa, tau0), with the residual.

The JSON printed carries the run's manifest (rmt_deq.experiments.manifest).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from rmt_deq.activations import get_activation
from rmt_deq.experiments.manifest import start_run
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.moments.gaussian import gaussian_moments, mp_gaussian_moments

ACTS = ["relu", "leaky_relu:0.1", "hard_tanh:1,1", "hard_tanh:2,0.5", "tanh", "erf",
        "sigmoid", "swish", "silu", "gelu", "elu:1", "softplus", "quadratic:1,0.5",
        "polynomial:0.1,1,0.2,-0.1"]
FIELDS = ("mean", "second", "V0", "e1", "e2", "e3", "h0", "h2", "g4")
TAUS = np.geomspace(0.05, 20.0, 9)
SOLVER_ACTS = ["relu", "tanh", "swish", "erf", "leaky_relu:0.1", "sigmoid"]
SOLVER_CASES = [(0.1, 0.5), (0.2, 1.0), (0.5, 0.7), (0.8, 1.6), (0.5, 3.0)]


def moment_errors() -> dict:
    worst_rel, worst_abs, where = 0.0, 0.0, None
    per_engine: dict = {}
    for spec in ACTS:
        act = get_activation(spec)
        engines = {"quadrature": gaussian_moments(act, TAUS, method="quadrature"),
                   "table": gaussian_moments(act, TAUS, method="table")}
        if act.has_closed_form:
            engines["closed"] = gaussian_moments(act, TAUS, method="closed")
        for i, tau in enumerate(TAUS):
            ref = mp_gaussian_moments(act, float(tau), dps=50)
            for name, m in engines.items():
                eng = per_engine.setdefault(name, {"worst_rel": 0.0, "worst_abs_small_ref": 0.0,
                                                   "worst_rel_at": None})
                for f in FIELDS:
                    r = float(getattr(ref, f))
                    g = float(np.asarray(getattr(m, f))[i])
                    if abs(r) < 1e-2:
                        worst_abs = max(worst_abs, abs(g - r))
                        eng["worst_abs_small_ref"] = max(eng["worst_abs_small_ref"], abs(g - r))
                    else:
                        rel = abs(g - r) / abs(r)
                        if rel > worst_rel:
                            worst_rel, where = rel, (spec, float(tau), name, f)
                        if rel > eng["worst_rel"]:
                            eng["worst_rel"], eng["worst_rel_at"] = rel, (spec, float(tau), f)
    return {"worst_rel": worst_rel, "worst_rel_at": where, "worst_abs_small_ref": worst_abs,
            "per_engine": per_engine}


def solver_errors() -> dict:
    worst, worst_res, where = 0.0, 0.0, None
    for spec in SOLVER_ACTS:
        for sa, tau0 in SOLVER_CASES:
            sol = solve_four_equations(spec, sa, tau0)      # default: table for tanh etc.
            ref = solve_four_equations(spec, sa, tau0, method="mpmath", dps=30)
            worst_res = max(worst_res, sol.report.residual)
            for k in ("tau", "alpha1", "alpha2", "alpha3", "alpha4"):
                a, b = getattr(sol, k), getattr(ref, k)
                err = abs(a - b) / max(abs(b), 1e-2)     # alpha2 = alpha3 = 0 for odd phi
                if err > worst:
                    worst, where = err, (spec, sa, tau0, k)
    return {"worst_rel": worst, "worst_at": where, "worst_residual": worst_res}


def main() -> None:
    run = start_run()
    out = {"moments": moment_errors(), "solver": solver_errors()}
    json.dump(run.record(out), sys.stdout, indent=1, default=str)
    print()


if __name__ == "__main__":
    main()
