"""The four-equation system (docs/theory.md §3) by coefficient matching.

Off the diagonal Sigma_ij = sa G_ij + sb x_i.x_j with G_ij expanded as in
derivations/ck_expansion.py.  With P = x_i.x_j = O(eps) (i != j), delta_i = ||x_i||^2 - tau0^2
= O(eps), d_i = Sigma_ii - tau^2 = alpha4 delta_i (diagonal, ck_expansion.alpha4_from_diagonal),
substitute the ansatz

    Sigma_ij = alpha1 P + alpha2 delta_i delta_j + alpha3 P^2 + alpha5 P (delta_i + delta_j)

and match the coefficients of eps P, eps^2 delta_i delta_j, eps^2 P^2, eps^2 P(delta_i+delta_j):

    alpha1 = sb / (1 - sa g1)
    alpha2 = sa g2 alpha4^2 / (4 (1 - sa g1))
    alpha3 = sa g2 alpha1^2 / (2 (1 - sa g1))
    alpha5 = sa e1 e3 alpha1 alpha4 / (2 (1 - sa g1))   (the dropped term: its matrix
             P o (delta 1^T + 1 delta^T) vanishes in operator norm, see ck_expansion)

and on the diagonal tau^2 = sa V0 + sb tau0^2, alpha4 = sb / (1 - sa g4/2).
(P^2 = (x_i.x_j)^2 ~ tr(C_a C_b)/p^2 then gives the uncentred T block of section 4.)

For ReLU every moment is explicit (E[phi] = tau/sqrt(2 pi), g1 = 1/4, g2 = 1/(2 pi tau^2),
g4 = 1 - 1/pi), so tau and alpha1..alpha4 have closed forms in (sa, sb, tau0): they are
compared with rmt_deq.fixed_point.four_equations.solve_four_equations, and the matched formulas are
compared with the solver for tanh, swish, erf and a quadratic.
"""
from __future__ import annotations

import time

import numpy as np
import sympy as sp

try:
    from . import ck_expansion as ck
    from ._common import Derivation, require_below, require_zero
except ImportError:  # run as a script
    import ck_expansion as ck
    from _common import Derivation, require_below, require_zero

sa, sb = ck.sa, ck.sb
M = ck.M
eps = ck.eps
P, dlt_i, dlt_j = sp.symbols("P delta_i delta_j", real=True)
a1, a2, a3, a4, a5 = sp.symbols("alpha1:6", real=True)
g1, g2, g4, e1, e3 = sp.symbols("g1 g2 g4 e1 e3", real=True)


def matched_alphas() -> dict:
    """Solve the coefficient-matching equations; returns {"alpha1": .., .., "alpha5": ..,
    "equations": [...]} in terms of g1 = m1^2, g2 = m2^2, e1 e3 = m1 m3, alpha4."""
    Sig = eps * a1 * P + eps ** 2 * (a2 * dlt_i * dlt_j + a3 * P ** 2 + a5 * P * (dlt_i + dlt_j))
    G = ck.offdiag_series(2).subs({ck.S: Sig, ck.di: a4 * eps * dlt_i, ck.dj: a4 * eps * dlt_j},
                                  simultaneous=True)
    resid = sp.expand(Sig - sa * G - sb * eps * P)
    resid = sp.series(resid, eps, 0, 3).removeO()
    eqs = {
        "P": resid.coeff(eps, 1).coeff(P, 1),
        "dd": resid.coeff(eps, 2).coeff(dlt_i, 1).coeff(dlt_j, 1),
        "P2": resid.coeff(eps, 2).coeff(P, 2),
        "Pd": resid.coeff(eps, 2).coeff(P, 1).coeff(dlt_i, 1).subs(dlt_j, 0),
    }
    sol = sp.solve(list(eqs.values()), [a1, a2, a3, a5], dict=True)[0]
    back = {M[1] ** 2: g1, M[2] ** 2: g2}
    out = {f"alpha{k}": sp.simplify(sol[s].subs(back).subs({M[1]: e1, M[3]: e3}))
           for k, s in ((1, a1), (2, a2), (3, a3), (5, a5))}
    out["equations"] = eqs
    return out


def theory_alphas() -> dict:
    """docs/theory.md §3 (alpha4 kept as a symbol in alpha2)."""
    r = 1 - sa * g1
    return {"alpha1": sb / r, "alpha2": sa * g2 * a4 ** 2 / (4 * r),
            "alpha3": sa * g2 * (sb / r) ** 2 / (2 * r),
            "alpha5": sa * e1 * e3 * (sb / r) * a4 / (2 * r)}


def matching_residuals() -> dict:
    """matched - theory for alpha1, alpha2, alpha3 (and the dropped alpha5): all zero."""
    m, t = matched_alphas(), theory_alphas()
    return {k: sp.simplify(m[k] - t[k]) for k in t}


def relu_closed_form() -> dict:
    """tau^2, alpha1..alpha4 for ReLU in closed form (sa, sb, tau0 symbolic)."""
    t0 = sp.Symbol("tau0", positive=True)
    q = sp.Symbol("q", positive=True)                 # q = tau^2
    tt = sp.sqrt(q)
    mean = tt / sp.sqrt(2 * sp.pi)
    V0 = q / 2 - mean ** 2
    q_sol = sp.solve(sp.Eq(q, sa * V0 + sb * t0 ** 2), q)[0]
    G1 = sp.Rational(1, 4)
    G2 = (1 / (tt * sp.sqrt(2 * sp.pi))) ** 2
    G4 = (q - 2 * mean * tt / sp.sqrt(2 * sp.pi)) / q     # E[He2 phi_c^2]/tau^2
    alpha1 = sb / (1 - sa * G1)
    alpha4 = sb / (1 - sa * G4 / 2)
    alpha2 = sa * G2 * alpha4 ** 2 / (4 * (1 - sa * G1))
    alpha3 = sa * G2 * alpha1 ** 2 / (2 * (1 - sa * G1))
    sub = {q: q_sol}
    return {"tau2": sp.simplify(q_sol), "alpha1": sp.simplify(alpha1),
            "alpha2": sp.simplify(alpha2.subs(sub)), "alpha3": sp.simplify(alpha3.subs(sub)),
            "alpha4": sp.simplify(alpha4), "g4": sp.simplify(G4), "tau0": t0}


def compare_relu(cases=((0.3, None, 1.0), (0.5, 0.8, 1.7))) -> float:
    """Max relative difference between the ReLU closed forms and the solver."""
    from rmt_deq.fixed_point.four_equations import solve_four_equations
    cf = relu_closed_form()
    worst = 0.0
    for s_a, s_b, t0 in cases:
        sol = solve_four_equations("relu", s_a, tau0=t0, sb=s_b)
        sbv = 1 - s_a if s_b is None else s_b
        sub = {sa: s_a, sb: sbv, cf["tau0"]: t0}
        pairs = [(float(sp.sqrt(cf["tau2"]).subs(sub)), sol.tau)] + [
            (float(cf[k].subs(sub)), getattr(sol, k)) for k in ("alpha1", "alpha2", "alpha3",
                                                               "alpha4")]
        worst = max(worst, max(abs(a - b) / abs(a) for a, b in pairs))
    return worst


def compare_solver(acts=("tanh", "swish", "erf", "quadratic:1,0.2", "leaky_relu:0.2"),
                   s_a: float = 0.3, tau0: float = 1.0) -> dict:
    """Max relative difference between the matched alphas (evaluated with the solver's g1, g2,
    g4 at its tau) and the solver's alphas; plus the tau-equation residual recomputed with
    an independent quadrature of V0 at the solver's tau."""
    from rmt_deq.fixed_point.four_equations import solve_four_equations
    m = matched_alphas()
    out = {}
    for act in acts:
        sol = solve_four_equations(act, s_a, tau0=tau0)
        a4v = sol.sb / (1 - s_a * sol.g4 / 2)
        sub = {sa: s_a, sb: sol.sb, g1: sol.g1, g2: sol.g2, a4: a4v,
               e1: sol.moments.e1, e3: sol.moments.e3}
        errs = [abs(float(m[f"alpha{k}"].subs(sub)) - getattr(sol, f"alpha{k}"))
                / max(abs(getattr(sol, f"alpha{k}")), 1e-300) for k in (1, 2, 3)
                if getattr(sol, f"alpha{k}") != 0 or float(m[f"alpha{k}"].subs(sub)) != 0]
        errs.append(abs(a4v - sol.alpha4) / abs(sol.alpha4))
        # tau equation with V0 from an independent quadrature (ck_expansion's own rule)
        z, wt = ck._gl_rule()
        f = ck._phi(act)(sol.tau * z)
        V0 = float(np.dot(wt, f * f)) - float(np.dot(wt, f)) ** 2
        tau_res = abs(s_a * V0 + sol.sb * tau0 ** 2 - sol.tau ** 2) / sol.tau ** 2
        out[act] = {"alpha_rel_err": max(errs), "tau_residual": tau_res,
                    "alpha5": float(m["alpha5"].subs(sub))}
    return out


def check(tol: float = 1e-13) -> None:
    """Every claim above: coefficient matching gives the alphas of the theory (exact
    zeros), and the ReLU closed forms and the matched formulas agree with the solver (and
    its tau equation holds) to a relative error below ``tol``.  Raises AssertionError
    naming the first claim that fails."""
    require_zero(matching_residuals(), "coefficient matching gives alpha1..alpha3 (and alpha5)")
    require_below([("relu", compare_relu())], tol, "ReLU closed forms against the solver")
    res = compare_solver()
    require_below([(act, r["alpha_rel_err"]) for act, r in res.items()], tol,
                  "matched alphas against the solver")
    require_below([(act, r["tau_residual"]) for act, r in res.items()], tol,
                  "tau equation at the solver's tau (independent quadrature)")


DERIVATION = Derivation(
    "four_equations",
    "the four equations: tau and alpha1..alpha4 by coefficient matching, against the solver",
    check)


def main() -> None:
    t0 = time.time()
    m = matched_alphas()
    for k in ("alpha1", "alpha2", "alpha3", "alpha5"):
        print(f"{k} = {m[k]}")
    print("matched = docs/theory.md (alpha1..alpha3; alpha5 is the dropped term):",
          all(v == 0 for v in matching_residuals().values()))
    cf = relu_closed_form()
    print("ReLU: tau^2 =", cf["tau2"], "| g4 =", cf["g4"])
    print("      alpha1 =", cf["alpha1"], "| alpha4 =", cf["alpha4"])
    print("      alpha2 =", cf["alpha2"])
    print("      alpha3 =", cf["alpha3"])
    print(f"ReLU closed form vs solver: max rel err {compare_relu():.1e}")
    for act, r in compare_solver().items():
        print(f"{act:16s} alphas vs solver {r['alpha_rel_err']:.1e}, tau residual "
              f"{r['tau_residual']:.1e}, dropped alpha5 = {r['alpha5']:.4f}")
    print(f"[{time.time() - t0:.1f} s]")


if __name__ == "__main__":
    main()
