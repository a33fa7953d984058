"""Seeded fuzzing of ``rmt-deq solve | kernel | spectrum | design``.

Each case is a command line drawn from pools of valid values, boundary values, garbage
strings, NaN/inf, huge and tiny numbers and wrong files (empty, text, a renamed .npy, bad
JSON specs, archives with wrong shapes, complex or NaN data), run in-process through
:func:`rmt_deq.cli.main`.  A case passes when it exits 0 with valid output (strict JSON
with --json: NaN/Infinity refused) or is rejected with status 2 and exactly one non-empty
line on stderr.  Any other exception fails, naming the case and the module it escaped
from.
"""
from __future__ import annotations

import json
import os
import traceback
import warnings

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.cli import main

VALID_REAL = ["0.2", "0.3", "0.5", "0.05", "0.9"]
EDGE_REAL = ["0", "1", "-0.0", "0.999999", "1e-300", "1e-200", "1e-320", "1e300", "-5",
             "2", "1e-8", "5e-324"]
NONFINITE = ["nan", "inf", "-inf", "NaN", "1e999"]
GARBAGE = ["abc", "", " ", "0x10", "1,5", "--", "\u00e9", "1e", "None", "[1]"]
ACTS_OK = ["relu", "tanh", "erf", "sigmoid", "swish", "gelu", "softplus", "leaky_relu:0.1",
           "elu:1", "hard_tanh:-1,1", "quadratic:1,0.5", "polynomial:0,1,0.3", "silu"]
ACTS_BAD = ["nosuch", "relu:", "relu:1", "leaky_relu:abc", "polynomial:", "quadratic:nan,1",
            "hard_tanh:1", "tanh:1e308", "leaky_relu:1e309", "polynomial:1e300,1e300",
            "leaky_relu:-1e-320", ":", "relu,tanh"]
INT_OK = ["1", "2", "5", "10"]
INT_BAD = ["0", "-1", "3.5", "abc", "", "99999999999999999999"]


def _pick(rng, good, *bad_pools, bad=0.0):
    """A value from ``good``, or with probability ``bad`` from one of ``bad_pools``."""
    if bad_pools and rng.random() < bad:
        pool = bad_pools[rng.integers(len(bad_pools))]
    else:
        pool = good
    return pool[rng.integers(len(pool))]


def _real(rng, bad):
    return _pick(rng, VALID_REAL, EDGE_REAL, EDGE_REAL, NONFINITE, GARBAGE, bad=bad)


def _act(rng, bad):
    return _pick(rng, ACTS_OK, ACTS_BAD, GARBAGE, bad=bad)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Good and bad data files and mixture specs (small: p = 8, n = 12)."""
    d = tmp_path_factory.mktemp("fuzz")
    p, n = 8, 12
    mix = rd.default_mixture(p, 2, rng=1)
    s = mix.sample(n, rng=2)
    X, lab = s.X, s.labels
    npz = {}

    def save(name, **arrays):
        npz[name] = str(d / f"{name}.npz")
        np.savez(npz[name], **arrays)

    save("full", X=X, labels=lab, means=mix.means, covs=mix.covs)
    save("plain", X=X, labels=lab)
    save("x_only", X=X)
    save("one_class", X=X, labels=np.zeros(n, dtype=int))
    save("str_labels", X=X, labels=np.array(["a", "b"] * (n // 2)))
    save("X_1d", X=X[0], labels=lab)
    save("short_labels", X=X, labels=lab[:-1])
    save("bad_means", X=X, labels=lab, means=mix.means[:, :3], covs=mix.covs)
    save("means_no_covs", X=X, labels=lab, means=mix.means)
    save("neg_covs", X=X, labels=lab, means=mix.means, covs=-mix.covs)
    save("complex", X=X + 0j, labels=lab)
    save("nan", X=np.where(np.eye(p, n) > 0, np.nan, X), labels=lab)
    save("tiny", X=X * 1e-155, labels=lab)
    save("huge", X=X * 1e150, labels=lab)
    save("bool", X=X > 0, labels=lab)
    save("extra", X=X, labels=lab, other=np.ones(2))
    save("empty_X", X=np.zeros((p, 0)), labels=np.zeros(0))
    np.save(d / "x.npy", X)
    for name, content in {"renamed": (d / "x.npy").read_bytes(), "empty": b"",
                          "text": b"1 2 3\n4 5 6\n", "json": b'{"X": [[1]]}',
                          "garbage": bytes(range(256))}.items():
        npz[name] = str(d / f"{name}.npz")
        with open(npz[name], "wb") as fh:
            fh.write(content)
    npz["folder"] = str(d)
    npz["missing"] = str(d / "missing.npz")

    means, covs = mix.means.tolist(), mix.covs.tolist()
    specs = {}
    for name, text in {
        "good": json.dumps({"means": means, "covs": covs, "sizes": [6, 9]}),
        "big_n": json.dumps({"means": means, "covs": covs, "sizes": [40, 50]}),
        "full_covs": json.dumps({"means": means, "covs": [np.diag(c).tolist() for c in
                                                           mix.covs], "sizes": [6, 9]}),
        "zero_size": json.dumps({"means": means, "covs": covs, "sizes": [0, 9]}),
        "str_sizes": json.dumps({"means": means, "covs": covs, "sizes": ["6", 9]}),
        "bool_sizes": json.dumps({"means": means, "covs": covs, "sizes": [True, 9]}),
        "float_sizes": json.dumps({"means": means, "covs": covs, "sizes": [6.5, 9]}),
        "ragged": json.dumps({"means": [means[0], means[1][:3]], "covs": covs,
                              "sizes": [6, 9]}),
        "strings": json.dumps({"means": [["a"] * p, means[1]], "covs": covs,
                               "sizes": [6, 9]}),
        "neg_cov": json.dumps({"means": means, "covs": [[-1.0] * p] * 2, "sizes": [6, 9]}),
        "not_psd": json.dumps({"means": means, "covs": [(-np.eye(p)).tolist()] * 2,
                               "sizes": [6, 9]}),
        "K_mismatch": json.dumps({"means": means, "covs": covs, "sizes": [6, 9, 3]}),
        "extra": json.dumps({"means": means, "covs": covs, "sizes": [6, 9], "x": 1}),
        "nan": '{"means": [[NaN]], "covs": [[1]], "sizes": [3]}',
        "huge": json.dumps({"means": means, "covs": covs, "sizes": [6, 9]}).replace(
            "[6, 9]", "[6, 1e400]"),
        "big_mean": json.dumps({"means": [[1e300] * p, means[1]], "covs": covs,
                                "sizes": [6, 9]}),
        "tiny_cov": json.dumps({"means": means, "covs": [[1e-300] * p] * 2,
                                "sizes": [6, 9]}),
        "list": "[1, 2, 3]", "cut": '{"means": [[1, 2]', "empty": "", "deep": "[" * 5000,
        "binary": "\u0000\u0001",
    }.items():
        specs[name] = str(d / f"{name}.json")
        with open(specs[name], "w", encoding="utf-8") as fh:
            fh.write(text)
    specs["missing"] = str(d / "nope.json")
    specs["folder"] = str(d)
    specs["npz"] = npz["full"]
    outs = {"ok": str(d / "out" / "K.npy"), "weird_name": str(d / "out" / "G.bin"),
            "folder": str(d / "out"), "missing_folder": str(d / "nope" / "K.npy"),
            "data": npz["full"]}
    os.makedirs(d / "out")
    figs = {"png": str(d / "out" / "f.png"), "svg": str(d / "out" / "f.svg"),
            "bad_suffix": str(d / "out" / "f.xyz"), "none": str(d / "out" / "f"),
            "folder": str(d / "out"), "missing_folder": str(d / "nope" / "f.png")}
    return {"npz": npz, "specs": specs, "outs": outs, "figs": figs}


def _named(rng, table, good, bad):
    """A good entry of ``table``, or with probability ``bad`` any entry."""
    keys = sorted(table) if rng.random() < bad else good
    return table[keys[rng.integers(len(keys))]]


def _solve_argv(rng, inp, bad):
    a = ["solve", "--activation", _act(rng, bad), "--sa", _real(rng, bad)]
    if rng.random() < .4:
        a += ["--sb", _real(rng, bad)]
    if rng.random() < .4:
        a += ["--tau0", _pick(rng, ["1", "0.5", "2", "3"], EDGE_REAL, NONFINITE, GARBAGE,
                              bad=bad)]
    if rng.random() < .3:
        a += ["--method", _pick(rng, ["auto", "closed", "quadrature", "table", "mpmath"],
                                ["exact", "", "AUTO"], bad=bad)]
    if "mpmath" in a or rng.random() < bad / 4:
        a += ["--dps", _pick(rng, ["15", "20"], INT_BAD, bad=bad)]
    if rng.random() < .6:
        a.append("--json")
    return a


def _kernel_argv(rng, inp, bad):
    a = ["kernel", "--data", _named(rng, inp["npz"], ["full", "plain"], bad),
         "--activation", _act(rng, bad), "--sa", _real(rng, bad),
         "--out", _named(rng, inp["outs"], ["ok", "weird_name"], bad)]
    if rng.random() < .2:
        a += ["--sb", _real(rng, bad)]
    kind = _pick(rng, ["ck", "ntk"], ["gp", ""], bad=bad / 3)
    method = _pick(rng, ["exact", "surrogate", "sampled"], ["mc"], bad=bad / 3)
    a += ["--kind", kind, "--method", method]
    if rng.random() < .2 and method != "surrogate":
        a += ["--tau0", _pick(rng, ["1", "0.8"], EDGE_REAL, NONFINITE, bad=bad)]
    if kind == "ntk" and rng.random() < .5 or rng.random() < bad / 3:
        a += ["--groups", _pick(rng, ["v,A,B", "v", "A,B", "B"], ["", "Q", "v,,A", "v;A"],
                                bad=bad)]
    if method == "sampled" or rng.random() < bad / 3:
        a += ["--width", _pick(rng, ["5", "20", "40"], INT_BAD + ["100000000"], bad=bad)]
        if rng.random() < .5:
            a += ["--realizations", _pick(rng, ["1", "2", "3"], INT_BAD[:4], bad=bad)]
        if rng.random() < .3:
            a += ["--family", _pick(rng, ["gaussian", "orthogonal", "symmetric"],
                                    ["unitary"], bad=bad)]
        if rng.random() < .3:
            a += ["--dtype", _pick(rng, ["float32", "float64"], ["float16"], bad=bad)]
        if rng.random() < .2:
            a += ["--seed", _pick(rng, ["0", "7"], ["-1", "abc"], bad=bad)]
        if rng.random() < .2:
            a += ["--confidence", _pick(rng, ["0.95", "0.5"], ["0", "1", "1.5"], NONFINITE,
                                        bad=bad)]
        if rng.random() < .2:
            a += ["--target-error", _pick(rng, ["0.1", "10"], ["0", "-1"], NONFINITE,
                                          bad=bad)]
        if kind == "ck" and rng.random() < .3 or rng.random() < bad / 3:
            a.append("--control-variate")
        if rng.random() < .3:
            a += ["--info", _pick(rng, [inp["outs"]["ok"].replace("K.npy", "i.json")],
                                  [inp["outs"]["folder"], a[a.index("--out") + 1]], bad=bad)]
        a.append("--no-progress")
    return a


def _spectrum_argv(rng, inp, bad):
    a = ["spectrum", "--activation", _act(rng, bad), "--sa", _real(rng, bad)]
    if rng.random() < .6:
        a += ["--mixture", _named(rng, inp["specs"], ["good", "big_n", "full_covs"], bad)]
    else:
        a += ["--data", _named(rng, inp["npz"], ["full", "plain"], bad)]
    if rng.random() < .2:
        a += ["--sb", _real(rng, bad)]
    kind = _pick(rng, ["ck", "ntk"], ["gp"], bad=bad / 3)
    a += ["--kind", kind]
    if kind == "ntk" and rng.random() < .5 or rng.random() < bad / 3:
        a += ["--groups", _pick(rng, ["v", "A,B", "v,A,B"], ["Q", ""], bad=bad)]
    a += ["--num", _pick(rng, ["40", "100"], ["2", "1", "0", "-3", "abc", "300000000"],
                         bad=bad)]
    if rng.random() < .15:
        a += ["--plot", _named(rng, inp["figs"], ["png", "svg"], bad)]
        if "--mixture" in a and rng.random() < .5:
            a += ["--sample-seed", _pick(rng, ["1", "0"], ["-1", "x"], bad=bad)]
    elif rng.random() < bad / 4:
        a += ["--sample-seed", "1"]
    if rng.random() < .1:
        a += ["--max-memory", _pick(rng, ["1G", "100M"], ["1e5", "0", "-1", "lots"],
                                    bad=bad)]
    if rng.random() < .7:
        a.append("--json")
    return a


def _design_argv(rng, inp, bad):
    target = _pick(rng, ["ck", "ntk"])
    family = _pick(rng, ["lrelu2", "quad2", "htanh1", "quadcubic2", "htanhlin2"],
                   ["cubic"], bad=bad / 3)
    a = ["design", "--activation", _act(rng, bad), "--sa", _real(rng, bad),
         "--family", family, "--target", target]
    if rng.random() < .3:
        a += ["--sb", _real(rng, bad)]
    if rng.random() < .3:
        a += ["--tau0", _pick(rng, ["1", "0.5", "2"], EDGE_REAL, NONFINITE, bad=bad)]
    if target == "ntk" and family == "htanhlin2" and rng.random() < .5 \
            or rng.random() < bad / 4:
        a.append("--refine")
    if rng.random() < .2:
        a += ["--out", _pick(rng, [inp["outs"]["ok"].replace("K.npy", "net.json")],
                             [inp["outs"]["folder"], inp["outs"]["missing_folder"]],
                             bad=bad)]
    if rng.random() < .6:
        a.append("--json")
    return a


def _strict_json(text):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _option(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def _check_files(argv):
    """The files a successful command wrote: a square finite kernel, strict JSON, a figure."""
    problems = []
    out = _option(argv, "--out")
    if argv[0] == "kernel":
        K = np.load(out)
        if K.ndim != 2 or K.shape[0] != K.shape[1] or not np.all(np.isfinite(K)):
            problems.append(f"--out {out} holds {K.shape} with finite={np.isfinite(K).all()}")
        if _option(argv, "--info"):
            with open(_option(argv, "--info"), encoding="utf-8") as fh:
                _strict_json(fh.read())
    if argv[0] == "design" and out:
        with open(out, encoding="utf-8") as fh:
            _strict_json(fh.read())
    plot = _option(argv, "--plot")
    if plot and os.path.getsize(plot) < 1000:
        problems.append(f"--plot {plot} has {os.path.getsize(plot)} bytes")
    return problems


def _where(exc):
    """The innermost rmt_deq module in the traceback of exc."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.sep + "rmt_deq" + os.sep in frame.filename:
            where = os.path.basename(frame.filename)
    return where


def _fuzz(make, inputs, capsys, seed, cases):
    rng = np.random.default_rng(seed)
    tally = {"ok": 0, "rejected": 0, "argparse": 0}
    bad = []
    for _ in range(cases):
        # half the cases are mostly valid (reach the computations), half mostly faulty
        argv = make(rng, inputs, 0.04 if rng.random() < 0.5 else 0.4)
        capsys.readouterr()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
            tally["argparse"] += 1
        except Exception as exc:  # noqa: BLE001 - the fuzz records every escape
            where = _where(exc)
            item = f"{' '.join(argv)} -> {type(exc).__name__}: {exc} (in {where})"
            bad.append(item)
            continue
        out, err = capsys.readouterr()
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if rc == 0:
            tally["ok"] += 1
            if "--json" in argv:
                try:
                    _strict_json(out)
                except ValueError as exc:
                    bad.append(f"{' '.join(argv)} -> --json output not strict JSON: {exc}")
            bad += [f"{' '.join(argv)} -> {msg}" for msg in _check_files(argv)]
        elif rc == 2:
            tally["rejected"] += 1
            if len(lines) != 1:
                bad.append(f"{' '.join(argv)} -> exit 2 with {len(lines)} stderr lines: "
                           f"{err!r}")
        else:
            bad.append(f"{' '.join(argv)} -> exit {rc}")
    return tally, bad


def _check(name, tally, bad, cases):
    print(f"\n{name}: {cases} cases, exit 0: {tally['ok']}, exit 2: {tally['rejected']} "
          f"({tally['argparse']} by argparse)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name,make,cases", [
    ("solve", _solve_argv, 140), ("kernel", _kernel_argv, 110),
    ("spectrum", _spectrum_argv, 90), ("design", _design_argv, 90)])
def test_fuzz_command_line(inputs, capsys, name, make, cases):
    tally, bad = _fuzz(make, inputs, capsys, seed=sum(map(ord, name)),
                                cases=cases)
    with capsys.disabled():
        _check(name, tally, bad, cases)
