"""Spectral densities (docs/theory.md §7): the predicted limiting spectrum of the CK and of
the NTK of a DEQ over the eigenvalues of the exact (infinite-width) and of the sampled
(finite-width) kernel, for ReLU, tanh and GELU, with fewer samples than dimensions (n < p)
and more (n > p, where the spectrum has an atom).

Data: the two-class mixture with well-separated isolated eigenvalues
(:func:`rmt_deq.experiments.mixtures.spike_mixture`), one sample per regime.  The sampled
kernels average R independent DEQs of width m, with m R proportional to n (the Monte-Carlo
average deforms the spectrum by O(n / (m R)); docs/spectra.md).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, MaxNLocator

from rmt_deq.experiments.mixtures import BULK_COVARIANCES, bulk_mixture, spike_mixture
from rmt_deq.jobs.figures._common import (KIND_NAMES, display_name, predict_spectrum,
                                          seed_rule, sorted_eigenvalues)
from rmt_deq.jobs.figures.registry import FigureOutput, check_size, register
from rmt_deq.kernels.exact import exact_ntk
from rmt_deq.metrics import nearest_eigenvalues, spectral_distances
from rmt_deq.plotting import new_figure, plot_error_vs_dimension, plot_spectrum
from rmt_deq.plotting.style import color, styled
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk

__all__ = ["spectra_ck", "spectra_ntk", "spectral_distances_figure", "ACTIVATIONS", "SIZES",
           "DISTANCE_SIZES"]

#: the activations of the spectral figures (a piecewise-linear, an odd, a smooth one)
ACTIVATIONS = ("relu", "tanh", "gelu")
#: recurrent weight variance
SA = 0.2
#: n / p of the two regimes
RATIOS = (0.8, 1.5)
#: per size: dimension p, width m of the sampled DEQs, and m R / n for the CK and the NTK
SIZES = {"quick": {"p": 100, "width": 100, "features": {"ck": 20.0, "ntk": 8.0}},
         "full": {"p": 400, "width": 250, "features": {"ck": 60.0, "ntk": 20.0}}}
#: seed offsets: the mixture's means, the sample, the sampled CK and NTK
_SEEDS = {"mixture": 0, "sample": 1, "sampled_ck": 2, "sampled_ntk": 3}


def _sampled(kind: str, X: np.ndarray, activation: str, sol: Any, width: int,
             realizations: int, seed: int) -> tuple[np.ndarray, float]:
    """(sampled kernel matrix, its relative Monte-Carlo error bar)."""
    fn = sampled_ck if kind == "ck" else sampled_ntk
    res = fn(X, activation, SA, width=width, realizations=realizations, rng=seed,
             solution=sol, batches=min(realizations, 16))
    return res.matrix, float(res.error_relative[res.kind])


def _exact(kind: str, X: np.ndarray, activation: str, sol: Any) -> np.ndarray:
    ex = exact_ntk(X, activation, SA, solution=sol)
    return ex.ck if kind == "ck" else ex.ntk


def _distances(ev: np.ndarray, pred: Any) -> dict:
    d = spectral_distances(ev, pred.bulk, exclude=pred.spikes.positions)
    return {"kolmogorov_smirnov": d.ks, "wasserstein1_over_width": d.w1_relative}


def _panel(kind: str, activation: str, n: int, p: int, mix: Any, size: dict,
           seed: int) -> tuple[dict, dict]:
    """The numbers of one panel, and what is drawn."""
    sample = mix.sample(n, rng=seed + _SEEDS["sample"])
    pred = predict_spectrum(mix, sample, activation, SA, kind)
    m = size["width"]
    R = int(math.ceil(size["features"][kind] * n / m))
    S, mc = _sampled(kind, sample.X, activation, pred.solution, m, R,
                     seed + _SEEDS[f"sampled_{kind}"])
    ev = {"exact": sorted_eigenvalues(_exact(kind, sample.X, activation, pred.solution)),
          "sampled": sorted_eigenvalues(S)}
    spikes = pred.spikes.positions
    row = {"activation": activation, "p": p, "n": n, "width": m, "realizations": R,
           "monte_carlo_error_relative": mc, "atom": pred.bulk.atom,
           "atom_at": pred.bulk.atom_at if pred.bulk.atom > 0 else None,
           "support": [list(s) for s in pred.bulk.support],
           "isolated_predicted": spikes.tolist()}
    for name, v in ev.items():
        row[name] = {**_distances(v, pred),
                     "isolated_observed": v[nearest_eigenvalues(v, spikes)].tolist()}
    return row, {"pred": pred, "ev": ev}


def _title(row: dict) -> str:
    rel = "<" if row["n"] < row["p"] else ">"
    e, s = row["exact"], row["sampled"]
    return (f"{display_name(row['activation'])}, n = {row['n']} {rel} p = {row['p']}, "
            f"R = {row['realizations']}\n"
            f"Kolmogorov–Smirnov: exact {e['kolmogorov_smirnov']:.3f}, "
            f"sampled {s['kolmogorov_smirnov']:.3f}\n"
            f"Wasserstein-1 / bulk width: exact {e['wasserstein1_over_width']:.4f}, "
            f"sampled {s['wasserstein1_over_width']:.4f}")


@styled
def _spectra(kind: str, size_name: str, seed: int) -> FigureOutput:
    size = SIZES[check_size(size_name)]
    p = size["p"]
    mix = spike_mixture(p, seed=seed + _SEEDS["mixture"])
    fig, axes = new_figure("full", 1.32, nrows=len(ACTIVATIONS), ncols=len(RATIOS))
    rows = []
    for i, act in enumerate(ACTIVATIONS):
        for j, ratio in enumerate(RATIOS):
            row, drawn = _panel(kind, act, int(ratio * p), p, mix, size, seed)
            rows.append(row)
            ax = axes[i, j]
            plot_spectrum(drawn["pred"].bulk, drawn["pred"].spikes, eigenvalues=drawn["ev"],
                          ax=ax, legend="none", counts=False)
            ax.set_title(_title(row), fontsize=7)
            ax.set_xlabel("eigenvalue of " + ("the CK G" if kind == "ck" else "the NTK"))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    names = {"exact": "exact kernel (infinite width)",
             "sampled": f"sampled kernel (average of R DEQs of width m = {size['width']})"}
    labels = [names.get(lab, lab) for lab in labels]
    fig.legend(handles, labels, loc="outside lower center", ncol=2)
    fig.suptitle(f"Spectrum of the {KIND_NAMES[kind]} of a DEQ (recurrent weight variance "
                 f"{SA:g}):\nprediction from the mixture statistics against observed "
                 f"eigenvalues")
    seeds = {name: seed_rule(seed, off) for name, off in _SEEDS.items()}
    return FigureOutput(fig, {"kernel": kind, "sa": SA, "panels": rows}, seeds)


@register("spectra_ck", "CK spectral densities: prediction over exact and sampled "
                        "eigenvalues, ReLU/tanh/GELU, n < p and n > p")
def spectra_ck(size: str, seed: int) -> FigureOutput:
    """The CK figure (see the module docstring)."""
    return _spectra("ck", size, seed)


@register("spectra_ntk", "NTK spectral densities: prediction over exact and sampled "
                         "eigenvalues, ReLU/tanh/GELU, n < p and n > p")
def spectra_ntk(size: str, seed: int) -> FigureOutput:
    """The NTK figure (see the module docstring)."""
    return _spectra("ntk", size, seed)


# ----------------------------------------------------------------------------------------
# distances of the bulk to the prediction: covariance models, exact and sampled kernels
# ----------------------------------------------------------------------------------------
#: per size: dimension p, width m of the sampled DEQs, m R / n of the sampled kernels, and
#: the m R / n of the budget study
DISTANCE_SIZES = {"quick": {"p": 80, "width": 80, "features": 20.0,
                            "budget": (10.0, 20.0, 40.0)},
                  "full": {"p": 400, "width": 250, "features": 120.0,
                           "budget": (30.0, 60.0, 120.0)}}
DISTANCE_ACTIVATIONS = ("relu", "tanh")
#: n / p of the bulk study
DISTANCE_RATIOS = (0.7, 1.5)
#: seed offsets: the mixture's means, the sample, the sampled kernels
_DISTANCE_SEEDS = {"mixture": 0, "sample": 11, "sampled": 5}


def _bulk_rows(cov: str, ratio: float, cfg: dict, seed: int) -> list[dict]:
    """Distances of the exact CK and NTK and of the sampled CK (and, for the diagonal
    covariance, ReLU and n < p, the sampled NTK) to the predicted bulk."""
    p, m = cfg["p"], cfg["width"]
    mix = bulk_mixture(p, cov, seed=seed + _DISTANCE_SEEDS["mixture"])
    n = int(ratio * p)
    sample = mix.sample(n, rng=seed + _DISTANCE_SEEDS["sample"])
    rows = []
    for act in DISTANCE_ACTIVATIONS:
        sol = exact = None
        for kind in ("ck", "ntk"):
            pred = predict_spectrum(mix, sample, act, SA, kind, solution=sol)
            sol = pred.solution
            if exact is None:
                exact = exact_ntk(sample.X, act, SA, solution=sol)
            row = {"covariance": cov, "p": p, "n": n, "activation": act, "kernel": kind,
                   "atom": pred.bulk.atom, "isolated_predicted": pred.spikes.positions.tolist(),
                   "exact": _distances(sorted_eigenvalues(exact.ck if kind == "ck"
                                                          else exact.ntk), pred)}
            if kind == "ck" or (cov == "diagonal" and ratio < 1 and act == "relu"):
                R = int(math.ceil(cfg["features"] * n / m))
                S, mc = _sampled(kind, sample.X, act, sol, m, R,
                                 seed + _DISTANCE_SEEDS["sampled"])
                row["sampled"] = {**_distances(sorted_eigenvalues(S), pred), "width": m,
                                  "realizations": R, "monte_carlo_error_relative": mc}
            rows.append(row)
    return rows


def _budget_rows(cfg: dict, seed: int) -> list[dict]:
    """The sampled ReLU CK's distances to the prediction against m R / n (diagonal
    covariance, n = 0.7 p): the Monte-Carlo average deforms the spectrum by O(n / (m R))."""
    p, m = cfg["p"], cfg["width"]
    mix = bulk_mixture(p, "diagonal", seed=seed + _DISTANCE_SEEDS["mixture"])
    n = int(DISTANCE_RATIOS[0] * p)
    sample = mix.sample(n, rng=seed + _DISTANCE_SEEDS["sample"])
    pred = predict_spectrum(mix, sample, "relu", SA, "ck")
    rows = []
    for fps in cfg["budget"]:
        R = int(math.ceil(fps * n / m))
        S, _ = _sampled("ck", sample.X, "relu", pred.solution, m, R,
                        seed + _DISTANCE_SEEDS["sampled"])
        rows.append({"features_per_sample": fps, "width": m, "realizations": R,
                     **_distances(sorted_eigenvalues(S), pred)})
    return rows


@register("spectral_distances", "Kolmogorov–Smirnov and Wasserstein-1 distances of exact "
                                "and sampled spectra to the predicted bulk, two covariance "
                                "models; the sampled kernel's budget")
@styled
def spectral_distances_figure(size: str, seed: int) -> FigureOutput:
    """(a), (b): the two distances of each case (covariance model, n, activation, kernel)
    for the exact and the sampled kernel, the predicted isolated eigenvalues removed;
    (c): the sampled ReLU CK's distances against the number of features m R / n."""
    cfg = DISTANCE_SIZES[check_size(size)]
    rows = [r for cov in BULK_COVARIANCES for ratio in DISTANCE_RATIOS
            for r in _bulk_rows(cov, ratio, cfg, seed)]
    budget = _budget_rows(cfg, seed)
    fig = new_figure("full", 0.75)[0]
    fig.clear()
    grid = fig.add_gridspec(1, 3, width_ratios=(1.25, 1, 1.1))
    ax_ks = fig.add_subplot(grid[0])
    ax_w1 = fig.add_subplot(grid[1], sharey=ax_ks)
    ax_b = fig.add_subplot(grid[2])
    labels = [f"{r['covariance']}, n {'<' if r['n'] < r['p'] else '>'} p, "
              f"{display_name(r['activation'])} {r['kernel'].upper()}" for r in rows]
    y = np.arange(len(rows))
    for ax, key, title in ((ax_ks, "kolmogorov_smirnov", "(a) Kolmogorov–Smirnov"),
                           (ax_w1, "wasserstein1_over_width",
                            "(b) Wasserstein-1 / bulk width")):
        for k, (name, marker) in enumerate((("exact", "o"), ("sampled", "s"))):
            vals = np.array([r[name][key] if name in r else np.nan for r in rows])
            ax.plot(vals, y, linestyle="none", marker=marker, color=color(k),
                    markerfacecolor="none" if name == "sampled" else None,
                    label="exact kernel" if name == "exact"
                    else f"sampled kernel (m R = {cfg['features']:g} n)")
        ax.set_xlim(left=0.0)
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(title)
        ax.set_xlabel("distance to the prediction")
    ax_ks.set_ylabel("class covariances, regime, DEQ activation and kernel")
    ax_ks.set_yticks(y)
    ax_ks.set_yticklabels(labels, fontsize=6)
    ax_ks.set_ylim(len(rows) - 0.5, -0.5)
    ax_w1.tick_params(labelleft=False)
    fps = [r["features_per_sample"] for r in budget]
    plot_error_vs_dimension(
        fps, {"Kolmogorov–Smirnov": [r["kolmogorov_smirnov"] for r in budget],
              "Wasserstein-1 / bulk width": [r["wasserstein1_over_width"] for r in budget]},
        ax=ax_b, reference_slope=-1.0, xlabel="features per sample m R / n",
        ylabel="distance to the prediction",
        title="(c) sampled ReLU CK\n(diagonal, n < p)")
    ax_ks.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    fig.suptitle(f"Bulk of the spectrum against the prediction (isolated eigenvalues "
                 f"removed), p = {cfg['p']},\nrecurrent weight variance {SA:g}; sampled: "
                 f"average of R DEQs of width m = {cfg['width']};\nfor n > p the "
                 f"Kolmogorov–Smirnov distance measures how a finite sample spreads the atom")
    seeds = {name: seed_rule(seed, off) for name, off in _DISTANCE_SEEDS.items()}
    return FigureOutput(fig, {"sa": SA, "cases": rows, "budget": budget}, seeds)
