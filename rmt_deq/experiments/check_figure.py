"""The one-page figure of a check (:func:`rmt_deq.experiments.check.run_check`).

Four panels on a full-width page (:func:`rmt_deq.plotting.new_figure`, journal style):
(a) the CK's predicted spectrum over the exact and the sampled eigenvalues, (b) the same
for the NTK (:func:`rmt_deq.plotting.plot_spectrum`), (c) every distance of the table as
its ratio to the expected size (a bar per row, coloured by the verdict, the line at 1 the
expected size), (d) the DEQ's centred activation beside the designed network's layers, each
against its input in units of its input scale.  Nothing is computed here but the curves
of the activations.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rmt_deq.activations import get_activation
from rmt_deq.experiments.check import CheckResult
from rmt_deq.plotting import PALETTE, journal_style, new_figure, plot_spectrum

__all__ = ["check_figure"]

#: colours of the verdicts in panel (c): within, beyond, no verdict
_VERDICT_COLOURS = {"yes": PALETTE[2], "no": PALETTE[1], "n/a": "#999999"}
#: panel (c) draws ratios below this at this value (the design equations' ~1e-6)
_RATIO_FLOOR = 1e-3
#: the range of the activations' inputs, in units of their input scale
_SPAN = 3.0


def _spectrum_panel(ax: Any, result: CheckResult, kind: str, letter: str) -> None:
    pred = result.predictions[kind]
    comps = result.spectra[kind]
    s = result.sampling
    name = {"ck": "CK G", "ntk": "NTK"}[kind]
    sets = {f"exact {name}": comps["exact"].eigenvalues,
            f"sampled {name} (m = {s['width']}, R = {s['realizations']})":
                comps["sampled"].eigenvalues}
    d = comps["exact"].distances
    plot_spectrum(pred.bulk, pred.spikes, eigenvalues=sets, ax=ax, bins=60, legend="none",
                  title=f"({letter}) {name}: predicted spectrum over the exact and sampled "
                        f"eigenvalues\nexact bulk: Kolmogorov-Smirnov {d.ks:.3f}, "
                        f"Wasserstein-1 {d.w1_relative:.4f} bulk widths")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)


def _ratio_panel(ax: Any, result: CheckResult) -> None:
    rows = [r for r in result.rows if r.ratio is not None]
    y = np.arange(len(rows))[::-1]
    ratios = np.array([max(r.ratio, _RATIO_FLOOR) for r in rows])
    colours = [_VERDICT_COLOURS[r.verdict] for r in rows]
    ax.barh(y, ratios, color=colours, height=0.7)
    for yy, r in zip(y, rows):
        if r.ratio < _RATIO_FLOOR:
            ax.annotate(f"{r.ratio:.1g}", (_RATIO_FLOOR, yy), xytext=(2, 0),
                        textcoords="offset points", va="center", fontsize=5.5)
    ax.axvline(1.0, color="#000000", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(_RATIO_FLOOR, max(3.0, 1.5 * float(ratios.max())))
    ax.set_yticks(y)
    ax.set_yticklabels([r.key for r in rows], fontsize=5.5)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"value / expected size (beyond 1: larger than expected; "
                  f"floor {_RATIO_FLOOR:g})")
    ax.set_title("(c) every distance against its expected size")
    for colour, label in ((_VERDICT_COLOURS["yes"], "within"),
                          (_VERDICT_COLOURS["no"], "beyond"),
                          (_VERDICT_COLOURS["n/a"], "no verdict (bound says nothing)")):
        ax.barh([np.nan], [np.nan], color=colour, label=label)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)


def _activation_panel(ax: Any, result: CheckResult) -> None:
    s = np.linspace(-_SPAN, _SPAN, 401)
    sol = result.solution
    phi = get_activation(sol.activation)
    ax.plot(s, phi.fn(sol.tau * s) - sol.centring, color="#000000",
            label=f"DEQ {sol.activation}, input scale tau = {sol.tau:.3g}")
    net = result.network
    if net is not None:
        taus, cs = net.taus, net.centrings
        for l, act in enumerate(net.activations):
            ax.plot(s, act.fn(taus[l] * s) - cs[l], color=PALETTE[l % len(PALETTE)],
                    linestyle=("--", ":")[l % 2],
                    label=f"{net.family} layer {l + 1}, input scale tau_{l} = {taus[l]:.3g}")
        title = f"(d) activations: DEQ and designed {net.family}"
    else:
        title = "(d) activation of the DEQ (no design)"
    ax.axhline(0.0, color="#999999", linewidth=0.5)
    ax.set_xlabel("input / its scale tau")
    ax.set_ylabel("centred activation")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)


def check_figure(result: CheckResult) -> Any:
    """The four-panel figure of a check (module docstring), a pyplot-free matplotlib
    Figure of the full text width, one page high (write it with
    :func:`rmt_deq.plotting.save_figure`): the two spectra span the width (room for the
    zoom on the isolated eigenvalues), the table's ratios and the activations share the
    last row."""
    with journal_style():
        fig, axes = new_figure("full", 1.3, nrows=3, ncols=2)
        grid = axes[0, 0].get_gridspec()
        for ax in axes[:2].ravel():
            ax.remove()
        _spectrum_panel(fig.add_subplot(grid[0, :]), result, "ck", "a")
        _spectrum_panel(fig.add_subplot(grid[1, :]), result, "ntk", "b")
        _ratio_panel(axes[2, 0], result)
        _activation_panel(axes[2, 1], result)
        fig.suptitle(f"rmt-deq check: {result.activation} DEQ, sa = {result.sa:g}, "
                     f"p = {result.p}, n = {result.n}, K = {result.K}\n{result.source}")
    return fig
