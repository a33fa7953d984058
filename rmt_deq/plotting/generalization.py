"""Predicted against observed generalization errors of the ridge learners."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rmt_deq.errors import InvalidParameterError
from rmt_deq.plotting.style import color, new_figure, styled

__all__ = ["plot_generalization"]

#: how each learner is named on the axis
_NAMES = {"deq_rf": "DEQ random\nfeatures", "enn_rf": "designed network\nrandom features",
          "ck_kernel": "exact CK\nkernel ridge", "ntk_kernel": "exact NTK\nkernel ridge"}


@styled
def plot_generalization(report: Mapping[str, Any], *, score: str = "test_mse", ax: Any = None,
                        title: str | None = None) -> Any:
    """Observed score of each learner (mean over seeds with its standard error) beside the
    score predicted without training.

    Parameters
    ----------
    report : mapping
        The generalization job's report (:func:`rmt_deq.jobs.generalization.generalization_report`):
        ``observed`` ``{learner: {score, score_se, ...}}``, ``predicted``
        ``{learner: {score, ...}}`` (from the statistics through the surrogates) and,
        optionally, ``predicted_exact_kernel`` (from the exact kernel).
    score : {"test_mse", "train_mse", "test_accuracy"}
    ax : matplotlib Axes, optional
        Axes to draw on; default a new column-width figure.
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    if score not in ("test_mse", "train_mse", "test_accuracy"):
        raise InvalidParameterError(
            f"score must be 'test_mse', 'train_mse' or 'test_accuracy', got {score!r}")
    observed = report.get("observed") or {}
    if not observed:
        raise InvalidParameterError("the report has no observed scores to draw")
    if ax is None:
        _, ax = new_figure("column", 0.85)
    learners = list(observed)
    x = np.arange(len(learners), dtype=float)
    obs = np.array([observed[k][score] for k in learners], float)
    se = np.array([observed[k].get(f"{score}_se") or 0.0 for k in learners], float)
    ax.bar(x, obs, width=0.5, color=color(0), alpha=0.45,
           label="observed (mean over seeds)")
    ax.errorbar(x, obs, yerr=se, fmt="none", ecolor=color(0), capsize=3,
                label="one standard error")
    for j, (key, name, marker) in enumerate(
            (("predicted", "predicted from the class statistics", "D"),
             ("predicted_exact_kernel", "predicted from the exact kernel", "o"))):
        pred = report.get(key) or {}
        xs = [i for i, k in enumerate(learners) if k in pred and pred[k].get(score) is not None]
        if xs:
            ax.plot(x[xs] + (0.12 if j else -0.12), [pred[learners[i]][score] for i in xs],
                    linestyle="none", marker=marker, color=color(1 + j), label=name)
    ax.set_xticks(x)
    ax.set_xticklabels([_NAMES.get(k, k) for k in learners], fontsize=6)
    ax.set_ylabel({"test_mse": "test mean squared error",
                   "train_mse": "training mean squared error",
                   "test_accuracy": "test accuracy"}[score])
    if title:
        ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
    return ax
