"""Acceptance numbers: a designed network, saved to JSON, used through ``rmt-deq kernel
--network`` (exact and sampled) against the in-memory design's exact kernels.

Run from the repository root:
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/network_roundtrip.py [--json]
(benchmarks/network_roundtrip.json is the --json output of one run.)

For each (family, DEQ activation) at sa = 0.2, tau0 = 1: ``rmt-deq design ... --out
net.json``, then on a two-class mixture sample (p = 48, n = 40; X and labels in F.npz)
``rmt-deq kernel --network net.json --data F.npz --kind ck|ntk --method exact`` and
``--method sampled --width 400 --realizations 32 --seed 9`` (confidence 0.95, the default,
and 0.999).  Reported: the relative operator-norm difference of the exact file from
``DesignedNetwork.ck(X)`` / ``ntk(X)`` of the design made in memory, and the operator-norm
distance of the sampled file from the exact kernel in units of its Monte-Carlo error bar
(the ``mc_error`` of ``--info``).  One layer is unbiased at every width; two layers carry a
finite-width bias of order ||K|| / m on top of the Monte-Carlo error.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile

import numpy as np

import rmt_deq as rd
from rmt_deq.cli import main
from rmt_deq.design.solve import design_for_deq
from rmt_deq.metrics import symmetric_operator_norm

CASES = (("htanh1", "tanh"), ("quadcubic2", "tanh"), ("htanhlin2", "tanh"),
         ("lrelu2", "relu"))
P, N, WIDTH, REALIZATIONS, SEED = 48, 40, 400, 32, 9


def _cli(args: list) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = main(args)
    if status != 0:
        raise SystemExit(f"rmt-deq {' '.join(args)} exited with {status}")


def run() -> list:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        mix = rd.default_mixture(P, 2, rng=3)
        data = mix.sample(N, rng=4)
        F = os.path.join(d, "F.npz")
        np.savez(F, X=data.X, labels=data.labels)
        for family, act in CASES:
            path = os.path.join(d, f"{family}.json")
            _cli(["design", "--activation", act, "--sa", "0.2", "--family", family,
                  "--out", path])
            net = design_for_deq(act, 0.2, 1.0, family=family)
            for kind in ("ck", "ntk"):
                ref = net.ck(data.X) if kind == "ck" else net.ntk(data.X)
                nref = symmetric_operator_norm(ref)
                out = os.path.join(d, "K.npy")
                _cli(["kernel", "--network", path, "--data", F, "--kind", kind,
                      "--method", "exact", "--out", out])
                row = {"family": family, "activation": act, "layers": net.L, "kind": kind,
                       "exact_rel_diff": symmetric_operator_norm(np.load(out) - ref) / nref}
                for conf in ("0.95", "0.999"):
                    info = os.path.join(d, "info.json")
                    _cli(["kernel", "--network", path, "--data", F, "--kind", kind,
                          "--method", "sampled", "--width", str(WIDTH), "--realizations",
                          str(REALIZATIONS), "--seed", str(SEED), "--confidence", conf,
                          "--info", info, "--out", out])
                    with open(info, encoding="utf-8") as fh:
                        bar = json.load(fh)["mc_error"]
                    dist = symmetric_operator_norm(np.load(out) - ref)
                    row[f"sampled_rel_dist_{conf}"] = dist / nref
                    row[f"error_bar_rel_{conf}"] = bar / nref
                    row[f"error_bars_off_{conf}"] = dist / bar
                rows.append(row)
    return rows


if __name__ == "__main__":
    rows = run()
    if "--json" in sys.argv:
        print(json.dumps({"p": P, "n": N, "width": WIDTH, "realizations": REALIZATIONS,
                          "seed": SEED, "rows": rows}, indent=1))
    else:
        print(f"p = {P}, n = {N}; sampled: m = {WIDTH}, R = {REALIZATIONS}, seed {SEED}")
        print(f"{'family':11s} L kind  exact rel diff  sampled rel dist  bar95 (rel)  "
              f"bars off (95%)  bars off (99.9%)")
        for r in rows:
            print(f"{r['family']:11s} {r['layers']} {r['kind']:4s}  "
                  f"{r['exact_rel_diff']:14.2e}  {r['sampled_rel_dist_0.95']:16.3e}  "
                  f"{r['error_bar_rel_0.95']:11.3e}  {r['error_bars_off_0.95']:14.2f}  "
                  f"{r['error_bars_off_0.999']:16.2f}")
