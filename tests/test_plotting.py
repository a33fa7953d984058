"""The plotting layer: outliers against the support, the journal style, deterministic files."""
from __future__ import annotations

import types

import numpy as np
import pytest

from rmt_deq.errors import InvalidParameterError
from rmt_deq.plotting import (PALETTE, new_figure, outlier_eigenvalues,
                              plot_error_vs_dimension, plot_spectrum, save_figure)


def _bulk():
    x = np.linspace(0.0, 1.0, 201)
    return types.SimpleNamespace(x=x, density=6 * x * (1 - x), support=((0.0, 1.0),),
                                 atom=0.0, atom_at=0.0)


def test_outliers_are_the_eigenvalues_outside_the_widened_support():
    ev = np.array([-0.5, -0.005, 0.2, 0.9, 1.005, 1.02, 1.5])
    # support [0, 1] widened by 1% of its width: [-0.01, 1.01]
    np.testing.assert_array_equal(outlier_eigenvalues(ev, [(0.0, 1.0)]), [-0.5, 1.02, 1.5])
    # two intervals: the gap between them is outside
    got = outlier_eigenvalues([0.1, 0.5, 0.9], [(0.0, 0.2), (0.8, 1.0)], margin=0.0)
    np.testing.assert_array_equal(got, [0.5])


def test_spectrum_plot_marks_each_set_and_zooms_on_the_isolated_eigenvalues():
    rng = np.random.default_rng(0)
    sets = {"exact": np.r_[rng.beta(2, 2, 300), 1.4], "sampled": np.r_[rng.beta(2, 2, 300), 1.45]}
    ax = plot_spectrum(_bulk(), [1.38], eigenvalues=sets)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "exact: outside the predicted support" in labels
    assert "sampled: outside the predicted support" in labels
    assert len(ax.child_axes) == 1                     # the zoom inset
    inset_text = {t.get_text() for t in ax.child_axes[0].texts}
    assert {"1.38", "1.4", "1.45"} <= inset_text       # values printed, readable
    assert plot_spectrum(_bulk(), None, eigenvalues=rng.beta(2, 2, 50)).child_axes == []


def test_error_plot_shows_the_given_slopes_with_their_intervals():
    fit = types.SimpleNamespace(value=-0.5, interval=lambda c: (-0.61, -0.39))
    ax = plot_error_vs_dimension([100, 200, 400], {"CK": [0.1, 0.07, 0.05]},
                                 slopes={"CK": fit})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "CK: slope -0.50 [-0.61, -0.39]"
    with pytest.raises(InvalidParameterError, match="3 dimensions"):
        plot_error_vs_dimension([1, 2, 3], {"CK": [1.0, 2.0]})
    with pytest.raises(InvalidParameterError, match="legend"):
        plot_error_vs_dimension([1, 2], {"CK": [1.0, 2.0]}, legend="left")


def test_vector_figures_are_byte_identical_across_runs(tmp_path):
    out = []
    for i in range(2):
        fig, ax = new_figure("column")
        ax.plot([0, 1], [0, 1], color=PALETTE[0])
        path = tmp_path / f"f{i}.pdf"
        save_figure(fig, str(path))
        out.append(path.read_bytes())
    assert out[0] == out[1]
    with pytest.raises(InvalidParameterError, match="width"):
        new_figure("wide")


def test_zoom_has_one_window_per_group_and_skips_the_atom_gap():
    rng = np.random.default_rng(1)
    ev = np.r_[rng.beta(2, 2, 300), 1.31, 1.33, 2.0]
    # 1.3 and 1.32 are closer than 3% of the plotted range: one window; 2.0 its own
    ax = plot_spectrum(_bulk(), [1.3, 1.32, 2.0], eigenvalues={"exact": ev}, counts=False)
    assert len(ax.child_axes) == 2
    assert {"1.3", "1.32", "2"} <= {t.get_text() for w in ax.child_axes for t in w.texts}
    assert "exact" in [t.get_text() for t in ax.get_legend().get_texts()]
    # a spike between the atom and the bulk is marked but not zoomed on
    bulk = types.SimpleNamespace(x=np.linspace(0.5, 1.0, 101),
                                 density=np.full(101, 2.0), support=((0.5, 1.0),),
                                 atom=0.2, atom_at=0.1)
    ax = plot_spectrum(bulk, [0.3, 1.5], eigenvalues=np.r_[np.full(20, 0.1), 0.31,
                                                           np.linspace(0.5, 1, 79), 1.52])
    assert len(ax.child_axes) == 1
    assert "1.5" in {t.get_text() for t in ax.child_axes[0].texts}


def test_error_plot_skips_missing_points_and_draws_bounds_without_legend_entries():
    ax = plot_error_vs_dimension([100, 200, 400], {"a": [0.1, np.nan, 0.05]},
                                 bounds={"a": [0.2, 0.15, np.nan]}, reference_slope=None)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a"]
    assert len(ax.lines) == 2 and ax.lines[1].get_linestyle() == ":"
    with pytest.raises(InvalidParameterError, match="positive"):
        plot_error_vs_dimension([1, 2], {"a": [np.nan, np.nan]})
    with pytest.raises(InvalidParameterError, match="positive"):
        plot_error_vs_dimension([1, 2], {"a": [0.1, -0.1]})
