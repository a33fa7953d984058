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


def _log_axes(ax: Any, x: np.ndarray) -> None:
    """Log-log axes with readable plain-number ticks: the x ticks at the dimensions
    plotted, the y ticks at a few round numbers (denser when the errors span less than a
    decade).  Call after the data are drawn."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(NullLocator())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(np.unique(x))
    ax.xaxis.set_major_formatter(plain)
    lo, hi = ax.get_ylim()
    decades = np.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    subs = ((1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1 else
            (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,))
    ax.yaxis.set_major_locator(LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())


@styled
def plot_error_vs_dimension(p: Any, errors: Mapping[str, Any], *, ax: Any = None,
                            slopes: Mapping[str, Any] | None = None,
                            errorbars: Mapping[str, Any] | None = None,
                            bounds: Mapping[str, Any] | None = None,
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
        One error series per label (positive; NaN marks a missing point, not drawn, e.g.
        a failed measurement).
    ax : matplotlib Axes, optional
        Axes to draw on; default a new column-width figure.
    slopes : mapping label -> fit, optional
        Fitted rates shown in the legend: an object with ``value`` and
        ``interval(confidence)`` (e.g. :class:`rmt_deq.experiments.harness.SlopeFit`) or a
        number. The plot computes no statistics itself.
    errorbars : mapping label -> array_like, shape (P,), optional
        Half-widths drawn as vertical bars (e.g. Monte-Carlo error bars).
    bounds : mapping label -> array_like, shape (P,), optional
        A level to compare each series with (e.g. its Monte-Carlo error bound), drawn as a
        thin dotted line in the series' colour, without a legend entry (say what it is in
        the caption or title); NaN for a missing point.
    confidence : float
        Level of the slope intervals shown.
    reference_slope : float or None
        A grey dotted guide line of this slope (default -1/2, the p^-1/2 rate), through
        the first point of the first series; None draws none.  The legend, when there are
        slopes, is titled with what the bracket is (the ``confidence`` interval).
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
    bounds = bounds or {}
    for i, (label, err) in enumerate(errors.items()):
        y = np.asarray(err, dtype=float).ravel()
        if y.shape != x.shape:
            raise InvalidParameterError(
                f"error series {label!r} has {y.size} values for {x.size} dimensions")
        if not np.all((y > 0) | np.isnan(y)) or np.all(np.isnan(y)):
            raise InvalidParameterError(
                f"error series {label!r} must be positive (NaN for a missing point, not "
                f"all), got {y.tolist()!r:.200}")
        kw = dict(color=color(i), marker="os^Dv<>p"[i % 8], linestyle="-",
                  label=_slope_label(label, slopes.get(label), confidence))
        if label in errorbars:
            ax.errorbar(x, y, yerr=np.asarray(errorbars[label], float), capsize=2, **kw)
        else:
            ax.plot(x, y, **kw)
        if label in bounds:
            ax.plot(x, np.asarray(bounds[label], dtype=float).ravel(), color=kw["color"],
                    linestyle=":", linewidth=0.9, label="_bound")
    if reference_slope is not None and errors:
        first = np.asarray(next(iter(errors.values())), float).ravel()
        k = int(np.flatnonzero(~np.isnan(first))[0])
        ax.plot(x, first[k] * (x / x[k]) ** reference_slope, color="0.6", linestyle=":",
                linewidth=0.9, label=f"reference slope {reference_slope:g}")
    _log_axes(ax, x)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    title_ = (f"fitted log-log slope [{confidence:.0%} confidence interval]"
              if any(label in slopes for label in errors) else None)
    if legend == "below":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, title=title_,
                  title_fontsize=6.5)
    elif legend == "inside":
        ax.legend(loc="best", title=title_, title_fontsize=6.5)
    return ax
