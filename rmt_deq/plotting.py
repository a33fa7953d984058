"""Figures: convergence plots and predicted spectra over eigenvalue histograms.

Every plotting function takes ``ax=None`` (a new figure is made, without pyplot or a
display) and returns the axes it drew on; :func:`save_figure` writes a figure atomically.
matplotlib is an optional, heavy dependency: it is imported only when a figure is made.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rmt_deq._io import write_figure

__all__ = ["plot_error_vs_dimension", "plot_spectrum", "save_figure"]


def _axes(ax: Any) -> Any:
    """The given axes, or those of a new pyplot-free Figure (works without a display)."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(6.4, 4.2)).add_subplot(1, 1, 1)


def plot_error_vs_dimension(p: np.ndarray, errors: Mapping[str, np.ndarray], *,
                            ax: Any = None, title: str | None = None) -> Any:
    """Log-log plot of errors against the dimension p, with fitted slopes in the legend.

    Parameters
    ----------
    p : array_like
        The dimensions.
    errors : mapping label -> array_like
        One error series per label, same length as ``p``; the legend shows the
        least-squares slope of log(error) against log(p).
    ax : matplotlib Axes, optional
        Axes to draw on; default a new figure.
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
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


def save_figure(fig: Any, path: str, dpi: int = 130) -> str:
    """Write a figure to exactly ``path``, in the format of its suffix, without a display.

    The path is checked first (:func:`rmt_deq._io.check_output_path`: a writable file in an
    existing folder, a suffix this matplotlib can write, e.g. .png, .pdf, .svg) and written
    atomically: a failed write leaves a previous file at ``path`` unchanged.

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
    fig.tight_layout()
    return write_figure(fig, path, dpi=dpi)


def plot_spectrum(bulk: Any, spikes: Any = None, *, eigenvalues: Any = None, bins: int = 80,
                  ax: Any = None, title: str | None = None, label: str = "sampled",
                  atom_width: float | None = None, ylim_factor: float = 1.35) -> Any:
    """Predicted limiting spectrum over an eigenvalue histogram (docs/theory.md §7).

    Draws the histogram of ``eigenvalues`` (if given, as a density over all of them), the
    predicted density of the bulk (``bulk.x``, ``bulk.density``), the atom (when
    ``bulk.atom > 0``) as a vertical arrow labelled with its mass (or, with ``atom_width``,
    as a Gaussian of that width and the atom's mass added to the curve), and the predicted
    isolated eigenvalues as dashed vertical lines with markers.

    Parameters
    ----------
    bulk : rmt_deq.spectra.bulk.BulkSpectrum
        The predicted bulk (density, support, atom).
    spikes : rmt_deq.spectra.spikes.Spikes or array_like, optional
        Predicted isolated eigenvalues (a Spikes result or the positions).
    eigenvalues : array_like, optional
        Observed eigenvalues (sampled, exact or surrogate kernel) to histogram.
    bins : int
        Histogram bins over the range of the eigenvalues, the support and the spikes.
    ax : matplotlib Axes, optional
        Axes to draw on; default a new figure.
    title : str, optional
    label : str
        Legend label of the histogram.
    atom_width : float, optional
        Draw the atom smoothed by a Gaussian of this standard deviation instead of an arrow.
    ylim_factor : float
        The y axis is cut at this multiple of the larger of the predicted density's and the
        histogram's maxima away from the atom (the atom's bin would flatten everything).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    pos = np.zeros(0)
    if spikes is not None:
        pos = np.asarray(getattr(spikes, "positions", spikes), dtype=float).ravel()
    x = np.asarray(bulk.x, dtype=float)
    dens = np.asarray(bulk.density, dtype=float)
    lo = [float(x.min())] + [a for a, _ in bulk.support]
    hi = [float(x.max())] + [b for _, b in bulk.support]
    if pos.size:
        lo.append(float(pos.min()))
        hi.append(float(pos.max()))
    ev = None
    if eigenvalues is not None:
        ev = np.asarray(eigenvalues, dtype=float).ravel()
        lo.append(float(ev.min()))
        hi.append(float(ev.max()))
    a, b = min(lo), max(hi)
    pad = 0.02 * (b - a if b > a else 1.0)
    a, b = a - pad, b + pad
    ymax = float(dens.max()) if dens.size else 0.0
    if ev is not None:
        edges = np.linspace(a, b, int(bins) + 1)
        h, _ = np.histogram(ev, bins=edges, density=True)
        if bulk.atom > 0:
            far = np.abs(0.5 * (edges[1:] + edges[:-1]) - bulk.atom_at) > 2 * (edges[1] - edges[0])
            ymax = max(ymax, float(h[far].max()) if far.any() else 0.0)
        else:
            ymax = max(ymax, float(h.max()))
        ax.hist(ev, bins=edges, density=True, alpha=0.4, color="C0",
                label=f"{label} ({ev.size} eigenvalues)")
    curve = dens
    xs = x
    if bulk.atom > 0 and atom_width is not None and atom_width > 0:
        xs = np.union1d(x, np.linspace(bulk.atom_at - 5 * atom_width,
                                       bulk.atom_at + 5 * atom_width, 201))
        curve = np.interp(xs, x, dens, left=0.0, right=0.0) + bulk.atom * np.exp(
            -0.5 * ((xs - bulk.atom_at) / atom_width) ** 2) / (atom_width * np.sqrt(2 * np.pi))
    ax.plot(xs, curve, color="C3", linewidth=1.6, label="predicted density (§7)")
    top = ylim_factor * ymax if ymax > 0 else 1.0
    if bulk.atom > 0 and (atom_width is None or atom_width <= 0):
        ax.annotate("", xy=(bulk.atom_at, 0.0), xytext=(bulk.atom_at, 0.8 * top),
                    arrowprops=dict(arrowstyle="->", color="C2", linewidth=1.6))
        ax.text(bulk.atom_at, 0.82 * top, f" atom {bulk.atom:.3f} at {bulk.atom_at:.4g}",
                color="C2", fontsize=8, ha="left", va="bottom")
    for i, s in enumerate(pos):
        ax.axvline(s, color="k", linestyle="--", linewidth=0.9,
                   label="predicted isolated eigenvalues" if i == 0 else None)
    if pos.size:
        ax.plot(pos, np.full(pos.size, 0.03 * top), "kv", markersize=6)
    ax.set_xlim(a, b)
    ax.set_ylim(0.0, top)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return ax
