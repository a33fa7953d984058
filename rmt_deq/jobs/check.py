"""The ``rmt-deq check`` job: one DEQ configuration through the whole theory, one table of
every distance with its expected size (:mod:`rmt_deq.experiments.check`).

* :func:`add_check_parser` adds the command to the ``rmt-deq`` parser (the sampled-kernel
  options are the shared group of :mod:`rmt_deq.jobs.options`);
* :func:`check_job` is the job as a function: it reads the data (a mixture spec, of which
  one sample is drawn, or a data file), checks the report folder before computing, runs
  the check and writes the report;
* :func:`check_command` is what the command line runs (output on the streams it is given).

Report files (``--report DIR``, exactly these names, each written atomically):
:data:`REPORT_FILES`.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Mapping

from rmt_deq import _io
from rmt_deq.errors import InvalidParameterError, OutputPathError
from rmt_deq.experiments.check import CHECK_DEFAULTS, CheckResult, format_table, run_check
from rmt_deq.jobs.spectrum import load_data, load_mixture_spec
from rmt_deq.jobs.options import (MEMORY_DEFAULT, ProgressBar, add_sampled_options,
                                  memory_size, sampled_values)

__all__ = ["REPORT_FILES", "add_check_parser", "report_paths", "check_job", "check_lines",
           "check_command"]

#: the files ``--report DIR`` writes: the table as text and as JSON, the figure as PDF and
#: PNG
REPORT_FILES: Mapping[str, str] = {"table": "check_table.txt", "json": "check.json",
                                   "pdf": "check.pdf", "png": "check.png"}
#: sampled-kernel options ``rmt-deq check`` does not offer (its report is the record; the
#: control variate is for the CK alone, the check samples CK and NTK together)
_OMITTED = ("info", "control_variate", "workers", "scheduler", "backend")


def add_check_parser(sub: Any, parents: list, help: str) -> argparse.ArgumentParser:
    """Add ``check`` to the sub-commands ``sub`` (``parents``: the DEQ options; ``help``:
    the one-line help)."""
    c = sub.add_parser(
        "check", parents=parents, help=help,
        description=(
            "Solve the four equations at the data's tau0, build the CK and NTK surrogates, "
            "compute the exact infinite-width kernels and the sampled finite-width DEQ "
            "(one Monte-Carlo run for both kernels), set the predicted spectra against the "
            "exact and sampled eigenvalues, and design a shallow network for the CK (every "
            "registered family is tried; the feasible one whose exact CK is closest to the "
            "DEQ's is kept).  Prints one table: each distance, its expected size (O(p^-1/2) "
            "for the surrogates, the Monte-Carlo error bar for the sampled kernels, ...), "
            "their ratio and whether the distance is within it.  SPEC.json holds means, "
            "covs and sizes (one sample is drawn with --sample-seed); FILE.npz holds X "
            "(p x n, columns are samples) and labels, optionally means and covs.  --report "
            "DIR writes " + ", ".join(REPORT_FILES.values()) + " into DIR (created if "
            "missing), checked before anything is computed."))
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--mixture", help="SPEC.json (means, covs, sizes)")
    src.add_argument("--data", help="FILE.npz (X, labels[, means, covs])")
    c.add_argument("--sample-seed", type=int, default=None,
                   help="with --mixture: the seed of the sample drawn (default 0)")
    c.add_argument("--json", action="store_true",
                   help="print one JSON object (the rows, the design, the sampling record)")
    c.add_argument("--report", default=None, metavar="DIR",
                   help="write the table (text and JSON) and a one-page figure (PDF, PNG) "
                        "into DIR")
    c.add_argument("--max-memory", type=memory_size, default=None,
                   help=f"memory budget of the kernels and samplers (e.g. 8G; default "
                        f"{MEMORY_DEFAULT})")
    add_sampled_options(c, "sampled kernels (DEQ and designed network)",
                        defaults=CHECK_DEFAULTS, omit=_OMITTED)
    return c


def report_paths(folder: Any) -> dict[str, str]:
    """The report's file paths in ``folder``, checked writable before anything is computed
    (the folder is created if missing; its parent must exist).

    Raises
    ------
    OutputPathError
        The folder cannot be made or written, or a report file cannot be written.
    """
    if not isinstance(folder, (str, os.PathLike)) or not os.fspath(folder).strip():
        raise OutputPathError(f"--report must be a folder path, got {folder!r}")
    path = os.fspath(folder)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OutputPathError(f"--report {path!r} exists and is not a folder; give a folder")
    if not os.path.isdir(path):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise OutputPathError(f"--report {path!r}: the folder {parent!r} does not exist; "
                                  f"create it first")
        try:
            os.mkdir(path)
        except OSError as exc:
            raise OutputPathError(f"--report {path!r}: cannot create the folder "
                                  f"({exc.strerror})") from None
    out = {key: os.path.join(path, name) for key, name in REPORT_FILES.items()}
    for key, p in out.items():
        _io.check_output_path(p, f"--report file {REPORT_FILES[key]}",
                              figure=key in ("pdf", "png"))
    return out


def check_job(activation: Any, sa: float, sb: float | None = None, *, mixture: Any = None,
              data: Any = None, sample_seed: int | None = None, report: Any = None,
              sampling: Mapping[str, Any] | None = None,
              stage: Callable[[str], Any] | None = None,
              progress: Callable[[Any], Any] | None = None,
              max_memory: float | None = None) -> tuple[CheckResult, dict[str, str]]:
    """Run :func:`rmt_deq.experiments.check.run_check` on a mixture spec or a data file and
    write the report.

    Parameters
    ----------
    activation, sa, sb :
        The DEQ.
    mixture : str or mapping, optional
        SPEC.json (:func:`rmt_deq.jobs.spectrum.load_mixture_spec`): one sample of the
        spec's class sizes is drawn with ``sample_seed`` (default 0) and checked with the
        exact statistics.
    data : str or mapping, optional
        FILE.npz with X and labels (optionally means, covs).
    sample_seed : int, optional
        With ``mixture`` only.
    report : str, optional
        Folder of the report (:data:`REPORT_FILES`), checked first.
    sampling : mapping, optional
        Options of the sampled kernels: width, realizations, family, seed, dtype,
        confidence, target_error (defaults :data:`rmt_deq.experiments.check.CHECK_DEFAULTS`).
    stage, progress, max_memory :
        As in :func:`run_check`.

    Returns
    -------
    (CheckResult, dict)
        The result and the paths written (empty without ``report``).
    """

    if (mixture is None) == (data is None):
        raise InvalidParameterError("give exactly one of mixture (SPEC.json) and data (FILE.npz)")
    if sample_seed is not None and mixture is None:
        raise InvalidParameterError(
            "sample_seed (--sample-seed) draws the sample of a mixture spec; with data the "
            "data's own samples are checked: drop it")
    paths = report_paths(report) if report is not None else {}
    _io.check_distinct_outputs(paths, inputs={
        "--mixture": mixture if isinstance(mixture, (str, os.PathLike)) else None,
        "--data": data if isinstance(data, (str, os.PathLike)) else None})
    opts = dict(sampling or {})
    if mixture is not None:
        mix, sizes = load_mixture_spec(mixture)
        seed = 0 if sample_seed is None else sample_seed
        sample = mix.sample(sizes=sizes, rng=seed)
        arrays = {"X": sample.X, "labels": sample.labels, "means": mix.means,
                  "covs": mix.covs}
        source = f"one sample (seed {seed}) of the mixture spec, exact statistics"
    else:
        arrays = load_data(data)
        source = None
    result = run_check(activation, sa, sb, X=arrays["X"], labels=arrays["labels"],
                       means=arrays.get("means"), covs=arrays.get("covs"), stage=stage,
                       progress=progress, max_memory=max_memory, source=source, **opts)
    if paths:
        from rmt_deq.experiments.check_figure import check_figure
        from rmt_deq.plotting import save_figure

        if stage is not None:
            stage(f"writing the report into {os.fspath(report)}")
        _io.write_text(paths["table"], "\n".join(check_lines(result)) + "\n",
                       REPORT_FILES["table"])
        _io.write_json(paths["json"], result.to_dict(), REPORT_FILES["json"])
        fig = check_figure(result)
        for key in ("pdf", "png"):
            save_figure(fig, paths[key])
    return result, paths


def check_lines(result: CheckResult) -> list[str]:
    """The text report of a check: the configuration, the table, the design, the failed
    rows and the timings."""
    s = result.sampling
    lines = [f"rmt-deq check: {result.activation} DEQ, sa = {result.sa:g}, "
             f"sb = {result.sb:g}, p = {result.p}, n = {result.n}, K = {result.K}, "
             f"tau0 = {result.tau0:.6g} ({result.source})",
             f"sampled kernels: m = {s['width']}, {s['realizations']} realizations "
             f"({s['family']}, {s['dtype']}, seed {s['seed']}, {s['confidence']:.0%} "
             f"error bars)", "", format_table(result), ""]
    if result.design_family is None:
        lines.append("design: no registered family matches the CK target")
    else:
        params = ", ".join(f"{k} = {v:.6g}" for k, v in result.design_params.items())
        lines.append(f"design: {result.design_family} ({params})")
    lines.append("  families tried (relative residual; a feasible one: its exact CK vs the "
                 "DEQ's): " + "; ".join(
                     f"{o.family} " + ("feasible" if o.feasible else "infeasible")
                     + ("" if o.relative_residual is None else f" ({o.relative_residual:.2g}"
                        + ("" if o.exact_distance is None else f"; {o.exact_distance:.3g}")
                        + ")")
                     for o in result.design_outcomes))
    failed = result.failed
    lines.append(f"{len(failed)} of {len(result.rows)} distances beyond their expected "
                 f"size" + (": " + ", ".join(r.key for r in failed) if failed else ""))
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))
    return lines


def check_command(args: argparse.Namespace, out: Callable[[str], Any] = print,
                  err: Any = None) -> int:
    """``rmt-deq check``: run :func:`check_job` from parsed arguments, print the table (or
    one JSON object with ``--json``) with ``out``, progress on ``err`` (default stderr:
    the bar of the sampled kernels and a line per step, when ``--progress`` or when it is
    a terminal)."""
    stream = sys.stderr if err is None else err
    show = stream.isatty() if args.progress is None else args.progress
    bar = ProgressBar(stream) if show else None
    sampling = sampled_values(args, CHECK_DEFAULTS)
    if args.target_error is not None:
        sampling["target_error"] = args.target_error
    try:
        result, paths = check_job(
            args.activation, args.sa, args.sb, mixture=args.mixture, data=args.data,
            sample_seed=args.sample_seed, report=args.report, sampling=sampling,
            stage=None if bar is None else (lambda s: bar.stage(f"check: {s}")),
            progress=bar, max_memory=args.max_memory)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        out(_io.dumps({**result.to_dict(), "report": paths or None}))
    else:
        for line in check_lines(result):
            out(line)
    for path in paths.values():
        print(f"wrote {path}", file=stream)
    return 0
