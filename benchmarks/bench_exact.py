"""Time and peak memory of the exact Implicit-CK solved in tiles (docs/exact_kernels.md).

Each size runs in its own subprocess (so that the peak resident set, ru_maxrss, is that
size's alone): ReLU (closed forms), sa = 0.3, p = 500 fixed, X Gaussian with unit-norm
columns on average, ``max_memory`` set to the tiled estimate for tiles of ``--tile``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_exact.py            # n = 2000, 8000
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_exact.py --sizes 2000 8000 20000

writes benchmarks/bench_exact.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))      # this checkout's rmt_deq
P = 500
SA = 0.3


def child(n: int, tile: int, whole: bool) -> dict:
    import numpy as np

    from rmt_deq.kernels._tiles import tiled_memory
    from rmt_deq.kernels.exact import exact_ck

    X = np.random.default_rng(0).standard_normal((P, n)) / np.sqrt(P)
    budget = 2.0 ** 40 if whole else tiled_memory(n, P, 1, tile)
    t0 = time.perf_counter()
    K = exact_ck(X, "relu", SA, max_memory=budget)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # KiB on Linux
    return {"mode": "whole matrix" if whole else "tiles", "n": n, "p": P,
            "activation": "relu", "sa": SA, "tile": K.info.tile,
            "tiles": K.info.tiles, "seconds": seconds, "peak_rss_bytes": peak,
            "output_bytes": K.ck.nbytes, "max_memory": budget,
            "iterations": K.report.iterations, "residual": K.report.residual}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--whole", type=int, nargs="*", default=[2000],
                    help="sizes also solved as a whole matrix, for comparison")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-whole", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tile, args.child_whole)))
        return
    rows = []
    runs = [(n, True) for n in args.whole] + [(n, False) for n in args.sizes]
    for n, whole in runs:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--tile",
                              str(args.tile)] + (["--child-whole"] if whole else []),
                             check=True, capture_output=True, text=True,
                             cwd=HERE.parent)
        rows.append(json.loads(out.stdout))
        print(json.dumps(rows[-1]))
    record = {"command": "OPENBLAS_NUM_THREADS=1 python benchmarks/bench_exact.py --sizes "
                         + " ".join(map(str, args.sizes)) + f" --tile {args.tile} --whole "
                         + " ".join(map(str, args.whole)),
              "machine": f"{platform.processor() or platform.machine()}, "
                         f"{os.cpu_count()} CPUs", "results": rows}
    (HERE / "bench_exact.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
