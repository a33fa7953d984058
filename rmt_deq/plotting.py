"""Figures.  Every function takes ``ax=None`` (a new figure is made) and returns the axes."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["plot_eigenvalue_densities", "plot_error_vs_dimension", "save_figure"]


def _axes(ax: Any) -> Any:
    """The given axes, or those of a new pyplot-free Figure (works without a display)."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(6.4, 4.2)).add_subplot(1, 1, 1)


def plot_eigenvalue_densities(eigenvalues: Mapping[str, np.ndarray], *, bins: int = 60,
                              ax: Any = None, title: str | None = None) -> Any:
    """Histogram densities of several eigenvalue sets on common bins.

    Parameters
    ----------
    eigenvalues : mapping label -> 1-D array
        The first entry is drawn filled, the others as outlines.
    bins : int
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    allv = np.concatenate([np.asarray(v, float).ravel() for v in eigenvalues.values()])
    edges = np.histogram_bin_edges(allv, bins=bins)
    for i, (label, ev) in enumerate(eigenvalues.items()):
        if i == 0:
            ax.hist(ev, bins=edges, density=True, alpha=0.45, label=label)
        else:
            ax.hist(ev, bins=edges, density=True, histtype="step", linewidth=1.6, label=label)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_error_vs_dimension(p: np.ndarray, errors: Mapping[str, np.ndarray], *,
                            ax: Any = None, title: str | None = None) -> Any:
    """Log-log plot of errors against the dimension p, with fitted slopes in the legend."""
    ax = _axes(ax)
    p = np.asarray(p, float)
    for label, err in errors.items():
        err = np.asarray(err, float)
        slope = np.polyfit(np.log(p), np.log(err), 1)[0]
        ax.loglog(p, err, "o-", label=f"{label} (slope {slope:.2f})")
    ax.set_xlabel("p")
    ax.set_ylabel("relative operator-norm error")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return ax


def save_figure(fig: Any, path: str, dpi: int = 130) -> None:
    """Write a figure (PNG/PDF/SVG by extension) without needing a display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not hasattr(fig.canvas, "print_figure"):
        FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
