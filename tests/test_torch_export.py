"""A designed network written out as a PyTorch module (``DesignedNetwork.torch_source``,
``save_torch``, ``rmt-deq design --torch``).

Always: the source compiles, imports only math and torch, and holds every designed
constant at full precision.  With torch installed: the module, given the same weights,
computes ``DesignedNetwork.forward`` to within the rounding of its inner products.
"""
from __future__ import annotations

import ast
import dataclasses
import math

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.cli import main
from rmt_deq.design.network import DesignedNetwork
from rmt_deq.design.solve import design_for_deq
from rmt_deq.errors import InvalidParameterError, OutputPathError
from rmt_deq.networks.explicit import ExplicitNetwork

#: every layer kind of the built-in families: hardtanh, hermite (quadratic and cubic),
#: hardtanhlin, pwlinear (the one with a nonzero centring)
DESIGNS = {"htanh1": ("tanh", {}), "quadcubic2": ("swish", {}),
           "htanhlin2": ("tanh", {"target": "ntk", "refine": True}), "lrelu2": ("relu", {})}
P, N = 40, 30
EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(scope="module")
def nets():
    return {fam: design_for_deq(act, 0.2, 0.9, family=fam, **kw)
            for fam, (act, kw) in DESIGNS.items()}


@pytest.fixture(scope="module")
def X():
    return rd.default_mixture(P, 2, rng=3).sample(N, rng=4).X


def _constants(net):
    """Every designed constant the module must carry."""
    vals = [net.tau0, *net.params.values()]
    for layer in net.layers:
        vals += [*layer.params.values(), layer.tau_in, layer.tau_out, layer.centring]
        vals += list(layer.activation.pieces[0].coeffs) if layer.kind == "hermite" else []
    return vals


@pytest.mark.parametrize("family", list(DESIGNS))
def test_source_compiles_and_holds_the_design_at_full_precision(nets, family):
    net = nets[family]
    src = net.torch_source("MyNet")
    tree = ast.parse(src)
    compile(src, f"<{family} module>", "exec")
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"math", "torch"}
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == ["MyNet"]
    for v in _constants(net):
        assert repr(float(v)) in src, (family, v)
    # the module-level constants evaluate to the design's own numbers
    consts = {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body
              if isinstance(t, ast.Assign) and isinstance(t.targets[0], ast.Name)}
    assert consts["FAMILY"] == family and consts["TAU0"] == net.tau0
    assert consts["PARAMS"] == dict(net.params)
    assert [(d["kind"], d["params"], d["tau_in"], d["tau_out"], d["centring"])
            for d in consts["LAYERS"]] == [
        (l.kind, dict(l.params), l.tau_in, l.tau_out, l.centring) for l in net.layers]
    if family == "lrelu2":
        assert net.layers[0].centring != 0.0


def test_source_errors_and_save_torch(nets, tmp_path):
    net = nets["htanh1"]
    for bad in ("not valid", "class", "", 3):
        with pytest.raises(InvalidParameterError, match="identifier"):
            net.torch_source(bad)
    # a layer kind without a torch expression is named in the error
    plain = dataclasses.replace(net, network=ExplicitNetwork(["tanh"]).at_scale(net.tau0))
    with pytest.raises(InvalidParameterError, match="'tanh'.*no torch expression"):
        plain.torch_source()
    path = tmp_path / "module.txt"                  # written exactly as named
    assert net.save_torch(str(path)) == str(path.resolve())
    assert path.read_text() == net.torch_source()
    assert [p.name for p in tmp_path.iterdir()] == ["module.txt"]   # no temporary left
    with pytest.raises(OutputPathError):
        net.save_torch(str(tmp_path / "missing" / "m.py"))


def test_design_cli_writes_the_torch_module(tmp_path, capsys):
    out, mod = tmp_path / "net.json", tmp_path / "net_torch.py"
    args = ["design", "--activation", "tanh", "--sa", "0.2", "--family", "htanh1"]
    assert main(args + ["--out", str(out), "--torch", str(mod)]) == 0
    assert f"wrote {mod}" in capsys.readouterr().err
    assert mod.read_text() == DesignedNetwork.load(str(out)).torch_source()
    assert main(args + ["--out", str(out), "--torch", str(out)]) == 2
    assert "same file" in capsys.readouterr().err
    assert main(args + ["--torch", str(tmp_path / "missing" / "m.py")]) == 2
    assert "OutputPathError" in capsys.readouterr().err


def _rounding_bound(net, X, weights):
    """First-order bound on |h_L(torch) - h_L(numpy)| entrywise when the two differ only
    in the rounding of their inner products and elementwise steps: each inner product of
    length k is off by at most k eps times its sum of magnitudes |W||h|, each layer
    multiplies the incoming difference by its local Lipschitz bound, and the activation,
    centring and scaling add a few eps of their magnitude."""
    inv = 1.0 / math.sqrt(weights.m)
    h, delta = X, np.zeros_like(X)
    for W, layer in zip(weights.W, net.layers):
        S = np.abs(W) @ np.abs(h)                       # sum of magnitudes of W h
        lip = np.zeros_like(S)
        for piece in layer.activation.pieces:          # |sigma'| <= sum_j j |c_j| S^(j-1)
            c = np.abs(np.asarray(piece.coeffs, float))
            lip = np.maximum(lip, sum(j * c[j] * S ** (j - 1) for j in range(1, len(c))))
        sig = layer.activation.fn(W @ h)
        delta = (lip * (np.abs(W) @ delta + W.shape[1] * EPS * S)
                 + 4 * EPS * (np.abs(sig) + abs(layer.centring))) * inv
        h = (sig - layer.centring) * inv
    return delta


@pytest.mark.parametrize("family", list(DESIGNS))
def test_torch_module_computes_forward(nets, X, family):
    torch = pytest.importorskip("torch")
    net = nets[family]
    ns: dict = {}
    exec(compile(net.torch_source(), f"<{family} module>", "exec"), ns)  # noqa: S102
    m = 64
    module = ns["DesignedNetwork"](P, m, generator=torch.Generator().manual_seed(0))
    assert module.widths == (P,) + (m,) * net.L
    # initial weights: unit-variance Gaussian (mean and variance within 6 standard errors)
    W1 = module.weights[0].detach().numpy()
    assert W1.shape == (m, P) and W1.dtype == np.float64
    assert abs(W1.mean()) <= 6 / math.sqrt(W1.size)
    assert abs(W1.var() - 1.0) <= 6 * math.sqrt(2.0 / W1.size)
    w = net.sample_weights(m, P, rng=7)
    with torch.no_grad():
        for param, W in zip(module.weights, w.W):
            param.copy_(torch.from_numpy(W))
        module.v.copy_(torch.from_numpy(w.v))
        x = torch.from_numpy(np.ascontiguousarray(X.T))        # rows are samples
        got = module(x).numpy().T
        f = module.readout(x).numpy()
    ref = net.forward(X, w).features
    bound = _rounding_bound(net, X, w)
    assert np.all(np.abs(got - ref) <= bound), np.max(np.abs(got - ref) / bound)
    f_ref = w.v @ ref
    f_bound = np.abs(w.v) @ (bound + m * EPS * np.abs(ref))
    assert np.all(np.abs(f - f_ref) <= f_bound)
    with pytest.raises(ValueError, match="width"):
        ns["DesignedNetwork"](P, 0)
