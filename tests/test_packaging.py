"""Packaging contracts: the version comes from the installed metadata, the package runs
without sympy (an optional dependency that only the derivations use), and a build ships
every subpackage and the derivations (as rmt_deq_derivations)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata

import pytest

import rmt_deq


def test_version_is_the_installed_metadata():
    assert rmt_deq.__version__ == metadata.version("rmt_deq")


def test_the_package_does_not_import_sympy():
    code = ("import sys, pkgutil, importlib, rmt_deq\n"
            "for m in pkgutil.walk_packages(rmt_deq.__path__, 'rmt_deq.'):\n"
            "    importlib.import_module(m.name)\n"
            "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_import_loads_no_numerical_module_until_a_name_is_used():
    """``import rmt_deq`` is cheap (names resolve on first use); every public name resolves."""
    code = ("import sys, rmt_deq as r\n"
            "heavy = [m for m in ('numpy', 'scipy', 'matplotlib', 'mpmath', 'rmt_deq.activations')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert sorted(r.__all__) == sorted(r._LAZY) and set(r.__all__) <= set(dir(r))\n"
            "missing = [n for n in r.__all__ if getattr(r, n, None) is None]\n"
            "assert not missing, missing\n"
            "try:\n    r.no_such_name\nexcept AttributeError as e:\n"
            "    assert 'no_such_name' in str(e)\nelse:\n    raise SystemExit('no error')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
# ----------------------------------------------------------------------------------------
# what a (non-editable) build ships: every rmt_deq subpackage and the derivations
# ----------------------------------------------------------------------------------------
ROOT = pathlib.Path(__file__).resolve().parents[1]
#: what a build reads from the repository
_BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "rmt_deq", "derivations")


def _source_copy(dest: pathlib.Path) -> pathlib.Path:
    """The build inputs copied to ``dest`` (a build writes egg-info and build/ beside them)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in _BUILD_INPUTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def _expected_modules() -> set:
    """Every .py file the installed packages must hold, as install paths."""
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "rmt_deq").rglob("*.py")
             if "__pycache__" not in p.parts}
    files |= {f"rmt_deq_derivations/{p.name}" for p in (ROOT / "derivations").glob("*.py")}
    return files


@pytest.fixture(scope="module")
def built_lib(tmp_path_factory):
    """setuptools' build_py (what a wheel of this pure-Python package is made of) run on
    a copy of the repository: the folder of the built packages."""
    src = _source_copy(tmp_path_factory.mktemp("src"))
    lib = src / "lib"
    done = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()",
                           "-q", "build_py", "--build-lib", str(lib)], cwd=src,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return lib


def test_build_ships_every_subpackage_and_the_derivations(built_lib):
    got = {p.relative_to(built_lib).as_posix() for p in built_lib.rglob("*.py")}
    assert got == _expected_modules()
    assert not (built_lib / "derivations").exists()     # shipped under its package name only


def test_built_package_runs_the_derivations_outside_the_repository(built_lib, tmp_path):
    """The built layout alone on the path (no source tree beside it): ``python -m rmt_deq
    derivations`` finds the installed rmt_deq_derivations, a module runs with -m, and
    --version works."""
    env = {**os.environ, "PYTHONPATH": str(built_lib)}

    def run(*args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=300)

    done = run("-m", "rmt_deq", "derivations", "--only", "four_equations", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [(d["name"], d["status"]) for d in doc] == [("four_equations", "PASS")]
    where = run("-c", "import rmt_deq, rmt_deq_derivations as d; "
                      "print(rmt_deq.__file__); print(d.__file__)")
    assert [pathlib.Path(p).parent.parent for p in where.stdout.split()] == [built_lib] * 2
    mod = run("-m", "rmt_deq_derivations.four_equations")
    assert mod.returncode == 0, mod.stderr
    assert "matched = docs/theory.md (alpha1..alpha3; alpha5 is the dropped term): True" \
        in mod.stdout
    assert "RuntimeWarning" not in mod.stderr            # the module ran once, as __main__
    version = run("-m", "rmt_deq", "--version")
    assert version.returncode == 0 and version.stdout.startswith("rmt-deq ")


def test_wheel_ships_the_derivations(tmp_path):
    src = _source_copy(tmp_path / "src")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"),
                           str(src)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "invalid command 'bdist_wheel'" in done.stdout + done.stderr:
        pytest.skip("no offline wheel builder here: setuptools < 70.1 needs the 'wheel' "
                    "package for bdist_wheel (the build_py test checks the same file list)")
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("rmt_deq-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert _expected_modules() <= names
    assert {"rmt_deq_derivations/stein.py", "rmt_deq_derivations/_common.py"} <= names
