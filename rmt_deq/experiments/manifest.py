"""Provenance of a measurement: what produced an output file, and how to produce it again.

Every output the figure and benchmark scripts write carries a :class:`Manifest`: the
package version (from the installed package's metadata, whose single source is
``pyproject.toml``), the git commit of the source tree when there is one, the command line
(paths inside the repository written relative to it, so no machine's absolute paths end up
in committed files), the seeds, the start time and the wall time.

A script calls :func:`start_run` first and ``run.manifest(outputs=[...])`` when it writes
its results.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import frozen_mapping
from rmt_deq.experiments.harness import Record

__all__ = ["package_version", "git_commit", "source_root", "portable_path", "Manifest",
           "Run", "start_run"]

#: the distribution name of the package (its metadata holds the version)
DISTRIBUTION = "rmt_deq"
#: environment variables that set the thread counts of the linear algebra (timings depend
#: on them)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: seconds a git query may take before the commit is reported as unknown
GIT_TIMEOUT_S = 10.0


def source_root() -> Path | None:
    """The repository root this package was imported from (the folder holding
    ``pyproject.toml`` beside the package), or None for an installed copy."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def package_version() -> str:
    """The package version: the installed distribution's metadata, else (a source tree
    that is not installed) the ``version`` line of its ``pyproject.toml``, else
    ``"unknown"``."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    root = source_root()
    if root is not None:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
        m = re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.M)
        if m:
            return m.group(1)
    return "unknown"


def git_commit() -> tuple[str | None, bool | None]:
    """(commit hash, whether tracked files differ from it) of the source tree, or
    (None, None) outside a git checkout or without git."""
    root = source_root()
    if root is None:
        return None, None

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                 timeout=GIT_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def portable_path(path: Any) -> str:
    """``path`` as it should be recorded: relative to the repository root when inside it,
    else relative to the working folder when inside that, else unchanged."""
    s = os.fspath(path)
    if not os.path.isabs(s):
        return s
    p = Path(s).resolve()
    for base in (source_root(), Path.cwd().resolve()):
        if base is not None:
            try:
                return str(p.relative_to(base))
            except ValueError:
                continue
    return s


def _portable_arg(arg: str) -> str:
    """A command-line argument with an absolute path (``PATH`` or ``--opt=PATH``) made
    portable."""
    key, eq, value = arg.partition("=")
    if eq and key.startswith("-") and os.path.isabs(value):
        return f"{key}={portable_path(value)}"
    return portable_path(arg) if os.path.isabs(arg) else arg


def _command(argv: Sequence[str]) -> str:
    """The command line that reproduces a run of ``argv`` (as in ``sys.argv``)."""
    if not argv:
        return "python"
    head = _portable_arg(argv[0])
    if head.endswith(".py"):
        head = f"python {head}"
    return " ".join([head] + [shlex.quote(_portable_arg(a)) for a in argv[1:]])


@dataclass(frozen=True)
class Manifest(Record):
    """Provenance of one output.

    Attributes
    ----------
    package, version : str
        Distribution name and version (:func:`package_version`).
    git_commit : str or None
        Commit of the source tree (None outside a git checkout).
    git_dirty : bool or None
        Whether tracked files differed from that commit.
    command : str
        The command line (repository paths relative).
    seeds : mapping
        Name -> seed (or the rule that derives it) of every random stream used.
    started_utc : str
        ISO 8601 start time.
    wall_s : float
        Seconds from the start to the moment the manifest was made.
    python, numpy, machine : str
        Interpreter and numpy versions, processor architecture.
    threads : mapping str -> str or None
        The thread-count environment variables (:data:`THREAD_VARIABLES`).
    outputs : tuple of str
        The files the run wrote (portable paths).
    """

    package: str
    version: str
    git_commit: str | None
    git_dirty: bool | None
    command: str
    seeds: Mapping[str, Any]
    started_utc: str
    wall_s: float
    python: str
    numpy: str
    machine: str
    threads: Mapping[str, str | None]
    outputs: tuple = ()


class Run:
    """A running script's clock and provenance; :meth:`manifest` makes its
    :class:`Manifest` (see :func:`start_run`)."""

    def __init__(self, seeds: Mapping[str, Any] | None = None,
                 argv: Sequence[str] | None = None) -> None:
        self._t0 = time.perf_counter()
        self._started = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds")
        self._argv = list(sys.argv if argv is None else argv)
        self._seeds = json_ready(dict(seeds or {}))
        self._commit = git_commit()

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self._t0

    def manifest(self, outputs: Iterable[Any] = ()) -> Manifest:
        """The manifest now: wall time so far, ``outputs`` (paths) as written."""
        commit, dirty = self._commit
        return Manifest(
            package=DISTRIBUTION, version=package_version(), git_commit=commit,
            git_dirty=dirty, command=_command(self._argv),
            seeds=frozen_mapping(self._seeds, arrays=False), started_utc=self._started,
            wall_s=self.elapsed, python=platform.python_version(), numpy=np.__version__,
            machine=platform.machine(),
            threads=frozen_mapping({k: os.environ.get(k) for k in THREAD_VARIABLES}),
            outputs=tuple(portable_path(p) for p in outputs))

    def record(self, body: Mapping[str, Any], outputs: Iterable[Any] = ()) -> dict:
        """``{"manifest": ..., **body}``: a JSON document that carries its provenance (a
        ``"manifest"`` already in ``body``, e.g. of a report being extended, is replaced)."""
        rest = {k: v for k, v in body.items() if k != "manifest"}
        return {"manifest": self.manifest(outputs).to_dict(), **rest}


def start_run(seeds: Mapping[str, Any] | None = None,
              argv: Sequence[str] | None = None) -> Run:
    """Start the clock of a script run (call it first).

    Parameters
    ----------
    seeds : mapping, optional
        Name -> seed (an int, or a string stating how it is derived) of every random
        stream of the run.
    argv : sequence of str, optional
        The command line (default ``sys.argv``).
    """
    return Run(seeds, argv)
