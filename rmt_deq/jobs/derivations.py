"""The symbolic checks (``rmt-deq derivations``): every sympy derivation run and timed.

The derivations (Stein identities, closed-form moments, the CK and NTK expansions, the
four equations, the explicit-network recursion) are the package ``rmt_deq_derivations``,
installed with rmt_deq from the repository's ``derivations/`` folder; sympy is an optional
dependency (``pip install 'rmt_deq[derivations]'``).  :func:`run_derivations` runs each
one's ``check()`` in the order of the data flow and returns a :class:`DerivationResult`
per derivation; it reports through an ``echo`` callable (a pass/fail table) and prints
nothing itself.

Where the derivations come from (:func:`load_derivations`): in a source tree (a checkout,
or an editable install) the ``derivations/`` folder beside the imported ``rmt_deq``, so
that the checks always run against the code they check; otherwise the installed
``rmt_deq_derivations``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

from rmt_deq.errors import InvalidParameterError, MissingDependencyError, UnknownOptionError
from rmt_deq.experiments.manifest import source_root

__all__ = ["PACKAGE", "INSTALL_HINT", "DerivationResult", "load_derivations",
           "derivation_names", "run_derivations"]

#: the import name of the installed derivations
PACKAGE = "rmt_deq_derivations"
#: how to get sympy, the derivations' one extra dependency
INSTALL_HINT = "pip install 'rmt_deq[derivations]' (or pip install sympy)"
#: the table's columns: name width, result, time, what it proves
_HEADER = ("derivation", "result", "time (s)", "what it proves")
_TIME_WIDTH = 8


@dataclass(frozen=True)
class DerivationResult:
    """One derivation's outcome.

    Attributes
    ----------
    name : str
        The derivation (a module of ``rmt_deq_derivations``).
    passed : bool
        Whether every one of its checks held.
    seconds : float
        Wall time of importing the module and running its checks.
    proves : str
        What it proves, in one line.
    message : str or None
        The failure (exception type where it is not an AssertionError, message, and the
        file and line that raised it); None when it passed.
    """

    name: str
    passed: bool
    seconds: float
    proves: str
    message: str | None = None

    @property
    def status(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return "PASS" if self.passed else "FAIL"

    def record(self) -> dict[str, Any]:
        """JSON-ready dict: name, status, seconds, proves, message (null when passed)."""
        return {"name": self.name, "status": self.status, "seconds": round(self.seconds, 3),
                "proves": self.proves, "message": self.message}


def load_derivations() -> ModuleType:
    """The derivations package (imported as ``rmt_deq_derivations``).

    Raises
    ------
    MissingDependencyError
        sympy is not installed, or (an installed rmt_deq without a source tree) the
        ``rmt_deq_derivations`` package is missing; the message names the fix.
    """
    try:
        importlib.import_module("sympy")
    except ImportError:
        raise MissingDependencyError(
            f"the symbolic checks need sympy, which is not installed: run {INSTALL_HINT}"
        ) from None
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None:
        return loaded
    root = source_root()
    folder = None if root is None else root / "derivations"
    if folder is not None and (folder / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(
            PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = pkg
        try:
            spec.loader.exec_module(pkg)
        except BaseException:
            del sys.modules[PACKAGE]
            raise
        return pkg
    try:
        return importlib.import_module(PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name != PACKAGE:
            raise
        raise MissingDependencyError(
            f"the derivations package {PACKAGE} is not installed beside rmt_deq: reinstall "
            f"rmt_deq (pip install 'rmt_deq[derivations]')") from None


def derivation_names() -> tuple[str, ...]:
    """The derivations' names in the order of the data flow (needs sympy, see
    :func:`load_derivations`)."""
    return tuple(load_derivations().NAMES)


def _selected(only: Iterable[str] | str | None, names: tuple[str, ...]) -> tuple[str, ...]:
    """The names to run, in registry order; every unknown one is refused at once."""
    if only is None:
        return names
    if isinstance(only, str):
        only = (only,)
    try:
        wanted = list(only)
    except TypeError:
        raise InvalidParameterError(f"only must be derivation names (strings), got "
                                    f"{type(only).__name__}") from None
    if not wanted:
        raise InvalidParameterError(f"only is empty: name at least one derivation from "
                                    f"{', '.join(names)}, or pass None for all")
    unknown = [w for w in wanted if not (isinstance(w, str) and w in names)]
    if unknown:
        raise UnknownOptionError(f"unknown derivation{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(map(repr, unknown))}; choose from "
                                 f"{', '.join(names)}")
    return tuple(n for n in names if n in wanted)


def _failure(exc: BaseException, folder: Path | None) -> str:
    """One line: the exception (its type unless an AssertionError), and where it was
    raised (the innermost frame in the derivations other than their ``require*`` helpers,
    else the innermost frame)."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, AssertionError) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if folder is not None:
        inside = [f for f in frames if Path(f.filename).resolve().parent == folder
                  and not f.name.startswith("require")]
        frames = inside or frames
    if frames:
        text += f" [{Path(frames[-1].filename).name}:{frames[-1].lineno}]"
    return text


def _row(name: str, status: str, seconds: str, proves: str, width: int) -> str:
    return f"{name:<{width}}  {status:<6}  {seconds:>{_TIME_WIDTH}}  {proves}"


def run_derivations(only: Iterable[str] | str | None = None, *,
                    echo: Callable[[str], Any] | None = None
                    ) -> tuple[DerivationResult, ...]:
    """Run the derivations' checks, in the order of the data flow.

    Parameters
    ----------
    only : iterable of str, str or None
        The derivations to run (names as in :func:`derivation_names`); None runs them all.
        They run in the registry's order whatever the order given; a name given twice
        runs once.
    echo : callable or None
        Called with each line of a pass/fail table (header; per derivation, as it finishes,
        name, PASS/FAIL, seconds and what it proves, then the failure indented on the next
        line; a summary): nothing is printed when None.

    Returns
    -------
    tuple of DerivationResult
        One per derivation run.  A derivation fails when its check raises (an
        AssertionError names the claim that does not hold; any other exception, e.g. an
        rmt_deq error from the code it checks, fails it too and is reported by type).

    Raises
    ------
    MissingDependencyError
        sympy (or the derivations package) is not installed.
    UnknownOptionError
        ``only`` names a derivation that does not exist (the message lists them all);
        nothing is run.
    InvalidParameterError
        ``only`` is empty or not a collection of names.
    """
    pkg = load_derivations()
    names = _selected(only, tuple(pkg.NAMES))
    folder = Path(pkg.__file__).resolve().parent
    width = max(len(_HEADER[0]), *(len(n) for n in names))
    if echo is not None:
        echo(_row(*_HEADER, width))
    results = []
    start = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        proves = ""
        try:
            entry = pkg.get(name)
            proves = entry.proves
            entry.check()
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:   # a failed check, whatever raised it, is a FAIL
            res = DerivationResult(name, False, time.perf_counter() - t0, proves,
                                   _failure(exc, folder))
        else:
            res = DerivationResult(name, True, time.perf_counter() - t0, proves)
        results.append(res)
        if echo is not None:
            echo(_row(name, res.status, f"{res.seconds:.1f}", res.proves, width))
            if res.message is not None:
                echo(f"{'':<{width}}  {res.message}")
    if echo is not None:
        failed = sum(not r.passed for r in results)
        total = time.perf_counter() - start
        echo(f"all {len(results)} derivations pass ({total:.1f} s)" if not failed else
             f"{failed} of {len(results)} derivations FAIL ({total:.1f} s)")
    return tuple(results)
