"""The command line and its jobs under bad input: strict JSON, exact and atomic writes, output
paths checked before computing, data files and mixture specs, memory guards, options that do
not apply, the choice lists, the NTK surrogate, and one-line exits."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq import _io
from rmt_deq.cli import build_parser, main
from rmt_deq.errors import (DataFileError, InvalidParameterError, MemoryBudgetError,
                            NonFiniteInputError, OutputPathError, RmtDeqError, ShapeMismatchError, UnknownOptionError)
from rmt_deq.jobs.demo import demo_memory, run_demo
from rmt_deq.jobs.kernel import kernel_from_data, sampled_kernel_from_data
from rmt_deq.jobs.spectrum import load_mixture_spec, spectrum_report

P, N = 12, 10


def _strict(text):
    """json.loads that refuses NaN/Infinity/-Infinity."""
    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("trust")
    mix = rd.default_mixture(P, 2, rng=3)
    s = mix.sample(N, rng=4)
    full, plain = d / "full.npz", d / "plain.npz"
    np.savez(full, X=s.X, labels=s.labels, means=mix.means, covs=mix.covs)
    np.savez(plain, X=s.X, labels=s.labels)
    spec = d / "spec.json"
    spec.write_text(json.dumps({"means": mix.means.tolist(), "covs": mix.covs.tolist(),
                                "sizes": [6, 8]}))
    return {"dir": d, "full": full, "plain": plain, "spec": spec, "mix": mix, "sample": s}


def _kernel(files, out, *extra, data=None):
    return main(["kernel", "--data", str(data or files["full"]), "--activation", "tanh",
                 "--sa", "0.3", "--out", str(out), *extra])


def _leftovers(folder):
    return [f for f in os.listdir(folder) if f.endswith(".tmp")]


# ---------------------------------------------------------------------------------------
# strict JSON
# ---------------------------------------------------------------------------------------
def test_solve_json_is_strict_and_unbounded_scan_is_null(capsys):
    assert main(["solve", "--activation", "relu", "--sa", "0.2", "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    sol = rd.solve_four_equations("relu", 0.2, 1.0)
    assert sol.q_scan == np.inf and d["q_scan"] is None      # unique on all of [0, inf)
    assert d["tau"] == sol.tau


def test_every_json_output_is_strict(files, tmp_path, capsys):
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                 str(files["spec"]), "--num", "40", "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    assert len(d["x"]) == 40
    assert main(["design", "--activation", "tanh", "--sa", "0.2", "--family", "htanh1",
                 "--json", "--out", str(tmp_path / "net.json")]) == 0
    assert _strict(capsys.readouterr().out)["family"] == "htanh1"
    assert _strict((tmp_path / "net.json").read_text())["family"] == "htanh1"
    info = tmp_path / "info.json"       # one realization: no error bar -> null, not NaN
    assert _kernel(files, tmp_path / "K.npy", "--method", "sampled", "--width", "20",
                   "--realizations", "1", "--info", str(info)) == 0
    d = _strict(info.read_text())
    assert d["mc_error"] is None and d["mc_error_relative"] is None


def test_json_emitter_maps_numpy_and_non_finite(tmp_path):
    obj = {"a": np.float32(1.5), "b": np.int64(3), "c": np.array([1.0, np.nan, -np.inf]),
           "d": (np.bool_(True), float("inf")), 4: [np.float64(np.nan)]}
    text = _io.dumps(obj)
    assert _strict(text) == {"a": 1.5, "b": 3, "c": [1.0, None, None], "d": [True, None],
                             "4": [None]}
    _io.write_json(tmp_path / "x.json", {"x": np.nan})
    assert _strict((tmp_path / "x.json").read_text()) == {"x": None}
    with pytest.raises(TypeError):
        _io.dumps({"x": object()})                            # a programming error


# ---------------------------------------------------------------------------------------
# exactly the path given
# ---------------------------------------------------------------------------------------
def test_out_is_written_exactly_as_named(files, tmp_path, capsys):
    out = tmp_path / "G.bin"
    out.write_bytes(b"stale")
    assert _kernel(files, out) == 0
    assert not (tmp_path / "G.bin.npy").exists()
    G = np.load(out)                    # .npy content under the exact name
    ref = kernel_from_data(files["sample"].X, "tanh", 0.3, labels=files["sample"].labels,
                           means=files["mix"].means, covs=files["mix"].covs)
    assert np.array_equal(G, ref)
    assert f"wrote {out}" in capsys.readouterr().err


def test_out_naming_a_folder_is_refused(files, tmp_path, capsys):
    sub = tmp_path / "folder"
    sub.mkdir()
    assert _kernel(files, sub) == 2
    _one_error_line(capsys, "OutputPathError", "is a folder")
    assert sorted(os.listdir(tmp_path)) == ["folder"] and os.listdir(sub) == []


def test_figure_without_suffix_is_refused_not_renamed(tmp_path):
    from matplotlib.figure import Figure

    from rmt_deq.plotting import save_figure

    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1])
    with pytest.raises(OutputPathError, match="no suffix"):
        save_figure(fig, str(tmp_path / "figure"))
    assert os.listdir(tmp_path) == []
    save_figure(fig, str(tmp_path / "figure.svg"))
    assert os.listdir(tmp_path) == ["figure.svg"]


# ---------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------
def _enospc_mid_write(monkeypatch, module, name):
    """Replace module.name by a writer that writes some bytes, then fails: disk full."""
    def failing(*args, **kwargs):
        next(a for a in args if hasattr(a, "write")).write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(module, name, failing)


def test_failed_kernel_write_keeps_previous_file(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "K.npy"
    np.save(out, np.arange(3.0))
    before = out.read_bytes()
    _enospc_mid_write(monkeypatch, np, "save")
    assert _kernel(files, out) == 2
    _one_error_line(capsys, "OutputWriteError", "No space left", "unchanged")
    assert out.read_bytes() == before and _leftovers(tmp_path) == []


def test_failed_info_plot_and_design_writes_keep_previous_files(files, tmp_path, capsys,
                                                               monkeypatch):
    from matplotlib.figure import Figure

    info, plot, net = tmp_path / "info.json", tmp_path / "fig.png", tmp_path / "net.json"
    for f in (info, plot, net):
        f.write_bytes(b"previous")

    def no_fsync(fd):
        raise OSError(errno.EFBIG, "File too large")
    monkeypatch.setattr(os, "fsync", no_fsync)   # fails after the content is written
    assert _kernel(files, tmp_path / "K.npy", "--method", "sampled", "--width", "10",
                   "--realizations", "2", "--info", str(info)) == 2
    _one_error_line(capsys, "OutputWriteError", "File too large")
    _enospc_mid_write(monkeypatch, Figure, "savefig")
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                 str(files["spec"]), "--num", "30", "--plot", str(plot)]) == 2
    _one_error_line(capsys, "OutputWriteError", "fig.png")
    assert main(["design", "--activation", "tanh", "--sa", "0.2", "--family", "htanh1",
                 "--out", str(net)]) == 2
    _one_error_line(capsys, "OutputWriteError", "designed network")
    for f in (info, plot, net):
        assert f.read_bytes() == b"previous"
    assert _leftovers(tmp_path) == []


def test_file_size_limit_in_a_subprocess_keeps_previous_file(files, tmp_path):
    """A real failed write: RLIMIT_FSIZE below the kernel's size (SIGXFSZ ignored, so the
    write fails with EFBIG as on a full disk)."""
    out = tmp_path / "K.npy"
    out.write_bytes(b"previous kernel")
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))\n"
        "from rmt_deq.cli import main\n"
        f"sys.exit(main(['kernel', '--data', {str(files['full'])!r}, '--activation', "
        f"'tanh', '--sa', '0.3', '--out', {str(out)!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=os.getcwd(),
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 2, r.stderr
    assert "OutputWriteError" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"previous kernel" and _leftovers(tmp_path) == []


def test_info_equal_to_out_or_to_the_data_is_refused(files, tmp_path, capsys):
    out = tmp_path / "K.npy"
    assert _kernel(files, out, "--method", "sampled", "--width", "10",
                   "--info", str(out)) == 2
    _one_error_line(capsys, "OutputPathError", "same file as --out")
    link = tmp_path / "link.npy"                  # the same file under another name
    out.write_bytes(b"x")
    os.symlink(out, link)
    assert _kernel(files, out, "--method", "sampled", "--width", "10",
                   "--info", str(link)) == 2
    _one_error_line(capsys, "same file")
    assert _kernel(files, files["full"]) == 2     # would replace the data being read
    _one_error_line(capsys, "OutputPathError", "input --data")
    assert out.read_bytes() == b"x"


# ---------------------------------------------------------------------------------------
# output paths are checked before anything is computed
# ---------------------------------------------------------------------------------------
@pytest.fixture
def no_compute(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("computed before checking the output path")
    import rmt_deq.design.solve
    import rmt_deq.experiments.observed
    import rmt_deq.jobs.check
    import rmt_deq.jobs.demo
    import rmt_deq.jobs.kernel
    monkeypatch.setattr(rmt_deq.jobs.kernel, "kernel_from_data", boom)
    monkeypatch.setattr(rmt_deq.jobs.kernel, "sampled_kernel_from_data", boom)
    monkeypatch.setattr(rmt_deq.experiments.observed, "gram_model", boom)
    monkeypatch.setattr(rmt_deq.jobs.check, "run_check", boom)
    monkeypatch.setattr(rmt_deq.design.solve, "design_for_deq", boom)
    monkeypatch.setattr(rmt_deq.jobs.demo, "default_mixture", boom)


@pytest.mark.parametrize("argv,words", [
    (["kernel", "--out", "{d}/missing/K.npy"], "does not exist"),
    (["kernel", "--out", "{d}/K.npy", "--method", "sampled", "--width", "5", "--info",
      "{d}/missing/i.json"], "--info"),
    (["spectrum", "--plot", "{d}/fig.xyz"], "unknown figure suffix"),
    (["spectrum", "--plot", "{d}/missing/fig.png"], "does not exist"),
    (["design", "--out", "{d}/missing/n.json"], "does not exist"),
    (["demo", "--out", "{d}/fig.nope"], "unknown figure suffix"),
    (["demo", "--out", "{d}"], "is a folder"),
    (["check", "--report", "{d}/missing/report"], "does not exist"),
    (["check", "--report", "{d}/a_file"], "is not a folder"),
    (["spectrum", "--observe", "sampled", "--width", "5", "--info", "{d}/missing/i.json"],
     "--info"),
])
def test_unwritable_outputs_are_refused_before_computing(files, tmp_path, capsys,
                                                         no_compute, argv, words):
    base = {"kernel": ["--data", str(files["full"]), "--activation", "tanh", "--sa", "0.3"],
            "spectrum": ["--mixture", str(files["spec"]), "--activation", "tanh", "--sa",
                         "0.3"],
            "design": ["--activation", "tanh", "--sa", "0.3", "--family", "htanh1"],
            "demo": ["--p", "40"],
            "check": ["--data", str(files["full"]), "--activation", "tanh", "--sa", "0.3"],
            }[argv[0]]
    if argv[0] == "spectrum" and "--observe" in argv:
        base = ["--data", str(files["full"]), "--activation", "tanh", "--sa", "0.3"]
    (tmp_path / "a_file").write_text("not a folder")
    args = [a.format(d=tmp_path) for a in argv]
    assert main(args[:1] + base + args[1:]) == 2
    _one_error_line(capsys, "OutputPathError", words)


def test_library_jobs_check_their_output_first(files, tmp_path, no_compute):
    with pytest.raises(OutputPathError, match="does not exist"):
        spectrum_report("relu", 0.2, mixture=str(files["spec"]),
                        plot=str(tmp_path / "no" / "f.png"))
    with pytest.raises(OutputPathError, match="unknown figure suffix"):
        run_demo(p=40, out=str(tmp_path / "demo.txt"))


# ---------------------------------------------------------------------------------------
# data files
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(files):
    d = files["dir"]
    s = files["sample"]
    out = {}
    np.save(d / "x.npy", s.X)
    out["renamed"] = d / "renamed.npz"
    out["renamed"].write_bytes((d / "x.npy").read_bytes())
    out["empty"] = d / "empty.npz"
    out["empty"].write_bytes(b"")
    out["text"] = d / "text.npz"
    out["text"].write_text("X = 1, 2, 3\n")
    out["extra"] = d / "extra.npz"
    np.savez(out["extra"], X=s.X, labels=s.labels, weights=np.ones(3))
    out["complex"] = d / "complex.npz"
    np.savez(out["complex"], X=s.X + 1j, labels=s.labels)
    out["object"] = d / "object.npz"
    np.savez(out["object"], X=np.array([s.X, "a"], dtype=object), labels=s.labels)
    return out


@pytest.mark.parametrize("name,cls,words", [
    ("renamed", DataFileError, "single .npy array, not an .npz"),
    ("empty", DataFileError, "is empty"),
    ("text", DataFileError, "looks like a text file"),
    ("extra", UnknownOptionError, "unknown array(s) ['weights']; allowed: X, labels"),
    ("complex", DataFileError, "complex128"),
    ("object", DataFileError, "Python objects"),
])
def test_bad_data_files_kernel_and_spectrum_alike(files, bad_files, tmp_path, capsys, name,
                                                  cls, words):
    path = bad_files[name]
    assert _kernel(files, tmp_path / "K.npy", data=path) == 2
    line = _one_error_line(capsys, cls.__name__, words, str(path))
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--data",
                 str(path)]) == 2
    # the same message, but for the option's name
    assert _one_error_line(capsys, cls.__name__, words).split(str(path))[1] == \
        line.split(str(path))[1]
    with pytest.raises(cls):
        spectrum_report("relu", 0.2, data=str(path))
    assert not (tmp_path / "K.npy").exists()


def test_missing_data_file_is_not_a_shape_error(files, tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        _io.read_npz(tmp_path / "nope.npz")
    only_x = tmp_path / "only_x.npz"
    np.savez(only_x, X=files["sample"].X)
    with pytest.raises(DataFileError, match="no array 'labels'"):
        spectrum_report("relu", 0.2, data=str(only_x))


# ---------------------------------------------------------------------------------------
# mixture specs
# ---------------------------------------------------------------------------------------
_GOOD = {"means": [[1.0, 0.0], [0.0, 1.0]], "covs": [[1.0, 1.0], [1.0, 2.0]], "sizes": [3, 4]}


@pytest.mark.parametrize("change,cls,words", [
    ({"means": [["a", 0.0], [0.0, 1.0]]}, DataFileError, "means[0][0] must hold numbers"),
    ({"sizes": ["3", 4]}, InvalidParameterError, "sizes must be a list of non-negative int"),
    ({"sizes": [True, 4]}, InvalidParameterError, "sizes"),
    ({"sizes": [3.5, 4]}, InvalidParameterError, "sizes"),
    ({"sizes": [0, 0]}, InvalidParameterError, "positive sum"),
    ({"means": [[1.0, 0.0], [0.0]]}, ShapeMismatchError, "ragged"),
    ({"covs": [[1.0, None], [1.0, 1.0]]}, DataFileError, "found null"),
    ({"means": [[1.0, 0.0], [0.0, 1e400]]}, NonFiniteInputError, "not finite"),
    ({"means": [[1.0, 0.0], [0.0, 10 ** 400]]}, NonFiniteInputError, "too large"),
    ({"sizes": [3, 4, 5]}, ShapeMismatchError, "K = 2 means, 2 covs and 3 sizes"),
    ({"covs": [[[1.0]]]}, ShapeMismatchError, "covs"),
    ({"extra": 1}, UnknownOptionError, "unknown key(s) ['extra']"),
    ({"means": True}, DataFileError, "found a boolean"),
])
def test_bad_specs_raise_specific_errors(change, cls, words):
    with pytest.raises(cls) as ei:
        load_mixture_spec({**_GOOD, **change})
    assert words in str(ei.value)


def test_spec_files_strict_json(tmp_path, capsys):
    cases = {"nan.json": '{"means": [[NaN]], "covs": [[1]], "sizes": [3]}',
             "cut.json": '{"means": [[1]],',
             "list.json": "[1, 2]",
             "empty.json": "  "}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                     str(tmp_path / name)]) == 2
        _one_error_line(capsys, "DataFileError", name)
    mix, sizes = load_mixture_spec({**_GOOD, "sizes": [3.0, 4]})   # integral floats are ok
    assert sizes.tolist() == [3, 4] and mix.K == 2


# ---------------------------------------------------------------------------------------
# memory guards
# ---------------------------------------------------------------------------------------
def test_memory_guards_before_allocating(files, tmp_path, capsys):
    assert main(["demo", "--p", "100000", "--out", str(tmp_path / "d.png")]) == 2
    _one_error_line(capsys, "MemoryBudgetError", "MiB", "--p")
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                 str(files["spec"]), "--num", "300000000"]) == 2
    _one_error_line(capsys, "MemoryBudgetError", "300,000,000-point", "--num")
    big = tmp_path / "big.npz"          # 40000 samples: the n x n histogram would not fit
    rng = np.random.default_rng(0)
    np.savez(big, X=rng.standard_normal((2, 40000)), labels=np.arange(40000) % 2)
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--data", str(big),
                 "--plot", str(tmp_path / "f.png")]) == 2
    _one_error_line(capsys, "MemoryBudgetError", "40,000 samples")
    spec = tmp_path / "big.json"
    spec.write_text(json.dumps({**_GOOD, "sizes": [20000, 20000]}))
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture", str(spec),
                 "--plot", str(tmp_path / "f.png"), "--sample-seed", "1"]) == 2
    _one_error_line(capsys, "MemoryBudgetError", "eigen-decomposition")
    assert not (tmp_path / "f.png").exists()


def test_memory_budget_is_adjustable():
    with pytest.raises(MemoryBudgetError, match="demo"):
        run_demo(p=200, out=None, max_memory=1e6)
    # the estimate: 2 p n + 8 n^2 float64 at p = 200, n = 160 is 2.15 MB
    assert demo_memory(200) == 8.0 * (2 * 200 * 160 + 8 * 160 ** 2)
    with pytest.raises(MemoryBudgetError, match="density grid"):
        spectrum_report("relu", 0.2, mixture=_GOOD, num=2000, max_memory=1e5)
    rep = spectrum_report("relu", 0.2, mixture=_GOOD, num=50, max_memory=1e6)
    assert len(rep["x"]) == 50


# ---------------------------------------------------------------------------------------
# options that do not apply are rejected, never ignored
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [["--width", "10"], ["--realizations", "3"],
                                   ["--family", "orthogonal"], ["--seed", "1"],
                                   ["--dtype", "float32"], ["--target-error", "0.1"],
                                   ["--confidence", "0.9"], ["--control-variate"],
                                   ["--progress"], ["--no-progress"],
                                   ["--info", "i.json"]])
def test_sampling_options_need_method_sampled(files, tmp_path, capsys, extra):
    extra = [str(tmp_path / e) if e.endswith(".json") else e for e in extra]
    assert _kernel(files, tmp_path / "K.npy", *extra) == 2
    _one_error_line(capsys, "InvalidParameterError", extra[0], "--method sampled only")


def test_inapplicable_options_rejected(files, tmp_path, capsys):
    s = files["sample"]
    with pytest.raises(InvalidParameterError, match="kind='ntk' only"):
        kernel_from_data(s.X, "tanh", 0.3, kind="ck", groups=("v",))
    with pytest.raises(InvalidParameterError, match="kind='ntk' only"):
        sampled_kernel_from_data(s.X, "tanh", 0.3, kind="ck", groups=("v",), width=5)
    with pytest.raises(InvalidParameterError, match="tau0 does not apply"):
        kernel_from_data(s.X, "tanh", 0.3, labels=s.labels, method="surrogate", tau0=1.0)
    with pytest.raises(InvalidParameterError, match="sampling options"):
        kernel_from_data(s.X, "tanh", 0.3, sampling={"width": 5})
    with pytest.raises(InvalidParameterError, match="not both"):
        spectrum_report("relu", 0.2, mixture=_GOOD, num=10, grid=[0.5, 1.0])
    with pytest.raises(InvalidParameterError, match="data_covariance"):
        spectrum_report("relu", 0.2, mixture=_GOOD, data_covariance="sample")
    assert _kernel(files, tmp_path / "K.npy", "--groups", "v") == 2
    _one_error_line(capsys, "groups")
    assert main(["solve", "--activation", "relu", "--sa", "0.2", "--dps", "30"]) == 2
    _one_error_line(capsys, "--dps applies to --method mpmath only")
    # a sample of a mixture is drawn to observe a kernel on: not with --observe none
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                 str(files["spec"]), "--sample-seed", "3", "--observe", "none"]) == 2
    _one_error_line(capsys, "sample_seed", "observe='none'")
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                 str(files["spec"]), "--observe", "exact"]) == 2
    _one_error_line(capsys, "sample_seed")
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                 str(files["spec"]), "--groups", "v"]) == 2
    _one_error_line(capsys, "groups applies to kind='ntk' only")


# ---------------------------------------------------------------------------------------
# choice lists are the library's constants; the NTK surrogate is wired
# ---------------------------------------------------------------------------------------
def _choices(parser):
    sub = next(a for a in parser._actions if a.dest == "command")
    return {(cmd, a.dest): tuple(a.choices) for cmd, p in sub.choices.items()
            for a in p._actions if a.choices is not None}


def test_cli_choices_are_the_library_constants():
    from rmt_deq.design import families, targets
    from rmt_deq.moments import gaussian as gaussian
    from rmt_deq.experiments import observed
    from rmt_deq.jobs import kernel as pipeline
    from rmt_deq.jobs.figures import figure_names
    from rmt_deq.networks import weights as weights
    from rmt_deq._xp import BACKENDS

    got = _choices(build_parser())
    want = {("solve", "method"): gaussian.METHODS,
            ("kernel", "kind"): pipeline.KINDS, ("kernel", "method"): pipeline.METHODS,
            ("kernel", "family"): weights.WEIGHT_FAMILIES,
            ("kernel", "dtype"): weights.DTYPES,
            ("spectrum", "kind"): pipeline.KINDS,
            ("spectrum", "observe"): observed.OBSERVE_ROUTES + ("none",),
            ("spectrum", "family"): weights.WEIGHT_FAMILIES,
            ("spectrum", "dtype"): weights.DTYPES,
            ("kernel", "backend"): BACKENDS, ("spectrum", "backend"): BACKENDS,
            ("check", "family"): weights.WEIGHT_FAMILIES, ("check", "dtype"): weights.DTYPES,
            ("design", "family"): families.FAMILIES, ("design", "target"): targets.TARGETS,
            ("figures", "only"): figure_names()}
    assert got == want


def test_solve_method_table_runs(capsys):
    assert main(["solve", "--activation", "tanh", "--sa", "0.2", "--method", "table",
                 "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    ref = rd.solve_four_equations("tanh", 0.2, 1.0, method="table")
    assert d["tau"] == ref.tau and d["method"] == ref.method


@pytest.mark.parametrize("which", ["full", "plain"])
def test_kernel_ntk_surrogate_is_the_library_surrogate(files, tmp_path, which):
    s, mix = files["sample"], files["mix"]
    out = tmp_path / "T.npy"
    assert _kernel(files, out, "--kind", "ntk", "--method", "surrogate", "--groups", "v,A",
                   data=files[which]) == 0
    if which == "full":
        ref = rd.mixture_ntk_surrogate(mix, s, "tanh", 0.3, groups=("v", "A")).ntk
    else:
        ref = rd.plugin_ntk_surrogate(s.X, s.labels, "tanh", 0.3, groups=("v", "A")).ntk
    np.testing.assert_allclose(np.load(out), ref, rtol=1e-13, atol=1e-15)
    # all groups by default, and it is not the exact NTK's path
    assert np.array_equal(
        kernel_from_data(s.X, "tanh", 0.3, labels=s.labels, kind="ntk", method="surrogate"),
        rd.plugin_ntk_surrogate(s.X, s.labels, "tanh", 0.3).ntk)


# ---------------------------------------------------------------------------------------
# one-line exits
# ---------------------------------------------------------------------------------------
def test_any_rmt_deq_error_is_one_line_and_programming_errors_propagate(capsys,
                                                                       monkeypatch):
    import rmt_deq.fixed_point.four_equations

    def multi_line(*a, **k):
        raise RmtDeqError("first line\nsecond line")
    monkeypatch.setattr(rmt_deq.fixed_point.four_equations, "solve_four_equations", multi_line)
    assert main(["solve", "--activation", "relu", "--sa", "0.2"]) == 2
    _one_error_line(capsys, "RmtDeqError: first line second line")

    def bug(*a, **k):
        raise TypeError("a bug")
    monkeypatch.setattr(rmt_deq.fixed_point.four_equations, "solve_four_equations", bug)
    with pytest.raises(TypeError, match="a bug"):
        main(["solve", "--activation", "relu", "--sa", "0.2"])


@pytest.mark.parametrize("extra", [["--tau0", "1e-200"], ["--sb", "1e-320"],
                                   ["--sb", "1e300"], ["--data-scale", "1e-155"]])
def test_extreme_values_exit_2_with_one_line(files, tmp_path, capsys, extra):
    """Extreme scales (outside the supported range) end as a one-line rejection that says
    to rescale, never a traceback."""
    if extra[0] == "--data-scale":
        data = tmp_path / "scaled.npz"
        np.savez(data, X=files["sample"].X * float(extra[1]), labels=files["sample"].labels)
        argv = ["kernel", "--data", str(data), "--activation", "tanh", "--sa", "0.3",
                "--out", str(tmp_path / "K.npy")]
    else:
        argv = ["solve", "--activation", "tanh", "--sa", "0.3", "--json", *extra]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "rescale" in err, err


@pytest.mark.parametrize("argv,words", [
    (["solve", "--activation", "relu", "--sa", "nan"], "finite number"),
    (["solve", "--activation", "relu", "--sa", "0.2", "--tau0", "inf"], "finite number"),
    (["solve", "--activation", "relu", "--sa", "x"], "not a number"),
    (["solve", "--activation", "relu", "--sa", "0.2", "--method", "magic"], "invalid choice"),
    (["demo", "--max-memory", "12Q"], "memory size"),
])
def test_argparse_errors_are_one_line(capsys, argv, words):
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2
    _one_error_line(capsys, words, "--help")


def test_console_exit_is_one_line_even_when_numpy_warns():
    """A real process: the overflow inside the moments of a huge polynomial is not printed;
    the rejection is the only line on stderr."""
    r = subprocess.run([sys.executable, "-m", "rmt_deq.cli", "solve", "--activation",
                        "polynomial:1e300,1e300", "--sa", "0.3", "--sb", "0.9", "--method",
                        "quadrature"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rmt-deq solve: error: "), r.stderr
