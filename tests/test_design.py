"""Design of shallow explicit networks (docs/theory.md §6, rmt_deq.design).

Independent references used here, never the family's own closed forms:

* the section 6 recursion written out below (:func:`_ck_recursion`) with the layer moments
  of :func:`rmt_deq.moments.gaussian.mp_gaussian_moments` (30-digit mpmath quadrature);
* :func:`rmt_deq.kernels.explicit_surrogate.explicit_network_coefficients` (the CK/NTK
  coefficient maps fed with moments by mpmath, not the families' closed forms) for NTK
  designs;
* exact infinite-width kernels: the DEQ's fixed point (:mod:`rmt_deq.kernels.exact`) against the
  designed network's layer recursion of bivariate expectations;
* :mod:`rmt_deq.networks.explicit` for the forward pass and the sampled Gram matrix;
* scipy ``least_squares`` from many starts, with moments from :mod:`rmt_deq.moments.gaussian`,
  to confirm that an infeasible target really is infeasible.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import optimize

from conftest import load_derivation
from rmt_deq.experiments import designs as experiments
from rmt_deq.design.families import FAMILIES, get_family
from rmt_deq.design.layers import layer_moment_fn, make_layer
from rmt_deq.design.network import DesignedNetwork, load_designed_network
from rmt_deq.design.parametric import ParametricFamily
from rmt_deq.design.solve import design_for_deq, design_network, design_record, equation_weights
from rmt_deq.design.targets import (DesignTarget, REFINED_EQUATIONS, design_target,
                                    explicit_equations)
from rmt_deq.errors import (InfeasibleDesignError, InvalidParameterError, RmtDeqError,
                            ShapeMismatchError, UnknownOptionError)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.moments.gaussian import gaussian_moments, mp_gaussian_moments
from rmt_deq.kernels.explicit_surrogate import explicit_network_coefficients

SAS = (0.1, 0.2, 0.3, 0.5)


def _mp_moments(act, tau):
    return mp_gaussian_moments(act, tau, dps=20)


def _quad_moments(act, tau):
    return gaussian_moments(act, tau, method="quadrature")


def _ck_recursion(activations, tau0, moments=_mp_moments):
    """(alpha1, alpha2, alpha3, tau^2) of K_L by the section 6 recursion, written out."""
    a1, a2, a3, a4, t = 1.0, 0.0, 0.0, 1.0, float(tau0)
    for act in activations:
        m = moments(act, t)
        g1, g2, g4, V0 = (float(m.g1), float(m.g2), float(m.g4), float(m.V0))
        a1, a2, a3, a4 = g1 * a1, g1 * a2 + g2 * a4 ** 2 / 4, g1 * a3 + g2 * a1 ** 2 / 2, \
            g4 * a4 / 2
        t = math.sqrt(V0)
    return np.array([a1, a2, a3, t * t])


def _check_jacobian(fam, x, tgt):
    """The family's analytic Jacobian against central differences at x."""
    F, J = fam.evaluate(x, tgt, None)
    for k in range(len(x)):
        h = 1e-6
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        fd = (fam.evaluate(xp, tgt, None, jacobian=False)[0]
              - fam.evaluate(xm, tgt, None, jacobian=False)[0]) / (2 * h)
        # central differences: truncation O(h^2 F''') ~ 1e-12, rounding ~ 1e-16/h = 1e-10
        assert np.max(np.abs(fd - J[:, k])) <= 1e-8 * max(1.0, np.max(np.abs(J))), (k, fd, J)


def _deq_ck_target(act, sa, tau0=1.0):
    sol = solve_four_equations(act, sa, tau0)
    sb = sol.sb
    return np.array([(sol.alpha1 - sb) / sa, sol.alpha2 / sa, sol.alpha3 / sa,
                     (sol.tau ** 2 - sb * tau0 ** 2) / sa])


# ----------------------------------------------------------------------------------------
# matches to rounding, checked independently
# ----------------------------------------------------------------------------------------
MATCH_CK = ([("relu", s, "lrelu2") for s in SAS] + [("tanh", s, "htanh1") for s in SAS]
            + [(a, 0.2, "quadcubic2") for a in ("relu", "tanh", "swish", "gelu")])


@pytest.mark.parametrize("act,sa,family", MATCH_CK)
def test_ck_design_matches_and_independent_recursion_agrees(act, sa, family):
    tau0 = 1.3
    net = design_for_deq(act, sa, tau0, family=family, target="ck")
    assert net.feasible and net.residual <= 1e-12
    T = _deq_ck_target(act, sa, tau0)
    np.testing.assert_allclose(net.target.values, T, rtol=1e-13, atol=0)
    # the designed layers' moments by 20-digit mpmath (sa = 0.2) or the package's split
    # quadrature (else), never the family's closed forms; recursion written out here
    got = _ck_recursion(net.activations, tau0, _mp_moments if sa == 0.2 else _quad_moments)
    scale = np.max(np.abs(T))
    assert np.max(np.abs(got - T)) <= 1e-11 * scale, (got, T)


MATCH_NTK = ([("tanh", s, "htanh1") for s in SAS]
             + [("relu", 0.2, "quadcubic2"), ("tanh", 0.3, "quadcubic2")])


@pytest.mark.parametrize("act,sa,family", MATCH_NTK)
def test_ntk_design_matches_and_explicit_coefficients_agree(act, sa, family):
    net = design_for_deq(act, sa, 1.0, family=family, target="ntk")
    assert net.feasible and net.residual <= 1e-12
    method = "mpmath" if sa == 0.2 else "quadrature"
    tot = explicit_network_coefficients(net.activations, 1.0, method=method).total
    got = np.array([tot.c1, tot.d2, tot.d3, tot.theta_diag])
    T = np.array(net.target.values)
    assert np.max(np.abs(got - T)) <= 1e-11 * np.max(np.abs(T)), (got, T)


def test_ntk_target_is_the_section5_total():
    # docs/theory.md §5, "total" row, from the four-equation solution
    sol = solve_four_equations("swish", 0.3, 0.9)
    m = gaussian_moments("swish", sol.tau, method="mpmath")
    g1, g2, h0 = float(m.g1), float(m.g2), float(m.h0)
    sa = sol.sa
    r = 1 - sa * g1
    V0 = (sol.tau ** 2 - sol.sb * 0.81) / sa
    want = (sol.alpha1 * g1 * (2 - sa * g1) / r, g2 * sol.alpha4 ** 2 / (4 * r * r),
            3 * g2 * sol.alpha1 ** 2 / (2 * r * r), V0 + sol.tau ** 2 * h0 / (1 - sa * h0))
    tgt = design_target("swish", 0.3, 0.9, target="ntk")
    np.testing.assert_allclose(tgt.values, want, rtol=1e-10)


# ----------------------------------------------------------------------------------------
# the family moments and Jacobians
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,params", [("pwlinear", {"a": 1.3, "b": -0.4}),
                                         ("pwlinear", {"a": 0.7, "b": 0.2}),
                                         ("hermite", {"a": 0.8, "b": 0.3, "c": 0.0}),
                                         ("hermite", {"a": 0.8, "b": -0.3, "c": 0.15}),
                                         ("hardtanh", {"a": 1.4, "c": 0.6})])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.7])
def test_layer_closed_moments_vs_mpmath(kind, params, tau):
    layer = make_layer(kind, params, tau)
    fn = layer_moment_fn(layer)
    got = np.array([float(v) for v in fn(tau * tau)])
    m = mp_gaussian_moments(layer.activation, tau, dps=20)
    ref = np.array([float(m.g1), float(m.g2), float(m.g4), float(m.V0), float(m.h0)])
    assert np.max(np.abs(got - ref)) <= 1e-13 * max(1.0, np.max(np.abs(ref))), (got, ref)
    assert abs(layer.tau_out - math.sqrt(ref[3])) <= 1e-13 * layer.tau_out
    assert abs(layer.centring - float(m.mean)) <= 1e-13 * max(1.0, abs(float(m.mean)))


@pytest.mark.parametrize("family,target", [("lrelu2", "ck"), ("lrelu2", "ntk"),
                                           ("quad2", "ck"), ("quadcubic2", "ntk"),
                                           ("htanh1", "ntk")])
def test_analytic_jacobian_matches_central_differences(family, target):
    fam = get_family(family)
    tgt = design_target("gelu", 0.3, 1.1, target=target)
    x = np.array([0.3, 0.9, 0.4, 0.1][:len(fam.free_names)])
    if family == "lrelu2":
        x = np.array([-0.2, 1.1, 0.3])
    _check_jacobian(fam, x, tgt)


def test_gauge_rescaling_leaves_the_network_unchanged():
    net = design_for_deq("relu", 0.3, 1.0, family="lrelu2")
    p = net.params
    lam = 2.5       # sigma_1 / lam and sigma_2(lam .): the same network
    other = (("pwlinear", {"a": p["a1"] / lam, "b": p["b1"] / lam}),
             ("pwlinear", {"a": p["a2"] * lam, "b": p["b2"] * lam}))
    layers, t = [], 1.0
    for kind, lp in other:
        layers.append(make_layer(kind, lp, t))
        t = layers[-1].tau_out
    np.testing.assert_allclose(explicit_equations(layers, 1.0, "ck"), net.achieved,
                               rtol=1e-14, atol=1e-16)
    X = np.random.default_rng(4).standard_normal((30, 12)) / math.sqrt(30)
    W = net.sample_weights(50, 30, rng=5).W
    f1 = net.forward(X, W).features
    f2 = X
    for Wl, layer in zip(W, layers):
        f2 = layer(Wl @ f2) / math.sqrt(50)
    np.testing.assert_allclose(f2, f1, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------
# infeasible targets
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["relu", "swish", "gelu"])
def test_odd_family_for_non_odd_deq_says_why(act):
    with pytest.raises(InfeasibleDesignError) as ei:
        design_for_deq(act, 0.2, family="htanh1")
    e = ei.value
    assert e.failing_equation in ("alpha2", "alpha3")
    assert "odd" in str(e) and "two-layer family" in str(e)
    assert math.isfinite(e.residual) and e.residual > 1e-3
    assert e.best.residual == e.residual and not e.best.feasible


def _independent_best_cost(family, T, tau0, starts, weights):
    """min over starts of sum (w (F - T))^2 by scipy least_squares, moments from
    rmt_deq.moments.gaussian (the package's general engines, not rmt_deq.design's closed forms)."""
    def layers_of(x):
        x = [float(v) for v in x]
        if family == "quad2":
            b1, a2, b2 = x
            q1 = tau0 ** 2
            s1 = f"polynomial:{-b1 * q1!r},1.0,{b1!r}"
            t1 = math.sqrt(float(gaussian_moments(s1, tau0).V0))
            s2 = f"polynomial:{-b2 * t1 * t1!r},{a2!r},{b2!r}"
            return [s1, s2]
        b1, a2, b2 = x
        return [f"leaky_relu:{b1!r}", lambda t, a=a2, b=b2: np.where(t > 0, a * t, b * t)]

    def resid(x):
        acts = layers_of(x)
        if family == "lrelu2":
            from rmt_deq.activations import Activation
            acts[1] = Activation.from_callable(acts[1], kinks=(0.0,))
        got = _ck_recursion(acts, tau0, moments=_quad_moments)
        return weights * (got - T)

    best = math.inf
    for x0 in starts:
        r = optimize.least_squares(resid, x0, method="lm", xtol=1e-14, ftol=1e-14)
        best = min(best, float(r.fun @ r.fun))
    return best


@pytest.mark.parametrize("act,family", [("relu", "quad2"), ("swish", "lrelu2")])
def test_two_layer_three_parameter_family_misses_tau(act, family):
    tau0 = 1.0
    with pytest.raises(InfeasibleDesignError) as ei:
        design_for_deq(act, 0.2, tau0, family=family)
    e = ei.value
    assert e.failing_equation == "tau"
    assert "no point satisfies all four equations" in str(e)
    best = e.best
    T = np.array(best.target.values)
    w = equation_weights(best.target)
    cost = float(np.sum((w * (np.array(best.achieved) - T)) ** 2))
    assert e.residual == pytest.approx(np.max(np.abs(np.array(best.achieved) - T)), rel=1e-12)
    assert cost > 1e-6
    rng = np.random.default_rng(11)
    starts = [np.array([0.3, 1.0, 0.3])] + [
        np.array([rng.uniform(-0.5, 0.9), rng.uniform(0.5, 2.0), rng.uniform(-0.5, 1.0)])
        for _ in range(5)]
    indep = _independent_best_cost(family, T, tau0, starts, w)
    # the package found (at least) the best least-squares point an independent solver finds
    assert cost <= indep * (1 + 1e-6), (cost, indep)
    assert indep > 1e-6


def test_strict_false_returns_best_point():
    net = design_for_deq("relu", 0.2, family="quad2", strict=False)
    assert not net.feasible and net.failing_equation == "tau"
    rec = design_record("relu", 0.2, family="quad2")
    assert rec["feasible"] is False and rec["failing_equation"] == "tau"
    assert rec["residual"] == pytest.approx(net.residual, rel=1e-12)


# ----------------------------------------------------------------------------------------
# exact kernels: the designed ENN against the DEQ, on mixture data
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("act,family,target", [("relu", "lrelu2", "ck"),
                                               ("tanh", "htanh1", "ck"),
                                               ("tanh", "htanh1", "ntk"),
                                               ("swish", "quadcubic2", "ck")])
def test_exact_enn_kernel_approaches_exact_deq_kernel(act, family, target):
    res = experiments.design_convergence(act, 0.2, ps=(100, 400), family=family, target=target)
    r100, r400 = res.rows
    assert r400.explicit_vs_deq < r100.explicit_vs_deq, res.rows
    # both networks have the same surrogate (to rounding), so the surrogate is as far
    # from the ENN as from the DEQ up to the ENN-DEQ gap (triangle inequality)
    for r in res.rows:
        assert r.design_residual <= 1e-12
        gap = r.explicit_vs_deq
        assert abs(r.surrogate_vs_explicit - r.surrogate_vs_deq) <= 2.2 * gap + 1e-12, r
    if family != "quadcubic2":
        # a one-kink or one-clip design is much closer to the DEQ than the surrogate is
        assert all(r.explicit_vs_deq < 0.3 * r.surrogate_vs_deq for r in res.rows)


def test_exact_kernels_agree_with_rmt_deq_explicit():
    from rmt_deq.kernels.explicit import exact_explicit_kernels

    net = design_for_deq("relu", 0.3, 1.0, family="lrelu2")
    X = np.random.default_rng(2).standard_normal((40, 25)) / math.sqrt(40)
    mine = net.exact_kernels(X)
    # the same activations, not pinned: centrings computed by the generic 1-D moments
    other = exact_explicit_kernels(X, net.activations, tau0=net.tau0)
    np.testing.assert_allclose(mine.ck, other.ck, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------------
# the object: JSON, numpy forward pass, sampling
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("family,act,target", [("lrelu2", "relu", "ck"),
                                               ("htanh1", "tanh", "ntk"),
                                               ("quadcubic2", "gelu", "ck")])
def test_json_round_trip(tmp_path, family, act, target):
    net = design_for_deq(act, 0.3, 1.2, family=family, target=target)
    path = tmp_path / "net.json"
    net.save(str(path))
    back = load_designed_network(str(path))
    assert back.family == net.family and dict(back.params) == dict(net.params)
    assert back.taus == net.taus and back.centrings == net.centrings
    assert back.achieved == net.achieved and back.residual == net.residual
    assert back.target.values == net.target.values and back.target.kind == target
    assert json.loads(path.read_text())["format"] == "rmt_deq.design/2"
    X = np.random.default_rng(0).standard_normal((20, 7))
    W = net.sample_weights(30, 20, rng=1)
    np.testing.assert_array_equal(back.forward(X, W).features, net.forward(X, W).features)


def test_json_rejects_corrupt_records():
    net = design_for_deq("relu", 0.2, family="lrelu2")
    d = net.to_dict()
    with pytest.raises(InvalidParameterError, match="format"):
        DesignedNetwork.from_dict({**d, "format": "other"})
    bad = json.loads(json.dumps(d))
    bad["params"]["a2"] *= 1.01
    with pytest.raises(InvalidParameterError, match="do not follow from the parameters"):
        DesignedNetwork.from_dict(bad)


@pytest.mark.parametrize("family,act,refine", [("lrelu2", "relu", False),
                                               ("htanh1", "tanh", False),
                                               ("quadcubic2", "swish", False),
                                               ("htanhlin2", "tanh", True)])
def test_forward_matches_rmt_deq_explicit_and_numpy_source(family, act, refine):
    from rmt_deq.networks.explicit import explicit_forward, sample_explicit_weights

    net = design_for_deq(act, 0.2, 0.9, family=family,
                            **({"target": "ntk", "refine": True} if refine else {}))
    p, n, m = 30, 11, 64
    X = 0.9 * np.random.default_rng(3).standard_normal((p, n)) / math.sqrt(p)
    # the same activations, not pinned: centrings computed by the generic 1-D moments
    w = sample_explicit_weights(net.network, m, p, rng=7)
    ref = explicit_forward(X, net.activations, w, tau0=net.tau0).H[-1]
    mine = net.forward(X, w.W).features
    np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-14)
    ns: dict = {}
    exec(net.numpy_source("f"), ns)     # the standalone function depends on numpy only
    np.testing.assert_allclose(ns["f"](X, w.W), ref, rtol=1e-12, atol=1e-14)


def test_sampled_gram_within_its_error_bar_of_the_exact_kernel():
    # one layer: E[h_1^T h_1] equals K_1 exactly at every width, so the only error is
    # Monte-Carlo, bounded by the sampler's own (99.9%) error bar
    from rmt_deq.sampling.explicit import sampled_explicit_ck

    net = design_for_deq("tanh", 0.3, 1.0, family="htanh1")
    X = np.random.default_rng(5).standard_normal((40, 30)) / math.sqrt(40)
    s = sampled_explicit_ck(X, net.network, width=400, realizations=32, rng=9,
                            tau0=net.tau0, confidence=0.999)
    exact = net.exact_kernels(X, groups=("v",)).ck
    err = float(np.abs(np.linalg.eigvalsh(s.ck - exact)).max())
    assert err <= s.error["ck"], (err, s.error["ck"])


def test_sampled_comparison_runs_and_is_consistent():
    net = design_for_deq("relu", 0.2, 1.0, family="lrelu2")
    X = np.random.default_rng(6).standard_normal((40, 24)) / math.sqrt(40)
    out = experiments.sampled_comparison(net, X, width=300, realizations=4, rng=3)
    for k in ("explicit_sampled_vs_deq_sampled", "explicit_sampled_vs_explicit_exact",
              "deq_sampled_vs_deq_exact", "explicit_exact_vs_deq_exact"):
        assert math.isfinite(getattr(out, k)) and getattr(out, k) >= 0
    # exact kernels of the two networks are far closer than either sample is to them
    assert out.explicit_exact_vs_deq_exact < 0.2 * out.explicit_sampled_vs_explicit_exact


def test_parametric_family_matches_tanh_ck():
    # a user-given odd one-layer family a clip(t, -c, c): same network as htanh1
    fam = ParametricFamily(lambda t, th: th[0] * np.clip(t, -th[1], th[1]), 1,
                              [0.8, 1.5], name="myclip", param_names=("a", "c"),
                              kinks=lambda th: (-th[1], th[1]), odd=True)
    net = design_for_deq("tanh", 0.3, 1.0, family=fam, n_starts=4)
    assert net.feasible and net.relative_residual <= 1e-10
    ref = design_for_deq("tanh", 0.3, 1.0, family="htanh1")
    assert abs(abs(net.params["a1"]) - ref.params["a1"]) <= 1e-8 * ref.params["a1"]
    assert abs(abs(net.params["c1"]) - ref.params["c1"]) <= 1e-8 * ref.params["c1"]
    T = _deq_ck_target("tanh", 0.3)
    got = _ck_recursion(net.activations, 1.0, _quad_moments)
    assert np.max(np.abs(got - T)) <= 1e-10 * np.max(np.abs(T))
    with pytest.raises(InvalidParameterError, match="user-defined"):
        DesignedNetwork.from_dict(net.to_dict())
    assert dict(DesignedNetwork.from_dict(net.to_dict(), fam).params) == dict(net.params)
    with pytest.raises(InfeasibleDesignError, match="odd"):
        design_for_deq("relu", 0.3, 1.0, family=fam)


# ----------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------
def test_bad_inputs():
    tgt = design_target("relu", 0.2)
    with pytest.raises(UnknownOptionError, match="unknown design family"):
        design_network(tgt, "cubic9")
    with pytest.raises(UnknownOptionError, match="unknown option"):
        design_network(tgt, "lrelu2", tolerance=1e-3)
    with pytest.raises(InvalidParameterError, match="tol"):
        design_network(tgt, "lrelu2", tol=-1.0)
    with pytest.raises(InvalidParameterError, match="DesignTarget"):
        design_network((1, 2, 3, 4), "lrelu2")
    with pytest.raises(InvalidParameterError, match="NTK target only"):
        design_network(tgt, "lrelu2", explicit_groups=("v",))
    with pytest.raises(UnknownOptionError, match="group"):
        design_network(design_target("tanh", 0.2, target="ntk"), "htanh1",
                          explicit_groups=("W7",))
    with pytest.raises(RmtDeqError):
        design_target("relu", 0.2, target="cka")
    with pytest.raises(InvalidParameterError, match="4 finite values"):
        DesignTarget("ck", (1.0, 2.0, 3.0), 1.0)
    with pytest.raises(InvalidParameterError, match="tau0"):
        DesignTarget("ck", (1.0, 0.1, 0.1, 1.0), -1.0)
    with pytest.raises(InvalidParameterError, match="sa is required"):
        design_target("relu")
    with pytest.raises(InvalidParameterError, match="not both"):
        design_target(solve_four_equations("relu", 0.2, 1.0), 0.2)
    with pytest.raises(InvalidParameterError, match="> 0"):
        make_layer("hardtanh", {"a": 1.0, "c": 0.0}, 1.0)
    with pytest.raises(UnknownOptionError):
        make_layer("spline", {}, 1.0)
    net = design_for_deq("relu", 0.2, family="lrelu2")
    X = np.ones((5, 3))
    with pytest.raises(InvalidParameterError, match="width"):
        net.forward(X)
    with pytest.raises(ShapeMismatchError, match="need 2 weight"):
        net.forward(X, [np.ones((4, 5))])
    with pytest.raises(ShapeMismatchError, match="W_2"):
        net.forward(X, [np.ones((4, 5)), np.ones((4, 3))])
    with pytest.raises(ShapeMismatchError):
        net.forward(np.ones(5), width=3)
    with pytest.raises(InvalidParameterError, match="identifier"):
        net.numpy_source("not valid")
    with pytest.raises(InvalidParameterError, match="sigma"):
        ParametricFamily(3.0, 2, [1.0])
    with pytest.raises(InvalidParameterError, match="theta0"):
        ParametricFamily(lambda t, th: t, 2, [[1.0], [1.0], [1.0]])
    with pytest.raises(InvalidParameterError, match="CK design"):
        experiments.sampled_comparison(design_for_deq("tanh", 0.2, family="htanh1", target="ntk"),
                              X, width=4)


# ----------------------------------------------------------------------------------------
# the sympy derivation (derivations/enn_design.py)
# ----------------------------------------------------------------------------------------
def test_enn_design_derivation():
    ed = load_derivation("enn_design")
    # section 6 recursion from the second-order expansion (exact zeros)
    assert all(v == 0 for v in ed.recursion_residuals().values())
    # closed-form family moments, derived by exact piecewise integration
    for kind in ed.KINDS:
        res = ed.moment_residuals(kind)
        assert [k for k, v in res.items() if not ed.is_zero(v)] == [], (kind, res)
    # the package's float implementations agree with the derived expressions
    for kind, err in ed.compare_with_package().items():
        assert err <= 1e-14, (kind, err)
    # the scaling gauge, quad2's cubic, c2 acting on tau only, pwlinear homogeneity
    assert all(v == 0 for vs in ed.gauge_residuals().values() for v in vs)
    q = ed.quad2_closed_form()
    assert q["cubic_minus_package"] == 0 and q["c2_changes_alphas"] == [0, 0, 0]
    assert q["c2_changes_tau"] != 0
    assert ed.homogeneity_residual() == 0


# ----------------------------------------------------------------------------------------
# refined NTK design (c1, theta_diag, c5, theta_slope) for an odd DEQ
# ----------------------------------------------------------------------------------------
def _refined_total_from_table(act, sa, tau0):
    """docs/ntk_surrogate.md "Optional refinement" table, v + A + B, written out with
    mpmath moments at the fixed-point scale (c1 and theta_diag from the section 5 table)."""
    sol = solve_four_equations(act, sa, tau0)
    m = mp_gaussian_moments(act, sol.tau, dps=20)
    e1, e3, h0, h2 = float(m.e1), float(m.e3), float(m.h0), float(m.h2)
    g1, g4 = e1 * e1, float(m.g4)
    sb, a1, a4 = sol.sb, sol.alpha1, sol.alpha4
    r, q = 1 - sa * g1, 1 - sa * h0
    V0 = (sol.tau ** 2 - sb * tau0 ** 2) / sa
    c1 = a1 * g1 * (2 - sa * g1) / r
    theta = V0 + sol.tau ** 2 * h0 / q
    c5 = (e1 * e3 * a1 * a4 / (2 * r) + sa * g1 * e1 * e3 * a1 * a4 / r ** 2
          + e1 * e3 * a1 * a4 / (2 * r))
    ts = (g4 * a4 / 2 + sa * a4 * (g4 * h0 / (2 * q) + V0 * h2 / (2 * q * q))
          + sb * h0 / q + sb * tau0 ** 2 * h2 * a4 / (2 * q * q))
    return np.array([c1, theta, c5, ts])


def test_refined_target_is_the_refinement_table_total():
    tgt = design_target("tanh", 0.2, 1.1, target="ntk", refine=True)
    assert tgt.refine and tgt.equations == ("c1", "theta_diag", "c5", "theta_slope")
    np.testing.assert_allclose(tgt.values, _refined_total_from_table("tanh", 0.2, 1.1),
                               rtol=1e-10)


@pytest.mark.parametrize("sa", SAS)
def test_refined_ntk_design_matches_and_explicit_coefficients_agree(sa):
    net = design_for_deq("tanh", sa, 1.0, family="htanhlin2", target="ntk", refine=True)
    assert net.feasible and net.residual <= 1e-12
    assert net.L == 2 and net.params["a1"] == 1.0 and net.params["a2"] > 0
    method = "mpmath" if sa == 0.2 else "quadrature"
    tot = explicit_network_coefficients(net.activations, 1.0, method=method).total
    got = np.array([tot.c1, tot.theta_diag, tot.c5, tot.theta_slope])
    T = np.array(net.target.values)
    assert np.max(np.abs(got - T)) <= 1e-11 * np.max(np.abs(T)), (got, T)
    # odd layers: the plain equations d2 = d3 = 0 hold by themselves
    assert abs(tot.d2) <= 1e-14 and abs(tot.d3) <= 1e-14


@pytest.mark.parametrize("params", [{"a": 1.4, "c": 0.6, "b": 0.0},
                                    {"a": -0.7, "c": 1.3, "b": 0.45},
                                    {"a": 0.36, "c": 0.2, "b": -0.53}])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.7])
def test_hardtanhlin_closed_moments_vs_mpmath(params, tau):
    layer = make_layer("hardtanhlin", params, tau)
    got = np.array([float(v) for v in layer_moment_fn(layer, True)(tau * tau)])
    m = mp_gaussian_moments(layer.activation, tau, dps=20)
    ref = np.array([float(m.g1), float(m.g2), float(m.g4), float(m.V0), float(m.h0),
                    float(m.e1) * float(m.e3), float(m.h2)])
    assert np.max(np.abs(got - ref)) <= 1e-13 * max(1.0, np.max(np.abs(ref))), (got, ref)
    assert abs(layer.tau_out - math.sqrt(ref[3])) <= 1e-13 * layer.tau_out
    assert abs(float(m.mean)) <= 1e-14 and layer.centring == 0.0
    # a hard tanh layer's refined moments (b = 0) are the same expressions
    if params["b"] == 0.0:
        ht = make_layer("hardtanh", {"a": params["a"], "c": params["c"]}, tau)
        got2 = np.array([float(v) for v in layer_moment_fn(ht, True)(tau * tau)])
        # two closed-form expressions of the same moments: a few ulps of their magnitude
        assert np.all(np.abs(got2 - got) <= 8 * np.finfo(float).eps * np.maximum(1.0, np.abs(got)))


@pytest.mark.parametrize("refine", [False, True])
def test_htanhlin2_analytic_jacobian_matches_central_differences(refine):
    fam = get_family("htanhlin2")
    tgt = design_target("tanh", 0.3, 1.1, target="ntk", refine=refine)
    x = np.array([0.2, 0.1, -0.4, -1.3, -0.5])
    _check_jacobian(fam, x, tgt)


def test_refined_design_exact_ntk_gap_shrinks_faster_than_htanh1():
    plain = experiments.design_convergence("tanh", 0.2, ps=(100, 400), family="htanh1", target="ntk")
    ref = experiments.design_convergence("tanh", 0.2, ps=(100, 400), family="htanhlin2",
                                target="ntk", refine=True)
    (p100, p400), (r100, r400) = plain.rows, ref.rows
    assert all(r.design_residual <= 1e-12 for r in (r100, r400))
    # closer at each p, and shrinking faster: measured gaps 1.65e-3 -> 4.8e-4 (ratio 0.29,
    # slope -0.89) vs htanh1's 7.9e-3 -> 5.1e-3 (0.65, slope -0.31) over p = 100..400
    assert r100.explicit_vs_deq < 0.5 * p100.explicit_vs_deq
    assert r400.explicit_vs_deq < 0.25 * p400.explicit_vs_deq
    assert r400.explicit_vs_deq / r100.explicit_vs_deq < 0.5
    assert (r400.explicit_vs_deq / r100.explicit_vs_deq
            < 0.7 * (p400.explicit_vs_deq / p100.explicit_vs_deq))
    # the refined network and the DEQ share the refined surrogate (triangle inequality)
    for r in (r100, r400):
        assert abs(r.surrogate_vs_explicit - r.surrogate_vs_deq) <= 2.2 * r.explicit_vs_deq


def test_refined_design_json_round_trip_and_cli_family(tmp_path):
    net = design_for_deq("tanh", 0.3, 1.2, family="htanhlin2", target="ntk", refine=True)
    path = tmp_path / "net.json"
    net.save(str(path))
    back = load_designed_network(str(path))
    assert back.target.refine and back.target.equations == REFINED_EQUATIONS
    assert back.achieved == net.achieved and dict(back.params) == dict(net.params)
    assert "htanhlin2" in FAMILIES
    assert [layer.kind for layer in net.network.layers] == ["hardtanhlin"] * 2
    assert all(a.name.startswith("hardtanhlin:") for a in net.network.activations)


def test_one_odd_layer_cannot_match_the_refined_tanh_target():
    # htanh1 has two parameters for four equations; the diagnosis names an equation
    with pytest.raises(InfeasibleDesignError) as ei:
        design_for_deq("tanh", 0.2, 1.0, family="htanh1", target="ntk", refine=True)
    assert ei.value.failing_equation in REFINED_EQUATIONS


def test_refined_design_bad_inputs():
    with pytest.raises(InvalidParameterError, match="ntk"):
        design_target("tanh", 0.2, target="ck", refine=True)
    with pytest.raises(InvalidParameterError, match="odd"):
        design_target("relu", 0.2, target="ntk", refine=True)
    with pytest.raises(InvalidParameterError, match="True or False"):
        design_target("tanh", 0.2, target="ntk", refine=1)
    tgt = design_target("tanh", 0.2, target="ntk", refine=True)
    with pytest.raises(InvalidParameterError, match="odd family"):
        design_network(tgt, "lrelu2")
    layer = make_layer("pwlinear", {"a": 1.0, "b": 0.1}, 1.0)
    with pytest.raises(InvalidParameterError, match="refined"):
        explicit_equations([layer], 1.0, "ntk", refine=True)
    with pytest.raises(InvalidParameterError, match="ntk"):
        explicit_equations([layer], 1.0, "ck", refine=True)
    with pytest.raises(InvalidParameterError, match="clip level"):
        make_layer("hardtanhlin", {"a": 1.0, "c": -1.0, "b": 0.0}, 1.0)


def test_parametric_odd_family_matches_refined_target():
    # the user-family (quadrature) path: two layers a clip(t, -c, c) + b t, no gauge fixed
    fam = ParametricFamily(
        lambda t, th: th[0] * np.clip(t, -th[1], th[1]) + th[2] * t, 2,
        [[1.0, 1.2, 0.06], [0.36, 0.2, 0.52]], name="cliplin", param_names=("a", "c", "b"),
        derivative=lambda t, th: np.where(np.abs(t) < th[1], th[0] + th[2], th[2]),
        kinks=lambda th: (-th[1], th[1]), odd=True)
    net = design_for_deq("tanh", 0.2, 1.0, family=fam, target="ntk", refine=True,
                            n_starts=3)
    assert net.feasible and net.relative_residual <= 1e-12
    # the same network through the closed-form hardtanhlin moments (not quadrature)
    p = net.params
    l1 = make_layer("hardtanhlin", {"a": p["a1"], "c": p["c1"], "b": p["b1"]}, 1.0)
    l2 = make_layer("hardtanhlin", {"a": p["a2"], "c": p["c2"], "b": p["b2"]},
                        l1.tau_out)
    got = np.array(explicit_equations([l1, l2], 1.0, "ntk", refine=True))
    T = np.array(net.target.values)
    assert np.max(np.abs(got - T)) <= 1e-10 * np.max(np.abs(T)), (got, T)


# ----------------------------------------------------------------------------------------
# the result object: read-only, with the solver's report
# ----------------------------------------------------------------------------------------
def test_design_result_is_read_only_and_reports_its_solve():
    import dataclasses

    net = design_for_deq("relu", 0.2, 1.0, family="lrelu2")
    for mapping in (net.params, net.errors, net.relative_errors, net.diagnostics,
                    net.layers[0].params):
        with pytest.raises(TypeError):
            mapping["x"] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.residual = 0.0
    rep = net.report
    assert rep.converged is True and rep.tolerance == net.diagnostics["tol"]
    assert rep.residual == net.relative_residual <= rep.tolerance
    assert rep.iterations == net.diagnostics["iterations"] and rep.message == "matched"
    bad = design_for_deq("relu", 0.2, family="quad2", strict=False)
    assert bad.report.converged is False and bad.report.residual > bad.report.tolerance
    assert bad.report.message == bad.diagnostics["message"] != "matched"
