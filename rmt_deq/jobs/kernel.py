"""The kernel jobs: the CK or NTK of a DEQ, or of a designed network, on a data file
(``rmt-deq kernel``).

:func:`kernel_from_data` computes a DEQ's kernel exactly (docs/theory.md §2.2, §2.3), by the
surrogates (§4, §5) or by sampling finite-width DEQs (§8); :func:`sampled_kernel_from_data`
is the sampled route with its error bar.  Both validate their inputs in one place
(:func:`_resolve_data`) and fix the data scale the same way, so their kernels are directly
comparable.  :func:`network_kernel_from_data` is the kernel of a saved designed explicit
network (docs/theory.md §6), exact by the layer recursion or sampled at finite width, on
the same data files.  Nothing here prints.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from rmt_deq._validation import (as_data_matrix, as_labels, check_choice, check_groups,
                                 check_options, check_variances)
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.data.conventions import DataScale, data_scale
from rmt_deq.design.network import DesignedNetwork, load_designed_network
from rmt_deq.errors import InvalidParameterError
from rmt_deq.experiments.observed import mixture_from_arrays
from rmt_deq.jobs.options import add_sampled_options, groups_help, real
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate, plugin_ck_surrogate
from rmt_deq.kernels.exact import NTK_GROUPS, exact_ck, exact_ntk
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate, plugin_ntk_surrogate
from rmt_deq.kernels.result import Kernel
from rmt_deq.sampling.deq import sampled_kernel
from rmt_deq.sampling.explicit import sampled_explicit_ck, sampled_explicit_ntk

__all__ = ["kernel_from_data", "sampled_kernel_from_data", "network_kernel_from_data",
           "NetworkKernel", "KINDS", "METHODS", "NETWORK_METHODS", "add_kernel_parser"]

#: the kernels a job computes: the CK G or the NTK
KINDS = ("ck", "ntk")
#: how :func:`kernel_from_data` computes them
METHODS = ("exact", "surrogate", "sampled")
#: how :func:`network_kernel_from_data` computes a designed network's kernel
NETWORK_METHODS = ("exact", "sampled")
#: options of the explicit-network sampler that a designed network's sampled kernel passes
#: on (:func:`rmt_deq.sampling.explicit.sampled_explicit_ck`)
_NETWORK_SAMPLING = ("width", "realizations", "family", "rng", "dtype", "max_memory",
                     "batches", "confidence", "draws", "target_error", "check_every",
                     "progress", "executor", "task_size", "max_pending", "backend")


def _check_kind_groups(kind: str, groups: Any) -> tuple[str, ...] | None:
    """Validate kind and groups together: groups apply to the NTK only (never ignored)."""
    check_choice(kind, "kind", KINDS)
    if kind == "ck":
        if groups is not None:
            raise InvalidParameterError(
                "groups select NTK parameter groups and apply to kind='ntk' only; drop "
                "groups for the CK")
        return None
    return check_groups(NTK_GROUPS if groups is None else groups, NTK_GROUPS)


@dataclass(frozen=True)
class _Columns:
    """The validated data of a kernel job and its class information."""

    X: np.ndarray
    codes: np.ndarray | None
    means: Any
    covs: Any


@dataclass(frozen=True)
class _DataInputs(_Columns):
    """The validated inputs the DEQ kernel jobs share."""

    act: Activation
    sa: float
    sb: float


def _resolve_columns(Xa: np.ndarray, labels: Any, means: Any, covs: Any) -> _Columns:
    """Validate the class information of validated data: labels of the n columns, means
    and covs both or neither and only with labels."""
    if (means is None) != (covs is None):
        raise InvalidParameterError("give both means and covs (exact statistics) or neither")
    codes = None
    if labels is not None:
        codes, _ = as_labels(labels, Xa.shape[1], p=Xa.shape[0])
    if means is not None and codes is None:
        raise InvalidParameterError("means/covs need labels to know each column's class")
    return _Columns(X=Xa, codes=codes, means=means, covs=covs)


def _resolve_data(X: Any, activation: ActivationLike, sa: Any, sb: Any, labels: Any,
                  means: Any, covs: Any) -> _DataInputs:
    """Validate the data, the DEQ and the class information of a kernel job: X a finite
    p x n matrix, the activation and variances, labels of the n columns, means and covs
    both or neither and only with labels."""
    Xa = as_data_matrix(X)
    act = get_activation(activation)
    sa_f, sb_f = check_variances(sa, sb)
    c = _resolve_columns(Xa, labels, means, covs)
    return _DataInputs(X=c.X, codes=c.codes, means=c.means, covs=c.covs, act=act, sa=sa_f,
                       sb=sb_f)


# adapters: the only places that read the kernels' result fields
def _ck_matrix(kernel: Any) -> np.ndarray:
    """The CK G of a CK result (exact or surrogate)."""
    return np.asarray(kernel.ck)


def _ntk_matrix(kernel: Any) -> np.ndarray:
    """The NTK of an NTK result summed over its selected groups."""
    return np.asarray(kernel.ntk)


def _sampled_matrix(kernel: Any) -> np.ndarray:
    """The averaged matrix of a sampled CK or NTK."""
    return np.asarray(kernel.matrix)


def kernel_from_data(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    labels: Any = None,
    means: Any = None,
    covs: Any = None,
    tau0: float | None = None,
    kind: str = "ck",
    method: str = "exact",
    groups: Sequence[str] | None = None,
    sampling: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """The CK (G) or NTK of a DEQ on data X: exact, by the RMT surrogate, or sampled.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    activation : name, Activation or callable
    sa, sb : float
        Weight variances (sb defaults to 1 - sa).
    labels : array_like, shape (n,), optional
        Class labels; required by ``method="surrogate"`` and with ``means``/``covs``.
    means, covs : array_like, optional
        Exact class means (K x p, rows in sorted label order) and covariances (K x p
        diagonals or K x p x p): the mixture statistics and tau0 are then exact instead of
        plug-in estimates.
    tau0 : float, optional
        Data scale sqrt(tr C°/p) for the four equations; default from the mixture
        statistics (exact or plug-in) when labels are given, else the fallback of
        :func:`rmt_deq.data.conventions.data_scale` (all samples as one class).  Not with
        ``method="surrogate"``, whose data scale is the mixture statistics' by
        construction.
    kind : {"ck", "ntk"}
        ``"ck"`` returns G (the CK of z = phi_c(u)/sqrt(m)); ``"ntk"`` the NTK summed over
        ``groups``.
    method : {"exact", "surrogate", "sampled"}
        ``"surrogate"``: the CK surrogate of docs/theory.md §4
        (:func:`~rmt_deq.kernels.ck_surrogate.mixture_ck_surrogate` /
        :func:`~rmt_deq.kernels.ck_surrogate.plugin_ck_surrogate`) or the NTK surrogate of
        §5 (:func:`~rmt_deq.kernels.ntk_surrogate.mixture_ntk_surrogate` /
        :func:`~rmt_deq.kernels.ntk_surrogate.plugin_ntk_surrogate`), with the exact
        statistics when ``means``/``covs`` are given, else plug-in ones.  ``"sampled"``:
        Monte-Carlo average over finite-width DEQs (:func:`sampled_kernel_from_data`; its
        options go in ``sampling``).
    groups : sequence of {"v", "A", "B"}, optional
        NTK parameter groups (default all); kind="ntk" only.
    sampling : mapping, optional
        Options of :func:`rmt_deq.sampling.deq.sampled_kernel` for ``method="sampled"``
        (``width`` is required; realizations, family, rng, dtype, ...).

    Returns
    -------
    ndarray, shape (n, n)

    Raises
    ------
    InvalidParameterError
        groups with kind="ck", tau0 with method="surrogate", sampling options without
        method="sampled", means without covs (or without labels), bad variances.
    UnknownOptionError
        Unknown kind, method or NTK group.
    """
    check_choice(method, "method", METHODS)
    sel = _check_kind_groups(kind, groups)
    if method != "sampled" and sampling is not None:
        raise InvalidParameterError("sampling options are only used by method='sampled'")
    d = _resolve_data(X, activation, sa, sb, labels, means, covs)
    if method == "sampled":
        return _sampled_matrix(_sampled(d, kind, sel, tau0, dict(sampling or {})))
    if method == "surrogate":
        if tau0 is not None:
            raise InvalidParameterError(
                "tau0 does not apply to method='surrogate': the surrogate's data scale is "
                "the mixture statistics' tau0 (exact with means/covs, else plug-in); drop "
                "tau0, or use method='exact'")
        if d.codes is None:
            raise InvalidParameterError("the surrogate needs class labels (labels=...)")
        return _surrogate_matrix(d, kind, sel)
    # exact kernels: fix tau (and the centring) from the best available data scale
    scale = _data_scale(d, tau0)
    if kind == "ck":
        return _ck_matrix(exact_ck(d.X, d.act, d.sa, d.sb, tau0=scale))
    return _ntk_matrix(exact_ntk(d.X, d.act, d.sa, d.sb, groups=sel, tau0=scale))


def _surrogate_matrix(d: _DataInputs, kind: str, sel: Any) -> np.ndarray:
    """The CK surrogate G~ or the NTK surrogate (summed over ``sel``), exact statistics
    with means/covs, else plug-in."""
    if d.means is not None:
        mixture, sample = mixture_from_arrays(d.X, d.codes, d.means, d.covs)
        if kind == "ck":
            return _ck_matrix(mixture_ck_surrogate(mixture, sample, d.act, d.sa, d.sb))
        return _ntk_matrix(mixture_ntk_surrogate(mixture, sample, d.act, d.sa, d.sb,
                                                 groups=sel))
    if kind == "ck":
        return _ck_matrix(plugin_ck_surrogate(d.X, d.codes, d.act, d.sa, d.sb))
    return _ntk_matrix(plugin_ntk_surrogate(d.X, d.codes, d.act, d.sa, d.sb, groups=sel))


def _data_scale(d: _Columns, tau0: Any) -> DataScale:
    """The data scale of :func:`rmt_deq.data.conventions.data_scale` with its source: tau0
    if given, else the exact mixture statistics (labels with means/covs, checked against X
    by :func:`rmt_deq.data.conventions.check_statistics`), the plug-in estimate (labels
    only), or the fallback without labels.  Passed as ``tau0=`` so the kernels record the
    source."""
    stats, codes = None, d.codes
    if tau0 is None and d.means is not None:
        mixture, sample = mixture_from_arrays(d.X, d.codes, d.means, d.covs)
        stats, codes = mixture.statistics(sample), None
    return data_scale(d.X, None if tau0 is not None else codes, tau0=tau0, statistics=stats)


def _sampled(d: _DataInputs, kind: str, sel: Any, tau0: Any,
             options: dict[str, Any]) -> Any:
    """The sampled kernel at the data scale of the exact kernels."""
    if "solution" in options or "tau0" in options:
        raise InvalidParameterError("pass the data scale as tau0=..., not in the options")
    scale = _data_scale(d, tau0)
    if sel is not None:
        options["groups"] = sel
    return sampled_kernel(d.X, d.act, d.sa, d.sb, kind=kind, tau0=scale, **options)


def sampled_kernel_from_data(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    labels: Any = None,
    means: Any = None,
    covs: Any = None,
    tau0: float | None = None,
    kind: str = "ck",
    groups: Sequence[str] | None = None,
    **options: Any,
) -> Any:
    """Sampled (finite-width, Monte-Carlo) CK or NTK of a DEQ on data X, with its error bar.

    The centring is fixed at the same data scale as :func:`kernel_from_data` uses for the
    exact kernels (``tau0``, else the exact or plug-in mixture statistics when labels are
    given, else all samples as one class: :func:`rmt_deq.data.conventions.data_scale`), so
    the two are directly comparable; ``info.tau0_source`` says which (docs/theory.md §8).

    Parameters
    ----------
    X, activation, sa, sb, labels, means, covs, tau0, kind, groups
        As in :func:`kernel_from_data`.
    **options
        Options of :func:`rmt_deq.sampling.deq.sampled_kernel`: ``width`` (required),
        ``realizations``, ``family``, ``rng``, ``dtype``, ``target_error``, ``progress``...

    Returns
    -------
    Kernel
        ``.matrix`` (n x n), the error bars ``.error`` and diagnostics in ``.info``.
    """
    sel = _check_kind_groups(kind, groups)
    d = _resolve_data(X, activation, sa, sb, labels, means, covs)
    return _sampled(d, kind, sel, tau0, options)


# ----------------------------------------------------------------------------------------
# the kernel of a designed explicit network
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NetworkKernel:
    """The CK or NTK of a designed network on data (:func:`network_kernel_from_data`).

    Attributes
    ----------
    matrix : ndarray, shape (n, n)
        ``kind="ck"``: K_L, the kernel of the last hidden layer; ``kind="ntk"``: the NTK of
        f = v^T h_L summed over the selected groups (read-only, float64).
    kind : {"ck", "ntk"}
    method : {"exact", "sampled"}
    kernel : Kernel
        The full result: ``route="exact"`` (the layer recursion, its layers in ``info``) or
        ``route="sampled"`` (the Monte-Carlo average, its error bars in ``error`` and
        ``error_relative``, an ExplicitSamplingInfo in ``info``).  Its ``tau0`` is the
        network's design data scale.
    network : DesignedNetwork
    data_scale : DataScale
        The data's own scale (exact mixture statistics with means/covs, the plug-in
        estimate with labels, else all samples as one class;
        :func:`rmt_deq.data.conventions.data_scale`).  The kernel does not depend on it:
        the network keeps the centrings of the data scale it was designed at
        (``network.tau0``), as its forward pass does.  It says whether the data are at the
        scale the design's match to its DEQ holds for.
    """

    matrix: np.ndarray = field(repr=False)
    kind: str
    method: str
    kernel: Kernel = field(repr=False)
    network: DesignedNetwork = field(repr=False)
    data_scale: DataScale

    @property
    def error(self) -> float | None:
        """The Monte-Carlo error bar of ``matrix`` (operator norm, at the sampler's
        confidence) for ``method="sampled"``; None for the exact kernel."""
        return self.kernel.error[self.kind] if self.method == "sampled" else None

    @property
    def error_relative(self) -> float | None:
        """``error`` relative to the operator norm of ``matrix`` (None when exact)."""
        return self.kernel.error_relative[self.kind] if self.method == "sampled" else None

    def record(self) -> dict:
        """JSON-ready description: the network, the data scales, and for a sampled kernel
        the Monte-Carlo error bar and the sampler's settings."""
        net = self.network
        d = {"kind": self.kind, "method": self.method, "family": net.family,
             "params": {k: float(v) for k, v in net.params.items()}, "depth": net.L,
             "network_tau0": net.tau0, "data_tau0": self.data_scale.tau0,
             "data_tau0_source": self.data_scale.source,
             "shape": list(self.matrix.shape)}
        if self.kind == "ntk":
            d["groups"] = list(self.kernel.selected)
        if self.method == "sampled":
            info = self.kernel.info
            d.update(width=info.width, realizations=info.realizations,
                     requested=info.requested, weight_family=info.family, dtype=info.dtype,
                     mc_error=self.error, mc_error_relative=self.error_relative,
                     confidence=info.confidence, stopped_early=info.stopped_early,
                     elapsed_s=info.elapsed)
            if self.kind == "ntk":
                d["group_errors"] = {k: e for k, e in self.kernel.error.items()
                                     if k not in ("ntk", "ck")}
        return d


def _as_designed(network: Any) -> DesignedNetwork:
    """A DesignedNetwork, or one loaded from a path (InvalidRecordError naming the file)."""
    if isinstance(network, DesignedNetwork):
        return network
    if isinstance(network, (str, os.PathLike)):
        return load_designed_network(os.fspath(network))
    raise InvalidParameterError(
        f"network must be a DesignedNetwork or the path of a saved one (DesignedNetwork.save, "
        f"rmt-deq design --out), got {type(network).__name__}")


def network_kernel_from_data(
    X: Any,
    network: Any,
    *,
    labels: Any = None,
    means: Any = None,
    covs: Any = None,
    kind: str = "ck",
    method: str = "exact",
    groups: Sequence[str] | None = None,
    sampling: Mapping[str, Any] | None = None,
) -> NetworkKernel:
    """The CK or NTK of a designed explicit network on data X, exact or sampled.

    The network is used as designed: its layers, parameters and centrings are those of
    the data scale it was designed at (``network.tau0``), exactly as
    :meth:`DesignedNetwork.forward` runs it, so the exact kernel is
    :meth:`DesignedNetwork.exact_kernels` on X and the sampled one averages that forward
    pass over weight draws (docs/theory.md §6.1, §8).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    network : DesignedNetwork, str or os.PathLike
        A designed network, or the JSON file it was saved to (``rmt-deq design --out``,
        :meth:`DesignedNetwork.save`).
    labels, means, covs : array_like, optional
        As in :func:`kernel_from_data` (same validation).  They set only the data's own
        scale, reported in ``data_scale`` next to the network's design scale; the kernel
        does not depend on them.
    kind : {"ck", "ntk"}
        ``"ck"``: K_L; ``"ntk"``: the NTK of f = v^T h_L summed over ``groups``.
    method : {"exact", "sampled"}
        ``"exact"``: the infinite-width layer recursion
        (:func:`rmt_deq.kernels.explicit.exact_explicit_kernels`).  ``"sampled"``: the
        Monte-Carlo average over finite-width networks
        (:func:`rmt_deq.sampling.explicit.sampled_explicit_ck` / ``sampled_explicit_ntk``)
        with its operator-norm error bar.
    groups : sequence of {"v", "W1", ..., "WL"}, optional
        NTK groups (default all); kind="ntk" only.
    sampling : mapping, optional
        ``method="sampled"`` only: the sampler's options, ``width`` required;
        realizations, family (of the square weights W_2..W_L; "orthogonal" also makes
        W_1 a partial isometry), rng, dtype, max_memory, batches, confidence, draws,
        target_error, check_every, progress.

    Returns
    -------
    NetworkKernel
        ``.matrix`` (n x n, float64), ``.error`` (the Monte-Carlo error bar when
        sampled), ``.kernel`` the full result, ``.data_scale`` the data's own scale.

    Raises
    ------
    InvalidRecordError
        ``network`` names a file that is not a valid saved design.
    InvalidParameterError
        method="surrogate"; groups with kind="ck"; sampling options with method="exact",
        or without a width; a data scale, labels or the DEQ control variate in the
        sampling options; bad data or class information (as :func:`kernel_from_data`).
    UnknownOptionError
        Unknown kind, method, NTK group or sampling option.
    """
    if method == "surrogate":
        raise InvalidParameterError(
            "a designed network's kernel is computed exactly or sampled (method='exact' or "
            "'sampled'); the surrogate route is for DEQ kernels")
    check_choice(method, "method", NETWORK_METHODS)
    check_choice(kind, "kind", KINDS)
    net = _as_designed(network)
    if kind == "ck" and groups is not None:
        raise InvalidParameterError(
            "groups select NTK parameter groups and apply to kind='ntk' only; drop groups "
            "for the CK")
    sel = net.network.check_groups(groups) if kind == "ntk" else None
    if method == "exact" and sampling is not None:
        raise InvalidParameterError("sampling options are only used by method='sampled'")
    d = _resolve_columns(as_data_matrix(X), labels, means, covs)
    scale = _data_scale(d, None)
    if method == "exact":
        k = net.exact_kernels(d.X, **({} if sel is None else {"groups": sel}))
    else:
        k = _sampled_network(d.X, net, kind, sel, dict(sampling or {}))
    matrix = _ck_matrix(k) if kind == "ck" else _ntk_matrix(k)
    return NetworkKernel(matrix=matrix, kind=kind, method=method, kernel=k, network=net,
                         data_scale=scale)


def _sampled_network(X: np.ndarray, net: DesignedNetwork, kind: str, sel: Any,
                     options: dict[str, Any]) -> Kernel:
    """The sampled kernel of ``net`` at its design scale (validated options)."""
    for key, why in (("tau0", "the network keeps the centrings of its design data scale"),
                     ("labels", "pass labels to network_kernel_from_data itself"),
                     ("control_variate", "the control variate is the DEQ CK's")):
        if key in options:
            raise InvalidParameterError(
                f"sampling option {key!r} does not apply to a designed network ({why}); "
                f"drop it")
    check_options(options, _NETWORK_SAMPLING, "the sampled kernel of a designed network")
    if "width" not in options:
        raise InvalidParameterError("the sampled kernel needs a width (sampling={'width': m})")
    if kind == "ck":
        return sampled_explicit_ck(X, net.network, tau0=net.tau0, **options)
    return sampled_explicit_ntk(X, net.network, tau0=net.tau0, groups=sel, **options)


def add_kernel_parser(sub: Any, parents: list, help: str) -> argparse.ArgumentParser:
    """Add ``kernel`` to the CLI's sub-commands ``sub`` (``parents``: the DEQ options, not
    required since ``--network`` names another model; ``help``: the one-line help)."""
    k = sub.add_parser(
        "kernel", parents=parents, help=help,
        description=(
            "Compute a kernel on the columns of X.  FILE.npz holds X (p x n, columns are "
            "samples) and labels (n,); optionally means (K x p) and covs (K x p diagonals "
            "or K x p x p) to use the exact mixture statistics for the surrogate instead of "
            "plug-in estimates; no other arrays.  Units: x_i = (mu_a + omega_i)/sqrt(p), "
            "omega_i ~ N(0, C_a), so means[a] is the class mean of sqrt(p) x_i and covs[a] "
            "its class covariance (not those of x_i); means/covs that contradict X are "
            "refused.  Convention: for --kind ck the output is "
            "G, the conjugate kernel of z = phi_c(u)/sqrt(m) (G_ij = E[phi_c(u_i) "
            "phi_c(u_j)]), not the preactivation kernel Sigma = sa G + sb X^T X; for "
            "--kind ntk it is the NTK of f = v^T z summed over --groups.  --method "
            "surrogate is the CK or NTK surrogate; --method sampled averages finite-width "
            "DEQs (width --width, --realizations weight draws from --family) and reports "
            "its Monte-Carlo error bar.  --network FILE (a design saved by rmt-deq design "
            "--out) gives the CK K_L or NTK of that explicit network instead of a DEQ's, "
            "--method exact or sampled, with the centrings of its design tau0.  --out is "
            "written exactly as named, in .npy format."))
    k.add_argument("--network", default=None,
                   help="designed network (JSON from rmt-deq design --out) instead of a DEQ; "
                        "not with --activation, --sa, --sb, --tau0")
    k.add_argument("--data", required=True,
                   help="input .npz file (X, labels[, means, covs]), or 'digits' (the "
                        "handwritten digits, normalised to mean squared column norm 1; "
                        "optional extra [data])")
    k.add_argument("--tau0", type=real, default=None,
                   help="data scale tau0 = sqrt(tr C°/p) (exact and sampled kernels); default: "
                        "from means/covs when given, else the plug-in estimate from the "
                        "labels, else all samples as one class")
    k.add_argument("--kind", choices=KINDS, default="ck")
    k.add_argument("--method", choices=METHODS, default="exact")
    k.add_argument("--groups", default=None,
                   help=groups_help(NTK_GROUPS) + "; with --network from v,W1,...,WL")
    k.add_argument("--out", required=True, help="output file (n x n, .npy format)")
    add_sampled_options(k, "sampled kernels (--method sampled only)")

    return k
