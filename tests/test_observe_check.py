"""``rmt-deq spectrum --observe`` and ``rmt-deq check``: the observed spectrum against an
independent computation, options that do not apply, strict JSON with every row, the report
files, and the verdict of a row."""
from __future__ import annotations

import json
import math
import os
import re
from types import SimpleNamespace

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.cli import main
from rmt_deq.errors import InvalidParameterError, UnknownOptionError
from rmt_deq.experiments.check import CheckResult, check_row, format_table
from rmt_deq.experiments.observed import match_spikes
from rmt_deq.jobs.check import REPORT_FILES
from rmt_deq.metrics import spectral_distances
from rmt_deq.sampling.deq import sampled_kernel
from rmt_deq.spectra.bulk import kernel_bulk
from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.spikes import isolated_eigenvalues

P, SIZES = 60, (20, 25)
ACT, SA = "relu", 0.3
#: the rows ``rmt-deq check`` reports, whatever the outcome
ROWS = ([key for k in ("ck", "ntk")
         for key in [f"{k}.surrogate", f"{k}.sampled"]
         + [f"{k}.{q}.{route}" for route in ("exact", "sampled")
            for q in ("bulk.ks", "bulk.w1", "spikes", "alignments")]]
        + ["design.equations", "design.exact", "design.sampled"])


def _strict(text):
    """json.loads that refuses NaN/Infinity/-Infinity."""
    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _one_error_line(capsys, *words):
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Two classes with well separated means (two isolated eigenvalues), p = 60, n = 45."""
    d = tmp_path_factory.mktemp("observe")
    gen = np.random.default_rng(5)
    q, _ = np.linalg.qr(gen.standard_normal((P, 2)))
    means = np.vstack([4.0 * q[:, 0], 5.0 * q[:, 1]])
    covs = np.vstack([np.ones(P), np.r_[np.full(P // 2, 1.3), np.full(P - P // 2, 0.7)]])
    sizes = np.array(SIZES)
    mix = rd.GaussianMixture(means, covs, sizes / sizes.sum())
    s = mix.sample(sizes=sizes, rng=6)
    full = d / "full.npz"
    np.savez(full, X=s.X, labels=s.labels, means=means, covs=covs)
    spec = d / "spec.json"
    spec.write_text(json.dumps({"means": means.tolist(), "covs": covs.tolist(),
                                "sizes": list(SIZES)}))
    return SimpleNamespace(dir=d, full=full, spec=spec, mix=mix, sample=s, sizes=sizes,
                           means=means, covs=covs)


def _prediction(case):
    """The predicted CK spectrum and the four-equation solution, built here from the
    mixture (not through the job)."""
    stats = case.mix.statistics(case.sizes)
    sol = rd.solve_four_equations(ACT, SA, stats.tau0)
    coef = rd.ck_surrogate_coefficients(sol, stats, form="G")
    model = gram_model(case.covs, case.sizes, means=case.means)
    bulk = kernel_bulk(model, coef)
    return sol, bulk, isolated_eigenvalues(model, coef, bulk=bulk)


# ---------------------------------------------------------------------------------------
# spectrum --observe
# ---------------------------------------------------------------------------------------
def test_observe_exact_distances_match_an_independent_computation(case, capsys):
    argv = ["spectrum", "--activation", ACT, "--sa", str(SA), "--data", str(case.full)]
    assert main(argv + ["--json"]) == 0                       # --observe exact: the default
    d = _strict(capsys.readouterr().out)
    assert main(argv + ["--observe", "exact"]) == 0
    text = capsys.readouterr().out
    sol, bulk, spikes = _prediction(case)
    G = rd.exact_ck(case.sample.X, ACT, SA, solution=sol).ck
    ev = np.linalg.eigvalsh(G)
    ref = spectral_distances(ev, bulk, exclude=spikes.positions)
    o = d["observed"]
    assert o["route"] == "exact" and len(o["eigenvalues"]) == ev.size
    # eigh (the job) and eigvalsh (here) agree to rounding; KS moves by density x rounding
    assert abs(o["distances"]["ks"] - ref.ks) <= 1e-9
    assert abs(o["distances"]["w1_relative"] - ref.w1_relative) <= 1e-9
    printed = float(re.search(r"Kolmogorov-Smirnov ([0-9.e-]+)", text).group(1))
    assert printed == pytest.approx(ref.ks, rel=1e-5)          # printed to 6 digits
    # the spikes lie right of the bulk: matched with the largest eigenvalues, in order
    S = spikes.count
    assert S == 2 and spikes.positions.min() > bulk.support[-1][1]
    np.testing.assert_allclose(o["observed_spikes"], ev[-S:], rtol=1e-12)
    np.testing.assert_allclose(o["spike_errors"],
                               np.abs(ev[-S:] - spikes.positions) / spikes.positions,
                               rtol=1e-9)
    # squared cosines of the top eigenvectors with the normalised class indicators
    _, U = np.linalg.eigh(G)
    J = np.eye(2)[case.sample.labels]
    cos2 = ((J.T @ U[:, -S:]) ** 2 / J.sum(axis=0)[:, None]).T
    np.testing.assert_allclose(o["observed_alignments"], cos2, atol=1e-10)
    np.testing.assert_allclose(o["predicted_alignments"], spikes.alignments, rtol=1e-12)
    # the prediction itself is the one computed here
    np.testing.assert_allclose(d["spikes"], spikes.positions, rtol=1e-9)


def test_observe_sampled_is_the_sampler_at_the_same_solution(case, tmp_path, capsys):
    info = tmp_path / "info.json"
    assert main(["spectrum", "--activation", ACT, "--sa", str(SA), "--data", str(case.full),
                 "--observe", "sampled", "--width", "40", "--realizations", "3", "--seed",
                 "7", "--info", str(info), "--json"]) == 0
    o = _strict(capsys.readouterr().out)["observed"]
    sol, bulk, spikes = _prediction(case)
    K = sampled_kernel(case.sample.X, ACT, SA, kind="ck", width=40, realizations=3, rng=7,
                       solution=sol)
    ev = np.linalg.eigvalsh(K.matrix)
    scale = np.abs(ev).max()
    np.testing.assert_allclose(o["eigenvalues"], ev, rtol=0, atol=64 * 2e-16 * scale)
    assert o["sampling"]["mc_error"] == pytest.approx(K.error["ck"], rel=1e-12)
    assert _strict(info.read_text())["realizations"] == 3
    ref = spectral_distances(ev, bulk, exclude=spikes.positions)
    assert abs(o["distances"]["ks"] - ref.ks) <= 1e-9


def test_observe_surrogate_and_mixture_sample(case, capsys):
    assert main(["spectrum", "--activation", ACT, "--sa", str(SA), "--mixture",
                 str(case.spec), "--sample-seed", "2", "--observe", "surrogate",
                 "--json"]) == 0
    o = _strict(capsys.readouterr().out)["observed"]
    s = case.mix.sample(sizes=case.sizes, rng=2)
    sol, _, _ = _prediction(case)
    G = rd.mixture_ck_surrogate(case.mix, s, solution=sol).ck
    np.testing.assert_allclose(o["eigenvalues"], np.linalg.eigvalsh(G), rtol=0,
                               atol=1e-12 * np.abs(G).max())
    # a mixture alone observes nothing (there is no sample)
    assert main(["spectrum", "--activation", ACT, "--sa", str(SA), "--mixture",
                 str(case.spec), "--json", "--num", "50"]) == 0
    assert _strict(capsys.readouterr().out)["observed"] is None


@pytest.mark.parametrize("extra,words", [
    (["--observe", "exact", "--width", "10"], "--width applies to --observe sampled only"),
    (["--realizations", "4"], "--realizations applies to --observe sampled only"),
    (["--observe", "surrogate", "--seed", "1", "--no-progress"],
     "--seed, --no-progress apply to --observe sampled only"),
    (["--observe", "none", "--info", "x.json"], "--info applies to --observe sampled only"),
    (["--observe", "sampled"], "width"),
    (["--sample-seed", "1"], "sample_seed"),
])
def test_spectrum_inapplicable_options_are_rejected(case, capsys, extra, words):
    assert main(["spectrum", "--activation", ACT, "--sa", str(SA), "--data", str(case.full),
                 *extra]) == 2
    _one_error_line(capsys, words)


def test_library_rejects_inapplicable_observe_options(case):
    with pytest.raises(InvalidParameterError, match="observe='sampled' only"):
        rd.spectrum_report(ACT, SA, data=str(case.full), observe="exact",
                           sampling={"width": 10})
    with pytest.raises(InvalidParameterError, match="sample_seed"):
        rd.spectrum_report(ACT, SA, mixture=str(case.spec), observe="exact")
    with pytest.raises(UnknownOptionError, match="observe"):
        rd.spectrum_report(ACT, SA, data=str(case.full), observe="eigen")


def test_match_spikes_right_left_and_in_a_gap():
    ev = np.array([-3.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.7, 0.8, 5.0, 9.0])
    bulk = SimpleNamespace(support=((0.0, 0.35), (0.55, 1.0)), atom=0.0, atom_at=0.0)
    # two right of the bulk (largest to largest), one left of it, one in the inner gap
    idx = match_spikes(ev, np.array([-2.0, 0.5, 4.0, 10.0]), bulk)
    assert idx.tolist() == [0, 4, 8, 9]


# ---------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [["--info", "i.json"], ["--control-variate"]])
def test_check_does_not_offer_kernel_only_options(case, extra):
    with pytest.raises(SystemExit) as exc:      # argparse: an unknown option, status 2
        main(["check", "--activation", ACT, "--sa", str(SA), "--data", str(case.full),
              *extra])
    assert exc.value.code == 2


def test_check_sample_seed_needs_a_mixture(case, capsys):
    assert main(["check", "--activation", ACT, "--sa", str(SA), "--data", str(case.full),
                 "--sample-seed", "1"]) == 2
    _one_error_line(capsys, "sample_seed")


def test_check_json_has_every_row_and_the_report_files(case, tmp_path, capsys):
    report = tmp_path / "new_folder"
    (tmp_path).joinpath("keep.txt").write_text("x")
    assert main(["check", "--activation", ACT, "--sa", str(SA), "--mixture", str(case.spec),
                 "--json", "--report", str(report), "--width", "40", "--realizations", "4",
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    d = _strict(out.out)
    rows = {r["key"]: r for r in d["rows"]}
    assert list(rows) == ROWS
    # the kept design is the feasible family closest to the DEQ's exact CK
    feasible = [t for t in d["design"]["tried"] if t["feasible"]]
    assert feasible and d["design"]["family"] == min(
        feasible, key=lambda t: t["exact_distance"])["family"]
    for r in rows.values():
        assert set(r) >= {"quantity", "value", "expected", "expected_size", "ratio",
                          "within", "verdict"}
        if r["value"] is not None and r["expected"] is not None and r["expected"] > 0:
            assert r["ratio"] == pytest.approx(r["value"] / r["expected"], rel=1e-12)
        if r["within"] is not None:
            assert r["within"] == (r["value"] <= r["expected"])
            assert r["verdict"] == ("yes" if r["within"] else "no")
    # the sampled CK against the exact CK: the row is the relative operator distance
    s = case.mix.sample(sizes=case.sizes, rng=0)                # --sample-seed default 0
    sol, _, _ = _prediction(case)
    G = rd.exact_ck(s.X, ACT, SA, solution=sol).ck
    Gs = rd.sampled_ntk(s.X, ACT, SA, width=40, realizations=4, rng=0, solution=sol,
                        dtype="float64").ck                      # the check's dtype
    ref = np.linalg.norm(Gs - G, 2) / np.linalg.norm(G, 2)
    assert rows["ck.sampled"]["value"] == pytest.approx(ref, rel=1e-9)
    assert rows["ck.surrogate"]["expected"] == pytest.approx(1 / math.sqrt(P), rel=1e-12)
    # the report: exactly the named files (no temporary file left), the JSON the same rows
    assert sorted(os.listdir(report)) == sorted(REPORT_FILES.values())
    assert _strict((report / REPORT_FILES["json"]).read_text())["rows"] == d["rows"]
    table = (report / REPORT_FILES["table"]).read_text()
    assert all(r["quantity"] in table for r in d["rows"])
    assert (report / REPORT_FILES["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (report / REPORT_FILES["pdf"]).read_bytes()[:5] == b"%PDF-"
    assert d["report"]["png"].endswith(REPORT_FILES["png"])


def test_a_row_beyond_its_expected_size_is_flagged():
    bad = check_row("a", "too large", 0.2, 0.1, "1/sqrt(p)")
    assert (bad.within, bad.verdict, bad.ratio) == (False, "no", pytest.approx(2.0))
    good = check_row("b", "small", 0.05, 0.1, "1/sqrt(p)")
    assert (good.within, good.verdict, good.ratio) == (True, "yes", pytest.approx(0.5))
    assert check_row("c", "equal", 0.1, 0.1, "x").within is True
    none = check_row("d", "missing", None, 0.1, "x", "no spikes")
    assert (none.within, none.verdict, none.note) == (None, "n/a", "no spikes")
    vacuous = check_row("e", "KS", 0.3, 1.4, "x", ceiling=1.0)
    assert vacuous.within is None and "largest possible value" in vacuous.note
    res = CheckResult(activation=ACT, sa=SA, sb=1 - SA, tau0=1.0, p=P, n=45, K=2,
                      source="test", solution=None, rows=(bad, good, none, vacuous))
    assert res.failed == (bad,)
    line = next(ln for ln in format_table(res).splitlines() if ln.startswith("too large"))
    assert line.rstrip().endswith("no")
