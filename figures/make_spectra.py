"""Spectral figures (docs/theory.md §7): sampled Gram eigenvalues vs the prediction.

For the CK and the NTK of a DEQ and of the shallow explicit network designed to match it
(:func:`rmt_deq.design.solve.design_for_deq`), each panel shows the histogram of the eigenvalues
of the sampled (finite-width, Monte-Carlo averaged) kernel on one sample of a two-class
mixture, the limiting density of the bulk predicted from the mixture statistics alone
(:func:`rmt_deq.spectra.bulk.kernel_bulk`) and the predicted isolated eigenvalues
(:func:`rmt_deq.spectra.spikes.isolated_eigenvalues`), drawn by :func:`rmt_deq.plotting.plot_spectrum`.

Run from the repository root:

    OPENBLAS_NUM_THREADS=1 python figures/make_spectra.py [--p 400] [--activation relu]

Writes figures/spectra_{deq,enn}_{ck,ntk}.png, figures/spectra_deq_ck_atom.png (n > p) and
figures/spectra_overview.png (the four n < p panels), and figures/spectra_figures.json with
the distances of each sampled spectrum to its prediction and the run's manifest.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
from matplotlib.figure import Figure

from rmt_deq.design.solve import design_for_deq
from rmt_deq.experiments.manifest import portable_path, start_run
from rmt_deq.experiments.mixtures import spike_mixture
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.ck_surrogate import ck_surrogate_coefficients
from rmt_deq.kernels.ntk_surrogate import ntk_surrogate_coefficients
from rmt_deq.plotting import plot_spectrum, save_figure
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk
from rmt_deq.metrics import spectral_distances
from rmt_deq.spectra.bulk import kernel_bulk
from rmt_deq.spectra.model import gram_model_from_mixture
from rmt_deq.sampling.explicit import sampled_explicit_ck, sampled_explicit_ntk
from rmt_deq.spectra.spikes import isolated_eigenvalues

HERE = os.path.dirname(os.path.abspath(__file__))
#: the seeds: the mixture's means, the sample, and each sampled kernel
SEEDS = {"mixture": 0, "sample": 1, "deq_ck": 2, "deq_ntk": 3, "explicit_ck": 4,
         "explicit_ntk": 5}


def panel(name, model, coef, eigenvalues, title, ax=None):
    bulk = kernel_bulk(model, coef)
    spikes = isolated_eigenvalues(model, coef, bulk=bulk)
    d = spectral_distances(eigenvalues, bulk, exclude=spikes.positions)
    ax = plot_spectrum(bulk, spikes, eigenvalues=eigenvalues, ax=ax, label="sampled",
                       title=f"{title}\nKS {d.ks:.3f}, W1/width {d.w1_relative:.4f}")
    top = np.sort(eigenvalues)[::-1][:spikes.count][::-1]
    return ax, {"panel": name, "ks": d.ks, "w1_relative": d.w1_relative,
                "atom": bulk.atom, "support": [list(s) for s in bulk.support],
                "spikes_predicted": spikes.positions.tolist(),
                "top_eigenvalues_observed": top.tolist()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=400)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--sa", type=float, default=0.2)
    ap.add_argument("--width", type=int, default=250)
    ap.add_argument("--features-per-sample", type=float, default=60.0,
                    help="realizations R = ceil(this * n / width) for the CK")
    ap.add_argument("--ntk-features-per-sample", type=float, default=20.0)
    ap.add_argument("--outdir", default=HERE)
    args = ap.parse_args(argv)
    run = start_run(seeds=SEEDS)
    act, sa, p, m = args.activation, args.sa, args.p, args.width
    mix = spike_mixture(p, seed=SEEDS["mixture"])
    records, written = [], []
    overview = Figure(figsize=(12, 8.4))
    axes = overview.subplots(2, 2)
    for n, tag in ((int(0.8 * p), ""), (int(1.5 * p), "_atom")):
        sample = mix.sample(n, rng=SEEDS["sample"])
        stats = mix.statistics(sample)
        model = gram_model_from_mixture(mix, sample)
        sol = solve_four_equations(act, sa, stats.tau0)
        R_ck = int(math.ceil(args.features_per_sample * n / m))
        R_ntk = int(math.ceil(args.ntk_features_per_sample * n / m))
        jobs = [("deq_ck", lambda: sampled_ck(sample.X, act, sa, width=m, realizations=R_ck,
                                              rng=SEEDS["deq_ck"], solution=sol,
                                              batches=16).matrix,
                 ck_surrogate_coefficients(sol, stats, form="G"),
                 f"DEQ CK ({act}, sa = {sa:g}), m = {m}, R = {R_ck}")]
        if not tag:
            jobs.append(("deq_ntk",
                         lambda: sampled_ntk(sample.X, act, sa, width=m, realizations=R_ntk,
                                             rng=SEEDS["deq_ntk"], solution=sol,
                                             batches=16).matrix,
                         ntk_surrogate_coefficients(sol, stats),
                         f"DEQ NTK (groups v, A, B), m = {m}, R = {R_ntk}"))
            for target in ("ck", "ntk"):
                net = design_for_deq(act, sa, stats.tau0, target=target)
                enn = net.network
                coefs = net.coefficients()
                if target == "ck":
                    coef = coefs.ck.to_surrogate(stats)
                    fn = (lambda enn=enn: sampled_explicit_ck(
                        sample.X, enn, width=m, realizations=R_ck,
                        rng=SEEDS["explicit_ck"],
                        tau0=stats.tau0, batches=16).matrix)
                    R = R_ck
                else:
                    groups = net.explicit_groups
                    sel = coefs.total if groups is None else None
                    if sel is None:
                        sel = coefs.groups[groups[0]]
                        for g in groups[1:]:
                            sel = sel + coefs.groups[g]
                    coef = sel.to_surrogate(stats)
                    fn = (lambda enn=enn, groups=groups: sampled_explicit_ntk(
                        sample.X, enn, width=m, realizations=R_ntk,
                        rng=SEEDS["explicit_ntk"],
                        tau0=stats.tau0, groups=groups, batches=16).matrix)
                    R = R_ntk
                jobs.append((f"enn_{target}", fn, coef,
                             f"designed ENN ({net.family}, L = {net.L}) {target.upper()}, "
                             f"m = {m}, R = {R}"))
        for i, (name, fn, coef, title) in enumerate(jobs):
            t = time.perf_counter()
            ev = np.linalg.eigvalsh(fn())
            full_title = f"{title}: p = {p}, n = {n}"
            ax, rec = panel(name + tag, model, coef, ev, full_title)
            path = os.path.join(args.outdir, f"spectra_{name}{tag}.png")
            save_figure(ax.figure, path)
            written.append(path)
            if not tag:
                panel(name, model, coef, ev, full_title, ax=axes.flat[i])
            rec.update(p=p, n=n, seconds=time.perf_counter() - t)
            records.append(rec)
            print(f"{name + tag:14s} KS {rec['ks']:.4f}  W1/width {rec['w1_relative']:.4f}  "
                  f"spikes {np.round(rec['spikes_predicted'], 4).tolist()} observed "
                  f"{np.round(rec['top_eigenvalues_observed'], 4).tolist()}  "
                  f"({rec['seconds']:.0f} s)", flush=True)
    path = os.path.join(args.outdir, "spectra_overview.png")
    save_figure(overview, path)
    written.append(path)
    report = os.path.join(args.outdir, "spectra_figures.json")
    settings = {**vars(args), "outdir": portable_path(args.outdir)}
    with open(report, "w", encoding="utf-8") as fh:
        json.dump(run.record({"settings": settings, "panels": records,
                              "seconds": run.elapsed}, outputs=[report, *written]),
                  fh, indent=1)
    print(f"wrote figures in {portable_path(args.outdir)} ({run.elapsed:.0f} s)")


if __name__ == "__main__":
    main()
