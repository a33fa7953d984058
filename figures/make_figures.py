"""Regenerate the committed figure set in this folder: ``rmt-deq figures --out figures``.

    python figures/make_figures.py                      # every figure, full size
    python figures/make_figures.py --quick              # a smoke run (small sizes)
    python figures/make_figures.py --only spectra_ck --format png,pdf

Options are those of ``rmt-deq figures`` (``--help``); the output folder defaults to the
folder of this script.  The figures, their tables and the manifest are built by
:mod:`rmt_deq.jobs.figures`.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))     # the source tree, when not installed
    from rmt_deq.cli import main

    sys.exit(main(["figures", "--out", HERE, *sys.argv[1:]]))
