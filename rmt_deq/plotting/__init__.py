"""Figures: predicted spectra over observed eigenvalues, convergence plots, a journal style.

Every plotting function takes ``ax=None`` (a new pyplot-free figure, working without a
display, is made) and returns the axes it drew on; :func:`save_figure` writes a figure
atomically in the format of its suffix (vector PDF or SVG, or PNG). matplotlib is an
optional, heavy dependency: it is imported only when a figure is made.
"""
from __future__ import annotations

from typing import Any

from rmt_deq._io import write_figure
from rmt_deq.plotting.convergence import plot_error_vs_dimension
from rmt_deq.plotting.generalization import plot_generalization
from rmt_deq.plotting.spectra import outlier_eigenvalues, plot_spectrum
from rmt_deq.plotting.style import (COLUMN_WIDTH, FULL_WIDTH, PALETTE, journal_style,
                                    new_figure, styled)

__all__ = ["plot_error_vs_dimension", "plot_generalization", "plot_spectrum", "outlier_eigenvalues", "save_figure",
           "journal_style", "new_figure", "PALETTE", "COLUMN_WIDTH", "FULL_WIDTH"]


@styled
def save_figure(fig: Any, path: str, dpi: int = 300) -> str:
    """Write a figure to exactly ``path``, in the format of its suffix, without a display.

    The path is checked first (a writable file in an existing folder, a suffix this
    matplotlib can write, e.g. .png, .pdf, .svg) and written atomically: a failed write
    leaves a previous file at ``path`` unchanged. Vector formats carry no creation date, so
    the same figure gives the same file.

    Returns
    -------
    str
        The path written (symbolic links resolved).

    Raises
    ------
    OutputPathError
        The path cannot be written or its suffix is not a figure format.
    OutputWriteError
        Writing failed (disk full...); the previous file is unchanged.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not hasattr(fig.canvas, "print_figure"):
        FigureCanvasAgg(fig)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return write_figure(fig, path, dpi=dpi)
