"""The result objects of the spectra layer (immutable, JSON-ready, the Stieltjes solve's
SolverReport) and the one implementation of the spectral distances (rmt_deq.metrics), for
reference eigenvalues and for a predicted distribution with an atom (docs/theory.md §7.4).

The distances are checked against scipy (two samples; a continuous distribution) and
against closed forms computed here.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import stats

from rmt_deq._results import SolverReport
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.metrics import (SpectralDistances, ks_distance, spectral_distances,
                             wasserstein1_distance)
from rmt_deq.spectra.bulk import kernel_bulk
from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.spikes import isolated_eigenvalues, observed_alignments
from rmt_deq.spectra.stieltjes import gram_support, stieltjes


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_case():
    p = 60
    gen = np.random.default_rng(0)
    means = np.vstack([3.0 * np.eye(p)[0], 4.0 * np.eye(p)[1]])
    covs = np.vstack([np.linspace(0.5, 1.5, p), np.full(p, 1.0)])
    model = gram_model(covs, [30, 50], means=means)
    L = gen.standard_normal((3, 3))
    bulk = kernel_bulk(model, c1=0.8, c0=0.2, num=32, scan=64, cdf_nodes=50)
    spikes = isolated_eigenvalues(model, (0.8, L, 0.2), bulk=bulk)
    return means, covs, model, bulk, spikes


def _arrays(obj):
    return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)
            if isinstance(getattr(obj, f.name), np.ndarray)]


def test_results_are_immutable_and_json_ready(small_case):
    means, covs, model, bulk, spikes = small_case
    sol = stieltjes(model, np.array([0.5 + 0.1j, 1.0]), mean_quadratic=True)
    for obj in (model, bulk, spikes, sol):
        arrays = _arrays(obj)
        assert arrays
        for name, a in arrays:
            assert not a.flags.writeable, (type(obj).__name__, name)
            with pytest.raises(ValueError):
                a[(0,) * a.ndim] = 1.0
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.unknown = "x"
    for obj in (model, bulk, spikes):
        d = obj.to_dict()
        assert json.loads(json.dumps(d, allow_nan=False)) == d
    # an unbounded side of a gap is null (strict JSON), the bounded sides are numbers
    gaps = spikes.to_dict()["gaps"]
    assert gaps[0][0] is None and gaps[-1][1] is None
    assert gaps[-1][0] == pytest.approx(bulk.support[-1][1])
    # the model does not share memory with the caller's arrays
    before = model.to_dict()
    means[0, 0] += 1.0
    covs[0, 0] += 1.0
    assert model.to_dict() == before and model.MtM[0, 0] == pytest.approx(9.0)
    means[0, 0] -= 1.0
    covs[0, 0] -= 1.0
    # dataclasses.replace rebuilds a result (frozen, not copied by hand)
    assert dataclasses.replace(bulk, mass=0.5).mass == 0.5 and bulk.mass != 0.5


def test_stieltjes_report():
    """The Newton solve reports its convergence as a SolverReport: converged, the largest
    final relative step within its tolerance, one history entry per Newton evaluation."""
    model = gram_model(np.vstack([np.linspace(0.4, 1.6, 200), np.ones(200)]), [60, 80])
    z = np.array([0.3 + 0.2j, 1.0 + 1e-3j, 2.5 + 1e-6j, 4.0 + 2.0j])
    rep = stieltjes(model, z).report
    assert isinstance(rep, SolverReport) and rep.converged
    assert 0 <= rep.residual <= rep.tolerance
    assert rep.iterations == len(rep.history) > 0
    assert rep.residual <= 1e-13          # no point next to a support edge here
    assert "4 points" in rep.message and json.dumps(rep.to_dict(), allow_nan=False)


# ---------------------------------------------------------------------------------------
# spectral distances
# ---------------------------------------------------------------------------------------
class UniformWithAtom:
    """Uniform on [0, 1] with mass 1 - atom, plus an atom at ``atom_at`` (> 1): a
    distribution in the sense of rmt_deq.metrics.spectral_distances, written here."""

    def __init__(self, atom, atom_at=2.0):
        self.atom, self.atom_at = atom, atom_at
        self.width = atom_at if atom > 0 else 1.0

    def cdf(self, y):
        y = np.asarray(y, dtype=float)
        return (1 - self.atom) * np.clip(y, 0, 1) + self.atom * (y >= self.atom_at)

    def quantile(self, t):
        t = np.asarray(t, dtype=float)
        return np.where(t <= 1 - self.atom, t / (1 - self.atom), self.atom_at)


def test_distances_between_eigenvalues_match_scipy():
    gen = np.random.default_rng(1)
    for na, nb in ((40, 40), (37, 91)):
        a = gen.standard_normal(na)
        b = 1.3 * gen.standard_normal(nb) + 0.1
        d = spectral_distances(a, b)
        assert isinstance(d, SpectralDistances) and d.n_used == na and d.excluded == ()
        ks = stats.ks_2samp(a, b).statistic
        w1 = stats.wasserstein_distance(a, b)
        assert d.ks == pytest.approx(ks, abs=1e-15) and ks_distance(a, b) == d.ks
        assert d.w1 == pytest.approx(w1, rel=1e-12) and wasserstein1_distance(a, b) == d.w1
        assert d.width == pytest.approx(b.max() - b.min(), rel=1e-15)
        assert d.w1_relative == pytest.approx(d.w1 / d.width, rel=1e-15)
    # ties (rounded values) and exclusion: the nearest eigenvalue to each position goes
    a = np.round(gen.standard_normal(60), 1)
    b = np.round(gen.standard_normal(50), 1)
    d = spectral_distances(np.append(a, [10.0, -10.0]), b, exclude=[9.0, -12.0])
    assert d.excluded == (10.0, -10.0) and d.n_used == 60
    assert d.ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)
    assert d.w1 == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


def test_distances_to_a_continuous_distribution():
    """KS against scipy's one-sample test; W1 against the closed form int |Q_n(t) - t| dt,
    the midpoint rule erring by at most 1/(4 n m^2) (one kink of |x - t| per step)."""
    gen = np.random.default_rng(2)
    ev = gen.uniform(-0.1, 1.2, 80)
    ref = UniformWithAtom(0.0)
    d = spectral_distances(ev, ref, subdivisions=8)
    assert d.ks == pytest.approx(stats.kstest(ev, "uniform").statistic, abs=1e-15)
    x = np.sort(ev)
    n = x.size
    lo, hi = np.arange(n) / n, np.arange(1, n + 1) / n
    # int_lo^hi |x - t| dt in closed form, with the kink at t = x when inside
    c = np.clip(x, lo, hi)
    exact = np.sum(0.5 * ((c - lo) * (2 * x - c - lo)) + 0.5 * ((hi - c) * (hi + c - 2 * x)))
    assert abs(d.w1 - exact) <= 1 / (4 * n * 8 ** 2)
    assert d.width == 1.0


def _int_abs_linear(c, s, t0, t1):
    """int_{t0}^{t1} |c - s t| dt exactly (split at the kink t = c/s when inside)."""
    def prim(a, b):     # int_a^b (c - s t) dt
        return c * (b - a) - 0.5 * s * (b * b - a * a)
    if s != 0 and t0 < c / s < t1:
        k = c / s
        return abs(prim(t0, k)) + abs(prim(k, t1))
    return abs(prim(t0, t1))


def test_distances_to_a_distribution_with_an_atom():
    """The atom is a jump of the CDF: observed eigenvalues at it (within the tolerance)
    count there.  KS by hand for a small sample; W1 in closed form, the midpoint rule
    erring by at most (Lipschitz constant 4/3) h^2/4 per step with a kink, h = 1/(n m)."""
    ref = UniformWithAtom(0.25)
    ev = np.array([0.1, 0.5, 2.0 + 1e-12, 2.0 - 1e-12, 3.0])
    d = spectral_distances(ev, ref)
    # F_ref = 0.75 y on [0, 1], 0.75 on [1, 2), 1 from 2 on.  F_obs = 0.2 from 0.1, 0.4
    # from 0.5, 0.8 from 2 (both near-atom values snap to it), 1 from 3.  The largest gap
    # is on [1, 2): 0.75 - 0.4
    assert d.ks == pytest.approx(0.35, abs=1e-15)
    # zero tolerance: 2 - 1e-12 stays below the atom, F_obs = 0.6 on [2, 2 + 1e-12) where
    # F_ref = 1
    assert spectral_distances(ev, ref, atom_tolerance=0.0).ks == pytest.approx(0.4, abs=1e-15)
    # W1 = int_0^1 |Q_obs - Q_ref|: Q_obs = 0.1, 0.5, 2, 2, 3 on the fifths, Q_ref = t/0.75
    # up to 0.75 and 2 after
    edges = [0.0, 0.2, 0.4, 0.6, 0.75, 0.8, 1.0]
    q_obs = [0.1, 0.5, 2.0, 2.0, 2.0, 3.0]
    exact = sum(_int_abs_linear(q, 1 / 0.75, a, b) if b <= 0.75 else
                _int_abs_linear(q - 2.0, 0.0, a, b)
                for q, a, b in zip(q_obs, edges[:-1], edges[1:]))
    n, m = ev.size, 16
    assert abs(d.w1 - exact) <= n * (4 / 3) * (1 / (n * m)) ** 2 / 4


def test_spectral_distance_bad_inputs(small_case):
    bulk = small_case[3]
    ev = np.linspace(0.5, 1.5, 20)
    with pytest.raises(InvalidParameterError, match="observed eigenvalues first"):
        spectral_distances(bulk, ev)
    with pytest.raises(InvalidParameterError, match="subdivisions applies"):
        spectral_distances(ev, ev, subdivisions=4)
    with pytest.raises(InvalidParameterError, match="atom_tolerance applies"):
        spectral_distances(ev, ev, atom_tolerance=1e-3)
    with pytest.raises(InvalidParameterError, match="only 20 eigenvalues"):
        spectral_distances(ev, bulk, exclude=np.zeros(21))
    with pytest.raises(InvalidParameterError, match="subdivisions"):
        spectral_distances(ev, bulk, subdivisions=0)
    with pytest.raises(InvalidParameterError, match="atom_tolerance"):
        spectral_distances(ev, UniformWithAtom(0.2), atom_tolerance=-1.0)

    class NoQuantile:
        atom, atom_at, width = 0.0, 0.0, 1.0

        def cdf(self, y):
            return np.clip(y, 0, 1)

    with pytest.raises(InvalidParameterError, match="quantile"):
        spectral_distances(ev, NoQuantile())
    with pytest.raises(ShapeMismatchError):
        spectral_distances(np.ones((2, 3)), ev)


def test_observed_alignments_against_hand_computation_and_bad_labels():
    u = np.array([1.0, 1.0, 0.0, 0.0]) / math.sqrt(2)     # the class-0 indicator
    np.testing.assert_allclose(observed_alignments(u, [0, 0, 1, 1]), [[1.0, 0.0]],
                               atol=1e-15)
    with pytest.raises(InvalidParameterError, match="integer classes"):
        observed_alignments(u, [0, 0.5, 1, 1])
    with pytest.raises(InvalidParameterError, match="integer classes"):
        observed_alignments(u, [0, -1, 1, 1])
    with pytest.raises(InvalidParameterError, match="K = 2"):
        observed_alignments(u, [0, 0, 1, 2], K=2)


def test_solver_options_that_would_not_end_or_are_not_finite(small_case):
    model = small_case[2]
    with pytest.raises(InvalidParameterError, match="rtol"):
        gram_support(model, rtol=0.0)            # bisection to 0 would never end
    with pytest.raises(InvalidParameterError, match="rtol"):
        gram_support(model, rtol=1e-20)          # below the float64 spacing of the scale
    with pytest.raises(InvalidParameterError, match="eta_min"):
        stieltjes(model, np.array([1.0]), eta_min=math.inf)
    with pytest.raises(InvalidParameterError, match="xtol"):
        isolated_eigenvalues(model, (1.0, np.zeros((3, 3)), 0.0), xtol=-1.0)
    with pytest.raises(InvalidParameterError, match="GramModel"):
        kernel_bulk("model", c1=1.0, c0=0.0)
