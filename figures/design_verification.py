"""Verification of the explicit-network design (docs/theory.md §6).

Writes, next to this file:

* ``design_verification.json``: everything below, as numbers, with the run's manifest;
* ``design_spectra.png``: eigenvalue histograms of the exact designed explicit network's
  kernel, the exact DEQ kernel and the DEQ's surrogate (CK: ReLU DEQ with lrelu2; NTK: tanh
  DEQ with htanh1);
* ``design_convergence.png``: ||K_explicit - K_DEQ|| / ||K_DEQ|| and the surrogate error
  against p.

Parts:

1. residual table: relu, tanh, swish, gelu DEQs at sa in {0.1, 0.2, 0.3, 0.5}, every family
   (lrelu2, quad2, htanh1, quadcubic2) and target (ck, ntk): the max absolute equation error
   of a match, or the InfeasibleDesignError's failing equation, best residual and message;
2. convergence: relative operator-norm distance of the exact explicit-network kernel to the
   exact DEQ kernel over p (n = 0.8 p, two-class default mixture), log-log slope, beside the
   DEQ surrogate's error (rmt_deq.experiments.designs.design_convergence); the last case is
   the tanh NTK
   with the refined design (htanhlin2 matching c1, theta_diag, c5, theta_slope; compared
   with the refined surrogate; more in figures/design_refined_ntk.py);
3. sampled: finite-width explicit-network Gram matrix vs finite-width DEQ Gram matrix
   (rmt_deq.experiments.designs.sampled_comparison).

Run:  OPENBLAS_NUM_THREADS=1 python figures/design_verification.py [--ps 200,400,800,1600]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
from matplotlib.figure import Figure

from rmt_deq.data.mixture import default_mixture
from rmt_deq.design.solve import design_for_deq, design_network
from rmt_deq.design.targets import design_target
from rmt_deq.errors import InfeasibleDesignError
from rmt_deq.experiments.designs import design_convergence, sampled_comparison
from rmt_deq.experiments.harness import SAMPLE_SEED_OFFSET
from rmt_deq.experiments.manifest import portable_path, start_run
from rmt_deq.plotting import save_figure

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
#: seeds of part 3: the mixture, its sample, the sampled comparison
SAMPLED_SEEDS = {"mixture": 0, "sample": 1, "networks": 5}

ACTS = ("relu", "tanh", "swish", "gelu")
SAS = (0.1, 0.2, 0.3, 0.5)
FAMILIES = ("lrelu2", "quad2", "htanh1", "quadcubic2")
TARGETS = ("ck", "ntk")
CONVERGENCE_CASES = (("relu", "lrelu2", "ck"), ("tanh", "htanh1", "ck"),
                     ("swish", "quadcubic2", "ck"), ("gelu", "quadcubic2", "ck"),
                     ("tanh", "htanh1", "ntk"), ("relu", "quadcubic2", "ntk"),
                     ("tanh", "htanhlin2", "ntk", True))     # refine=True


def residual_table() -> list:
    rows = []
    for act in ACTS:
        for sa in SAS:
            for fam in FAMILIES:
                for tgt in TARGETS:
                    target = design_target(act, sa, 1.0, target=tgt)
                    t = time.perf_counter()
                    rec = {"activation": act, "sa": sa, "family": fam, "target": tgt}
                    try:
                        net = design_network(target, fam)
                        rec.update(matched=True, residual=net.residual,
                                   relative_residual=net.relative_residual,
                                   params=dict(net.params),
                                   solve_ms=1e3 * net.diagnostics["solve_time_s"])
                    except InfeasibleDesignError as e:
                        rec.update(matched=False, residual=e.residual,
                                   failing_equation=e.failing_equation, message=str(e),
                                   says_cannot="cannot match" in str(e)
                                   and e.failing_equation in str(e))
                    rec["wall_ms"] = 1e3 * (time.perf_counter() - t)
                    rows.append(rec)
    return rows


def convergence(ps) -> list:
    out = []
    for case in CONVERGENCE_CASES:
        act, fam, tgt = case[:3]
        refine = bool(case[3]) if len(case) > 3 else False
        t = time.perf_counter()
        res = design_convergence(act, 0.2, ps, family=fam, target=tgt, refine=refine,
                                 seed=SEED, keep_eigenvalues=True)
        wall = time.perf_counter() - t
        out.append((res, wall))
        print(f"{act:5s} {fam:10s} {tgt}{'+refine' if refine else ''}: ENN-DEQ "
              + " ".join(f"{r.explicit_vs_deq:.2e}" for r in res.rows)
              + f" (slope {res.slopes['explicit_vs_deq'].value:+.2f}); surrogate-DEQ "
              + " ".join(f"{r.surrogate_vs_deq:.3f}" for r in res.rows)
              + f" (slope {res.slopes['surrogate_vs_deq'].value:+.2f})  [{wall:.0f} s]",
              flush=True)
    return out


def sampled(p: int = 200, width: int = 2000, realizations: int = 16) -> dict:
    mix = default_mixture(p, 2, rng=SAMPLED_SEEDS["mixture"])
    data = mix.sample(int(0.8 * p), rng=SAMPLED_SEEDS["sample"])
    tau0 = mix.statistics(data).tau0
    res = {}
    for act, fam in (("relu", "lrelu2"), ("tanh", "htanh1")):
        net = design_for_deq(act, 0.2, tau0, family=fam)
        t = time.perf_counter()
        r = sampled_comparison(net, data.X, width=width, realizations=realizations,
                               rng=SAMPLED_SEEDS["networks"]).to_dict()
        r["wall_s"] = time.perf_counter() - t
        res[f"{act}/{fam}"] = r
        print(f"sampled {act}/{fam} p={p} m={width} R={realizations}: "
              + ", ".join(f"{k} {v:.4f}" for k, v in r.items() if isinstance(v, float)),
              flush=True)
    return res


def plot(conv: list) -> list:
    """Draw the two figures; returns the paths written."""
    pick = {("relu", "lrelu2", "ck"): None, ("tanh", "htanh1", "ntk"): None}
    for res, _ in conv:
        key = (res.activation, res.family, res.target)
        if key in pick:
            pick[key] = res
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, (key, res) in zip(axes, pick.items()):
        row = res.rows[-1]
        ev = row.eigenvalues
        lo = min(float(np.min(v)) for v in ev.values())
        hi = np.percentile(np.concatenate(list(ev.values())), 99.5)
        bins = np.linspace(lo, hi, 70)
        for name, style in (("deq", dict(histtype="stepfilled", alpha=0.35, color="C0")),
                            ("explicit", dict(histtype="step", lw=1.6, color="C3")),
                            ("surrogate", dict(histtype="step", lw=1.2, ls="--",
                                               color="k"))):
            ax.hist(np.clip(ev[name], lo, hi), bins=bins, density=True,
                    label={"deq": "exact DEQ",
                           "explicit": f"exact designed explicit network ({key[1]})",
                           "surrogate": "RMT surrogate"}[name], **style)
        ax.set_title(f"{key[0]} DEQ, sa = 0.2, {key[2].upper()}, p = {row.p}, "
                     f"n = {row.n}\nexplicit-DEQ {row.explicit_vs_deq:.1e}, "
                     f"surrogate-DEQ {row.surrogate_vs_deq:.3f}", fontsize=9)
        ax.set_xlabel("eigenvalue (bulk; spikes beyond the 99.5% quantile clipped)")
        ax.legend(fontsize=8)
    spectra = HERE / "design_spectra.png"
    save_figure(fig, str(spectra), dpi=120)
    fig2 = Figure(figsize=(6.5, 4.5))
    ax = fig2.add_subplot(1, 1, 1)
    for i, (res, _) in enumerate(conv):
        ps = [r.p for r in res.rows]
        lab = (f"{res.activation}/{res.family}/{res.target}"
               + ("+refine" if res.refine else ""))
        ax.loglog(ps, [r.explicit_vs_deq for r in res.rows], "o-", color=f"C{i}",
                  label=f"explicit-DEQ {lab} ({res.slopes['explicit_vs_deq'].value:+.2f})")
        ax.loglog(ps, [r.surrogate_vs_deq for r in res.rows], "x--", color=f"C{i}",
                  alpha=0.6,
                  label=f"surrogate-DEQ ({res.slopes['surrogate_vs_deq'].value:+.2f})")
    ax.set_xlabel("p (n = 0.8 p)")
    ax.set_ylabel("relative operator-norm error (exact kernels)")
    ax.legend(fontsize=6, ncol=2)
    convergence_png = HERE / "design_convergence.png"
    save_figure(fig2, str(convergence_png), dpi=120)
    return [spectra, convergence_png]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ps", default="200,400,800,1600")
    ap.add_argument("--skip-sampled", action="store_true")
    args = ap.parse_args()
    run = start_run(seeds={"mixture": SEED, "sample": f"{SEED} + {SAMPLE_SEED_OFFSET} + p",
                           **{f"sampled_{k}": v for k, v in SAMPLED_SEEDS.items()}})
    ps = tuple(int(v) for v in args.ps.split(","))
    table = residual_table()
    matched = [r for r in table if r["matched"]]
    print(f"residual table: {len(matched)} of {len(table)} (activation, sa, family, target) "
          f"matched; max residual {max(r['residual'] for r in matched):.2e}; every "
          f"unmatched case names its failing equation: "
          f"{all(r['says_cannot'] for r in table if not r['matched'])}", flush=True)
    for fam in FAMILIES:
        for tgt in TARGETS:
            cell = [r for r in table if r["family"] == fam and r["target"] == tgt]
            ok = sorted({r["activation"] for r in cell if r["matched"]})
            bad = sorted({f"{r['activation']}:{r['failing_equation']}" for r in cell
                          if not r["matched"]})
            print(f"  {fam:10s} {tgt}: matched {ok or '-'}; cannot {bad or '-'}")
    conv = convergence(ps)
    samp = {} if args.skip_sampled else sampled()
    figures = plot(conv)
    # the spectra are in the figure, not the JSON
    records = []
    for res, wall in conv:
        d = res.to_dict()
        for r in d["rows"]:
            r.pop("eigenvalues", None)
        records.append({**d, "wall_s": wall})
    out = {"residual_table": table, "convergence": records, "sampled": samp,
           "wall_s": run.elapsed}
    path = HERE / "design_verification.json"
    path.write_text(json.dumps(run.record(out, outputs=[path, *figures]), indent=1,
                               default=float))
    print(f"wrote {', '.join(portable_path(p) for p in [path, *figures])} "
          f"({out['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
