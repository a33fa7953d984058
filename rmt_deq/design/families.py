"""Design families: parametrised explicit networks the designer solves for (docs/theory.md
§6.6-§6.7).

A :class:`DesignFamily` maps its free (gauge-fixed) parameters to layers, gives the layers'
moments as functions of the input variance (floats or dual numbers, so the Jacobian of the
design equations is exact), starting points and a canonical form.  The built-ins
(:data:`FAMILIES`, :func:`get_family`):

``"lrelu2"``
    two piecewise-linear layers sigma_l(t) = max(a_l t, b_l t), a_l >= |b_l| (canonical);
``"quad2"``
    two layers a_l t + b_l (t^2 - tau_{l-1}^2) (already centred);
``"quadcubic2"``
    quad2 with a Hermite cubic c2 (t^3 - 3 tau_1^2 t) in layer 2 (the fourth degree of
    freedom; its CK design has a closed form);
``"htanh1"``
    one layer a1 clip(t, -c1, c1), for odd DEQ activations;
``"htanhlin2"``
    two odd layers a_l clip(t, -c_l, c_l) + b_l t (a_1 = 1), for the refined NTK target.

The two-layer families fix the scaling gauge (docs/theory.md §6.6) by a_1 = 1, and every
built-in family is closed under rescaling its input and output (:meth:`DesignFamily.
rescale`), so the designer solves at data scale 1.  A user family is
:class:`rmt_deq.design.parametric.ParametricFamily`.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import brentq

from rmt_deq.design._dual import Dual, dual_exp, seed, value
from rmt_deq.design._moments import (moments_hardtanh, moments_hardtanhlin, moments_hermite,
                                     moments_pwlinear)
from rmt_deq.design.layers import make_layer
from rmt_deq.design.targets import DesignTarget, design_outputs
from rmt_deq.errors import InvalidParameterError, UnknownOptionError
from rmt_deq.networks.explicit import ExplicitNetwork

__all__ = ["FAMILIES", "DesignFamily", "odd_family_failure", "get_family"]

FAMILIES = ("lrelu2", "quad2", "quadcubic2", "htanh1", "htanhlin2")
#: relative step of the central differences of a family without analytic Jacobian
#: (relative: the parameters carry the data scale)
_FD_STEP = 1e-6


class DesignFamily:
    """A parametrised explicit-network family that :func:`design_network` can solve for.

    Subclasses define the free (gauge-fixed) parameters x, how they map to the layers, the
    layer moments as functions of x (floats or forward-mode duals), starting points, and
    a canonical form of the result.

    Attributes
    ----------
    name : str
    n_layers : int
    param_names : tuple of str
        Names of the reported parameters (the JSON ``params``).
    free_names : tuple of str
        Names of the solver's unknowns.
    analytic : bool
        Whether the Jacobian is analytic (forward-mode through closed-form moments).
    odd : bool
        Every layer is odd (d2 = d3 = 0 by construction): needed for a refined NTK target.
    covariant : bool
        The family is closed under rescaling its input by lam and its output by mu
        (:meth:`rescale`); then :func:`design_network` solves the problem at data scale 1
        and kernel scale 1 (:meth:`DesignTarget.unit_problem`) and rescales the answer, so
        the solve is the same for every tau0 (true of every built-in family).
    """

    name: str = "family"
    n_layers: int = 1
    param_names: tuple = ()
    free_names: tuple = ()
    analytic: bool = True
    odd: bool = False
    covariant: bool = False

    # -- to override ---------------------------------------------------------------------
    def layer_moment_fns(self, x: Sequence[Any]) -> list:
        """Per layer, a function q -> (g1, g2, g4, V0, h0) (x may hold duals)."""
        raise NotImplementedError

    def refined_moment_fns(self, x: Sequence[Any]) -> list:
        """Per layer, q -> (g1, g2, g4, V0, h0, e1 e3, h2), for a refined NTK target."""
        raise InvalidParameterError(
            f"family {self.name!r} has no refined NTK moments (refine=True needs an odd "
            f"family: htanh1, htanhlin2 or ParametricFamily(..., odd=True))")

    def params_from_free(self, x: Sequence[float]) -> dict:
        """Reported parameters from the free ones."""
        raise NotImplementedError

    def layer_specs(self, params: Mapping[str, float]) -> list:
        """[(kind, {param: value}), ...] per layer."""
        raise NotImplementedError

    def starts(self, target: DesignTarget) -> list:
        """Deterministic starting points (free parameters)."""
        return []

    def random_start(self, gen: np.random.Generator, target: DesignTarget) -> np.ndarray:
        return gen.normal(size=len(self.free_names))

    def canonical(self, params: Mapping[str, float]) -> dict:
        """The same network in canonical form (signs, gauge)."""
        return dict(params)

    def structural_failure(self, target: DesignTarget) -> tuple | None:
        """(equation, reason) when the family cannot match ``target`` for a structural
        reason known in advance, else None."""
        return None

    def rescale(self, x: Sequence[float], lam: float, mu: float) -> np.ndarray:
        """Free parameters of the network that, at input scale lam tau0, computes mu times
        what the network ``x`` computes at tau0 (covariant families only).

        Its design quantities are then F_k = mu^2 lam^(2 - d_k) F_k(x) (``DATA_POWERS``):
        the kernel scales by (mu lam)^2 and equation k's matrix by lam^d_k.
        """
        raise InvalidParameterError(f"family {self.name!r} is not scale-covariant")

    # -- provided -----------------------------------------------------------------------
    def evaluate(self, x: Sequence[float], target: DesignTarget,
                 groups: Sequence[str] | None, jacobian: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's four design quantities at x and (if asked) their Jacobian
        (4 x len(x)): analytic (forward-mode) for a closed-form family, else central
        differences."""
        refine = bool(getattr(target, "refine", False))
        moments = self.refined_moment_fns if refine else self.layer_moment_fns
        if self.analytic and jacobian:
            xd = seed(x)
            out = design_outputs(moments(xd), target.tau0 ** 2, target.kind, groups, refine)
            n = len(x)
            F = np.array([value(o) for o in out])
            J = np.array([o.g if isinstance(o, Dual) else np.zeros(n) for o in out])
            return F, J
        F = np.array([value(o) for o in design_outputs(
            moments([float(v) for v in x]), target.tau0 ** 2, target.kind, groups, refine)])
        if not jacobian:
            return F, None
        J = np.empty((4, len(x)))
        for k in range(len(x)):
            h = _FD_STEP * (abs(x[k]) or 1.0)
            xp, xm = np.array(x, float), np.array(x, float)
            xp[k] += h
            xm[k] -= h
            Fp, _ = self.evaluate(xp, target, groups, jacobian=False)
            Fm, _ = self.evaluate(xm, target, groups, jacobian=False)
            J[:, k] = (Fp - Fm) / (2 * h)
        return F, J

    def build_network(self, params: Mapping[str, float], tau0: float) -> ExplicitNetwork:
        """The network of ``params``, pinned to data scale tau0 (its layers' scales chained
        from tau0, :func:`rmt_deq.design.layers.make_layer`)."""
        layers, tau = [], float(tau0)
        for i, (kind, lp) in enumerate(self.layer_specs(params)):
            layer = make_layer(kind, lp, tau, self if kind == "custom" else None, i)
            layers.append(layer)
            tau = layer.tau_out
        return ExplicitNetwork(tuple(layers))

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"{type(self).__name__}({self.name!r})"


def _canon_pwlinear(a: float, b: float) -> tuple[float, float]:
    """(a, b) ~ (b, a) (t -> -t) ~ (-a, -b) (output sign): return a >= |b|."""
    if abs(b) > abs(a):
        a, b = b, a
    if a < 0:
        a, b = -a, -b
    return a, b


class _LeakyReLU2(DesignFamily):
    name = "lrelu2"
    n_layers = 2
    param_names = ("a1", "b1", "a2", "b2")
    free_names = ("b1", "a2", "b2")

    def layer_moment_fns(self, x: Sequence[Any]) -> list:
        b1, a2, b2 = x
        return [lambda q: moments_pwlinear(1.0, b1, q),
                lambda q: moments_pwlinear(a2, b2, q)]

    def params_from_free(self, x: Sequence[float]) -> dict:
        return {"a1": 1.0, "b1": float(x[0]), "a2": float(x[1]), "b2": float(x[2])}

    def layer_specs(self, params: Mapping[str, float]) -> list:
        return [("pwlinear", {"a": params["a1"], "b": params["b1"]}),
                ("pwlinear", {"a": params["a2"], "b": params["b2"]})]

    def canonical(self, params: Mapping[str, float]) -> dict:
        a1, b1 = _canon_pwlinear(params["a1"], params["b1"])
        a2, b2 = _canon_pwlinear(params["a2"], params["b2"])
        # gauge: sigma_1 / a1 and sigma_2(a1 .) = a1 sigma_2 (positive homogeneity)
        return {"a1": 1.0, "b1": b1 / a1, "a2": a2 * a1, "b2": b2 * a1}

    def starts(self, target: DesignTarget) -> list:
        out = []
        for b1 in (0.0, -0.5, 0.5):
            for r in (0.0, -0.5):
                out.append(self._scaled_start(b1, r, target))
        return out

    def _scaled_start(self, b1: float, r: float, target: DesignTarget) -> np.ndarray:
        """Second layer slopes (a2, a2 r) with the gain matching the first equation."""
        g1_1 = (1.0 + b1) ** 2 / 4
        if target.kind == "ck":
            want = abs(target.values[0]) / max(g1_1, 1e-12)
        else:
            want = abs(target.values[0]) / max(3 * g1_1, 1e-12)
        a2 = 2.0 * math.sqrt(want) / (1.0 + r) if want > 0 else 1.0
        return np.array([b1, a2, a2 * r])

    def random_start(self, gen: np.random.Generator, target: DesignTarget) -> np.ndarray:
        return self._scaled_start(gen.uniform(-1, 1), gen.uniform(-1, 0.9), target)

    covariant = True

    def rescale(self, x: Sequence[float], lam: float, mu: float) -> np.ndarray:
        # positively homogeneous layers: only the output gain mu enters (layer 2's slopes)
        b1, a2, b2 = (float(v) for v in x)
        return np.array([b1, mu * a2, mu * b2])


class _Quadratic2(DesignFamily):
    """Two layers a_l t + b_l (t^2 - tau_{l-1}^2); gauge a1 = 1; cubic c2 optional."""

    name = "quad2"
    n_layers = 2
    param_names = ("a1", "b1", "a2", "b2")
    free_names = ("b1", "a2", "b2")
    cubic = False

    def layer_moment_fns(self, x: Sequence[Any]) -> list:
        b1, a2, b2 = x[0], x[1], x[2]
        c2 = x[3] if self.cubic else 0.0
        return [lambda q: moments_hermite(1.0, b1, 0.0, q),
                lambda q: moments_hermite(a2, b2, c2, q)]

    def params_from_free(self, x: Sequence[float]) -> dict:
        d = {"a1": 1.0, "b1": float(x[0]), "a2": float(x[1]), "b2": float(x[2])}
        if self.cubic:
            d["c2"] = float(x[3])
        return d

    def layer_specs(self, params: Mapping[str, float]) -> list:
        return [("hermite", {"a": params["a1"], "b": params["b1"], "c": 0.0}),
                ("hermite", {"a": params["a2"], "b": params["b2"],
                             "c": params.get("c2", 0.0)})]

    def canonical(self, params: Mapping[str, float]) -> dict:
        a1, b1 = params["a1"], params["b1"]
        a2, b2, c2 = params["a2"], params["b2"], params.get("c2", 0.0)
        # per-layer symmetries t -> -t: (a, b, c) -> (-a, b, -c); output sign: all -> -all
        if a1 < 0:
            a1, b1 = -a1, b1
        # gauge: sigma_1 / a1, sigma_2(a1 t): (a2, b2, c2) -> (a1 a2, a1^2 b2, a1^3 c2)
        lam = a1
        b1, a2, b2, c2 = b1 / lam, a2 * lam, b2 * lam ** 2, c2 * lam ** 3
        if b1 < 0:                      # -sigma_1(-t)
            b1 = -b1
        if a2 < 0:                      # sigma_2(-t)
            a2, c2 = -a2, -c2
        if b2 < 0:                      # -sigma_2(-t)
            b2 = -b2
        out = {"a1": 1.0, "b1": b1, "a2": a2, "b2": b2}
        if self.cubic:
            out["c2"] = c2
        return out

    @staticmethod
    def ck_cubic(T1: Any, T2: Any, T3: Any, q0: Any) -> list:
        """Coefficients (highest power first) of the cubic in B = b1^2 (a1 = 1):
        T1 B + (T3/2 - T1 B)(1 + 4 q0 B)^2 - T2 = 0 (derivations/enn_design.py)."""
        return [-16 * T1 * q0 ** 2, 8 * T3 * q0 ** 2 - 8 * T1 * q0, 4 * T3 * q0, T3 / 2 - T2]

    def closed_form_ck(self, target: DesignTarget) -> list:
        """Exact solutions of the alpha1, alpha2, alpha3 equations (all of them when c2 is
        free, the tau equation then fixing c2^2): with a1 = 1 and B = b1^2,
        a2^2 = T1, b2^2 = T3/2 - T1 B and T1 B + (T3/2 - T1 B)(1 + 4 tau0^2 B)^2 = T2
        (a cubic in B).  Returns free-parameter vectors (possibly c2 = 0 infeasible)."""
        T1, T2, T3, T4 = target.values
        q0 = target.tau0 ** 2
        if not (T1 > 0 and T3 >= 0):
            return []
        coeffs = self.ck_cubic(T1, T2, T3, q0)
        roots = np.roots(coeffs) if coeffs[0] != 0 else np.roots(coeffs[1:])
        out = []
        hi = T3 / (2.0 * T1)
        for r in roots:
            if abs(r.imag) > 1e-9 * max(1.0, abs(r.real)):
                continue
            B = float(r.real)
            if not (-1e-14 <= B <= hi * (1 + 1e-12) + 1e-14):
                continue
            B = min(max(B, 0.0), hi)
            D = max(T3 / 2.0 - T1 * B, 0.0)
            q1 = q0 * (1.0 + 2.0 * B * q0)
            x = [math.sqrt(B), math.sqrt(T1), math.sqrt(D)]
            if self.cubic:
                rest = T4 - T1 * q1 - 2.0 * D * q1 * q1
                x.append(math.sqrt(max(rest, 0.0) / (6.0 * q1 ** 3)))
            out.append(np.array(x))
        out.sort(key=lambda v: v[0])
        return out

    def starts(self, target: DesignTarget) -> list:
        out = self.closed_form_ck(target) if target.kind == "ck" else []
        T1 = abs(target.values[0])
        a2 = math.sqrt(T1 / (1.0 if target.kind == "ck" else 3.0)) if T1 > 0 else 1.0
        v = target.unit_values
        if self.cubic and abs(v[1]) + abs(v[2]) <= 1e-13 * max(abs(x) for x in v):
            out.append(np.array([0.0, a2, 0.0, 0.1 * a2]))    # odd target: b1 = b2 = 0
        for b1 in (0.3, 0.1, 1.0):
            for b2 in (0.3, 0.05):
                x = [b1, a2, b2 * a2]
                if self.cubic:
                    x.append(0.1 * a2)
                out.append(np.array(x))
        return out

    covariant = True

    def rescale(self, x: Sequence[float], lam: float, mu: float) -> np.ndarray:
        # sigma_1(lam s) = lam (s + lam b1 (s^2 - q)): b1 -> b1/lam; layer 2 likewise
        # (its input scale is lam times), b2 -> b2/lam, c2 -> c2/lam^2, and mu on layer 2
        v = [float(t) for t in x]
        out = [v[0] / lam, mu * v[1], mu * v[2] / lam]
        if self.cubic:
            out.append(mu * v[3] / lam / lam)
        return np.array(out)

    def random_start(self, gen: np.random.Generator, target: DesignTarget) -> np.ndarray:
        T1 = abs(target.values[0])
        a2 = math.sqrt(T1) if T1 > 0 else 1.0
        x = [gen.uniform(0, 1.5), a2 * gen.uniform(0.5, 1.5), a2 * gen.uniform(0, 1)]
        if self.cubic:
            x.append(a2 * gen.uniform(0, 0.5))
        return np.array(x)


class _QuadCubic2(_Quadratic2):
    name = "quadcubic2"
    param_names = ("a1", "b1", "a2", "b2", "c2")
    free_names = ("b1", "a2", "b2", "c2")
    cubic = True


class _HardTanh1(DesignFamily):
    name = "htanh1"
    n_layers = 1
    param_names = ("a1", "c1")
    free_names = ("a1", "log_c1")
    odd = True

    def layer_moment_fns(self, x: Sequence[Any]) -> list:
        a, lc = x
        c = dual_exp(lc)
        return [lambda q: moments_hardtanh(a, c, q)]

    def refined_moment_fns(self, x: Sequence[Any]) -> list:
        a, lc = x
        c = dual_exp(lc)
        return [lambda q: moments_hardtanhlin(a, c, 0.0, q)]

    def params_from_free(self, x: Sequence[float]) -> dict:
        return {"a1": float(x[0]), "c1": math.exp(float(x[1]))}

    def layer_specs(self, params: Mapping[str, float]) -> list:
        return [("hardtanh", {"a": params["a1"], "c": params["c1"]})]

    def canonical(self, params: Mapping[str, float]) -> dict:
        return {"a1": abs(params["a1"]), "c1": params["c1"]}

    def structural_failure(self, target: DesignTarget) -> tuple | None:
        return odd_family_failure(target, "one odd layer has", "use a two-layer family")

    covariant = True

    def rescale(self, x: Sequence[float], lam: float, mu: float) -> np.ndarray:
        # a clip(lam s, -c, c) = lam a clip(s, -c/lam, c/lam): c -> lam c, a -> mu a
        return np.array([mu * float(x[0]), float(x[1]) + math.log(lam)])

    def _ratio_start(self, target: DesignTarget) -> np.ndarray | None:
        """The plain match, if there is one, from a one-dimensional solve.

        Both equations a hard tanh layer can meet besides alpha2 = alpha3 = 0 (CK: alpha1,
        tau; NTK: c1, theta_diag) are a1^2 times functions of z = c1/tau0 alone, so
        their ratio (monotone in z: CK from 2/pi at z -> 0 to 1, NTK from 0 to 1) fixes
        z: bracketed by decades in log z, then Brent's method; a1 from the first
        equation.  Needed because the match moves to z ~ 1/tau0 -> 0 for a saturating
        DEQ activation at a large data scale (tanh acts as a sign function), where the
        Levenberg-Marquardt valley in (a1, log c1) is too long to follow from O(1)
        starts.  None for a refined target or a ratio that no z gives."""
        T = target.values
        if target.refine or not (T[0] > 0 and T[3] > 0):
            return None
        want, lt0 = T[0] / T[3], math.log(target.tau0)

        def gap(lz: float) -> float:
            F, _ = self.evaluate(np.array([1.0, lz + lt0]), target, None, jacobian=False)
            return F[0] / F[3] - want

        lo, hi, top = 0.0, 0.0, math.log(40.0)   # at z = 40 the ratio is 1 exactly
        if gap(0.0) > 0:
            while gap(lo) > 0:
                hi, lo = lo, lo - math.log(10.0)
                if lo < -700.0:
                    return None
        else:
            while gap(hi) < 0:
                if hi >= top:      # the linear limit, if the target is at it to rounding
                    if gap(top) < -1e-15 * want:
                        return None
                    lo = hi = top
                    break
                lo, hi = hi, min(hi + 0.5, top)
        lz = brentq(gap, lo, hi, xtol=1e-14, rtol=1e-15) if lo < hi else lo
        F, _ = self.evaluate(np.array([1.0, lz + lt0]), target, None, jacobian=False)
        return np.array([math.sqrt(T[0] / F[0]), lz + lt0])

    def starts(self, target: DesignTarget) -> list:
        t0 = target.tau0
        T1 = abs(target.values[0])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            x = self._ratio_start(target)
        out = [] if x is None or not np.all(np.isfinite(x)) else [x]
        for z in (1.0, 2.0, 0.5, 4.0):
            P = math.erf(z / math.sqrt(2))
            div = P if target.kind == "ck" else math.sqrt(2.0) * P
            a = math.sqrt(T1) / div if T1 > 0 else 1.0
            out.append(np.array([a, math.log(z * t0)]))
        return out

    def random_start(self, gen: np.random.Generator, target: DesignTarget) -> np.ndarray:
        return np.array([math.sqrt(abs(target.values[0])) * gen.uniform(0.5, 3),
                         math.log(target.tau0 * gen.uniform(0.2, 5))])


def odd_family_failure(target: DesignTarget, subject: str, advice: str) -> tuple | None:
    """(failing equation, reason) when an odd family meets a non-odd target, else None.

    Odd layers have E[sigma''] = 0, so they produce the second and third equations (alpha2,
    alpha3 or d2, d3) equal to 0; a refined target is odd by construction (design_target).
    """
    if getattr(target, "refine", False):
        return None
    v, u = target.values, target.unit_values       # unit values: scale-free comparison
    scale = max(abs(x) for x in u)
    if abs(u[2]) > 1e-13 * scale or abs(u[1]) > 1e-13 * scale:
        e1, e2 = target.equations[1], target.equations[2]
        name = e2 if abs(u[2]) > 1e-13 * scale else e1
        return (name, f"{subject} E[sigma''] = 0, so {e1} = {e2} = 0, but the target has "
                      f"{e1} = {v[1]:.6g}, {e2} = {v[2]:.6g} (the DEQ activation is not "
                      f"odd); {advice}")
    return None


class _HardTanhLin2(DesignFamily):
    """Two odd layers sigma_l(t) = a_l clip(t, -c_l, c_l) + b_l t, gauge a_1 = 1.

    Made for the refined NTK target of an odd DEQ (c1, theta_diag, c5, theta_slope): one
    odd layer cannot reach it for tanh (the Hermite bound of docs/theory.md §6.7), two can.
    Layer 2 is closed under rescaling of its input (a clip(lambda t, c) + b lambda t =
    lambda (a clip(t, c/lambda) + b t)), so a_1 = 1
    fixes the scaling gauge; five unknowns remain for four equations, so a match is one
    point of a curve of matches: the one reached from the deterministic starts (the same
    target gives the same network).
    """

    name = "htanhlin2"
    n_layers = 2
    param_names = ("a1", "c1", "b1", "a2", "c2", "b2")
    free_names = ("log_c1", "b1", "a2", "log_c2", "b2")
    odd = True

    def layer_moment_fns(self, x: Sequence[Any]) -> list:
        lc1, b1, a2, lc2, b2 = x
        c1, c2 = dual_exp(lc1), dual_exp(lc2)
        return [lambda q: moments_hardtanhlin(1.0, c1, b1, q),
                lambda q: moments_hardtanhlin(a2, c2, b2, q)]

    refined_moment_fns = layer_moment_fns

    def structural_failure(self, target: DesignTarget) -> tuple | None:
        return odd_family_failure(target, "odd layers have",
                                   "use a family with even parts (quadcubic2)")

    covariant = True

    def rescale(self, x: Sequence[float], lam: float, mu: float) -> np.ndarray:
        # a clip(lam s, -c, c) + b lam s = lam (a clip(s, -c/lam, c/lam) + b s): clip
        # levels -> lam c; mu on layer 2's slopes
        lc1, b1, a2, lc2, b2 = (float(v) for v in x)
        return np.array([lc1 + math.log(lam), b1, mu * a2, lc2 + math.log(lam), mu * b2])

    def params_from_free(self, x: Sequence[float]) -> dict:
        return {"a1": 1.0, "c1": math.exp(float(x[0])), "b1": float(x[1]),
                "a2": float(x[2]), "c2": math.exp(float(x[3])), "b2": float(x[4])}

    def layer_specs(self, params: Mapping[str, float]) -> list:
        return [("hardtanhlin", {"a": params["a1"], "c": params["c1"], "b": params["b1"]}),
                ("hardtanhlin", {"a": params["a2"], "c": params["c2"], "b": params["b2"]})]

    def canonical(self, params: Mapping[str, float]) -> dict:
        out = dict(params)
        if out["a2"] < 0:          # the output sign: the same kernels
            out["a2"], out["b2"] = -out["a2"], -out["b2"]
        return out

    def starts(self, target: DesignTarget) -> list:
        t0 = target.tau0
        r = math.sqrt(abs(target.values[0]))
        # clip levels in units of the input scales; slopes scaled to the target's c1
        base = [(1.2, 0.06, -0.36, 0.2, -0.53), (1.0, 0.2, -0.27, 0.8, -0.36),
                (0.8, 0.5, 0.4, 2.0, 0.0), (1.5, 0.0, -0.4, 0.4, -0.45)]
        return [np.array([math.log(k1 * t0), b1, a2 * r / 0.85, math.log(k2 * t0), b2 * r / 0.85])
                for k1, b1, a2, k2, b2 in base]

    def random_start(self, gen: np.random.Generator, target: DesignTarget) -> np.ndarray:
        t0 = target.tau0
        r = math.sqrt(abs(target.values[0]))
        return np.array([math.log(t0 * gen.uniform(0.3, 3)), gen.uniform(-0.5, 1),
                         r * gen.uniform(-1.5, 1.5), math.log(t0 * gen.uniform(0.1, 3)),
                         r * gen.uniform(-1, 1)])


_FAMILY_CLASSES = {"lrelu2": _LeakyReLU2, "quad2": _Quadratic2, "quadcubic2": _QuadCubic2,
                   "htanh1": _HardTanh1, "htanhlin2": _HardTanhLin2}


def get_family(family: str | DesignFamily) -> DesignFamily:
    """A built-in family by name (``FAMILIES``) or a :class:`DesignFamily` instance."""
    if isinstance(family, DesignFamily):
        return family
    if not isinstance(family, str) or family not in _FAMILY_CLASSES:
        raise UnknownOptionError(
            f"unknown design family {family!r}; choose from {FAMILIES} or pass a "
            f"ParametricFamily")
    return _FAMILY_CLASSES[family]()


