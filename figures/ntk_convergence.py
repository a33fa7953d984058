"""Convergence of the NTK surrogate (theory.md section 5) to the exact infinite-width NTK.

Run:  OMP_NUM_THREADS=1 python figures/ntk_convergence.py [--quick] [--json OUT] [--png OUT]

For each activation and sa: p in {200, 400, 800, 1600}, n = 0.8 p, the two-class
rmt_deq.data.mixture.default_mixture; the relative operator-norm error
||Theta_exact - Theta~|| / ||Theta_exact|| of every parameter group (v, A, B), of the total,
of v + A (the published G/(1 - sa Gdot)) and, for the total, with the published centred T°;
plain and refined (refine=True); and the fitted log-log slopes.  Then the same for explicit
networks with L = 1 and 2 layers.  Prints markdown tables (about 2 minutes on one core).
"""
from __future__ import annotations

import argparse
import json
import time

from rmt_deq.experiments import explicit_ntk_convergence, ntk_surrogate_convergence

DEQ_ACTIVATIONS = ("relu", "tanh", "swish", "erf", "leaky_relu:0.1")
SAS = (0.2, 0.5)
ENN_CASES = (("relu",), ("tanh",), ("relu", "relu"), ("tanh", "swish"), ("erf", "relu"))
PS = (200, 400, 800, 1600)


def _table(records: list, groups: tuple, name_of) -> str:
    lines = []
    ps = [r["p"] for r in records[0]["rows"]]
    head = "| case | group | " + " | ".join(f"p={p}" for p in ps) + " | slope | refined: " + \
        " | ".join(f"p={p}" for p in ps) + " | slope |"
    lines += [head, "|" + "---|" * (2 * len(ps) + 4)]
    for rec in records:
        for g in groups:
            if g not in rec["rows"][0]["errors"]:
                continue
            plain = " | ".join(f"{r['errors'][g]:.4f}" for r in rec["rows"])
            if g in rec["rows"][0]["errors_refined"]:
                ref = " | ".join(f"{r['errors_refined'][g]:.4f}" for r in rec["rows"])
                rs = f"{rec['slopes_refined'][g]:.2f}"
            else:
                ref, rs = " | ".join("" for _ in ps), ""
            lines.append(f"| {name_of(rec)} | {g} | {plain} | {rec['slopes'][g]:.2f} | "
                         f"{ref} | {rs} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="p in {100, 200, 400}, fewer cases")
    ap.add_argument("--json", default=None, help="write every record to this JSON file")
    ap.add_argument("--png", default=None, help="log-log figure of the total errors")
    ap.add_argument("--workers", type=int, default=1, help="threads of the exact kernels")
    args = ap.parse_args()
    ps = (100, 200, 400) if args.quick else PS
    acts = DEQ_ACTIVATIONS[:2] if args.quick else DEQ_ACTIVATIONS
    t0 = time.time()
    deq = [ntk_surrogate_convergence(a, sa, ps, workers=args.workers)
           for a in acts for sa in SAS]
    enn = [explicit_ntk_convergence(c, ps, workers=args.workers)
           for c in (ENN_CASES[:2] if args.quick else ENN_CASES)]
    print("## DEQ: ||Theta - Theta~|| / ||Theta|| (operator norm)\n")
    print(_table(deq, ("v", "A", "B", "total", "v+A", "total_centred"),
                 lambda r: f"{r['activation']}, sa={r['sa']:g}"))
    print("\n## Explicit networks\n")
    print(_table(enn, ("v", "W1", "W2", "total"), lambda r: " + ".join(r["activations"])))
    print(f"\n[{time.time() - t0:.0f} s]")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"deq": deq, "enn": enn}, fh, indent=1)
    if args.png:
        import numpy as np

        from rmt_deq.plotting import plot_error_vs_dimension, save_figure
        errs = {}
        for r in deq:
            errs[f"{r['activation']} sa={r['sa']:g}"] = np.array(
                [x["errors"]["total"] for x in r["rows"]])
        ax = plot_error_vs_dimension(np.array(ps), errs)
        save_figure(ax.figure, args.png)


if __name__ == "__main__":
    main()
