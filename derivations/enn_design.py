"""Shallow explicit networks and their design (docs/theory.md §6), derived with sympy.

1. The layer recursion.  Layer l sees a kernel K_{l-1} whose entries, on mixture data, are
   (with P = x_i.x_j = O(eps) off the diagonal and delta_i = ||x_i||^2 - tau0^2 = O(eps))

       off the diagonal  S = alpha1 P + alpha2 delta_i delta_j + alpha3 P^2 (+ O(eps^3)),
       on the diagonal   tau_{l-1}^2 + d_i,  d_i = alpha4 delta_i.

   K_l = E[sigma_c(u_i) sigma_c(u_j)] is expanded by derivations/ck_expansion.py
   (Mehler + heat equation) and the coefficients of eps P, eps^2 delta_i delta_j and
   eps^2 P^2 are collected; the diagonal is V0 + (g4/2) d_i.  Result (checked equal to
   docs/theory.md §6 by :func:`recursion_residuals`)::

       alpha1' = g1 alpha1,  alpha2' = g1 alpha2 + g2 alpha4^2/4,
       alpha3' = g1 alpha3 + g2 alpha1^2/2,  alpha4' = (g4/2) alpha4,  tau'^2 = V0.

   (The term (e1 e3/2) alpha1 alpha4 P (delta_i + delta_j) that the theory drops appears
   too; its matrix vanishes in operator norm, see ck_expansion.)

2. Closed-form moments (g1, g2, g4, V0, h0) = (E[s']^2, E[s'']^2, E[(s_c^2)''], E[s_c^2],
   E[s'^2]) of each family's layer at input variance q = tau^2, integrated exactly piece by
   piece (derivations/_common.integrate_linear), with E[s'] = E[He1 s]/tau,
   E[s''] = E[He2 s]/tau^2 and E[(s_c^2)''] = E[He2 s_c^2]/tau^2 (Stein, derivations/stein):

   * pwlinear s(t) = a t (t > 0), b t (t < 0)  (lrelu2: max(a t, b t) with a >= b);
   * hermite  s(t) = a t + b (t^2 - q) + c (t^3 - 3 q t)  (quad2: c = 0; quadcubic2);
   * hardtanh s(t) = a clip(t, -c, c)  (htanh1).

   They are checked equal (symbolically) to the expressions rmt_deq.design._moments documents,
   and its float implementations are compared with them at random points.

3. Consequences used by rmt_deq.design:

   * the scaling gauge: (s_1/lambda, s_2(lambda .)) is the same network; the two-layer
     recursion's four outputs are invariant under (a1, b1, a2, b2) -> (a1, b1, a2, b2) /
     lambda x (1, 1, lambda^2, lambda^2) for pwlinear and (1/lambda, 1/lambda, lambda,
     lambda^2) for hermite, so lrelu2 and quad2 have three effective parameters;
   * quad2's CK closed form: with a1 = 1, B = b1^2, a2^2 = T1, b2^2 = T3/2 - T1 B and the
     cubic T1 B + (T3/2 - T1 B)(1 + 4 tau0^2 B)^2 = T2 (the quad2 family's ck_cubic);
     the cubic term c2 of quadcubic2 changes tau_2^2 only;
   * positive homogeneity: a pwlinear layer has V0 = q g4/2, so a pwlinear ENN has
     tau_L^2 = tau0^2 alpha4_L (why lrelu2 reaches the homogeneous ReLU DEQ).
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

try:
    from . import ck_expansion as ck
    from ._common import (Derivation, integrate_linear, is_zero, require, require_below,
                          require_zero, tau, y)
except ImportError:  # run as a script
    import ck_expansion as ck
    from _common import (Derivation, integrate_linear, is_zero, require, require_below,
                         require_zero, tau, y)

eps = ck.eps
P, dlt_i, dlt_j = sp.symbols("P delta_i delta_j", real=True)
A1, A2, A3, A4 = sp.symbols("alpha1:5", real=True)
g1, g2, g4, V0 = sp.symbols("g1 g2 g4 V0", real=True)
a, b, cc = sp.symbols("a b c", real=True)
cpos = sp.Symbol("c_clip", positive=True)
lam = sp.Symbol("lambda", positive=True)
q0 = sp.Symbol("q0", positive=True)
oo = sp.oo


# ----------------------------------------------------------------------------------------
# 1. the recursion
# ----------------------------------------------------------------------------------------
def derived_recursion() -> dict:
    """New (alpha1, alpha2, alpha3, alpha4, tau^2) of K_l by coefficient collection."""
    S_in = eps * A1 * P + eps ** 2 * (A2 * dlt_i * dlt_j + A3 * P ** 2)
    G = ck.offdiag_series(2).subs({ck.S: S_in, ck.di: A4 * eps * dlt_i,
                                   ck.dj: A4 * eps * dlt_j}, simultaneous=True)
    G = sp.series(sp.expand(G), eps, 0, 3).removeO()
    back = {ck.M[1] ** 2: g1, ck.M[2] ** 2: g2}
    out = {
        "alpha1": G.coeff(eps, 1).coeff(P, 1).subs(dlt_i, 0).subs(dlt_j, 0),
        "alpha2": G.coeff(eps, 2).coeff(dlt_i, 1).coeff(dlt_j, 1).subs(P, 0),
        "alpha3": G.coeff(eps, 2).coeff(P, 2).subs(dlt_i, 0).subs(dlt_j, 0),
        "dropped": sp.factor(G.coeff(eps, 2).coeff(P, 1).coeff(dlt_i, 1).subs(dlt_j, 0)),
    }
    out = {k: sp.expand(v).subs(back) for k, v in out.items()}
    diag, Hs = ck.diagonal_series(1)
    d_new = sp.expand(diag.subs(ck.di, A4 * dlt_i))
    out["tau2"] = d_new.coeff(dlt_i, 0).subs(Hs[0], V0)
    out["alpha4"] = d_new.coeff(dlt_i, 1).subs(Hs[2], g4)
    return out


def theory_recursion() -> dict:
    """docs/theory.md §6."""
    return {"alpha1": g1 * A1, "alpha2": g1 * A2 + g2 * A4 ** 2 / 4,
            "alpha3": g1 * A3 + g2 * A1 ** 2 / 2, "alpha4": g4 * A4 / 2, "tau2": V0}


def recursion_residuals() -> dict:
    d, t = derived_recursion(), theory_recursion()
    return {k: sp.simplify(d[k] - t[k]) for k in t}


def dropped_term() -> sp.Expr:
    """Coefficient of eps^2 P delta_i (the term the theory drops): (m1 m3/2) alpha1 alpha4."""
    return derived_recursion()["dropped"]


# ----------------------------------------------------------------------------------------
# 2. family moments
# ----------------------------------------------------------------------------------------
def _pieces(kind: str):
    q = tau ** 2
    if kind == "pwlinear":
        return [(-oo, 0, b * y), (0, oo, a * y)]
    if kind == "hermite":
        return [(-oo, oo, a * y + b * (y ** 2 - q) + cc * (y ** 3 - 3 * q * y))]
    if kind == "hardtanh":
        return [(-oo, -cpos, -a * cpos), (-cpos, cpos, a * y), (cpos, oo, a * cpos)]
    raise ValueError(kind)


def _E(kind: str, fn) -> sp.Expr:
    """E[fn(piece polynomial, its derivative)(tau xi)], exact, piece by piece."""
    total = sp.Integer(0)
    for lo, hi, p in _pieces(kind):
        total += integrate_linear(sp.expand(fn(p, sp.diff(p, y))), lo, hi)
    return sp.simplify(total)


@functools.lru_cache(maxsize=None)
def family_moments(kind: str) -> dict:
    """(g1, g2, g4, V0, h0, mean) of a family layer at input variance tau^2."""
    u = y / tau
    mean = _E(kind, lambda p, dp: p)
    e1 = _E(kind, lambda p, dp: u * p) / tau
    # E[He2 s] = tau^2 E[s''] picks up the delta at a kink (Stein); no derivative taken here
    e2 = _E(kind, lambda p, dp: (u ** 2 - 1) * p) / tau ** 2
    V0_ = sp.simplify(_E(kind, lambda p, dp: p ** 2) - mean ** 2)
    # s_c^2 = s^2 - 2 mean s + mean^2 and E[He2] = 0
    g4_ = sp.simplify((_E(kind, lambda p, dp: (u ** 2 - 1) * p ** 2)
                       - 2 * mean * e2 * tau ** 2) / tau ** 2)
    h0_ = _E(kind, lambda p, dp: dp ** 2)
    return {"g1": sp.simplify(e1 ** 2), "g2": sp.simplify(e2 ** 2), "g4": g4_, "V0": V0_,
            "h0": h0_, "mean": mean}


def stated_moments(kind: str) -> dict:
    """The closed forms rmt_deq.design._moments states (docstrings of moments_*), q = tau^2."""
    q = tau ** 2
    if kind == "pwlinear":
        return {"g1": (a + b) ** 2 / 4, "g2": (a - b) ** 2 / (2 * sp.pi * q),
                "g4": a ** 2 + b ** 2 - (a - b) ** 2 / sp.pi,
                "V0": q * ((a ** 2 + b ** 2) / 2 - (a - b) ** 2 / (2 * sp.pi)),
                "h0": (a ** 2 + b ** 2) / 2, "mean": (a - b) * tau / sp.sqrt(2 * sp.pi)}
    if kind == "hermite":
        h0_ = a ** 2 + 4 * b ** 2 * q + 18 * cc ** 2 * q ** 2
        return {"g1": a ** 2, "g2": 4 * b ** 2, "g4": 2 * h0_ + 12 * a * cc * q,
                "V0": a ** 2 * q + 2 * b ** 2 * q ** 2 + 6 * cc ** 2 * q ** 3, "h0": h0_,
                "mean": sp.Integer(0)}
    if kind == "hardtanh":
        z = cpos / tau
        Pz = sp.erf(z / sp.sqrt(2))
        zpdf = z * sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)
        return {"g1": a ** 2 * Pz ** 2, "g2": sp.Integer(0),
                "g4": 2 * a ** 2 * (Pz - 2 * zpdf),
                "V0": a ** 2 * q * (Pz - 2 * zpdf + z ** 2 * (1 - Pz)), "h0": a ** 2 * Pz,
                "mean": sp.Integer(0)}
    raise ValueError(kind)


def moment_residuals(kind: str) -> dict:
    d, s = family_moments(kind), stated_moments(kind)
    return {k: sp.simplify(d[k] - s[k]) for k in s}


KINDS = ("pwlinear", "hermite", "hardtanh")


def compare_with_package(n_points: int = 6, seed: int = 0) -> dict:
    """Largest relative difference between rmt_deq.design._moments' float moments and the derived
    expressions, at random parameters and scales (per kind)."""
    from rmt_deq.design._moments import moments_hardtanh, moments_hermite, moments_pwlinear

    rng = np.random.default_rng(seed)
    worst = {}
    for kind in KINDS:
        exprs = family_moments(kind)
        keys = ("g1", "g2", "g4", "V0", "h0")
        syms = [a, b, cc, cpos, tau]
        fns = {k: sp.lambdify(syms, exprs[k], "mpmath") for k in keys}
        err = 0.0
        for _ in range(n_points):
            av, bv, cv = rng.uniform(-1.5, 1.5, 3)
            cl, t = rng.uniform(0.2, 2.0), rng.uniform(0.2, 3.0)
            if kind == "pwlinear":
                got = moments_pwlinear(av, bv, t * t)
            elif kind == "hermite":
                got = moments_hermite(av, bv, cv, t * t)
            else:
                got = moments_hardtanh(av, cl, t * t)
            ref = [float(fns[k](av, bv, cv, cl, t)) for k in keys]
            scale = max(1.0, max(abs(r) for r in ref))
            err = max(err, max(abs(float(g) - r) for g, r in zip(got, ref)) / scale)
        worst[kind] = err
    return worst


# ----------------------------------------------------------------------------------------
# 3. consequences
# ----------------------------------------------------------------------------------------
def two_layer_outputs(kind: str, p1: dict, p2: dict, q: sp.Expr = q0) -> list:
    """(alpha1, alpha2, alpha3, tau^2) of a two-layer network of ``kind`` layers (derived
    moments, section 6 recursion), input variance q."""
    m = family_moments(kind)
    rec = theory_recursion()
    state = {A1: 1, A2: 0, A3: 0, A4: 1}
    qq = q
    for prm in (p1, p2):
        sub = {**prm, tau: sp.sqrt(qq)}
        mom = {g1: m["g1"].subs(sub), g2: m["g2"].subs(sub), g4: m["g4"].subs(sub),
               V0: m["V0"].subs(sub)}
        new = {k: sp.simplify(rec[k].subs(mom).subs(state, simultaneous=True))
               for k in ("alpha1", "alpha2", "alpha3", "alpha4", "tau2")}
        state = {A1: new["alpha1"], A2: new["alpha2"], A3: new["alpha3"], A4: new["alpha4"]}
        qq = new["tau2"]
    return [state[A1], state[A2], state[A3], qq]


def gauge_residuals() -> dict:
    """Outputs(scaled) - outputs for the two gauge maps: all zero."""
    a1, b1, a2, b2 = sp.symbols("a1 b1 a2 b2", real=True)
    out = {}
    base = two_layer_outputs("pwlinear", {a: a1, b: b1}, {a: a2, b: b2})
    scl = two_layer_outputs("pwlinear", {a: a1 / lam, b: b1 / lam},
                            {a: lam * a2, b: lam * b2})
    out["pwlinear"] = [sp.simplify(x - y_) for x, y_ in zip(scl, base)]
    base = two_layer_outputs("hermite", {a: a1, b: b1, cc: 0}, {a: a2, b: b2, cc: 0})
    scl = two_layer_outputs("hermite", {a: a1 / lam, b: b1 / lam, cc: 0},
                            {a: lam * a2, b: lam ** 2 * b2, cc: 0})
    out["hermite"] = [sp.simplify(x - y_) for x, y_ in zip(scl, base)]
    return out


def quad2_closed_form() -> dict:
    """quad2 CK equations with a1 = 1: a2^2 = T1, b2^2 = T3/2 - T1 B, and the cubic in
    B = b1^2 (compared with the quad2 family's ck_cubic); c2 enters tau^2 only."""
    from rmt_deq.design.families import get_family

    B, A2s, D, T1, T2, T3, c2 = sp.symbols("B a2sq D T1 T2 T3 c2", real=True)
    b1, a2, b2 = sp.symbols("b1 a2 b2", real=True)
    outs = two_layer_outputs("hermite", {a: 1, b: b1, cc: 0}, {a: a2, b: b2, cc: c2})
    outs0 = two_layer_outputs("hermite", {a: 1, b: b1, cc: 0}, {a: a2, b: b2, cc: 0})
    c2_only_tau = [sp.simplify(x - y_) for x, y_ in zip(outs[:3], outs0[:3])]
    sub = {b1 ** 2: B, a2 ** 2: A2s, b2 ** 2: D}
    al = [sp.expand(o).subs(sub) for o in outs0[:3]]
    # alpha1 = T1 and alpha3 = T3 give a2^2 and b2^2
    s1 = sp.solve(sp.Eq(al[0], T1), A2s)[0]
    s3 = sp.solve(sp.Eq(al[2].subs(A2s, s1), T3), D)[0]
    cubic = sp.expand(al[1].subs({A2s: s1, D: s3}) - T2)
    pkg = get_family("quad2").ck_cubic(T1, T2, T3, q0)
    poly = sp.Poly(cubic, B)
    pkg_poly = sp.Poly(sum(cf * B ** (3 - k) for k, cf in enumerate(pkg)), B)
    return {"a2sq": s1, "b2sq": s3, "cubic": cubic,
            "cubic_minus_package": sp.simplify((poly - pkg_poly).as_expr()),
            "c2_changes_alphas": c2_only_tau,
            "c2_changes_tau": sp.simplify(outs[3] - outs0[3])}


def homogeneity_residual() -> sp.Expr:
    """V0 - q g4/2 for a pwlinear layer: zero."""
    m = family_moments("pwlinear")
    return sp.simplify(m["V0"] - tau ** 2 * m["g4"] / 2)


def check(tol: float = 1e-14) -> None:
    """Every claim above: the section-6 recursion, the families' closed-form moments, the
    scaling gauge, quad2's cubic (c2 acting on tau only) and pwlinear homogeneity (exact
    zeros), and rmt_deq.design._moments' float moments within ``tol`` (relative to
    max(1, |moment|)) of the derived ones.  Raises AssertionError naming the first claim
    that fails."""
    rec = recursion_residuals()
    require(all(v == 0 for v in rec.values()),
            f"section-6 recursion from the second-order expansion: {rec}")
    for kind in KINDS:
        require_zero(moment_residuals(kind), f"{kind}: derived = stated closed-form moments")
    require_below(compare_with_package().items(), tol,
                  "rmt_deq.design._moments float moments against the derived ones")
    gauge = gauge_residuals()
    require(all(v == 0 for vs in gauge.values() for v in vs),
            f"scaling gauge leaves the two-layer outputs unchanged: {gauge}")
    q = quad2_closed_form()
    require(q["cubic_minus_package"] == 0, "quad2 CK cubic = the quad2 family's ck_cubic")
    require(q["c2_changes_alphas"] == [0, 0, 0] and q["c2_changes_tau"] != 0,
            "quadcubic2's c2 changes tau_2^2 only")
    require(homogeneity_residual() == 0, "pwlinear layer: V0 = q g4/2")


DERIVATION = Derivation(
    "enn_design",
    "the explicit-network layer recursion and the design families' closed-form moments",
    check)


def main() -> None:
    print("recursion (derived - docs/theory.md §6):", recursion_residuals())
    print("dropped P(delta_i + delta_j) coefficient:", dropped_term())
    for kind in KINDS:
        print(f"{kind}: derived - stated moments:", moment_residuals(kind))
    print("package float moments vs derived, max relative difference:",
          compare_with_package())
    print("gauge invariance residuals:", gauge_residuals())
    q = quad2_closed_form()
    print("quad2 cubic - package cubic:", q["cubic_minus_package"],
          "; c2 changes alpha1..3 by", q["c2_changes_alphas"])
    print("pwlinear V0 - q g4/2:", homogeneity_residual())
    ok = (all(v == 0 for v in recursion_residuals().values())
          and all(is_zero(v) for k in KINDS for v in moment_residuals(k).values())
          and q["cubic_minus_package"] == 0)
    print("all symbolic checks hold:", ok)


if __name__ == "__main__":
    main()
