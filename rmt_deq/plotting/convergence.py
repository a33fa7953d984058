"""Error against dimension on log-log axes, with the fitted rates and their confidence."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rmt_deq.errors import InvalidParameterError
from rmt_deq.plotting.style import color, new_figure, styled

__all__ = ["plot_error_vs_dimension"]


def _slope_label(label: str, fit: Any, confidence: float) -> str:
    """``label, slope -0.52 [-0.61, -0.43]`` (the interval when the fit has one)."""
    if fit is None:
        return label
    value = float(getattr(fit, "value", fit))
    interval = getattr(fit, "interval", None)
    if interval is not None:
        lo, hi = interval(confidence)
        if np.isfinite(lo) and np.isfinite(hi):
            return f"{label}: slope {value:.2f} [{lo:.2f}, {hi:.2f}]"
    return f"{label}: slope {value:.2f}"


@styled
def plot_error_vs_dimension(p: Any, errors: Mapping[str, Any], *, ax: Any = None,
                            slopes: Mapping[str, Any] | None = None,
                            errorbars: Mapping[str, Any] | None = None,
                            confidence: float = 0.95, reference_slope: float | None = -0.5,
                            xlabel: str = "dimension p",
                            ylabel: str = "relative error (operator norm)",
                            title: str | None = None, legend: str = "below") -> Any:
    """Log-log plot of error series against the dimension p.

    Parameters
    ----------
    p : array_like, shape (P,)
        The dimensions (positive).
    errors : mapping label -> array_like, shape (P,)
        One error series per label (positive).
    ax : matplotlib Axes, optional
        Axes to draw on; default a new column-width figure.
    slopes : mapping label -> fit, optional
        Fitted rates shown in the legend: an object with ``value`` and
        ``interval(confidence)`` (e.g. :class:`rmt_deq.experiments.harness.SlopeFit`) or a
        number. The plot computes no statistics itself.
    errorbars : mapping label -> array_like, shape (P,), optional
        Half-widths drawn as vertical bars (e.g. Monte-Carlo error bars).
    confidence : float
        Level of the slope intervals shown.
    reference_slope : float or None
        A grey guide line of this slope (default the p^-1/2 rate), through the first point
        of the first series; None draws none.
    xlabel, ylabel, title : str
    legend : {"below", "inside", "none"}
        "below" puts the legend under the axes, where it cannot cover data.

    Returns
    -------
    matplotlib Axes
    """
    if legend not in ("below", "inside", "none"):
        raise InvalidParameterError(
            f"legend must be 'below', 'inside' or 'none', got {legend!r}")
    if ax is None:
        _, ax = new_figure("column", 0.9)
    x = np.asarray(p, dtype=float).ravel()
    slopes = slopes or {}
    errorbars = errorbars or {}
    for i, (label, err) in enumerate(errors.items()):
        y = np.asarray(err, dtype=float).ravel()
        if y.shape != x.shape:
            raise InvalidParameterError(
                f"error series {label!r} has {y.size} values for {x.size} dimensions")
        kw = dict(color=color(i), marker="os^Dv<>p"[i % 8], linestyle="-",
                  label=_slope_label(label, slopes.get(label), confidence))
        if label in errorbars:
            ax.errorbar(x, y, yerr=np.asarray(errorbars[label], float), capsize=2, **kw)
        else:
            ax.plot(x, y, **kw)
    if reference_slope is not None and errors:
        y0 = float(np.asarray(next(iter(errors.values())), float).ravel()[0])
        ax.plot(x, y0 * (x / x[0]) ** reference_slope, color="0.6", linestyle=":",
                linewidth=0.9, label=f"reference rate p^{reference_slope:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend == "below":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    elif legend == "inside":
        ax.legend(loc="best")
    return ax
