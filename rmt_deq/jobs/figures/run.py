"""Building the figure set into a folder, with its manifest (``rmt-deq figures``).

:func:`build_figures` checks everything first (figure names, formats, the output folder and
every file it will write), then builds each figure, writes it in each format with its table
(``NAME.json``), and updates the manifest ``manifest.json`` after each: per figure its
provenance (package version, git commit, command line, seeds), wall time and files.  A
manifest already in the folder keeps the entries of the figures not rebuilt.  A figure
whose optional dependency is missing
(:meth:`~rmt_deq.jobs.figures.registry.FigureSpec.missing`) is refused when named, and
skipped, with the reason, when the whole set is built.  Every file is written atomically;
the library prints nothing (``progress`` is called once per figure).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from rmt_deq import _io
from rmt_deq._validation import check_choice
from rmt_deq.errors import (InvalidParameterError, MissingDependencyError, OutputPathError,
                            RmtDeqError, UnknownOptionError)
from rmt_deq.jobs.figures.registry import check_size, figure_names, figure_specs

__all__ = ["FORMATS", "PNG_DPI", "MANIFEST", "FigureProgress", "FiguresResult",
           "build_figures", "add_figures_parser", "run_figures_command"]

#: the formats a figure can be written in (PDF and SVG are vector and deterministic)
FORMATS = ("png", "pdf", "svg")
#: resolution of the PNG files (modest: they are for reading on screen)
PNG_DPI = 130
#: the manifest's file name in the output folder
MANIFEST = "manifest.json"
#: the kind of document a manifest is (a manifest without it is not replaced)
_MANIFEST_KIND = "rmt_deq figures manifest"


@dataclass(frozen=True)
class FigureProgress:
    """Reported after each figure: its name, position, wall time and files."""

    name: str
    index: int
    total: int
    seconds: float
    elapsed: float
    files: tuple


@dataclass(frozen=True)
class FiguresResult:
    """What :func:`build_figures` wrote: every file, the seconds of each figure, the
    manifest's path, and the figures skipped for a missing optional dependency (name ->
    what to install)."""

    out: str
    files: tuple
    seconds: Mapping[str, float]
    manifest: str
    skipped: Mapping[str, str] = field(default_factory=dict)


def _names(names: Iterable[str] | None) -> tuple[str, ...]:
    known = figure_names()
    if names is None:
        return known
    if isinstance(names, str):
        names = (names,)
    chosen: list[str] = []
    for name in names:
        if name not in known:
            raise UnknownOptionError(f"unknown figure {name!r}; choose from "
                                     f"{', '.join(known)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise InvalidParameterError("no figure named; give at least one, or none for all")
    return tuple(chosen)


def _formats(formats: Iterable[str] | str) -> tuple[str, ...]:
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for f in items:
        f = check_choice(str(f).strip().lower(), "figure format", FORMATS)
        if f not in out:
            out.append(f)
    if not out:
        raise InvalidParameterError(f"no figure format given; choose from {FORMATS}")
    return tuple(out)


def _output_folder(out: Any) -> str:
    """The output folder, created if missing; refused if it is something else."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out).strip():
        raise OutputPathError(f"the output folder must be a path, got {out!r}")
    path = os.fspath(out)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OutputPathError(f"the output folder {path!r} exists and is not a folder; "
                              f"give a folder (created if missing)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the output folder {path!r} "
                              f"({exc.strerror})") from None
    return path


def _previous_entries(path: str) -> dict:
    """The figure entries of a manifest already at ``path`` (none if there is none)."""
    if not os.path.lexists(path):
        return {}
    try:
        doc = _io.read_json(path, "manifest")
    except RmtDeqError:                       # unreadable: not a manifest of ours
        doc = None
    if not (isinstance(doc, dict) and doc.get("kind") == _MANIFEST_KIND
            and isinstance(doc.get("figures"), dict)):
        raise OutputPathError(f"{path!r} exists and is not a figures manifest; move it or "
                              f"choose another output folder")
    return dict(doc["figures"])


def build_figures(out: Any, names: Iterable[str] | None = None, *, size: str = "full",
                  formats: Iterable[str] | str = ("png",), seed: int = 0,
                  progress: Callable[[FigureProgress], Any] | None = None,
                  command: Sequence[str] | None = None) -> FiguresResult:
    """Build figures into the folder ``out``: ``NAME.FORMAT`` and ``NAME.json`` for each,
    and ``manifest.json`` (rewritten after each figure, so that an interrupted run leaves
    a manifest of the files it wrote).

    Parameters
    ----------
    out : path
        Output folder (created if missing).
    names : iterable of str, optional
        Registered figures to build (default all, in registry order, skipping those whose
        optional dependency is not installed: ``FiguresResult.skipped``).
    size : {"quick", "full"}
        "quick": small dimensions and few realizations; "full": the committed figures.
    formats : iterable of str or comma-separated str
        Among :data:`FORMATS`.
    seed : int
        Base seed of every figure (each derives its streams from it; the manifest lists
        them).  The same size and seed give the same figures and tables; PDF and SVG files
        are then byte-identical.
    progress : callable, optional
        Called with a :class:`FigureProgress` after each figure.
    command : sequence of str, optional
        The command line recorded in the manifest (default ``sys.argv``).

    Returns
    -------
    FiguresResult

    Raises
    ------
    UnknownOptionError
        An unknown figure name, size or format (the message lists the choices).
    MissingDependencyError
        A figure named in ``names`` needs an optional dependency that is not installed
        (checked before any figure is computed).
    InvalidParameterError
        No figure or no format, a seed that is not a non-negative integer.
    OutputPathError
        ``out`` is a file (or cannot be created), a file to be written cannot be, or a
        ``manifest.json`` there is not a figures manifest.  Checked before any figure is
        computed.
    """
    from rmt_deq.experiments.manifest import start_run   # (heavy: imported when used)
    from rmt_deq.plotting import save_figure

    chosen = _names(names)
    specs = figure_specs()
    skipped: dict[str, str] = {}
    for name in chosen:
        missing = specs[name].missing()
        if missing and names is not None:
            raise MissingDependencyError(
                f"figure {name!r} needs {', '.join(missing)}, which is not installed")
        if missing:
            skipped[name] = f"needs {', '.join(missing)}, which is not installed"
    chosen = tuple(n for n in chosen if n not in skipped)
    size = check_size(size)
    fmts = _formats(formats)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
    folder = _output_folder(out)
    planned = {name: [os.path.join(folder, f"{name}.{f}") for f in fmts]
               + [os.path.join(folder, f"{name}.json")] for name in chosen}
    for paths in planned.values():
        for p in paths:
            _io.check_output_path(p, "figure output", figure=not p.endswith(".json"))
    manifest_path = os.path.join(folder, MANIFEST)
    _io.check_output_path(manifest_path, "manifest")
    entries = _previous_entries(manifest_path)

    run = start_run(seeds={"base": seed}, argv=command)
    provenance = run.manifest().to_dict()
    written: list[str] = []
    seconds: dict[str, float] = {}
    for i, name in enumerate(chosen, start=1):
        t0 = time.perf_counter()
        spec = specs[name]
        res = spec.build(size, seed)
        for p in planned[name][:-1]:
            save_figure(res.figure, p, dpi=PNG_DPI)
        _io.write_json(planned[name][-1], {
            "figure": name, "description": spec.description, "size": size, "seed": seed,
            "seeds": dict(res.seeds), "results": dict(res.table)}, "figure table")
        seconds[name] = time.perf_counter() - t0
        files = tuple(os.path.basename(p) for p in planned[name])
        written += planned[name]
        entries[name] = {
            "description": spec.description, "size": size, "seed": seed,
            "seeds": dict(res.seeds), "seconds": seconds[name], "files": list(files),
            **{k: provenance[k] for k in ("version", "git_commit", "git_dirty", "command",
                                          "started_utc", "threads")}}
        # the manifest after every figure: it always describes the files on disk
        order = [n for n in figure_names() if n in entries]
        _io.write_json(manifest_path, run.record({"kind": _MANIFEST_KIND, "last_run": {
            "figures": list(chosen), "size": size, "formats": list(fmts), "seed": seed,
            "seconds": seconds, "skipped": skipped},
            "figures": {n: entries[n] for n in order}},
            outputs=written), "manifest")
        if progress is not None:
            progress(FigureProgress(name, i, len(chosen), seconds[name], run.elapsed,
                                    files))
    return FiguresResult(folder, tuple(written), seconds, manifest_path, skipped)


# ----------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------
class _RegisteredNames:
    """The registered figure names as argparse choices, looked up when first needed (the
    figure modules are imported only when ``figures`` runs or its help is shown)."""

    def __contains__(self, name: object) -> bool:
        return name in figure_names()

    def __iter__(self) -> Any:
        return iter(figure_names())


def add_figures_parser(sub: Any, help: str) -> argparse.ArgumentParser:
    """Add the ``figures`` sub-command to an argparse sub-parser collection (``--only``
    accepts the registered names, :func:`~rmt_deq.jobs.figures.registry.figure_names`;
    ``help``: the one-line help)."""
    p = sub.add_parser(
        "figures", help=help,
        description=(
            "Build the registered figures into --out: NAME.FORMAT and NAME.json (the "
            "numbers behind the figure) for each, and manifest.json (version, git commit, "
            "command, seeds, seconds and files per figure).  Each figure is built from "
            "fixed seeds: the same --seed gives the same files (PDF and SVG byte for "
            "byte).  One line per figure on stderr."))
    p.add_argument("--out", default="figures", metavar="DIR",
                   help="output folder, created if missing (default: figures)")
    p.add_argument("--quick", action="store_true",
                   help="small dimensions and few realizations (a smoke run, minutes)")
    p.add_argument("--only", nargs="+", choices=_RegisteredNames(), metavar="NAME",
                   help="build only these figures (default: all): %(choices)s")
    p.add_argument("--format", default="png",
                   help=f"comma-separated formats among {','.join(FORMATS)} (default png)")
    p.add_argument("--seed", type=int, default=0,
                   help="base seed of every figure (default 0, the committed figures)")
    return p


def _command_line(args: argparse.Namespace) -> list[str]:
    """The canonical command line of a ``figures`` run (every option spelled out)."""
    cmd = ["rmt-deq", "figures", "--out", os.fspath(args.out)]
    if args.quick:
        cmd.append("--quick")
    if args.only:
        cmd += ["--only", *args.only]
    return cmd + ["--format", args.format, "--seed", str(args.seed)]


def run_figures_command(args: argparse.Namespace, stream: Any = None) -> int:
    """Run ``rmt-deq figures`` from parsed arguments; progress lines go to ``stream``
    (default stderr).  Returns the exit status (errors are raised for the CLI to report)."""
    err = sys.stderr if stream is None else stream

    def show(ev: FigureProgress) -> None:
        print(f"[{ev.index}/{ev.total}] {ev.name}: {ev.seconds:.1f} s "
              f"(elapsed {ev.elapsed:.1f} s; {', '.join(ev.files)})", file=err, flush=True)

    res = build_figures(args.out, args.only, size="quick" if args.quick else "full",
                        formats=args.format, seed=args.seed, progress=show,
                        command=_command_line(args))
    for name, why in res.skipped.items():
        print(f"skipped {name}: {why}", file=err)
    print(f"wrote {len(res.files)} files and {res.manifest} in "
          f"{sum(res.seconds.values()):.1f} s", file=err)
    return 0
