"""The ``rmt-deq spectrum`` job: the limiting spectrum of a DEQ kernel surrogate from a
mixture specification (SPEC.json) or a data file, as a JSON-ready report (docs/theory.md
§7; docs/spectra.md).

:func:`load_mixture_spec` reads and validates a specification; :func:`spectrum_report` is
the job (memory and output path checked before computing).
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np

from rmt_deq._io import (DATA_ARRAYS, check_output_path, json_numeric_array, read_json,
                        read_npz)
from rmt_deq._validation import (as_data_matrix, as_labels, check_choice, check_memory,
                                 check_variances, memory_budget)
from rmt_deq.data.conventions import check_statistics, scale_note
from rmt_deq.data.mixture import GaussianMixture
from rmt_deq.data.statistics import build_V, compute_psi, plugin_statistics
from rmt_deq.errors import (DataFileError, InvalidParameterError, ShapeMismatchError,
                            UnknownOptionError)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.ck_surrogate import ck_surrogate_coefficients
from rmt_deq.kernels.surrogate import SurrogateCoefficients
from rmt_deq.kernels.ntk_surrogate import ntk_surrogate_coefficients
from rmt_deq.plotting import plot_spectrum, save_figure
from rmt_deq.spectra.bulk import as_low_rank_coefficients, kernel_bulk
from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.spikes import isolated_eigenvalues

__all__ = ["spectrum_report", "load_mixture_spec"]


def load_mixture_spec(spec: Any) -> tuple[Any, np.ndarray]:
    """Read a mixture specification: means (K x p), covs (K x p or K x p x p), sizes (K).

    Parameters
    ----------
    spec : str (path to a JSON file) or mapping
        Keys ``means`` (K rows of p real numbers), ``covs`` (K rows of p variances, or K
        p x p matrices) and ``sizes`` (K non-negative integers n_a, positive sum), nothing
        else.

    Returns
    -------
    (GaussianMixture, sizes)

    Raises
    ------
    DataFileError
        Unreadable file, not valid (strict) JSON, not an object, missing keys, or entries
        that are not numbers (strings, booleans, null).
    UnknownOptionError
        Unknown keys.
    ShapeMismatchError
        Ragged rows, wrong numbers of dimensions, K differing between means, covs, sizes.
    NonFiniteInputError
        NaN/inf or numbers beyond float64.
    InvalidParameterError
        sizes not non-negative integers (booleans are not integers) with a positive sum;
        invalid covariances (negative variances, not symmetric positive semi-definite).
    """
    where = "the mixture spec"
    if isinstance(spec, (str, bytes)) or hasattr(spec, "__fspath__"):
        where = f"the mixture spec {os.fsdecode(spec)!r}"
        spec = read_json(spec, "mixture spec")
    if not isinstance(spec, Mapping):
        raise DataFileError(
            f"{where} must be a JSON object with keys means (K x p), covs (K x p or "
            f"K x p x p) and sizes (K); got {type(spec).__name__}")
    missing = [k for k in _SPEC_KEYS if k not in spec]
    if missing:
        raise DataFileError(
            f"{where} needs keys means (K x p), covs (K x p or K x p x p) and sizes (K); "
            f"missing {missing}")
    unknown = sorted(map(str, set(spec) - set(_SPEC_KEYS)))
    if unknown:
        raise UnknownOptionError(
            f"unknown key(s) {unknown} in {where}; allowed: means, covs, sizes")
    means = json_numeric_array(spec["means"], "the spec's means", (2,))
    covs = json_numeric_array(spec["covs"], "the spec's covs", (2, 3))
    sizes = _spec_sizes(spec["sizes"])
    if not (means.shape[0] == covs.shape[0] == sizes.shape[0]):
        raise ShapeMismatchError(
            f"the mixture spec has K = {means.shape[0]} means, {covs.shape[0]} covs and "
            f"{sizes.shape[0]} sizes; give one of each per class")
    mix = GaussianMixture(means, covs, sizes / sizes.sum())
    return mix, sizes


_SPEC_KEYS = ("means", "covs", "sizes")
#: the largest class size accepted (exactly representable in float64)
_MAX_SIZE = 2 ** 53


def _spec_sizes(value: Any) -> np.ndarray:
    """Class sizes: a non-empty list of non-negative integers (not booleans; integral
    floats accepted), positive sum."""
    msg = (f"sizes must be a list of non-negative integers (n_a per class) with a positive "
           f"sum, each at most 2^53; got {value!r:.80}")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf" or value.ndim != 1:
            raise InvalidParameterError(msg)
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidParameterError(msg)
    out = []
    for v in value:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                 np.floating)):
            raise InvalidParameterError(msg)
        if isinstance(v, (float, np.floating)):
            if not (math.isfinite(v) and float(v).is_integer()):
                raise InvalidParameterError(msg)
            v = int(v)
        if not 0 <= v <= _MAX_SIZE:
            raise InvalidParameterError(msg)
        out.append(int(v))
    sizes = np.array(out, dtype=np.int64)
    if sizes.sum() == 0:
        raise InvalidParameterError(msg)
    return sizes


def _load_data(data: Any) -> dict:
    """The data arrays of ``spectrum_report``: an .npz path (:func:`rmt_deq._io.read_npz`)
    or a mapping, with X and labels, optionally means and covs, nothing else."""
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        return read_npz(data, "data", required=("X", "labels"))
    if not isinstance(data, Mapping):
        raise DataFileError("data must be an .npz path or a mapping with X and labels")
    if "X" not in data or "labels" not in data:
        raise DataFileError(
            f"the data needs X (p x n, columns are samples) and labels (n,); found "
            f"{sorted(map(str, data))}")
    unknown = sorted(map(str, set(data) - set(DATA_ARRAYS)))
    if unknown:
        raise UnknownOptionError(
            f"unknown array(s) {unknown} in the data; allowed: {', '.join(DATA_ARRAYS)}")
    return dict(data)


def _coefficients(kind: str, sol: Any, stats: Any, groups: Any) -> Any:
    """The surrogate's coefficients: the CK G form (docs/theory.md §4) or the NTK summed
    over ``groups`` (§5)."""
    if kind == "ck":
        return ck_surrogate_coefficients(sol, stats, form="G")
    kw = {} if groups is None else {"groups": tuple(groups)}
    return ntk_surrogate_coefficients(sol, stats, **kw)


#: default grid size of the density in :func:`spectrum_report`
_DEFAULT_NUM = 1000


def _check_report_memory(num: Any, grid: Any, K: int, p: int, n: int, eigen: bool,
                         budget: float) -> None:
    """Memory of the density grid (per point: the K-vector unknowns of the equations of
    docs/theory.md §7.3 and their derived complex arrays, the report's lists and JSON
    text) and, with ``eigen``, of the figure's n x n surrogate and its eigen-decomposition,
    against ``budget``."""
    if grid is not None:
        N = int(np.size(grid))
    elif isinstance(num, (int, np.integer)) and not isinstance(num, bool):
        N = int(num)
    else:
        N = _DEFAULT_NUM             # a bad num is kernel_bulk's to reject
    check_memory(float(N) * (16.0 * (6 * K + 12) + 200.0), budget,
                 f"the arrays of a {N:,}-point density grid",
                 "use a smaller num (--num), or raise max_memory (--max-memory)")
    if eigen:
        check_memory(8.0 * (5.0 * n * n + 3.0 * p * n), budget,
                     f"the n x n surrogate and its eigen-decomposition for the figure's "
                     f"histogram (n = {n:,} samples)",
                     "draw the figure on fewer samples (or no histogram: --mixture without "
                     "--sample-seed), or raise max_memory (--max-memory)")


def spectrum_report(activation: Any, sa: float, sb: float | None = None, *,
                    mixture: Any = None, data: Any = None, kind: str = "ck",
                    groups: Any = None, num: int | None = None, grid: Any = None,
                    max_atoms: int | None = None, data_covariance: str | None = None,
                    plot: str | None = None, sample_seed: int | None = None,
                    max_memory: float | None = None) -> dict:
    """The limiting spectrum of a DEQ kernel surrogate, as a JSON-ready dict (CLI job).

    ``rmt-deq spectrum --activation A --sa S (--mixture SPEC.json | --data FILE.npz)
    --kind ck|ntk [--json] [--plot FIG.png]`` is this function.

    Parameters
    ----------
    activation : name, Activation or callable
    sa : float
        Variance of the recurrent weights.
    sb : float, optional
        Variance of the input weights (default 1 - sa).
    mixture : str or mapping, optional
        Path to SPEC.json (or the mapping) with ``means`` (K x p), ``covs`` (K x p
        diagonals or K x p x p) and ``sizes`` (n_a per class): exact statistics.
    data : str or mapping, optional
        Path to FILE.npz (or the mapping) with ``X`` (p x n, columns are samples) and
        ``labels`` (n,), optionally ``means``/``covs`` (then used as exact).  Without them
        the statistics are plug-in estimates
        (:func:`~rmt_deq.data.mixture.plugin_statistics`), the means are the class averages
        (their noise removed from the spike equation) and the bulk uses the estimated
        class covariances per ``data_covariance``.
    kind : {"ck", "ntk"}
        "ck": the Implicit-CK G (docs/theory.md §4, G form); "ntk": the NTK (§5, all
        groups or ``groups``), through :mod:`rmt_deq.kernels.ntk_surrogate`.
    groups : sequence of {"v", "A", "B"}, optional
        NTK parameter groups (kind="ntk" only; default all).
    num : int, optional
        Grid size of the density (default 1000); not with ``grid``.
    grid : array_like, optional
        Explicit grid (kernel units) instead.
    max_atoms : int, optional
        See :func:`~rmt_deq.spectra.model.gram_model` (approximate, very large p).
    data_covariance : {"diagonal", "sample"}, optional
        Data without means/covs only: "diagonal" (default) uses the per-coordinate class variances
        (exact for diagonal covariances, O(K p) per evaluation); "sample" the full class
        sample covariances (O(K p^3) per evaluation unless they commute).  Both are plug-in
        estimates: the sample covariance of n_a ~ p samples is not the population one, so
        the predicted bulk is biased unless n_a >> p.
    plot : str, optional
        Write a figure (predicted density, atom, spikes; with ``data``, also the histogram
        of the surrogate's eigenvalues on that data) to this path, in the format of its
        suffix.  The path is checked before anything is computed and written atomically.
    sample_seed : int, optional
        With ``mixture`` and ``plot`` only: draw one sample with this seed and histogram
        the eigenvalues of its surrogate in the figure.
    max_memory : float, optional
        Memory budget in bytes (default :data:`rmt_deq._validation.DEFAULT_MAX_MEMORY`) of
        the density grid and, for the figure's histogram, the n x n surrogate and its
        eigen-decomposition; checked before they are computed.

    Returns
    -------
    dict
        ``x``, ``density`` (grid and bulk density of the kernel), ``atom`` (mass, 0 if
        none), ``atom_at``, ``support`` (list of [lo, hi]), ``spikes`` (positions),
        ``spike_alignments`` (per spike, per class <u, j_a/sqrt(n_a)>^2), ``kind``,
        ``activation``, ``sa``, ``sb``, ``p``, ``n``, ``sizes``, ``coefficients`` (c1, c0,
        low_rank), ``model`` (backend summary), ``mass``, ``notes``, ``figure``.

    Raises
    ------
    InvalidParameterError
        Neither or both of mixture/data; an option that does not apply (groups without
        kind="ntk", num with grid, sample_seed without mixture and plot, data_covariance
        without plug-in data); bad parameters.
    UnknownOptionError
        Unknown kind / data_covariance / keys; kind="ntk" without the NTK module.
    DataFileError
        The mixture spec or the data file cannot be read or is malformed.
    MemoryBudgetError
        The grid or the figure's eigen-decomposition would exceed ``max_memory``.
    OutputPathError
        ``plot`` cannot be written (checked first).
    """
    check_choice(kind, "kind", ("ck", "ntk"))
    if data_covariance is not None:
        check_choice(data_covariance, "data_covariance", ("diagonal", "sample"))
    if groups is not None and kind != "ntk":
        raise InvalidParameterError("groups applies to kind='ntk' only")
    if (mixture is None) == (data is None):
        raise InvalidParameterError("give exactly one of mixture (SPEC.json) and data (FILE.npz)")
    if num is not None and grid is not None:
        raise InvalidParameterError("give num (grid size) or grid (the points), not both")
    if sample_seed is not None and (mixture is None or plot is None):
        raise InvalidParameterError(
            "sample_seed draws the sample histogrammed in the figure of a mixture spec: "
            "it needs mixture and plot (with data, the data's own eigenvalues are drawn)")
    if plot is not None:
        check_output_path(plot, "plot", figure=True)
    budget = memory_budget(max_memory)
    sa_f, sb_f = check_variances(sa, sb)
    notes = []
    sample_ev = None
    if mixture is not None:
        mix, sizes = load_mixture_spec(mixture)
        if data_covariance is not None:
            raise InvalidParameterError(
                "data_covariance applies to data without means/covs (plug-in statistics); "
                "a mixture spec has exact covariances")
        _check_report_memory(num, grid, mix.K, mix.p, int(sizes.sum()),
                             plot is not None and sample_seed is not None, budget)
        stats = mix.statistics(sizes)
        model = gram_model(mix.covs, sizes, means=mix.means, max_atoms=max_atoms)
        source = "mixture"
    else:
        d = _load_data(data)
        X = as_data_matrix(d["X"])
        codes, _ = as_labels(d["labels"], X.shape[1], p=X.shape[0])
        notes += [m for m in (scale_note(X),) if m is not None]
        K = int(codes.max()) + 1
        sizes = np.bincount(codes, minlength=K).astype(np.int64)
        if ("means" in d) != ("covs" in d):
            raise InvalidParameterError("give both means and covs in the data file, or neither")
        if "means" in d and data_covariance is not None:
            raise InvalidParameterError(
                "data_covariance applies to data without means/covs (plug-in statistics); "
                "this data file gives exact means and covs")
        _check_report_memory(num, grid, K, X.shape[0], X.shape[1], plot is not None, budget)
        if "means" in d:
            check_statistics(X, codes, d["means"], d["covs"])
            mix = GaussianMixture(d["means"], d["covs"], sizes / sizes.sum())
            stats = mix.statistics(sizes)
            model = gram_model(mix.covs, sizes, means=mix.means, max_atoms=max_atoms)
            source = "data (exact means/covs)"
        else:
            est = plugin_statistics(X, codes)
            stats = est.statistics
            W = est.omega
            p = X.shape[0]
            data_covariance = data_covariance or "diagonal"
            if data_covariance == "diagonal":
                covs = np.stack([np.sum(W[:, codes == a] ** 2, axis=1) / (sizes[a] - 1)
                                 for a in range(K)])
            else:
                covs = np.stack([W[:, codes == a] @ W[:, codes == a].T / (sizes[a] - 1)
                                 for a in range(K)])
            model = gram_model(covs, sizes, means=est.means, mean_bias=p / sizes,
                               trace_sq=np.diag(stats.T), max_atoms=max_atoms)
            source = f"data (plug-in statistics, {data_covariance} covariances)"
            notes.append("plug-in class covariances: the predicted bulk is biased unless "
                         "n_a >> p")
    sol = solve_four_equations(activation, sa_f, stats.tau0, sb_f)
    coef = _coefficients(kind, sol, stats, groups)
    c1, L, c0 = as_low_rank_coefficients(coef)
    bulk = kernel_bulk(model, c1=c1, c0=c0, num=_DEFAULT_NUM if num is None else num, x=grid)
    spikes = isolated_eigenvalues(model, (c1, L, c0), bulk=bulk)
    if bulk.atom > 0:
        notes.append(
            f"n > p: the surrogate has an atom of mass {bulk.atom:.6g} at c0 = {c0:.6g}; the "
            f"exact kernel spreads it over a width O(p^-1/2) (compare with 1-Wasserstein, "
            f"not Kolmogorov-Smirnov)")
    if data is not None and plot is not None:
        sample_ev = _data_eigenvalues(d, codes, sol, stats, kind, groups)
    elif plot is not None and sample_seed is not None:
        sample_ev = _sample_eigenvalues(mix, sizes, sol, kind, groups, int(sample_seed))
    figure = None
    if plot is not None:
        title = (f"{kind.upper()} of {sol.activation}, sa = {sa_f:g}: p = {model.p}, "
                 f"n = {model.n}")
        what = ("surrogate on the data" if data is not None
                else f"surrogate on one sample (seed {sample_seed})")
        ax = plot_spectrum(bulk, spikes, eigenvalues=sample_ev, title=title, label=what)
        save_figure(ax.figure, str(plot))
        figure = str(plot)
    return {
        "kind": kind, "activation": sol.activation, "sa": sa_f, "sb": sb_f,
        "source": source, "p": model.p, "n": model.n, "sizes": model.sizes.tolist(),
        "x": bulk.x.tolist(), "density": bulk.density.tolist(),
        "atom": float(bulk.atom), "atom_at": float(bulk.atom_at) if bulk.atom > 0 else None,
        "support": [[float(a), float(b)] for a, b in bulk.support],
        "spikes": spikes.positions.tolist(),
        "spike_alignments": spikes.alignments.tolist(),
        "coefficients": {"c1": c1, "c0": c0, "low_rank": L.tolist()},
        "mass": bulk.mass, "model": model.to_dict(), "notes": notes, "figure": figure,
    }


def _surrogate_matrix(kind: str, X: np.ndarray, V: np.ndarray, sol: Any, stats: Any,
                      groups: Any) -> np.ndarray:
    coef = _coefficients(kind, sol, stats, groups)
    if isinstance(coef, SurrogateCoefficients):
        return coef.matrix(X, V)
    c1, L, c0 = as_low_rank_coefficients(coef)
    M = c1 * (X.T @ X) + V @ L @ V.T
    M[np.diag_indices_from(M)] += c0
    return 0.5 * (M + M.T)


def _data_eigenvalues(d: Mapping, codes: np.ndarray, sol: Any, stats: Any, kind: str,
                      groups: Any) -> np.ndarray:
    """Eigenvalues of the surrogate on the data file's own samples (the figure's
    histogram)."""
    X = np.asarray(d["X"], dtype=float)
    p = X.shape[0]
    if "means" in d:
        omega = math.sqrt(p) * X - np.asarray(d["means"], float)[codes].T
        covs = np.asarray(d["covs"], float)
        tr = covs.sum(axis=1) / p if covs.ndim == 2 else np.trace(covs, axis1=1, axis2=2) / p
        psi = compute_psi(omega, codes, tr)
    else:
        psi = np.asarray(plugin_statistics(X, codes).psi)
    V = build_V(codes, psi, p, stats.K)
    return np.linalg.eigvalsh(_surrogate_matrix(kind, X, V, sol, stats, groups))


def _sample_eigenvalues(mix: Any, sizes: np.ndarray, sol: Any, kind: str, groups: Any,
                        seed: int) -> np.ndarray:
    s = mix.sample(sizes=sizes, rng=seed)
    stats = mix.statistics(s)
    V = mix.V(s)
    return np.linalg.eigvalsh(_surrogate_matrix(kind, np.asarray(s.X), V, sol, stats, groups))
