"""Acceptance measurements of the limiting spectra without sampling (docs/theory.md §7).

Writes ``figures/spectra_acceptance.json`` (with the run's manifest).  Run from the
repository root:

    OPENBLAS_NUM_THREADS=1 python figures/spectra_acceptance.py [--quick] [--no-sampled]

1. Bulk.  p = 1000, activations relu and tanh (sa = 0.2), n = 700 (< p) and n = 1500 (> p),
   an isotropic and a non-isotropic diagonal covariance model (K = 2,
   :func:`rmt_deq.experiments.mixtures.bulk_mixture`).  For the CK G and
   the NTK (all groups) the predicted bulk (:func:`rmt_deq.spectra.bulk.kernel_bulk`, from the
   mixture statistics only) is compared with the eigenvalues of the exact infinite-width
   kernel on one sample, the predicted isolated eigenvalues removed
   (:func:`rmt_deq.metrics.spectral_distances`): 1-Wasserstein distance as a fraction of the
   width of the predicted spectrum (hull of the support and, for n > p, the atom) and the
   Kolmogorov-Smirnov distance.  The same for the sampled (finite-width) CK Gram matrix
   averaged over R weight draws of width m (m = 250, m R >= 120 n by default: the budget at
   which the Monte-Carlo deformation, O(n/(m R)), is below the KS limit; the
   sampled_convergence section measures it), and with
   --sampled-ntk the sampled empirical NTK for relu, diagonal covariances, n < p.
2. Spikes.  p = 1600, n = 1280 and n = 2400, a mixture with well-separated spikes
   (:func:`rmt_deq.experiments.mixtures.spike_mixture`): the
   predicted isolated eigenvalues and their eigenvector alignments <u, j_a/sqrt(n_a)>^2
   against those of the exact CK and NTK, over several independent samples (mean and
   standard deviation across samples, since single-sample spikes fluctuate at O(p^-1/2)).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

from rmt_deq.experiments.manifest import portable_path, start_run
from rmt_deq.experiments.mixtures import bulk_mixture, spike_mixture
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.ck_surrogate import ck_surrogate_coefficients
from rmt_deq.kernels.exact import exact_ntk
from rmt_deq.kernels.ntk_surrogate import ntk_surrogate_coefficients
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk
from rmt_deq.metrics import spectral_distances
from rmt_deq.spectra.bulk import kernel_bulk
from rmt_deq.spectra.model import gram_model_from_mixture
from rmt_deq.spectra.spikes import isolated_eigenvalues, observed_alignments

SA = 0.2
HERE = os.path.dirname(os.path.abspath(__file__))
#: the seeds: mixtures' means, the bulk sample, the spike samples, the sampled kernels
SEEDS = {"mixture": 0, "bulk_sample": 11, "spike_samples": "100 + r", "sampled": 5}


def coefficients(kind, sol, stats):
    if kind == "ck":
        return ck_surrogate_coefficients(sol, stats, form="G")
    return ntk_surrogate_coefficients(sol, stats)


def predicted(mix, sample, sol, kind):
    stats = mix.statistics(sample)
    model = gram_model_from_mixture(mix, sample)
    coef = coefficients(kind, sol, stats)
    t = time.perf_counter()
    bulk = kernel_bulk(model, coef)
    spikes = isolated_eigenvalues(model, coef, bulk=bulk)
    return bulk, spikes, time.perf_counter() - t


def distances(bulk, spikes, ev):
    d = spectral_distances(ev, bulk, exclude=spikes.positions)
    sup_w = max(b for _, b in bulk.support) - min(a for a, _ in bulk.support)
    return {"ks": d.ks, "w1": d.w1, "width": d.width,
            "w1_relative": d.w1_relative, "w1_over_support_width": d.w1 / sup_w,
            "n_used": d.n_used}


def bulk_cases(args, out):
    covs = ("isotropic", "diagonal") if args.covariance is None else (args.covariance,)
    # with --covariance, the rows of the other covariance model are kept from the report
    rows = [r for r in out.get("bulk", []) if r.get("covariance") not in covs]
    p = args.p_bulk
    for cov in covs:
        mix = bulk_mixture(p, cov, seed=SEEDS["mixture"])
        for n in (int(0.7 * p), int(1.5 * p)):
            sample = mix.sample(n, rng=SEEDS["bulk_sample"])
            for act in ("relu", "tanh"):
                sol = solve_four_equations(act, SA, mix.statistics(sample).tau0)
                t = time.perf_counter()
                ex_ntk = exact_ntk(sample.X, act, SA, solution=sol)
                t_exact = time.perf_counter() - t
                mats = {"ck": np.asarray(ex_ntk.ck), "ntk": np.asarray(ex_ntk.ntk)}
                for kind in ("ck", "ntk"):
                    bulk, spikes, t_pred = predicted(mix, sample, sol, kind)
                    ev = np.linalg.eigvalsh(mats[kind])
                    row = {"covariance": cov, "p": p, "n": n, "activation": act,
                           "kernel": kind, "atom": bulk.atom,
                           "atom_at": bulk.atom_at if bulk.atom > 0 else None,
                           "support": [list(s) for s in bulk.support],
                           "spikes": spikes.positions.tolist(),
                           "exact": distances(bulk, spikes, ev),
                           "prediction_time_s": t_pred, "exact_kernel_time_s": t_exact}
                    if bulk.atom > 0:
                        # how the exact kernel spreads the atom: its n - p_eff eigenvalues
                        # nearest c0, their spread and offset
                        k = int(round(bulk.atom * n))
                        near = np.sort(ev[np.argsort(np.abs(ev - bulk.atom_at))[:k]])
                        row["exact_atom_spread"] = {
                            "count": k, "mean_minus_atom_at": float(near.mean() - bulk.atom_at),
                            "std": float(near.std()),
                            "std_over_width": float(near.std() / bulk.width)}
                    want_sampled = args.sampled and (kind == "ck" or (
                        args.sampled_ntk and cov == "diagonal" and n < p and act == "relu"))
                    if want_sampled:
                        t = time.perf_counter()
                        # the Monte-Carlo average of R Gram matrices of width m deforms the
                        # spectrum like a Wishart matrix with m R degrees of freedom, by
                        # O(n / (m R)): R is chosen so that m R >= features_per_sample * n
                        m_used = args.width
                        R_used = int(math.ceil(args.features_per_sample * n / m_used))
                        fn = sampled_ck if kind == "ck" else sampled_ntk
                        S = fn(sample.X, act, SA, width=m_used, realizations=R_used,
                               rng=SEEDS["sampled"],
                               solution=sol, batches=min(R_used, 16)).matrix
                        evs = np.linalg.eigvalsh(S)
                        row["sampled"] = distances(bulk, spikes, evs)
                        row["sampled"].update(width=m_used, realizations=R_used,
                                              time_s=time.perf_counter() - t)
                    rows.append(row)
                    rows.sort(key=lambda r_: r_["covariance"] != "isotropic")
                    s = row.get("sampled", {})
                    print(f"[bulk] {cov:9s} n={n:5d} {act:4s} {kind:3s}: exact W1/width "
                          f"{row['exact']['w1_relative']:.4f} KS {row['exact']['ks']:.4f}"
                          + (f" | sampled W1/width {s['w1_relative']:.4f} KS {s['ks']:.4f}"
                             if s else ""), flush=True)
                    out["bulk"] = rows
                    _dump(out, args)
    return rows


def sampled_convergence(args, out):
    """The sampled kernel's distance to the prediction against the number of features m R:
    relu CK, diagonal (or --convergence-covariance) covariances, p = 1000, n = 700 (the Monte-Carlo average deforms the
    spectrum by O(n / (m R)); the prediction is the m R -> infinity limit)."""
    p = args.p_bulk
    n = int(0.7 * p)
    cov = args.convergence_covariance
    mix = bulk_mixture(p, cov, seed=SEEDS["mixture"])
    sample = mix.sample(n, rng=SEEDS["bulk_sample"])
    sol = solve_four_equations("relu", SA, mix.statistics(sample).tau0)
    bulk, spikes, _ = predicted(mix, sample, sol, "ck")
    rows = []
    for fps in args.convergence_features:
        R = int(math.ceil(fps * n / args.width))
        t = time.perf_counter()
        S = sampled_ck(sample.X, "relu", SA, width=args.width, realizations=R,
                       rng=SEEDS["sampled"],
                       solution=sol, batches=min(R, 16)).matrix
        d = distances(bulk, spikes, np.linalg.eigvalsh(S))
        d.update(features_per_sample=fps, width=args.width, realizations=R,
                 time_s=time.perf_counter() - t)
        rows.append(d)
        print(f"[sampled m R = {fps:g} n] W1/width {d['w1_relative']:.4f} KS {d['ks']:.4f}",
              flush=True)
        key = "sampled_convergence" + ("" if cov == "diagonal" else f"_{cov}")
        out[key] = {"p": p, "n": n, "activation": "relu", "kernel": "ck",
                    "covariance": cov, "rows": rows}
        _dump(out, args)
    return rows


def spike_cases(args, out):
    rows = []
    p = args.p_spike
    mix = spike_mixture(p, seed=SEEDS["mixture"])
    for n in (int(0.8 * p), int(1.5 * p)):
        for act in ("relu", "tanh"):
            per_kind = {"ck": [], "ntk": []}
            pred = {}
            for r in range(args.spike_samples):
                sample = mix.sample(n, rng=100 + r)
                sol = solve_four_equations(act, SA, mix.statistics(sample).tau0)
                ex = exact_ntk(sample.X, act, SA, solution=sol)
                for kind, M in (("ck", np.asarray(ex.ck)), ("ntk", np.asarray(ex.ntk))):
                    bulk, spikes, _ = predicted(mix, sample, sol, kind)
                    pred[kind] = spikes
                    ev, U = np.linalg.eigh(M)
                    # observed spikes: the eigenvalues nearest the predicted positions
                    idx, used = [], set()
                    for s in spikes.positions:
                        order = np.argsort(np.abs(ev - s))
                        j = next(int(i) for i in order if int(i) not in used)
                        used.add(j)
                        idx.append(j)
                    obs_al = observed_alignments(U[:, idx], sample.labels, mix.K)
                    per_kind[kind].append((ev[idx], obs_al))
            for kind in ("ck", "ntk"):
                sp = pred[kind]
                obs = np.array([o for o, _ in per_kind[kind]])        # (R, S)
                al = np.array([a for _, a in per_kind[kind]])         # (R, S, K)
                mean = obs.mean(axis=0)
                rel = mean / sp.positions - 1.0
                # spikes between the atom and the bulk (n > p) lie inside the O(p^-1/2)
                # spread the exact kernel gives the atom: not resolvable there
                bulk_lo = min(a for a, _ in sp.bulk.support)
                in_atom_gap = np.array([sp.bulk.atom > 0 and sp.bulk.atom_at < s < bulk_lo
                                        for s in sp.positions])
                res_ = ~in_atom_gap
                row = {"p": p, "n": n, "activation": act, "kernel": kind,
                       "samples": args.spike_samples,
                       "predicted": sp.positions.tolist(),
                       "observed_mean": mean.tolist(),
                       "observed_std": obs.std(axis=0, ddof=1).tolist()
                       if obs.shape[0] > 1 else None,
                       "relative_error_of_mean": rel.tolist(),
                       "relative_error_per_sample": (obs / sp.positions - 1.0).tolist(),
                       "predicted_alignments": sp.alignments.tolist(),
                       "observed_alignments_mean": al.mean(axis=0).tolist(),
                       "alignment_error_of_mean": float(np.max(np.abs(
                           al.mean(axis=0) - sp.alignments))),
                       "alignment_error_max_per_sample": float(np.max(np.abs(
                           al - sp.alignments[None]))),
                       "gaps": [[str(a), str(b)] for a, b in sp.gap],
                       "in_atom_gap": in_atom_gap.tolist(),
                       "resolvable_max_relative_error_of_mean": float(
                           np.max(np.abs(rel[res_]))) if res_.any() else None,
                       "resolvable_alignment_error_of_mean": float(np.max(np.abs(
                           al.mean(axis=0)[res_] - sp.alignments[res_])))
                       if res_.any() else None}
                rows.append(row)
                print(f"[spikes] n={n} {act:4s} {kind:3s}: predicted "
                      f"{np.round(sp.positions, 4).tolist()} observed mean "
                      f"{np.round(mean, 4).tolist()} rel.err {np.round(rel, 4).tolist()}; "
                      f"alignment err (mean) {row['alignment_error_of_mean']:.3f}; outside "
                      f"the atom gap: max |rel.err| "
                      f"{row['resolvable_max_relative_error_of_mean']:.4f}, alignment err "
                      f"{row['resolvable_alignment_error_of_mean']:.3f}",
                      flush=True)
                out["spikes"] = rows
                _dump(out, args)
    return rows


def _dump(out, args):
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(args.run.record(out, outputs=[args.out]), fh, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--no-sampled", dest="sampled", action="store_false")
    ap.add_argument("--sampled-ntk", action="store_true",
                    help="also the sampled NTK (diagonal covariance, n < p)")
    ap.add_argument("--width", type=int, default=250, help="sampled kernels' width m")
    ap.add_argument("--features-per-sample", type=float, default=120.0,
                    help="weight draws R = ceil(this * n / m) (default 120)")
    ap.add_argument("--covariance", choices=["isotropic", "diagonal"], default=None,
                    help="bulk section: only this covariance model (the other model's rows "
                         "are kept from an existing report)")
    ap.add_argument("--spike-samples", type=int, default=4)
    ap.add_argument("--only", choices=["bulk", "spikes", "sampled_convergence"],
                    default=None)
    ap.add_argument("--convergence-features", type=float, nargs="+",
                    default=[30.0, 60.0, 120.0],
                    help="m R / n values of the sampled_convergence section")
    ap.add_argument("--convergence-covariance", choices=["diagonal", "isotropic"],
                    default="diagonal")
    ap.add_argument("--out", default=os.path.join(HERE, "spectra_acceptance.json"))
    args = ap.parse_args(argv)
    run = start_run(seeds=SEEDS)
    args.p_bulk, args.p_spike = (200, 300) if args.quick else (1000, 1600)
    out = {}
    if args.only is not None and os.path.exists(args.out):
        # one section: keep the other section of an existing report
        with open(args.out, encoding="utf-8") as fh:
            out = json.load(fh)
    cmd = "OPENBLAS_NUM_THREADS=1 " + run.manifest().command
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    args.run = run
    out.setdefault("commands", {})
    out.setdefault("settings", {})
    for section in (("bulk", "spikes", "sampled_convergence") if args.only is None
                    else (args.only,)):
        if section == "bulk" and args.covariance is not None:
            section = f"bulk_{args.covariance}"
        out["commands"][section] = cmd
        out["settings"][section] = settings
    out["sa"] = SA
    t0 = time.perf_counter()
    if args.only in (None, "bulk"):
        bulk_cases(args, out)
    if args.only in (None, "spikes"):
        spike_cases(args, out)
    if args.only in (None, "sampled_convergence"):
        sampled_convergence(args, out)
    key = args.only or "all"
    if args.covariance is not None:
        key += f"_{args.covariance}"
    out.setdefault("time_s", {})[key] = time.perf_counter() - t0
    _dump(out, args)
    print(f"wrote {portable_path(args.out)} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
