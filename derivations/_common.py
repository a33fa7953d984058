"""Shared sympy helpers of the derivations (Gaussian expectations, distributions).

Conventions: xi ~ N(0, 1) with density ``pdf(x)``; E[f(tau xi)] is computed in the
preactivation variable y = tau x, with weight ``w(y) = pdf(y / tau) / tau``, so that
kinks and Dirac deltas sit at fixed points of y.

Why a hand-written pairing for distributions: sympy (checked with 1.14) integrates
derivatives of Dirac deltas wrongly in two situations we would otherwise hit,
``integrate(DiracDelta(2*x, 1)*x*exp(-x**2), (x, -oo, oo))`` returns -1 (the right value
is -1/4: delta'(2x) = delta'(x)/4), and ``integrate(y*DiracDelta(y - b, 1)*w(y), ...)``
is off by b w'(b)-type terms.  :func:`gauss_pair` therefore applies the definition
<delta^(n)(y - b), g> = (-1)^n g^(n)(b) itself and only asks sympy for integrals of
smooth functions over intervals.

Each derivation module also declares its registry entry, a :class:`Derivation`: a short
name, what it proves, and ``check()``, which runs every claim of the module and raises
:class:`AssertionError` naming the first claim that fails (explicit raises, so ``python -O``
cannot drop them); checks print nothing.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Hashable, Iterable, Mapping

import sympy as sp

x = sp.Symbol("x", real=True)          # the standard Gaussian variable xi
y = sp.Symbol("y", real=True)          # the preactivation variable y = tau xi
tau = sp.Symbol("tau", positive=True)

pdf = sp.exp(-x ** 2 / 2) / sp.sqrt(2 * sp.pi)
w = sp.exp(-y ** 2 / (2 * tau ** 2)) / (sp.sqrt(2 * sp.pi) * tau)   # density of tau xi


def He(k: int, arg: sp.Expr) -> sp.Expr:
    """Probabilists' Hermite polynomial He_k(arg)."""
    return sp.hermite_prob(k, arg)


def _delta_factor(term: sp.Expr, var: sp.Symbol):
    """Split ``term`` = g * DiracDelta(var - b, n) -> (g, b, n); None if no delta."""
    deltas = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.DiracDelta)
              or (isinstance(f, sp.Pow) and isinstance(f.base, sp.DiracDelta))]
    if not deltas:
        return None
    if len(deltas) > 1:
        # deltas at provably distinct points have disjoint supports: the product is 0
        pts = [sp.solve(sp.Eq(d.args[0], 0), var)[0] for d in deltas]
        if all((sp.simplify(p - q).is_positive or sp.simplify(p - q).is_negative)
               for i, p in enumerate(pts) for q in pts[i + 1:]):
            return "zero"
        raise ValueError(f"product of distributions is undefined: {term}")
    if isinstance(deltas[0], sp.Pow):
        raise ValueError(f"product of distributions is undefined: {term}")
    d = deltas[0]
    arg = d.args[0]
    n = int(d.args[1]) if len(d.args) > 1 else 0
    alpha = sp.diff(arg, var)
    if alpha.free_symbols & {var} or alpha not in (1, -1):
        raise ValueError(f"delta argument must be +-(var - b), got {arg}")
    b = sp.solve(sp.Eq(arg, 0), var)[0]
    g = sp.Mul(*[f for f in sp.Mul.make_args(term) if f is not d])
    if alpha == -1:            # delta^(n)(-(y - b)) = (-1)^n delta^(n)(y - b)
        g = (-1) ** n * g
    # g may hold Heavisides that are smooth (constant) near b, never one jumping at b
    for a in sp.preorder_traversal(g):
        if isinstance(a, sp.DiracDelta):
            raise ValueError(f"product of distributions is undefined: {term}")
        if isinstance(a, sp.Heaviside):
            at_b = sp.simplify(a.args[0].subs(var, b))
            if not (at_b.is_positive or at_b.is_negative):
                raise ValueError(f"product of distributions is undefined: {term}")
    return g, b, n


def _heaviside_interval(term: sp.Expr, var: sp.Symbol):
    """term = g * prod Heaviside(+-(var - b_i)) -> (g, lo, hi) (the indicator's interval)."""
    lo, hi = -sp.oo, sp.oo
    rest = []
    for f in sp.Mul.make_args(term):
        base, e = (f.base, f.exp) if isinstance(f, sp.Pow) else (f, sp.Integer(1))
        if isinstance(base, sp.Heaviside):
            if not (e.is_integer and e > 0):
                raise ValueError(f"bad Heaviside power in {term}")
            arg = base.args[0]
            alpha = sp.diff(arg, var)
            b = sp.solve(sp.Eq(arg, 0), var)[0]
            if alpha == 1:
                lo = b if lo == -sp.oo else sp.Max(lo, b)
            elif alpha == -1:
                hi = b if hi == sp.oo else sp.Min(hi, b)
            else:
                raise ValueError(f"Heaviside argument must be +-(var - b), got {arg}")
        else:
            rest.append(f)
    return sp.Mul(*rest), lo, hi


def gauss_pair(expr: sp.Expr, var: sp.Symbol = y, weight: sp.Expr = w) -> sp.Expr:
    """<expr, weight> = int expr(var) weight(var) d var for expr a sum of terms
    smooth * (product of Heavisides) or smooth * DiracDelta^(n)(var - b)."""
    total = sp.Integer(0)
    pieces: dict = {}          # (lo, hi) -> smooth integrand on that interval
    for term in sp.Add.make_args(normalise(expr)):
        split = _delta_factor(term, var)
        if split == "zero":
            continue
        if split is not None:
            g, b, n = split
            val = (-1) ** n * sp.diff(g * weight, var, n).subs(var, b)
            if val.has(sp.Heaviside, sp.DiracDelta):
                val = sp.simplify(val)
            if val.has(sp.Heaviside, sp.DiracDelta):
                raise ValueError(f"cannot evaluate the distribution pairing of {term}")
            total += val
            continue
        g, lo, hi = _heaviside_interval(term, var)
        pieces[(lo, hi)] = pieces.get((lo, hi), 0) + g
    for (lo, hi), g in pieces.items():
        total += integrate_linear(g, lo, hi, var, weight)
    return total


def integrate_linear(g: sp.Expr, lo: sp.Expr, hi: sp.Expr, var: sp.Symbol = y,
                     weight: sp.Expr = w) -> sp.Expr:
    """int_lo^hi g(var) weight(var) d var by sympy, one cached integral per distinct
    var-dependent factor of the expanded g (linearity; keeps sympy fast)."""
    groups: dict = {}
    for t in sp.Add.make_args(sp.expand(g)):
        coeff, dep = t.as_independent(var, as_Add=False)
        groups[dep] = groups.get(dep, 0) + coeff
    return sp.Add(*[coeff * _integral(dep, var, weight, lo, hi)
                    for dep, coeff in groups.items()])


@functools.lru_cache(maxsize=None)
def monomial_antiderivative(j: int) -> tuple:
    """(A_j, B_j) with d/dy [A_j(y) w(y) + B_j erf(y / (sqrt(2) tau))] = y^j w(y), A_j a
    polynomial: F_0 = erf(.)/2, F_1 = -tau^2 w, F_j = -tau^2 y^(j-1) w + (j-1) tau^2 F_(j-2)
    (integration by parts).  The derivative is checked by sympy before it is returned."""
    if j == 0:
        A, B = sp.Integer(0), sp.Rational(1, 2)
    elif j == 1:
        A, B = -tau ** 2, sp.Integer(0)
    else:
        A2, B2 = monomial_antiderivative(j - 2)
        A, B = -tau ** 2 * y ** (j - 1) + (j - 1) * tau ** 2 * A2, (j - 1) * tau ** 2 * B2
    F = A * w + B * sp.erf(y / (sp.sqrt(2) * tau))
    if sp.simplify(sp.diff(F, y) - y ** j * w) != 0:       # pragma: no cover
        raise AssertionError(f"antiderivative of y^{j} w is wrong")
    return sp.expand(A), B


def _F_at(j: int, point: sp.Expr) -> sp.Expr:
    """F_j(point); at +-oo the polynomial-times-Gaussian part vanishes
    (x^n exp(-x^2/2) -> 0, derivations/stein.boundary_limits) and erf -> +-1."""
    A, B = monomial_antiderivative(j)
    if point == sp.oo:
        return B
    if point == -sp.oo:
        return -B
    return A.subs(y, point) * w.subs(y, point) + B * sp.erf(point / (sp.sqrt(2) * tau))


@functools.lru_cache(maxsize=None)
def _integral(dep: sp.Expr, var: sp.Symbol, weight: sp.Expr, lo: sp.Expr, hi: sp.Expr):
    if var == y and weight == w:
        if dep == 1:
            j = 0
        elif dep == y:
            j = 1
        elif isinstance(dep, sp.Pow) and dep.base == y and dep.exp.is_Integer and dep.exp > 0:
            j = int(dep.exp)
        else:
            j = None
        if j is not None:      # fundamental theorem of calculus with the checked F_j
            return _F_at(j, hi) - _F_at(j, lo)
    return sp.integrate(dep * weight, (var, lo, hi))


def normalise(expr: sp.Expr) -> sp.Expr:
    """Expand and replace Heaviside(u)**n by Heaviside(u) (an indicator), so that
    distributional derivatives never produce undefined products such as delta^2."""
    e = sp.expand(expr)
    return e.replace(lambda t: isinstance(t, sp.Pow) and isinstance(t.base, sp.Heaviside),
                     lambda t: t.base)


def ddiff(expr: sp.Expr, n: int = 1, var: sp.Symbol = y) -> sp.Expr:
    """n-th distributional derivative of a piecewise expression written with Heavisides."""
    e = normalise(expr)
    for _ in range(n):
        e = normalise(sp.diff(e, var))
    return e


def E_y(expr_in_y: sp.Expr) -> sp.Expr:
    """E[expr(tau xi)] for an expression in y (distributions allowed)."""
    return gauss_pair(expr_in_y, y, w)


def E_He(k: int, f_y: sp.Expr) -> sp.Expr:
    """E[He_k(xi) f(tau xi)], computed in y = tau xi."""
    return E_y(He(k, y / tau) * f_y)


def is_zero(expr: sp.Expr) -> bool:
    """Symbolic zero test robust to erf/erfc mixtures."""
    e = sp.simplify(sp.expand(sp.sympify(expr).rewrite(sp.erf)))
    if e == 0:
        return True
    return sp.simplify(sp.expand_func(e)) == 0


def nonzero(residuals: Mapping) -> list:
    """Keys of ``residuals`` whose value is not symbolically zero (empty when all vanish)."""
    return [k for k, v in residuals.items() if not is_zero(v)]


def require(condition: bool, claim: str) -> None:
    """Raise AssertionError(``claim``) unless ``condition`` holds (survives ``python -O``)."""
    if not condition:
        raise AssertionError(claim)


def require_zero(residuals: Mapping, claim: str) -> None:
    """Raise AssertionError naming ``claim`` and the keys whose residual is not zero."""
    bad = nonzero(residuals)
    if bad:
        raise AssertionError(f"{claim}: nonzero residual for {bad}")


def require_below(errors: Iterable[tuple[Hashable, float]], tol: float, claim: str) -> None:
    """Raise AssertionError naming ``claim`` and the (key, error) pairs not below ``tol``
    (a NaN error fails)."""
    bad = [(k, e) for k, e in errors if not e < tol]
    if bad:
        raise AssertionError(f"{claim}: error not below {tol:g} for "
                             + ", ".join(f"{k} ({e:.3g})" for k, e in bad))


@dataclasses.dataclass(frozen=True)
class Derivation:
    """A registry entry: ``name`` (the module's name), ``proves`` (one line, in words of the
    mathematics) and ``check`` (runs every claim; raises AssertionError on the first that
    fails; prints nothing)."""

    name: str
    proves: str
    check: Callable[[], None]
