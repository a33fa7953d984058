"""Packaging contracts: the version comes from the installed metadata, and the package runs
without sympy (a test-only dependency that the derivations use)."""
import subprocess
import sys
from importlib import metadata

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
