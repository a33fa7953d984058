"""Predicted spectra over observed eigenvalues: density, atom, isolated eigenvalues, zoom."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rmt_deq.errors import InvalidParameterError
from rmt_deq.plotting.style import color, new_figure, styled

__all__ = ["plot_spectrum", "outlier_eigenvalues"]

#: colours: predicted curve and markers, then the observed sets in order
_PREDICTED = "#000000"


def outlier_eigenvalues(eigenvalues: Any, support: Any, *, margin: float = 0.01) -> np.ndarray:
    """Eigenvalues outside the predicted support, widened by ``margin`` of its width.

    Parameters
    ----------
    eigenvalues : array_like
        Observed eigenvalues.
    support : sequence of (lo, hi)
        The predicted support of the bulk (the atom is not part of it).
    margin : float
        Each interval is widened by this fraction of the support's total width.

    Returns
    -------
    ndarray
        The outlying eigenvalues, increasing.
    """
    ev = np.sort(np.asarray(eigenvalues, dtype=float).ravel())
    iv = [(float(a), float(b)) for a, b in support]
    if not iv:
        return ev
    width = max(b for _, b in iv) - min(a for a, _ in iv)
    pad = margin * width
    inside = np.zeros(ev.size, bool)
    for a, b in iv:
        inside |= (ev >= a - pad) & (ev <= b + pad)
    return ev[~inside]


def _observed_sets(eigenvalues: Any, label: str) -> dict[str, np.ndarray]:
    if eigenvalues is None:
        return {}
    if isinstance(eigenvalues, Mapping):
        return {str(k): np.asarray(v, float).ravel() for k, v in eigenvalues.items()}
    return {label: np.asarray(eigenvalues, float).ravel()}


def _zoom(ax: Any, pos: np.ndarray, outliers: Mapping[str, np.ndarray],
          colours: Mapping[str, str]) -> Any:
    """Inset in the upper right: predicted isolated eigenvalues (black, labelled) against
    the observed outliers of each set (coloured ticks, labelled), on one readable scale."""
    pts = [pos] + [v for v in outliers.values()]
    allv = np.concatenate(pts) if pts else np.zeros(0)
    if allv.size == 0:
        return None
    lo, hi = float(allv.min()), float(allv.max())
    span = hi - lo if hi > lo else max(abs(hi), 1e-12) * 0.05
    lo, hi = lo - 0.15 * span, hi + 0.15 * span
    ins = ax.inset_axes([0.58, 0.38, 0.4, 0.45])
    rows = [("predicted", pos, _PREDICTED)] + [(k, v, colours[k]) for k, v in outliers.items()]
    for j, (name, vals, c) in enumerate(rows):
        y = len(rows) - 1 - j
        ins.plot(vals, np.full(vals.size, y), linestyle="none",
                 marker="v" if name == "predicted" else "|", markersize=6, color=c)
        for v in vals[-3:]:  # label the largest few: the values must be readable
            ins.annotate(f"{v:.4g}", (v, y), textcoords="offset points", xytext=(0, 4),
                         ha="center", fontsize=5.5, color=c)
    ins.set_yticks([])
    ins.set_ylim(-0.6, len(rows) - 0.2)
    ins.set_xlim(lo, hi)
    ins.tick_params(axis="x", labelsize=5.5)
    ins.set_title("isolated eigenvalues\n(predicted above, observed below)", fontsize=5.5)
    return ins


@styled
def plot_spectrum(bulk: Any, spikes: Any = None, *, eigenvalues: Any = None, bins: int = 80,
                  ax: Any = None, title: str | None = None, label: str = "sampled",
                  atom_width: float | None = None, ylim_factor: float = 1.35,
                  zoom: bool | str = "auto", legend: str = "below") -> Any:
    """Predicted limiting spectrum over histograms of observed eigenvalues (docs/theory.md §7).

    Draws, for each set of observed eigenvalues, a histogram (the first filled, the others
    as outlines) normalised as a density over all of that set's eigenvalues; the predicted
    density of the bulk (``bulk.x``, ``bulk.density``); the atom (when ``bulk.atom > 0``)
    as an arrow labelled with its mass, or with ``atom_width`` as a Gaussian of that width
    and the atom's mass; the predicted isolated eigenvalues as black triangles and the
    observed outliers (eigenvalues outside the predicted support, see
    :func:`outlier_eigenvalues`) as coloured ticks under the axis line; and, where there
    are isolated eigenvalues, a zoom inset that sets the predicted positions beside the
    observed ones with their values printed.

    Parameters
    ----------
    bulk : rmt_deq.spectra.bulk.BulkSpectrum
        The predicted bulk (density, support, atom).
    spikes : rmt_deq.spectra.spikes.Spikes or array_like, optional
        Predicted isolated eigenvalues (a Spikes result or the positions).
    eigenvalues : array_like or mapping label -> array_like, optional
        Observed eigenvalues (e.g. of the exact and of the sampled kernel).
    bins : int
        Histogram bins over the range of the eigenvalues, the support and the spikes.
    ax : matplotlib Axes, optional
        Axes to draw on; default a new column-width figure.
    title : str, optional
    label : str
        Legend label of a single (unnamed) set of eigenvalues.
    atom_width : float, optional
        Draw the atom smoothed by a Gaussian of this standard deviation instead of an arrow.
    ylim_factor : float
        The y axis is cut at this multiple of the larger of the predicted density's and the
        histograms' maxima away from the atom (the atom's bin would flatten everything).
    zoom : bool or "auto"
        Draw the isolated-eigenvalue inset; "auto" draws it when there is any predicted
        spike or observed outlier.
    legend : {"below", "inside", "none"}
        "below" puts the legend under the axes, where it cannot cover data.

    Returns
    -------
    matplotlib Axes
        The main axes (the inset, if drawn, is a child of it).
    """
    if legend not in ("below", "inside", "none"):
        raise InvalidParameterError(
            f"legend must be 'below', 'inside' or 'none', got {legend!r}")
    if zoom not in (True, False, "auto"):
        raise InvalidParameterError(f"zoom must be True, False or 'auto', got {zoom!r}")
    if ax is None:
        _, ax = new_figure("column", 0.95)
    pos = np.zeros(0)
    if spikes is not None:
        pos = np.sort(np.asarray(getattr(spikes, "positions", spikes), dtype=float).ravel())
    sets = _observed_sets(eigenvalues, label)
    colours = {k: color(i) for i, k in enumerate(sets)}
    x = np.asarray(bulk.x, dtype=float)
    dens = np.asarray(bulk.density, dtype=float)
    lo = [float(x.min())] + [a for a, _ in bulk.support]
    hi = [float(x.max())] + [b for _, b in bulk.support]
    for v in [pos, *sets.values()]:
        if v.size:
            lo.append(float(v.min()))
            hi.append(float(v.max()))
    a, b = min(lo), max(hi)
    pad = 0.02 * (b - a if b > a else 1.0)
    a, b = a - pad, b + pad
    ymax = float(dens.max()) if dens.size else 0.0
    edges = np.linspace(a, b, int(bins) + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    far = (np.abs(centres - bulk.atom_at) > 2 * (edges[1] - edges[0]) if bulk.atom > 0
           else np.ones(centres.size, bool))
    for i, (name, ev) in enumerate(sets.items()):
        h, _ = np.histogram(ev, bins=edges, density=True)
        ymax = max(ymax, float(h[far].max()) if far.any() else 0.0)
        style = (dict(alpha=0.35, histtype="stepfilled") if i == 0
                 else dict(histtype="step", linewidth=1.0))
        ax.hist(ev, bins=edges, density=True, color=colours[name],
                label=f"{name} ({ev.size} eigenvalues)", **style)
    curve, xs = dens, x
    if bulk.atom > 0 and atom_width is not None and atom_width > 0:
        xs = np.union1d(x, np.linspace(bulk.atom_at - 5 * atom_width,
                                       bulk.atom_at + 5 * atom_width, 201))
        curve = np.interp(xs, x, dens, left=0.0, right=0.0) + bulk.atom * np.exp(
            -0.5 * ((xs - bulk.atom_at) / atom_width) ** 2) / (atom_width * np.sqrt(2 * np.pi))
    ax.plot(xs, curve, color=_PREDICTED, linewidth=1.1, label="predicted limiting density")
    top = ylim_factor * ymax if ymax > 0 else 1.0
    if bulk.atom > 0 and (atom_width is None or atom_width <= 0):
        ax.annotate("", xy=(bulk.atom_at, 0.0), xytext=(bulk.atom_at, 0.7 * top),
                    arrowprops=dict(arrowstyle="->", color=_PREDICTED, linewidth=1.0))
        ax.text(bulk.atom_at, 0.72 * top, f" atom: mass {bulk.atom:.3f} at {bulk.atom_at:.4g}",
                fontsize=6, ha="left", va="bottom")
    if pos.size:
        ax.plot(pos, np.full(pos.size, 0.06 * top), linestyle="none", marker="v",
                color=_PREDICTED, markersize=5, label="predicted isolated eigenvalues")
    outliers = {k: outlier_eigenvalues(v, bulk.support) for k, v in sets.items()}
    for k, v in outliers.items():
        if v.size:
            ax.plot(v, np.full(v.size, 0.015 * top), linestyle="none", marker="|",
                    markersize=7, color=colours[k], label=f"{k}: outside the predicted support")
    ax.set_xlim(a, b)
    ax.set_ylim(0.0, top)
    ax.set_xlabel("eigenvalue (kernel units)")
    ax.set_ylabel("spectral density")
    if title:
        ax.set_title(title)
    want_zoom = zoom is True or (zoom == "auto" and (pos.size or any(
        v.size for v in outliers.values())))
    if want_zoom:
        _zoom(ax, pos, outliers, colours)
    if legend == "below":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    elif legend == "inside":
        ax.legend(loc="upper left")
    return ax
