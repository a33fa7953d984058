"""Benchmark: designing an explicit network (rmt_deq.design) and running it.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_design.py [--quick] [--json] [--process]
(benchmarks/bench_design.json is the ``--json --process`` output of one full run on a
shared 2-core machine.)

1. Solve time of :func:`rmt_deq.design.solve.design_network` against the published design
   procedure, written here as a research script would write it (docs/theory.md §6, no code
   of this package): the closed-form Gaussian moments of each family's layers
   (leaky ReLU, hard tanh, Hermite quadratic + cubic) for t ~ N(0, q), the layer-by-layer
   CK recursion of docs/theory.md §6.2 and the NTK recursion of §6.3 by hand, and a standard
   scipy solver on "network quantities - DEQ quantities" with scipy's default tolerances
   and finite-difference Jacobian, from one fixed initial guess (:data:`FIXED_START`):
   ``scipy.optimize.root(method="hybr")`` for a square system (quadcubic2: four unknowns;
   htanh1: two unknowns for alpha1 and tau, or c1 and theta_diag, its odd layer giving the
   other two equations = 0 by itself) and ``scipy.optimize.least_squares`` for lrelu2 (three
   gauge-fixed unknowns, four consistent equations).  The DEQ's target (the four-equation
   solve, ``design_target``) is computed once beforehand and given to both; neither time
   includes it.  Both are timed in interleaved repeats in one process (best and median:
   on a shared machine the median carries other processes' load, the best is the intrinsic
   cost, as timeit reports); the ratio is baseline / package.  Checked per case: both reach
   the same design (the largest relative difference of the canonical parameters and of the
   matched quantities; each entry relative to itself, or to 1e-3 of the largest entry for
   entries below that, e.g. an odd design's zeros) and the baseline's formulas evaluated
   at the package's parameters reproduce the package's quantities (two independent
   derivations of the closed forms).  Where the fixed guess leads the baseline to a
   different root, that is reported and the baseline is timed from the package's first
   starting point instead.  Not covered (printed, and in the JSON): the infeasible
   targets (the package's multi-start search and failure diagnosis has no counterpart in
   the published procedure; the package is timed alone), the refined NTK family
   htanhlin2 (five unknowns for four equations, a curve of roots, plus the refinement
   moments) and ParametricFamily (no closed forms).
2. Forward pass of a finite-width DEQ (rmt_deq.networks.deq.deq_forward: fixed-point solve)
   against the designed network's plain numpy forward pass (DesignedNetwork.forward) at
   equal width.
3. ``--process``: whole-process wall times (median of 5 subprocess runs, interleaved):
   ``python -c "import rmt_deq"`` (and the ``-X importtime`` totals of ``rmt_deq`` and of
   ``rmt_deq.cli``, which the command line imports), a whole
   ``python -m rmt_deq design --activation relu --sa 0.2 --family lrelu2 --target ck --json``
   process, and a whole process of this script's baseline for the same case
   (``--baseline-relu 0.2``: the ReLU DEQ's target from its closed forms, docs/theory.md
   §3.6, then the baseline solve; it imports numpy and scipy only), with the interpreter's
   own start-up (``python -c pass``) for reference.

Recorded run (benchmarks/bench_design.json, summarised in docs/design.md): the baseline is
faster than the package on 17 of the 18 matched cases (ratio baseline / package, best of
21: geometric mean 0.38, range 0.11-2.8); the package's residuals are <= 2.2e-16 against
the baseline's <= 2.2e-8.

The --json output carries the run's manifest (rmt_deq.experiments.manifest).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from scipy import optimize, special

# ----------------------------------------------------------------------------------------
# the baseline: the published procedure, closed forms and the layer recursion by hand
# ----------------------------------------------------------------------------------------
# Every layer function returns, for the preactivation t ~ N(0, q), the five numbers the
# recursion needs: g1 = E[s']^2, g2 = E[s'']^2, g4 = E[(s_c^2)''], V0 = Var s(t),
# h0 = E[s'^2], with s_c = s - E[s] (derivatives of kinks in the sense of distributions).
PHI0 = 1.0 / math.sqrt(2.0 * math.pi)       # standard normal density at 0


def leaky_relu_moments(a: float, b: float, q: float) -> tuple:
    """s(t) = a t (t > 0), b t (t < 0).

    E[s'] = (a + b)/2; s'' = (a - b) delta(t), so E[s''] = (a - b) PHI0 / sqrt(q);
    E[s] = (a - b) sqrt(q) PHI0, E[s^2] = (a^2 + b^2) q / 2;
    (s_c^2)'' = 2 s'^2 + 2 s_c s'' with E[s_c s''] = (a - b)(0 - E[s]) PHI0 / sqrt(q)
    = -(a - b)^2 / (2 pi).
    """
    var_over_q = 0.5 * (a * a + b * b) - (a - b) ** 2 / (2.0 * math.pi)
    g1 = (0.5 * (a + b)) ** 2
    g2 = (a - b) ** 2 / (2.0 * math.pi * q)
    h0 = 0.5 * (a * a + b * b)
    g4 = 2.0 * h0 - (a - b) ** 2 / math.pi
    return g1, g2, g4, q * var_over_q, h0


def hard_tanh_moments(a: float, c: float, q: float) -> tuple:
    """s(t) = a clip(t, -c, c) (odd: mean 0, E[s''] = 0).

    With z = c / sqrt(q), P = P(|xi| < z) = erf(z / sqrt 2) and the truncated second moment
    M = E[xi^2; |xi| < z] = P - 2 z pdf(z):  E[s'] = a P, E[s'^2] = a^2 P,
    E[s^2] = a^2 q (M + z^2 (1 - P)); (s^2)'' = 2 a^2 on |t| < c minus 2 a^2 c (delta(t - c)
    + delta(t + c)), whose mean is 2 a^2 (P - 2 z pdf(z)) = 2 a^2 M.
    """
    z = c / math.sqrt(q)
    P = float(special.erf(z / math.sqrt(2.0)))
    M = P - 2.0 * z * math.exp(-0.5 * z * z) * PHI0
    V0 = a * a * q * (M + z * z * (1.0 - P))
    return (a * P) ** 2, 0.0, 2.0 * a * a * M, V0, a * a * P


def hermite_moments(a: float, b: float, c: float, q: float) -> tuple:
    """s(t) = a t + b (t^2 - q) + c (t^3 - 3 q t) at its own input variance q (mean 0).

    s = a sqrt(q) He1 + b q He2 + c q^(3/2) He3 with E[He_n^2] = n!: V0 = a^2 q + 2 b^2 q^2
    + 6 c^2 q^3; s' = a + 2 b t + 3 c (t^2 - q): E[s'] = a, E[s'^2] = a^2 + 4 b^2 q +
    18 c^2 q^2; s'' = 2 b + 6 c t: E[s''] = 2 b, E[s s''] = 6 c E[t s] = 6 c q a (Stein).
    """
    h0 = a * a + 4.0 * b * b * q + 18.0 * c * c * q * q
    V0 = a * a * q + 2.0 * b * b * q * q + 6.0 * c * c * q ** 3
    return a * a, 4.0 * b * b, 2.0 * h0 + 12.0 * a * c * q, V0, h0


def network_quantities(layers: list, q0: float, kind: str) -> np.ndarray:
    """(alpha1, alpha2, alpha3, tau^2) of the CK K_L, or (c1, d2, d3, theta_diag) of the
    NTK summed over all groups, by the layer recursions of docs/theory.md §6.2-§6.3.

    ``layers[l](q)`` gives (g1, g2, g4, V0, h0) of layer l + 1 at input variance q.
    X^T X is (alpha1, alpha2, alpha3, alpha4, tau^2) = (1, 0, 0, 1, q0) and is also
    Theta_0; Theta_l = K_l + Theta_{l-1} (.) Kdot_l.
    """
    a1, a2, a3, a4, q = 1.0, 0.0, 0.0, 1.0, q0
    c1, d2, d3, th = 1.0, 0.0, 0.0, q0
    for layer in layers:
        g1, g2, g4, V0, h0 = layer(q)
        # Theta_{l-1} times Kdot_l (uses K_{l-1}'s alpha1), then K_l added
        c1, d2, d3, th = g1 * c1, g1 * d2, g1 * d3 + g2 * a1 * c1, h0 * th
        a1, a2, a3, a4, q = (g1 * a1, g1 * a2 + 0.25 * g2 * a4 * a4,
                             g1 * a3 + 0.5 * g2 * a1 * a1, 0.5 * g4 * a4, V0)
        c1, d2, d3, th = c1 + a1, d2 + a2, d3 + a3, th + q
    return np.array([a1, a2, a3, q] if kind == "ck" else [c1, d2, d3, th])


def baseline_layers(family: str, x) -> list:
    """The layers of ``family`` at the unknowns x (first layer's slope a1 = 1 for the
    two-layer families: the scaling gauge of docs/theory.md §6.6)."""
    if family == "lrelu2":
        b1, a2, b2 = x
        return [lambda q: leaky_relu_moments(1.0, b1, q),
                lambda q: leaky_relu_moments(a2, b2, q)]
    if family == "quadcubic2":
        b1, a2, b2, c2 = x
        return [lambda q: hermite_moments(1.0, b1, 0.0, q),
                lambda q: hermite_moments(a2, b2, c2, q)]
    if family == "htanh1":
        a, c = x
        return [lambda q: hard_tanh_moments(a, c, q)]
    raise ValueError(f"no baseline for family {family!r}")


#: the fixed initial guess of the baseline, per family (the unknowns of baseline_layers)
FIXED_START = {"lrelu2": (0.1, 1.0, 0.1), "quadcubic2": (0.1, 1.0, 0.1, 0.1),
               "htanh1": (1.0, 1.0)}
BASELINE_FAMILIES = tuple(FIXED_START)


def baseline_design(family: str, kind: str, values, q0: float, x0) -> dict:
    """Solve "network quantities = target values" from x0 with scipy's defaults."""
    T = np.asarray(values, dtype=float)
    evals = [0]

    def equations(x):
        evals[0] += 1
        return network_quantities(baseline_layers(family, x), q0, kind) - T

    x0 = np.asarray(x0, dtype=float)
    if family == "lrelu2":          # three unknowns, four equations
        sol = optimize.least_squares(equations, x0)
    elif family == "htanh1":        # alpha2 = alpha3 (d2 = d3) = 0 hold for any odd layer
        sol = optimize.root(lambda x: equations(x)[[0, 3]], x0, method="hybr")
    else:
        sol = optimize.root(equations, x0, method="hybr")
    return {"x": sol.x, "evals": evals[0], "success": bool(sol.success)}


def baseline_params(family: str, x) -> dict:
    """The designed parameters in one canonical form (the same network), for comparison:
    lrelu2 per layer slopes with a >= |b| (t -> -t swaps a and b, an output sign flips
    both) and the gauge a1 = 1 restored (positive homogeneity); quadcubic2 with b1, a2,
    b2 >= 0 (t -> -t and output signs per layer); htanh1 with a1, c1 >= 0."""
    if family == "lrelu2":
        def canon(a, b):
            if abs(b) > abs(a):
                a, b = b, a
            return (-a, -b) if a < 0 else (a, b)
        a1, b1 = canon(1.0, float(x[0]))
        a2, b2 = canon(float(x[1]), float(x[2]))
        return {"a1": 1.0, "b1": b1 / a1, "a2": a2 * a1, "b2": b2 * a1}
    if family == "quadcubic2":
        b1, a2, b2, c2 = (float(v) for v in x)
        if a2 < 0:
            a2, c2 = -a2, -c2
        return {"a1": 1.0, "b1": abs(b1), "a2": a2, "b2": abs(b2), "c2": c2}
    return {"a1": abs(float(x[0])), "c1": abs(float(x[1]))}


def params_as_unknowns(family: str, params: dict) -> list:
    """The baseline's unknowns of a parameter dict (inverse of baseline_params)."""
    names = {"lrelu2": ("b1", "a2", "b2"), "quadcubic2": ("b1", "a2", "b2", "c2"),
             "htanh1": ("a1", "c1")}[family]
    return [params[n] for n in names]


def relu_deq_target(sa: float, tau0: float = 1.0) -> tuple:
    """The ReLU DEQ's CK design target from its closed forms (docs/theory.md §3.6, §6.4):
    g1 = 1/4, g4 = 1 - 1/pi, g2 = 1/(2 pi tau^2), sb = 1 - sa."""
    sb = 1.0 - sa
    alpha1 = sb / (1.0 - sa / 4.0)
    alpha4 = sb / (1.0 - sa * (math.pi - 1.0) / (2.0 * math.pi))
    tau2 = alpha4 * tau0 * tau0
    g2 = 1.0 / (2.0 * math.pi * tau2)
    r = 1.0 - sa / 4.0
    return (alpha1 / 4.0, g2 * alpha4 ** 2 / (4.0 * r), g2 * alpha1 ** 2 / (2.0 * r),
            tau2 * (math.pi - 1.0) / (2.0 * math.pi))


def baseline_relu_process(sa: float) -> None:
    """What the whole-process run of the baseline does: target, solve, print."""
    T = relu_deq_target(sa)
    res = baseline_design("lrelu2", "ck", T, 1.0, FIXED_START["lrelu2"])
    print(json.dumps({"family": "lrelu2", "params": baseline_params("lrelu2", res["x"]),
                      "evals": res["evals"]}))


# ----------------------------------------------------------------------------------------
# comparison
# ----------------------------------------------------------------------------------------
def rel_diff(u, v, floor: float = 1e-3) -> float:
    """max_k |u_k - v_k| / max(|v_k|, floor max_j |v_j|)."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    scale = np.maximum(np.abs(v), floor * float(np.max(np.abs(v))))
    return float(np.max(np.abs(u - v) / scale))


#: a different root: canonical parameters further apart than this (relative)
DIFFERENT_ROOT = 1e-4

CASES = ([("relu", s, "lrelu2", "ck") for s in (0.1, 0.2, 0.3, 0.5)]
         + [("tanh", s, "htanh1", "ck") for s in (0.1, 0.2, 0.3, 0.5)]
         + [("tanh", s, "htanh1", "ntk") for s in (0.1, 0.2, 0.3, 0.5)]
         + [(a, 0.2, "quadcubic2", "ck") for a in ("relu", "tanh", "swish", "gelu")]
         + [("relu", 0.2, "quadcubic2", "ntk"), ("tanh", 0.3, "quadcubic2", "ntk")])
INFEASIBLE = [("relu", 0.2, "quad2", "ck"), ("swish", 0.2, "lrelu2", "ck"),
              ("relu", 0.2, "lrelu2", "ntk"), ("relu", 0.2, "htanh1", "ck")]
NOT_COVERED = {
    "infeasible targets": "the package's multi-start search and failure diagnosis "
                          "(InfeasibleDesignError naming the failing equation) has no "
                          "counterpart in the published procedure; the package is timed alone",
    "htanhlin2 (refined NTK)": "five unknowns for four equations (a curve of roots) and the "
                               "refinement moments e1 e3, h2: no single root for a square "
                               "solver to find; writing that baseline is disproportionate",
    "ParametricFamily": "a user's activation has no closed-form moments",
}


def package_start(family: str, target) -> list:
    """The package's first deterministic start, in the baseline's unknowns at tau0 = 1
    (the package solves the problem scaled to kernel scale 1: mu rescales it back)."""
    from rmt_deq.design.families import get_family
    fam = get_family(family)
    unit, lam, mu = target.unit_problem()
    x = fam.rescale(fam.starts(unit)[0], lam, mu)
    if family == "htanh1":
        return [float(x[0]), math.exp(float(x[1]))]
    return [float(v) for v in x]


def compare_case(act: str, sa: float, family: str, kind: str, repeats: int) -> dict:
    """Package and baseline on one case, timed in interleaved repeats (the order alternates
    each repeat).  The baseline is timed from the fixed guess and, when that reaches a
    different root than the package's, also from the package's first start; ``ratio`` and
    ``ratio_best`` (baseline / package) use the run that reaches the package's root."""
    from rmt_deq.design.solve import design_network
    from rmt_deq.design.targets import design_target
    target = design_target(act, sa, 1.0, target=kind)
    q0 = target.tau0 ** 2
    T = np.asarray(target.values)
    net = design_network(target, family)
    x_pkg = params_as_unknowns(family, net.params)
    starts = {"fixed": FIXED_START[family]}
    first = baseline_design(family, kind, T, q0, starts["fixed"])
    fixed_diff = rel_diff(params_as_unknowns(family, baseline_params(family, first["x"])),
                          x_pkg)
    if fixed_diff > DIFFERENT_ROOT:
        starts["package_start"] = package_start(family, target)
    times: dict = {"package": [], "package_solve": []}
    times.update({k: [] for k in starts})
    evals: dict = {k: set() for k in starts}
    res: dict = {}
    for r in range(repeats):
        order = ["package", *starts] if r % 2 == 0 else [*starts, "package"]
        for who in order:
            t = time.perf_counter()
            if who == "package":
                d = design_network(target, family)
                times[who].append(time.perf_counter() - t)
                times["package_solve"].append(d.diagnostics["solve_time_s"])
            else:
                res[who] = baseline_design(family, kind, T, q0, starts[who])
                times[who].append(time.perf_counter() - t)
                evals[who].add(res[who]["evals"])
    used = "package_start" if "package_start" in starts else "fixed"
    F_pkg = np.asarray(net.achieved)
    row = {"activation": act, "sa": sa, "family": family, "target": kind,
           "matched": bool(net.feasible),
           "package_ms": 1e3 * statistics.median(times["package"]),
           "package_best_ms": 1e3 * min(times["package"]),
           "package_solve_ms": 1e3 * statistics.median(times["package_solve"]),
           "package_solve_best_ms": 1e3 * min(times["package_solve"]),
           "package_residual": float(np.max(np.abs(F_pkg - T))),
           "package_params": dict(net.params),
           "package_starts": net.diagnostics.get("starts"),
           "package_iterations": net.diagnostics.get("iterations"),
           "baseline_start": used,
           # the baseline's closed forms at the package's parameters against the package's
           # own quantities: two independent derivations
           "formula_check": rel_diff(network_quantities(baseline_layers(family, x_pkg), q0,
                                                        kind), F_pkg)}
    for k in starts:
        F = network_quantities(baseline_layers(family, res[k]["x"]), q0, kind)
        p = baseline_params(family, res[k]["x"])
        pre = "baseline" if k == used else "fixed_start"
        row.update({
            f"{pre}_ms": 1e3 * statistics.median(times[k]),
            f"{pre}_best_ms": 1e3 * min(times[k]),
            f"{pre}_evals": res[k]["evals"], f"{pre}_evals_constant": len(evals[k]) == 1,
            f"{pre}_success": res[k]["success"],
            f"{pre}_residual": float(np.max(np.abs(F - T))),
            f"{pre}_param_diff": rel_diff(params_as_unknowns(family, p), x_pkg),
            f"{pre}_quantity_diff": rel_diff(F, F_pkg),
            f"{pre}_params": p})
    row["ratio"] = row["baseline_ms"] / row["package_ms"]
    row["ratio_best"] = row["baseline_best_ms"] / row["package_best_ms"]
    if used != "fixed":
        row["fixed_start_ratio_best"] = row["fixed_start_best_ms"] / row["package_best_ms"]
    return row


def package_only(act: str, sa: float, family: str, kind: str, repeats: int) -> dict:
    from rmt_deq.design.solve import design_network
    from rmt_deq.design.targets import design_target
    target = design_target(act, sa, 1.0, target=kind)
    times, net = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        net = design_network(target, family, strict=False)
        times.append(time.perf_counter() - t)
    return {"activation": act, "sa": sa, "family": family, "target": kind,
            "matched": bool(net.feasible), "package_ms": 1e3 * statistics.median(times),
            "package_best_ms": 1e3 * min(times), "package_residual": net.residual,
            "failing_equation": net.failing_equation,
            "package_starts": net.diagnostics.get("starts")}


def forward_bench(m: int, p: int, n: int, repeats: int) -> dict:
    from rmt_deq.data.mixture import default_mixture
    from rmt_deq.design.solve import design_for_deq
    from rmt_deq.networks.deq import deq_forward, sample_deq_weights
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


def process_bench(runs: int = 5) -> dict:
    """Median wall time of whole processes, the commands interleaved round by round."""
    py = sys.executable
    design = ["design", "--activation", "relu", "--sa", "0.2", "--family", "lrelu2",
              "--target", "ck", "--json"]
    cmds = {"python -c pass": [py, "-c", "pass"],
            "python -c 'import rmt_deq'": [py, "-c", "import rmt_deq"],
            "python -m rmt_deq " + " ".join(design): [py, "-m", "rmt_deq"] + design,
            "python benchmarks/bench_design.py --baseline-relu 0.2":
                [py, os.path.abspath(__file__), "--baseline-relu", "0.2"]}
    times: dict = {k: [] for k in cmds}
    outs: dict = {}
    for _ in range(runs):
        for name, cmd in cmds.items():
            t = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            times[name].append(time.perf_counter() - t)
            outs[name] = done.stdout
    imp: dict = {"rmt_deq": [], "rmt_deq.cli": []}
    for _ in range(runs):
        for mod, got in imp.items():
            err = subprocess.run([py, "-X", "importtime", "-c", f"import {mod}"],
                                 capture_output=True, text=True, check=True).stderr
            last = [ln for ln in err.splitlines() if ln.rstrip().endswith(f"| {mod}")][-1]
            got.append(int(last.split("|")[1]) * 1e-3)
    pkg = json.loads(outs["python -m rmt_deq " + " ".join(design)])
    base = json.loads(outs["python benchmarks/bench_design.py --baseline-relu 0.2"])
    names = ("b1", "a2", "b2")
    return {"runs": runs,
            "median_ms": {k: 1e3 * statistics.median(v) for k, v in times.items()},
            "min_ms": {k: 1e3 * min(v) for k, v in times.items()},
            "importtime_ms_median": {k: statistics.median(v) for k, v in imp.items()},
            "param_diff": rel_diff([base["params"][n] for n in names],
                                   [pkg["params"][n] for n in names])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.add_argument("--process", action="store_true", help="also time whole processes")
    ap.add_argument("--baseline-relu", type=float, metavar="SA",
                    help="only run the baseline for relu -> lrelu2 (CK) at this sa, "
                         "importing numpy and scipy only (the whole-process run)")
    args = ap.parse_args()
    if args.baseline_relu is not None:
        baseline_relu_process(args.baseline_relu)
        return
    from rmt_deq.experiments.manifest import start_run
    run = start_run(seeds={"forward_mixture": 0, "forward_sample": 1, "deq_weights": 2,
                           "explicit_weights": 3})
    repeats = 5 if args.quick else 21
    cases = CASES[::4] if args.quick else CASES
    rows = []
    for case in cases:
        rows.append(compare_case(*case, repeats))
        if not args.json:
            r = rows[-1]
            print(f"{r['activation']:5s} sa={r['sa']:.1f} {r['family']:10s} {r['target']:3s}: "
                  f"package {r['package_best_ms']:6.2f} ms (median {r['package_ms']:6.2f}; "
                  f"solve alone {r['package_solve_best_ms']:5.2f}), "
                  f"baseline {r['baseline_best_ms']:6.2f} ms (median {r['baseline_ms']:6.2f},"
                  f" {r['baseline_evals']} evals, start {r['baseline_start']}); ratio best "
                  f"{r['ratio_best']:5.2f} median {r['ratio']:5.2f}; residuals "
                  f"{r['package_residual']:.1e} / {r['baseline_residual']:.1e}; params "
                  f"{r['baseline_param_diff']:.1e}, quantities "
                  f"{r['baseline_quantity_diff']:.1e}, formulas {r['formula_check']:.1e}",
                  flush=True)
            if r["baseline_start"] != "fixed":
                print(f"      from the fixed guess the baseline reaches another root "
                      f"(parameters {r['fixed_start_param_diff']:.2g} apart, residual "
                      f"{r['fixed_start_residual']:.1e}, {r['fixed_start_evals']} evals, "
                      f"{r['fixed_start_best_ms']:.2f} ms, ratio best "
                      f"{r['fixed_start_ratio_best']:.2f})")
    infeasible = [package_only(*case, repeats) for case in
                  (INFEASIBLE[:1] if args.quick else INFEASIBLE)]
    if not args.json:
        for r in infeasible:
            print(f"{r['activation']:5s} sa={r['sa']:.1f} {r['family']:10s} {r['target']:3s}: "
                  f"infeasible ({r['failing_equation']}), package alone "
                  f"{r['package_best_ms']:.1f} ms (median {r['package_ms']:.1f}), no baseline")
        for k, v in NOT_COVERED.items():
            print(f"not covered: {k}: {v}")
    fwd = forward_bench(500 if args.quick else 2000, 400, 320, 2 if args.quick else 3)

    def geo(key):
        return math.exp(statistics.fmean(math.log(r[key]) for r in rows))

    summary = {
        "cases": len(rows), "repeats": repeats,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "ratio_geomean": geo("ratio"), "ratio_best_geomean": geo("ratio_best"),
        # every baseline from its fixed guess, whichever root it reaches
        "ratio_best_geomean_fixed_start": math.exp(statistics.fmean(
            math.log(r.get("fixed_start_ratio_best", r["ratio_best"])) for r in rows)),
        "ratio_min": min(r["ratio"] for r in rows),
        "ratio_max": max(r["ratio"] for r in rows),
        "package_best_ms_median": statistics.median(r["package_best_ms"] for r in rows),
        "baseline_best_ms_median": statistics.median(r["baseline_best_ms"] for r in rows),
        "package_residual_max": max(r["package_residual"] for r in rows),
        "baseline_residual_max": max(r["baseline_residual"] for r in rows),
        "param_diff_max": max(r["baseline_param_diff"] for r in rows),
        "quantity_diff_max": max(r["baseline_quantity_diff"] for r in rows),
        "formula_check_max": max(r["formula_check"] for r in rows),
        "other_root_from_fixed_start": [f"{r['activation']} {r['sa']} {r['family']} "
                                        f"{r['target']}" for r in rows
                                        if r["baseline_start"] != "fixed"],
    }
    out = {"solve": rows, "infeasible": infeasible, "not_covered": NOT_COVERED,
           "forward": fwd, "summary": summary}
    if args.process:
        out["process"] = process_bench()
    if args.json:
        print(json.dumps(run.record(out), indent=1, default=float))
        return
    for k, v in fwd.items():
        print(f"forward {k}: m = {v['m']}, p = {v['p']}, n = {v['n']}: DEQ {1e3 * v['deq_s']:.1f}"
              f" ms ({v['deq_iterations']} iterations), designed ENN ({v['enn_layers']} "
              f"layer(s)) {1e3 * v['enn_s']:.1f} ms, ratio {v['ratio']:.1f}")
    if args.process:
        pr = out["process"]
        for k, v in pr["median_ms"].items():
            print(f"process: {k}: median {v:.0f} ms (best {pr['min_ms'][k]:.0f})")
        for k, v in pr["importtime_ms_median"].items():
            print(f"process: -X importtime cumulative of {k}: median {v:.0f} ms")
        print(f"process: parameters of the two design processes agree to "
              f"{pr['param_diff']:.1e}")
    print("summary:", json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
