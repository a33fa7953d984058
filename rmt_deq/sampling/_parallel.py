"""The realizations of a Monte-Carlo average on a ``concurrent.futures`` executor, in order.

Realizations r = 0..R-1 are cut into tasks of ``task_size`` consecutive realizations (a
fixed size, whatever the number of workers).  Each task returns the contribution of every
realization it computed (:func:`_run_task`, a module-level function, so that process pools
can send it); the calling process waits for the tasks in task order and hands the
realizations on in order r = 0, 1, ... (:func:`ordered_realizations`).  The caller then adds
them to its sums exactly as it adds realizations computed in-process, so the floating-point
sums are formed by the same operations in the same order whatever the executor, the number
of its workers, the task size or the order in which the tasks complete.

At most ``max_pending`` tasks are submitted ahead of the one being read.  Closing the
generator (an early stop, an error, KeyboardInterrupt) cancels the submitted tasks that
have not started; those already running finish in their workers and are discarded.
"""
from __future__ import annotations

import collections
import pickle
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable, Iterator

from rmt_deq.errors import InvalidParameterError

__all__ = ["ordered_realizations", "check_sendable"]


def _run_task(realize: Callable[[int], Any], start: int, stop: int) -> list:
    """Realizations start..stop-1 of ``realize``, in order (the unit of work of a worker)."""
    return [realize(r) for r in range(start, stop)]


def check_sendable(realize: Any, executor: Executor | None) -> None:
    """Refuse, before anything runs, a realization that a process pool cannot send.

    Only :class:`~concurrent.futures.ProcessPoolExecutor` is checked (it pickles every task
    with the standard pickle); other executors (threads, dask) run what they can and
    report their own errors.

    Raises
    ------
    InvalidParameterError
        ``realize`` cannot be pickled (typically an activation given as Python code: a
        lambda or a function defined inside another one).
    """
    if not isinstance(executor, ProcessPoolExecutor):
        return
    try:
        pickle.dumps(realize, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidParameterError(
            f"the realizations cannot be sent to the worker processes of a process pool "
            f"({exc}); use a built-in activation name (or an explicit network with a JSON "
            f"form), or a concurrent.futures.ThreadPoolExecutor, which sends nothing") from None


def _submit(executor: Executor, realize: Any, start: int, stop: int) -> Future:
    try:
        return executor.submit(_run_task, realize, start, stop)
    except RuntimeError as exc:      # shut down, or a broken pool (BrokenExecutor)
        raise InvalidParameterError(
            f"the executor refused a task ({exc}); pass an executor that is open and "
            f"working (not shut down), or executor=None to run in this process") from None


def ordered_realizations(realize: Callable[[int], Any], R: int, executor: Executor | None,
                         task_size: int, max_pending: int) -> Iterator[Any]:
    """``realize(0)``, ``realize(1)``, ... ``realize(R - 1)``, in this order.

    Without an executor each realization is computed when it is asked for (nothing runs
    ahead).  With one, tasks of ``task_size`` realizations are submitted, at most
    ``max_pending`` at a time, and read in order.  An exception of a task is raised when
    its turn comes (so the first failing realization in order is the one reported, and a
    task after an early stop is never read).  Close the generator to cancel what is still
    pending.
    """
    if executor is None:
        for r in range(R):
            yield realize(r)
        return
    starts = range(0, R, task_size)
    pending: collections.deque[Future] = collections.deque()
    submitted = 0
    try:
        while True:
            while submitted < len(starts) and len(pending) < max_pending:
                s = starts[submitted]
                pending.append(_submit(executor, realize, s, min(s + task_size, R)))
                submitted += 1
            if not pending:
                return
            results = pending[0].result()        # the earliest task: order is kept
            pending.popleft()
            yield from results
    finally:
        for future in pending:
            future.cancel()
