"""The registry of figures: name -> builder, filled by the figure-group modules.

A builder is ``build(size, seed) -> FigureOutput``: ``size`` is one of :data:`SIZES`
("quick": small dimensions and few realizations, for a smoke run; "full": the sizes of the
committed figures), ``seed`` a non-negative integer from which every random stream of the
figure is derived (the streams are listed in the output's ``seeds``).  The same size and
seed give the same figure and table.

Each group module (:data:`GROUP_MODULES`) registers its figures with :func:`register` when
imported; :func:`figure_specs` imports them all on first use.  A figure may need an
optional dependency (``requires``, e.g. scikit-learn for the built-in digits):
:meth:`FigureSpec.missing` names what is not installed.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from rmt_deq._validation import check_choice
from rmt_deq.errors import InvalidParameterError

__all__ = ["SIZES", "GROUP_MODULES", "FigureOutput", "FigureSpec", "register", "figure_specs",
           "figure_names", "check_size"]

#: the sizes a builder accepts
SIZES = ("quick", "full")
#: the modules that register figures, in the order the set is built
GROUP_MODULES = ("rmt_deq.jobs.figures.spectra", "rmt_deq.jobs.figures.alignments",
                 "rmt_deq.jobs.figures.convergence", "rmt_deq.jobs.figures.design",
                 "rmt_deq.jobs.figures.sampling", "rmt_deq.jobs.figures.generalization")


@dataclass(frozen=True)
class FigureOutput:
    """What a builder returns.

    Attributes
    ----------
    figure : matplotlib Figure
        The figure (pyplot-free; written by the runner in each requested format).
    table : mapping
        JSON-ready numbers behind the figure (the runner writes it as ``NAME.json``).
    seeds : mapping
        Name -> seed (or the rule deriving it from the base seed) of every random stream.
    """

    figure: Any
    table: Mapping[str, Any]
    seeds: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure: its name, one line saying what it shows, its builder, and the
    optional dependencies it needs (importable module -> what to install)."""

    name: str
    description: str
    build: Callable[[str, int], FigureOutput]
    requires: Mapping[str, str] = field(default_factory=dict)

    def missing(self) -> tuple[str, ...]:
        """What to install for the figure's optional dependencies that are not importable
        (empty when it can be built)."""
        return tuple(what for module, what in self.requires.items()
                     if not _importable(module))


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):        # a parent missing, or a broken entry
        return False


_REGISTRY: dict[str, FigureSpec] = {}
_LOADED = False


def register(name: str, description: str, requires: Mapping[str, str] | None = None
             ) -> Callable[[Callable[[str, int], FigureOutput]],
                           Callable[[str, int], FigureOutput]]:
    """Decorator registering ``build(size, seed) -> FigureOutput`` under ``name``;
    ``requires`` maps the importable modules of optional dependencies the figure needs to
    what to install (e.g. ``{"sklearn": "scikit-learn (pip install rmt_deq[data])"}``).

    Raises
    ------
    InvalidParameterError
        ``name`` is registered already (two builders cannot share a name).
    """
    def deco(build: Callable[[str, int], FigureOutput]) -> Callable[[str, int], FigureOutput]:
        if name in _REGISTRY and _REGISTRY[name].build is not build:
            raise InvalidParameterError(f"figure {name!r} is registered twice")
        _REGISTRY[name] = FigureSpec(name, description, build, dict(requires or {}))
        return build
    return deco


def figure_specs() -> Mapping[str, FigureSpec]:
    """Name -> :class:`FigureSpec` of every figure, in build order (imports the groups)."""
    global _LOADED
    if not _LOADED:
        for module in GROUP_MODULES:
            importlib.import_module(module)
        _LOADED = True
    return dict(_REGISTRY)


def figure_names() -> tuple[str, ...]:
    """The registered figure names, in build order."""
    return tuple(figure_specs())


def check_size(size: Any) -> str:
    """Return ``size`` if it is one of :data:`SIZES`, else raise UnknownOptionError."""
    return check_choice(size, "figure size", SIZES)
