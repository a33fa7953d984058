"""Predicted spectra over observed eigenvalues: density, atom, isolated eigenvalues, zoom."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rmt_deq.errors import InvalidParameterError
from rmt_deq.metrics import nearest_eigenvalues
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


def _spike_groups(pos: np.ndarray, span: float, merge: float = 0.03) -> list[np.ndarray]:
    """Predicted isolated eigenvalues in groups: neighbours closer than ``merge`` of the
    plotted range share one zoom window (e.g. two spikes inside the atom's gap)."""
    groups: list[list[float]] = []
    for v in np.sort(pos):
        if groups and v - groups[-1][-1] < merge * span:
            groups[-1].append(float(v))
        else:
            groups.append([float(v)])
    return [np.asarray(g) for g in groups]


def _zoom(ax: Any, pos: np.ndarray, sets: Mapping[str, np.ndarray],
          colours: Mapping[str, str], span: float, max_windows: int = 4) -> list:
    """A row of zoom windows in the upper right of ``ax``, one per group of predicted
    isolated eigenvalues: the prediction (black triangle) above the observed eigenvalues of
    each set in the window (coloured ticks, one row per set), the prediction and the
    nearest observed eigenvalue of each set printed beside their markers."""
    groups = _spike_groups(pos, span)[-max_windows:]    # the largest ones if there are many
    if not groups:
        return []
    gap, x0, x1 = 0.025, 0.38, 0.995
    width = (x1 - x0 - gap * (len(groups) - 1)) / len(groups)
    rows = [("predicted", None, _PREDICTED)] + [(k, v, colours[k]) for k, v in sets.items()]
    windows = []
    for w, grp in enumerate(groups):
        near = {k: v[nearest_eigenvalues(v, grp)] for k, v in sets.items()
                if v.size >= grp.size}
        pts = np.concatenate([grp, *near.values()])
        lo, hi = float(pts.min()), float(pts.max())
        pad = max(0.45 * (hi - lo), 0.015 * max(abs(lo), abs(hi)), 0.004 * span)
        lo, hi = lo - pad, hi + pad
        ins = ax.inset_axes([x0 + w * (width + gap), 0.40, width, 0.42])
        for j, (name, vals, c) in enumerate(rows):
            y = len(rows) - 1 - j
            if name == "predicted":
                shown, labelled = grp, grp
                ins.plot(shown, np.full(shown.size, y), linestyle="none", marker="v",
                         markersize=5, color=c)
            else:
                shown = vals[(vals >= lo) & (vals <= hi)]
                labelled = near.get(name, np.zeros(0))
                ins.plot(shown, np.full(shown.size, y), linestyle="none", marker="|",
                         markersize=7, markeredgewidth=1.2, color=c)
            crowded = labelled.size > 1 and bool(
                np.min(np.diff(np.sort(labelled))) < 0.25 * (hi - lo))
            for i, v in enumerate(np.sort(labelled)):
                # values printed above the marker, alternating sides inside a group and,
                # where markers crowd, alternating heights too, so no two labels overlap
                ha = "center" if labelled.size == 1 else ("right" if i % 2 == 0 else "left")
                rise = 4 + (7 * (i % min(labelled.size, 3)) if crowded else 0)
                ins.annotate(f"{v:.4g}", (v, y), textcoords="offset points", xytext=(0, rise),
                             ha=ha, va="bottom", fontsize=5.5, color=c)
        ins.set_xlim(lo, hi)
        ins.set_ylim(-0.5, len(rows) - 0.1)
        ins.set_xticks([])
        ins.set_yticks([])
        for side in ("top", "right"):
            ins.spines[side].set_visible(True)
        windows.append(ins)
    ax.text(x0, 0.84, "zoom on the isolated eigenvalues (values printed)",
            transform=ax.transAxes, fontsize=5.5, ha="left", va="bottom")
    return windows


@styled
def plot_spectrum(bulk: Any, spikes: Any = None, *, eigenvalues: Any = None, bins: int = 80,
                  ax: Any = None, title: str | None = None, label: str = "sampled",
                  atom_width: float | None = None, ylim_factor: float = 1.35,
                  zoom: bool | str = "auto", legend: str = "below",
                  counts: bool = True) -> Any:
    """Predicted limiting spectrum over histograms of observed eigenvalues (docs/theory.md §7).

    Draws, for each set of observed eigenvalues, a histogram (the first filled, the others
    as outlines) normalised as a density over all of that set's eigenvalues; the predicted
    density of the bulk (``bulk.x``, ``bulk.density``); the atom (when ``bulk.atom > 0``)
    as an arrow labelled with its mass, or with ``atom_width`` as a Gaussian of that width
    and the atom's mass; the predicted isolated eigenvalues as black triangles and the
    observed outliers (eigenvalues outside the predicted support, see
    :func:`outlier_eigenvalues`) as coloured ticks along the axis line; and, where there
    are predicted isolated eigenvalues, a row of zoom windows in the upper right, one per
    group of nearby isolated eigenvalues (at most four, the largest), each setting the
    prediction above the observed eigenvalues of every set near it, with the predicted
    value and the nearest observed value of each set printed.  Isolated eigenvalues
    between the atom and the bulk are marked but not zoomed on: a finite sample spreads
    the atom over them.

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
        Draw the zoom windows; "auto" (or True) draws them when there is a predicted
        isolated eigenvalue, False never.
    legend : {"below", "inside", "none"}
        "below" puts the legend under the axes, where it cannot cover data; "none" draws
        none (e.g. one legend for a grid of panels, from ``ax.get_legend_handles_labels``).
    counts : bool
        Append the number of eigenvalues to each set's legend label.

    Returns
    -------
    matplotlib Axes
        The main axes (the zoom windows, if drawn, are its ``child_axes``).
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
                label=f"{name} ({ev.size} eigenvalues)" if counts else name, **style)
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
        ax.text(bulk.atom_at, 0.72 * top,
                f" atom\n mass {bulk.atom:.3f}\n at {bulk.atom_at:.4g}",
                fontsize=6, ha="left", va="bottom",
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=0.5))
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
    zoomed = pos
    if bulk.atom > 0 and bulk.support:
        # between the atom and the bulk, isolated eigenvalues lie inside the O(p^-1/2)
        # spread a finite sample gives the atom: marked, but not zoomed on
        edge = min(lo_ for lo_, _ in bulk.support)
        zoomed = pos[~((pos > bulk.atom_at) & (pos < edge))]
    if zoom is not False and zoomed.size:
        _zoom(ax, zoomed, sets, colours, b - a)
    if legend == "below":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    elif legend == "inside":
        ax.legend(loc="upper left")
    return ax
