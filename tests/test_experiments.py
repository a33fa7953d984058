"""The verification harness: the loop over p, the slope fit, result records, manifests."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re

import numpy as np
import pytest
from scipy import stats

from rmt_deq.data.mixture import default_mixture
from rmt_deq.errors import InvalidParameterError, UnknownOptionError
from rmt_deq.experiments.harness import SAMPLE_SEED_OFFSET, fitted_slope, sweep_dimension
from rmt_deq.experiments.manifest import package_version, portable_path, start_run
from rmt_deq.experiments.mixtures import bulk_mixture, spike_mixture
from rmt_deq.experiments.surrogates import (ck_surrogate_convergence,
                                            explicit_ntk_convergence)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate
from rmt_deq.kernels.exact import exact_ck

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


# ----------------------------------------------------------------------------------------
# the slope fit
# ----------------------------------------------------------------------------------------
def test_fitted_slope_matches_linregress():
    """Slope and standard error against scipy's independent least-squares regression."""
    p = np.array([100.0, 200.0, 400.0, 800.0, 1600.0])
    err = 3.0 * p ** -0.5 * np.array([1.05, 0.97, 1.02, 0.95, 1.01])
    fit = fitted_slope(p, err)
    ref = stats.linregress(np.log(p), np.log(err))
    assert fit.points == 5
    assert fit.value == pytest.approx(ref.slope, rel=1e-12)
    assert fit.stderr == pytest.approx(ref.stderr, rel=1e-10)
    lo, hi = fit.interval(0.9)
    half = stats.t.ppf(0.95, 3) * ref.stderr
    assert (lo, hi) == pytest.approx((ref.slope - half, ref.slope + half), rel=1e-10)


def test_fitted_slope_of_an_exact_power_law_and_few_points():
    p = [100, 400, 1600]
    fit = fitted_slope(p, [2.0 * q ** -0.75 for q in p])
    assert fit.value == pytest.approx(-0.75, abs=1e-13) and fit.stderr <= 1e-13
    two = fitted_slope([100, 400], [0.2, 0.1])
    assert two.value == pytest.approx(-0.5, abs=1e-14) and math.isnan(two.stderr)
    assert all(map(math.isnan, two.interval()))
    one = fitted_slope([100], [0.2])
    assert math.isnan(one.value) and one.points == 1
    with pytest.raises(InvalidParameterError, match="positive"):
        fitted_slope([100, 200], [0.1, 0.0])
    with pytest.raises(InvalidParameterError, match="same length"):
        fitted_slope([100, 200], [0.1])
    with pytest.raises(InvalidParameterError, match="confidence"):
        fit.interval(1.5)


# ----------------------------------------------------------------------------------------
# the loop over p
# ----------------------------------------------------------------------------------------
def test_sweep_dimension_draws_the_standard_data():
    seen, lines = [], []

    def compare(p, mixture, sample):
        seen.append((p, mixture, sample))
        return p * 10

    rows = sweep_dimension(compare, [20, np.int64(30)], K=3, ratio=0.5, seed=4,
                           describe=lambda r: f"row {r}", progress=lines.append)
    assert rows == (200, 300) and lines == ["row 200", "row 300"]
    for p, mixture, sample in seen:
        ref = default_mixture(p, 3, rng=4)
        np.testing.assert_array_equal(mixture.means, ref.means)
        expected = ref.sample(int(round(0.5 * p)), rng=4 + SAMPLE_SEED_OFFSET + p)
        assert sample.n == int(round(0.5 * p)) and type(p) is int
        np.testing.assert_array_equal(sample.X, expected.X)
    with pytest.raises(InvalidParameterError, match="at least one"):
        sweep_dimension(compare, [])
    with pytest.raises(InvalidParameterError, match="p must be a positive integer"):
        sweep_dimension(compare, [20.5])
    with pytest.raises(InvalidParameterError, match="seed"):
        sweep_dimension(compare, [20], seed=-1)
    with pytest.raises(InvalidParameterError, match="ratio"):
        sweep_dimension(compare, [20], ratio=0.0)


# ----------------------------------------------------------------------------------------
# the harnesses' records
# ----------------------------------------------------------------------------------------
def test_ck_convergence_record_is_frozen_and_measures_the_operator_norm():
    res = ck_surrogate_convergence("relu", 0.3, (40, 60), seed=2)
    assert [r.p for r in res.rows] == [40, 60] and res.slope.points == 2
    # the error is ||G~ - G|| / ||G||, here recomputed with numpy's SVD-based 2-norm
    mix = default_mixture(60, 2, rng=2)
    data = mix.sample(48, rng=2 + SAMPLE_SEED_OFFSET + 60)
    sol = solve_four_equations("relu", 0.3, mix.statistics(data).tau0)
    G = exact_ck(data.X, "relu", 0.3, solution=sol).ck
    Gs = mixture_ck_surrogate(mix, data, solution=sol).ck
    ref = np.linalg.norm(Gs - G, 2) / np.linalg.norm(G, 2)
    assert res.rows[1].error == pytest.approx(ref, rel=1e-9)
    assert res.rows[1].norm_G == pytest.approx(np.linalg.norm(G, 2), rel=1e-9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.rows[0].error = 0.0
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["rows"][1]["error"] == res.rows[1].error
    assert set(d["slope"]) == {"value", "stderr", "points"} and d["slope"]["stderr"] is None


def test_explicit_ntk_convergence_record():
    res = explicit_ntk_convergence(["relu"], (40,), workers=1)
    assert res.activations == ("relu",)
    row = res.rows[0]
    assert set(row.errors) == {"v", "W1", "total"} == set(row.errors_refined)
    with pytest.raises(TypeError):
        row.errors["total"] = 0.0           # read-only mapping
    assert math.isnan(res.slopes["total"].value)       # one point: no slope
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["slopes"]["total"]["value"] is None and d["rows"][0]["p"] == 40
    with pytest.raises(InvalidParameterError, match="sequence of activations"):
        explicit_ntk_convergence(3, (40,))


# ----------------------------------------------------------------------------------------
# manifests
# ----------------------------------------------------------------------------------------
def test_manifest_records_provenance_without_machine_paths(tmp_path):
    script = os.path.join(ROOT, "figures", "make_figures.py")
    out = os.path.join(ROOT, "figures", "x.json")
    run = start_run(seeds={"mixture": 0, "sample": "seed + 1000 + p"},
                    argv=[script, "--quick", f"--json={out}", "a b"])
    m = run.manifest(outputs=[out, "rel/y.png"])
    assert m.command == "python figures/make_figures.py --quick --json=figures/x.json 'a b'"
    assert m.outputs == ("figures/x.json", "rel/y.png")
    assert m.version == package_version() != "unknown"
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as fh:
        assert f'version = "{m.version}"' in fh.read()
    assert m.git_commit is None or re.fullmatch(r"[0-9a-f]{40}", m.git_commit)
    assert m.wall_s >= 0 and dict(m.seeds) == {"mixture": 0, "sample": "seed + 1000 + p"}
    text = json.dumps(run.record({"rows": [1]}, outputs=[out]), allow_nan=False)
    assert ROOT not in text and json.loads(text)["rows"] == [1]
    assert portable_path(str(tmp_path / "f")) == str(tmp_path / "f")   # outside: unchanged


# ----------------------------------------------------------------------------------------
# the spectral measurements' mixtures
# ----------------------------------------------------------------------------------------
def test_spectral_mixtures_are_as_documented():
    p = 101
    m = spike_mixture(p, seed=3)
    norms = np.linalg.norm(m.means, axis=1)
    np.testing.assert_allclose(norms, [2.5, 4.0], rtol=1e-13)
    assert abs(m.means[0] @ m.means[1]) <= 1e-12              # orthogonal directions
    np.testing.assert_allclose(m.covs[0], 1.0)
    np.testing.assert_allclose(m.covs[1, :50], 1.5)
    np.testing.assert_allclose(m.covs[1, 50:], 0.5 + 2 / math.sqrt(p), rtol=1e-15)
    np.testing.assert_allclose(m.proportions, [0.4, 0.6])
    iso = bulk_mixture(p, "isotropic", seed=3)
    np.testing.assert_allclose(np.linalg.norm(iso.means, axis=1), 3.0, rtol=1e-13)
    # trace difference tr(C_2 - C_1) = 2 sqrt(p): O(sqrt p), as the regime requires
    assert iso.covs[1].sum() - iso.covs[0].sum() == pytest.approx(2 * math.sqrt(p), rel=1e-12)
    diag = bulk_mixture(p, "diagonal", seed=3)
    np.testing.assert_allclose(diag.covs[0], np.linspace(0.4, 1.6, p))
    np.testing.assert_allclose(diag.covs[1], m.covs[1])
    with pytest.raises(UnknownOptionError):
        bulk_mixture(p, "sample")
