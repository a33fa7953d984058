"""Common jobs composed from the modules: a kernel from a data file, the default demo.

These are what the command line runs; they are plain functions so that scripts and notebooks
can run the same jobs.  Nothing here prints unless an ``echo`` callable is passed.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rmt_deq._validation import as_data_matrix, as_labels, check_choice, check_groups
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.errors import InvalidParameterError
from rmt_deq._validation import check_variances
from rmt_deq.kernels.exact import NTK_GROUPS, exact_ck, exact_ntk
from rmt_deq.data.conventions import DataScale, check_statistics, data_scale
from rmt_deq.data.mixture import GaussianMixture, MixtureSample, default_mixture
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate, plugin_ck_surrogate

__all__ = ["kernel_from_data", "sampled_kernel_from_data", "run_demo",
           "DemoResult", "demo_memory", "KINDS", "METHODS"]

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


def _mixture_from_arrays(X: np.ndarray, codes: np.ndarray, means: Any,
                         covs: Any) -> tuple[GaussianMixture, MixtureSample]:
    """Wrap labelled data with known class means/covariances as a mixture sample."""
    p, n = X.shape
    check_statistics(X, codes, means, covs)
    means = np.asarray(means, dtype=float)
    K = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=K)
    mixture = GaussianMixture(means, covs, sizes / n)
    omega = math.sqrt(p) * X - means[codes].T
    sample = MixtureSample(X=X, labels=codes, omega=omega, sizes=sizes)
    return mixture, sample


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
        :func:`rmt_deq.data.conventions.data_scale` (all samples as one class).  Not with ``method="surrogate"``, whose data scale is the
        mixture statistics' by construction.
    kind : {"ck", "ntk"}
        ``"ck"`` returns G (the CK of z = phi_c(u)/sqrt(m)); ``"ntk"`` the NTK summed over
        ``groups``.
    method : {"exact", "surrogate", "sampled"}
        ``"surrogate"``: the CK surrogate (:func:`~rmt_deq.kernels.ck_surrogate.mixture_ck_surrogate`
        / :func:`~rmt_deq.kernels.ck_surrogate.plugin_ck_surrogate`) or the NTK surrogate
        (:func:`~rmt_deq.kernels.ntk_surrogate.mixture_ntk_surrogate` /
        :func:`~rmt_deq.kernels.ntk_surrogate.plugin_ntk_surrogate`), with the exact statistics when
        ``means``/``covs`` are given, else plug-in ones.  ``"sampled"``: Monte-Carlo average
        over finite-width DEQs (:func:`sampled_kernel_from_data`; its options go in
        ``sampling``).
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
    if method == "sampled":
        return np.asarray(sampled_kernel_from_data(
            X, activation, sa, sb, labels=labels, means=means, covs=covs, tau0=tau0,
            kind=kind, groups=groups, **dict(sampling or {})).matrix)
    if sampling is not None:
        raise InvalidParameterError("sampling options are only used by method='sampled'")
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
    if method == "surrogate":
        if tau0 is not None:
            raise InvalidParameterError(
                "tau0 does not apply to method='surrogate': the surrogate's data scale is "
                "the mixture statistics' tau0 (exact with means/covs, else plug-in); drop "
                "tau0, or use method='exact'")
        if codes is None:
            raise InvalidParameterError("the surrogate needs class labels (labels=...)")
        return _surrogate_matrix(Xa, codes, means, covs, act, sa_f, sb_f, kind, sel)
    # exact kernels: fix tau (and the centring) from the best available data scale
    scale = _data_scale(Xa, codes, means, covs, tau0)
    if kind == "ck":
        return np.asarray(exact_ck(Xa, act, sa_f, sb_f, tau0=scale).G)
    return np.asarray(exact_ntk(Xa, act, sa_f, sb_f, groups=sel, tau0=scale).total)


def _surrogate_matrix(Xa: np.ndarray, codes: np.ndarray, means: Any, covs: Any, act: Any,
                      sa_f: float, sb_f: float, kind: str, sel: Any) -> np.ndarray:
    """The CK surrogate G~ or the NTK surrogate (summed over ``sel``), exact statistics
    with means/covs, else plug-in."""
    from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate, plugin_ntk_surrogate

    if means is not None:
        mixture, sample = _mixture_from_arrays(Xa, codes, means, covs)
        if kind == "ck":
            return np.asarray(mixture_ck_surrogate(mixture, sample, act, sa_f, sb_f).G)
        return np.asarray(mixture_ntk_surrogate(mixture, sample, act, sa_f, sb_f,
                                                groups=sel).total)
    if kind == "ck":
        return np.asarray(plugin_ck_surrogate(Xa, codes, act, sa_f, sb_f).G)
    return np.asarray(plugin_ntk_surrogate(Xa, codes, act, sa_f, sb_f, groups=sel).total)


def _data_scale(Xa: np.ndarray, codes: Any, means: Any, covs: Any, tau0: Any) -> DataScale:
    """The data scale of :func:`rmt_deq.data.conventions.data_scale` with its source: tau0 if
    given, else the exact mixture statistics (labels with means/covs, checked against X by
    :func:`rmt_deq.data.conventions.check_statistics`), the plug-in estimate (labels only), or
    the fallback without labels.  Passed as ``tau0=`` so the kernels record the source."""
    stats = None
    if tau0 is None and means is not None:
        mixture, sample = _mixture_from_arrays(Xa, codes, means, covs)
        stats, codes = mixture.statistics(sample), None
    return data_scale(Xa, None if tau0 is not None else codes, tau0=tau0, statistics=stats)


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
    given, else all samples as one class: :func:`rmt_deq.data.conventions.data_scale`), so the
    two are directly comparable; ``info.tau0_source`` says which.

    Parameters
    ----------
    X, activation, sa, sb, labels, means, covs, tau0, kind, groups
        As in :func:`kernel_from_data`.
    **options
        Options of :func:`rmt_deq.sampling.deq.sampled_kernel`: ``width`` (required),
        ``realizations``, ``family``, ``rng``, ``dtype``, ``target_error``, ``progress``...

    Returns
    -------
    SampledKernel or SampledNTK
        ``.matrix`` (n x n), ``.mc_error`` and diagnostics in ``.info``.
    """
    from rmt_deq.sampling.deq import sampled_kernel

    sel = _check_kind_groups(kind, groups)
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
    if "solution" in options or "tau0" in options:
        raise InvalidParameterError("pass the data scale as tau0=..., not in the options")
    scale = _data_scale(Xa, codes, means, covs, tau0)
    if sel is not None:
        options["groups"] = sel
    return sampled_kernel(Xa, act, sa_f, sb_f, kind=kind, tau0=scale, **options)


class DemoResult(dict):
    """What :func:`run_demo` computed (a dict with attribute access)."""

    __getattr__ = dict.__getitem__


def demo_memory(p: int) -> float:
    """Bytes :func:`run_demo` needs at dimension p (n = 0.8 p): the sample and its noise
    (2 p n), the exact CK with its work arrays, the surrogate's G~, Sigma~ and X^T X, their
    difference and the two eigen-decompositions (8 n^2 in all), in float64."""
    n = int(0.8 * p)
    return 8.0 * (2.0 * p * n + 8.0 * n * n)


def run_demo(activation: ActivationLike = "relu", sa: float = 0.2, p: int = 400,
             seed: int = 0, out: str | None = "rmt_deq_demo.png",
             echo: Callable[[str], Any] | None = None,
             max_memory: float | None = None) -> DemoResult:
    """Solve the four equations, compare the exact CK with the predicted spectrum, draw it.

    The figure is the spectral one of theory.md §7: the histogram of the eigenvalues of the
    exact infinite-width Implicit-CK G on one sample, the limiting density of the bulk
    predicted from the mixture statistics alone (:func:`rmt_deq.spectra.bulk.kernel_bulk`), and
    the predicted isolated eigenvalues (:func:`rmt_deq.spectra.spikes.isolated_eigenvalues`).

    Parameters
    ----------
    activation, sa : the DEQ (sb = 1 - sa)
    p : int
        Dimension; n = 0.8 p samples from :func:`default_mixture` (K = 2).
    seed : int
        Seed of the mixture and the sample.
    out : str or None
        Where to write the spectral figure (format from the suffix: .png, .pdf, .svg...);
        None for no figure.  Checked before anything is computed, written atomically.
    echo : callable, optional
        Called with each line of the report (the CLI passes ``print``).
    max_memory : float, optional
        Memory budget in bytes (default :data:`rmt_deq._validation.DEFAULT_MAX_MEMORY`);
        the estimate :func:`demo_memory` is checked against it before anything is allocated.

    Returns
    -------
    DemoResult
        ``solution``, ``eig_exact`` and ``eig_surrogate`` (eigenvalues of G and G~),
        ``relative_error`` (||G - G~||/||G||), ``bulk`` and ``spikes`` (the prediction),
        ``distances`` (Kolmogorov-Smirnov and 1-Wasserstein of the exact bulk to the
        prediction, :func:`rmt_deq.spectra.bulk.spectral_distances`), ``figure``.

    Raises
    ------
    InvalidParameterError
        p < 10 (too few samples for two classes), a bad seed or DEQ.
    MemoryBudgetError
        The demo at this p would need more than ``max_memory``.
    OutputPathError
        ``out`` cannot be written (checked first).
    """
    from rmt_deq._io import check_output_path
    from rmt_deq._validation import check_memory, check_positive_int, memory_budget
    from rmt_deq.spectra.bulk import gram_model_from_mixture, kernel_bulk, spectral_distances
    from rmt_deq.spectra.spikes import isolated_eigenvalues

    p = check_positive_int(p, "p")
    if p < 10:
        raise InvalidParameterError(
            f"the demo needs p >= 10 (n = 0.8 p samples in two classes); got p = {p}")
    check_memory(demo_memory(p), memory_budget(max_memory),
                 f"the demo's sample (p x n = {p} x {int(0.8 * p)}) and n x n kernels",
                 "use a smaller p (--p), or raise max_memory (--max-memory)")
    if out:
        check_output_path(out, "out", figure=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
    say = echo or (lambda s: None)
    mixture = default_mixture(p, 2, rng=seed)
    sample = mixture.sample(int(0.8 * p), rng=seed + 1)
    sur = mixture_ck_surrogate(mixture, sample, activation, sa)
    sol = sur.solution
    say(f"four equations: activation {sol.activation}, sa = {sol.sa:g}, sb = {sol.sb:g}, "
        f"tau0 = {sol.tau0:.6g}")
    for name in ("tau", "alpha1", "alpha2", "alpha3", "alpha4", "g1", "g2", "g4"):
        say(f"  {name:7s} = {getattr(sol, name): .12g}")
    say(f"  residual {sol.report.residual:.1e}, contraction sa*g1 = {sol.contraction['alpha1']:.3g}, "
        f"unique: {sol.unique}")
    exact = exact_ck(sample.X, activation, sa, solution=sol)
    G, Gt = exact.G, sur.G
    err = float(np.linalg.norm(G - Gt, 2) / np.linalg.norm(G, 2))
    ev_exact = np.linalg.eigvalsh(G)
    ev_sur = np.linalg.eigvalsh(Gt)
    say(f"p = {p}, n = {sample.n}: ||G - G~|| / ||G|| = {err:.4f} (exact CK vs RMT surrogate)")
    model = gram_model_from_mixture(mixture, sample)
    coef = sur.coefficients_G
    bulk = kernel_bulk(model, coef)
    spikes = isolated_eigenvalues(model, coef, bulk=bulk)
    dist = spectral_distances(bulk, ev_exact, exclude=spikes.positions)
    say("predicted spectrum of G (no sampling): support "
        + ", ".join(f"[{a:.4g}, {b:.4g}]" for a, b in bulk.support)
        + (f", atom {bulk.atom:.3g} at {bulk.atom_at:.4g}" if bulk.atom > 0 else ""))
    say(f"  exact CK bulk vs prediction: Kolmogorov-Smirnov {dist['ks']:.4f}, "
        f"1-Wasserstein {dist['w1_relative']:.4f} of the bulk width")
    top = np.sort(ev_exact)[::-1][:spikes.count]
    say("  isolated eigenvalues predicted "
        + ", ".join(f"{s:.4g}" for s in spikes.positions[::-1])
        + "; exact CK top eigenvalues " + ", ".join(f"{s:.4g}" for s in top))
    res = DemoResult(solution=sol, eig_exact=ev_exact, eig_surrogate=ev_sur,
                     relative_error=err, bulk=bulk, spikes=spikes, distances=dist,
                     figure=None)
    if out:
        from rmt_deq.plotting import plot_spectrum, save_figure

        ax = plot_spectrum(
            bulk, spikes, eigenvalues=ev_exact, label="exact Implicit-CK G",
            title=f"{sol.activation}, sa = {sa:g}, p = {p}, n = {sample.n}: "
                  f"KS {dist['ks']:.3f}, W1/width {dist['w1_relative']:.4f}")
        save_figure(ax.figure, out)
        res["figure"] = str(out)
        say(f"wrote {out}")
    return res
