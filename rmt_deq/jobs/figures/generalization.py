"""What a DEQ and its designed explicit network learn (docs/generalization.md).

* ``generalization_curves``: predicted against observed test MSE of random-feature ridge
  regression on a two-class Gaussian mixture, against the ridge and against the width m,
  for the DEQ's random features and the designed explicit network's
  (:func:`rmt_deq.generalization.experiment.generalization_experiment`); predicted from
  the exact kernel and from the mixture statistics alone (the surrogate), observed as the
  mean and standard error over weight draws;
* ``digits_spectra``: eigenvalues of a sampled finite-width DEQ CK on the handwritten
  digits 0 and 1 (scikit-learn's bundled ``load_digits``) against the limiting density
  predicted from the plug-in class statistics, beside the same for a Gaussian mixture with
  the digits' plug-in class means and covariances at the same class sizes (same n, p);
* ``deq_vs_designed_accuracy``: test accuracy of ridge on DEQ random features against the
  designed network's of the same width, with kernel ridge on the exact CK and NTK and on
  their surrogates, for ReLU and tanh at two recurrent variances, on the mixture (and on
  digits 0 vs 1 at full size when scikit-learn is installed).

The "surrogate kernel ridge" accuracy is the deterministic equivalent at infinite width
from the surrogate kernel: its variance term is zero, so it is kernel ridge with the
surrogate itself (:mod:`rmt_deq.generalization.equivalent`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from rmt_deq.data.labelled import load_labelled_data
from rmt_deq.data.mixture import GaussianMixture, default_mixture
from rmt_deq.data.statistics import plugin_statistics
from rmt_deq.errors import MissingDependencyError
from rmt_deq.experiments.observed import (Prediction, compare_spectrum, data_inputs,
                                          mixture_inputs, observed_kernel,
                                          surrogate_coefficients)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.generalization.curves import curve
from rmt_deq.generalization.designed import DEFAULT_FAMILIES
from rmt_deq.generalization.experiment import generalization_experiment
from rmt_deq.generalization.problem import data_problem, mixture_problem
from rmt_deq.generalization.ridge import RIDGE_GRID
from rmt_deq.jobs.figures._common import display_name, seed_rule
from rmt_deq.jobs.figures.registry import FigureOutput, check_size, register
from rmt_deq.metrics import relative_operator_distance, spectral_distances
from rmt_deq.plotting import new_figure, plot_spectrum
from rmt_deq.plotting.style import color, styled
from rmt_deq.spectra.bulk import as_low_rank_coefficients, kernel_bulk
from rmt_deq.spectra.spikes import isolated_eigenvalues

__all__ = ["generalization_curves", "digits_spectra", "deq_vs_designed_accuracy",
           "CURVE_SIZES", "SPECTRA_SIZES", "ACCURACY_SIZES", "ACTIVATIONS", "SA",
           "ACCURACY_SAS", "DIGITS"]

#: the DEQ activations (a piecewise-linear and an odd one; their designs have two layers
#: and one layer, docs/theory.md §6.7)
ACTIVATIONS = ("relu", "tanh")
#: recurrent weight variance of the curves and the spectra
SA = 0.2
#: recurrent weight variances of the accuracy figure
ACCURACY_SAS = (0.2, 0.5)
#: the two digits of the real-data problems
DIGITS = (0, 1)
#: the random-feature learners, as drawn
_LEARNERS = {"deq_rf": "DEQ random features", "enn_rf": "designed network random features"}

#: per size: mixture dimension p, n_train = n_test, widths m (ratios m / n_train 1/4, 1,
#: 4), weight draws, the width of the ridge panels and the ridge of the width panels
CURVE_SIZES = {"quick": {"p": 64, "n": 128, "widths": (32, 128, 512), "seeds": 8,
                         "ridge_panel_width": 128, "width_panel_ridge": 0.001},
               "full": {"p": 256, "n": 512, "widths": (128, 512, 2048), "seeds": 10,
                        "ridge_panel_width": 512, "width_panel_ridge": 0.001}}
#: per size: class covariances of the predicted bulk ("diagonal": per-coordinate class
#: variances; "sample": full class covariances, about 10 s per prediction at p = 64), width
#: and draws of the sampled CK, activations, grid of the density and CDF nodes
SPECTRA_SIZES = {"quick": {"covariance": "diagonal", "width": 256, "realizations": 4,
                           "activations": ("relu",), "num": 400},
                 "full": {"covariance": "sample", "width": 1024, "realizations": 8,
                          "activations": ACTIVATIONS, "num": 1000}}
#: per size: mixture p, n_train = n_test, width m, weight draws; digits at full size
ACCURACY_SIZES = {"quick": {"p": 64, "n": 128, "width": 128, "seeds": 6, "digits": False},
                  "full": {"p": 256, "n": 512, "width": 512, "seeds": 10, "digits": True}}
#: seed offsets: mixture means, the problem's sample and split, the weights
_CURVE_SEEDS = {"mixture": 0, "problem": 1, "weights": 2}
#: seed offsets: the Gaussian mixture's sample, the sampled CKs
_SPECTRA_SEEDS = {"gaussian_sample": 1, "sampled_ck": 3}
#: seed offsets: mixture means, problem (mixture sample or digits split), weights
_ACCURACY_SEEDS = {"mixture": 0, "problem": 1, "weights": 2}


# ----------------------------------------------------------------------------------------
# test MSE against the ridge and the width
# ----------------------------------------------------------------------------------------
def _curve_rows(res: Any) -> list[dict]:
    """Every (learner, width, ridge) point: observed mean +- se, predicted from both
    sources (with the variance part of the exact-kernel prediction)."""
    rows = []
    for o in res.observed:
        ex = res.predicted_for(o.method, o.ridge, o.width, "exact")
        su = res.predicted_for(o.method, o.ridge, o.width, "surrogate")
        rows.append({"method": o.method, "width": o.width, "ridge": o.ridge,
                     "observed": o.test_mse, "observed_se": o.test_mse_se,
                     "predicted_exact": ex.test_mse, "predicted_surrogate": su.test_mse,
                     "predicted_exact_variance_part": ex.equivalent.test_mse_variance_part,
                     "observed_accuracy": o.test_accuracy,
                     "observed_accuracy_se": o.test_accuracy_se,
                     "predicted_exact_accuracy": ex.test_accuracy})
    return rows


def _draw_curves(ax: Any, res: Any, axis: str, cfg: dict) -> None:
    """Observed points of both learners, each one's prediction from its exact kernels
    (solid) and from the statistics (dashed; the two coincide for a one-layer design,
    which shares the DEQ's surrogate, and differ for a two-layer design through its
    hidden layer's width)."""
    kw = ({"width": cfg["ridge_panel_width"]} if axis == "ridge"
          else {"ridge": cfg["width_panel_ridge"]})
    for k, meth in enumerate(_LEARNERS):
        c = curve(res, meth, axis, **kw)
        shift = 1.0 + (0.06 if k else -0.06)     # side by side, on the log axis
        ax.errorbar(c.x * shift, c.observed, yerr=c.observed_se, fmt="o", ms=3,
                    color=color(k), capsize=2, label=f"{_LEARNERS[meth]}: observed")
        ax.plot(c.x, c.predicted_exact, "-", color=color(k), lw=1.0,
                label=f"{_LEARNERS[meth]}: predicted from its exact kernels")
        ax.plot(c.x, c.predicted_surrogate, "--", color=color(k), lw=1.2, alpha=0.8,
                label=f"{_LEARNERS[meth]}: predicted from the mixture statistics")
    ax.set_xscale("log")
    ax.set_ylabel("test mean squared error")
    if axis == "ridge":
        ax.set_xlabel(r"ridge $\lambda$")
    else:
        ax.set_xlabel("width m")
        ax.set_xticks(c.x)
        ax.set_xticklabels([f"{int(w)}" for w in c.x])
        ax.minorticks_off()


@register("generalization_curves", "random-feature ridge test MSE against the ridge and "
                                   "the width: DEQ and designed network, predicted (exact "
                                   "kernel, statistics) against observed")
@styled
def generalization_curves(size: str, seed: int) -> FigureOutput:
    """Rows: ReLU and tanh (sa = 0.2); columns: test MSE against the ridge (at m = n_train)
    and against the width (at ridge 0.001, where m = n_train is the interpolation peak).
    The table gives every point of the grid (ridges x widths x learners)."""
    cfg = CURVE_SIZES[check_size(size)]
    mix = default_mixture(cfg["p"], 2, rng=seed + _CURVE_SEEDS["mixture"])
    prob = mixture_problem(mix, cfg["n"], cfg["n"], rng=seed + _CURVE_SEEDS["problem"])
    fig, axes = new_figure("full", 0.78, nrows=len(ACTIVATIONS), ncols=2)
    table: dict[str, Any] = {"sa": SA, "problem": prob.to_dict(), "ridges": list(RIDGE_GRID),
                             "widths": list(cfg["widths"]), "seeds": cfg["seeds"],
                             "activations": {}}
    for i, act in enumerate(ACTIVATIONS):
        res = generalization_experiment(prob, act, SA, widths=cfg["widths"],
                                        ridges=RIDGE_GRID, seeds=cfg["seeds"],
                                        methods=tuple(_LEARNERS),
                                        seed=seed + _CURVE_SEEDS["weights"])
        family = DEFAULT_FAMILIES.get(act, "")
        table["activations"][act] = {"design_family": family, "points": _curve_rows(res),
                                     "timing": dict(res.timing)}
        for j, axis in enumerate(("ridge", "width")):
            ax = axes[i, j]
            _draw_curves(ax, res, axis, cfg)
            where = (f"m = {cfg['ridge_panel_width']}" if axis == "ridge"
                     else f"ridge {cfg['width_panel_ridge']:g}")
            ax.set_title(f"{display_name(act)} DEQ (design {family}), against the {axis}, "
                         f"{where}", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=6)
    fig.suptitle(f"Test error of ridge regression on random features of width m:\n"
                 f"two-class mixture, p = {cfg['p']}, n_train = n_test = {cfg['n']}, "
                 f"recurrent weight variance {SA:g};\nobserved (mean and standard error "
                 f"over {cfg['seeds']} weight draws) against the deterministic equivalent")
    seeds = {name: seed_rule(seed, off) for name, off in _CURVE_SEEDS.items()}
    return FigureOutput(fig, table, seeds)


# ----------------------------------------------------------------------------------------
# the digits' sampled CK spectrum against the prediction, beside a Gaussian mixture
# ----------------------------------------------------------------------------------------
def _digits(classes: Any) -> Any:
    """The normalised digits of ``classes``; scikit-learn missing raises the library's
    MissingDependencyError (:func:`rmt_deq.data.labelled.load_digits`)."""
    return load_labelled_data("digits", classes=classes)


def _gaussian_twin(X: np.ndarray, codes: np.ndarray, covariance: str, sizes: np.ndarray,
                   rng: int) -> tuple[GaussianMixture, Any]:
    """A Gaussian mixture with the data's plug-in class means and class covariances (full,
    or their diagonals), and one sample of it at the data's class sizes."""
    est = plugin_statistics(X, codes)
    W = est.omega
    full = [W[:, codes == a] @ W[:, codes == a].T / (s - 1) for a, s in enumerate(sizes)]
    covs = np.stack([C if covariance == "sample" else np.diag(C) for C in full])
    mix = GaussianMixture(est.means, covs, sizes / sizes.sum())
    return mix, mix.sample(sizes=sizes, rng=rng)


def _spectrum_panel(inputs: Any, activation: str, cfg: dict, seed: int) -> tuple[dict, dict]:
    """Prediction from the statistics of ``inputs``, the sampled CK and the surrogate."""
    sol = solve_four_equations(activation, SA, inputs.stats.tau0)
    c1, L, c0 = as_low_rank_coefficients(surrogate_coefficients("ck", sol, inputs.stats))
    bulk = kernel_bulk(inputs.model, c1=c1, c0=c0, num=cfg["num"])
    spikes = isolated_eigenvalues(inputs.model, (c1, L, c0), bulk=bulk)
    sampled = observed_kernel("sampled", "ck", inputs, activation, sol, sampling={
        "width": cfg["width"], "realizations": cfg["realizations"], "rng": seed})
    surrogate = observed_kernel("surrogate", "ck", inputs, activation, sol)
    G, Gt = np.asarray(sampled.matrix), np.asarray(surrogate.matrix)
    pred = Prediction(kind="ck", bulk=bulk, spikes=spikes, c1=c1, c0=c0, L=L)
    cmp = compare_spectrum(G, pred, labels=inputs.codes)
    ev, ev_t = np.linalg.eigvalsh(G), np.linalg.eigvalsh(Gt)
    row = {"activation": activation, "n": inputs.n, "p": inputs.p,
           "sizes": inputs.sizes.tolist(), "statistics": inputs.source,
           "width": cfg["width"], "realizations": cfg["realizations"],
           "monte_carlo_error_relative": float(sampled.error_relative["ck"]),
           "relative_operator_error": relative_operator_distance(Gt, G),
           "ks_sampled_vs_predicted_density": cmp.distances.ks,
           "w1_relative_sampled_vs_predicted_density": cmp.distances.w1_relative,
           "ks_sampled_vs_surrogate_eigenvalues": spectral_distances(ev, ev_t).ks,
           "atom": bulk.atom, "atom_at": bulk.atom_at if bulk.atom > 0 else None,
           "mass": bulk.mass, "mass_error": bulk.mass_error,
           "support": [list(s) for s in bulk.support],
           "isolated_predicted": spikes.positions.tolist(),
           "largest_sampled_eigenvalues": ev[::-1][:4].tolist(),
           "density": {"x": bulk.x.tolist(), "density": bulk.density.tolist()}}
    return row, {"bulk": bulk, "spikes": spikes, "ev": ev}


@register("digits_spectra", "sampled DEQ CK spectrum on the handwritten digits 0 and 1 "
                            "against the density predicted from plug-in statistics, "
                            "beside a Gaussian mixture of the same statistics "
                            "(needs scikit-learn)",
          requires={"sklearn": "scikit-learn (pip install rmt_deq[data])"})
@styled
def digits_spectra(size: str, seed: int) -> FigureOutput:
    """Columns: the digits, the Gaussian mixture of their statistics; rows: activations
    (ReLU at quick size, ReLU and tanh at full size), sa = 0.2.

    Raises
    ------
    MissingDependencyError
        scikit-learn is not installed (the digits are its bundled data set).
    """
    cfg = SPECTRA_SIZES[check_size(size)]
    d = _digits(DIGITS)
    X, codes = np.asarray(d.X), np.asarray(d.codes)
    sizes = np.asarray(d.sizes, dtype=np.int64)
    mix, sample = _gaussian_twin(X, codes, cfg["covariance"], sizes,
                                 seed + _SPECTRA_SEEDS["gaussian_sample"])
    sets = {"digits": data_inputs(X, codes, data_covariance=cfg["covariance"]),
            "gaussian": mixture_inputs(mix, sizes, sample)}
    words = {"digits": f"digits {DIGITS[0]} vs {DIGITS[1]}",
             "gaussian": "Gaussian mixture, the digits' statistics"}
    acts = cfg["activations"]
    fig, axes = new_figure("full", 0.42 * len(acts) + 0.12, nrows=len(acts), ncols=2)
    axes = np.atleast_2d(axes)
    rows = []
    for i, act in enumerate(acts):
        for j, (name, inputs) in enumerate(sets.items()):
            row, drawn = _spectrum_panel(inputs, act, cfg, seed + _SPECTRA_SEEDS["sampled_ck"])
            rows.append({"data": name, **row})
            ax = axes[i, j]
            plot_spectrum(drawn["bulk"], drawn["spikes"],
                          eigenvalues={f"sampled CK (m = {cfg['width']}, R = "
                                       f"{cfg['realizations']})": drawn["ev"]},
                          ax=ax, legend="none", counts=False)
            ax.set_title(f"{words[name]}, {display_name(act)}: n = {row['n']}, p = "
                         f"{row['p']}\n||G - G~|| / ||G|| = "
                         f"{row['relative_operator_error']:.3f}, Kolmogorov–Smirnov "
                         f"{row['ks_sampled_vs_predicted_density']:.3f}", fontsize=7)
            ax.set_xlabel("eigenvalue of the CK G")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=6)
    cov = ("full class covariances" if cfg["covariance"] == "sample"
           else "per-coordinate class variances")
    fig.suptitle(f"Sampled DEQ CK spectrum against the prediction from the class "
                 f"statistics\n({cov}), recurrent weight variance {SA:g}")
    seeds = {name: seed_rule(seed, off) for name, off in _SPECTRA_SEEDS.items()}
    return FigureOutput(fig, {"sa": SA, "digits": list(DIGITS),
                              "covariance": cfg["covariance"], "panels": rows}, seeds)


# ----------------------------------------------------------------------------------------
# accuracy: DEQ features against the designed network's, kernels beside
# ----------------------------------------------------------------------------------------
#: the series of the accuracy figure: (key, label, colour index); the keys ending in
#: "predicted" or "surrogate" are predictions, drawn hollow in their learner's colour
_ACCURACY_SERIES = (("deq_rf", "DEQ random features", 0),
                    ("deq_rf_predicted", "DEQ random features, predicted", 0),
                    ("enn_rf", "designed network random features", 1),
                    ("enn_rf_predicted", "designed network, predicted", 1),
                    ("ck_kernel", "exact CK kernel ridge", 2),
                    ("ck_surrogate", "CK surrogate kernel ridge", 2),
                    ("ntk_kernel", "exact NTK kernel ridge", 3),
                    ("ntk_surrogate", "NTK surrogate kernel ridge", 3))


def _accuracy_case(prob: Any, act: str, sa: float, cfg: dict, seed: int) -> dict:
    """One (problem, activation, sa): the ridge chosen without training (the grid value
    minimising the CK surrogate's predicted kernel-ridge test MSE), then every learner's
    test accuracy at that ridge."""
    res = generalization_experiment(prob, act, sa, widths=(cfg["width"],), ridges=RIDGE_GRID,
                                    seeds=cfg["seeds"], sources=("surrogate",), seed=seed)
    lam = min((res.predicted_for("ck_kernel", r, source="surrogate") for r in res.ridges),
              key=lambda p: p.test_mse).ridge
    m = float(cfg["width"])
    rec: dict[str, Any] = {"activation": act, "sa": sa, "ridge": lam, "width": cfg["width"],
                           "seeds": cfg["seeds"], "design_family": DEFAULT_FAMILIES.get(act)}
    for meth in ("deq_rf", "enn_rf", "ck_kernel", "ntk_kernel"):
        o = res.observed_for(meth, lam, m)
        rec[meth] = {"accuracy": o.test_accuracy, "accuracy_se": o.test_accuracy_se,
                     "test_mse": o.test_mse, "test_mse_se": o.test_mse_se}
    for meth in ("ck_kernel", "ntk_kernel"):
        p = res.predicted_for(meth, lam, source="surrogate")
        rec[meth.replace("kernel", "surrogate")] = {"accuracy": p.test_accuracy,
                                                     "accuracy_se": 0.0,
                                                     "test_mse": p.test_mse}
    for meth in ("deq_rf", "enn_rf"):    # a two-layer design at its hidden width
        p = res.predicted_for(meth, lam, m, "surrogate")
        rec[f"{meth}_predicted"] = {"accuracy": p.test_accuracy, "accuracy_se": 0.0,
                                    "test_mse": p.test_mse}
    rec["gap"] = rec["deq_rf"]["accuracy"] - rec["enn_rf"]["accuracy"]
    rec["gap_se"] = math.hypot(rec["deq_rf"]["accuracy_se"], rec["enn_rf"]["accuracy_se"])
    return rec


def _accuracy_problems(cfg: dict, seed: int) -> tuple[dict, list[str]]:
    mix = default_mixture(cfg["p"], 2, rng=seed + _ACCURACY_SEEDS["mixture"])
    probs = {"mixture": mixture_problem(mix, cfg["n"], cfg["n"],
                                        rng=seed + _ACCURACY_SEEDS["problem"])}
    notes = []
    if cfg["digits"]:
        try:
            probs["digits"] = data_problem(_digits(DIGITS), 0.5,
                                           rng=seed + _ACCURACY_SEEDS["problem"])
        except MissingDependencyError as exc:
            notes.append(f"digits left out: {exc}")
    return probs, notes


def _draw_accuracy(ax: Any, cases: list[dict], title: str) -> None:
    x = np.arange(len(cases), dtype=float)
    k = len(_ACCURACY_SERIES)
    low = min(c[key]["accuracy"] - c[key]["accuracy_se"] for c in cases
              for key, _, _ in _ACCURACY_SERIES)
    for s, (key, label, col) in enumerate(_ACCURACY_SERIES):
        xs = x + (s - (k - 1) / 2) * 0.09
        y = [c[key]["accuracy"] for c in cases]
        se = [c[key]["accuracy_se"] for c in cases]
        hollow = key.endswith(("surrogate", "predicted"))
        ax.errorbar(xs, y, yerr=se, fmt="s" if hollow else "o", ms=3.5, capsize=2,
                    color=color(col), mfc="none" if hollow else None, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{display_name(c['activation'])}\nsa = {c['sa']:g}\n"
                        f"ridge {c['ridge']:g}" for c in cases], fontsize=6)
    ax.set_ylim(min(low - 0.01, 0.98), 1.004)          # an accuracy is at most 1
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=7)


@register("deq_vs_designed_accuracy", "test accuracy of ridge on DEQ random features "
                                      "against the designed network's, and of exact and "
                                      "surrogate CK/NTK kernel ridge")
@styled
def deq_vs_designed_accuracy(size: str, seed: int) -> FigureOutput:
    """One panel per problem (the mixture; digits 0 vs 1 at full size with scikit-learn);
    ReLU and tanh at sa = 0.2 and 0.5; the ridge of each case chosen from the statistics
    (no training)."""
    cfg = ACCURACY_SIZES[check_size(size)]
    probs, notes = _accuracy_problems(cfg, seed)
    fig, axes = new_figure("full", 0.5, nrows=1, ncols=len(probs))
    axes = np.atleast_1d(axes)
    table: dict[str, Any] = {"width": cfg["width"], "seeds": cfg["seeds"], "notes": notes,
                             "problems": {}}
    for ax, (name, prob) in zip(axes, probs.items()):
        cases = [_accuracy_case(prob, act, sa, cfg, seed + _ACCURACY_SEEDS["weights"])
                 for act in ACTIVATIONS for sa in ACCURACY_SAS]
        table["problems"][name] = {"problem": prob.to_dict(), "cases": cases}
        words = (f"two-class mixture, p = {prob.p}" if name == "mixture"
                 else f"digits {DIGITS[0]} vs {DIGITS[1]}, p = {prob.p}")
        _draw_accuracy(ax, cases, f"{words}, n_train = {prob.n_train}, "
                                  f"n_test = {prob.n_test}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=6)
    fig.suptitle(f"Test accuracy: ridge on random features of width m = {cfg['width']}\n"
                 f"(mean and standard error over {cfg['seeds']} weight draws) and kernel "
                 f"ridge; hollow: predicted from the statistics;\nthe ridge: the grid "
                 f"value minimising the CK surrogate's predicted test error")
    seeds = {name: seed_rule(seed, off) for name, off in _ACCURACY_SEEDS.items()}
    return FigureOutput(fig, table, seeds)
