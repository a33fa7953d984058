"""Sampled (finite-width, Monte-Carlo) CK and empirical NTK of explicit networks.

The network and its weights are described in :mod:`rmt_deq.networks.explicit`; the
Monte-Carlo engine (batches, error bar, seeds) is :mod:`rmt_deq.sampling._montecarlo`,
shared with the DEQ sampler (docs/theory.md §8).  Results are
:class:`~rmt_deq.kernels.result.Kernel` with ``route="sampled"``: the averages, their
operator-norm error bars in ``error`` and an :class:`ExplicitSamplingInfo` in ``info``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from rmt_deq._validation import (as_data_matrix, check_data_range, check_memory,
                                 check_positive_int, memory_budget)
from rmt_deq._xp import NUMPY, Backend, host_data, resolve_backend
from rmt_deq.data.conventions import data_scale
from rmt_deq.kernels.result import Kernel
from rmt_deq.networks.explicit import (ExplicitNetwork, ExplicitScales, as_explicit_network,
                                       elementwise_layers, explicit_scales, forward_pass,
                                       sample_explicit_weights)
from rmt_deq.errors import RmtDeqError
from rmt_deq.sampling._montecarlo import (DEFAULT_DRAWS, MonteCarloOptions, _Draw, _kernel_result,
                                          _memory_words, _monte_carlo, _ntk_result, _seeds)
from rmt_deq.sampling._parallel import check_sendable
from rmt_deq.networks.weights import check_dtype, check_family

__all__ = ["ExplicitSamplingInfo", "sampled_explicit_ck", "sampled_explicit_ntk"]


@dataclass(frozen=True)
class ExplicitSamplingInfo:
    """Diagnostics of a sampled explicit-network kernel.

    Attributes
    ----------
    width, realizations, requested : int
    family, dtype : str
    network : ExplicitNetwork
    scales : ExplicitScales
    confidence : float
    batches, draws : int
    stopped_early : bool
    target_error : float or None
    error_history : tuple of (int, float)
    elapsed : float
    gemm_flops : float
    tau0_source : str
        Where tau0 came from (:func:`rmt_deq.data.conventions.data_scale`).
    backend : str
        The array backend the realizations ran on (:mod:`rmt_deq._xp`).
    """

    width: int
    realizations: int
    requested: int
    family: str
    dtype: str
    network: ExplicitNetwork
    scales: ExplicitScales
    confidence: float
    batches: int
    draws: int
    stopped_early: bool
    target_error: float | None
    error_history: tuple
    elapsed: float
    gemm_flops: float
    tau0_source: str = ""
    backend: str = "numpy"


class _ExplicitRealization:
    """Realization r of the explicit-network sampler (``realize(r)``): weights from child r
    of the seed, one forward (and backward) pass, its Gram matrices as a
    :class:`~rmt_deq.sampling._montecarlo._Draw`.

    Read-only once built, so threads may share it; it pickles (for process pools and
    clusters) with the network sent as its JSON form when it has one (rebuilt by
    :meth:`~rmt_deq.networks.explicit.ExplicitNetwork.from_dict`), else as it is.
    """

    def __init__(self, *, net: ExplicitNetwork, m: int, family: str, dtype: np.dtype,
                 Xd: np.ndarray, XtX: np.ndarray, scales: ExplicitScales, ntk: bool,
                 names: tuple[str, ...], children: Any, backend: Backend = NUMPY) -> None:
        self.net, self.m, self.family, self.dtype = net, m, family, dtype
        self.Xd, self.XtX, self.scales, self.ntk = Xd, XtX, scales, ntk
        self.names, self.children, self.backend = names, children, backend
        self.elems = elementwise_layers(net, dtype, backend)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["elems"]                           # hold lambdas: rebuilt on arrival
        try:
            record = self.net.to_dict()
            if ExplicitNetwork.from_dict(record) == self.net:
                state["net"] = record
        except RmtDeqError:                          # layers given as code
            pass
        return state

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state["net"], ExplicitNetwork):
            state["net"] = ExplicitNetwork.from_dict(state["net"])
        self.__dict__.update(state)
        self.elems = elementwise_layers(self.net, self.dtype, self.backend)

    def __call__(self, r: int) -> _Draw:
        m, ntk, names, bk, dt = self.m, self.ntk, self.names, self.backend, self.dtype
        p, n = self.Xd.shape
        L = self.net.depth
        # drawn on the host from child r of the seed (the same weights on every backend)
        w = sample_explicit_weights(self.net, m, p, family=self.family,
                                    rng=self.children[r], dtype=dt)
        H, delta = forward_pass(bk.asarray(self.Xd, dt), [bk.asarray(W, dt) for W in w.W],
                                bk.asarray(w.v, dt), self.scales, self.elems, ntk)
        flops = 2.0 * m * n * (p + (L - 1) * m) * (2 if ntk else 1) + 2.0 * m * n * n
        K = bk.to_numpy(H[-1].T @ H[-1])
        parts = {"v": K}
        if ntk:
            for l in range(1, L + 1):
                name = f"W{l}"
                if name not in names:
                    continue
                prev = self.XtX if l == 1 else bk.to_numpy(H[l - 2].T @ H[l - 2])
                dd = bk.to_numpy(delta[l - 1].T @ delta[l - 1])
                parts[name] = dd * prev
                flops += 2.0 * m * n * n * (2 if l > 1 else 1)
        return _Draw({k: parts[k] for k in names}, flops=flops)


def _sample(X: Any, net: ExplicitNetwork, ntk: bool, names: tuple[str, ...],
            early: tuple[str, ...], width: Any, family: str, rng: Any, dtype: Any,
            tau0: Any, max_memory: Any, mc: MonteCarloOptions, labels: Any = None,
            backend: Any = None) -> tuple:
    """Run the Monte-Carlo loop; ``names`` are the accumulated groups ("v" first)."""
    t_start = time.perf_counter()
    bk = resolve_backend(backend, X)
    Xa = as_data_matrix(host_data(X))
    m = check_positive_int(width, "width")
    family = check_family(family)
    dt = check_dtype(dtype)
    check_data_range(Xa, dt)
    p, n = Xa.shape
    L = net.depth
    budget = memory_budget(max_memory)
    isz = dt.itemsize
    fixed = isz * (m * p + (L - 1) * m * m + (2 * L + 1) * m * n + p * n)
    fixed += 8 * n * n * (len(names) * (mc.batches + 1) + L + 2)
    fixed += mc.pending_bytes(n, len(names))
    check_memory(fixed, budget, *_memory_words(mc))
    scale = data_scale(Xa, labels, tau0=tau0)
    scales = explicit_scales(net, scale.tau0)
    children, seed = _seeds(rng, mc.realizations)
    realize = _ExplicitRealization(net=net, m=m, family=family, dtype=dt, Xd=Xa.astype(dt),
                                   XtX=Xa.T @ Xa, scales=scales, ntk=ntk, names=names,
                                   children=children, backend=bk)
    check_sendable(realize, mc.executor)
    acc, history, stopped, records = _monte_carlo(realize, names, early, n, mc, seed,
                                                  t_start)
    flops = sum(r.flops for r in records)

    def info() -> ExplicitSamplingInfo:
        return ExplicitSamplingInfo(
            width=m, realizations=acc.R, requested=mc.realizations, family=family, dtype=dt.name,
            network=net, scales=scales, confidence=mc.confidence, batches=mc.batches,
            draws=mc.draws, stopped_early=stopped, target_error=mc.target_error,
            error_history=tuple(history), elapsed=time.perf_counter() - t_start,
            gemm_flops=flops, tau0_source=scale.source, backend=bk.name)

    return acc, info, seed, scale


def sampled_explicit_ck(
    X: Any,
    network: Any,
    *,
    width: int,
    realizations: int = 1,
    family: str = "gaussian",
    rng: Any = None,
    dtype: Any = "float64",
    tau0: float | None = None,
    labels: Any = None,
    max_memory: float | None = None,
    batches: int = 16,
    confidence: float = 0.95,
    draws: int = DEFAULT_DRAWS,
    target_error: float | None = None,
    check_every: int | None = None,
    progress: Any = None,
    executor: Any = None,
    task_size: int | None = None,
    max_pending: int | None = None,
    backend: Any = None,
) -> Kernel:
    """Monte-Carlo average of the explicit network's CK Gram matrix H_L^T H_L.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    network : ExplicitNetwork, or sequence of activations
    width : int
        m, the width of every hidden layer.
    (others)
        As in :func:`rmt_deq.sampling.deq.sampled_ck` (seeding, dtype, error bar, early
        stopping, progress, and ``executor``, ``task_size``, ``max_pending``: where the
        realizations run, with the same result bit for bit for any number of workers
        at equal BLAS thread counts; a process pool needs layers with a JSON form, see
        :class:`~rmt_deq.sampling._montecarlo.MonteCarloOptions`).  ``tau0`` is the
        data scale at which sigma_1 is centred (default
        :func:`rmt_deq.data.conventions.data_scale`: the plug-in estimate from ``labels``,
        else all samples as one class; recorded in ``info.tau0_source``).  ``backend``
        is the array backend of the realizations ("numpy", "array_api_strict", "torch",
        "cupy" or an array API namespace; default: the data's own, numpy for numpy data;
        :mod:`rmt_deq._xp`).

    Returns
    -------
    Kernel
        ``route="sampled"``, ``network="explicit"``; ``info`` is an
        :class:`ExplicitSamplingInfo`.
    """
    mc = MonteCarloOptions(realizations, batches, confidence, draws, target_error,
                          check_every, progress, executor, task_size, max_pending)
    acc, info, seed, scale = _sample(X, as_explicit_network(network), False, ("v",), ("v",), width,
                                     family, rng, dtype, tau0, max_memory, mc, labels,
                                     backend)
    acc_ck = _RenamedAccumulator(acc, {"ck": "v"})
    return _kernel_result(acc_ck, mc, seed, info, network="explicit", tau0=scale.tau0,
                          tau0_source=scale.source)


def sampled_explicit_ntk(
    X: Any,
    network: Any,
    *,
    width: int,
    realizations: int = 1,
    groups: Iterable[str] | None = None,
    family: str = "gaussian",
    rng: Any = None,
    dtype: Any = "float64",
    tau0: float | None = None,
    labels: Any = None,
    max_memory: float | None = None,
    batches: int = 16,
    confidence: float = 0.95,
    draws: int = DEFAULT_DRAWS,
    target_error: float | None = None,
    check_every: int | None = None,
    progress: Any = None,
    executor: Any = None,
    task_size: int | None = None,
    max_pending: int | None = None,
    backend: Any = None,
) -> Kernel:
    """Monte-Carlo average of the explicit network's empirical NTK, one group per layer.

    Parameters
    ----------
    groups : iterable of {"v", "W1", ..., "WL"}, optional
        Groups summed into ``ntk`` (default: all).
    (others)
        As in :func:`sampled_explicit_ck`.

    Returns
    -------
    Kernel
        ``groups`` keyed "v", "W1", ...; ``ck`` is the CK (group v); ``info`` an
        :class:`ExplicitSamplingInfo`.
    """
    mc = MonteCarloOptions(realizations, batches, confidence, draws, target_error,
                          check_every, progress, executor, task_size, max_pending)
    net = as_explicit_network(network)
    sel = net.check_groups(groups)
    names = sel if "v" in sel else ("v",) + sel
    acc, info, seed, scale = _sample(X, net, True, names, sel, width, family, rng, dtype,
                                     tau0, max_memory, mc, labels, backend)
    key = {g: g for g in names}
    key["ck"] = "v"
    return _ntk_result(_RenamedAccumulator(acc, {"ck": "v"}), mc, seed, key, sel, info,
                       network="explicit", tau0=scale.tau0, tau0_source=scale.source)


class _RenamedAccumulator:
    """View of an accumulator under extra names (``alias -> stored name``)."""

    def __init__(self, acc: Any, alias: Mapping[str, str]) -> None:
        self._acc, self._alias = acc, dict(alias)

    @property
    def R(self) -> int:
        return self._acc.R

    @property
    def t_start(self) -> float:
        return self._acc.t_start

    def _names(self, names: Iterable[str]) -> tuple[str, ...]:
        return tuple(self._alias.get(k, k) for k in names)

    def mean(self, names: Iterable[str]) -> np.ndarray:
        return self._acc.mean(self._names(names))

    def error(self, names: Iterable[str], *args: Any, **kw: Any) -> tuple[float, float]:
        return self._acc.error(self._names(names), *args, **kw)
