"""A figure style a journal accepts: column widths, readable type, a colour-blind-safe palette.

The palette is Okabe & Ito's eight colours (distinguishable under the common colour-vision
deficiencies). Sizes are in inches: :data:`COLUMN_WIDTH` fits one column of a two-column
paper, :data:`FULL_WIDTH` the full text width. :func:`journal_style` is a context manager
that applies the style's rcParams while a figure is built (type sizes are read when each
text object is made, so the whole figure should be drawn inside it); :func:`new_figure`
makes a pyplot-free figure of a given width. matplotlib is imported only when called.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from rmt_deq.errors import InvalidParameterError

__all__ = ["PALETTE", "COLUMN_WIDTH", "FULL_WIDTH", "STYLE", "journal_style", "new_figure",
           "color", "styled"]

#: Okabe-Ito palette, in the order the plotting functions use it.
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                            "#56B4E9", "#F0E442", "#000000")
#: Width of one column of a two-column journal page (inches).
COLUMN_WIDTH = 3.4
#: Full text width of a two-column journal page (inches).
FULL_WIDTH = 7.0

#: rcParams of the style: 8 pt type, thin lines, no top/right spines, the palette as cycle;
#: a fixed SVG id salt, so that an SVG file, like a PDF one, is the same on every run.
STYLE: dict[str, Any] = {
    "font.size": 8.0,
    "axes.titlesize": 8.5,
    "figure.titlesize": 9.0,
    "axes.labelsize": 8.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,
    "svg.hashsalt": "rmt_deq",
    "ps.fonttype": 42,
    "figure.dpi": 150,
}


def color(i: int) -> str:
    """The i-th colour of :data:`PALETTE` (cycling)."""
    return PALETTE[int(i) % len(PALETTE)]


@contextmanager
def journal_style() -> Iterator[None]:
    """Apply :data:`STYLE` (and the palette as the colour cycle) inside the ``with`` block."""
    import matplotlib as mpl
    from cycler import cycler

    with mpl.rc_context({**STYLE, "axes.prop_cycle": cycler(color=list(PALETTE))}):
        yield


F = TypeVar("F", bound=Callable[..., Any])


def styled(func: F) -> F:
    """Run ``func`` inside :func:`journal_style` (type sizes are fixed when text is made)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with journal_style():
            return func(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def new_figure(width: str | float = "column", aspect: float = 0.75, *,
               nrows: int = 1, ncols: int = 1) -> tuple[Any, Any]:
    """A pyplot-free figure (works without a display) and its axes.

    Parameters
    ----------
    width : "column", "full" or float
        Figure width: :data:`COLUMN_WIDTH`, :data:`FULL_WIDTH`, or inches.
    aspect : float
        Height over width of the whole figure.
    nrows, ncols : int
        Grid of axes; a single axes is returned unwrapped.

    Returns
    -------
    (Figure, Axes or ndarray of Axes)
        The figure uses matplotlib's constrained layout (legends outside the axes fit).
    """
    from matplotlib.figure import Figure

    named = {"column": COLUMN_WIDTH, "full": FULL_WIDTH}
    if isinstance(width, str) and width not in named:
        raise InvalidParameterError(
            f"width must be 'column', 'full' or a number of inches, got {width!r}")
    w = float(named.get(width, width))  # type: ignore[arg-type]
    fig = Figure(figsize=(w, aspect * w), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes
