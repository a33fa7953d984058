"""Sampled DEQ kernels against the exact infinite-width kernels (docs/theory.md §8).

Three measurements, written to ``figures/sampling_convergence.json`` with the run's
manifest (and a text table, ``figures/sampling_convergence.txt``, whose first line is the
manifest):

(a) ``width``: relative operator-norm error of the sampled CK and of each NTK group
    (v, A, B) and the total against :func:`rmt_deq.exact_ck` / :func:`rmt_deq.exact_ntk`
    over m in {250, 500, 1000, 2000, 4000} at a fixed number R of realizations, with the
    fitted log-log slope (least squares of log error on log m; target -0.35 .. -0.65).
(b) ``honesty``: over 20 seeds, the operator-norm distance of the sampled kernel (R
    realizations) to a reference with 100 R realizations (same width, independent seed),
    against the reported Monte-Carlo error bar at confidence 0.5, 0.8, 0.95: the observed
    coverage with its binomial 95% interval.  ``honesty_cv`` (part ``bcv``): the same for
    the CK with the control variate.
(c) ``families``: tanh and relu at sa = 0.2 and 0.5, each weight family of A (gaussian,
    orthogonal, symmetric): the CK and NTK (all groups) relative operator-norm distance to
    the Gaussian-theory exact kernel as m grows, with the Monte-Carlo error bars (so that a
    plateau can be told from noise).  Failures of the forward/adjoint solve are recorded.

Data (small, to keep the whole script short on one core):
``default_mixture(150, 2, rng=0).sample(120, rng=1)``, i.e. p = 150, n = 120.

Usage::

    OPENBLAS_NUM_THREADS=1 python figures/sampling_convergence.py [--part a|b|c|all]
        [--R 4] [--quick]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
from scipy import stats

from rmt_deq.data.mixture import default_mixture
from rmt_deq.errors import ConvergenceError
from rmt_deq.experiments.harness import fitted_slope
from rmt_deq.experiments.manifest import portable_path, start_run
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.exact import exact_ntk
from rmt_deq.metrics import relative_operator_distance
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk

HERE = os.path.dirname(os.path.abspath(__file__))
GROUPS = ("v", "A", "B")
#: the seeds of the three parts (per width m, seed s, reference)
SEEDS = {"mixture": 0, "sample": 1, "width": "1000 + m", "honesty": "s in 0..seeds-1",
         "honesty_reference": 10 ** 6, "families": "7 + m"}


def rel(a, b):
    """||a - b|| / ||b|| (operator norm)."""
    return relative_operator_distance(a, b)


def fit_slope(ms, errs):
    """Least-squares slope of log(error) against log(m)."""
    return fitted_slope(ms, errs).value


def data(p=150, n=120):
    return default_mixture(p, 2, rng=SEEDS["mixture"]).sample(n, rng=SEEDS["sample"]).X


def part_width(X, widths, R, cases, log):
    out = []
    for act, sa in cases:
        ex = exact_ntk(X, act, sa)
        ref = {"ck": ex.ck, **{g: ex.groups[g] for g in GROUPS}, "total": ex.ntk}
        rows = []
        for m in widths:
            t = time.perf_counter()
            S = sampled_ntk(X, act, sa, width=m, realizations=R, rng=1000 + m,
                            batches=R)
            row = {"m": m, "ck": rel(S.ck, ref["ck"]),
                   **{g: rel(S.groups[g], ref[g]) for g in GROUPS},
                   "total": rel(S.ntk, ref["total"]),
                   "mc_error_relative_total": S.error_relative["ntk"],
                   "seconds": time.perf_counter() - t}
            rows.append(row)
            log(f"  (a) {act} sa={sa} m={m}: " + "  ".join(
                f"{k} {row[k]:.4f}" for k in ("ck", "v", "A", "B", "total")))
        slopes = {k: fit_slope([r["m"] for r in rows], [r[k] for r in rows])
                  for k in ("ck", "v", "A", "B", "total")}
        log(f"  (a) {act} sa={sa} slopes: " + "  ".join(f"{k} {v:+.3f}"
                                                       for k, v in slopes.items()))
        out.append({"activation": act, "sa": sa, "R": R, "rows": rows, "slopes": slopes,
                    "in_target": {k: bool(-0.65 <= v <= -0.35) for k, v in slopes.items()}})
    return out


def coverage_interval(k, n):
    """Clopper-Pearson 95% interval of a binomial proportion."""
    lo = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
    hi = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    return float(lo), float(hi)


def part_honesty(X, m, R, seeds, ref_factor, confidences, log,
                 cases=(("ck", "relu", 0.3), ("ntk", "tanh", 0.3))):
    out = []
    for kind, act, sa in cases:
        if kind == "ck+cv":
            def fn(*a, **k):
                return sampled_ck(*a, control_variate=True, **k)
        else:
            fn = sampled_ck if kind == "ck" else sampled_ntk
        t = time.perf_counter()
        ref = fn(X, act, sa, width=m, realizations=ref_factor * R, rng=10 ** 6,
                 batches=16, draws=50)
        dist, bars = [], {c: [] for c in confidences}
        for s in range(seeds):
            for c in confidences:
                S = fn(X, act, sa, width=m, realizations=R, rng=s, batches=R,
                       confidence=c)
                bars[c].append(S.error[S.kind])
            dist.append(float(np.linalg.norm(S.matrix - ref.matrix, 2)))
        dist = np.array(dist)
        rows = []
        for c in confidences:
            b = np.array(bars[c])
            k = int(np.sum(dist <= b))
            lo, hi = coverage_interval(k, seeds)
            # probability of seeing k or fewer hits if the claimed coverage were exact
            p_low = float(stats.binom.cdf(k, seeds, c))
            rows.append({"confidence": c, "covered": k, "seeds": seeds,
                         "coverage": k / seeds, "ci95": [lo, hi],
                         "p_value_too_few": p_low,
                         "median_distance_over_bar": float(np.median(dist / b))})
            log(f"  (b) {kind} {act} sa={sa} m={m} R={R}: claimed {c:.2f}, covered "
                f"{k}/{seeds} (95% CI {lo:.2f}-{hi:.2f}, P(<= {k} | claim) = {p_low:.2f}), "
                f"median distance/bar {np.median(dist / b):.2f}")
        out.append({"kind": kind, "activation": act, "sa": sa, "m": m, "R": R,
                    "reference_realizations": ref_factor * R,
                    "reference_mc_error_relative": ref.error_relative[ref.kind],
                    "distances": dist.tolist(), "rows": rows,
                    "seconds": time.perf_counter() - t})
    return out


def _max_finite(values):
    """Largest finite value, or None (no plain-iteration phase, e.g. pure Anderson)."""
    v = [x for x in values if math.isfinite(x)]
    return max(v) if v else None


def part_families(X, widths, R, log):
    out = []
    for act in ("tanh", "relu"):
        for sa in (0.2, 0.5):
            ex = exact_ntk(X, act, sa)
            sol = solve_four_equations(act, sa, math.sqrt(float(np.mean(
                np.sum(X * X, axis=0)))))
            for fam in ("gaussian", "orthogonal", "symmetric"):
                rows = []
                for m in widths:
                    t = time.perf_counter()
                    try:
                        S = sampled_ntk(X, act, sa, width=m, realizations=R, family=fam,
                                        rng=7 + m, batches=R, max_iter=1000)
                    except ConvergenceError as exc:
                        rows.append({"m": m, "failed": str(exc)[:300]})
                        log(f"  (c) {act} sa={sa} {fam} m={m}: FAILED {str(exc)[:120]}")
                        continue
                    its = [r.report.iterations for r in S.info.forward]
                    row = {"m": m, "ck": rel(S.ck, ex.ck), "ntk": rel(S.ntk, ex.ntk),
                           **{g: rel(S.groups[g], ex.groups[g]) for g in GROUPS},
                           "mc_error_relative_ck": S.error["ck"]
                           / np.linalg.norm(S.ck, 2),
                           "mc_error_relative_ntk": S.error_relative["ntk"],
                           "forward_iterations_mean": float(np.mean(its)),
                           "solver": sorted({r.method for r in S.info.forward}),
                           "plain_rate_max": _max_finite(r.rate for r in S.info.forward),
                           "seconds": time.perf_counter() - t}
                    rows.append(row)
                    log(f"  (c) {act} sa={sa} {fam:10s} m={m:5d}: CK {row['ck']:.4f} "
                        f"(MC {row['mc_error_relative_ck']:.4f})  NTK {row['ntk']:.4f} "
                        f"(MC {row['mc_error_relative_ntk']:.4f})  A {row['A']:.4f}  "
                        f"its {row['forward_iterations_mean']:.0f}")
                ok = [r for r in rows if "failed" not in r]
                slopes = ({k: fit_slope([r["m"] for r in ok], [r[k] for r in ok])
                           for k in ("ck", "ntk")} if len(ok) >= 2 else {})
                out.append({"activation": act, "sa": sa, "family": fam, "R": R,
                            "jacobian_gain_sa_Ephi2": sol.contraction["deq_jacobian"],
                            "rows": rows, "slopes": slopes})
    return out


def table(res):
    lines = []
    if "width" in res:
        lines.append("(a) relative operator-norm error vs the exact kernel, fixed R")
        for c in res["width"]:
            lines.append(f"  {c['activation']} sa={c['sa']} R={c['R']}")
            lines.append("      m      ck       v       A       B   total   (MC total)")
            for r in c["rows"]:
                lines.append(f"  {r['m']:5d}  {r['ck']:.4f}  {r['v']:.4f}  {r['A']:.4f}  "
                             f"{r['B']:.4f}  {r['total']:.4f}   ({r['mc_error_relative_total']:.4f})")
            lines.append("  slope " + "  ".join(f"{k} {v:+.3f}" for k, v in c["slopes"].items()))
    if "honesty" in res or "honesty_cv" in res:
        lines.append("(b) Monte-Carlo error bar coverage over seeds")
        for h in res.get("honesty", []) + res.get("honesty_cv", []):
            for r in h["rows"]:
                lines.append(
                    f"  {h['kind']} {h['activation']} sa={h['sa']} m={h['m']} R={h['R']} "
                    f"(ref {h['reference_realizations']}): claimed {r['confidence']:.2f} "
                    f"covered {r['covered']}/{r['seeds']} CI [{r['ci95'][0]:.2f}, "
                    f"{r['ci95'][1]:.2f}] median dist/bar {r['median_distance_over_bar']:.2f}")
    if "families" in res:
        lines.append("(c) weight families: distance to the Gaussian-theory exact kernel")
        for f in res["families"]:
            lines.append(f"  {f['activation']} sa={f['sa']} {f['family']} "
                         f"(sa E[phi'^2] = {f['jacobian_gain_sa_Ephi2']:.3f})  slopes "
                         + "  ".join(f"{k} {v:+.2f}" for k, v in f["slopes"].items()))
            for r in f["rows"]:
                if "failed" in r:
                    lines.append(f"    m={r['m']:5d}  FAILED: {r['failed'][:100]}")
                else:
                    lines.append(f"    m={r['m']:5d}  CK {r['ck']:.4f} (MC "
                                 f"{r['mc_error_relative_ck']:.4f})  NTK {r['ntk']:.4f} "
                                 f"(MC {r['mc_error_relative_ntk']:.4f})  v {r['v']:.4f}  "
                                 f"A {r['A']:.4f}  B {r['B']:.4f}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["a", "b", "bcv", "c", "all"])
    ap.add_argument("--R", type=int, default=4, help="realizations for (a) and (c)")
    ap.add_argument("--quick", action="store_true", help="small widths (smoke test)")
    ap.add_argument("--out", default=os.path.join(HERE, "sampling_convergence"))
    args = ap.parse_args()
    run = start_run(seeds=SEEDS)
    X = data()
    widths = (250, 500, 1000, 2000, 4000) if not args.quick else (100, 200)
    fam_widths = (250, 500, 1000, 2000) if not args.quick else (100, 200)
    path = args.out + ".json"
    res = {}
    if os.path.exists(path) and args.part != "all":
        with open(path) as f:
            res = json.load(f)
    res["data"] = {"p": int(X.shape[0]), "n": int(X.shape[1]),
                   "source": "default_mixture(150, 2, rng=0).sample(120, rng=1)",
                   "threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    log = lambda s: print(s, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    if args.part in ("a", "all"):
        res["width"] = part_width(X, widths, args.R, (("relu", 0.3), ("tanh", 0.3)), log)
    if args.part in ("b", "all"):
        res["honesty"] = part_honesty(X, 400 if not args.quick else 100, 16, 20, 100,
                                      (0.5, 0.8, 0.95), log)
    if args.part in ("bcv", "all"):
        res["honesty_cv"] = part_honesty(X, 400 if not args.quick else 100, 16, 20, 100,
                                         (0.5, 0.8, 0.95), log, cases=(("ck+cv", "relu",
                                                                        0.3),))
    if args.part in ("c", "all"):
        res["families"] = part_families(X, fam_widths, args.R, log)
    res.setdefault("seconds", {})[args.part] = time.perf_counter() - t0
    outputs = [path, args.out + ".txt"]
    record = run.record(res, outputs=outputs)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    with open(args.out + ".txt", "w") as f:
        f.write("# manifest: " + json.dumps(record["manifest"]) + "\n" + table(res))
    print(table(res))
    print(f"wrote {portable_path(path)} and {portable_path(args.out)}.txt")


if __name__ == "__main__":
    main()
