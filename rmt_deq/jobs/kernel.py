"""The kernel jobs: the CK or NTK of a DEQ on a data file (``rmt-deq kernel``).

:func:`kernel_from_data` computes the kernel exactly (docs/theory.md §2.2, §2.3), by the
surrogates (§4, §5) or by sampling finite-width DEQs (§8); :func:`sampled_kernel_from_data`
is the sampled route with its error bar.  Both validate their inputs in one place
(:func:`_resolve_data`) and fix the data scale the same way, so their kernels are directly
comparable.  Nothing here prints.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from rmt_deq._validation import (as_data_matrix, as_labels, check_choice, check_groups,
                                 check_variances)
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.data.conventions import DataScale, data_scale
from rmt_deq.errors import InvalidParameterError
from rmt_deq.experiments.observed import mixture_from_arrays
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate, plugin_ck_surrogate
from rmt_deq.kernels.exact import NTK_GROUPS, exact_ck, exact_ntk
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate, plugin_ntk_surrogate
from rmt_deq.sampling.deq import sampled_kernel

__all__ = ["kernel_from_data", "sampled_kernel_from_data", "KINDS", "METHODS"]

#: the kernels a job computes: the CK G or the NTK
KINDS = ("ck", "ntk")
#: how :func:`kernel_from_data` computes them
METHODS = ("exact", "surrogate", "sampled")


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
class _DataInputs:
    """The validated inputs the kernel jobs share."""

    X: np.ndarray
    act: Activation
    sa: float
    sb: float
    codes: np.ndarray | None
    means: Any
    covs: Any


def _resolve_data(X: Any, activation: ActivationLike, sa: Any, sb: Any, labels: Any,
                  means: Any, covs: Any) -> _DataInputs:
    """Validate the data, the DEQ and the class information of a kernel job: X a finite
    p x n matrix, the activation and variances, labels of the n columns, means and covs
    both or neither and only with labels."""
    Xa = as_data_matrix(X)
    act = get_activation(activation)
    sa_f, sb_f = check_variances(sa, sb)
    if (means is None) != (covs is None):
        raise InvalidParameterError("give both means and covs (exact statistics) or neither")
    codes = None
    if labels is not None:
        codes, _ = as_labels(labels, Xa.shape[1], p=Xa.shape[0])
    if means is not None and codes is None:
        raise InvalidParameterError("means/covs need labels to know each column's class")
    return _DataInputs(X=Xa, act=act, sa=sa_f, sb=sb_f, codes=codes, means=means, covs=covs)


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


def _data_scale(d: _DataInputs, tau0: Any) -> DataScale:
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
