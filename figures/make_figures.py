"""Regenerate the CK-surrogate convergence table and figures in figures/.

    python figures/make_figures.py            # everything
    python figures/make_figures.py --quick    # smaller p range

(or ``python -m figures.make_figures`` from the repository root).  Outputs:
figures/ck_surrogate_convergence.png and .json (error of the CK surrogate against the exact
Implicit-CK versus p, with and without the alpha3 s2 (1/p) 1 1^T block; docs/theory.md
§4.3), and figures/demo_spectrum.png (the demo's spectrum).  The JSON carries the run's
manifest (rmt_deq.experiments.manifest), which lists the figures too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from matplotlib.figure import Figure

from rmt_deq.experiments.harness import SAMPLE_SEED_OFFSET
from rmt_deq.experiments.manifest import start_run
from rmt_deq.experiments.surrogates import CKConvergence, ck_surrogate_convergence
from rmt_deq.jobs.demo import run_demo
from rmt_deq.plotting import plot_error_vs_dimension, save_figure

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0


def convergence_tables(ps, progress=None) -> list[CKConvergence]:
    out = []
    for K in (2, 3):
        for act in ("relu", "tanh", "swish", "erf"):
            for sa in (0.2, 0.5):
                out.append(ck_surrogate_convergence(act, sa, ps, K=K, seed=SEED,
                                                    progress=progress))
    return out


def markdown_table(results: list[CKConvergence]) -> str:
    ps = [r.p for r in results[0].rows]
    head = "| K | activation | sa | " + " | ".join(f"p={p}" for p in ps) + \
        " | slope | centred T°: " + " | ".join(f"p={p}" for p in ps) + " | slope |"
    sep = "|" + "---|" * (4 + 2 * len(ps) + 1)
    lines = [head, sep]
    for r in results:
        e = " | ".join(f"{x.error:.4f}" for x in r.rows)
        c = " | ".join(f"{x.error_centred:.4f}" for x in r.rows)
        lines.append(f"| {r.K} | {r.activation} | {r.sa:g} | {e} | {r.slope.value:.2f} | "
                     f"{c} | {r.slope_centred.value:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    run = start_run(seeds={"mixture": SEED, "sample": f"{SEED} + {SAMPLE_SEED_OFFSET} + p",
                           "demo": "run_demo defaults (seed 0)"})
    ps = (100, 200, 400) if args.quick else (200, 400, 800, 1600)
    res = convergence_tables(ps, progress=lambda s: print(s, file=sys.stderr))
    print(markdown_table(res))
    fig = Figure(figsize=(11, 4.2))
    for i, K in enumerate((2, 3)):
        ax = fig.add_subplot(1, 2, i + 1)
        sel = [r for r in res if r.K == K and r.sa == 0.2]
        errs = {f"{r.activation}": [x.error for x in r.rows] for r in sel}
        errs.update({f"{r.activation} (centred T°)": [x.error_centred for x in r.rows]
                     for r in sel if r.activation in ("relu", "swish")})
        plot_error_vs_dimension(ps, errs, ax=ax,
                                title=f"CK surrogate vs exact Implicit-CK, K = {K}, sa = 0.2")
    png = os.path.join(HERE, "ck_surrogate_convergence.png")
    save_figure(fig, png)
    demo = os.path.join(HERE, "demo_spectrum.png")
    run_demo(out=demo)
    path = os.path.join(HERE, "ck_surrogate_convergence.json")
    with open(path, "w") as f:
        json.dump(run.record({"results": [r.to_dict() for r in res]},
                             outputs=[path, png, demo]), f, indent=1)


if __name__ == "__main__":
    main()
