"""Finite-width DEQs (docs/theory.md §8, docs/sampling.md): sampled kernels against the
exact infinite-width kernels and against the surrogate.

* ``sampling_width``: relative error of the sampled CK and of each NTK group as the width m
  grows, at a fixed number R of realizations, with the fitted slopes;
* ``weight_families``: Gaussian, orthogonal and symmetric (GOE) recurrent weights
  (:mod:`rmt_deq.networks.weights`) against the Gaussian theory, with the Monte-Carlo
  error bars (a plateau is told from noise by them);
* ``error_bar_coverage``: how often the reported Monte-Carlo error bar covers the distance
  to a far more precise reference, over independent seeds, against the claimed confidence;
* ``ntk_sampled_gap``: whether the distance of the sampled NTK to the surrogate is within
  the Monte-Carlo bar plus the surrogate's own error (triangle inequality).

Data: ``default_mixture(p, 2, rng=seed).sample(n, rng=seed + 1)`` (p = 150, n = 120 for the
first three figures).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from rmt_deq.data.mixture import default_mixture
from rmt_deq.errors import ConvergenceError
from rmt_deq.experiments.harness import fitted_slope
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.jobs.figures._common import display_name, seed_rule
from rmt_deq.jobs.figures.registry import FigureOutput, check_size, register
from rmt_deq.kernels.exact import exact_ntk
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate
from rmt_deq.metrics import operator_norm, relative_operator_distance
from rmt_deq.networks.weights import WEIGHT_FAMILIES
from rmt_deq.plotting import new_figure, plot_error_vs_dimension
from rmt_deq.plotting.style import color, styled
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk

__all__ = ["sampling_width", "weight_families", "error_bar_coverage", "ntk_sampled_gap",
           "SIZES", "coverage_interval"]

GROUPS = ("v", "A", "B")
#: per size: the data (p, n); widths of the width study and of the family study, and R;
#: the coverage study's width, R, seeds and reference factor; the gap study's p, width, R
SIZES = {"quick": {"data": (60, 48), "widths": (100, 200, 400), "family_widths": (100, 200),
                   "R": 4, "coverage": (100, 8, 6, 20), "gap": (100, 200, 4)},
         "full": {"data": (150, 120), "widths": (250, 500, 1000, 2000),
                  "family_widths": (250, 500, 1000), "R": 4, "coverage": (200, 16, 20, 50),
                  "gap": (200, 1000, 8)}}
WIDTH_CASES = (("relu", 0.3), ("tanh", 0.3))
FAMILY_CASES = (("tanh", 0.2), ("tanh", 0.5), ("relu", 0.2), ("relu", 0.5))
#: (estimator, activation, sa) of the coverage study; "ck+cv": the CK with the control variate
COVERAGE_CASES = (("ck", "relu", 0.3), ("ntk", "tanh", 0.3), ("ck+cv", "relu", 0.3))
CONFIDENCES = (0.5, 0.8, 0.95)
GAP_CASES = (("relu", 0.2), ("tanh", 0.2), ("relu", 0.5), ("tanh", 0.5))
#: seed offsets (added to the base seed)
_SEEDS = {"mixture": 0, "sample": 1, "width_study": "1000 + m", "family_study": "7 + m",
          "coverage": "s for seed s = 0, 1, ...", "coverage_reference": 10 ** 6,
          "gap_sampler": 7}
_XLABEL = "width m (neurons)"


def _data(size: dict, seed: int) -> np.ndarray:
    p, n = size["data"]
    return default_mixture(p, 2, rng=seed).sample(n, rng=seed + 1).X


def _matrices(kernel: Any) -> dict[str, np.ndarray]:
    """CK, NTK groups and total of an NTK result (exact or sampled)."""
    return {"ck": kernel.ck, **{g: kernel.groups[g] for g in GROUPS}, "total": kernel.ntk}


# ----------------------------------------------------------------------------------------
# error against width
# ----------------------------------------------------------------------------------------
@register("sampling_width", "sampled CK and NTK groups against the exact kernels as the "
                            "width m grows (fixed R), with fitted slopes")
@styled
def sampling_width(size: str, seed: int) -> FigureOutput:
    """One panel per DEQ: the relative operator-norm error of the sampled kernels
    (average of R DEQs of width m) against the exact kernels, over m."""
    cfg = SIZES[check_size(size)]
    X = _data(cfg, seed)
    widths, R = cfg["widths"], cfg["R"]
    fig, axes = new_figure("full", 0.62, ncols=len(WIDTH_CASES))
    cases = []
    for ax, (act, sa) in zip(axes, WIDTH_CASES):
        ref = _matrices(exact_ntk(X, act, sa))
        rows = []
        for m in widths:
            S = sampled_ntk(X, act, sa, width=m, realizations=R, rng=seed + 1000 + m,
                            batches=R)
            got = _matrices(S)
            rows.append({"m": m, **{k: relative_operator_distance(got[k], ref[k])
                                    for k in ref},
                         "mc_error_relative_total": S.error_relative["ntk"]})
        # the NTK's group v is the CK (Theta_v = Z^T Z): drawn once, both in the table
        names = {"ck": "CK (= NTK group v)", "A": "NTK group A", "B": "NTK group B",
                 "total": "NTK, all groups"}
        slopes = {k: fitted_slope(widths, [r[k] for r in rows]) for k in names}
        plot_error_vs_dimension(
            widths, {names[k]: [r[k] for r in rows] for k in names},
            slopes={names[k]: slopes[k] for k in names}, ax=ax, xlabel=_XLABEL,
            ylabel="relative error, operator norm",
            title=f"{display_name(act)} DEQ, recurrent weight variance {sa:g}")
        cases.append({"activation": act, "sa": sa, "R": R, "rows": rows,
                      "slopes": {k: v.to_dict() for k, v in slopes.items()}})
    p, n = cfg["data"]
    fig.suptitle(f"Sampled kernels (average of R = {R} DEQs of width m) against the exact "
                 f"infinite-width kernels,\np = {p}, n = {n} samples")
    seeds = {k: seed_rule(seed, _SEEDS[k]) for k in ("mixture", "sample", "width_study")}
    return FigureOutput(fig, {"p": p, "n": n, "cases": cases}, seeds)


# ----------------------------------------------------------------------------------------
# weight families
# ----------------------------------------------------------------------------------------
def family_rows(X: np.ndarray, act: str, sa: float, family: str, widths: Any, R: int,
                seed: int, exact: Any) -> list[dict]:
    """Relative distances of the sampled CK and NTK with recurrent weights of ``family``
    to the Gaussian-theory exact kernels, per width (a failed forward solve is a row with
    ``failed``)."""
    rows = []
    for m in widths:
        try:
            S = sampled_ntk(X, act, sa, width=m, realizations=R, family=family,
                            rng=seed + 7 + m, batches=R, max_iter=1000)
        except ConvergenceError as exc:
            rows.append({"m": m, "failed": str(exc)[:300]})
            continue
        rows.append({"m": m, "ck": relative_operator_distance(S.ck, exact.ck),
                     "ntk": relative_operator_distance(S.ntk, exact.ntk),
                     **{g: relative_operator_distance(S.groups[g], exact.groups[g])
                        for g in GROUPS},
                     "mc_error_relative_ck": S.error["ck"] / operator_norm(S.ck),
                     "mc_error_relative_ntk": S.error_relative["ntk"],
                     "forward_iterations_mean": float(np.mean(
                         [r.report.iterations for r in S.info.forward])),
                     "solver": sorted({r.method for r in S.info.forward})})
    return rows


@register("weight_families", "Gaussian, orthogonal and symmetric recurrent weights against "
                             "the Gaussian theory as the width grows")
@styled
def weight_families(size: str, seed: int) -> FigureOutput:
    """One panel per DEQ: relative distance of the sampled NTK to the exact (Gaussian
    theory) NTK for each family of A, with the Monte-Carlo error bars; missing points are
    widths where the forward solve failed (the table says why)."""
    cfg = SIZES[check_size(size)]
    X = _data(cfg, seed)
    widths, R = cfg["family_widths"], cfg["R"]
    fig, axes = new_figure("full", 0.95, nrows=2, ncols=2)
    cases = []
    for ax, (act, sa) in zip(axes.flat, FAMILY_CASES):
        exact = exact_ntk(X, act, sa)
        gain = _symmetric_gain(X, act, sa)
        errs, bars, fits = {}, {}, {}
        for fam in WEIGHT_FAMILIES:
            rows = family_rows(X, act, sa, fam, widths, R, seed, exact)
            ok = {r["m"]: r for r in rows if "failed" not in r}
            errs[fam] = [ok[m]["ntk"] if m in ok else math.nan for m in widths]
            bars[fam] = [ok[m]["mc_error_relative_ntk"] if m in ok else math.nan
                         for m in widths]
            fit = fitted_slope(list(ok), [r["ntk"] for r in ok.values()]) \
                if len(ok) >= 2 else None
            if fit is not None:
                fits[fam] = fit
            cases.append({"activation": act, "sa": sa, "family": fam, "R": R, "rows": rows,
                          "slope_ntk": None if fit is None else fit.to_dict()})
        for fam in [f for f, e in errs.items() if np.all(np.isnan(e))]:
            del errs[fam]
            ax.plot([], [], linestyle="none",
                    label=f"{fam}: no forward solve converged (no attracting fixed point)")
        plot_error_vs_dimension(widths, errs, bounds=bars, slopes=fits, ax=ax,
                                xlabel=_XLABEL, ylabel="relative distance to the exact NTK",
                                title=f"{display_name(act)}, variance {sa:g} "
                                      f"(2 √(variance · E φ'²) = {gain:.2f})")
    p, n = cfg["data"]
    fig.suptitle(f"Recurrent weight families against the Gaussian theory: sampled NTK "
                 f"(R = {R} DEQs of width m),\np = {p}, n = {n}; dotted: each family's "
                 f"Monte-Carlo 95% error bound (below it: noise);\nwith symmetric weights "
                 f"the forward iteration contracts only if 2 √(variance · E φ'²) < 1")
    seeds = {k: seed_rule(seed, _SEEDS[k]) for k in ("mixture", "sample", "family_study")}
    return FigureOutput(fig, {"p": p, "n": n, "cases": cases}, seeds)


def _symmetric_gain(X: np.ndarray, act: str, sa: float) -> float:
    """2 sqrt(sa E[phi'^2]) at the fixed point of the data's scale: the spectral radius of
    the forward map's Jacobian with symmetric (GOE) recurrent weights (< 1 for an
    attracting fixed point; docs/sampling.md)."""
    tau0 = math.sqrt(float(np.mean(np.sum(X * X, axis=0))))
    return 2.0 * math.sqrt(solve_four_equations(act, sa, tau0).contraction["deq_jacobian"])


# ----------------------------------------------------------------------------------------
# error-bar coverage
# ----------------------------------------------------------------------------------------
def coverage_interval(k: int, n: int) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of a binomial proportion k / n."""
    lo = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return lo, hi


def _estimator(kind: str) -> Any:
    """The estimator of ``kind``: "ck" and "ntk" the plain averages, "ck+cv" the CK with
    the control variate (the samplers' default)."""
    fn = sampled_ntk if kind == "ntk" else sampled_ck
    cv = kind == "ck+cv"
    return lambda *a, **k: fn(*a, control_variate=cv, **k)


@register("error_bar_coverage", "coverage of the Monte-Carlo error bar over independent "
                                "seeds against its claimed confidence")
@styled
def error_bar_coverage(size: str, seed: int) -> FigureOutput:
    """Observed coverage (with its Clopper-Pearson 95% interval) of the error bar of the
    sampled CK, NTK and control-variate CK at each claimed confidence: the fraction of
    seeds whose distance to a reference with many more realizations is within the bar."""
    cfg = SIZES[check_size(size)]
    X = _data(cfg, seed)
    m, R, n_seeds, factor = cfg["coverage"]
    cases = []
    fig, ax = new_figure("column", 0.95)
    ax.plot([0.4, 1.0], [0.4, 1.0], color="0.6", linewidth=0.8, zorder=0,
            label="coverage = confidence")
    for i, (kind, act, sa) in enumerate(COVERAGE_CASES):
        fn = _estimator(kind)
        ref = fn(X, act, sa, width=m, realizations=factor * R,
                 rng=seed + _SEEDS["coverage_reference"], batches=16, draws=50)
        dist, bars = [], {c: [] for c in CONFIDENCES}
        for s in range(n_seeds):
            for c in CONFIDENCES:
                S = fn(X, act, sa, width=m, realizations=R, rng=seed + s, batches=R,
                       confidence=c)
                bars[c].append(S.error[S.kind])
            dist.append(operator_norm(S.matrix - ref.matrix))
        d = np.array(dist)
        rows = []
        for c in CONFIDENCES:
            k = int(np.sum(d <= np.array(bars[c])))
            lo, hi = coverage_interval(k, n_seeds)
            rows.append({"confidence": c, "covered": k, "seeds": n_seeds,
                         "coverage": k / n_seeds, "ci95": [lo, hi],
                         "p_value_too_few": float(stats.binom.cdf(k, n_seeds, c))})
        cov = np.array([r["coverage"] for r in rows])
        err = np.array([[r["coverage"] - r["ci95"][0] for r in rows],
                        [r["ci95"][1] - r["coverage"] for r in rows]])
        label = {"ck": "CK", "ntk": "NTK", "ck+cv": "CK with control variate"}[kind]
        ax.errorbar(np.array(CONFIDENCES) + (i - 1) * 0.008, cov, yerr=err, color=color(i),
                    marker="os^"[i], linestyle="none", capsize=2,
                    label=f"{label} ({display_name(act)}, variance {sa:g})")
        cases.append({"estimator": kind, "activation": act, "sa": sa, "m": m, "R": R,
                      "reference_realizations": factor * R,
                      "reference_mc_error_relative": ref.error_relative[ref.kind],
                      "distances": dist, "rows": rows})
    ax.set_xlabel("claimed confidence of the error bar")
    ax.set_ylabel("observed coverage over the seeds")
    ax.set_xlim(0.4, 1.02)
    ax.set_ylim(0.0, 1.05)
    fig.suptitle(f"Coverage of the Monte-Carlo error bar, {n_seeds} seeds\n(R = {R} DEQs "
                 f"of width m = {m}; reference: {factor * R});\nbars: Clopper–Pearson 95% "
                 f"interval")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    p, n = cfg["data"]
    seeds = {k: seed_rule(seed, _SEEDS[k]) for k in ("mixture", "sample", "coverage",
                                                    "coverage_reference")}
    return FigureOutput(fig, {"p": p, "n": n, "cases": cases}, seeds)


# ----------------------------------------------------------------------------------------
# the sampled NTK against the surrogate
# ----------------------------------------------------------------------------------------
def gap_record(activation: str, sa: float, p: int, width: int, realizations: int,
               seed: int) -> dict:
    """Per NTK group: ||Theta_s - Theta~|| (the gap), the Monte-Carlo bar of Theta_s, the
    surrogate's error ||Theta - Theta~|| and ||Theta_s - Theta|| (operator norms; Theta
    exact, Theta~ the surrogate, Theta_s sampled); the gap is explained when it is at most
    the bar plus the surrogate's error (triangle inequality, up to the O(1/m) width
    bias)."""
    mix = default_mixture(p, 2, rng=seed)
    data = mix.sample(int(round(0.8 * p)), rng=seed + 1)
    sol = solve_four_equations(activation, sa, mix.statistics(data).tau0)
    exact = _matrices(exact_ntk(data.X, activation, sa, solution=sol))
    approx = _matrices(mixture_ntk_surrogate(mix, data, solution=sol))
    smp = sampled_ntk(data.X, activation, sa, solution=sol, width=width,
                      realizations=realizations, rng=seed + _SEEDS["gap_sampler"])
    sampled = _matrices(smp)
    mc = {**{g: smp.error[g] for g in GROUPS}, "total": smp.error["ntk"]}
    rows = {}
    for g in (*GROUPS, "total"):
        norm = operator_norm(exact[g])
        gap = operator_norm(sampled[g] - approx[g])
        sur = operator_norm(exact[g] - approx[g])
        rows[g] = {"norm_exact": norm, "sampled_vs_surrogate": gap, "mc_error": mc[g],
                   "surrogate_error": sur,
                   "sampled_vs_exact": operator_norm(sampled[g] - exact[g]),
                   "explained": bool(gap <= mc[g] + sur)}
    return {"activation": activation, "sa": sa, "p": p, "n": data.n, "width": width,
            "realizations": realizations, "groups": rows}


@register("ntk_sampled_gap", "sampled NTK against the NTK surrogate: the gap against the "
                             "Monte-Carlo bar plus the surrogate's error")
@styled
def ntk_sampled_gap(size: str, seed: int) -> FigureOutput:
    """One row per (DEQ, group): the gap ||Theta_s - Theta~|| / ||Theta|| and its bound
    (Monte-Carlo bar + surrogate error) / ||Theta||."""
    cfg = SIZES[check_size(size)]
    p, width, R = cfg["gap"]
    recs = [gap_record(a, sa, p, width, R, seed) for a, sa in GAP_CASES]
    fig, ax = new_figure("column", 1.25)
    labels, y = [], 0
    for rec in recs:
        for g, r in rec["groups"].items():
            s = r["norm_exact"]
            ax.plot(r["sampled_vs_surrogate"] / s, y, marker="o", color=color(0),
                    linestyle="none", label="sampled NTK to surrogate" if y == 0 else None)
            ax.plot((r["mc_error"] + r["surrogate_error"]) / s, y, marker="|",
                    markersize=9, markeredgewidth=1.5, color=color(1), linestyle="none",
                    label="Monte-Carlo bar + the surrogate's error" if y == 0 else None)
            group = "all groups" if g == "total" else f"group {g}"
            labels.append(f"{display_name(rec['activation'])}, {rec['sa']:g}: {group}")
            y += 1
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=6)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(left=0.0)
    ax.set_xlabel("relative distance (operator norm)")
    fig.suptitle(f"Sampled NTK (R = {R} DEQs of width m = {width})\nagainst the "
                 f"surrogate, p = {p}: the gap is explained\nwhere the dot lies left of "
                 f"the bar (distances over\nthe operator norm of the exact NTK)")
    ax.set_ylabel("DEQ activation, recurrent weight variance: NTK group", fontsize=7)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    seeds = {k: seed_rule(seed, _SEEDS[k]) for k in ("mixture", "sample", "gap_sampler")}
    return FigureOutput(fig, {"cases": recs}, seeds)
