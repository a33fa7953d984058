"""Isolated eigenvalues and eigenvector alignments (docs/theory.md §7.5, §7.6): predicted
against observed on the exact (infinite-width) CK and NTK.

For the two-class mixture with well-separated isolated eigenvalues
(:func:`rmt_deq.experiments.mixtures.spike_mixture`), ReLU and tanh DEQs, n < p and n > p,
and several independent samples: the predicted isolated eigenvalues and their alignments
<u, j_a/sqrt(n_a)>^2 (:attr:`rmt_deq.spectra.spikes.Spikes.alignments`) against the
observed ones, the eigenvalue of the exact kernel nearest each prediction and the squared
cosine of its eigenvector with each normalised class indicator
(:func:`rmt_deq.spectra.spikes.observed_alignments`).  Single samples fluctuate at
O(p^-1/2), so the observed values are averaged over the samples (with their standard
deviation).  Isolated eigenvalues between the atom and the bulk (n > p) lie inside the
spread a finite sample gives the atom and cannot be resolved: they are in the table,
flagged, but not drawn.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rmt_deq.experiments.mixtures import spike_mixture
from rmt_deq.jobs.figures._common import display_name, predict_spectrum, seed_rule
from rmt_deq.jobs.figures.registry import FigureOutput, check_size, register
from rmt_deq.kernels.exact import exact_ntk
from rmt_deq.metrics import nearest_eigenvalues
from rmt_deq.plotting import new_figure
from rmt_deq.plotting.style import color, styled
from rmt_deq.spectra.spikes import observed_alignments

__all__ = ["eigenvector_alignments", "SIZES", "spike_statistics"]

SA = 0.2
ACTIVATIONS = ("relu", "tanh")
RATIOS = (0.8, 1.5)
#: per size: dimension p and the number of independent samples
SIZES = {"quick": {"p": 200, "samples": 3}, "full": {"p": 1600, "samples": 10}}
#: seed offsets: the mixture's means; sample r is drawn with seed + 100 + r
_SEEDS = {"mixture": 0, "samples": "100 + r (r = 0, 1, ...)"}
_SAMPLE_OFFSET = 100


def spike_statistics(activation: str, ratio: float, p: int, samples: int, seed: int
                     ) -> list[dict]:
    """Predicted and observed isolated eigenvalues and alignments of the exact CK and NTK,
    over ``samples`` independent samples of n = ratio p columns (one dict per kernel)."""
    mix = spike_mixture(p, seed=seed)
    n = int(ratio * p)
    per_kind: dict[str, list] = {"ck": [], "ntk": []}
    pred: dict[str, Any] = {}
    for r in range(samples):
        sample = mix.sample(n, rng=seed + _SAMPLE_OFFSET + r)
        sol = None
        for kind in ("ck", "ntk"):
            pr = predict_spectrum(mix, sample, activation, SA, kind, solution=sol)
            sol = pr.solution
            if kind == "ck":
                exact = exact_ntk(sample.X, activation, SA, solution=sol)
            ev, U = np.linalg.eigh(exact.ck if kind == "ck" else exact.ntk)
            idx = nearest_eigenvalues(ev, pr.spikes.positions)
            per_kind[kind].append((ev[idx], observed_alignments(U[:, idx], sample.labels,
                                                                mix.K)))
            pred[kind] = pr.spikes
    rows = []
    for kind, obs in per_kind.items():
        sp = pred[kind]
        lam = np.array([o for o, _ in obs])                       # (samples, S)
        al = np.array([a for _, a in obs])                        # (samples, S, K)
        bulk = sp.bulk
        edge = min(a for a, _ in bulk.support)
        in_gap = [bool(bulk.atom > 0 and bulk.atom_at < s < edge) for s in sp.positions]
        sd = (lambda x: x.std(axis=0, ddof=1).tolist()) if samples > 1 else (lambda x: None)
        rows.append({
            "activation": activation, "kernel": kind, "p": p, "n": n, "samples": samples,
            "predicted": sp.positions.tolist(), "observed_mean": lam.mean(axis=0).tolist(),
            "observed_std": sd(lam),
            "relative_error_of_mean": (lam.mean(axis=0) / sp.positions - 1.0).tolist(),
            "predicted_alignments": sp.alignments.tolist(),
            "observed_alignments_mean": al.mean(axis=0).tolist(),
            "observed_alignments_std": sd(al),
            "between_atom_and_bulk": in_gap})
    return rows


def _resolvable(row: dict) -> np.ndarray:
    return ~np.asarray(row["between_atom_and_bulk"], dtype=bool)


@register("eigenvector_alignments",
          "isolated eigenvalues and eigenvector alignments with the class indicators: "
          "predicted against observed (exact CK and NTK, several samples)")
@styled
def eigenvector_alignments(size: str, seed: int) -> FigureOutput:
    """Two panels: (a) observed against predicted alignment, one point per isolated
    eigenvalue and class, with the standard deviation over samples; (b) the relative
    error of the mean observed isolated eigenvalue."""
    cfg = SIZES[check_size(size)]
    rows = [r for act in ACTIVATIONS for ratio in RATIOS
            for r in spike_statistics(act, ratio, cfg["p"], cfg["samples"],
                                      seed + _SEEDS["mixture"])]
    fig, (ax_a, ax_e) = new_figure("full", 0.52, ncols=2)
    ax_a.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, zorder=0)
    cases = []
    for i, row in enumerate(rows):
        ok = _resolvable(row)
        x = np.asarray(row["predicted_alignments"])[ok].ravel()
        y = np.asarray(row["observed_alignments_mean"])[ok].ravel()
        yerr = (None if row["observed_alignments_std"] is None
                else np.asarray(row["observed_alignments_std"])[ok].ravel())
        rel = "<" if row["n"] < row["p"] else ">"
        label = (f"{display_name(row['activation'])} {row['kernel'].upper()}, "
                 f"n {rel} p")
        style = dict(color=color(2 * ACTIVATIONS.index(row["activation"])
                                 + int(row["n"] > row["p"])),
                     marker="o" if row["kernel"] == "ck" else "s",
                     markerfacecolor="none" if row["n"] > row["p"] else None,
                     linestyle="none", markersize=4, capsize=1.5, elinewidth=0.6)
        ax_a.errorbar(x, y, yerr=yerr, label=label, **style)
        e = 100 * np.asarray(row["relative_error_of_mean"])[ok]
        s = (None if row["observed_std"] is None else
             100 * np.asarray(row["observed_std"])[ok] / np.asarray(row["predicted"])[ok])
        ax_e.errorbar(np.full(e.size, i), e, yerr=s, **style)
        cases.append(label)
    ax_a.set_xlim(-0.03, 1.0)
    ax_a.set_ylim(-0.03, 1.0)
    ax_a.set_xlabel("predicted squared cosine")
    ax_a.set_ylabel("observed squared cosine")
    ax_a.set_title("(a) squared cosine of each isolated eigenvector\nwith each "
                   "normalised class indicator")
    ax_e.axhline(0.0, color="0.6", linewidth=0.8, zorder=0)
    ax_e.set_xticks(range(len(cases)))
    ax_e.set_xticklabels(cases, rotation=40, ha="right", fontsize=6)
    ax_e.set_ylabel("observed / predicted eigenvalue − 1 (%)")
    ax_e.set_title("(b) isolated eigenvalues")
    fig.legend(*ax_a.get_legend_handles_labels(), loc="outside lower center", ncol=4)
    fig.suptitle(f"Isolated eigenvalues and their eigenvectors, exact DEQ kernels "
                 f"(recurrent weight variance {SA:g}, p = {cfg['p']}):\nmean over "
                 f"{cfg['samples']} samples, error bars one standard deviation")
    seeds = {"mixture": seed_rule(seed, _SEEDS["mixture"]),
             "samples": seed_rule(seed, _SEEDS["samples"])}
    return FigureOutput(fig, {"sa": SA, "cases": rows}, seeds)
