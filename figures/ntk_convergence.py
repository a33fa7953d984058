"""Convergence of the NTK surrogate (docs/theory.md §5) to the exact infinite-width NTK.

Run:  OMP_NUM_THREADS=1 python figures/ntk_convergence.py [--quick] [--json OUT] [--png OUT]

For each activation and sa: p in {200, 400, 800, 1600}, n = 0.8 p, the two-class
rmt_deq.data.mixture.default_mixture; the relative operator-norm error
||Theta~ - Theta_exact|| / ||Theta_exact|| of every parameter group (v, A, B), of the total,
of v + A (the published G/(1 - sa Gdot)) and, for the total, with the published centred T°;
plain and refined (refine=True); and the fitted log-log slopes
(rmt_deq.experiments.surrogates).  Then the same for explicit networks with L = 1 and 2
layers (docs/theory.md §6).  Prints markdown tables.  The JSON (--json) carries the run's
manifest; a figure written without --json gets the manifest beside it (PNG.manifest.json).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from rmt_deq.experiments.harness import SAMPLE_SEED_OFFSET
from rmt_deq.experiments.manifest import start_run
from rmt_deq.experiments.surrogates import explicit_ntk_convergence, ntk_surrogate_convergence
from rmt_deq.plotting import plot_error_vs_dimension, save_figure

DEQ_ACTIVATIONS = ("relu", "tanh", "swish", "erf", "leaky_relu:0.1")
SAS = (0.2, 0.5)
EXPLICIT_CASES = (("relu",), ("tanh",), ("relu", "relu"), ("tanh", "swish"), ("erf", "relu"))
PS = (200, 400, 800, 1600)
SEED = 0


def _table(records: list, groups: tuple, name_of) -> str:
    lines = []
    ps = [r.p for r in records[0].rows]
    head = "| case | group | " + " | ".join(f"p={p}" for p in ps) + " | slope | refined: " + \
        " | ".join(f"p={p}" for p in ps) + " | slope |"
    lines += [head, "|" + "---|" * (2 * len(ps) + 4)]
    for rec in records:
        for g in groups:
            if g not in rec.rows[0].errors:
                continue
            plain = " | ".join(f"{r.errors[g]:.4f}" for r in rec.rows)
            if g in rec.rows[0].errors_refined:
                ref = " | ".join(f"{r.errors_refined[g]:.4f}" for r in rec.rows)
                rs = f"{rec.slopes_refined[g].value:.2f}"
            else:
                ref, rs = " | ".join("" for _ in ps), ""
            lines.append(f"| {name_of(rec)} | {g} | {plain} | {rec.slopes[g].value:.2f} | "
                         f"{ref} | {rs} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="p in {100, 200, 400}, fewer cases")
    ap.add_argument("--json", default=None, help="write every record to this JSON file")
    ap.add_argument("--png", default=None, help="log-log figure of the total errors")
    ap.add_argument("--workers", type=int, default=1, help="threads of the exact kernels")
    args = ap.parse_args()
    run = start_run(seeds={"mixture": SEED, "sample": f"{SEED} + {SAMPLE_SEED_OFFSET} + p"})
    ps = (100, 200, 400) if args.quick else PS
    acts = DEQ_ACTIVATIONS[:2] if args.quick else DEQ_ACTIVATIONS
    deq = [ntk_surrogate_convergence(a, sa, ps, seed=SEED, workers=args.workers)
           for a in acts for sa in SAS]
    explicit = [explicit_ntk_convergence(c, ps, seed=SEED, workers=args.workers)
                for c in (EXPLICIT_CASES[:2] if args.quick else EXPLICIT_CASES)]
    print("## DEQ: ||Theta - Theta~|| / ||Theta|| (operator norm)\n")
    print(_table(deq, ("v", "A", "B", "total", "v+A", "total_centred"),
                 lambda r: f"{r.activation}, sa={r.sa:g}"))
    print("\n## Explicit networks\n")
    print(_table(explicit, ("v", "W1", "W2", "total"), lambda r: " + ".join(r.activations)))
    print(f"\n[{run.elapsed:.0f} s]")
    if args.png:
        errs = {f"{r.activation} sa={r.sa:g}": np.array([x.errors["total"] for x in r.rows])
                for r in deq}
        ax = plot_error_vs_dimension(np.array(ps), errs)
        save_figure(ax.figure, args.png)
    outputs = [p for p in (args.json, args.png) if p]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(run.record({"deq": [r.to_dict() for r in deq],
                                  "explicit": [r.to_dict() for r in explicit]},
                                 outputs=outputs), fh, indent=1)
    elif args.png:
        with open(args.png + ".manifest.json", "w") as fh:
            json.dump(run.record({}, outputs=outputs), fh, indent=1)


if __name__ == "__main__":
    main()
