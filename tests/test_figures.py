"""The figure set (``rmt-deq figures``): registry and command line agree, files and a strict
manifest are written, the same seed gives the same PDF, bad input is refused before
anything is computed; and the small computations the figures added."""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import pytest
from scipy import stats

from rmt_deq._io import dumps
from rmt_deq.cli import build_parser, main
from rmt_deq.data.mixture import default_mixture
from rmt_deq.design.targets import design_target
from rmt_deq.errors import (InvalidParameterError, MissingDependencyError, OutputPathError,
                            UnknownOptionError)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.generalization.problem import mixture_problem
from rmt_deq.generalization.ridge import RIDGE_GRID
from rmt_deq.jobs.figures import FigureOutput, build_figures, figure_names, figure_specs
from rmt_deq.jobs.figures import generalization as gen_figures
from rmt_deq.jobs.figures import registry as registry_module
from rmt_deq.jobs.figures.design import one_layer_slope_bound
from rmt_deq.jobs.figures.registry import FigureSpec
from rmt_deq.jobs.figures.sampling import coverage_interval
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate
from rmt_deq.metrics import nearest_eigenvalues
from rmt_deq.plotting import new_figure

#: the cheapest figure in quick mode (a few seconds with both formats)
CHEAP = "ntk_sampled_gap"


def _strict(text: str):
    """json.loads that refuses NaN and Infinity."""
    def bad(token):
        raise ValueError(f"non-strict JSON constant {token}")
    return json.loads(text, parse_constant=bad)


def _figures_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["figures"]


def test_registry_names_are_the_command_line_choices():
    only = next(a for a in _figures_parser()._actions if a.dest == "only")
    assert list(only.choices) == list(figure_names()) == list(figure_specs())
    assert len(figure_names()) == len(set(figure_names())) >= 10
    for name, spec in figure_specs().items():
        assert spec.name == name and spec.description and callable(spec.build)


def test_cli_writes_the_figure_and_a_strict_manifest(tmp_path, capsys):
    out = tmp_path / "figs"
    rc = main(["figures", "--out", str(out), "--only", CHEAP, "--quick",
               "--format", "png,pdf"])
    assert rc == 0
    names = sorted(os.listdir(out))
    assert names == sorted([f"{CHEAP}.png", f"{CHEAP}.pdf", f"{CHEAP}.json",
                            "manifest.json"])
    assert (out / f"{CHEAP}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / f"{CHEAP}.pdf").read_bytes()[:5] == b"%PDF-"
    man = _strict((out / "manifest.json").read_text(encoding="utf-8"))
    entry = man["figures"][CHEAP]
    assert entry["files"] == [f"{CHEAP}.png", f"{CHEAP}.pdf", f"{CHEAP}.json"]
    assert entry["size"] == "quick" and entry["seconds"] > 0 and entry["seeds"]
    assert entry["command"].startswith("rmt-deq figures ") and "--quick" in entry["command"]
    assert man["manifest"]["version"] and "git_commit" in man["manifest"]
    assert len(man["manifest"]["outputs"]) == 3
    table = _strict((out / f"{CHEAP}.json").read_text(encoding="utf-8"))
    assert table["figure"] == CHEAP and table["results"]["cases"]
    err = capsys.readouterr().err
    assert f"[1/1] {CHEAP}:" in err and "manifest.json" in err


def test_same_seed_gives_byte_identical_pdf_and_the_manifest_keeps_other_figures(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_figures(a, [CHEAP], size="quick", formats="pdf", seed=0)
    build_figures(b, [CHEAP], size="quick", formats="pdf", seed=0)
    assert (a / f"{CHEAP}.pdf").read_bytes() == (b / f"{CHEAP}.pdf").read_bytes()
    # a manifest entry from an earlier run survives a run of another figure
    man = _strict((a / "manifest.json").read_text(encoding="utf-8"))
    man["figures"]["ck_convergence"] = {"files": ["ck_convergence.png"]}
    man["figures"]["no_longer_registered"] = {"files": ["x.png"]}
    (a / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    build_figures(a, [CHEAP], size="quick", formats="pdf", seed=0)
    # entries are kept, in registry order; a name no longer registered is dropped
    kept = _strict((a / "manifest.json").read_text(encoding="utf-8"))["figures"]
    assert list(kept) == ["ck_convergence", CHEAP]
    assert kept["ck_convergence"] == {"files": ["ck_convergence.png"]}


def test_unknown_figure_format_or_size_is_rejected_with_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["figures", "--out", str(tmp_path), "--only", "no_such_figure"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and CHEAP in err and "no_such_figure" in err
    with pytest.raises(UnknownOptionError, match=CHEAP):
        build_figures(tmp_path, ["no_such_figure"])
    with pytest.raises(UnknownOptionError, match="png"):
        build_figures(tmp_path, [CHEAP], formats="png,jpeg")
    with pytest.raises(UnknownOptionError, match="quick"):
        build_figures(tmp_path, [CHEAP], size="tiny")
    with pytest.raises(InvalidParameterError, match="seed"):
        build_figures(tmp_path, [CHEAP], seed=-1)
    assert os.listdir(tmp_path) == []


def test_output_folder_is_checked_before_anything_is_computed(tmp_path, capsys, monkeypatch):
    def never(size, seed):
        raise AssertionError("a figure was computed before the output was checked")

    spec = figure_specs()[CHEAP]
    monkeypatch.setitem(registry_module._REGISTRY, CHEAP,
                        FigureSpec(spec.name, spec.description, never))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    rc = main(["figures", "--out", str(blocker), "--only", CHEAP, "--quick"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("rmt-deq figures: error: OutputPathError:") and "not a folder" in err
    # a manifest.json that is not ours is not replaced
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"mine": 1}')
    with pytest.raises(OutputPathError, match="not a figures manifest"):
        build_figures(folder, [CHEAP], size="quick")
    assert (folder / "manifest.json").read_text() == '{"mine": 1}'


# ----------------------------------------------------------------------------------------
# computations the figures added
# ----------------------------------------------------------------------------------------
def test_nearest_eigenvalues_match_each_position_once():
    ev = np.array([0.1, 0.5, 0.52, 2.0])
    # 0.51 takes 0.5 (nearest), then 0.49 takes the nearest left over, 0.52
    np.testing.assert_array_equal(nearest_eigenvalues(ev, [0.51, 0.49, 3.0]), [1, 2, 3])
    with pytest.raises(InvalidParameterError, match="positions"):
        nearest_eigenvalues([1.0], [1.0, 2.0])


def test_coverage_interval_is_clopper_pearson():
    # closed forms at the ends: k = 0 -> [0, 1 - 0.025^(1/n)], k = n -> [0.025^(1/n), 1]
    n = 20
    assert coverage_interval(0, n) == (0.0, pytest.approx(1 - 0.025 ** (1 / n), rel=1e-12))
    assert coverage_interval(n, n) == (pytest.approx(0.025 ** (1 / n), rel=1e-12), 1.0)
    # inside: the binomial tails at the ends are 2.5% each
    lo, hi = coverage_interval(7, n)
    assert stats.binom.sf(6, n, lo) == pytest.approx(0.025, rel=1e-9)
    assert stats.binom.cdf(7, n, hi) == pytest.approx(0.025, rel=1e-9)


def test_one_layer_slope_bound_against_the_two_point_closed_form():
    # with n_max = 5 the only free coefficient is c_5, fixed up to sign by the budget
    # 6 c_5^2 = budget: theta_slope is the smaller of the two signs' values
    sa = 0.2
    T1, Th, C5, Ts = design_target("tanh", sa, 1.0, target="ntk", refine=True).values
    c1 = math.sqrt(T1 / 2)
    c3 = C5 / (math.sqrt(6) * c1)
    budget = Th - 2 * c1 ** 2 - 4 * c3 ** 2
    c5 = math.sqrt(budget / 6)
    base = 2 * c1 ** 2 + 12 * c3 ** 2 + 30 * c5 ** 2 + 2 * math.sqrt(6) * c1 * c3
    cross = 4 * math.sqrt(20) * c3 * c5
    got = one_layer_slope_bound(sa, n_max=5, starts=3)
    assert got["deq_theta_slope"] == Ts
    assert got["one_layer_min_theta_slope"] == pytest.approx(base - abs(cross), rel=1e-7)
    # more free coefficients can only lower the minimum (the two-point optimum stays
    # feasible with the others zero)
    wider = one_layer_slope_bound(sa, n_max=21, starts=2)["one_layer_min_theta_slope"]
    assert math.isfinite(wider) and wider <= (base - abs(cross)) * (1 + 1e-9)


# ----------------------------------------------------------------------------------------
# optional dependencies: refused when named, skipped (with the reason) in the whole set
# ----------------------------------------------------------------------------------------
def _tiny(size, seed):
    return FigureOutput(new_figure()[0], {"cases": [1]}, {"base": seed})


def test_a_figure_with_a_missing_dependency_is_refused_when_named_and_skipped_otherwise(
        tmp_path, monkeypatch):
    needs = FigureSpec("needs_x", "needs a module", _tiny,
                       {"no_such_module_for_rmt_deq": "x (pip install x)"})
    monkeypatch.setattr(registry_module, "_REGISTRY",
                        {"plain": FigureSpec("plain", "plain", _tiny), "needs_x": needs})
    monkeypatch.setattr(registry_module, "_LOADED", True)
    assert needs.missing() == ("x (pip install x)",)
    with pytest.raises(MissingDependencyError, match=r"needs_x.*pip install x"):
        build_figures(tmp_path, ["needs_x"], size="quick")
    assert os.listdir(tmp_path) == []
    res = build_figures(tmp_path, size="quick")
    assert res.skipped == {"needs_x": "needs x (pip install x), which is not installed"}
    assert sorted(os.listdir(tmp_path)) == ["manifest.json", "plain.json", "plain.png"]
    man = _strict((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert list(man["figures"]) == ["plain"] and "needs_x" in man["last_run"]["skipped"]


def test_digits_figure_needs_scikit_learn_and_says_so(tmp_path, monkeypatch):
    spec = figure_specs()["digits_spectra"]
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="scikit-learn"):
            build_figures(tmp_path, ["digits_spectra"], size="quick")
        assert os.listdir(tmp_path) == []
    else:
        assert spec.missing() == ()
    # the builder itself raises the data loader's error when the import fails
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError, match=r"scikit-learn.*rmt_deq\[data\]"):
        spec.build("quick", 0)


# ----------------------------------------------------------------------------------------
# the generalization figures, at the quick size
# ----------------------------------------------------------------------------------------
def test_generalization_curves_deq_follows_the_deterministic_equivalent():
    out = figure_specs()["generalization_curves"].build("quick", 0)
    cfg = gen_figures.CURVE_SIZES["quick"]
    table = _strict(dumps(out.table))
    grid = {(m, float(w), lam) for m in ("deq_rf", "enn_rf") for w in cfg["widths"]
            for lam in RIDGE_GRID}
    assert set(table["activations"]) == set(gen_figures.ACTIVATIONS)
    for act, rec in table["activations"].items():
        pts = rec["points"]
        assert {(r["method"], r["width"], r["ridge"]) for r in pts} == grid
        assert len(pts) == len(grid)
        assert all(r["observed_se"] > 0 and r["predicted_surrogate"] > 0 for r in pts)
        deq = [r for r in pts if r["method"] == "deq_rf"]
        # every DEQ point within 4 standard errors of its exact-kernel prediction (8 draws:
        # the studentised error has 7 degrees of freedom, P(|t| > 4) = 0.5% per point)
        for r in deq:
            assert abs(r["predicted_exact"] - r["observed"]) <= 4 * r["observed_se"], (act, r)
        # the check has power: without its variance term the prediction misses
        assert any(abs(r["predicted_exact"] - r["predicted_exact_variance_part"]
                       - r["observed"]) > 4 * r["observed_se"] for r in deq)


def test_accuracy_figure_ridge_rule_and_surrogate_kernel_ridge_by_a_direct_solve():
    out = figure_specs()["deq_vs_designed_accuracy"].build("quick", 0)
    cfg = gen_figures.ACCURACY_SIZES["quick"]
    table = _strict(dumps(out.table))
    assert list(table["problems"]) == ["mixture"]    # digits only at full size
    cases = table["problems"]["mixture"]["cases"]
    assert [(c["activation"], c["sa"]) for c in cases] == [
        (a, s) for a in gen_figures.ACTIVATIONS for s in gen_figures.ACCURACY_SAS]
    mix = default_mixture(cfg["p"], 2, rng=out.seeds["mixture"])
    prob = mixture_problem(mix, cfg["n"], cfg["n"], rng=out.seeds["problem"])
    tr, te = np.asarray(prob.train), np.asarray(prob.test)
    y = 2.0 * np.asarray(prob.codes) - 1.0
    for c in cases:
        for key in ("deq_rf", "enn_rf", "ck_kernel", "ntk_kernel", "ck_surrogate",
                    "ntk_surrogate"):
            assert 0.5 <= c[key]["accuracy"] <= 1.0 and c[key]["accuracy_se"] >= 0
        assert c["gap_se"] > 0 and c["width"] == cfg["width"]
        # kernel ridge with the CK surrogate, by a dense solve per ridge: its test MSE
        # picks the ridge, its sign gives the accuracy the figure draws
        sol = solve_four_equations(c["activation"], c["sa"], prob.tau0)
        K = np.asarray(mixture_ck_surrogate(prob.mixture, prob.sample, solution=sol).ck)
        fits = {}
        for lam in RIDGE_GRID:
            alpha = np.linalg.solve(K[np.ix_(tr, tr)] + lam * np.eye(tr.size), y[tr])
            pred = K[np.ix_(te, tr)] @ alpha
            fits[lam] = (float(np.mean((y[te] - pred) ** 2)),
                         float(np.mean(np.sign(pred) == y[te])))
        assert c["ridge"] == min(fits, key=lambda lam: fits[lam][0])
        mse, acc = fits[c["ridge"]]
        assert c["ck_surrogate"]["test_mse"] == pytest.approx(mse, rel=1e-8)
        # equal up to one test column whose margin is at rounding level
        assert abs(c["ck_surrogate"]["accuracy"] - acc) <= 1.0 / te.size + 1e-12


def test_digits_spectra_table_and_prediction():
    pytest.importorskip("sklearn")
    out = figure_specs()["digits_spectra"].build("quick", 0)
    table = _strict(dumps(out.table))
    panels = table["panels"]
    acts = gen_figures.SPECTRA_SIZES["quick"]["activations"]
    assert [(r["data"], r["activation"]) for r in panels] == [
        (d, a) for a in acts for d in ("digits", "gaussian")]
    for r in panels:
        assert r["p"] == 64 and r["n"] == sum(r["sizes"]) == 360   # 178 zeros, 182 ones
        assert 0 < r["relative_operator_error"] < 1
        assert 0 <= r["ks_sampled_vs_predicted_density"] <= 1
        assert 0 <= r["ks_sampled_vs_surrogate_eigenvalues"] <= 1
        # n > p: an atom of mass at least 1 - p/n
        assert r["atom"] >= 1 - r["p"] / r["n"] - 1e-12
        # with the atom the prediction is a probability (the support scan finds the narrow
        # bands of near-zero eigenvalues that nearly constant pixels give; docs/spectra.md);
        # the drawn density, integrated by the trapezoid rule on its grid, is that mass
        # less the bands narrower than the grid step, a few eigenvalues (4 of 360 here)
        x, dens = np.asarray(r["density"]["x"]), np.asarray(r["density"]["density"])
        assert np.all(dens >= 0)
        assert abs(r["mass"] + r["atom"] - 1) <= 1e-3
        trapezoid = float(np.sum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x)))
        assert r["mass"] - 8 / r["n"] <= trapezoid <= r["mass"] * 1.01
        # the class-mean isolated eigenvalue: the largest sampled eigenvalue within two
        # p^-1/2 relative fluctuations of the predicted one
        top = max(r["isolated_predicted"])
        assert abs(r["largest_sampled_eigenvalues"][0] - top) <= 2 / math.sqrt(r["p"]) * top
