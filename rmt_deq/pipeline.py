"""Common jobs composed from the modules: a kernel from a data file, the default demo.

These are what the command line runs; they are plain functions so that scripts and notebooks
can run the same jobs.  Nothing here prints unless an ``echo`` callable is passed.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._validation import as_data_matrix, as_labels, check_choice
from .activations import ActivationLike, get_activation
from .errors import InvalidParameterError, UnknownOptionError
from .fixed_point import check_variances
from .kernels import exact_ck, exact_ntk
from .conventions import DataScale, check_statistics, data_scale
from .mixture import GaussianMixture, MixtureSample
from .surrogate import mixture_ck_surrogate, plugin_ck_surrogate

__all__ = ["kernel_from_data", "sampled_kernel_from_data", "default_mixture", "run_demo",
           "DemoResult"]


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
    groups: Sequence[str] = ("v", "A", "B"),
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
        :func:`rmt_deq.conventions.data_scale` (all samples as one class).
    kind : {"ck", "ntk"}
        ``"ck"`` returns G (the CK of z = phi_c(u)/sqrt(m)); ``"ntk"`` the NTK summed over
        ``groups``.
    method : {"exact", "surrogate", "sampled"}
        ``"sampled"``: Monte-Carlo average over finite-width DEQs
        (:func:`sampled_kernel_from_data`; its options go in ``sampling``).
    groups : sequence of {"v", "A", "B"}
        NTK parameter groups (ignored for the CK).
    sampling : mapping, optional
        Options of :func:`rmt_deq.sampling.sampled_kernel` for ``method="sampled"``
        (``width`` is required; realizations, family, rng, dtype, ...).

    Returns
    -------
    ndarray, shape (n, n)
    """
    check_choice("kind", kind, ("ck", "ntk"))
    check_choice("method", method, ("exact", "surrogate", "sampled"))
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
        if kind == "ntk":
            raise UnknownOptionError(
                "the NTK surrogate is not available yet (theory.md section 5, the NTK "
                "surrogate issue); use --method exact for the NTK")
        if codes is None:
            raise InvalidParameterError("the surrogate needs class labels (labels=...)")
        if means is not None:
            mixture, sample = _mixture_from_arrays(Xa, codes, means, covs)
            sur = mixture_ck_surrogate(mixture, sample, act, sa_f, sb_f if sb is not None
                                       else None)
        else:
            sur = plugin_ck_surrogate(Xa, codes, act, sa_f, sb_f if sb is not None else None)
        return np.asarray(sur.G)
    # exact kernels: fix tau (and the centring) from the best available data scale
    scale = _data_scale(Xa, codes, means, covs, tau0)
    if kind == "ck":
        return np.asarray(exact_ck(Xa, act, sa_f, sb_f, tau0=scale).G)
    return np.asarray(exact_ntk(Xa, act, sa_f, sb_f, groups=tuple(groups), tau0=scale).total)


def _data_scale(Xa: np.ndarray, codes: Any, means: Any, covs: Any, tau0: Any) -> DataScale:
    """The data scale of :func:`rmt_deq.conventions.data_scale` with its source: tau0 if
    given, else the exact mixture statistics (labels with means/covs, checked against X by
    :func:`rmt_deq.conventions.check_statistics`), the plug-in estimate (labels only), or
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
    groups: Sequence[str] = ("v", "A", "B"),
    **options: Any,
) -> Any:
    """Sampled (finite-width, Monte-Carlo) CK or NTK of a DEQ on data X, with its error bar.

    The centring is fixed at the same data scale as :func:`kernel_from_data` uses for the
    exact kernels (``tau0``, else the exact or plug-in mixture statistics when labels are
    given, else all samples as one class: :func:`rmt_deq.conventions.data_scale`), so the
    two are directly comparable; ``info.tau0_source`` says which.

    Parameters
    ----------
    X, activation, sa, sb, labels, means, covs, tau0, kind, groups
        As in :func:`kernel_from_data`.
    **options
        Options of :func:`rmt_deq.sampling.sampled_kernel`: ``width`` (required),
        ``realizations``, ``family``, ``rng``, ``dtype``, ``target_error``, ``progress``...

    Returns
    -------
    SampledKernel or SampledNTK
        ``.matrix`` (n x n), ``.mc_error`` and diagnostics in ``.info``.
    """
    from .sampling import sampled_kernel

    check_choice("kind", kind, ("ck", "ntk"))
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
    return sampled_kernel(Xa, act, sa_f, sb_f, kind=kind, tau0=scale,
                          **({"groups": tuple(groups)} if kind == "ntk" else {}), **options)


def default_mixture(p: int, K: int = 2, rng: Any = 0) -> GaussianMixture:
    """A K-class mixture in the proportional regime, used by the demo and the checks.

    Means have norm 3 along random directions.  Covariances are diagonal: for odd classes
    the first half of the coordinates has variance 1.5 and the second half 0.5 (a shape
    difference that is O(1) per coordinate), and class a's second half is scaled up by
    2a/(K sqrt p), so tr(C_a)/p = 1 + a/(K sqrt p): trace differences of order sqrt(p), as
    the regime requires (t_a = O(1)).  Equal proportions; ``rng`` seeds the mean directions.
    """
    from ._validation import as_rng, check_positive_int

    p = check_positive_int("p", p)
    K = check_positive_int("K", K)
    gen = as_rng(rng)
    means = gen.standard_normal((K, p))
    means *= 3.0 / np.linalg.norm(means, axis=1, keepdims=True)
    covs = np.ones((K, p))
    half = p // 2
    for a in range(K):
        # shape differences O(1) per coordinate, trace differences O(sqrt p)
        covs[a, :half] *= 1.0 + 0.5 * (a % 2)
        covs[a, half:] *= 1.0 - 0.5 * (a % 2) + 2.0 * a / (K * math.sqrt(p))
    return GaussianMixture(means, covs, np.full(K, 1.0 / K))


class DemoResult(dict):
    """What :func:`run_demo` computed (a dict with attribute access)."""

    __getattr__ = dict.__getitem__


def run_demo(activation: ActivationLike = "relu", sa: float = 0.2, p: int = 400,
             seed: int = 0, out: str | None = "rmt_deq_demo.png",
             echo: Callable[[str], Any] | None = None) -> DemoResult:
    """Solve the four equations, compare the exact CK with the predicted spectrum, draw it.

    The figure is the spectral one of theory.md §7: the histogram of the eigenvalues of the
    exact infinite-width Implicit-CK G on one sample, the limiting density of the bulk
    predicted from the mixture statistics alone (:func:`rmt_deq.spectra.kernel_bulk`), and
    the predicted isolated eigenvalues (:func:`rmt_deq.spikes.isolated_eigenvalues`).

    Parameters
    ----------
    activation, sa : the DEQ (sb = 1 - sa)
    p : int
        Dimension; n = 0.8 p samples from :func:`default_mixture` (K = 2).
    seed : int
        Seed of the mixture and the sample.
    out : str or None
        Where to write the spectral figure (PNG); None for no figure.
    echo : callable, optional
        Called with each line of the report (the CLI passes ``print``).

    Returns
    -------
    DemoResult
        ``solution``, ``eig_exact`` and ``eig_surrogate`` (eigenvalues of G and G~),
        ``relative_error`` (||G - G~||/||G||), ``bulk`` and ``spikes`` (the prediction),
        ``distances`` (Kolmogorov-Smirnov and 1-Wasserstein of the exact bulk to the
        prediction, :func:`rmt_deq.spectra.spectral_distances`), ``figure``.
    """
    from .spectra import gram_model_from_mixture, kernel_bulk, spectral_distances
    from .spikes import isolated_eigenvalues

    say = echo or (lambda s: None)
    mixture = default_mixture(p, 2, rng=seed)
    sample = mixture.sample(int(0.8 * p), rng=seed + 1)
    sur = mixture_ck_surrogate(mixture, sample, activation, sa)
    sol = sur.solution
    say(f"four equations: activation {sol.activation}, sa = {sol.sa:g}, sb = {sol.sb:g}, "
        f"tau0 = {sol.tau0:.6g}")
    for name in ("tau", "alpha1", "alpha2", "alpha3", "alpha4", "g1", "g2", "g4"):
        say(f"  {name:7s} = {getattr(sol, name): .12g}")
    say(f"  residual {sol.residual:.1e}, contraction sa*g1 = {sol.contraction['alpha1']:.3g}, "
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
        from .plotting import plot_spectrum, save_figure

        ax = plot_spectrum(
            bulk, spikes, eigenvalues=ev_exact, label="exact Implicit-CK G",
            title=f"{sol.activation}, sa = {sa:g}, p = {p}, n = {sample.n}: "
                  f"KS {dist['ks']:.3f}, W1/width {dist['w1_relative']:.4f}")
        save_figure(ax.figure, out)
        res["figure"] = out
        say(f"wrote {out}")
    return res
