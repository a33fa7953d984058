"""Benchmark of the sampled CK in this process against local worker processes.

Case: tanh, sa = 0.3, data ``default_mixture(p, 2, rng=0).sample(n, rng=1)`` with
(p, n, m) = (300, 240, 1000), R = 16 realizations, the sampler's default precision and
estimator (recorded), seed 0 (``--p``, ``--n``,
``--width``, ``--R`` change it).  One :func:`rmt_deq.sampling.deq.sampled_ck` call in this
process, then the same call on ``make_executor(workers=k)`` (spawned processes with one BLAS
thread each): once with the pool's start-up inside the timing ("cold": what ``rmt-deq
kernel --workers k`` pays), then ``--repeats`` times alternating an in-process run and a
run on the started pool (the machine may be shared: alternating exposes both to the same
load; the in-process CPU seconds beside its wall seconds show how much it was starved).
Each result is compared bit for bit with the in-process one (matrix and error bar).  The
seconds of the realizations alone (up to the first "error bar" progress event) are
recorded beside the totals: the final error bar is computed in the calling process either
way.  Also recorded: the
bytes of one task as the process pool pickles it (the data X goes with every task), the
time to pickle it, and the BLAS thread counts of this process and of a worker (when
threadpoolctl is installed; it is not a dependency).

Usage::

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_parallel.py \
        [--workers 2] [--repeats 3] [--dask] [--out benchmarks/bench_parallel.json]

``--dask`` runs the workers as a local dask ``distributed`` cluster (the ``[dask]`` extra)
instead of a process pool; the cluster's start-up is outside the timings, the client's
inside the "cold" one.

Prints the numbers and writes them to the JSON (one entry per worker count).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import time
from concurrent.futures import Executor

import numpy as np

from rmt_deq.data.mixture import default_mixture
from rmt_deq.sampling._parallel import _run_task
from rmt_deq.sampling.deq import sampled_ck
from rmt_deq.sampling.executors import make_executor

HERE = os.path.dirname(os.path.abspath(__file__))


def blas_threads() -> list | None:
    """BLAS thread counts of this process (None without threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return [d["num_threads"] for d in threadpoolctl.threadpool_info()
            if d["user_api"] == "blas"]


class _Recorder(Executor):
    """Keeps the first task submitted (to measure what a process pool sends)."""

    def __init__(self) -> None:
        self.task = None

    def submit(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        if self.task is None:
            self.task = (fn, args)
        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def task_payload(X, kw) -> tuple[int, float]:
    """(bytes, seconds) of pickling one task of the case, as a process pool does."""
    rec = _Recorder()
    sampled_ck(X, "tanh", 0.3, **dict(kw, realizations=2), executor=rec)
    fn, args = rec.task
    assert fn is _run_task
    t = time.perf_counter()
    blob = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
    return len(blob), time.perf_counter() - t


def timed(X, kw, executor=None):
    """(total seconds, seconds of the realizations phase, Kernel)."""
    phase = []

    def progress(p):
        if p.phase == "error bar" and not phase:
            phase.append(p.elapsed)

    t = time.perf_counter()
    K = sampled_ck(X, "tanh", 0.3, executor=executor, progress=progress, **kw)
    return time.perf_counter() - t, phase[0], K


def same(a, b) -> bool:
    return bool(np.array_equal(a.ck, b.ck) and dict(a.error) == dict(b.error))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=300)
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--R", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dask", action="store_true",
                    help="run the workers as a local dask distributed cluster (--workers "
                         "processes, one thread each) instead of a process pool")
    ap.add_argument("--out", default=os.path.join(HERE, "bench_parallel.json"))
    a = ap.parse_args()
    X = default_mixture(a.p, 2, rng=0).sample(a.n, rng=1).X
    kw = dict(width=a.width, realizations=a.R, rng=0)
    nbytes, t_pickle = task_payload(X, kw)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    cluster = None
    if a.dask:
        import distributed

        cluster = distributed.LocalCluster(n_workers=a.workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
    with make_executor(workers=None if a.dask else a.workers,
                       scheduler=cluster.scheduler_address if a.dask else None) as ex:
        cold_s, _, first = timed(X, kw, ex)
        cold_s = time.perf_counter() - t0                   # with the pool's start-up
        pairs, identical = [], []
        for _ in range(a.repeats):                            # alternate, as the load drifts
            c0 = time.process_time()
            t_in, tp_in, ref = timed(X, kw)
            cpu_in = time.process_time() - c0
            t_pool, tp_pool, K = timed(X, kw, ex)
            identical += [same(ref, first), same(ref, K)]
            pairs.append({"in_process_s": t_in, "in_process_cpu_s": cpu_in,
                          "pool_s": t_pool, "ratio": t_in / t_pool,
                          "in_process_realizations_s": tp_in,
                          "pool_realizations_s": tp_pool,
                          "ratio_realizations": tp_in / tp_pool})
        worker_blas = ex.submit(blas_threads).result()
    if cluster is not None:
        cluster.close()
    ratios = sorted(q["ratio"] for q in pairs)
    rec = {
        "case": {"p": a.p, "n": a.n, "width": a.width, "R": a.R, "activation": "tanh",
                 "sa": 0.3, "dtype": ref.info.dtype,
                 "control_variate": ref.info.control_variate},
        "workers": a.workers, "executor": "dask LocalCluster" if a.dask else "process pool",
        "cpus": os.cpu_count(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "blas_threads_parent": blas_threads(), "blas_threads_worker": worker_blas,
        "pool_cold_s": cold_s, "pairs": pairs, "median_ratio": ratios[len(ratios) // 2],
        "cold_ratio": min(q["in_process_s"] for q in pairs) / cold_s,
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "bit_identical": all(identical), "task_bytes": nbytes, "task_pickle_s": t_pickle,
        "forward_iterations": [r.report.iterations for r in ref.info.forward],
        "cpu": platform.processor() or platform.machine(),
    }
    for k, v in rec.items():
        if k == "pairs":
            for q in v:
                print(" " * 16 + "pair: " + ", ".join(f"{a} {b:.3g}" for a, b in q.items()))
        else:
            print(f"{k:>20}: {v}")
    data = {}
    if os.path.exists(a.out):
        with open(a.out, encoding="utf-8") as f:
            data = json.load(f)
    data[f"workers={a.workers}" + (",dask" if a.dask else "")] = rec
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    main()
