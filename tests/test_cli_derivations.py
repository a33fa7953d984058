"""``rmt-deq derivations``: the registry of the sympy derivations, the pass/fail table and
its JSON, failures, refused names, a missing sympy; and ``--version`` through python -m."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

import rmt_deq
from rmt_deq.cli import main
from rmt_deq.jobs import derivations as job

from conftest import DERIVATIONS


def _strict(text: str):
    """json.loads refusing NaN/Infinity literals."""
    def refuse(token):
        raise ValueError(f"non-strict JSON constant {token}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def pkg():
    return job.load_derivations()


# ----------------------------------------------------------------------------------------
# the registry
# ----------------------------------------------------------------------------------------
def test_registry_lists_every_module_once_in_data_flow_order(pkg):
    modules = sorted(p.stem for p in DERIVATIONS.glob("*.py") if not p.stem.startswith("_"))
    assert sorted(pkg.NAMES) == modules and len(set(pkg.NAMES)) == len(pkg.NAMES)
    entries = pkg.registry()
    assert [e.name for e in entries] == list(pkg.NAMES)
    for e in entries:
        assert e.proves and "\n" not in e.proves and len(e.proves) <= 110, e
        assert callable(e.check)
    # data flow: a derivation imports only derivations listed before it
    for i, name in enumerate(pkg.NAMES):
        tree = ast.parse((DERIVATIONS / f"{name}.py").read_text(encoding="utf-8"))
        used = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.level == 1 and node.module is None for a in node.names}
        assert used <= set(pkg.NAMES[:i]), (name, used)


# ----------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------
def test_table_for_one_derivation(capsys):
    assert main(["derivations", "--only", "four_equations"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["derivation", "result", "time"]
    name, status, seconds, *proves = lines[1].split()
    assert (name, status) == ("four_equations", "PASS") and float(seconds) >= 0
    assert " ".join(proves) == job.load_derivations().get("four_equations").proves
    assert lines[2].startswith("all 1 derivations pass") and len(lines) == 3


def test_json_for_two_derivations_in_registry_order(capsys):
    assert main(["derivations", "--json", "--only", "four_equations", "ck_expansion"]) == 0
    out = capsys.readouterr().out
    doc = _strict(out)                       # nothing but the JSON document on stdout
    assert [d["name"] for d in doc] == ["ck_expansion", "four_equations"]
    for d in doc:
        assert set(d) == {"name", "status", "seconds", "proves", "message"}
        assert d["status"] == "PASS" and d["message"] is None
        assert isinstance(d["seconds"], float) and d["seconds"] >= 0
        assert d["proves"] == job.load_derivations().get(d["name"]).proves


def _fake_registry(monkeypatch, pkg, failing: dict):
    """Replace the registry's entries by instant ones; ``failing`` maps a name to the
    exception its check raises."""
    Derivation = type(pkg.get("stein"))

    def raiser(exc):
        def check():
            raise exc
        return check

    def get(name):
        check = raiser(failing[name]) if name in failing else (lambda: None)
        return Derivation(name, f"what {name} proves", check)

    monkeypatch.setattr(pkg, "get", get)


def test_a_failing_check_is_reported_and_exits_1(monkeypatch, capsys, pkg):
    _fake_registry(monkeypatch, pkg, {
        "closed_moments": AssertionError("erf proof obligations: nonzero residual for ['x']"),
        "ntk_expansion": ZeroDivisionError("division by zero")})
    assert main(["derivations"]) == 1
    lines = capsys.readouterr().out.splitlines()
    rows = {ln.split()[0]: ln for ln in lines[1:-1] if not ln.startswith(" ")}
    assert list(rows) == list(pkg.NAMES)
    assert [n for n, ln in rows.items() if ln.split()[1] == "FAIL"] == ["closed_moments",
                                                                         "ntk_expansion"]
    detail = [ln.strip() for ln in lines if ln.startswith(" ")]
    assert detail[0].startswith("erf proof obligations: nonzero residual for ['x'] [")
    assert detail[1].startswith("ZeroDivisionError: division by zero [")
    assert lines[-1].startswith("2 of 6 derivations FAIL")
    # the same failures in the JSON list
    assert main(["derivations", "--json"]) == 1
    doc = _strict(capsys.readouterr().out)
    assert [d["status"] for d in doc] == ["PASS", "FAIL", "PASS", "PASS", "FAIL", "PASS"]
    assert doc[1]["message"].startswith("erf proof obligations")
    assert doc[4]["message"].startswith("ZeroDivisionError")


def test_unknown_names_are_refused_with_the_list(capsys):
    assert main(["derivations", "--only", "stein", "steins", "--json"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    err = cap.err.strip()
    assert "\n" not in err and "UnknownOptionError" in err and "'steins'" in err
    assert "stein, closed_moments, ck_expansion, four_equations, ntk_expansion, enn_design" in err
    with pytest.raises(SystemExit) as exc:
        main(["derivations", "--only"])
    assert exc.value.code == 2


def test_library_refuses_bad_selections():
    from rmt_deq.errors import InvalidParameterError, UnknownOptionError
    with pytest.raises(InvalidParameterError, match="at least one"):
        job.run_derivations([])
    with pytest.raises(InvalidParameterError, match="names"):
        job.run_derivations(3)
    with pytest.raises(UnknownOptionError, match="choose from stein"):
        job.run_derivations([None])


def test_missing_sympy_exits_2_with_the_fix(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sympy", None)          # import sympy now fails
    assert main(["derivations", "--only", "stein"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "MissingDependencyError" in err and "sympy" in err
    assert "pip install 'rmt_deq[derivations]'" in err and "pip install sympy" in err


def test_missing_derivations_package_names_the_fix(monkeypatch):
    from rmt_deq.errors import MissingDependencyError
    monkeypatch.setattr(job, "source_root", lambda: None)   # as an installed rmt_deq
    monkeypatch.setitem(sys.modules, job.PACKAGE, None)      # ... without the derivations
    with pytest.raises(MissingDependencyError, match="reinstall rmt_deq"):
        job.load_derivations()


def test_python_dash_m_version_is_the_package_version():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
    done = subprocess.run([sys.executable, "-m", "rmt_deq", "--version"], capture_output=True,
                          text=True, cwd=root, env={**os.environ, "PYTHONPATH": root},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    from rmt_deq.experiments.manifest import package_version
    assert done.stdout == f"rmt-deq {package_version()}\n"
    try:                      # installed: the metadata's version, as rmt_deq.__version__
        assert package_version() == metadata.version("rmt_deq") == rmt_deq.__version__
    except metadata.PackageNotFoundError:     # a source tree never installed
        pass


@pytest.mark.slow
def test_every_derivation_passes_its_checks():
    """All six checks, as ``rmt-deq derivations`` runs them (the other tests of the
    derivations test their parts; this one holds each module's check() itself)."""
    results = job.run_derivations()
    assert [r.name for r in results] == list(job.derivation_names())
    assert [(r.name, r.message) for r in results if not r.passed] == []
