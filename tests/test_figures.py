"""The figure set (``rmt-deq figures``): registry and command line agree, files and a strict
manifest are written, the same seed gives the same PDF, bad input is refused before
anything is computed; and the small computations the figures added."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from scipy import stats

from rmt_deq.cli import build_parser, main
from rmt_deq.design.targets import design_target
from rmt_deq.errors import InvalidParameterError, OutputPathError, UnknownOptionError
from rmt_deq.jobs.figures import build_figures, figure_names, figure_specs
from rmt_deq.jobs.figures import registry as registry_module
from rmt_deq.jobs.figures.design import one_layer_slope_bound
from rmt_deq.jobs.figures.registry import FigureSpec
from rmt_deq.jobs.figures.sampling import coverage_interval
from rmt_deq.metrics import nearest_eigenvalues

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
