"""The ``rmt-deq spectrum`` job: the limiting spectrum of a DEQ kernel from a mixture
specification (SPEC.json) or a data file, set against the observed eigenvalues of the
kernel on the data, as a JSON-ready report (docs/theory.md §7; docs/spectra.md).

:func:`load_mixture_spec` reads and validates a specification; :func:`spectrum_report` is
the job (memory and output path checked before computing); :func:`report_lines` its text
report.  The observed kernel (exact, sampled or surrogate) and the distances come from
:mod:`rmt_deq.experiments.observed`.
"""
from __future__ import annotations

import argparse
import math
import os
from typing import Any, Mapping

import numpy as np

from rmt_deq._io import (DATA_ARRAYS, check_output_path, json_numeric_array, read_json)
from rmt_deq._validation import (as_data_matrix, as_labels, check_choice, check_memory,
                                 check_variances, memory_budget)
from rmt_deq.data.conventions import scale_note
from rmt_deq.data.labelled import data_arrays
from rmt_deq.data.mixture import GaussianMixture
from rmt_deq.errors import (DataFileError, InvalidParameterError, ShapeMismatchError,
                            UnknownOptionError)
from rmt_deq.experiments.observed import (OBSERVE_ROUTES, compare_spectrum, data_inputs,
                                          mixture_inputs, observed_kernel, predict_spectrum,
                                          sampling_record)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.jobs.kernel import KINDS
from rmt_deq.jobs.options import (MEMORY_DEFAULT, add_sampled_options, groups_help,
                                  memory_size)
from rmt_deq.kernels.exact import NTK_GROUPS
from rmt_deq.plotting import journal_style, new_figure, plot_spectrum, save_figure

__all__ = ["spectrum_report", "load_mixture_spec", "report_lines", "default_observe",
           "OBSERVE_CHOICES", "add_spectrum_parser"]


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


def load_data(data: Any) -> dict:
    """The data arrays of ``spectrum_report`` and ``check``: ``"digits"`` (the built-in
    data, :func:`rmt_deq.data.labelled.data_arrays`), an .npz path
    (:func:`rmt_deq._io.read_npz`) or a mapping, with X (p x n, columns are samples) and
    labels, optionally means and covs, nothing else."""
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        return data_arrays(data, "data", required=("X", "labels"))
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


#: default grid size of the density in :func:`spectrum_report`
_DEFAULT_NUM = 1000


def _check_report_memory(num: Any, grid: Any, K: int, p: int, n: int, eigen: bool,
                         budget: float) -> None:
    """Memory of the density grid (per point: the K-vector unknowns of the equations of
    docs/theory.md §7.3 and their derived complex arrays, the report's lists and JSON
    text) and, with ``eigen``, of the observed n x n kernel and its eigen-decomposition,
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
                     f"the observed n x n kernel and its eigen-decomposition "
                     f"(n = {n:,} samples)",
                     "observe fewer samples, or none (--observe none; with --mixture: no "
                     "--sample-seed), or raise max_memory (--max-memory)")


#: what ``observe`` may be: a route of :data:`OBSERVE_ROUTES`, or "none" (the prediction
#: alone)
OBSERVE_CHOICES = OBSERVE_ROUTES + ("none",)
#: how the observed kernels are named in reports and figures
_KERNEL_NAMES = {"ck": "CK G", "ntk": "NTK"}


def default_observe(data: Any, sample_seed: Any) -> str:
    """What ``observe=None`` means: "exact" with data or with a sample of a mixture (the
    prediction over the kernel it predicts), else "none" (a mixture spec alone has no
    samples)."""
    return "exact" if data is not None or sample_seed is not None else "none"


def _check_observe(observe: Any, mixture: Any, data: Any, sample_seed: Any,
                   sampling: Any) -> str:
    """Validate ``observe`` with the options it goes with; return it resolved."""
    if sample_seed is not None and (isinstance(sample_seed, bool) or not isinstance(
            sample_seed, (int, np.integer)) or sample_seed < 0):
        raise InvalidParameterError(
            f"sample_seed must be a non-negative integer, got {sample_seed!r}")
    if sample_seed is not None and mixture is None:
        raise InvalidParameterError(
            "sample_seed draws the sample of a mixture spec the kernel is observed on: it "
            "needs mixture (with data, the data's own samples are observed)")
    obs = default_observe(data, sample_seed) if observe is None else observe
    check_choice(obs, "observe", OBSERVE_CHOICES)
    if obs != "none" and mixture is not None and sample_seed is None:
        raise InvalidParameterError(
            f"observe={obs!r} with a mixture spec needs sample_seed (--sample-seed N) to "
            f"draw the sample the kernel is observed on")
    if obs == "none" and sample_seed is not None:
        raise InvalidParameterError(
            "sample_seed draws a sample to observe a kernel on, but observe='none'; drop "
            "sample_seed or choose observe exact, sampled or surrogate")
    if sampling is not None and obs != "sampled":
        raise InvalidParameterError(
            f"the sampling options (width, realizations, ...) apply to observe='sampled' "
            f"only (got observe={obs!r}); drop them or observe the sampled kernel")
    if obs == "sampled" and not (isinstance(sampling, Mapping) and "width" in sampling):
        raise InvalidParameterError(
            "observe='sampled' needs the network width: sampling={'width': m, ...} "
            "(--width M)")
    return obs


def spectrum_report(activation: Any, sa: float, sb: float | None = None, *,
                    mixture: Any = None, data: Any = None, kind: str = "ck",
                    groups: Any = None, num: int | None = None, grid: Any = None,
                    max_atoms: int | None = None, data_covariance: str | None = None,
                    plot: str | None = None, sample_seed: int | None = None,
                    observe: str | None = None, sampling: Mapping[str, Any] | None = None,
                    max_memory: float | None = None) -> dict:
    """The limiting spectrum of a DEQ kernel, as a JSON-ready dict, and how the kernel's
    observed eigenvalues compare with it (CLI job).

    ``rmt-deq spectrum --activation A --sa S (--mixture SPEC.json | --data FILE.npz)
    --kind ck|ntk [--observe exact|sampled|surrogate|none] [--json] [--plot FIG.png]`` is
    this function.

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
        Write a figure (predicted density, atom, spikes and, when a kernel is observed,
        the histogram of its eigenvalues with its outliers and a zoom on the isolated
        eigenvalues) to this path, in the format of its suffix.  The path is checked
        before anything is computed and written atomically.
    sample_seed : int, optional
        With ``mixture`` only: draw one sample (the spec's class sizes) with this seed and
        observe the kernel on it.
    observe : {"exact", "sampled", "surrogate", "none"}, optional
        The kernel whose eigenvalues are set against the prediction, on the data's
        samples (or the mixture's sample), at the four-equation solution of the
        prediction (:func:`rmt_deq.experiments.observed.observed_kernel`): "exact" the
        infinite-width kernel, "sampled" the Monte-Carlo average of finite-width DEQs,
        "surrogate" the CK or NTK surrogate; "none" the prediction alone.  Default
        (:func:`default_observe`): "exact" with data or with ``sample_seed``, else "none".
    sampling : mapping, optional
        observe="sampled" only: options of :func:`rmt_deq.sampling.deq.sampled_kernel`
        (``width`` required; realizations, family, rng, dtype, target_error, confidence,
        control_variate (CK), progress, ...).
    max_memory : float, optional
        Memory budget in bytes (default :data:`rmt_deq._validation.DEFAULT_MAX_MEMORY`) of
        the density grid and the observed n x n kernel and its eigen-decomposition;
        checked before they are computed.

    Returns
    -------
    dict
        ``x``, ``density`` (grid and bulk density of the kernel), ``atom`` (mass, 0 if
        none), ``atom_at``, ``support`` (list of [lo, hi]), ``spikes`` (positions),
        ``spike_alignments`` (per spike, per class <u, j_a/sqrt(n_a)>^2), ``kind``,
        ``activation``, ``sa``, ``sb``, ``p``, ``n``, ``sizes``, ``coefficients`` (c1, c0,
        low_rank), ``model`` (backend summary), ``mass``, ``notes``, ``figure`` and
        ``observed``: None, or the comparison
        (:meth:`rmt_deq.experiments.observed.SpectrumComparison.to_dict`: ``eigenvalues``,
        ``distances`` (``ks``, ``w1``, ``w1_relative``, ...), ``predicted_spikes``,
        ``observed_spikes``, ``spike_errors``, ``predicted_alignments``,
        ``observed_alignments``, ``alignment_errors``, ``max_spike_error``,
        ``max_alignment_error``) with ``route`` and, when sampled, ``sampling`` (the
        Monte-Carlo error bar and diagnostics).

    Raises
    ------
    InvalidParameterError
        Neither or both of mixture/data; an option that does not apply (groups without
        kind="ntk", num with grid, sample_seed without mixture or with observe="none",
        observe with a mixture but no sample_seed, sampling without observe="sampled",
        data_covariance without plug-in data); bad parameters.
    UnknownOptionError
        Unknown kind / observe / data_covariance / keys.
    DataFileError
        The mixture spec or the data file cannot be read or is malformed.
    MemoryBudgetError
        The grid or the observed kernel would exceed ``max_memory``.
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
    obs = _check_observe(observe, mixture, data, sample_seed, sampling)
    if plot is not None:
        check_output_path(plot, "plot", figure=True)
    budget = memory_budget(max_memory)
    sa_f, sb_f = check_variances(sa, sb)
    if mixture is not None:
        mix, sizes = load_mixture_spec(mixture)
        if data_covariance is not None:
            raise InvalidParameterError(
                "data_covariance applies to data without means/covs (plug-in statistics); "
                "a mixture spec has exact covariances")
        _check_report_memory(num, grid, mix.K, mix.p, int(sizes.sum()), obs != "none",
                             budget)
        sample = None if obs == "none" else mix.sample(sizes=sizes, rng=int(sample_seed))
        inputs = mixture_inputs(mix, sizes, sample, max_atoms=max_atoms)
    else:
        d = load_data(data)
        X = as_data_matrix(d["X"])
        codes, _ = as_labels(d["labels"], X.shape[1], p=X.shape[0])
        K = int(codes.max()) + 1
        _check_report_memory(num, grid, K, X.shape[0], X.shape[1], obs != "none", budget)
        inputs = data_inputs(X, codes, d.get("means"), d.get("covs"),
                             data_covariance=data_covariance, max_atoms=max_atoms)
    notes = [m for m in (scale_note(inputs.X),) if m is not None] if data is not None else []
    notes += list(inputs.notes)
    sol = solve_four_equations(activation, sa_f, inputs.stats.tau0, sb_f)
    pred = predict_spectrum(kind, sol, inputs, groups=groups, num=num, grid=grid)
    bulk, spikes = pred.bulk, pred.spikes
    model = inputs.model
    if bulk.atom > 0:
        notes.append(
            f"n > p: the surrogate has an atom of mass {bulk.atom:.6g} at c0 = {pred.c0:.6g}; "
            f"the exact kernel spreads it over a width O(p^-1/2) (compare with "
            f"1-Wasserstein, not Kolmogorov-Smirnov)")
    observed = None
    comparison = None
    if obs != "none":
        where = ("on the data" if data is not None
                 else f"on one sample (seed {int(sample_seed)})")
        what = f"{obs} {_KERNEL_NAMES[kind]} {where}"
        if obs == "sampled":
            what = (f"sampled {_KERNEL_NAMES[kind]} (m = {sampling['width']}, R = "
                    f"{sampling.get('realizations', 1)}) {where}")
        ker = observed_kernel(obs, kind, inputs, activation, sol, groups=groups,
                              sampling=sampling, max_memory=budget)
        comparison = compare_spectrum(ker.matrix, pred, labels=inputs.codes, label=what)
        observed = {"route": obs, **comparison.to_dict()}
        if obs == "sampled":
            observed["sampling"] = sampling_record(ker, kind, sampling.get("rng"))
            notes.append(f"sampled at width m = {ker.info.width}: the Monte-Carlo error bar "
                         f"does not include the finite-width bias O(1/m)")
    figure = None
    if plot is not None:
        title = (f"{kind.upper()} of {sol.activation}, sa = {sa_f:g}: p = {model.p}, "
                 f"n = {model.n}")
        sets = None
        if comparison is not None:
            dist = comparison.distances
            title += (f"\n{comparison.label}: bulk Kolmogorov-Smirnov {dist.ks:.3f}, "
                      f"Wasserstein-1 {dist.w1_relative:.4f} bulk widths")
            sets = {comparison.label: comparison.eigenvalues}
        with journal_style():        # full width: room for the zoom's printed values
            fig, ax = new_figure("full", 0.55)
            plot_spectrum(bulk, spikes, eigenvalues=sets, title=title, ax=ax)
        save_figure(fig, str(plot))
        figure = str(plot)
    return {
        "kind": kind, "activation": sol.activation, "sa": sa_f, "sb": sb_f,
        "source": inputs.source, "p": model.p, "n": model.n, "sizes": model.sizes.tolist(),
        "x": bulk.x.tolist(), "density": bulk.density.tolist(),
        "atom": float(bulk.atom), "atom_at": float(bulk.atom_at) if bulk.atom > 0 else None,
        "support": [[float(a), float(b)] for a, b in bulk.support],
        "spikes": spikes.positions.tolist(),
        "spike_alignments": spikes.alignments.tolist(),
        "coefficients": {"c1": pred.c1, "c0": pred.c0, "low_rank": pred.L.tolist()},
        "mass": bulk.mass, "model": model.to_dict(), "notes": notes, "figure": figure,
        "observed": observed,
    }


def report_lines(rep: Mapping[str, Any]) -> list[str]:
    """The text report of :func:`spectrum_report` (what ``rmt-deq spectrum`` prints)."""
    lines = [f"{rep['kind']} of {rep['activation']}, sa = {rep['sa']:g}, sb = {rep['sb']:g}: "
             f"p = {rep['p']}, n = {rep['n']} ({rep['source']})",
             "  support: " + ", ".join(f"[{a:.6g}, {b:.6g}]" for a, b in rep["support"])]
    lines.append(f"  atom: mass {rep['atom']:.6g} at {rep['atom_at']:.6g}" if rep["atom"] > 0
                 else "  atom: none")
    lines.append("  isolated eigenvalues: "
                 + (", ".join(f"{s:.6g}" for s in rep["spikes"]) if rep["spikes"] else "none"))
    o = rep.get("observed")
    if o:
        d = o["distances"]
        lines.append(f"  observed: {o['label']} ({len(o['eigenvalues'])} eigenvalues)")
        if o.get("sampling"):
            s = o["sampling"]
            lines.append(f"    sampled: m = {s['width']}, {s['realizations']} realizations "
                         f"({s['family']}, seed {s['seed']}); Monte-Carlo error "
                         f"{s['mc_error']:.3g} ({s['mc_error_relative']:.2%} of the norm, "
                         f"{s['confidence']:.0%} confidence)")
        lines.append(f"    bulk vs prediction: Kolmogorov-Smirnov {d['ks']:.6g}, "
                     f"1-Wasserstein {d['w1_relative']:.6g} of the bulk width "
                     f"({d['n_used']} eigenvalues; the one nearest each predicted "
                     f"isolated eigenvalue left out)")
        for s, (pp, ob, er) in enumerate(zip(o["predicted_spikes"], o["observed_spikes"],
                                             o["spike_errors"])):
            text = (f"    isolated eigenvalue {s + 1}: predicted {pp:.6g}, observed "
                    f"{ob:.6g}, relative error {er:.3g}")
            if o.get("observed_alignments") is not None:
                pa = ", ".join(f"{v:.3f}" for v in o["predicted_alignments"][s])
                oa = ", ".join(f"{v:.3f}" for v in o["observed_alignments"][s])
                text += f"; alignments <u, j_a/sqrt(n_a)>^2 predicted [{pa}] observed [{oa}]"
            lines.append(text)
    for note in rep["notes"]:
        lines.append(f"  note: {note}")
    return lines


def add_spectrum_parser(sub: Any, parents: list, help: str) -> argparse.ArgumentParser:
    """Add ``spectrum`` to the CLI's sub-commands ``sub`` (``parents``: the DEQ options;
    ``help``: the one-line help)."""
    sp = sub.add_parser(
        "spectrum", parents=parents, help=help,
        description=(
            "The limiting spectral density, the point atom, the support intervals and the "
            "isolated eigenvalues (spikes) of the DEQ's CK G (--kind ck) or NTK (--kind "
            "ntk), computed from the mixture statistics alone (docs/spectra.md).  SPEC.json "
            "holds means (K x p), covs (K x p diagonals or K x p x p) and sizes (n_a per "
            "class); FILE.npz holds X (p x n, columns are samples) and labels (n,), "
            "optionally means and covs (else plug-in estimates).  Units: x_i = (mu_a + "
            "omega_i)/sqrt(p), omega_i ~ N(0, C_a): means are the class means of sqrt(p) "
            "x_i and covs its class covariances.  --observe sets the eigenvalues of a "
            "kernel on the data's samples (a sample of the mixture with --sample-seed) "
            "against the prediction, at the same four-equation solution: exact "
            "(infinite width; the default with --data or --sample-seed), sampled "
            "(finite-width DEQs, the sampled options below), surrogate, or none (the "
            "prediction alone; the default with --mixture alone); the report gives the "
            "Kolmogorov-Smirnov and 1-Wasserstein distances of the bulk (the eigenvalue "
            "nearest each predicted spike left out), each spike's relative error and the "
            "eigenvector alignments with the class indicators.  --json prints one object "
            "with x, density, atom, atom_at, support, spikes, observed (and more)."))
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--mixture", help="SPEC.json (means, covs, sizes)")
    src.add_argument("--data", help="FILE.npz (X, labels[, means, covs])")
    sp.add_argument("--kind", choices=KINDS, default="ck")
    sp.add_argument("--groups", default=None, help=groups_help(NTK_GROUPS))
    sp.add_argument("--num", type=int, default=None,
                    help="grid points of the density (default 1000)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--plot", default=None,
                    help="write a figure; format from the suffix (.png, .pdf, .svg, ...)")
    sp.add_argument("--observe", choices=OBSERVE_CHOICES, default=None,
                    help="the kernel observed on the samples: exact, sampled, surrogate or "
                         "none (default exact with --data or --sample-seed, else none)")
    sp.add_argument("--sample-seed", type=int, default=None,
                    help="with --mixture: draw one sample (the spec's sizes) with this seed "
                         "and observe the kernel on it")
    sp.add_argument("--max-memory", type=memory_size, default=None,
                    help="memory budget of the density grid and the observed kernel "
                         f"(e.g. 8G; default {MEMORY_DEFAULT})")
    add_sampled_options(sp, "sampled kernel (--observe sampled only)")
    return sp
