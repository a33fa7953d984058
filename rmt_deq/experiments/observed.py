"""Observed kernel spectra against the predicted limiting spectrum (docs/theory.md §7).

The prediction of docs/theory.md §7 (bulk density, atom, isolated eigenvalues and their
eigenvector alignments) is computed from the mixture statistics alone; this module sets it
beside the eigenvalues of a kernel actually computed on the data:

* :func:`data_inputs`, :func:`mixture_inputs`: the data, its statistics (exact with class
  means/covariances, else plug-in estimates) and the Gram model of the spectral equations,
  as one :class:`SpectralInputs`;
* :func:`predict_spectrum`: the predicted bulk and spikes of the CK G or the NTK;
* :func:`observed_kernel`: the kernel whose eigenvalues are observed, by one of
  :data:`OBSERVE_ROUTES` -- the exact infinite-width kernel (docs/theory.md §2), a
  Monte-Carlo average of finite-width DEQs (§8) or the surrogate (§4, §5) -- always at the
  four-equation solution of the prediction, so every route has the same centring;
* :func:`compare_spectrum`: the distances between the two (:class:`SpectrumComparison`):
  Kolmogorov-Smirnov and 1-Wasserstein of the bulk (the eigenvalues nearest to the
  predicted spikes left out, :func:`rmt_deq.metrics.spectral_distances`), the relative
  error of each predicted spike against the observed eigenvalue it matches, and the
  eigenvector alignments with the class indicators.

Nothing here prints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from rmt_deq._results import readonly
from rmt_deq._validation import check_choice
from rmt_deq.activations import ActivationLike
from rmt_deq.data.conventions import check_statistics
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.data.statistics import MixtureStatistics, plugin_statistics
from rmt_deq.errors import InvalidParameterError
from rmt_deq.experiments.harness import Record
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.ck_surrogate import (ck_surrogate_coefficients, mixture_ck_surrogate,
                                          plugin_ck_surrogate)
from rmt_deq.kernels.exact import NTK_GROUPS, exact_kernels
from rmt_deq.kernels.ntk_surrogate import (mixture_ntk_surrogate, ntk_surrogate_coefficients,
                                           plugin_ntk_surrogate)
from rmt_deq.kernels.result import Kernel
from rmt_deq.metrics import SpectralDistances, spectral_distances
from rmt_deq.sampling.deq import sampled_kernel
from rmt_deq.spectra.bulk import BulkSpectrum, as_low_rank_coefficients, kernel_bulk
from rmt_deq.spectra.model import GramModel, gram_model
from rmt_deq.spectra.spikes import Spikes, isolated_eigenvalues, observed_alignments

__all__ = ["OBSERVE_ROUTES", "SpectralInputs", "data_inputs", "mixture_inputs",
           "mixture_from_arrays", "Prediction", "predict_spectrum", "observed_kernel",
           "SpectrumComparison", "compare_spectrum", "sampling_record"]

#: how the observed kernel is computed: exact infinite-width, sampled finite-width DEQs, or
#: the surrogate
OBSERVE_ROUTES = ("exact", "sampled", "surrogate")


# ----------------------------------------------------------------------------------------
# the data and its statistics
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SpectralInputs:
    """The data of a spectral prediction and its observation.

    Attributes
    ----------
    stats : MixtureStatistics
        Exact (a mixture, or class means/covariances given with the data) or plug-in.
    model : GramModel
        The data of the spectral equations (:func:`rmt_deq.spectra.model.gram_model`).
    sizes : ndarray of int, shape (K,)
    source : str
        Where the statistics come from (said in reports).
    notes : tuple of str
        What a report should say about them (plug-in bias).
    X : ndarray, shape (p, n), or None
        The samples the kernels are observed on (None: a mixture without a sample).
    codes : ndarray of int, shape (n,), or None
        Class of each column, 0..K-1.
    mixture : GaussianMixture or None
        The mixture when the statistics are exact (then ``sample`` is X as a
        :class:`MixtureSample` of it, when there is an X).
    sample : MixtureSample or None
    """

    stats: MixtureStatistics
    model: GramModel
    sizes: np.ndarray
    source: str
    notes: tuple = ()
    X: np.ndarray | None = None
    codes: np.ndarray | None = None
    mixture: GaussianMixture | None = None
    sample: MixtureSample | None = None

    @property
    def K(self) -> int:
        """Number of classes."""
        return int(self.sizes.shape[0])

    @property
    def p(self) -> int:
        """Dimension."""
        return int(self.model.p)

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.sizes.sum())


def mixture_from_arrays(X: np.ndarray, codes: np.ndarray, means: Any,
                        covs: Any) -> tuple[GaussianMixture, MixtureSample]:
    """Labelled data with its class means and covariances as a mixture and its sample.

    The statistics are checked against the data first
    (:func:`rmt_deq.data.conventions.check_statistics`); the mixture's proportions are the
    sample's, and the sample's noise is omega_i = sqrt(p) x_i - mu_a (docs/theory.md §1).
    """
    p, n = X.shape
    check_statistics(X, codes, means, covs)
    means = np.asarray(means, dtype=float)
    K = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=K)
    mixture = GaussianMixture(means, covs, sizes / n)
    omega = math.sqrt(p) * X - means[codes].T
    return mixture, MixtureSample(X=X, labels=codes, omega=omega, sizes=sizes)


def mixture_inputs(mixture: GaussianMixture, sizes: np.ndarray,
                   sample: MixtureSample | None = None, *,
                   max_atoms: int | None = None) -> SpectralInputs:
    """The exact statistics of ``mixture`` at class sizes ``sizes``, and optionally a
    sample of it to observe kernels on (its sizes must be ``sizes``)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    stats = mixture.statistics(sizes)
    model = gram_model(mixture.covs, sizes, means=mixture.means, max_atoms=max_atoms)
    X = codes = None
    if sample is not None:
        X, codes = np.asarray(sample.X), np.asarray(sample.labels)
    return SpectralInputs(stats=stats, model=model, sizes=sizes, source="mixture", X=X,
                          codes=codes, mixture=mixture, sample=sample)


def data_inputs(X: np.ndarray, codes: np.ndarray, means: Any = None, covs: Any = None, *,
                data_covariance: str | None = None,
                max_atoms: int | None = None) -> SpectralInputs:
    """The statistics of labelled data: exact with ``means``/``covs`` (checked against X),
    else plug-in estimates (:func:`rmt_deq.data.statistics.plugin_statistics`): the class
    averages as means (their noise removed from the spike equation) and, per
    ``data_covariance``, the per-coordinate class variances ("diagonal", the default) or
    the full class sample covariances ("sample") for the bulk.

    ``X`` is a validated p x n float array and ``codes`` its classes 0..K-1.
    """
    if (means is None) != (covs is None):
        raise InvalidParameterError("give both means and covs in the data file, or neither")
    K = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=K).astype(np.int64)
    if means is not None:
        if data_covariance is not None:
            raise InvalidParameterError(
                "data_covariance applies to data without means/covs (plug-in statistics); "
                "this data file gives exact means and covs")
        mixture, sample = mixture_from_arrays(X, codes, means, covs)
        inp = mixture_inputs(mixture, sizes, sample, max_atoms=max_atoms)
        return SpectralInputs(stats=inp.stats, model=inp.model, sizes=sizes,
                              source="data (exact means/covs)", X=X, codes=codes,
                              mixture=mixture, sample=sample)
    est = plugin_statistics(X, codes)
    W = est.omega
    data_covariance = check_choice(data_covariance or "diagonal", "data_covariance",
                                   ("diagonal", "sample"))
    if data_covariance == "diagonal":
        cov = np.stack([np.sum(W[:, codes == a] ** 2, axis=1) / (sizes[a] - 1)
                        for a in range(K)])
    else:
        cov = np.stack([W[:, codes == a] @ W[:, codes == a].T / (sizes[a] - 1)
                        for a in range(K)])
    model = gram_model(cov, sizes, means=est.means, mean_bias=X.shape[0] / sizes,
                       trace_sq=np.diag(est.statistics.T), max_atoms=max_atoms)
    return SpectralInputs(
        stats=est.statistics, model=model, sizes=sizes,
        source=f"data (plug-in statistics, {data_covariance} covariances)",
        notes=("plug-in class covariances: the predicted bulk is biased unless n_a >> p",),
        X=X, codes=codes)


# ----------------------------------------------------------------------------------------
# the prediction
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Prediction:
    """The predicted limiting spectrum of a kernel (docs/theory.md §7).

    Attributes
    ----------
    kind : {"ck", "ntk"}
    bulk : BulkSpectrum
    spikes : Spikes
    c1, c0 : float
        The surrogate is c1 X^T X + V L V^T + c0 I.
    L : ndarray, shape (K+1, K+1)
    """

    kind: str
    bulk: BulkSpectrum
    spikes: Spikes
    c1: float
    c0: float
    L: np.ndarray


def surrogate_coefficients(kind: str, sol: FixedPointSolution, stats: MixtureStatistics,
                           groups: Iterable[str] | None = None) -> Any:
    """The surrogate's coefficients: the CK G form (docs/theory.md §4) or the NTK summed
    over ``groups`` (§5; default all)."""
    if kind == "ck":
        return ck_surrogate_coefficients(sol, stats, form="G")
    kw = {} if groups is None else {"groups": tuple(groups)}
    return ntk_surrogate_coefficients(sol, stats, **kw)


def predict_spectrum(kind: str, sol: FixedPointSolution, inputs: SpectralInputs, *,
                     groups: Iterable[str] | None = None, num: int | None = None,
                     grid: Any = None) -> Prediction:
    """The predicted bulk (``num`` grid points, default 1000, or the points ``grid``) and
    the isolated eigenvalues of the CK G (``kind="ck"``) or the NTK summed over ``groups``
    (``kind="ntk"``), from the statistics of ``inputs`` at the solution ``sol``."""
    check_choice(kind, "kind", ("ck", "ntk"))
    coef = surrogate_coefficients(kind, sol, inputs.stats, groups)
    c1, L, c0 = as_low_rank_coefficients(coef)
    bulk = kernel_bulk(inputs.model, c1=c1, c0=c0, num=1000 if num is None else num, x=grid)
    spikes = isolated_eigenvalues(inputs.model, (c1, L, c0), bulk=bulk)
    return Prediction(kind=kind, bulk=bulk, spikes=spikes, c1=c1, c0=c0, L=readonly(L))


# ----------------------------------------------------------------------------------------
# the observed kernel
# ----------------------------------------------------------------------------------------
def observed_kernel(route: str, kind: str, inputs: SpectralInputs,
                    activation: ActivationLike, sol: FixedPointSolution, *,
                    groups: Iterable[str] | None = None,
                    sampling: Mapping[str, Any] | None = None,
                    max_memory: float | None = None) -> Kernel:
    """The CK G or the NTK of the DEQ on the samples of ``inputs``, by ``route``.

    Every route uses the four-equation solution ``sol`` (its tau and centring), the one of
    the prediction.

    Parameters
    ----------
    route : {"exact", "sampled", "surrogate"}
        "exact": the infinite-width kernel (:func:`rmt_deq.kernels.exact.exact_kernels`);
        "sampled": the Monte-Carlo average over finite-width DEQs
        (:func:`rmt_deq.sampling.deq.sampled_kernel`, options in ``sampling``; ``width``
        required); "surrogate": the CK or NTK surrogate with the statistics of ``inputs``
        (exact for a mixture, else plug-in).
    kind : {"ck", "ntk"}
    inputs : SpectralInputs
        With samples (``inputs.X``).
    activation : name, Activation or callable
        The DEQ's activation (the one ``sol`` was solved for).
    sol : FixedPointSolution
    groups : iterable of {"v", "A", "B"}, optional
        NTK groups (default all).
    sampling : mapping, optional
        Options of the sampler (route "sampled" only).
    max_memory : float, optional
        Memory budget of the exact kernel or the sampler.

    Returns
    -------
    Kernel
        ``.matrix`` is the observed n x n kernel.
    """
    check_choice(route, "observe", OBSERVE_ROUTES)
    check_choice(kind, "kind", ("ck", "ntk"))
    if inputs.X is None:
        raise InvalidParameterError(
            "there are no samples to observe a kernel on: draw a sample of the mixture "
            "(sample_seed / --sample-seed)")
    if sampling is not None and route != "sampled":
        raise InvalidParameterError("sampling options apply to the sampled route only")
    sel = None if kind == "ck" else tuple(NTK_GROUPS if groups is None else groups)
    if route == "exact":
        kw = {} if sel is None else {"groups": sel}
        return exact_kernels(inputs.X, activation, sol.sa, sol.sb, get=(kind,), solution=sol,
                             max_memory=max_memory, **kw)
    if route == "sampled":
        options = dict(sampling or {})
        if "width" not in options:
            raise InvalidParameterError("the sampled route needs a width (--width M)")
        if max_memory is not None:
            options.setdefault("max_memory", max_memory)
        return sampled_kernel(inputs.X, activation, sol.sa, sol.sb, kind=kind, groups=sel,
                              solution=sol, **options)
    if inputs.mixture is not None:
        if kind == "ck":
            return mixture_ck_surrogate(inputs.mixture, inputs.sample, solution=sol)
        return mixture_ntk_surrogate(inputs.mixture, inputs.sample, solution=sol, groups=sel)
    if kind == "ck":
        return plugin_ck_surrogate(inputs.X, inputs.codes, solution=sol)
    return plugin_ntk_surrogate(inputs.X, inputs.codes, solution=sol, groups=sel)


def sampling_record(kernel: Kernel, kind: str, seed: Any) -> dict:
    """What a sampled kernel records of its run: the Monte-Carlo error bar and the
    solver diagnostics (the ``--info`` file of ``rmt-deq kernel`` and ``spectrum``)."""
    info, sol = kernel.info, kernel.solution
    d = {"kind": kind, "method": "sampled", "width": info.width,
         "realizations": info.realizations, "requested": info.requested,
         "family": info.family, "dtype": info.dtype, "seed": seed,
         "activation": sol.activation, "sa": sol.sa, "sb": sol.sb,
         "tau0": kernel.tau0, "tau0_source": kernel.tau0_source, "tau": sol.tau,
         "centring": sol.centring,
         "mc_error": kernel.error[kind], "mc_error_relative": kernel.error_relative[kind],
         "confidence": info.confidence, "stopped_early": info.stopped_early,
         "control_variate": bool(info.control_variate), "backend": info.backend,
         "forward_iterations": [r.report.iterations for r in info.forward],
         "elapsed_s": info.elapsed}
    if kind == "ntk":
        d["groups"] = list(kernel.selected)
        d["group_errors"] = {k: e for k, e in kernel.error.items() if k != "ntk"}
    return d


# ----------------------------------------------------------------------------------------
# the comparison
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SpectrumComparison(Record):
    """Observed eigenvalues (and eigenvectors) of a kernel against its predicted spectrum.

    Attributes
    ----------
    label : str
        What was observed (e.g. "exact CK").
    eigenvalues : ndarray, shape (n,)
        The observed eigenvalues, increasing (read-only).
    distances : SpectralDistances
        Kolmogorov-Smirnov and 1-Wasserstein distances of the observed bulk to the
        predicted one, the observed eigenvalue nearest to each predicted spike left out
        (``w1_relative`` is W1 over the predicted bulk's width).
    predicted_spikes : ndarray, shape (S,)
        The predicted isolated eigenvalues, increasing.
    observed_spikes : ndarray, shape (S,)
        The observed eigenvalue matched to each (:func:`match_spikes`).
    spike_errors : ndarray, shape (S,)
        |observed - predicted| / |predicted|.
    predicted_alignments : ndarray, shape (S, K)
        <u_s, j_a/sqrt(n_a)>^2 predicted (:attr:`Spikes.alignments`).
    observed_alignments : ndarray, shape (S, K), or None
        The same squared cosines for the eigenvectors of the matched eigenvalues (None
        without labels or eigenvectors).
    alignment_errors : ndarray, shape (S,), or None
        max_a |observed - predicted| per spike.
    """

    label: str
    eigenvalues: np.ndarray
    distances: SpectralDistances
    predicted_spikes: np.ndarray
    observed_spikes: np.ndarray
    spike_errors: np.ndarray
    predicted_alignments: np.ndarray
    observed_alignments: np.ndarray | None = None
    alignment_errors: np.ndarray | None = None

    @property
    def max_spike_error(self) -> float | None:
        """The largest relative spike error (None without predicted spikes)."""
        return float(self.spike_errors.max()) if self.spike_errors.size else None

    @property
    def max_alignment_error(self) -> float | None:
        """The largest alignment error (None without spikes or without labels)."""
        if self.alignment_errors is None or not self.alignment_errors.size:
            return None
        return float(self.alignment_errors.max())

    def to_dict(self, eigenvalues: bool = True) -> dict:
        """JSON-ready dictionary (a non-finite number becomes null); ``eigenvalues=False``
        leaves the n observed eigenvalues out."""
        d = super().to_dict()
        d["max_spike_error"] = self.max_spike_error
        d["max_alignment_error"] = self.max_alignment_error
        if not eigenvalues:
            d.pop("eigenvalues")
        return d


def match_spikes(eigenvalues: np.ndarray, positions: np.ndarray,
                 bulk: BulkSpectrum) -> np.ndarray:
    """Indices (into the increasing ``eigenvalues``) of the observed eigenvalue matched to
    each predicted spike (``positions`` increasing).

    Spikes right of the predicted bulk take the largest observed eigenvalues in order (the
    largest spike the largest eigenvalue), spikes left of everything the smallest ones;
    a spike in a gap (between support intervals, or between the atom and the bulk) takes
    the nearest observed eigenvalue not already taken.
    """
    n = eigenvalues.size
    S = positions.size
    if S > n:
        raise InvalidParameterError(
            f"{S} predicted spikes but only {n} observed eigenvalues")
    top = max(b for _, b in bulk.support)
    low = min([a for a, _ in bulk.support] + ([bulk.atom_at] if bulk.atom > 0 else []))
    idx = np.full(S, -1, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    above = np.flatnonzero(positions > top)
    for r, s in enumerate(above[::-1]):
        idx[s] = n - 1 - r
    below = np.flatnonzero(positions < low)
    for r, s in enumerate(below):
        idx[s] = r
    taken[idx[idx >= 0]] = True
    for s in np.flatnonzero(idx < 0):
        free = np.flatnonzero(~taken)
        j = free[np.argmin(np.abs(eigenvalues[free] - positions[s]))]
        idx[s] = j
        taken[j] = True
    return idx


def compare_spectrum(observed: Any, prediction: Prediction, *, labels: Any = None,
                     label: str = "observed") -> SpectrumComparison:
    """Compare an observed kernel (or its eigenvalues) with the predicted spectrum.

    Parameters
    ----------
    observed : ndarray, shape (n, n) or (n,)
        The observed symmetric kernel (eigenvalues and eigenvectors by
        ``numpy.linalg.eigh``), or its eigenvalues (then no alignments).
    prediction : Prediction
    labels : array_like of int, shape (n,), optional
        Classes 0..K-1 of the samples: the observed alignments <u, j_a/sqrt(n_a)>^2 of the
        matched eigenvectors (:func:`rmt_deq.spectra.spikes.observed_alignments`).
    label : str
        What was observed.

    Returns
    -------
    SpectrumComparison
        The bulk distances exclude, for each predicted spike, the observed eigenvalue
        nearest to it (as :func:`rmt_deq.jobs.demo.run_demo` does).
    """
    a = np.asarray(observed, dtype=float)
    vectors = None
    if a.ndim == 2:
        ev, vectors = np.linalg.eigh(0.5 * (a + a.T))
    else:
        ev = np.sort(a.ravel())
    spikes = prediction.spikes
    pos = np.asarray(spikes.positions, dtype=float)
    dist = spectral_distances(ev, prediction.bulk, exclude=pos if pos.size else None)
    idx = match_spikes(ev, pos, prediction.bulk)
    obs = ev[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(obs - pos) / np.abs(pos)
    pred_al = np.asarray(spikes.alignments, dtype=float)          # (S, K)
    obs_al = al_err = None
    if vectors is not None and labels is not None:
        obs_al = observed_alignments(vectors[:, idx], labels, K=pred_al.shape[1])
        al_err = (np.max(np.abs(obs_al - pred_al), axis=1) if pos.size
                  else np.zeros(0))
    return SpectrumComparison(
        label=label, eigenvalues=readonly(ev), distances=dist,
        predicted_spikes=readonly(pos), observed_spikes=readonly(obs),
        spike_errors=readonly(err), predicted_alignments=readonly(pred_al),
        observed_alignments=None if obs_al is None else readonly(obs_al),
        alignment_errors=None if al_err is None else readonly(al_err))
