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
