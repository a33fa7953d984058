"""The README's Python example runs as written (a newcomer copies it first)."""
from __future__ import annotations

import os
import re

import numpy as np

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_readme_example_runs():
    text = open(README, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)  # noqa: S102 - our own README
    G, G_sur = ns["G"], ns["G_sur"]
    assert G.shape == G_sur.shape == (320, 320)
    # the example's numbers are the package's claims: the surrogate is close (theory §4)
    assert np.linalg.norm(G - G_sur, 2) / np.linalg.norm(G, 2) < 0.1
    assert ns["report"]["spikes"] and ns["report"]["support"]
    assert ns["net"].residual <= 1e-12
