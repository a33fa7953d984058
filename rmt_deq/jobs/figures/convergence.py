"""Error against dimension: the CK and NTK surrogates against the exact infinite-width
kernels as p grows (docs/theory.md §4, §5, §6), on log-log axes with the fitted slopes and
their 95% confidence intervals (:func:`rmt_deq.experiments.harness.fitted_slope`).

Data: :func:`rmt_deq.experiments.harness.sweep_dimension` (the two-class default mixture,
n = 0.8 p; the mixture's means from the seed, the sample at p from seed + 1000 + p).  The
tables hold every case computed; the figures draw a readable subset.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from rmt_deq.experiments.harness import SAMPLE_SEED_OFFSET
from rmt_deq.experiments.surrogates import (ck_surrogate_convergence,
                                            explicit_ntk_convergence,
                                            ntk_surrogate_convergence)
from rmt_deq.jobs.figures._common import display_name, seed_rule
from rmt_deq.jobs.figures.registry import FigureOutput, check_size, register
from rmt_deq.plotting import new_figure, plot_error_vs_dimension
from rmt_deq.plotting.style import styled

__all__ = ["ck_convergence", "ntk_convergence", "SIZES", "dimension_seeds"]

#: the dimensions p of each size
SIZES = {"quick": (100, 200, 400), "full": (200, 400, 800, 1600)}
CK_ACTIVATIONS = ("relu", "tanh", "swish", "erf")
NTK_ACTIVATIONS = ("relu", "tanh", "swish", "erf", "leaky_relu:0.1")
SAS = (0.2, 0.5)
#: the DEQs drawn in the NTK figure (all of NTK_ACTIVATIONS x SAS are in the table)
NTK_DRAWN = (("relu", 0.2), ("tanh", 0.5), ("swish", 0.2))
#: explicit networks (one activation per layer); the first three are drawn
EXPLICIT_CASES = (("relu",), ("relu", "relu"), ("tanh", "swish"), ("tanh",), ("erf", "relu"))
_YLABEL = "relative error, operator norm"
_XLABEL = "dimension p (n = 0.8 p samples)"


def dimension_seeds(seed: int) -> dict:
    """The seeds of :func:`rmt_deq.experiments.harness.sweep_dimension` from ``seed``."""
    return {"mixture": seed_rule(seed, 0),
            "sample": seed_rule(seed, f"{SAMPLE_SEED_OFFSET} + p")}


def _series(rows: Iterable[Any], key: str, group: str | None = None) -> np.ndarray:
    return np.array([getattr(r, key) if group is None else getattr(r, key)[group]
                     for r in rows])


@register("ck_convergence", "CK surrogate against the exact Implicit-CK over p: two and "
                            "three classes, and the published centred T")
@styled
def ck_convergence(size: str, seed: int) -> FigureOutput:
    """Three panels at recurrent weight variance 0.2: (a) two classes, (b) three classes,
    (c) the package's T against the published centred T° (which drops a rank-one block
    and levels off).  The table has sa = 0.2 and 0.5."""
    ps = SIZES[check_size(size)]
    res = [ck_surrogate_convergence(a, sa, ps, K=K, seed=seed)
           for K in (2, 3) for a in CK_ACTIVATIONS for sa in SAS]
    fig, axes = new_figure("full", 0.56, ncols=3)
    for ax, K in zip(axes[:2], (2, 3)):
        sel = [r for r in res if r.K == K and r.sa == SAS[0]]
        plot_error_vs_dimension(
            ps, {display_name(r.activation): _series(r.rows, "error") for r in sel},
            slopes={display_name(r.activation): r.slope for r in sel}, ax=ax,
            xlabel=_XLABEL, ylabel=_YLABEL, title=f"({'ab'[K - 2]}) {K} classes")
    sel = [r for r in res if r.K == 2 and r.sa == SAS[0] and r.activation in ("relu", "swish")]
    errs, slopes = {}, {}
    for r in sel:
        for key, fit, what in (("error", r.slope, "T"), ("error_centred", r.slope_centred,
                                                         "T°")):
            label = f"{display_name(r.activation)}, {what}"
            errs[label], slopes[label] = _series(r.rows, key), fit
    plot_error_vs_dimension(ps, errs, slopes=slopes, ax=axes[2], xlabel=_XLABEL,
                            ylabel=_YLABEL, title="(c) 2 classes: the package's T\n"
                                                  "or the published centred T°")
    fig.suptitle(f"CK surrogate against the exact Implicit-CK of a DEQ (recurrent weight "
                 f"variance {SAS[0]:g})")
    return FigureOutput(fig, {"ps": list(ps), "cases": [r.to_dict() for r in res]},
                        dimension_seeds(seed))


@register("ntk_convergence", "NTK surrogate against the exact NTK over p, per parameter "
                             "group (v, A, B), plain and refined, and explicit networks")
@styled
def ntk_convergence(size: str, seed: int) -> FigureOutput:
    """Six panels: the DEQ's groups v, A, B and their total, the refined total
    (docs/theory.md §5.3), and the total of explicit networks (§6); three cases each."""
    size = check_size(size)
    ps = SIZES[size]
    deq_cases = (NTK_DRAWN if size == "quick"
                 else tuple((a, sa) for a in NTK_ACTIVATIONS for sa in SAS))
    deq = [ntk_surrogate_convergence(a, sa, ps, seed=seed) for a, sa in deq_cases]
    explicit = [explicit_ntk_convergence(c, ps, seed=seed)
                for c in (EXPLICIT_CASES[:3] if size == "quick" else EXPLICIT_CASES)]
    drawn = [r for r in deq if (r.activation, r.sa) in NTK_DRAWN]
    fig, axes = new_figure("full", 1.0, nrows=2, ncols=3)
    panels = (("v", "errors", "(a) group v (readout)"),
              ("A", "errors", "(b) group A (recurrent weights)"),
              ("B", "errors", "(c) group B (input weights)"),
              ("total", "errors", "(d) all groups"),
              ("total", "errors_refined", "(e) all groups, refined surrogate"))
    for ax, (group, key, title) in zip(axes.flat, panels):
        fits = "slopes" if key == "errors" else "slopes_refined"
        label = {id(r): f"{display_name(r.activation)}, {r.sa:g}" for r in drawn}
        plot_error_vs_dimension(
            ps, {label[id(r)]: _series(r.rows, key, group) for r in drawn},
            slopes={label[id(r)]: getattr(r, fits)[group] for r in drawn}, ax=ax,
            xlabel=_XLABEL, ylabel=_YLABEL, title=title)
    names = {id(r): " → ".join(display_name(a) for a in r.activations) for r in explicit[:3]}
    plot_error_vs_dimension(
        ps, {names[id(r)]: _series(r.rows, "errors", "total") for r in explicit[:3]},
        slopes={names[id(r)]: r.slopes["total"] for r in explicit[:3]}, ax=axes.flat[5],
        xlabel=_XLABEL, ylabel=_YLABEL,
        title="(f) explicit networks")
    fig.suptitle("NTK surrogate against the exact NTK, per parameter group\n(a)–(e) DEQs, "
                 "legend: activation, recurrent weight variance; (f) explicit networks")
    return FigureOutput(fig, {"ps": list(ps), "deq": [r.to_dict() for r in deq],
                              "explicit": [r.to_dict() for r in explicit]},
                        dimension_seeds(seed))
