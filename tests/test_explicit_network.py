"""The one description of explicit networks (rmt_deq.networks.explicit) and the results of
its routes (docs/theory.md §6.1).

Independent references: plain numpy formulas of the parametrised layer activations; the
generic 1-D moment engine against a designed network's closed-form scales; sums and
products of the exact recursion's own layer kernels."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_deq.activations import available_activations
from rmt_deq.design.solve import design_for_deq
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError, UnknownOptionError
from rmt_deq.kernels.explicit import exact_explicit_kernels
from rmt_deq.networks.explicit import (ExplicitNetwork, explicit_forward, explicit_scales,
                                       sample_explicit_weights)
from rmt_deq.networks.layer_activations import DESIGNED_KINDS, layer_activation
from rmt_deq.sampling.explicit import sampled_explicit_ntk


@pytest.mark.parametrize("kind,params,ref", [
    ("pwlinear", {"a": 1.3, "b": -0.4}, lambda t: np.maximum(1.3 * t, -0.4 * t)),
    ("hermite", {"a": 0.8, "b": -0.3, "c": 0.15},
     lambda t: 0.8 * t - 0.3 * (t * t - 0.49) + 0.15 * (t ** 3 - 3 * 0.49 * t)),
    ("hardtanh", {"a": 1.4, "c": 0.6}, lambda t: 1.4 * np.clip(t, -0.6, 0.6)),
    ("hardtanhlin", {"a": -0.7, "c": 1.3, "b": 0.45},
     lambda t: -0.7 * np.clip(t, -1.3, 1.3) + 0.45 * t)])
def test_layer_activations_are_their_formulas(kind, params, ref):
    act = layer_activation(kind, params, 0.7)
    t = np.linspace(-3.0, 3.0, 61) + 0.013
    np.testing.assert_allclose(act.fn(t), ref(t), rtol=1e-14, atol=1e-14)
    h = 1e-6      # central differences of the formula, away from the kinks
    np.testing.assert_allclose(act.d1(t), (ref(t + h) - ref(t - h)) / (2 * h), atol=1e-7)
    for x in (-2.1, -0.2, 0.3, 1.7):
        assert abs(float(act.mp_fn(x)) - float(ref(np.array(x)))) <= 1e-14


def test_no_layer_activation_is_registered():
    # the design modules are imported (above): they must not add to the global registry
    names = available_activations()
    assert not any(n.startswith("enn_") or n in DESIGNED_KINDS for n in names), names


def test_json_round_trip_unpinned_pinned_and_designed():
    net = ExplicitNetwork(["leaky_relu:0.2", "tanh"])
    assert not net.pinned and net.tau0 is None and net.depth == 2
    assert ExplicitNetwork.from_dict(net.to_dict()) == net
    pinned = net.at_scale(1.1)
    assert pinned.pinned and pinned.tau0 == 1.1 and pinned != net
    back = ExplicitNetwork.from_dict(pinned.to_dict())
    assert back == pinned and back.scales == pinned.scales
    designed = design_for_deq("swish", 0.2, 0.9, family="quadcubic2").network
    again = ExplicitNetwork.from_dict(designed.to_dict())
    assert again == designed
    X = np.random.default_rng(0).standard_normal((20, 9)) / math.sqrt(20)
    w = sample_explicit_weights(designed, 30, 20, rng=1)
    np.testing.assert_array_equal(explicit_forward(X, again, w, tau0=0.9).H[-1],
                                  explicit_forward(X, designed, w, tau0=0.9).H[-1])


def test_pinned_scales_agree_with_the_generic_moments():
    # the designer's closed-form scales against the generic 1-D moment engine
    for family, act in (("lrelu2", "relu"), ("quadcubic2", "gelu"), ("htanh1", "tanh")):
        net = design_for_deq(act, 0.3, 1.2, family=family).network
        generic = explicit_scales(net.activations, net.tau0)     # not pinned: recomputed
        np.testing.assert_allclose(generic.tau, net.scales.tau, rtol=1e-13)
        np.testing.assert_allclose(generic.centring, net.scales.centring,
                                   atol=1e-13 * max(net.scales.tau))


def test_bad_descriptions_are_rejected():
    with pytest.raises(InvalidParameterError, match="at least one layer"):
        ExplicitNetwork([])
    with pytest.raises(InvalidParameterError, match="layers must be"):
        ExplicitNetwork([3.0])
    custom = ExplicitNetwork([lambda t: np.tanh(2 * t)])
    assert custom.layers[0].kind == "custom"
    with pytest.raises(InvalidParameterError, match="no JSON form"):
        custom.to_dict()
    with pytest.raises(UnknownOptionError, match="unknown ExplicitNetwork field"):
        ExplicitNetwork.from_dict({"layers": [], "tau0": 1.0})
    with pytest.raises(InvalidParameterError, match="Hermite"):
        ExplicitNetwork.from_dict({"layers": [{"kind": "hermite",
                                               "params": {"a": 1, "b": 0, "c": 0}}]})
    with pytest.raises(InvalidParameterError, match="parameters"):
        layer_activation("pwlinear", {"a": 1.0}, 1.0)
    with pytest.raises(UnknownOptionError, match="layer kind"):
        layer_activation("spline", {}, 1.0)


def test_exact_and_sampled_results_are_kernels():
    X = np.random.default_rng(3).standard_normal((30, 12)) / math.sqrt(30)
    ex = exact_explicit_kernels(X, ["relu", "tanh"], groups=("v", "W2"))
    assert ex.route == "exact" and ex.network == "explicit" and ex.selected == ("v", "W2")
    K, Kd = ex.info.layers, ex.info.derivatives
    np.testing.assert_array_equal(ex.ck, K[2])
    # v: K_2; W2: K_1 o Kdot_2
    np.testing.assert_allclose(ex.ntk, K[2] + K[1] * Kd[1], rtol=1e-14, atol=1e-15)
    assert ex.tau0 == ex.info.scales.tau[0]
    for M in (ex.ck, ex.ntk, ex.groups["W2"], K[0]):
        with pytest.raises(ValueError):
            M[0, 0] = 1.0
    s = sampled_explicit_ntk(X, ["relu", "tanh"], width=20, realizations=4, rng=0,
                             groups=("W1", "W2"), batches=2)
    assert s.route == "sampled" and set(s.error) == {"ntk", "ck", "W1", "W2"}
    np.testing.assert_allclose(s.ntk, s.groups["W1"] + s.groups["W2"], rtol=1e-13,
                               atol=1e-15)
    assert s.error_relative["ntk"] == pytest.approx(
        s.error["ntk"] / np.abs(np.linalg.eigvalsh(s.ntk)).max(), rel=1e-10)


def test_hidden_width_weights_and_forward_are_the_layer_formulas():
    """A hidden layer wider than the features: the shapes, the seed convention and the
    forward pass against a plain numpy composition h_l = (sigma_l(W_l h_{l-1}) - c_l)/sqrt(m_l)."""
    net = ("tanh", "relu")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((15, 9)) / math.sqrt(15)
    w = sample_explicit_weights(net, 6, 15, rng=3, hidden_width=11)
    assert w.widths == (11, 6) and w.m == 6 and w.v.shape == (6,)
    assert w.W[0].shape == (11, 15) and w.W[1].shape == (6, 11)
    same = sample_explicit_weights(net, 6, 15, rng=3, hidden_width=6)
    plain = sample_explicit_weights(net, 6, 15, rng=3)
    assert all(np.array_equal(a, b) for a, b in zip(same.W, plain.W))
    fw = explicit_forward(X, net, w, tau0=1.0)
    c = fw.scales.centring
    h1 = (np.tanh(w.W[0] @ X) - c[0]) / math.sqrt(11)
    h2 = (np.maximum(w.W[1] @ h1, 0) - c[1]) / math.sqrt(6)
    scale = np.abs(h2).max()
    assert np.allclose(fw.features, h2, rtol=0, atol=1e-13 * scale)
    with pytest.raises(InvalidParameterError, match="hidden_width"):
        sample_explicit_weights(net, 6, 15, family="symmetric", hidden_width=11)
    with pytest.raises(ShapeMismatchError, match="W_2"):
        explicit_forward(X, net, [w.W[0], w.W[1].T], tau0=1.0)
