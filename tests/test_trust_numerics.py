"""Trustworthy numerics of the four-equation solver and the moment engines.

* every result returned on a grid of scales tau0 in 1e-12 .. 1e12 is accurate against an
  independent mpmath computation, and every point that cannot be had accurately raises a
  specific error (the references are in tests/reference/mpmath_references.json; regenerate
  them with ``OPENBLAS_NUM_THREADS=1 python tests/reference/make_mpmath_references.py``;
  ``python tests/test_trust_numerics.py`` prints the table of outcomes);
* a result whose residual fails its tolerance is never returned;
* the mpmath path validates its precision, checks its residual at a higher one, and
  honours (or refuses) every option;
* extreme scales give a clean InvalidParameterError;
* activation callables and factories that do not behave are refused with a clear message.
"""
from __future__ import annotations

import math
import sys

import mpmath as mp
import numpy as np
import pytest
from scipy import special

from conftest import mpmath_references, reference_generator, user_sine
from rmt_deq.fixed_point import _tau_root as tau_root
from rmt_deq.fixed_point import high_precision as mp_reference
from rmt_deq.activations import Activation, get_activation, register_activation
from rmt_deq.cli import main as cli_main
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, NoFixedPointError,
                            PrecisionLossError, RmtDeqError, UnknownActivationError)
from rmt_deq.fixed_point.accuracy import ACCURACY, g2_zero_level
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.moments.gaussian import gaussian_moments, mp_gaussian_moments, raw_moments

#: accuracy every returned grid result must meet (relative; alpha2, alpha3 see _errors).
#: The solver refuses results whose *estimated* error exceeds ACCURACY = 1e-11; the margin
#: of ten covers the estimates themselves.  1e-10 is far below anything the surrogate
#: kernels resolve (their own error is O(p^-1/2)) yet far above float64 rounding (the
#: ordinary-scale results agree with mpmath to ~1e-14), so a failure is a real defect.
GRID_TOL = 1e-10
KEYS = ("tau", "alpha1", "alpha2", "alpha3", "alpha4")


# ----------------------------------------------------------------------------------------
# the grid: tau0 x sa x activation against the stored mpmath references
# ----------------------------------------------------------------------------------------
def _user_quadratic() -> Activation:
    """The callable 0.5 t + 0.01 t^2 (complex-step derivative, no mpmath twin)."""
    return Activation.from_callable(lambda t: 0.5 * t + 0.01 * t ** 2, name="user_quadratic")


def _user_sigmoid() -> Activation:
    """A callable sigmoid without derivative (scipy's expit has no complex support, so
    phi' is a numerical Richardson derivative)."""
    return Activation.from_callable(special.expit, name="user_sigmoid")


GRID_ACTIVATIONS = {
    "relu": lambda: "relu", "leaky_relu:0.1": lambda: "leaky_relu:0.1",
    "tanh": lambda: "tanh", "sigmoid": lambda: "sigmoid", "softplus": lambda: "softplus",
    "swish": lambda: "swish", "gelu": lambda: "gelu", "erf": lambda: "erf",
    "elu:1": lambda: "elu:1", "user_quadratic": _user_quadratic,
    "user_sigmoid": _user_sigmoid,
}


def _errors(sol, ref: dict, act: Activation) -> dict:
    """Error of each output: relative for tau, alpha1, alpha4; alpha2, alpha3 relative to the
    larger of the reference and their value at g2 = g2_zero_level (where E[phi''] vanishes,
    e.g. odd phi, they are held to an absolute accuracy on that size)."""
    d0 = float(act.d1(np.zeros(1))[0])
    z = g2_zero_level(d0, float(sol.moments.h0), sol.tau)
    k1 = sol.contraction["alpha1"]
    floor = {"alpha2": sol.sa * z * sol.alpha4 ** 2 / (4 * (1 - k1)),
             "alpha3": sol.sa * z * sol.alpha1 ** 2 / (2 * (1 - k1))}
    return {k: abs(getattr(sol, k) - ref[k]) / max(abs(ref[k]), floor.get(k, 0.0))
            for k in KEYS}


def grid_outcomes(name: str) -> list:
    """[(tau0, sa, outcome, detail)] over the grid for one activation: outcome is
    "accurate", "INACCURATE", "raised <Error>" or "WRONG: <why>"."""
    data = mpmath_references()["grid"]
    ref_name = data["aliases"].get(name, name)
    spec = GRID_ACTIVATIONS[name]()
    act = get_activation(spec)
    out = []
    for i, tau0 in enumerate(data["tau0"]):
        for j, sa in enumerate(data["sa"]):
            ref = data["values"][ref_name][i][j]
            try:
                sol = solve_four_equations(spec, sa, tau0)
            except RmtDeqError as exc:
                ok = (NoFixedPointError if ref["status"] != "ok" else PrecisionLossError)
                tag = f"raised {type(exc).__name__}"
                out.append((tau0, sa, tag if isinstance(exc, ok) else "WRONG: " + tag, str(exc)))
                continue
            if ref["status"] != "ok":
                out.append((tau0, sa, "WRONG: returned", ref["why"]))
                continue
            err = _errors(sol, ref, act)
            worst = max(err, key=err.get)
            tag = "accurate" if err[worst] <= GRID_TOL else "INACCURATE"
            out.append((tau0, sa, tag, f"{worst} {err[worst]:.1e}"))
    return out


@pytest.mark.parametrize("name", list(GRID_ACTIVATIONS))
def test_grid_results_are_accurate_or_raise(name):
    """Every grid point: accurate to GRID_TOL, or NoFixedPointError where mpmath finds no
    stable fixed point, or PrecisionLossError (never an inaccurate result)."""
    outcomes = grid_outcomes(name)
    bad = [o for o in outcomes if o[2] not in ("accurate", "raised PrecisionLossError",
                                               "raised NoFixedPointError")]
    assert not bad, bad
    raised = [o for o in outcomes if o[2] == "raised PrecisionLossError"]
    if name.startswith("user_"):
        # a callable without mpmath twin loses digits only at small scales
        assert all(o[0] <= 1e-2 for o in raised), raised
    else:
        # the registered activations keep every digit at every grid scale
        assert not raised, raised


def test_reported_bug_cases_are_accurate_or_raise():
    """The reported cases, against closed forms of the small-scale limit (tau ~ 1e-8: the
    O(tau^2) corrections are below 1e-15)."""
    sa, sb, t0 = 0.2, 0.8, 1e-8
    # sigmoid: V0 = tau^2/16 + O(tau^4), E[phi'] = 1/4, g4 = 1/8 + O(tau^2), odd about 1/2
    sol = solve_four_equations("sigmoid", sa, t0)
    k = sa / 16
    assert sol.tau == pytest.approx(math.sqrt(sb * t0 ** 2 / (1 - k)), rel=1e-13)
    assert sol.alpha1 == pytest.approx(sb / (1 - k), rel=1e-13)
    assert sol.alpha4 == pytest.approx(sb / (1 - k), rel=1e-13)
    assert sol.report.residual <= sol.report.tolerance
    # softplus: phi = log 2 + x/2 + x^2/8 + O(x^4): E[phi'] = 1/2, E[phi''] = 1/4, g4 = 1/2
    sol = solve_four_equations("softplus", sa, t0)
    k = sa / 4
    a1 = sb / (1 - k)
    assert sol.tau == pytest.approx(math.sqrt(sb * t0 ** 2 / (1 - k)), rel=1e-13)
    assert sol.alpha1 == pytest.approx(a1, rel=1e-13)
    assert sol.alpha2 == pytest.approx(sa / 16 * a1 ** 2 / (4 * (1 - k)), rel=1e-12)
    assert sol.alpha3 == pytest.approx(sa / 16 * a1 ** 2 / (2 * (1 - k)), rel=1e-12)
    # the callable 0.5 t + 0.01 t^2 at tau0 = 1e-12: E[phi''] = 0.02 cannot be resolved
    # from phi' (rounded relative to phi'(0) = 0.5): refused, naming the fix
    with pytest.raises(PrecisionLossError, match=r"E\[phi''\].*derivative="):
        solve_four_equations(_user_quadratic(), sa, 1e-12)
    # ... which works: with an mpmath twin the small-scale series engine serves it exactly
    exact = Activation.from_callable(lambda t: 0.5 * t + 0.01 * t ** 2, name="quad_mp",
                                     derivative=lambda t: 0.5 + 0.02 * t,
                                     mp_fn=lambda t: t / 2 + t * t / 100)
    sol = solve_four_equations(exact, sa, 1e-12)
    q = sb * 1e-24 / (1 - sa / 4)           # V0 = q/4 + 2e-4 q^2, the q^2 term below 1e-27
    a1, a4 = sb / (1 - sa / 4), sb / (1 - sa * (0.5 + 8e-4 * q) / 2)
    assert sol.method == "series"
    assert sol.tau == pytest.approx(math.sqrt(q), rel=1e-13)
    assert sol.alpha2 == pytest.approx(sa * 4e-4 * a4 ** 2 / (4 * (1 - sa / 4)), rel=1e-12)
    assert sol.alpha3 == pytest.approx(sa * 4e-4 * a1 ** 2 / (2 * (1 - sa / 4)), rel=1e-12)


@pytest.mark.parametrize("spec", ["relu", "tanh", "sigmoid", "softplus", "erf"])
def test_scale_range_ends(spec):
    """At the ends of the supported range the limits are closed forms: tau0 = 1e-50 (sb =
    1, so sqrt(sb) tau0 is in range) and tau0 = 1e50."""
    sa = 0.3
    small = solve_four_equations(spec, sa, 1e-50, sb=1.0)
    big = solve_four_equations(spec, sa, 1e50, sb=1.0)
    if spec == "relu":     # exact scaling: V0 = tau^2 (1/2 - 1/(2 pi))
        for sol, t0 in ((small, 1e-50), (big, 1e50)):
            assert sol.tau == pytest.approx(t0 / math.sqrt(1 - sa * (0.5 - 0.5 / math.pi)),
                                            rel=1e-14)
        return
    # tau -> infinity: bounded phi, or V0 = tau^2 (1/2 - 1/(2 pi)) for softplus ~ relu
    v = 0.5 - 0.5 / math.pi if spec == "softplus" else 0.0
    assert big.tau == pytest.approx(1e50 / math.sqrt(1 - sa * v), rel=1e-14)
    # tau -> 0: V0 = phi'(0)^2 tau^2
    d0 = {"tanh": 1.0, "sigmoid": 0.25, "softplus": 0.5, "erf": 2 / math.sqrt(math.pi)}[spec]
    assert small.tau == pytest.approx(1e-50 / math.sqrt(1 - sa * d0 ** 2), rel=1e-14)
    assert small.alpha1 == pytest.approx(1 / (1 - sa * d0 ** 2), rel=1e-14)


def test_scale_moments_and_error_estimates():
    """Moments at tau = 1e-12 .. 1e12 against the stored mpmath values: the engines'
    error estimates bound the actual errors, and for the registered activations the error
    of the moments of the four equations is below 1e-12 of their natural size."""
    data = mpmath_references()["scale_moments"]
    for name, rows in data["values"].items():
        act = _user_quadratic() if name == "user_quadratic" else get_activation(name)
        p0 = float(act.fn(np.zeros(1))[0])
        for tau, ref in zip(data["taus"], rows):
            m = gaussian_moments(act, tau, with_errors=True)
            size = math.sqrt(ref["V0"] + (ref["mean"] - p0) ** 2 + p0 ** 2)
            natural = {"mean": size, "V0": size * size, "e1": size / tau,
                       "e2": size / tau ** 2, "e3": size / tau ** 3,
                       "g4": size * size / tau ** 2}
            for f, nat in natural.items():
                err = abs(getattr(m, f) - ref[f])
                noise = 1e-17 * nat           # the references agree to 1e-18 of this
                assert err <= 2 * m.errors[f] + noise, (name, tau, f, err, m.errors[f])
                if not name.startswith("user") and f != "e3":
                    assert err <= 1e-12 * max(abs(ref[f]), nat), (name, tau, f, err)


# ----------------------------------------------------------------------------------------
# the stored references match their generator
# ----------------------------------------------------------------------------------------
def test_reference_file_matches_its_generator():
    data = mpmath_references()
    assert data["format_version"] == 1 and "make_mpmath_references.py" in data["generated_by"]
    gen = reference_generator()
    # a moment entry (the package's mpmath engine at 50 digits)
    i = data["moments"]["taus"].index(2.5)
    stored = data["moments"]["values"]["user_sine"][i]
    again = gen.moment_reference("user_sine", 2.5)
    assert np.allclose(again, stored, rtol=1e-15, atol=1e-40)   # zeros: mpmath noise
    # a grid entry (the generator's own integrator and root finder)
    gi, gj = data["grid"]["tau0"].index(1.0), data["grid"]["sa"].index(0.5)
    stored = data["grid"]["values"]["tanh"][gi][gj]
    again = gen.grid_reference("tanh", 0.5, 1.0)
    for k in KEYS[:2] + KEYS[4:]:
        assert again[k] == pytest.approx(stored[k], rel=1e-15), k


# ----------------------------------------------------------------------------------------
# honest convergence
# ----------------------------------------------------------------------------------------
def test_residual_failure_raises(monkeypatch):
    """If the moments at the root disagree with those the iteration used (simulated: the
    lean iteration's V0 off by 1e-6), the residual fails and ConvergenceError is raised
    with the history -- the result is never returned as converged."""
    real = tau_root.tau_map_terms
    monkeypatch.setattr(tau_root, "tau_map_terms",
                        lambda act, tau: (real(act, tau)[0] * (1 + 1e-6), real(act, tau)[1]))
    with pytest.raises(ConvergenceError, match="residual") as info:
        solve_four_equations("tanh", 0.3, 1.0, method="quadrature")
    assert info.value.residuals
    # a tolerance loose enough for the perturbation is honoured (no error)
    sol = solve_four_equations("tanh", 0.3, 1.0, method="quadrature", tol=1e-5)
    assert sol.report.residual <= sol.report.tolerance and sol.report.converged


def test_solution_reports_its_error_estimate():
    sol = solve_four_equations("tanh", 0.3, 1.0)
    assert set(sol.error_estimate) == set(KEYS)
    assert all(0 <= v <= ACCURACY for v in sol.error_estimate.values())
    assert sol.report.residual <= sol.report.tolerance
    assert sol.to_dict()["report"]["converged"] is True


# ----------------------------------------------------------------------------------------
# the mpmath path: precision validated, residual checked at a higher one, options honoured
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dps", [0, -5, 1, 19, 101, 3000, 2.5, "30", True])
def test_dps_validated(dps):
    with pytest.raises(InvalidParameterError, match="dps"):
        solve_four_equations("tanh", 0.2, method="mpmath", dps=dps)
    with pytest.raises(InvalidParameterError, match="dps"):
        mp_gaussian_moments("tanh", 1.0, dps=dps)


@pytest.mark.parametrize("call", [
    lambda: solve_four_equations("tanh", 0.2, dps=30),
    lambda: solve_four_equations("tanh", 0.2, method="quadrature", dps=50),
    lambda: gaussian_moments("tanh", 1.0, dps=30),
    lambda: raw_moments("relu", 1.0, method="closed", dps=30)])
def test_dps_refused_without_mpmath(call):
    with pytest.raises(InvalidParameterError, match="dps.*mpmath"):
        call()


def test_mpmath_residual_is_checked_at_higher_precision(monkeypatch):
    """A working precision that is wrong (simulated: V0 off by 1e-12 at the solve's dps but
    right at dps + 10) is caught by the residual evaluated at dps + 10."""
    real = mp_reference.mp_second_central_moment

    def broken(act, tau, dps):
        v = real(act, tau, dps)
        return v * (1 + mp.mpf(10) ** -12) if dps == 20 else v

    monkeypatch.setattr(mp_reference, "mp_second_central_moment", broken)
    with pytest.raises(ConvergenceError, match="residual"):
        solve_four_equations("tanh", 0.3, 1.0, method="mpmath", dps=20,
                             check_uniqueness=False)


def test_mpmath_options_are_honoured():
    ref = solve_four_equations("tanh", 0.3, 1.0, method="mpmath", dps=20)
    assert 0 < ref.report.residual <= 1e-15 and ref.q_scan > 0 and ref.unique
    no_scan = solve_four_equations("tanh", 0.3, 1.0, method="mpmath", dps=20,
                                   check_uniqueness=False)
    assert no_scan.q_scan == 0.0 and no_scan.tau == ref.tau
    with pytest.raises(ConvergenceError, match="max_iter"):
        solve_four_equations("tanh", 0.3, 1.0, method="mpmath", dps=20, max_iter=1)
    with pytest.raises(InvalidParameterError, match="tol"):
        solve_four_equations("tanh", 0.3, 1.0, method="mpmath", dps=20, tol=1e-30)


# ----------------------------------------------------------------------------------------
# extreme scales: clean errors
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,kw", [
    (("tanh", 0.2, 1e-200), {}), (("tanh", 0.2, 1.0, 1e-320), {}),
    (("tanh", 0.2, 1.0, 1e300), {}), (("softplus", 0.2, 1e150), {}),
    (("relu", 1e-320, 1.0), {}),            # a subnormal sa: alpha2 would keep 3 digits
    (("tanh", 0.5, 5e-324), {})])
def test_extreme_scales_are_refused(args, kw):
    with pytest.raises(InvalidParameterError, match="supported range"):
        solve_four_equations(*args, **kw)


@pytest.mark.parametrize("argv", [
    ["--tau0", "1e-200"], ["--sb", "1e-320"], ["--sb", "1e300"],
    ["--activation", "softplus", "--tau0", "1e150"],
    ["--method", "mpmath", "--dps", "0"], ["--dps", "30"]])
def test_cli_extreme_input_exits_2(argv, capsys):
    base = {"--activation": "tanh", "--sa": "0.2"}
    args = list(argv)
    for k, v in base.items():
        if k not in args:
            args += [k, v]
    assert cli_main(["solve"] + args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "InvalidParameterError" in err


def test_overflowing_moments_give_a_specific_error():
    # phi = x^5 at tau ~ 1e40: E[phi^2] ~ tau^10 overflows float64
    with pytest.raises(NoFixedPointError, match="overflow|not finite|no root"):
        solve_four_equations("polynomial:0,1,0,0,0,1", 0.5, 1e40)


# ----------------------------------------------------------------------------------------
# activation callables and factories
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,match", [
    (lambda x: np.tanh(x) + 1j * x, "complex"),
    (lambda x: None, "None"),
    (lambda x: 1.0, "scalar.*full_like"),
    (lambda x: np.sum(x), "scalar"),
    (lambda x: x[:1], "shape"),
    (lambda x: np.array(["a"] * x.size).reshape(x.shape), "dtype"),
    (lambda x: math.tanh(x), "raised TypeError"),
])
def test_bad_callables_refused(fn, match):
    with pytest.raises(UnknownActivationError, match=match):
        Activation.from_callable(fn, name="bad")
    with pytest.raises(UnknownActivationError, match=match):
        solve_four_equations(fn, 0.3)


def test_bad_derivative_refused():
    with pytest.raises(UnknownActivationError, match="derivative.*complex"):
        Activation.from_callable(np.tanh, derivative=lambda x: 1j * x, name="bad_d")
    with pytest.raises(UnknownActivationError, match="derivative must be a callable"):
        Activation.from_callable(np.tanh, derivative=3.0, name="bad_d")


def test_complex_step_still_used_and_real_complex_accepted():
    sine = user_sine()                    # np.sin accepts complex: complex-step derivative
    x = np.linspace(-3, 3, 13)
    assert sine.d1_error is None
    assert np.allclose(sine.derivative(x), np.cos(x), rtol=0, atol=4e-16)
    # complex dtype with a zero imaginary part is a real activation
    act = Activation.from_callable(lambda x: np.tanh(x) + 0j, name="tanh_c")
    m, ref = gaussian_moments(act, 1.3), gaussian_moments("tanh", 1.3, method="quadrature")
    assert abs(m.V0 - ref.V0) <= 4e-16 * ref.V0


def test_factory_returning_non_activation(monkeypatch):
    from rmt_deq import activations
    monkeypatch.setitem(activations._REGISTRY, "trust_bad", lambda *p: np.tanh)
    with pytest.raises(UnknownActivationError, match="returned ufunc, not an Activation"):
        get_activation("trust_bad")
    with pytest.raises(UnknownActivationError, match="must be callable"):
        register_activation("trust_bad2", "tanh")


def test_numerical_derivative_error_is_estimated():
    act = _user_sigmoid()
    x = np.linspace(-20, 20, 401)
    true = special.expit(x) * special.expit(-x)
    err = np.abs(act.derivative(x) - true)
    assert act.d1_error is not None and np.all(err <= act.d1_error(x))


if __name__ == "__main__":   # the table of grid outcomes
    data = mpmath_references()["grid"]
    print(f"tau0 x sa grid, accuracy {GRID_TOL:g}: A accurate, P PrecisionLossError, "
          f"N NoFixedPointError (mpmath: no stable fixed point), ! wrong")
    code = {"accurate": "A", "raised PrecisionLossError": "P",
            "raised NoFixedPointError": "N"}
    print(f"{'activation':16s}" + "".join(f"{t:>8.0e}" for t in data["tau0"]))
    for name in GRID_ACTIVATIONS:
        rows = grid_outcomes(name)
        cells = {}
        for tau0, sa, tag, _ in rows:
            cells.setdefault(tau0, "")
            cells[tau0] += code.get(tag, "!")
        print(f"{name:16s}" + "".join(f"{cells[t]:>8s}" for t in data["tau0"]))
    print(f"(each cell: sa = {', '.join(f'{s:g}' for s in data['sa'])})")
    sys.exit(0)
