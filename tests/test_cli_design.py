"""``rmt-deq design``: JSON contract (family, residual, params with the stated
meaning), infeasible targets, bad input.

The meaning of ``params`` is checked independently: the activations are rebuilt from the
printed numbers exactly as the families are defined (lrelu2: sigma_l(t) = max(a_l t, b_l t);
quad2: a_l t + b_l (t^2 - tau_{l-1}^2); htanh1: a1 clip(t, -c1, c1)) and pushed through the
docs/theory.md §6 recursion with moments from rmt_deq.moments.gaussian (quadrature), then compared
with the DEQ's four-equation solution.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from rmt_deq.activations import Activation, get_activation
from rmt_deq.cli import main
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.moments.gaussian import gaussian_moments
from rmt_deq.kernels.explicit_surrogate import explicit_network_coefficients
from rmt_deq.kernels.ntk_surrogate import ntk_group_coefficients


def _run(capsys, *argv):
    rc = main(["design", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _recursion(acts, tau0):
    a1, a2, a3, a4, t = 1.0, 0.0, 0.0, 1.0, tau0
    for act in acts:
        m = gaussian_moments(act, t, method="quadrature")
        g1, g2, g4 = float(m.g1), float(m.g2), float(m.g4)
        a1, a2, a3, a4 = g1 * a1, g1 * a2 + g2 * a4 ** 2 / 4, g1 * a3 + g2 * a1 ** 2 / 2, \
            g4 * a4 / 2
        t = math.sqrt(float(m.V0))
    return np.array([a1, a2, a3, t * t])


def _deq_ck(act, sa, tau0):
    sol = solve_four_equations(act, sa, tau0)
    return np.array([(sol.alpha1 - sol.sb) / sa, sol.alpha2 / sa, sol.alpha3 / sa,
                     (sol.tau ** 2 - sol.sb * tau0 ** 2) / sa])


@pytest.mark.parametrize("sa", [0.1, 0.5])
def test_lrelu2_json_params_mean_max_slopes(capsys, sa):
    tau0 = 1.2
    rc, out, err = _run(capsys, "--activation", "relu", "--sa", str(sa), "--tau0", str(tau0),
                        "--family", "lrelu2", "--target", "ck", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["family"] == "lrelu2" and set(d["params"]) == {"a1", "b1", "a2", "b2"}
    assert d["residual"] <= 1e-12
    assert d["residual"] == pytest.approx(
        max(abs(a - b) for a, b in zip(d["achieved"], d["required"])), abs=1e-18)
    p = d["params"]
    acts = [Activation.from_callable(lambda t, a=p[f"a{l}"], b=p[f"b{l}"]:
                                     np.maximum(a * t, b * t), kinks=(0.0,))
            for l in (1, 2)]
    T = _deq_ck("relu", sa, tau0)
    assert np.max(np.abs(_recursion(acts, tau0) - T)) <= 1e-11 * np.max(np.abs(T))


def test_htanh1_ntk_json_params_mean_clip(capsys):
    rc, out, err = _run(capsys, "--activation", "tanh", "--sa", "0.3", "--family", "htanh1",
                        "--target", "ntk", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["family"] == "htanh1" and set(d["params"]) == {"a1", "c1"}
    assert d["residual"] <= 1e-12
    a, c = d["params"]["a1"], d["params"]["c1"]
    act = Activation.from_callable(lambda t: a * np.clip(t, -c, c), kinks=(-c, c))
    tot = explicit_network_coefficients([act], 1.0, method="quadrature").total
    want = ntk_group_coefficients(solve_four_equations("tanh", 0.3, 1.0))["total"]
    got = np.array([tot.c1, tot.d2, tot.d3, tot.theta_diag])
    ref = np.array([want.c1, want.d2, want.d3, want.theta_diag])
    assert np.max(np.abs(got - ref)) <= 1e-11 * np.max(np.abs(ref))


def test_quad2_params_mean_centred_quadratics():
    # no DEQ of the common activations is reachable by quad2 (it misses tau), so the params'
    # meaning is checked on a target made from a known quad2 network
    from rmt_deq.design.solve import design_network
    from rmt_deq.design.targets import DesignTarget

    tau0, (a1, b1, a2, b2) = 0.9, (1.0, 0.35, 0.8, 0.25)
    t1 = math.sqrt(float(gaussian_moments(f"polynomial:{-b1 * tau0 ** 2!r},{a1!r},{b1!r}",
                                          tau0).V0))
    acts = [get_activation(f"polynomial:{-b1 * tau0 ** 2!r},{a1!r},{b1!r}"),
            get_activation(f"polynomial:{-b2 * t1 ** 2!r},{a2!r},{b2!r}")]
    T = _recursion(acts, tau0)
    net = design_network(DesignTarget("ck", tuple(T), tau0), "quad2")
    rec = net.record()
    assert rec["family"] == "quad2" and set(rec["params"]) == {"a1", "b1", "a2", "b2"}
    assert rec["residual"] <= 1e-12
    p = rec["params"]
    q1 = float(gaussian_moments(f"polynomial:{-p['b1'] * tau0 ** 2!r},{p['a1']!r},"
                                f"{p['b1']!r}", tau0).V0)
    mine = [get_activation(f"polynomial:{-p['b1'] * tau0 ** 2!r},{p['a1']!r},{p['b1']!r}"),
            get_activation(f"polynomial:{-p['b2'] * q1!r},{p['a2']!r},{p['b2']!r}")]
    assert np.max(np.abs(_recursion(mine, tau0) - T)) <= 1e-11 * np.max(np.abs(T))


@pytest.mark.parametrize("act,family,eq,words", [
    ("relu", "quad2", "tau", "no point satisfies all four equations"),
    ("swish", "lrelu2", "tau", "no point satisfies all four equations"),
    ("gelu", "htanh1", "alpha", "odd")])
def test_infeasible_exits_2_with_the_failing_equation(capsys, act, family, eq, words):
    rc, out, err = _run(capsys, "--activation", act, "--sa", "0.2", "--family", family,
                        "--json")
    assert rc == 2 and out == ""
    assert "InfeasibleDesignError" in err and f"cannot match the CK target of {act}" in err
    assert words in err and eq in err


def test_console_entry_point_status():
    r = subprocess.run([sys.executable, "-m", "rmt_deq.cli", "design", "--activation", "relu",
                        "--sa", "0.2", "--family", "htanh1", "--target", "ntk"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cannot match the NTK target" in r.stderr


def test_text_output_and_saved_network(capsys, tmp_path):
    from rmt_deq.design.network import load_designed_network

    path = tmp_path / "explicit.json"
    rc, out, err = _run(capsys, "--activation", "tanh", "--sa", "0.2", "--family", "htanh1",
                        "--out", str(path))
    assert rc == 0 and "residual" in out and "a1" in out
    net = load_designed_network(str(path))
    assert net.family == "htanh1" and net.residual <= 1e-12


def test_bad_input(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["design", "--activation", "relu", "--sa", "0.2", "--family", "cubic"])
    assert ei.value.code == 2
    rc, out, err = _run(capsys, "--activation", "relu", "--sa", "1.5", "--family", "lrelu2")
    assert rc == 2 and "InvalidParameterError" in err
    rc, out, err = _run(capsys, "--activation", "nosuch", "--sa", "0.2", "--family", "lrelu2")
    assert rc == 2 and "UnknownActivationError" in err


def test_refine_flag_matches_the_refined_ntk_coefficients(capsys):
    """--refine: the printed htanhlin2 network, rebuilt from its params as
    a_l clip(t, -c_l, c_l) + b_l t, has the DEQ's refined NTK coefficients."""
    rc, out, _ = _run(capsys, "--activation", "tanh", "--sa", "0.2", "--tau0", "1",
                      "--family", "htanhlin2", "--target", "ntk", "--refine", "--json")
    assert rc == 0
    rec = json.loads(out)
    assert rec["equations"] == ["c1", "theta_diag", "c5", "theta_slope"]
    assert rec["residual"] <= 1e-12
    p = rec["params"]
    acts = []
    for l in (1, 2):
        a, b, c = p[f"a{l}"], p[f"b{l}"], p[f"c{l}"]
        acts.append(Activation.from_callable(
            lambda t, a=a, b=b, c=c: a * np.clip(t, -c, c) + b * t,
            derivative=lambda t, a=a, b=b, c=c: a * (np.abs(t) < c) + b,
            kinks=(-c, c), name=f"odd_layer{l}", odd=True))
    got = explicit_network_coefficients(acts, 1.0).total
    want = ntk_group_coefficients(solve_four_equations("tanh", 0.2, 1.0))["total"]
    for f in ("c1", "theta_diag", "c5", "theta_slope"):
        assert getattr(got, f) == pytest.approx(getattr(want, f), rel=1e-9, abs=1e-12), f


def test_refine_flag_rejects_non_odd_and_ck(capsys):
    rc, out, err = _run(capsys, "--activation", "relu", "--sa", "0.2", "--family",
                        "htanhlin2", "--target", "ntk", "--refine", "--json")
    assert rc == 2 and out == "" and "odd" in err
    rc, out, err = _run(capsys, "--activation", "tanh", "--sa", "0.2", "--family",
                        "htanhlin2", "--target", "ck", "--refine")
    assert rc == 2 and "ntk" in err
