"""Command-line pieces several commands share: the sampled-kernel options and the
progress bar (``rmt-deq kernel``, ``spectrum`` and ``check``).

:func:`add_sampled_options` adds the one argument group of the finite-width sampling options
(``--width``, ``--realizations``, ``--family``, ``--seed``, ``--backend``, ...) to a
command's parser,
with that command's defaults; :func:`sampled_given` lists the ones given on a command line
(so a command can refuse them where they do not apply) and :func:`sampled_values` fills in
the defaults.  :class:`ProgressBar` draws the progress of a sampled kernel on a stream.
Nothing here computes or prints unless called by the command line.
"""
from __future__ import annotations

import argparse
import math
import re
from typing import Any, Iterable, Mapping

from rmt_deq._validation import DEFAULT_MAX_MEMORY
from rmt_deq._xp import BACKENDS
from rmt_deq.networks.weights import DTYPES as _WEIGHT_DTYPES, WEIGHT_FAMILIES

__all__ = ["SAMPLED_DEFAULTS", "SAMPLED_OPTIONS", "MEMORY_DEFAULT", "real", "memory_size",
           "groups_help",
           "add_sampled_options", "sampled_given", "sampled_values", "sampled_summary",
           "ProgressBar"]

#: what the sampled-kernel options default to (``rmt-deq kernel --method sampled``)
SAMPLED_DEFAULTS: Mapping[str, Any] = {"realizations": 16, "family": "gaussian", "seed": 0,
                                       "dtype": None, "confidence": 0.95}
#: the working precision when --dtype is not given: each sampler's own default
_DTYPE_DEFAULTS = "float32 for a DEQ, float64 for a designed network"
#: every option of the sampled-kernel group, by its argparse dest
SAMPLED_OPTIONS = ("width", "realizations", "family", "seed", "dtype", "target_error",
                   "confidence", "control_variate", "progress", "info", "workers",
                   "scheduler", "backend")


def real(s: str) -> float:
    """A finite real number (argparse type): NaN and +-inf are refused at the edge."""
    try:
        x = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {s!r}")
    return x


#: the package's default memory budget, as the help texts write it
MEMORY_DEFAULT = f"{DEFAULT_MAX_MEMORY / 2 ** 30:g}G"
_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def groups_help(groups: Iterable[str]) -> str:
    """The ``--groups`` help of the commands with an NTK (``groups``: the library's list)."""
    return (f"NTK parameter groups to sum, comma-separated from {','.join(groups)} "
            f"(--kind ntk only; default all)")


def memory_size(s: str) -> float:
    """A memory size (argparse type): a number of bytes, or with a binary unit K, M, G, T
    (e.g. 8G, 512MiB)."""
    m = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*", s)
    try:
        x = float(m.group(1)) * _UNITS[m.group(2).lower()] if m else float("nan")
    except ValueError:
        x = float("nan")
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(
            f"must be a positive memory size in bytes, optionally with K, M, G or T "
            f"(e.g. 8G); got {s!r}")
    return x


def add_sampled_options(parser: argparse.ArgumentParser, title: str, *,
                        defaults: Mapping[str, Any] = SAMPLED_DEFAULTS,
                        omit: Iterable[str] = ()) -> argparse._ArgumentGroup:
    """Add the sampled-kernel argument group to ``parser``.

    Every option defaults to None on the parsed namespace, so that a command can tell a
    given option from a default (:func:`sampled_given`); the help states ``defaults``,
    which :func:`sampled_values` fills in.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    title : str
        The group's title in ``--help`` (say where the options apply).
    defaults : mapping
        The command's defaults of ``realizations``, ``family``, ``seed``, ``dtype``,
        ``confidence`` and, optionally, ``width``.
    omit : iterable of str
        Options (argparse dests) this command does not offer.
    """
    skip = set(omit)
    unknown = skip - set(SAMPLED_OPTIONS)
    if unknown:
        raise ValueError(f"unknown sampled options {sorted(unknown)}")
    width_help = ("network width m (required)" if "width" not in defaults
                  else f"network width m (default {defaults['width']})")
    table = [
        ("width", "--width", dict(type=int, help=width_help)),
        ("realizations", "--realizations",
         dict(type=int, help=f"independent weight draws averaged (default "
                             f"{defaults['realizations']})")),
        ("family", "--family",
         dict(choices=WEIGHT_FAMILIES, help=f"family of the recurrent weights A; of "
                                            f"W_2..W_L for a designed network (default "
                                            f"{defaults['family']})")),
        ("seed", "--seed",
         dict(type=int, help=f"seed (same seed and options give the same matrix; default "
                             f"{defaults['seed']})")),
        ("dtype", "--dtype",
         dict(choices=_WEIGHT_DTYPES, help=f"working precision (the average is kept in "
                                           f"float64; default "
                                           f"{defaults['dtype'] or _DTYPE_DEFAULTS})")),
        ("target_error", "--target-error",
         dict(type=real, help="stop early once the relative Monte-Carlo error bar is below "
                              "this")),
        ("confidence", "--confidence",
         dict(type=real, help=f"confidence of the Monte-Carlo error bar (default "
                              f"{defaults['confidence']})")),
        ("control_variate", "--control-variate",
         dict(action=argparse.BooleanOptionalAction,
              help="DEQ: average with the input-injection control variate (unbiased, "
                   "smaller Monte-Carlo error for the same realizations; default on, "
                   "--no-control-variate for the plain average)")),
        ("progress", "--progress",
         dict(action=argparse.BooleanOptionalAction,
              help="progress bar on stderr (default: when stderr is a terminal)")),
        ("info", "--info",
         dict(help="also write the error bar and solver diagnostics to this JSON file")),
        ("workers", "--workers",
         dict(type=int, help="run the realizations on N local processes, one BLAS thread "
                             "each (default 1: in this process); every N > 1 writes the "
                             "same result, N = 1 too when OPENBLAS_NUM_THREADS=1")),
        ("scheduler", "--scheduler",
         dict(help="run the realizations on the dask cluster at this scheduler address "
                   "(needs pip install 'rmt_deq[dask]')")),
        ("backend", "--backend",
         dict(choices=BACKENDS, help="array backend of the realizations (default numpy; "
                                     "torch and cupy need pip install 'rmt_deq[gpu]' and "
                                     "run on a GPU when there is one)")),
    ]
    group = parser.add_argument_group(title)
    for dest, flag, kw in table:
        if dest not in skip:
            group.add_argument(flag, **{"default": None, **kw})
    return group


def sampled_given(args: argparse.Namespace) -> list[str]:
    """The sampled-kernel options given on the command line (as --names)."""
    given = []
    for name in SAMPLED_OPTIONS:
        value = getattr(args, name, None)
        if value is None:
            continue
        flag = f"--no-{name}" if value is False else f"--{name}"
        given.append(flag.replace("_", "-"))
    return given


def sampled_values(args: argparse.Namespace,
                   defaults: Mapping[str, Any] = SAMPLED_DEFAULTS) -> dict[str, Any]:
    """The values of the defaulted sampled options: given ones, else ``defaults``."""
    return {name: (default if getattr(args, name, None) is None else getattr(args, name))
            for name, default in defaults.items()}


class ProgressBar:
    """Text progress bar for sampled kernels, redrawn in place on a stream.

    The realizations fill the bar up to R/(R + 1); the final error bars (phase "error
    bar", counted in bootstrap sign draws) fill the last step, so the bar is full only
    when the whole computation is.  :meth:`stage` writes a line naming the next step of a
    longer job (ending the bar's line first).
    """

    def __init__(self, stream, width: int = 30) -> None:
        self.stream, self.width = stream, width
        self._open = 0                       # length of the line being redrawn, 0 if none
        self._phase_start = 0.0

    def __call__(self, p) -> None:
        if p.phase == "error bar":
            if p.draws_done == 0:
                self._phase_start = p.elapsed
            f = 1.0 if p.draws_total == 0 else p.draws_done / p.draws_total
            frac = (p.realization + f) / (p.realization + 1)
            spent = p.elapsed - self._phase_start
            eta = f"{spent / f * (1.0 - f):6.1f}s" if f > 0 else "     ?"
            text = (f"{p.realization}/{p.realizations}  error bar {p.draws_done}/"
                    f"{p.draws_total} sign draws  {p.elapsed:6.1f}s  eta {eta}")
            finished = p.draws_done == p.draws_total
        else:
            frac = p.realization / (p.realizations + 1)
            eta = p.elapsed / p.realization * (p.realizations - p.realization)
            err = "" if p.relative_error is None else f"  rel. MC error {p.relative_error:.2e}"
            text = (f"{p.realization}/{p.realizations}  {p.elapsed:6.1f}s  "
                    f"eta {eta:6.1f}s{err}")
            finished = False
        done = int(self.width * frac)            # full only when everything is done
        line = f"[{'#' * done}{'.' * (self.width - done)}] {text}"
        self.stream.write("\r" + line.ljust(self._open))
        self._open = len(line)
        if finished:
            self.close()
        self.stream.flush()

    def stage(self, text: str) -> None:
        """End the line being redrawn, then write ``text`` on a line of its own."""
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the line being redrawn (nothing if there is none)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = 0


def sampled_summary(res: Any, kind: str, out: str, shape: tuple) -> str:
    """The one-line stderr summary of a sampled kernel."""
    info = res.info
    return (f"wrote {out}: {kind} (sampled: m = {info.width}, "
            f"{info.realizations} realizations, {info.family}, {info.dtype}), shape {shape}; "
            f"Monte-Carlo error {res.error[kind]:.3g} ({res.error_relative[kind]:.2%} of the "
            f"norm, {info.confidence:.0%} confidence) in {info.elapsed:.1f}s")
