"""Closed forms of every raw Gaussian moment the package uses, derived with sympy.

The eight raw moments (rmt_deq.moments.closed_forms.RAW_KEYS), xi ~ N(0, 1)::

    phi = E[phi], He1_phi = E[He1 phi], He2_phi = E[He2 phi], He3_phi = E[He3 phi],
    phi2 = E[phi^2], He2_phi2 = E[He2 phi^2], dphi2 = E[phi'^2], He2_dphi2 = E[He2 phi'^2]

(all at phi(tau xi); phi' is the almost-everywhere derivative, as in the package).

* Piecewise polynomials (relu, leaky_relu(s), hard_tanh(a, c) = a clip(t, -c, c),
  quadratic a t + b t^2, the general cubic c0 + c1 t + c2 t^2 + c3 t^3): exact
  integration piece by piece, in y = tau xi, with symbolic tau > 0, s, a, c > 0 and
  coefficients; each monomial y^j w(y) is integrated with the antiderivative
  F_j = -tau^2 y^(j-1) w + (j-1) tau^2 F_(j-2), F_0 = erf(y/(sqrt(2) tau))/2, whose
  derivative sympy checks (_common.monomial_antiderivative), and the boundary values at
  +-oo from x^n exp(-x^2/2) -> 0 (stein.boundary_limits).  A second, independent route checks the Hermite-weighted ones of the kinked
  activations: Stein, E[He_k phi] = tau^k E[phi^(k)] with distributional derivatives
  (deltas at the kinks), and E[He2 phi^2] = tau^2 E[(phi^2)''].
* erf (odd): E[phi] = E[He2 phi] = 0 because the integrands are odd (checked
  symbolically); E[He1 phi], E[He3 phi], E[phi'^2], E[He2 phi'^2] by sympy integration;
  E[phi^2] = (2/pi) asin(2 tau^2/(1 + 2 tau^2)) by a derivative-in-tau argument: with
  b = 1 + 2 tau^2, d/dtau E[erf(tau xi)^2] = (4/sqrt(pi)) E[xi erf(tau xi) e^{-tau^2 xi^2}],
  and x e^{-tau^2 x^2} pdf(x) = -(1/b) d/dx [e^{-tau^2 x^2} pdf(x)] (checked) turns that, by
  one integration by parts (bounded erf, no boundary term), into a Gaussian integral; it
  equals d/dtau of the claimed form (checked) and both vanish at tau = 0.
  E[He2 phi^2] = tau d/dtau E[phi^2] (heat equation, derivations/stein.py).

Every derived expression is then evaluated at 40 digits (mpmath) and compared with
rmt_deq.moments.gaussian.raw_moments(..., method="closed") and method="quadrature".
"""
from __future__ import annotations

import functools
import time

import mpmath as mp
import numpy as np
import sympy as sp

try:
    from ._common import (Derivation, E_He, E_y, He, ddiff, integrate_linear, is_zero, pdf,
                          require, require_zero, tau, w, x, y)
except ImportError:  # run as a script
    from _common import (Derivation, E_He, E_y, He, ddiff, integrate_linear, is_zero, pdf,
                         require, require_zero, tau, w, x, y)

RAW_KEYS = ("phi", "He1_phi", "He2_phi", "He3_phi", "phi2", "He2_phi2", "dphi2", "He2_dphi2")
TAUS = (0.05, 0.3, 1.0, 2.5, 7.0, 20.0)

s_ = sp.Symbol("s", real=True)
a_ = sp.Symbol("a", real=True)
b_ = sp.Symbol("b", real=True)
c_ = sp.Symbol("c", positive=True)
cs_ = sp.symbols("c0:4", real=True)
oo = sp.oo


def piecewise_definitions() -> dict:
    """name -> (parameter symbols, pieces [(lo, hi, polynomial in y)])."""
    return {
        "relu": ((), [(-oo, 0, sp.Integer(0)), (0, oo, y)]),
        "leaky_relu": ((s_,), [(-oo, 0, s_ * y), (0, oo, y)]),
        "hard_tanh": ((a_, c_), [(-oo, -c_, -a_ * c_), (-c_, c_, a_ * y), (c_, oo, a_ * c_)]),
        "quadratic": ((a_, b_), [(-oo, oo, a_ * y + b_ * y ** 2)]),
        "cubic": (cs_, [(-oo, oo, sum(ci * y ** i for i, ci in enumerate(cs_)))]),
    }


def _integrands(p: sp.Expr) -> dict:
    dp = sp.diff(p, y)
    u = y / tau
    return {"phi": p, "He1_phi": He(1, u) * p, "He2_phi": He(2, u) * p, "He3_phi": He(3, u) * p,
            "phi2": p ** 2, "He2_phi2": He(2, u) * p ** 2, "dphi2": dp ** 2,
            "He2_dphi2": He(2, u) * dp ** 2}


@functools.lru_cache(maxsize=None)
def piecewise_moments(name: str) -> dict:
    """The eight raw moments of a piecewise polynomial, exact sympy integration per piece."""
    _, pieces = piecewise_definitions()[name]
    out = dict.fromkeys(RAW_KEYS, sp.Integer(0))
    for lo, hi, p in pieces:
        for k, integrand in _integrands(p).items():
            out[k] += integrate_linear(integrand, lo, hi)
    return {k: sp.simplify(v) for k, v in out.items()}


def heaviside_form(name: str, power: int = 1) -> sp.Expr:
    """phi**power as one expression with Heavisides (for distributional derivatives); the
    pieces are disjoint, so phi^2 = sum_i p_i^2 1_{piece i}."""
    _, pieces = piecewise_definitions()[name]
    expr = sp.Integer(0)
    for lo, hi, p in pieces:
        p = p ** power
        ind = sp.Integer(1)
        if lo != -oo:
            ind *= sp.Heaviside(y - lo)
        if hi != oo:
            ind *= sp.Heaviside(hi - y)
        expr += p * ind
    return expr


def stein_route(name: str) -> dict:
    """He-weighted moments by Stein with distributional derivatives (second derivation)."""
    phi = heaviside_form(name)
    out = {f"He{k}_phi": tau ** k * E_y(ddiff(phi, k)) for k in (1, 2, 3)}
    out["He2_phi2"] = tau ** 2 * E_y(ddiff(heaviside_form(name, 2), 2))
    return out


def nice_forms() -> dict:
    """Compact closed forms (z = c/tau, Phi the normal cdf) for the report, to be checked
    equal to the derived ones."""
    z = c_ / tau
    P = sp.erf(z / sp.sqrt(2))                      # = 2 Phi(z) - 1
    q = sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)    # pdf(z)
    r2pi = 1 / sp.sqrt(2 * sp.pi)
    return {
        "relu": {"phi": tau * r2pi, "He1_phi": tau / 2, "He2_phi": tau * r2pi,
                 "He3_phi": 0, "phi2": tau ** 2 / 2, "He2_phi2": tau ** 2,
                 "dphi2": sp.Rational(1, 2), "He2_dphi2": 0},
        "leaky_relu": {"phi": (1 - s_) * tau * r2pi, "He1_phi": (1 + s_) * tau / 2,
                       "He2_phi": (1 - s_) * tau * r2pi, "He3_phi": 0,
                       "phi2": (1 + s_ ** 2) * tau ** 2 / 2, "He2_phi2": (1 + s_ ** 2) * tau ** 2,
                       "dphi2": (1 + s_ ** 2) / 2, "He2_dphi2": 0},
        "hard_tanh": {"phi": 0, "He1_phi": a_ * tau * P, "He2_phi": 0,
                      "He3_phi": -2 * a_ * tau * z * q,
                      "phi2": a_ ** 2 * (tau ** 2 * P - 2 * tau * c_ * q + c_ ** 2 * (1 - P)),
                      "He2_phi2": 2 * a_ ** 2 * tau * (tau * P - 2 * c_ * q),
                      "dphi2": a_ ** 2 * P, "He2_dphi2": -2 * a_ ** 2 * z * q},
        "quadratic": {"phi": b_ * tau ** 2, "He1_phi": a_ * tau, "He2_phi": 2 * b_ * tau ** 2,
                      "He3_phi": 0, "phi2": a_ ** 2 * tau ** 2 + 3 * b_ ** 2 * tau ** 4,
                      "He2_phi2": 2 * a_ ** 2 * tau ** 2 + 12 * b_ ** 2 * tau ** 4,
                      "dphi2": a_ ** 2 + 4 * b_ ** 2 * tau ** 2,
                      "He2_dphi2": 8 * b_ ** 2 * tau ** 2},
        "erf": {"phi": 0, "He1_phi": 2 * tau / sp.sqrt(sp.pi * (1 + 2 * tau ** 2)),
                "He2_phi": 0,
                "He3_phi": -4 * tau ** 3 / (sp.sqrt(sp.pi) * (1 + 2 * tau ** 2) ** sp.Rational(3, 2)),
                "phi2": 2 / sp.pi * sp.asin(2 * tau ** 2 / (1 + 2 * tau ** 2)),
                "He2_phi2": 8 * tau ** 2 / (sp.pi * (1 + 2 * tau ** 2) * sp.sqrt(1 + 4 * tau ** 2)),
                "dphi2": 4 / (sp.pi * sp.sqrt(1 + 4 * tau ** 2)),
                "He2_dphi2": -16 * tau ** 2 / (sp.pi * (1 + 4 * tau ** 2) ** sp.Rational(3, 2))},
    }


# ----------------------------------------------------------------------------------------
# erf
# ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def erf_moments() -> dict:
    """The eight raw moments of erf, with the proof obligations of the derivation.

    Returns {"moments": {key: expr}, "checks": {name: expr that must be zero}}."""
    phi = sp.erf(y)
    dphi = sp.diff(phi, y)                              # 2/sqrt(pi) exp(-y^2)
    checks = {}
    mom = {}
    # odd integrands -> zero expectations
    for k, integrand in (("phi", phi * w), ("He2_phi", He(2, y / tau) * phi * w)):
        checks[f"{k}_odd"] = sp.simplify(integrand.subs(y, -y) + integrand)
        mom[k] = sp.Integer(0)
    mom["He1_phi"] = sp.simplify(E_He(1, phi))
    mom["He3_phi"] = sp.simplify(E_He(3, phi))
    mom["dphi2"] = sp.simplify(E_y(dphi ** 2))
    mom["He2_dphi2"] = sp.simplify(E_He(2, dphi ** 2))
    # E[erf^2] by the derivative in tau
    bb = 1 + 2 * tau ** 2
    kern = sp.exp(-tau ** 2 * x ** 2) * pdf
    checks["ibp_kernel"] = sp.simplify(x * kern + sp.diff(kern, x) / bb)
    # d/dtau erf(tau x)^2 = 2 erf(tau x) (2/sqrt(pi)) x exp(-tau^2 x^2)
    checks["d_erf2_dtau"] = sp.simplify(
        sp.diff(sp.erf(tau * x) ** 2, tau)
        - 2 * sp.erf(tau * x) * 2 / sp.sqrt(sp.pi) * x * sp.exp(-tau ** 2 * x ** 2))
    # J = E[xi erf(tau xi) e^{-tau^2 xi^2}] = (1/b) int (d/dx erf(tau x)) kern dx
    J = sp.integrate(sp.diff(sp.erf(tau * x), x) * kern, (x, -oo, oo)) / bb
    dI = 4 / sp.sqrt(sp.pi) * J
    claimed = 2 / sp.pi * sp.asin(2 * tau ** 2 / bb)
    checks["dphi2_dtau"] = sp.simplify(sp.diff(claimed, tau) - dI)
    checks["phi2_at_0"] = claimed.subs(tau, 0)
    # cross-check of J by a direct sympy integration
    J_direct = sp.integrate(sp.erf(tau * x) * x * kern, (x, -oo, oo))
    checks["J_direct"] = sp.simplify(J - J_direct)
    mom["phi2"] = claimed
    mom["He2_phi2"] = sp.simplify(tau * sp.diff(claimed, tau))
    checks["He2_phi2_stein"] = sp.simplify(
        mom["He2_phi2"] - tau ** 2 * E_y(sp.diff(phi ** 2, y, 2)))
    return {"moments": {k: mom[k] for k in RAW_KEYS}, "checks": checks}


# ----------------------------------------------------------------------------------------
# numerical comparison with the package
# ----------------------------------------------------------------------------------------
NUMERIC_CASES = {
    # package spec: (derivation name, parameter values in the order of the symbols)
    "relu": ("relu", ()),
    "leaky_relu:0.1": ("leaky_relu", (0.1,)),
    "leaky_relu:-0.5": ("leaky_relu", (-0.5,)),
    "hard_tanh:1.5,0.7": ("hard_tanh", (1.5, 0.7)),
    "hard_tanh:1,1": ("hard_tanh", (1.0, 1.0)),
    "quadratic:0.8,0.3": ("quadratic", (0.8, 0.3)),
    "polynomial:0.2,-0.5,0.3,0.1": ("cubic", (0.2, -0.5, 0.3, 0.1)),
    "erf": ("erf", ()),
}


def derived_all() -> dict:
    """name -> {key: expr} for every derivation name used in NUMERIC_CASES."""
    out = {name: piecewise_moments(name) for name in piecewise_definitions()}
    out["erf"] = erf_moments()["moments"]
    return out


def _reference(expr: sp.Expr, symbols, values, taus, dps: int = 40) -> np.ndarray:
    fn = sp.lambdify((tau, *symbols), expr, modules="mpmath")
    with mp.workdps(dps):
        vals = [mp.mpf(v) for v in values]
        return [fn(mp.mpf(t), *vals) for t in taus]


def compare_with_package(derived: dict | None = None, taus=TAUS, rel_tol: float = 1e-12,
                         abs_tol: float = 1e-14) -> dict:
    """For each case and engine: max relative error (over tau and the eight moments) of the
    package's raw moments against the derived closed forms at 40 digits; moments whose
    exact value is below ``abs_tol`` are compared absolutely.  Returns
    {spec: {"closed": (max_rel, max_abs_on_zeros, worst), "quadrature": (...)}}."""
    from rmt_deq.moments.gaussian import raw_moments
    derived = derived if derived is not None else derived_all()
    defs = piecewise_definitions()
    out = {}
    t_arr = np.array(taus, float)
    for spec, (name, values) in NUMERIC_CASES.items():
        symbols = defs[name][0] if name in defs else ()
        refs = {k: _reference(sp.sympify(derived[name][k]), symbols, values, taus)
                for k in RAW_KEYS}
        res = {}
        for method in ("closed", "quadrature"):
            got = raw_moments(spec, t_arr, method=method)
            max_rel, max_abs, worst = 0.0, 0.0, None
            for k in RAW_KEYS:
                for i, t in enumerate(taus):
                    ref = refs[k][i]
                    err = abs(mp.mpf(float(got[k][i])) - ref)
                    if abs(ref) <= abs_tol:
                        if err > max_abs:
                            max_abs = float(err)
                        continue
                    rel = float(err / abs(ref))
                    if rel > max_rel:
                        max_rel, worst = rel, (k, t)
            res[method] = (max_rel, max_abs, worst)
        out[spec] = res
    return out


def check(rel_tol: float = 1e-12, abs_tol: float = 1e-14) -> None:
    """Every claim above: the derived moments equal the compact forms, the Stein route
    agrees for the kinked activations, quadratic = cubic(0, a, b, 0), the cubic's moments are
    Gaussian moments, the erf proof obligations vanish, and the package's raw moments (both
    engines) are within ``rel_tol`` (``abs_tol`` where the moment is 0) of the derived ones
    at 40 digits.  Raises AssertionError naming the first claim that fails."""
    derived = derived_all()
    nice = nice_forms()
    for name in ("relu", "leaky_relu", "hard_tanh", "quadratic", "erf"):
        require_zero({k: derived[name][k] - nice[name][k] for k in RAW_KEYS},
                     f"{name}: derived moments = compact closed forms")
    for name in ("relu", "leaky_relu", "hard_tanh"):
        st = stein_route(name)
        require_zero({k: st[k] - derived[name][k] for k in st},
                     f"{name}: Stein route (distributional derivatives) agrees")
    sub = {cs_[0]: 0, cs_[1]: a_, cs_[2]: b_, cs_[3]: 0}
    require_zero({k: derived["cubic"][k].subs(sub) - derived["quadratic"][k] for k in RAW_KEYS},
                 "quadratic = cubic(0, a, b, 0)")
    c0, c1, c2, c3 = cs_
    require_zero({"phi": derived["cubic"]["phi"] - (c0 + c2 * tau ** 2),
                  "He1_phi": derived["cubic"]["He1_phi"] - tau * (c1 + 3 * c3 * tau ** 2),
                  "He3_phi": derived["cubic"]["He3_phi"] - 6 * c3 * tau ** 3},
                 "cubic moments = Gaussian moments E[xi^n] = (n-1)!!")
    require_zero(erf_moments()["checks"], "erf proof obligations")
    for spec, res in compare_with_package(derived, rel_tol=rel_tol, abs_tol=abs_tol).items():
        for method, (max_rel, max_abs, worst) in res.items():
            require(max_rel <= rel_tol and max_abs <= abs_tol,
                    f"package raw moments of {spec} ({method}) against the derived ones: "
                    f"relative error {max_rel:.3g} at {worst}, absolute error on zero "
                    f"moments {max_abs:.3g} (tolerances {rel_tol:g}, {abs_tol:g})")


DERIVATION = Derivation(
    "closed_moments",
    "closed forms of the raw Gaussian moments of relu, leaky relu, hard tanh, quadratic, "
    "cubic, erf",
    check)


def main() -> None:
    t0 = time.time()
    derived = {}
    nice = nice_forms()
    for name in piecewise_definitions():
        derived[name] = piecewise_moments(name)
        agree = all(is_zero(derived[name][k] - nice[name][k]) for k in RAW_KEYS) \
            if name in nice else None
        print(f"{name:11s} derived;", "matches compact forms:" if agree is not None else "",
              agree if agree is not None else "")
        if name in ("relu", "leaky_relu", "hard_tanh"):
            st = stein_route(name)
            print(f"{'':11s} Stein route (distributional derivatives) agrees:",
                  all(is_zero(st[k] - derived[name][k]) for k in st))
    # quadratic is the cubic with c0 = c3 = 0
    sub = {cs_[0]: 0, cs_[1]: a_, cs_[2]: b_, cs_[3]: 0}
    print("quadratic = cubic(0, a, b, 0):",
          all(is_zero(derived["cubic"][k].subs(sub) - derived["quadratic"][k]) for k in RAW_KEYS))
    e = erf_moments()
    derived["erf"] = e["moments"]
    print("erf proof obligations all zero:", all(is_zero(v) for v in e["checks"].values()),
          "| matches compact forms:",
          all(is_zero(e["moments"][k] - nice["erf"][k]) for k in RAW_KEYS))
    for name in ("relu", "leaky_relu", "hard_tanh", "erf"):
        print(f"  {name}:", {k: nice[name][k] for k in RAW_KEYS})
    print("package vs derived (max rel err; max abs err where the moment is 0; worst):")
    for spec, res in compare_with_package(derived).items():
        print(f"  {spec:30s}", "  ".join(f"{m}: {r[0]:.1e} / {r[1]:.1e} {r[2]}"
                                         for m, r in res.items()))
    print(f"[{time.time() - t0:.1f} s]")


if __name__ == "__main__":
    main()
