"""Designed explicit networks against the DEQ they were designed for (docs/theory.md §6,
docs/design.md).

* ``design_feasibility``: which family matches which DEQ target (relu, tanh, swish, gelu at
  four recurrent variances; CK and NTK targets), with the failing equation of every miss;
* ``design_convergence``: exact kernel of the designed network against the exact DEQ
  kernel over p, beside the DEQ's surrogate, with fitted slopes (including the refined NTK
  design of an odd DEQ, and the smallest theta_slope one odd layer can reach);
* ``design_activations``: the designed layer activations beside the DEQ's, and the entries
  of the two exact kernels against each other; the table adds the finite-width
  comparison (:func:`rmt_deq.experiments.designs.sampled_comparison`).
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from scipy.optimize import minimize

from rmt_deq.activations import get_activation
from rmt_deq.data.mixture import default_mixture
from rmt_deq.design.solve import design_for_deq, design_network
from rmt_deq.design.targets import TARGETS, design_target
from rmt_deq.errors import InfeasibleDesignError
from rmt_deq.experiments.designs import design_convergence as _design_convergence
from rmt_deq.experiments.designs import sampled_comparison
from rmt_deq.jobs.figures._common import display_name, seed_rule
from rmt_deq.jobs.figures.convergence import SIZES as DIMENSIONS, dimension_seeds
from rmt_deq.jobs.figures.registry import FigureOutput, check_size, register
from rmt_deq.kernels.exact import exact_ck
from rmt_deq.metrics import relative_operator_distance
from rmt_deq.moments.scales import one_dimensional_moments
from rmt_deq.plotting import new_figure, plot_error_vs_dimension
from rmt_deq.plotting.style import PALETTE, color, styled

__all__ = ["design_feasibility", "design_convergence", "design_activations",
           "one_layer_slope_bound"]

SA = 0.2
FEASIBILITY_ACTIVATIONS = ("relu", "tanh", "swish", "gelu")
FEASIBILITY_SAS = (0.1, 0.2, 0.3, 0.5)
FEASIBILITY_FAMILIES = ("lrelu2", "quad2", "htanh1", "quadcubic2")
#: (activation, recurrent variance, family, target, refined) of the convergence figure
CONVERGENCE_CASES = (("relu", 0.2, "lrelu2", "ck", False), ("tanh", 0.2, "htanh1", "ck", False),
                     ("swish", 0.2, "quadcubic2", "ck", False),
                     ("gelu", 0.2, "quadcubic2", "ck", False),
                     ("relu", 0.2, "quadcubic2", "ntk", False),
                     ("tanh", 0.2, "htanh1", "ntk", False),
                     ("tanh", 0.2, "htanhlin2", "ntk", True),
                     ("tanh", 0.5, "htanh1", "ntk", False),
                     ("tanh", 0.5, "htanhlin2", "ntk", True))
#: (activation, family) of the activation figure (CK designs)
ACTIVATION_CASES = (("relu", "lrelu2"), ("tanh", "htanh1"), ("gelu", "quadcubic2"))
#: per size: the feasibility grid's recurrent variances; the activation figure's p; the
#: finite-width comparison's p, width, realizations;
#: the one-layer bound's highest Hermite order and random starts
SIZES = {"quick": {"sas": (0.2, 0.5), "p": 100, "sampled": (100, 200, 4), "bound": (21, 2)},
         "full": {"sas": FEASIBILITY_SAS, "p": 400, "sampled": (200, 2000, 16),
                  "bound": (101, 5)}}
#: the design equations as the figures write them (their names in docs/design.md)
_EQUATION_SYMBOLS = {"tau": r"$\tau$", "alpha1": r"$\alpha_1$", "alpha2": r"$\alpha_2$",
                     "alpha3": r"$\alpha_3$", "c1": r"$c_1$", "d2": r"$d_2$", "d3": r"$d_3$",
                     "theta_diag": r"$\theta_{\mathrm{diag}}$"}
#: the families in words
_FAMILY_WORDS = {"lrelu2": "2 leaky ReLU", "quad2": "2 quadratic", "htanh1": "1 hard tanh",
                 "quadcubic2": "quadratic+cubic"}
#: off-diagonal kernel entries drawn per panel (a fixed random subset), besides the diagonal
_ENTRIES = 1500


# ----------------------------------------------------------------------------------------
# which family matches which target
# ----------------------------------------------------------------------------------------
def feasibility_table(sas: tuple = FEASIBILITY_SAS) -> list[dict]:
    """Every (activation, sa, family, target) of the feasibility figure at tau0 = 1: the
    relative residual of a match, or the failing equation and best residual of a miss."""
    rows = []
    for act in FEASIBILITY_ACTIVATIONS:
        for sa in sas:
            for fam in FEASIBILITY_FAMILIES:
                for tgt in TARGETS:
                    target = design_target(act, sa, 1.0, target=tgt)
                    rec: dict[str, Any] = {"activation": act, "sa": sa, "family": fam,
                                           "target": tgt}
                    try:
                        net = design_network(target, fam)
                        rec.update(matched=True, relative_residual=net.relative_residual,
                                   params=dict(net.params))
                    except InfeasibleDesignError as exc:
                        rec.update(matched=False, residual=exc.residual,
                                   failing_equation=exc.failing_equation)
                    rows.append(rec)
    return rows


@register("design_feasibility", "which explicit-network family matches which DEQ target "
                                "(CK and NTK), with the failing equation of each miss")
@styled
def design_feasibility(size: str, seed: int) -> FigureOutput:
    """A grid: rows (activation, recurrent variance), columns (family, target); a filled
    cell is a match, an empty one names the equation the family cannot meet.  No
    randomness (the seed is not used); "quick" has two of the four variances."""
    sas = SIZES[check_size(size)]["sas"]
    rows = feasibility_table(sas)
    cols = [(f, t) for f in FEASIBILITY_FAMILIES for t in TARGETS]
    lines = [(a, s) for a in FEASIBILITY_ACTIVATIONS for s in sas]
    fig, ax = new_figure("full", 0.62)
    for r in rows:
        i = lines.index((r["activation"], r["sa"]))
        j = cols.index((r["family"], r["target"]))
        ok = r["matched"]
        ax.add_patch(_cell(j, i, PALETTE[2] if ok else "0.93"))
        text = "matched" if ok else _EQUATION_SYMBOLS.get(r["failing_equation"],
                                                          r["failing_equation"])
        ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=6,
                color="white" if ok else "black")
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(lines), 0)
    ax.set_xticks(np.arange(len(cols)) + 0.5)
    ax.set_xticklabels([f"{f}\n({_FAMILY_WORDS[f]})\n{t.upper()} target" for f, t in cols],
                       fontsize=6)
    ax.xaxis.tick_top()
    ax.set_yticks(np.arange(len(lines)) + 0.5)
    ax.set_yticklabels([f"{display_name(a)}, {s:g}" for a, s in lines], fontsize=6.5)
    ax.set_ylabel("DEQ: activation, recurrent weight variance")
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title("Design feasibility at data scale 1: matched, or the design equation "
                 "the family cannot meet", pad=4)
    matched = [r for r in rows if r["matched"]]
    table = {"rows": rows, "matched": len(matched), "cases": len(rows),
             "max_relative_residual": max(r["relative_residual"] for r in matched)}
    return FigureOutput(fig, table, {})


def _cell(x: float, y: float, fc: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x + 0.04, y + 0.06), 0.92, 0.88, facecolor=fc, edgecolor="none")


# ----------------------------------------------------------------------------------------
# exact kernels over p, and the one-layer bound of the refined target
# ----------------------------------------------------------------------------------------
def one_layer_slope_bound(sa: float, n_max: int = 101, starts: int = 5) -> dict:
    """Smallest theta_slope one odd layer can reach given the tanh DEQ's refined NTK target
    c1, theta_diag and c5 (tau0 = 1), against the DEQ's theta_slope.

    In the orthonormal Hermite coefficients c_n of an odd layer, c1 = 2 c_1^2,
    theta_diag = sum (n+1) c_n^2, c5 = sqrt(6) c_1 c_3 and theta_slope = sum n(n+1) c_n^2
    + sum (n+1) sqrt((n+1)(n+2)) c_n c_{n+2}: the first three fix c_1, c_3 and the budget
    sum_{n>=5} (n+1) c_n^2; theta_slope is minimised over c_5, c_7, ..., c_{n_max} on that
    budget (SLSQP from ``starts`` random points, seeds 0, 1, ...; each result scaled onto
    the budget exactly).  The value is the smallest found by these local minimisations,
    the theta_slope of a feasible point: an upper bound on the true minimum.

    Returns
    -------
    dict
        ``sa``, ``deq_theta_slope``, ``one_layer_min_theta_slope`` (inf, null in JSON,
        when no start converged), ``budget_n_ge_5``, ``n_max``, ``starts``.
    """
    t = design_target("tanh", sa, 1.0, target="ntk", refine=True)
    T1, Th, C5, Ts = t.values
    c1 = math.sqrt(T1 / 2.0)
    c3 = C5 / (math.sqrt(6.0) * c1)
    budget = Th - 2.0 * c1 ** 2 - 4.0 * c3 ** 2
    ns = np.arange(5, n_max + 1, 2)
    nn = np.concatenate(([1, 3], ns)).astype(float)

    def slope(c: np.ndarray) -> float:
        full = np.concatenate(([c1, c3], c))
        return float(np.sum(nn * (nn + 1) * full ** 2)
                     + np.sum((nn[:-1] + 1) * np.sqrt((nn[:-1] + 1) * (nn[:-1] + 2))
                              * full[:-1] * full[1:]))

    cons = {"type": "eq", "fun": lambda c: float(np.sum((ns + 1) * c ** 2)) - budget}
    best = math.inf
    for s in range(starts):
        x0 = np.random.default_rng(s).normal(size=ns.size)
        x0 *= math.sqrt(budget / float(np.sum((ns + 1) * x0 ** 2)))
        r = minimize(slope, x0, constraints=[cons], method="SLSQP", options={"maxiter": 1000})
        if r.success or r.status == 9:                    # 9: iteration limit reached
            # onto the budget exactly (SLSQP meets it to ~1e-5 relative): a feasible point
            x = r.x * math.sqrt(budget / float(np.sum((ns + 1) * r.x ** 2)))
            best = min(best, slope(x))
    return {"sa": sa, "deq_theta_slope": Ts, "one_layer_min_theta_slope": best,
            "budget_n_ge_5": budget, "n_max": n_max, "starts": starts}


def _case_title(res: Any) -> str:
    what = "refined NTK" if res.refine else res.target.upper()
    return f"{display_name(res.activation)} ({res.sa:g}) → {res.family}\n{what} target"


@register("design_convergence", "designed explicit network against its DEQ over p (exact "
                                "kernels), beside the DEQ's surrogate, with fitted slopes")
@styled
def design_convergence(size: str, seed: int) -> FigureOutput:
    """One panel per design: ||K_designed - K_DEQ|| / ||K_DEQ|| and the DEQ surrogate's
    ||K~ - K_DEQ|| / ||K_DEQ|| over p (exact infinite-width kernels)."""
    size = check_size(size)
    ps = DIMENSIONS[size]
    n_max, starts = SIZES[size]["bound"]
    fig, axes = new_figure("full", 1.12, nrows=3, ncols=3)
    cases = []
    for ax, (act, sa, fam, tgt, refine) in zip(axes.flat, CONVERGENCE_CASES):
        t0 = time.perf_counter()
        res = _design_convergence(act, sa, ps, family=fam, target=tgt, refine=refine,
                                  seed=seed)
        series = {"design": [r.explicit_vs_deq for r in res.rows],
                  "surrogate": [r.surrogate_vs_deq for r in res.rows]}
        fits = {"design": res.slopes["explicit_vs_deq"],
                "surrogate": res.slopes["surrogate_vs_deq"]}
        plot_error_vs_dimension(ps, series, slopes=fits, ax=ax, reference_slope=None,
                                xlabel="dimension p", ylabel="relative distance to the DEQ",
                                title=_case_title(res))
        ax.get_legend().set_title(None)
        cases.append({**res.to_dict(), "seconds": time.perf_counter() - t0})
    bounds = [one_layer_slope_bound(sa, n_max, starts) for sa in sorted(
        {c[1] for c in CONVERGENCE_CASES if c[4]})]
    fig.suptitle("Designed explicit network (design) and the DEQ's surrogate against the "
                 "exact DEQ kernel,\nn = 0.8 p; panels: DEQ activation (recurrent weight "
                 "variance) → design family;\nlegend: fitted log-log slope [95% confidence "
                 "interval]")
    return FigureOutput(fig, {"ps": list(ps), "cases": cases, "one_layer_bound": bounds},
                        {**dimension_seeds(seed),
                         "one_layer_bound_starts": list(range(starts))})


# ----------------------------------------------------------------------------------------
# activation curves and kernel entries
# ----------------------------------------------------------------------------------------
def _standardised(fn: Any, centring: float, scale_in: float, scale_out: float,
                  xi: np.ndarray) -> np.ndarray:
    """(sigma(s xi) - c) / tau_out: the centred activation of a unit-variance input,
    in units of its output scale."""
    return (np.asarray(fn(scale_in * xi), dtype=float) - centring) / scale_out


def _activation_curves(net: Any, xi: np.ndarray) -> dict[str, np.ndarray]:
    sol = net.target.solution
    m2 = float(one_dimensional_moments(sol.activation, sol.tau, sol.centring,
                                       keys=("m2",))["m2"])
    act = sol.activation
    curves = {f"DEQ: {display_name(act)}": _standardised(get_activation(act), sol.centring,
                                                         sol.tau, math.sqrt(m2), xi)}
    for i, layer in enumerate(net.layers, start=1):
        curves[f"designed layer {i}"] = _standardised(layer.activation, layer.centring,
                                                      layer.tau_in, layer.tau_out, xi)
    return curves


@register("design_activations", "designed layer activations beside the DEQ's, and the "
                                "entries of the two exact kernels against each other")
@styled
def design_activations(size: str, seed: int) -> FigureOutput:
    """Rows: CK designs of a ReLU, a tanh and a GELU DEQ.  Left: the activations, each
    centred and scaled for a standard Gaussian input at its layer's scale.  Right: entries
    of the designed network's exact CK against the DEQ's (all diagonal entries and a fixed
    random subset of the others)."""
    cfg = SIZES[check_size(size)]
    p = cfg["p"]
    mix = default_mixture(p, 2, rng=seed)
    data = mix.sample(int(0.8 * p), rng=seed + 1)
    tau0 = mix.statistics(data).tau0
    sp, width, R = cfg["sampled"]
    smix = default_mixture(sp, 2, rng=seed)
    sdata = smix.sample(int(0.8 * sp), rng=seed + 1)
    fig, axes = new_figure("full", 1.05, nrows=len(ACTIVATION_CASES), ncols=2)
    xi = np.linspace(-3.0, 3.0, 601)
    pick = np.random.default_rng(seed + 2)
    rows = []
    for (ax_a, ax_k), (act, fam) in zip(axes, ACTIVATION_CASES):
        net = design_for_deq(act, SA, tau0, family=fam)
        sol = net.target.solution
        for k, (label, y) in enumerate(_activation_curves(net, xi).items()):
            # the DEQ's curve wide and grey underneath, so that a layer on it stays visible
            ax_a.plot(xi, y, color="0.55" if k == 0 else color(k - 1),
                      linewidth=3.0 if k == 0 else 1.1, zorder=1 if k == 0 else 2,
                      label=label)
        ax_a.set_xlabel("input / its standard deviation")
        ax_a.set_ylabel("centred output / its root mean square")
        ax_a.set_title(f"{display_name(act)} DEQ and its {fam} design ({net.L} "
                       f"layer{'s' if net.L > 1 else ''})")
        ax_a.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)
        K_deq = exact_ck(data.X, act, SA, solution=sol).ck
        K_net = net.exact_kernels(data.X, groups=("v",)).ck
        n = K_deq.shape[0]
        iu = np.triu_indices(n, 1)
        sub = pick.choice(iu[0].size, size=min(_ENTRIES, iu[0].size), replace=False)
        ax_k.plot(K_deq[iu][sub], K_net[iu][sub], linestyle="none", marker=".",
                  markersize=2, color=color(0), label="off-diagonal entries")
        ax_k.plot(np.diag(K_deq), np.diag(K_net), linestyle="none", marker="o",
                  markersize=2.5, markerfacecolor="none", color=color(1),
                  label="diagonal entries")
        lo, hi = float(min(K_deq.min(), K_net.min())), float(max(K_deq.max(), K_net.max()))
        ax_k.plot([lo, hi], [lo, hi], color="0.6", linewidth=0.8, zorder=0,
                  label="equality")
        dist = relative_operator_distance(K_net, K_deq)
        ax_k.set_xlabel("exact DEQ CK entry")
        ax_k.set_ylabel("exact designed-network CK entry")
        ax_k.set_title(f"relative distance {dist:.1e} (operator norm)\n"
                       f"p = {p}, n = {n} samples")
        ax_k.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)
        sampled = None
        if (act, fam) in (("relu", "lrelu2"), ("tanh", "htanh1")):
            snet = design_for_deq(act, SA, smix.statistics(sdata).tau0, family=fam)
            sampled = sampled_comparison(snet, sdata.X, width=width, realizations=R,
                                         rng=seed + 5).to_dict()
            sampled.update(p=sp, n=sdata.n)
        rows.append({"activation": act, "family": fam, "p": p, "n": n, "tau0": tau0,
                     "params": dict(net.params), "relative_residual": net.relative_residual,
                     "exact_relative_distance": dist, "finite_width": sampled})
    fig.suptitle(f"Designed explicit networks and their DEQs (recurrent weight variance "
                 f"{SA:g}, CK designs)")
    seeds = {"mixture": seed_rule(seed, 0), "sample": seed_rule(seed, 1),
             "entries_drawn": seed_rule(seed, 2), "finite_width_networks": seed_rule(seed, 5)}
    return FigureOutput(fig, {"sa": SA, "cases": rows}, seeds)
