"""Executors for the samplers' ``executor=`` option: local worker processes or a dask cluster.

:func:`make_executor` is a context manager giving what to pass as ``executor=`` to
:func:`rmt_deq.sampling.deq.sampled_ck` and the other samplers: None (in this process) for
one worker, a :class:`~concurrent.futures.ProcessPoolExecutor` for several, or the
``concurrent.futures`` interface of a dask ``distributed`` client for a scheduler address.
Every worker count gives the same result bit for bit; it is the in-process result when
this process's BLAS runs one thread, as the workers' do (the guarantee is stated in
:class:`~rmt_deq.sampling._montecarlo.MonteCarloOptions`).

BLAS threads: the worker processes are started by ``spawn`` (fresh interpreters) with the
variables :data:`BLAS_THREAD_VARIABLES` set to 1, so that each worker's BLAS runs one
thread and the workers do not oversubscribe the cores.  A BLAS reads these variables when
it is loaded, so they act only in processes that load it afterwards: the pool's workers
(the variables are set in this process while the context is open, restored on exit, so
the workers inherit them at start; :func:`one_blas_thread` sets them again in each
worker as its initializer), not this process, whose BLAS is already loaded and is left as
it is.  A program that starts other processes inside the context passes the variables on
to them too.  Without threadpoolctl (not a dependency) the thread count of a BLAS that is
already loaded cannot be changed: a pool made elsewhere that forks a process with numpy
loaded keeps the parent's BLAS threads, even with :func:`one_blas_thread` as initializer.
Dask workers are configured by their cluster (its nannies set these variables to 1 by
default).

This module imports no numerical library at import time, so that the initializer runs in
a worker before numpy is loaded there.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Iterator

from rmt_deq.errors import InvalidParameterError, MissingDependencyError

__all__ = ["make_executor", "one_blas_thread", "BLAS_THREAD_VARIABLES"]

#: the environment variables that fix the thread count of the common BLAS builds
#: (OpenBLAS, MKL, OpenMP-based ones, Apple Accelerate, numexpr)
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                         "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def one_blas_thread() -> None:
    """Set :data:`BLAS_THREAD_VARIABLES` to 1 in this process's environment.

    Meant as the ``initializer`` of a process pool: it acts on a BLAS loaded after it runs
    (a spawned worker that has not imported numpy yet), not on one already loaded.
    """
    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = "1"


@contextlib.contextmanager
def _blas_environment() -> Iterator[None]:
    """:data:`BLAS_THREAD_VARIABLES` set to 1 in this process while open, then restored."""
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    one_blas_thread()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def make_executor(workers: int | None = None,
                  scheduler: str | None = None) -> Iterator[Executor | None]:
    """The executor for ``workers`` local processes or a dask scheduler, closed on exit.

    Parameters
    ----------
    workers : int or None
        Local worker processes.  None or 1: no executor (yields None: the samplers run in
        this process, exactly as without ``executor=``); k > 1: a
        :class:`~concurrent.futures.ProcessPoolExecutor` of k spawned processes, each
        with one BLAS thread (see the module notes for when that holds).
    scheduler : str or None
        Address of a dask ``distributed`` scheduler (``"tcp://host:8786"``, or a
        ``LocalCluster``'s ``scheduler_address``): yields its client's
        ``get_executor()``; the client is closed on exit (the cluster is not).  Needs the
        optional dependency ``pip install 'rmt_deq[dask]'``; imported only here.

    Yields
    ------
    concurrent.futures.Executor or None
        Pass it as ``executor=`` to the samplers.  On exit the pool is shut down (its
        pending tasks cancelled when the block raised), or the client closed.

    Raises
    ------
    InvalidParameterError
        ``workers`` not a positive integer, both ``workers`` (> 1) and ``scheduler``, a
        ``scheduler`` that is not a non-empty string, or a scheduler that cannot be
        reached (the message gives the address and dask's reason).
    MissingDependencyError
        ``scheduler`` given and dask ``distributed`` not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from rmt_deq.sampling.deq import sampled_ck
    >>> X = np.random.default_rng(0).standard_normal((20, 8)) / np.sqrt(20)
    >>> with make_executor(workers=1) as ex:
    ...     K = sampled_ck(X, "relu", 0.3, width=100, realizations=4, rng=1, executor=ex)
    >>> ex is None
    True
    """
    from rmt_deq._validation import check_positive_int   # loads numpy: not at import

    k = None if workers is None else check_positive_int(workers, "workers")
    if scheduler is not None:
        if k is not None and k > 1:
            raise InvalidParameterError(
                f"give workers (local processes) or scheduler (a dask cluster), not both "
                f"(got workers={k}, scheduler={scheduler!r}); the cluster's workers run "
                f"the realizations")
        with _dask_executor(scheduler) as ex:
            yield ex
        return
    if k is None or k == 1:
        yield None
        return
    with _blas_environment():
        pool = ProcessPoolExecutor(max_workers=k, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=one_blas_thread)
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


@contextlib.contextmanager
def _dask_executor(scheduler: Any) -> Iterator[Executor]:
    """The ``get_executor()`` of a dask client connected to ``scheduler``; closed on exit."""
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise InvalidParameterError(
            f"scheduler must be the address of a dask scheduler (e.g. 'tcp://host:8786'), "
            f"got {scheduler!r}")
    try:
        from distributed import Client
    except ImportError:
        raise MissingDependencyError(
            "scheduler= runs the realizations on a dask cluster, which needs dask "
            "distributed: pip install 'rmt_deq[dask]' (or run without a scheduler)") from None
    try:
        client = Client(scheduler.strip(), timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidParameterError(
            f"cannot connect to the dask scheduler at {scheduler!r} ({exc}); check the "
            f"address and that the scheduler is running") from None
    try:
        yield client.get_executor()
    finally:
        client.close()
