"""Design shallow explicit networks whose CK or NTK matches a DEQ's (theory.md section 6).

An explicit network (ENN) with L hidden layers, on data X (p x n, columns are samples)::

    h_0 = x,   h_l = sigma_{l,c}(W_l h_{l-1}) / sqrt(m),   f(x) = v^T h_L,

W_1 (m x p), W_l (m x m) and v with iid N(0, 1) entries, each sigma_l centred at its own
input scale tau_{l-1} (sigma_{l,c} = sigma_l - E[sigma_l(tau_{l-1} xi)]), tau_0 the data
scale.  Its CK surrogate has the form of section 4 with the layer recursion (moments of
sigma_l at tau_{l-1}; alpha_{1,0} = alpha_{4,0} = 1, alpha_{2,0} = alpha_{3,0} = 0)::

    alpha_{1,l} = g1 alpha_{1,l-1}
    alpha_{2,l} = g1 alpha_{2,l-1} + g2 alpha_{4,l-1}^2 / 4
    alpha_{3,l} = g1 alpha_{3,l-1} + g2 alpha_{1,l-1}^2 / 2
    alpha_{4,l} = g4 alpha_{4,l-1} / 2
    tau_l^2     = V0 = E[sigma_{l,c}(tau_{l-1} xi)^2]

and its NTK surrogate (:mod:`rmt_deq.kernels.ntk_surrogate`) follows Theta_l = K_l + Theta_{l-1} o
Kdot_l, Theta_0 = X^T X, whose coefficients (c1, d2, d3, theta_diag) map by
c1 -> g1 c1, d2 -> g1 d2, d3 -> g1 d3 + g2 alpha_{1,l-1} c1, theta_diag -> h0 theta_diag.

*Design* = choose the parameters of the layers so that four equations hold:

``target="ck"``
    alpha_{1,L} = (alpha1 - sb)/sa, alpha_{2,L} = alpha2/sa, alpha_{3,L} = alpha3/sa,
    tau_L^2 = (tau^2 - sb tau0^2)/sa (the DEQ's G~ of section 4; equation names
    ``alpha1, alpha2, alpha3, tau``);
``target="ntk"``
    (c1, d2, d3, theta_diag) of the ENN's NTK (all groups v, W1..WL by default) equal to
    those of the DEQ's NTK surrogate (section 5, groups v, A, B by default); equation names
    ``c1, d2, d3, theta_diag``.
``target="ntk", refine=True`` (odd DEQ activation, odd family)
    (c1, theta_diag, c5, theta_slope) of the two NTKs: the plain equations d2 = d3 = 0 hold
    for odd layers by themselves, and c5, theta_slope are the refinement coefficients of
    docs/ntk_surrogate.md ("Optional refinement"), whose matrices vanish only like
    sqrt(log p / p).  The ENN side propagates them by c5 -> g1 c5 + (e1 e3/2)
    alpha4_{k-1} c1, theta_slope -> h0 theta_slope + (h2/2) alpha4_{k-1} theta_diag
    (:func:`rmt_deq.kernels.ntk_surrogate.explicit_network_coefficients`).  Why: htanh1 matches
    the plain tanh NTK exactly but not c5, theta_slope (sa = 0.2: theta_slope 0.515 vs
    0.437), and its exact-NTK gap to the DEQ decays only like p^-0.43; the refined
    htanhlin2 design's gap decays like p^-0.99 (sa = 0.2) and p^-0.91 (sa = 0.5)
    (figures/design_refined_ntk.py, p = 200..1600).

Families (``get_family(name)``), with the parameters the JSON reports:

``"lrelu2"``
    two piecewise-linear layers sigma_l(t) = a_l t (t > 0), b_l t (t < 0); reported in the
    canonical form a_l >= |b_l|, where sigma_l(t) = max(a_l t, b_l t) (the general form with
    a_l < b_l is the same network up to t -> -t, which the Gaussian weights do not see).
``"quad2"``
    two layers sigma_l(t) = a_l t + b_l (t^2 - tau_{l-1}^2) (already centred).
``"quadcubic2"``
    as quad2 with a Hermite cubic c2 (t^3 - 3 tau_1^2 t) added to the second layer.
``"htanh1"``
    one layer sigma(t) = a1 clip(t, -c1, c1) (for odd DEQ activations: g2 = 0 there).
``"htanhlin2"``
    two odd layers sigma_l(t) = a_l clip(t, -c_l, c_l) + b_l t with a_1 = 1 (the scaling
    gauge), five unknowns: made for the refined NTK target (a match is one point of a
    curve of matches, reached reproducibly from fixed starts).  One odd layer cannot
    match the refined tanh target: with c_n the orthonormal Hermite coefficients of
    sigma(tau0 xi) (tau0 = 1), c1 = 2 c_1^2, theta_diag = sum (n+1) c_n^2,
    c5 = sqrt 6 c_1 c_3 and theta_slope = sum n(n+1) c_n^2 + sum (n+1) sqrt((n+1)(n+2))
    c_n c_{n+2}, and given the first three the smallest theta_slope is 0.458 > 0.437
    (sa = 0.2), 0.444 > 0.375 (sa = 0.5) (figures/design_refined_ntk.py).
:class:`ParametricFamily`
    any sigma(t; theta) with L layers (moments by quadrature, finite-difference Jacobian).

**The scaling gauge.**  A family whose second layer is closed under rescaling of its input
(sigma_2(lambda t; theta) = sigma_2(t; theta') -- true of all two-layer families above) has
only three effective parameters: (sigma_1 / lambda, sigma_2(lambda .)) is the same network
(checked symbolically in derivations/enn_design.py).  The built-in families fix it by
a_1 = 1.  lrelu2 and quad2 therefore reach only a three-dimensional set of the four target
numbers and match a DEQ only on a hypersurface.  Measured (figures/design_verification.py):
lrelu2 matches the CK of the positively homogeneous ReLU DEQ (a pwlinear layer has
V0 = q g4/2, derivations/enn_design.py) but misses the tau equation for tanh, swish and
gelu; quad2 misses tau for all four; no NTK target of these four is met by lrelu2 or quad2.
quadcubic2's Hermite cubic feeds only tau_L^2 (E[He_3'] = E[He_3''] = 0; derivations/
enn_design.py), which restores the fourth degree of freedom, and its CK design has a closed
form (a cubic in b_1^2, the same derivation).

**Scale-free equations.**  Equation k's coefficient multiplies a matrix of size
tau0^d_k in the surrogate (``DATA_POWERS``: X^T X ~ tau0^2, the t t^T and T blocks ~
tau0^4, the identity ~ 1), so the four target numbers have different units and one
common normalisation (e.g. by the largest, ~tau^2) hides the others.  Each equation is
measured on its own scale instead (:meth:`DesignTarget.relative_errors`): relative to its
target, or, for a target below ``EQUATION_FLOOR`` = 1e-3 of the kernel scale max_j |T_j|
tau0^(d_j - 2) (an odd DEQ's alpha2 = alpha3 = 0), relative to that fraction of the kernel
scale.  ``feasible`` means every equation's relative error is <= ``tol``.  Every built-in
family is closed under rescaling its input and output (:meth:`DesignFamily.rescale`):
the problem is solved at data scale 1 and kernel scale 1 (:meth:`DesignTarget.
unit_problem`) and the answer rescaled, so the solve is the same for every tau0 (for the
positively homogeneous ReLU DEQ the lrelu2 slopes are identical at every tau0).

Solver: Levenberg-Marquardt on the relative equation errors, analytic Jacobians
(forward-mode differentiation of the closed-form moments, :mod:`rmt_deq.design._moments`)
for the built-in families, several starts (closed-form or one-dimensional solutions first
where they exist); a target that no start reaches raises
:class:`~rmt_deq.errors.InfeasibleDesignError` with the best least-squares point (its
per-equation relative errors) and the failing equation: the one still missed (by the
least) when the other three are met exactly, or a structural reason known in advance (one
odd layer cannot make alpha2, alpha3 nonzero).

The result, :class:`DesignedNetwork`, is a frozen dataclass with the layers, the achieved
coefficients and diagnostics; it saves to / loads from JSON, runs a plain numpy forward
pass (:meth:`DesignedNetwork.forward`, weights passed in or drawn), prints a self-contained
numpy version of itself (:meth:`DesignedNetwork.numpy_source`), and gives its exact
infinite-width kernels and surrogate coefficients through :mod:`rmt_deq.kernels.ntk_surrogate`.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._validation import (as_data_matrix, as_rng, check_choice, check_groups,
                          check_options, check_positive_finite, check_positive_int)
from rmt_deq.design._moments import (_INV_SQRT_2PI, _Dual, _exp, _moments_hardtanh,  # noqa: F401
                              _moments_hardtanhlin, _moments_hermite, _moments_pwlinear,
                              _seed, _val)
from rmt_deq.activations import Activation, ActivationLike, PolyPiece, get_activation
from rmt_deq.errors import (InfeasibleDesignError, InvalidParameterError, InvalidRecordError,
                     RmtDeqError, ShapeMismatchError, UnknownOptionError)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution

__all__ = [
    "TARGETS",
    "FAMILIES",
    "EQUATIONS",
    "REFINED_EQUATIONS",
    "DATA_POWERS",
    "EQUATION_FLOOR",
    "check_design_scale",
    "DesignTarget",
    "design_target",
    "DesignFamily",
    "ParametricFamily",
    "get_family",
    "DesignedLayer",
    "DesignedNetwork",
    "ENNForward",
    "design_network",
    "design_for_deq",
    "design_record",
    "enn_equations",
    "load_designed_network",
    "design_convergence",
    "sampled_comparison",
]

TARGETS = ("ck", "ntk")
FAMILIES = ("lrelu2", "quad2", "quadcubic2", "htanh1", "htanhlin2")
EQUATIONS = {"ck": ("alpha1", "alpha2", "alpha3", "tau"),
             "ntk": ("c1", "d2", "d3", "theta_diag")}
#: equations of a refined NTK target (``design_target(..., target="ntk", refine=True)``)
REFINED_EQUATIONS = ("c1", "theta_diag", "c5", "theta_slope")
_ODD_TOL = 1e-12
_NTK_DEQ_GROUPS = ("v", "A", "B")
_JSON_FORMAT = "rmt_deq.design.core/1"


# ----------------------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------------------
_LAYER_KINDS = ("pwlinear", "hermite", "hardtanh", "hardtanhlin", "custom")


@dataclass(frozen=True, eq=False)
class DesignedLayer:
    """One hidden layer of a designed network.

    Attributes
    ----------
    kind : {"pwlinear", "hermite", "hardtanh", "custom"}
        ``"pwlinear"``: sigma(t) = a t (t > 0), b t (t < 0) (params a, b);
        ``"hermite"``: a t + b (t^2 - tau_in^2) + c (t^3 - 3 tau_in^2 t) (params a, b, c);
        ``"hardtanh"``: a clip(t, -c, c) (params a, c); ``"hardtanhlin"``:
        a clip(t, -c, c) + b t (params a, c, b); ``"custom"``: a user sigma(t; theta).
    params : dict of str -> float
    tau_in : float
        Input scale tau_{l-1} (the standard deviation of the preactivation).
    tau_out : float
        tau_l = sqrt(E[sigma_c(tau_in xi)^2]).
    centring : float
        E[sigma(tau_in xi)], subtracted by the network.
    activation : Activation
        sigma (uncentred), usable by every engine of the package.
    """

    kind: str
    params: Mapping[str, float]
    tau_in: float
    tau_out: float
    centring: float
    activation: Activation = field(repr=False)

    def __call__(self, t: Any) -> np.ndarray:
        """The centred sigma_c(t) = sigma(t) - centring, elementwise."""
        return self.activation.fn(np.asarray(t, dtype=float)) - self.centring

    def derivative(self, t: Any) -> np.ndarray:
        """sigma'(t) (almost everywhere)."""
        return self.activation.d1(np.asarray(t, dtype=float))

    @property
    def spec(self) -> str | None:
        """A full-precision spec string (``enn_pwlinear:a,b``, ``enn_hermite:a,b,c,q``,
        ``enn_hardtanh:a,c``, ``enn_hardtanhlin:a,c,b``) that
        :func:`rmt_deq.activations.get_activation` rebuilds sigma
        from; None for a custom layer."""
        return None if self.kind == "custom" else self.activation.name

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": {k: float(v) for k, v in self.params.items()},
                "tau_in": float(self.tau_in), "tau_out": float(self.tau_out),
                "centring": float(self.centring)}


def _pwlinear_activation(a: float, b: float) -> Activation:
    """sigma(t) = a t (t > 0), b t (t < 0), named ``enn_pwlinear:a,b`` (full precision)."""
    from rmt_deq.activations import piecewise_activation   # exact pieces -> closed forms

    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        raise InvalidParameterError(f"piecewise-linear slopes must be finite, got {a!r}, {b!r}")
    return piecewise_activation(
        f"enn_pwlinear:{a!r},{b!r}",
        [PolyPiece(-math.inf, 0.0, (0.0, b)), PolyPiece(0.0, math.inf, (0.0, a))],
        fn=lambda x: np.where(x > 0, a * x, b * x),
        d1=lambda x: np.where(x > 0, a, b) * np.ones_like(x), params=(a, b))


def _renamed(act: Activation, name: str) -> Activation:
    return Activation(**{**act.__dict__, "name": name})


def _hermite_activation(a: float, b: float, c: float, q: float) -> Activation:
    """a t + b (t^2 - q) + c (t^3 - 3 q t), named ``enn_hermite:a,b,c,q`` (full precision:
    the built-in ``polynomial`` spec names round to 6 digits)."""
    a, b, c, q = float(a), float(b), float(c), float(q)
    if c == 0.0:
        act = get_activation(f"polynomial:{-b * q!r},{a!r},{b!r}")
    else:
        act = get_activation(f"polynomial:{-b * q!r},{a - 3.0 * c * q!r},{b!r},{c!r}")
    return _renamed(act, f"enn_hermite:{a!r},{b!r},{c!r},{q!r}")


def _hardtanh_activation(a: float, c: float) -> Activation:
    """a clip(t, -c, c), named ``enn_hardtanh:a,c`` (full precision)."""
    a, c = float(a), float(c)
    return _renamed(get_activation(f"hard_tanh:{a!r},{c!r}"), f"enn_hardtanh:{a!r},{c!r}")


def _hardtanhlin_activation(a: float, c: float, b: float) -> Activation:
    """a clip(t, -c, c) + b t (three linear pieces), named ``enn_hardtanhlin:a,c,b`` (full
    precision)."""
    from rmt_deq.activations import piecewise_activation   # exact pieces -> closed forms

    a, c, b = float(a), float(c), float(b)
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c) and c > 0):
        raise InvalidParameterError(
            f"hard tanh + linear needs finite a, b and a clip level c > 0, got {a!r}, {c!r}, "
            f"{b!r}")
    return piecewise_activation(
        f"enn_hardtanhlin:{a!r},{c!r},{b!r}",
        [PolyPiece(-math.inf, -c, (-a * c, b)), PolyPiece(-c, c, (0.0, a + b)),
         PolyPiece(c, math.inf, (a * c, b))],
        fn=lambda x: a * np.clip(x, -c, c) + b * x,
        d1=lambda x: np.where(np.abs(x) < c, a + b, b) * np.ones_like(x), odd=True,
        params=(a, c, b))


def _register_layer_activations() -> None:
    """Make the layer activations rebuildable from their names (rmt_deq.networks.explicit needs
    spec strings); registered once, under names no built-in uses."""
    from rmt_deq.activations import available_activations, register_activation

    have = set(available_activations())
    for name, factory in (("enn_pwlinear", _pwlinear_activation),
                          ("enn_hermite", _hermite_activation),
                          ("enn_hardtanh", _hardtanh_activation),
                          ("enn_hardtanhlin", _hardtanhlin_activation)):
        if name not in have:
            register_activation(name, factory)


_register_layer_activations()


def _make_layer(kind: str, params: Mapping[str, float], tau_in: float,
                custom: "ParametricFamily | None" = None, index: int = 0) -> DesignedLayer:
    q = tau_in * tau_in
    if kind == "pwlinear":
        a, b = float(params["a"]), float(params["b"])
        act = _pwlinear_activation(a, b)
        _, _, _, V0, _ = _moments_pwlinear(a, b, q)
        centring = (a - b) * tau_in * _INV_SQRT_2PI
    elif kind == "hermite":
        a, b, c = float(params["a"]), float(params["b"]), float(params.get("c", 0.0))
        act = _hermite_activation(a, b, c, q)
        _, _, _, V0, _ = _moments_hermite(a, b, c, q)
        centring = 0.0
    elif kind == "hardtanh":
        a, c = float(params["a"]), float(params["c"])
        if not (math.isfinite(c) and c > 0):
            raise InvalidParameterError(f"hard tanh clip level c must be > 0, got {c!r}")
        act = _hardtanh_activation(a, c)
        _, _, _, V0, _ = _moments_hardtanh(a, c, q)
        centring = 0.0
    elif kind == "hardtanhlin":
        a, c, b = float(params["a"]), float(params["c"]), float(params["b"])
        act = _hardtanhlin_activation(a, c, b)       # checks c > 0
        V0 = _moments_hardtanhlin(a, c, b, q)[3]
        centring = 0.0
    elif kind == "custom":
        if custom is None:
            raise InvalidParameterError("a custom layer needs its ParametricFamily")
        theta = np.array([float(params[k]) for k in custom.layer_param_names(index)])
        act = custom.activation(index, theta)
        from rmt_deq.moments.gaussian import gaussian_moments
        gm = gaussian_moments(act, tau_in)
        V0, centring = float(gm.V0), float(gm.mean)
    else:
        raise UnknownOptionError(f"unknown layer kind {kind!r}; choose from {_LAYER_KINDS}")
    V0 = float(V0)
    if not V0 > 0:
        raise InvalidParameterError(
            f"layer of kind {kind} with {dict(params)} has a constant output at scale "
            f"{tau_in:g} (E[sigma_c^2] = {V0:.3g})")
    return DesignedLayer(kind=kind, params=dict(params), tau_in=float(tau_in),
                         tau_out=math.sqrt(V0), centring=float(centring), activation=act)


# ----------------------------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DesignTarget:
    """Four numbers an explicit network must reproduce.

    Attributes
    ----------
    kind : {"ck", "ntk"}
    values : tuple of 4 floats
        ``ck``: (alpha_{1,L}, alpha_{2,L}, alpha_{3,L}, tau_L^2) required;
        ``ntk``: (c1, d2, d3, theta_diag) required; refined ``ntk``:
        (c1, theta_diag, c5, theta_slope) (``REFINED_EQUATIONS``).
    tau0 : float
        Data scale sqrt(tr C°/p) (the ENN's input scale).  tau0^2 and 1/tau0^2 must be
        finite normal float64 numbers (tau0 within about 1.5e-154 .. 1.3e154).
    activation : str or None
        The DEQ's activation (None for a user-given target).
    sa, sb : float
        The DEQ's variances (nan for a user-given target).
    ntk_groups : tuple of str
        The DEQ NTK groups summed into an NTK target (empty for the CK).
    solution : FixedPointSolution or None
        The DEQ's four-equation solution.
    refine : bool
        An NTK target whose equations are (c1, theta_diag, c5, theta_slope): the plain
        coefficients of an odd target (d2 = d3 = 0, which an odd family meets by itself)
        and the two refinement coefficients of docs/ntk_surrogate.md ("Optional
        refinement"), c5 (x_i.x_j)(delta_i + delta_j) and theta_slope delta_i.

    Notes
    -----
    **Scales of the equations.**  Equation k multiplies, in the surrogate, a matrix whose
    entries scale like tau0^d_k (``DATA_POWERS``: X^T X like tau0^2, the t t^T and T
    blocks like tau0^4, the identity like 1), so its target contributes T_k tau0^d_k to
    the kernel.  :attr:`unit_values` are T_k tau0^(d_k - 2), the kernel contributions
    over tau0^2: the same design problem at data scale 1 (equal for every tau0 when the
    DEQ's activation is positively homogeneous).  Each equation is judged on its own
    scale s_k = max(|T^_k|, EQUATION_FLOOR max_j |T^_j|) in these units
    (:meth:`relative_errors`): relative to its own target, or, for a target below
    ``EQUATION_FLOOR`` (1e-3) of the kernel scale (an odd DEQ's alpha2, alpha3 = 0),
    relative to that fraction of the kernel scale.
    """

    kind: str
    values: tuple
    tau0: float
    activation: str | None = None
    sa: float = float("nan")
    sb: float = float("nan")
    ntk_groups: tuple = ()
    solution: FixedPointSolution | None = field(default=None, repr=False)
    refine: bool = False

    def __post_init__(self) -> None:
        check_choice(self.kind, "target", TARGETS)
        if not isinstance(self.refine, bool):
            raise InvalidParameterError(f"refine must be True or False, got {self.refine!r}")
        if self.refine and self.kind != "ntk":
            raise InvalidParameterError("refine=True applies to an NTK target only")
        try:
            vals = tuple(float(v) for v in self.values)
        except (TypeError, ValueError):
            vals = ()
        if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
            raise InvalidParameterError(
                f"a design target needs 4 finite values {self.equations}, got "
                f"{self.values!r}")
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "tau0", check_design_scale(self.tau0))
        groups = tuple(self.ntk_groups)
        if self.kind == "ck" and groups:
            raise InvalidParameterError(
                f"a CK target has no NTK groups, got ntk_groups={groups!r}; leave it empty")
        if self.kind == "ntk" and groups:
            groups = check_groups(groups, _NTK_DEQ_GROUPS)
        object.__setattr__(self, "ntk_groups", groups)
        unit = self.unit_values
        if not all(math.isfinite(u) for u in unit):
            raise InvalidParameterError(
                f"the target {dict(zip(self.equations, vals))} at tau0 = {self.tau0:g} "
                f"overflows float64 in the units of the design (T_k tau0^(d_k - 2) = "
                f"{unit}); rescale the data so that tau0 is nearer 1")
        kappa = max(abs(u) for u in unit)
        if not kappa >= _MIN_KERNEL_SCALE:
            raise InvalidParameterError(
                f"the target {dict(zip(self.equations, vals))} at tau0 = {self.tau0:g} has "
                f"kernel scale {kappa:.3g} (max_k |T_k| tau0^(d_k - 2)), which is zero or "
                f"below {_MIN_KERNEL_SCALE:g}: there is no kernel to match; check the "
                f"target values, or rescale the data so that tau0 is nearer 1")

    @property
    def equations(self) -> tuple:
        """The equation names, in the order of ``values``."""
        return REFINED_EQUATIONS if self.refine else EQUATIONS[self.kind]

    @property
    def data_powers(self) -> tuple:
        """d_k of each equation (``DATA_POWERS``): its matrix scales like tau0^d_k."""
        return tuple(DATA_POWERS[e] for e in self.equations)

    @property
    def unit_values(self) -> tuple:
        """T_k tau0^(d_k - 2): the target in the units of data scale 1 (see Notes)."""
        return _unit_scaled(self.values, self.data_powers, self.tau0)

    def equation_scales(self) -> np.ndarray:
        """s_k = max(|T^_k|, EQUATION_FLOOR max_j |T^_j|), in the units of
        :attr:`unit_values` (multiply by tau0^(2 - d_k) for the target's units)."""
        unit = np.abs(np.asarray(self.unit_values))
        return np.maximum(unit, EQUATION_FLOOR * float(unit.max()))

    def relative_errors(self, achieved: Sequence[float]) -> np.ndarray:
        """|F_k - T_k| tau0^(d_k - 2) / s_k per equation (scale-free; inf where F_k is not
        finite)."""
        F = np.asarray(achieved, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            err = np.abs(np.asarray(_unit_scaled(F - np.asarray(self.values),
                                                 self.data_powers, self.tau0)))
            rel = err / self.equation_scales()
        return np.where(np.isfinite(rel), rel, math.inf)

    def unit_problem(self) -> tuple["DesignTarget", float, float]:
        """The same design problem at data scale 1 and kernel scale 1.

        Returns
        -------
        (target, lam, mu)
            ``target`` has tau0 = 1 and values T^_k / kappa (kappa = max_j |T^_j|), so
            that its largest value is 1; a network of a scale-covariant family matching
            it matches this target after :meth:`DesignFamily.rescale` ``(x, lam, mu)``
            with lam = tau0 (input scale) and mu = sqrt(kappa) (output scale).
        """
        unit = np.asarray(self.unit_values)
        kappa = float(np.max(np.abs(unit)))
        t = DesignTarget(kind=self.kind, values=tuple(float(u) for u in unit / kappa),
                         tau0=1.0, activation=self.activation, sa=self.sa, sb=self.sb,
                         ntk_groups=self.ntk_groups, refine=self.refine)
        return t, self.tau0, math.sqrt(kappa)

    def as_dict(self) -> dict:
        d = {"kind": self.kind, "equations": list(self.equations),
             "values": list(self.values), "tau0": self.tau0, "activation": self.activation,
             "sa": self.sa, "sb": self.sb, "ntk_groups": list(self.ntk_groups)}
        if self.refine:
            d["refine"] = True
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DesignTarget":
        """Rebuild from :meth:`as_dict`, every field validated.

        Raises
        ------
        InvalidRecordError
            A missing, unknown or ill-typed key, or values that are not a valid target.
        """
        from rmt_deq.design.record import target_from_dict
        return target_from_dict(d, "design target record")


#: how equation k's matrix scales with the data scale: tau0^DATA_POWERS[k] (X^T X: 2; the
#: t t^T and T blocks and (x_i.x_j)(delta_i + delta_j): 4; the identity: 0; delta_i: 2)
DATA_POWERS = {"alpha1": 2, "alpha2": 4, "alpha3": 4, "tau": 0,
               "c1": 2, "d2": 4, "d3": 4, "theta_diag": 0, "c5": 4, "theta_slope": 2}
#: an equation whose target is below this fraction of the kernel scale is measured against
#: that fraction of the kernel scale (``DesignTarget.relative_errors``); with the default
#: tol = 1e-10 it accepts the rounding (~1e-13 of the kernel) of an odd DEQ's zeros
EQUATION_FLOOR = 1e-3
_MIN_KERNEL_SCALE = sys.float_info.min / EQUATION_FLOOR    # the floor stays a normal float64


def check_design_scale(tau0: Any) -> float:
    """tau0 as a float if it is finite, > 0 and tau0^2, 1/tau0^2 are normal float64 numbers
    (a design works with both), else InvalidParameterError."""
    t = check_positive_finite(tau0, "tau0 (the data scale)")
    q0 = t * t
    if not (math.isfinite(q0) and q0 >= sys.float_info.min):
        raise InvalidParameterError(
            f"tau0 = {t:g} is outside the range of a design: tau0^2 and 1/tau0^2 must be "
            f"finite normal float64 numbers (tau0 within about 1.5e-154 .. 1.3e154); "
            f"rescale the data (X -> c X) so that tau0 is nearer 1")
    return t


def _unit_scaled(values: Sequence[float], powers: Sequence[int], tau0: float) -> tuple:
    """values_k tau0^(powers_k - 2) (powers in {0, 2, 4}: one multiplication or division by
    tau0^2, no power that could overflow on its own)."""
    q0 = tau0 * tau0
    out = []
    for v, d in zip(values, powers):
        out.append(float(v) / q0 if d == 0 else float(v) * q0 if d == 4 else float(v))
    return tuple(out)


def design_target(activation: ActivationLike | FixedPointSolution, sa: float | None = None,
                  tau0: float | None = None, sb: float | None = None, *, target: str = "ck",
                  ntk_groups: Iterable[str] | None = None,
                  refine: bool = False) -> DesignTarget:
    """The four numbers a DEQ's CK (or NTK) surrogate asks of an explicit network.

    Parameters
    ----------
    activation : name, Activation, callable, or FixedPointSolution
        The DEQ's phi; or an already solved four-equation system (then ``sa``, ``tau0``,
        ``sb`` are taken from it and must be left out).
    sa, sb : float
        DEQ variances (sb defaults to 1 - sa).
    tau0 : float
        Data scale sqrt(tr C°/p) (default 1).
    target : {"ck", "ntk"}
    ntk_groups : iterable of {"v", "A", "B"}, optional
        DEQ parameter groups of an NTK target (default all three; ("v", "A"): the published
        G/(1 - sa Gdot)).  Rejected for a CK target.
    refine : bool
        NTK target only, for an odd DEQ activation (d2 = d3 = 0): match
        (c1, theta_diag, c5, theta_slope) of the NTK summed over ``ntk_groups``, i.e. also
        the refinement coefficients c5 and theta_slope (docs/ntk_surrogate.md, "Optional
        refinement") whose matrices vanish only like sqrt(log p / p).  A network matching
        them has the DEQ's refined surrogate, so its exact NTK approaches the DEQ's faster
        in p (measured in figures/design_refined_ntk.py).  Needs an odd design family
        (``"htanhlin2"``, or a ParametricFamily with ``odd=True``).

    Returns
    -------
    DesignTarget
        CK values in the forms of the four-equation system that need no subtraction:
        alpha_{1,L} = (alpha1 - sb)/sa = g1 alpha1, alpha_{2,L} = alpha2/sa =
        g2 alpha4^2/(4 (1 - sa g1)), alpha_{3,L} = alpha3/sa = g2 alpha1^2/(2 (1 - sa g1)),
        tau_L^2 = (tau^2 - sb tau0^2)/sa = E[phi_c(tau xi)^2] (the differences lose every
        digit when sa g1 or sa E[phi_c^2]/tau^2 is small, e.g. a saturating phi at a
        large tau0).

    Raises
    ------
    InvalidParameterError
        From the four-equation solve; tau0 outside the range of a design
        (:func:`check_design_scale`); ``refine`` with a CK target, or with an NTK target
        that is not odd (|d2|, |d3| > 1e-12 of the kernel scale, in the units of
        :attr:`DesignTarget.unit_values`); ``ntk_groups`` with a CK target.
    NoFixedPointError
        From the four-equation solve.
    """
    check_choice(target, "target", TARGETS)
    if not isinstance(refine, bool):
        raise InvalidParameterError(f"refine must be True or False, got {refine!r}")
    if refine and target != "ntk":
        raise InvalidParameterError("refine=True applies to target='ntk' only (the CK has no "
                                    "refined design)")
    if ntk_groups is not None and target != "ntk":
        raise InvalidParameterError(
            f"ntk_groups applies to target='ntk' only (a CK target has no parameter groups), "
            f"got ntk_groups={ntk_groups!r}")
    if isinstance(activation, FixedPointSolution):
        if sa is not None or sb is not None or tau0 is not None:
            raise InvalidParameterError("give a FixedPointSolution or (activation, sa, tau0, "
                                        "sb), not both")
        sol = activation
        check_design_scale(sol.tau0)
    else:
        if sa is None:
            raise InvalidParameterError("sa is required with an activation")
        tau0 = check_design_scale(1.0 if tau0 is None else tau0)
        sol = solve_four_equations(activation, sa, tau0, sb)
    sa_f, sb_f = float(sol.sa), float(sol.sb)
    if target == "ck":
        g1, g2 = float(sol.g1), float(sol.g2)
        r = 1.0 - sa_f * g1
        vals = (g1 * sol.alpha1, g2 * sol.alpha4 ** 2 / (4.0 * r),
                g2 * sol.alpha1 ** 2 / (2.0 * r), sol.V0)
        groups: tuple = ()
    else:
        from rmt_deq.kernels.ntk_surrogate import ntk_group_coefficients
        groups = check_groups(_NTK_DEQ_GROUPS if ntk_groups is None else ntk_groups,
                              _NTK_DEQ_GROUPS)
        tot = ntk_group_coefficients(sol, groups)["total"]
        vals = (tot.c1, tot.d2, tot.d3, tot.theta_diag)
        if refine:
            unit = np.abs(_unit_scaled(vals, [DATA_POWERS[e] for e in EQUATIONS["ntk"]],
                                       float(sol.tau0)))
            if unit[1] > _ODD_TOL * unit.max() or unit[2] > _ODD_TOL * unit.max():
                raise InvalidParameterError(
                    f"refine=True needs an odd DEQ activation (NTK d2 = d3 = 0); "
                    f"{sol.activation} has d2 = {tot.d2:.6g}, d3 = {tot.d3:.6g}")
            vals = (tot.c1, tot.theta_diag, tot.c5, tot.theta_slope)
    return DesignTarget(kind=target, values=tuple(float(v) for v in vals),
                        tau0=float(sol.tau0), activation=sol.activation, sa=sa_f, sb=sb_f,
                        ntk_groups=groups, solution=sol, refine=bool(refine))


# ----------------------------------------------------------------------------------------
# the ENN equations (recursion of section 6 and the NTK layer map)
# ----------------------------------------------------------------------------------------
def _enn_outputs(moment_fns: Sequence[Callable[[Any], tuple]], q0: float, kind: str,
                 groups: Sequence[str] | None, refine: bool = False) -> list:
    """(alpha1, alpha2, alpha3, tau^2) of K_L, or (c1, d2, d3, theta_diag) of the NTK, or
    with ``refine`` (c1, theta_diag, c5, theta_slope) of the NTK.

    ``moment_fns[l](q)`` returns (g1, g2, g4, V0, h0) of layer l+1 at input variance q
    (floats or _Dual), followed by (e1 e3, h2) for ``refine``.  ``groups`` None means every
    NTK group (v, W1..WL).
    """
    if kind == "ck":
        a1, a2, a3, a4, q = 1.0, 0.0, 0.0, 1.0, q0
        for mf in moment_fns:
            g1, g2, g4, V0 = mf(q)[:4]
            a1, a2, a3, a4, q = (g1 * a1, g1 * a2 + g2 * (a4 * a4) * 0.25,
                                 g1 * a3 + g2 * (a1 * a1) * 0.5, g4 * a4 * 0.5, V0)
        return [a1, a2, a3, q]
    # NTK: the recursion of rmt_deq.kernels.ntk_surrogate.explicit_network_coefficients, written
    # again for forward-mode duals.  CK state (alpha1, alpha2, alpha3, tau^2, alpha5,
    # alpha4), alpha5_l = g1 alpha5_{l-1} + e1 e3 alpha1_{l-1} alpha4_{l-1}/2; the product
    # with Kdot_k maps (c1, d2, d3, theta_diag, c5, theta_slope) by c1 -> g1 c1, d2 -> g1 d2,
    # d3 -> g1 d3 + g2 alpha1_{k-1} c1, theta_diag -> h0 theta_diag,
    # c5 -> g1 c5 + (e1 e3/2) alpha4_{k-1} c1, theta_slope -> h0 theta_slope +
    # (h2/2) alpha4_{k-1} theta_diag.  Without ``refine`` the moment functions give no
    # (e1 e3, h2) and c5, theta_slope stay 0 (unused).
    a1, a2, a3, q, a5, a4 = 1.0, 0.0, 0.0, q0, 0.0, 1.0
    ks = [(a1, a2, a3, q, a5, a4)]
    mom = []
    for mf in moment_fns:
        m = mf(q)
        g1, g2, g4, V0, h0 = m[:5]
        e13, h2 = (m[5], m[6]) if refine else (0.0, 0.0)
        mom.append((g1, g2, h0, e13, h2))
        a1, a2, a3, q, a5, a4 = (g1 * a1, g1 * a2 + g2 * (a4 * a4) * 0.25,
                                 g1 * a3 + g2 * (a1 * a1) * 0.5, V0,
                                 g1 * a5 + e13 * a1 * a4 * 0.5, g4 * a4 * 0.5)
        ks.append((a1, a2, a3, q, a5, a4))
    L = len(moment_fns)
    names = ["v"] + [f"W{l}" for l in range(1, L + 1)]
    sel = names if groups is None else list(groups)
    total = [0.0] * 6
    for g in sel:
        if g == "v":
            c = ks[L]
        else:
            l = int(g[1:])
            c = ks[l - 1]
            for k in range(l, L + 1):
                g1, g2, h0, e13, h2 = mom[k - 1]
                pa1, pa4 = ks[k - 1][0], ks[k - 1][5]
                c = (g1 * c[0], g1 * c[1], g1 * c[2] + g2 * pa1 * c[0], h0 * c[3],
                     g1 * c[4] + e13 * 0.5 * pa4 * c[0], h0 * c[5] + h2 * 0.5 * pa4 * c[3])
        total = [t + ci for t, ci in zip(total, c)]
    if refine:
        return [total[0], total[3], total[4], total[5]]
    return total[:4]


def enn_equations(layers: Sequence[DesignedLayer], tau0: float, target: str = "ck", *,
                  enn_groups: Iterable[str] | None = None, refine: bool = False) -> tuple:
    """The four design quantities of an explicit network from its layers.

    Parameters
    ----------
    layers : sequence of DesignedLayer
    tau0 : float
    target : {"ck", "ntk"}
    enn_groups : iterable of {"v", "W1", ..., "WL"}, optional
        NTK groups (default all).
    refine : bool
        NTK only: return (c1, theta_diag, c5, theta_slope) (``REFINED_EQUATIONS``) instead.

    Returns
    -------
    tuple of 4 floats, in the order of ``EQUATIONS[target]`` (or ``REFINED_EQUATIONS``)

    Raises
    ------
    InvalidParameterError
        ``refine`` or ``enn_groups`` with a CK target, or ``refine`` with a layer kind that
        has no closed-form refined moments here (pwlinear, hermite).
    """
    check_choice(target, "target", TARGETS)
    if not isinstance(refine, bool):
        raise InvalidParameterError(f"refine must be True or False, got {refine!r}")
    if refine and target != "ntk":
        raise InvalidParameterError("refine=True applies to target='ntk' only")
    if enn_groups is not None and target != "ntk":
        raise InvalidParameterError("enn_groups applies to target='ntk' only (the CK has no "
                                    "parameter groups)")
    fns = [_layer_moment_fn(layer, refine) for layer in layers]
    groups = None if enn_groups is None else _check_enn_groups(enn_groups, len(layers))
    return tuple(float(_val(v)) for v in _enn_outputs(fns, float(tau0) ** 2, target, groups,
                                                      refine))


def _layer_moment_fn(layer: DesignedLayer, refine: bool = False) -> Callable[[Any], tuple]:
    p = layer.params
    if layer.kind == "hardtanhlin":
        return lambda q: _moments_hardtanhlin(p["a"], p["c"], p["b"], q)
    if layer.kind == "custom":
        act = layer.activation
        return lambda q: _numeric_moments(act, q, refine)
    if refine:
        if layer.kind == "hardtanh":
            return lambda q: _moments_hardtanhlin(p["a"], p["c"], 0.0, q)
        raise InvalidParameterError(
            f"no refined NTK moments for a {layer.kind} layer (refine=True is for odd "
            f"families: htanh1, htanhlin2, or an odd ParametricFamily)")
    if layer.kind == "pwlinear":
        return lambda q: _moments_pwlinear(p["a"], p["b"], q)
    if layer.kind == "hermite":
        c = p.get("c", 0.0)
        return lambda q: _moments_hermite(p["a"], p["b"], c, q)
    return lambda q: _moments_hardtanh(p["a"], p["c"], q)


def _numeric_moments(act: Activation, q: float, refine: bool = False) -> tuple:
    from rmt_deq.moments.gaussian import gaussian_moments
    gm = gaussian_moments(act, math.sqrt(float(q)))
    out = (float(gm.g1), float(gm.g2), float(gm.g4), float(gm.V0), float(gm.h0))
    if refine:
        out += (float(gm.e1) * float(gm.e3), float(gm.h2))
    return out


def _check_enn_groups(groups: Iterable[str], L: int) -> tuple:
    names = ("v",) + tuple(f"W{l}" for l in range(1, L + 1))
    if isinstance(groups, str):
        groups = (groups,)
    gs = tuple(groups)
    bad = [g for g in gs if g not in names]
    if bad or not gs:
        raise UnknownOptionError(
            f"unknown explicit-network NTK group(s) {bad or gs}; choose from {names}")
    return tuple(g for g in names if g in gs)


# ----------------------------------------------------------------------------------------
# families
# ----------------------------------------------------------------------------------------
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
        """The four ENN quantities at x and (if asked) their Jacobian (4 x len(x))."""
        refine = bool(getattr(target, "refine", False))
        moments = self.refined_moment_fns if refine else self.layer_moment_fns
        if self.analytic and jacobian:
            xd = _seed(x)
            out = _enn_outputs(moments(xd), target.tau0 ** 2, target.kind, groups, refine)
            n = len(x)
            F = np.array([_val(o) for o in out])
            J = np.array([o.g if isinstance(o, _Dual) else np.zeros(n) for o in out])
            return F, J
        F = np.array([_val(o) for o in _enn_outputs(
            moments([float(v) for v in x]), target.tau0 ** 2, target.kind, groups, refine)])
        if not jacobian:
            return F, None
        J = np.empty((4, len(x)))
        for k in range(len(x)):
            h = 1e-6 * (abs(x[k]) or 1.0)      # relative: parameters carry the data scale
            xp, xm = np.array(x, float), np.array(x, float)
            xp[k] += h
            xm[k] -= h
            Fp, _ = self.evaluate(xp, target, groups, jacobian=False)
            Fm, _ = self.evaluate(xm, target, groups, jacobian=False)
            J[:, k] = (Fp - Fm) / (2 * h)
        return F, J

    def build_layers(self, params: Mapping[str, float], tau0: float) -> tuple:
        """The DesignedLayer objects (scales chained from tau0)."""
        layers, tau = [], float(tau0)
        for i, (kind, lp) in enumerate(self.layer_specs(params)):
            layer = _make_layer(kind, lp, tau, self if kind == "custom" else None, i)
            layers.append(layer)
            tau = layer.tau_out
        return tuple(layers)

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
        return [lambda q: _moments_pwlinear(1.0, b1, q),
                lambda q: _moments_pwlinear(a2, b2, q)]

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
        return [lambda q: _moments_hermite(1.0, b1, 0.0, q),
                lambda q: _moments_hermite(a2, b2, c2, q)]

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
        c = _exp(lc)
        return [lambda q: _moments_hardtanh(a, c, q)]

    def refined_moment_fns(self, x: Sequence[Any]) -> list:
        a, lc = x
        c = _exp(lc)
        return [lambda q: _moments_hardtanhlin(a, c, 0.0, q)]

    def params_from_free(self, x: Sequence[float]) -> dict:
        return {"a1": float(x[0]), "c1": math.exp(float(x[1]))}

    def layer_specs(self, params: Mapping[str, float]) -> list:
        return [("hardtanh", {"a": params["a1"], "c": params["c1"]})]

    def canonical(self, params: Mapping[str, float]) -> dict:
        return {"a1": abs(params["a1"]), "c1": params["c1"]}

    def structural_failure(self, target: DesignTarget) -> tuple | None:
        return _odd_family_failure(target, "one odd layer has", "use a two-layer family")

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
        from scipy.optimize import brentq

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


def _odd_family_failure(target: DesignTarget, subject: str, advice: str) -> tuple | None:
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
    odd layer cannot reach it for tanh (the Hermite bound in the module docstring and
    figures/design_refined_ntk.py), two can.  Layer 2 is closed under rescaling of its
    input (a clip(lambda t, c) + b lambda t = lambda (a clip(t, c/lambda) + b t)), so a_1 = 1
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
        c1, c2 = _exp(lc1), _exp(lc2)
        return [lambda q: _moments_hardtanhlin(1.0, c1, b1, q),
                lambda q: _moments_hardtanhlin(a2, c2, b2, q)]

    refined_moment_fns = layer_moment_fns

    def structural_failure(self, target: DesignTarget) -> tuple | None:
        return _odd_family_failure(target, "odd layers have",
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


class ParametricFamily(DesignFamily):
    """A user family: L layers sigma_l(t) = sigma(t; theta_l) (theta_l in R^k each).

    Moments are computed by the package's quadrature (:func:`rmt_deq.moments.gaussian.
    gaussian_moments`) and the Jacobian by central differences, so a solve is slower than
    with the built-in closed-form families (seconds rather than milliseconds).

    Parameters
    ----------
    sigma : callable or sequence of callables
        ``sigma(t, theta) -> array`` (numpy in, numpy out, elementwise in t); a sequence
        gives one function per layer.
    n_layers : int
    theta0 : array_like, shape (k,) or (n_layers, k)
        A starting point (per layer or shared).
    name : str
    param_names : sequence of str, optional
        Names of the k parameters of a layer (default theta0, theta1, ...); reported as
        ``<name><layer>`` (e.g. ``a1``, ``a2``).
    derivative : callable or sequence, optional
        ``sigma'(t, theta)``; default: the package's numerical derivative.
    kinks : callable or sequence of float, optional
        Kinks of sigma (``kinks(theta) -> tuple`` when they move with theta); quadrature is
        split there.
    odd : bool
        Declare every sigma odd (then alpha2 = alpha3 = 0 is structural).
    """

    analytic = False

    def __init__(self, sigma: Any, n_layers: int, theta0: Any, *, name: str = "custom",
                 param_names: Sequence[str] | None = None, derivative: Any = None,
                 kinks: Any = (), odd: bool = False) -> None:
        self.n_layers = check_positive_int(n_layers, "n_layers")
        sig = list(sigma) if isinstance(sigma, (list, tuple)) else [sigma] * self.n_layers
        if len(sig) != self.n_layers or not all(callable(s) for s in sig):
            raise InvalidParameterError(
                f"sigma must be a callable or {self.n_layers} callables, got {sigma!r}")
        self._sigma = sig
        if derivative is None:
            self._deriv = [None] * self.n_layers
        else:
            d = list(derivative) if isinstance(derivative, (list, tuple)) else \
                [derivative] * self.n_layers
            if len(d) != self.n_layers:
                raise InvalidParameterError("derivative must match sigma (one per layer)")
            self._deriv = d
        th = np.asarray(theta0, dtype=float)
        if th.ndim == 1:
            th = np.tile(th, (self.n_layers, 1))
        if th.ndim != 2 or th.shape[0] != self.n_layers or th.shape[1] == 0 \
                or not np.all(np.isfinite(th)):
            raise InvalidParameterError(
                f"theta0 must be finite of shape (k,) or ({self.n_layers}, k), got {th.shape}")
        self._theta0 = th
        self.k = th.shape[1]
        names = tuple(param_names) if param_names is not None else \
            tuple(f"theta{j}" for j in range(self.k))
        if len(names) != self.k:
            raise InvalidParameterError(f"param_names needs {self.k} names, got {names}")
        self._layer_names = names
        self.name = str(name)
        self.param_names = tuple(f"{nm}{l}" for l in range(1, self.n_layers + 1)
                                 for nm in names)
        self.free_names = self.param_names
        self._kinks = kinks
        self.odd = bool(odd)

    def layer_param_names(self, index: int) -> tuple:
        return tuple(f"{nm}{index + 1}" for nm in self._layer_names)

    def activation(self, index: int, theta: np.ndarray) -> Activation:
        """sigma(.; theta) of layer ``index`` as an Activation."""
        f = self._sigma[index]
        th = np.array(theta, dtype=float)
        kinks = self._kinks(th) if callable(self._kinks) else self._kinks
        d = self._deriv[index]
        return Activation.from_callable(
            lambda t: f(t, th), name=f"{self.name}[{index + 1}]", kinks=tuple(kinks),
            derivative=None if d is None else (lambda t: d(t, th)), odd=self.odd)

    def layer_moment_fns(self, x: Sequence[Any]) -> list:
        th = np.asarray([_val(v) for v in x], dtype=float).reshape(self.n_layers, self.k)
        acts = [self.activation(l, th[l]) for l in range(self.n_layers)]
        return [lambda q, a=a: _numeric_moments(a, _val(q)) for a in acts]

    def refined_moment_fns(self, x: Sequence[Any]) -> list:
        if not self.odd:
            return DesignFamily.refined_moment_fns(self, x)
        th = np.asarray([_val(v) for v in x], dtype=float).reshape(self.n_layers, self.k)
        acts = [self.activation(l, th[l]) for l in range(self.n_layers)]
        return [lambda q, a=a: _numeric_moments(a, _val(q), True) for a in acts]

    def params_from_free(self, x: Sequence[float]) -> dict:
        return {n: float(v) for n, v in zip(self.param_names, x)}

    def layer_specs(self, params: Mapping[str, float]) -> list:
        return [("custom", {n: params[n] for n in self.layer_param_names(l)})
                for l in range(self.n_layers)]

    def starts(self, target: DesignTarget) -> list:
        return [self._theta0.reshape(-1).copy()]

    def random_start(self, gen: np.random.Generator, target: DesignTarget) -> np.ndarray:
        x = self._theta0.reshape(-1)
        return x * gen.uniform(0.5, 1.5, size=x.size) + 0.1 * gen.normal(size=x.size)

    def structural_failure(self, target: DesignTarget) -> tuple | None:
        if self.odd:
            return _HardTanh1.structural_failure(self, target)   # same statement
        return None


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


# ----------------------------------------------------------------------------------------
# the solver
# ----------------------------------------------------------------------------------------
def _weights(target: DesignTarget) -> np.ndarray:
    """w_k with w_k |F_k - T_k| = equation k's relative error
    (:meth:`DesignTarget.relative_errors`): w_k = tau0^(d_k - 2) / s_k."""
    return np.asarray(_unit_scaled(1.0 / target.equation_scales(), target.data_powers,
                                   target.tau0))


def _levenberg_marquardt(fun: Callable, x0: np.ndarray, T: np.ndarray, w: np.ndarray,
                         max_iter: int, stop: float) -> dict:
    """Minimise sum (w (F(x) - T))^2 from x0 (Nielsen's damping update)."""
    x = np.array(x0, dtype=float)
    try:
        F, J = fun(x)
    except (ArithmeticError, ValueError, RmtDeqError):
        return {"x": x, "cost": math.inf, "r": np.full(4, math.inf), "iterations": 0}
    r = w * (F - T)
    if not np.all(np.isfinite(r)) or not np.all(np.isfinite(J)):
        return {"x": x, "cost": math.inf, "r": np.full(4, math.inf), "iterations": 0}
    Jw = w[:, None] * J
    cost = float(r @ r)
    lam, nu = None, 2.0
    it = slow = 0
    for it in range(1, max_iter + 1):
        if float(np.max(np.abs(r))) <= stop:
            break
        A = Jw.T @ Jw
        g = Jw.T @ r
        d = np.diag(A).copy()
        dmax = float(d.max()) if d.size else 0.0
        if dmax <= 0 or not math.isfinite(dmax):
            break
        d = np.maximum(d, 1e-12 * dmax)
        if lam is None:
            lam = 1e-3
        accepted = False
        while not accepted:
            try:
                dx = np.linalg.solve(A + lam * np.diag(d), -g)
            except np.linalg.LinAlgError:
                dx = np.linalg.lstsq(A + lam * np.diag(d), -g, rcond=None)[0]
            xn = x + dx
            try:
                Fn, Jn = fun(xn)
                rn = w * (Fn - T)
                ok = bool(np.all(np.isfinite(rn)) and np.all(np.isfinite(Jn)))
            except (ArithmeticError, ValueError, RmtDeqError):
                ok = False
            cn = float(rn @ rn) if ok else math.inf
            pred = float(-(2 * g @ dx + dx @ A @ dx))
            if ok and cn < cost:
                # stagnation at a nonzero least-squares minimum (an infeasible target)
                slow = slow + 1 if cost - cn <= 1e-10 * cost else 0
                rho = (cost - cn) / pred if pred > 0 else 1.0
                lam *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                nu = 2.0
                x, r, Jw, cost = xn, rn, w[:, None] * Jn, cn
                accepted = True
            else:
                lam *= nu
                nu *= 2.0
                if lam > 1e20:
                    break
        if not accepted or slow >= 3:
            break
        if float(np.max(np.abs(dx))) <= 1e-15 * (1.0 + float(np.max(np.abs(x)))):
            break
    return {"x": x, "cost": cost, "r": r, "iterations": it}


@dataclass(frozen=True, eq=False)
class DesignedNetwork:
    """An explicit network designed to match a DEQ kernel, with diagnostics.

    Attributes
    ----------
    family : str
    params : dict of str -> float
        The family's parameters (``lrelu2``: a1, b1, a2, b2 with sigma_l(t) =
        max(a_l t, b_l t), a_l >= |b_l|; ``quad2``: a1, b1, a2, b2 with sigma_l(t) =
        a_l t + b_l (t^2 - tau_{l-1}^2); ``quadcubic2``: also c2, the coefficient of
        t^3 - 3 tau_1^2 t in layer 2; ``htanh1``: a1, c1 with sigma(t) = a1 clip(t, -c1, c1);
        ``htanhlin2``: a1 (= 1), c1, b1, a2, c2, b2 with sigma_l(t) = a_l clip(t, -c_l, c_l)
        + b_l t).
    layers : tuple of DesignedLayer
    tau0 : float
        Data scale (input scale of layer 1).
    target : DesignTarget
    achieved : tuple of 4 floats
        The network's values of the target's four quantities (``target.equations``).
    errors : dict of str -> float
        achieved - required, per equation (absolute, in each equation's own units).
    residual : float
        max |achieved - required| (absolute; the equations have different units, so this
        is a summary, not the feasibility test).
    relative_residual : float
        max of ``relative_errors``.
    feasible : bool
        Every equation's relative error is <= the solve tolerance ``diagnostics["tol"]``.
    failing_equation : str or None
        When not feasible: the equation the family fails (:func:`design_network`'s
        diagnosis), else the one with the largest relative error.
    enn_groups : tuple of str or None
        The ENN NTK groups of an NTK design (None: all).
    diagnostics : dict
        ``starts`` tried, ``iterations`` (total), ``solve_time_s``, ``tol``,
        ``analytic_jacobian``, ``message``.
    relative_errors : dict of str -> float
        Per equation, |achieved - required| on the equation's own scale
        (:meth:`DesignTarget.relative_errors`: relative to the target, or to
        ``EQUATION_FLOOR`` of the kernel scale for a target below it); independent of
        tau0 for a scale-covariant family and a positively homogeneous DEQ.
    """

    family: str
    params: Mapping[str, float]
    layers: tuple = field(repr=False)
    tau0: float
    target: DesignTarget = field(repr=False)
    achieved: tuple = ()
    errors: Mapping[str, float] = field(default_factory=dict)
    residual: float = float("nan")
    relative_residual: float = float("nan")
    feasible: bool = False
    failing_equation: str | None = None
    enn_groups: tuple | None = None
    diagnostics: Mapping[str, Any] = field(default_factory=dict, repr=False)
    relative_errors: Mapping[str, float] = field(default_factory=dict)

    # -- structure -----------------------------------------------------------------------
    @property
    def L(self) -> int:
        """Number of hidden layers."""
        return len(self.layers)

    @property
    def activations(self) -> tuple:
        """The uncentred sigma_l as Activations (each network layer subtracts its
        ``centring``)."""
        return tuple(layer.activation for layer in self.layers)

    @property
    def taus(self) -> tuple:
        """(tau_0, tau_1, ..., tau_L)."""
        return (self.tau0,) + tuple(layer.tau_out for layer in self.layers)

    @property
    def centrings(self) -> tuple:
        return tuple(layer.centring for layer in self.layers)

    # -- finite width --------------------------------------------------------------------
    def sample_weights(self, width: int, p: int, rng: Any = None) -> tuple:
        """Unit-variance Gaussian weights (W_1: width x p, W_l: width x width, v: width).

        Returns
        -------
        tuple (Ws, v) with Ws a tuple of L matrices
        """
        m = check_positive_int(width, "width")
        p = check_positive_int(p, "p")
        gen = as_rng(rng)
        Ws = [gen.standard_normal((m, p))]
        for _ in range(1, self.L):
            Ws.append(gen.standard_normal((m, m)))
        v = gen.standard_normal(m)
        return tuple(Ws), v

    def forward(self, X: Any, weights: Sequence[np.ndarray] | None = None, *,
                width: int | None = None, rng: Any = None, keep_hidden: bool = False
                ) -> "ENNForward":
        """Plain numpy forward pass h_l = sigma_{l,c}(W_l h_{l-1})/sqrt(m), h_0 = x.

        Parameters
        ----------
        X : array_like, shape (p, n)
            Data; columns are samples.
        weights : sequence of L arrays, optional
            W_1 (m x p), W_2 .. W_L (m x m) with unit-variance entries (the 1/sqrt(m)
            scalings are applied here).  Default: drawn from ``rng`` at ``width``.
        width : int, optional
            Width m when the weights are drawn.
        rng : int or Generator, optional
        keep_hidden : bool
            Keep every h_l (else only h_L).

        Returns
        -------
        ENNForward
            ``features`` = h_L (m x n): the CK Gram matrix is features.T @ features.
        """
        Xa = as_data_matrix(X)
        if weights is None:
            if width is None:
                raise InvalidParameterError("give weights or a width to draw them at")
            weights, _ = self.sample_weights(width, Xa.shape[0], rng)
        Ws = [np.asarray(W) for W in weights]
        if len(Ws) != self.L:
            raise ShapeMismatchError(f"need {self.L} weight matrices, got {len(Ws)}")
        h = Xa
        hidden = []
        for l, (W, layer) in enumerate(zip(Ws, self.layers)):
            if W.ndim != 2 or W.shape[1] != h.shape[0] or (l > 0 and W.shape[0] != W.shape[1]):
                raise ShapeMismatchError(
                    f"W_{l + 1} must be m x {h.shape[0]}{' (square)' if l else ''}, got "
                    f"{W.shape}")
            U = W @ h
            h = layer(U) * (1.0 / math.sqrt(W.shape[0]))
            if keep_hidden:
                hidden.append(h)
        return ENNForward(features=h, hidden=tuple(hidden))

    def numpy_source(self, function_name: str = "designed_features") -> str:
        """Python source of a self-contained numpy function of this network.

        The function ``function_name(X, weights)`` takes X (p x n) and the L unit-variance
        weight matrices and returns h_L (m x n); it depends only on numpy.
        """
        if not function_name.isidentifier():
            raise InvalidParameterError(f"not a Python identifier: {function_name!r}")
        lines = ["import numpy as np", "", "",
                 f"def {function_name}(X, weights):",
                 f'    """Designed explicit network ({self.family}, tau0 = {self.tau0!r}): '
                 f'h_L (m x n) from X (p x n)."""',
                 f"    assert len(weights) == {self.L}",
                 "    h = np.asarray(X, dtype=float)"]
        for l, layer in enumerate(self.layers):
            p = layer.params
            lines.append(f"    u = weights[{l}] @ h")
            if layer.kind == "pwlinear":
                expr = f"np.where(u > 0, {p['a']!r} * u, {p['b']!r} * u) - {layer.centring!r}"
            elif layer.kind == "hermite":
                q = layer.tau_in ** 2
                expr = (f"{p['a']!r} * u + {p['b']!r} * (u * u - {q!r})"
                        + (f" + {p['c']!r} * (u ** 3 - {3.0 * q!r} * u)" if p.get("c", 0.0)
                           else ""))
            elif layer.kind == "hardtanh":
                expr = f"{p['a']!r} * np.clip(u, -{p['c']!r}, {p['c']!r})"
            elif layer.kind == "hardtanhlin":
                expr = (f"{p['a']!r} * np.clip(u, -{p['c']!r}, {p['c']!r}) + {p['b']!r} * u")
            else:
                raise InvalidParameterError(
                    "numpy_source is available for the built-in families only (a custom "
                    "sigma cannot be written out)")
            lines.append(f"    h = ({expr}) / np.sqrt(u.shape[0])")
        lines.append("    return h")
        return "\n".join(lines) + "\n"

    # -- infinite width ------------------------------------------------------------------
    def coefficients(self) -> Any:
        """Surrogate coefficients of the CK and NTK (:class:`rmt_deq.kernels.ntk_surrogate.
        ExplicitNetworkCoefficients`)."""
        from rmt_deq.kernels.ntk_surrogate import explicit_network_coefficients
        return explicit_network_coefficients(self.activations, self.tau0)

    def exact_kernels(self, X: Any, **options: Any) -> Any:
        """Exact infinite-width CK and NTK (:func:`rmt_deq.kernels.ntk_surrogate.exact_explicit_ntk`
        at this network's tau0); ``.ck[-1]`` is the CK K_L.  Options are passed on
        (groups, method, tol, kmax, workers)."""
        from rmt_deq.kernels.ntk_surrogate import exact_explicit_ntk
        check_options(options, ("groups", "method", "tol", "kmax", "workers"),
                      "DesignedNetwork.exact_kernels")
        return exact_explicit_ntk(X, self.activations, tau0=self.tau0, **options)

    def to_explicit(self) -> Any:
        """This network as an :class:`rmt_deq.networks.explicit.ExplicitNetwork` (full-precision
        ``enn_*`` spec strings), for the package's sampling code: e.g.
        ``sampled_explicit_ck(X, net.to_explicit(), width=m, tau0=net.tau0)``.

        Raises
        ------
        InvalidParameterError
            A :class:`ParametricFamily` design (its activations are code).
        """
        return _to_explicit(self)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dictionary (every float at full precision)."""
        return {
            "format": _JSON_FORMAT,
            "family": self.family,
            "params": {k: float(v) for k, v in self.params.items()},
            "tau0": float(self.tau0),
            "layers": [layer.to_dict() for layer in self.layers],
            "target": self.target.as_dict(),
            "enn_groups": None if self.enn_groups is None else list(self.enn_groups),
            "achieved": list(self.achieved),
            "errors": dict(self.errors),
            "relative_errors": dict(self.relative_errors),
            "residual": self.residual,
            "relative_residual": self.relative_residual,
            "feasible": self.feasible,
            "failing_equation": self.failing_equation,
            "diagnostics": {k: v for k, v in self.diagnostics.items()
                            if isinstance(v, (int, float, str, bool, type(None)))},
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def save(self, path: str) -> None:
        """Write :meth:`to_dict` as JSON to ``path``, atomically (a failed write leaves a
        previous file unchanged; non-finite numbers become null)."""
        from rmt_deq._io import write_json

        write_json(path, self.to_dict(), what="designed network")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], family: DesignFamily | None = None, *,
                  source: str = "design record") -> "DesignedNetwork":
        """Rebuild from :meth:`to_dict`: every field is validated (types, shapes,
        finiteness, names; the rules are in :mod:`rmt_deq.design.record`), the layers are
        rebuilt from the parameters, and the stored layer scales, ``achieved`` values and
        ``feasible`` verdict are checked against them.

        Parameters
        ----------
        d : dict
        family : DesignFamily, optional
            Required for a :class:`ParametricFamily` design (its sigma is code, not data);
            its name must be the record's.
        source : str
            How messages name the record (``load`` passes the file name).

        Raises
        ------
        InvalidRecordError
            Naming the key and the problem: a missing or unknown key, a wrong type, shape
            or value, an unknown family, or stored numbers that do not follow from the
            parameters (an edited or corrupt record).
        """
        from rmt_deq.design.record import check_record

        r = check_record(d, family, source)
        fam, params, tau0, target = r["family"], r["params"], r["tau0"], r["target"]
        canon = fam.canonical(params)
        if any(abs(canon[k] - params[k]) > 1e-12 * abs(params[k]) for k in params):
            raise InvalidRecordError(
                f"{source}: params {params} are not in the canonical form of family "
                f"{fam.name!r} ({canon}); re-create the record with DesignedNetwork.save")
        try:
            layers = fam.build_layers(params, tau0)
        except RmtDeqError as exc:
            raise InvalidRecordError(
                f"{source}: params {params} do not define a {fam.name} network at tau0 = "
                f"{tau0:g}: {exc}; re-create the record with DesignedNetwork.save") from None
        for i, (layer, rec) in enumerate(zip(layers, r["layers"])):
            stored = {**rec["params"]}
            bad = (rec["kind"] != layer.kind or set(stored) != set(layer.params)
                   or any(abs(stored[k] - layer.params[k]) > 1e-12 * abs(layer.params[k])
                          for k in layer.params)
                   or any(abs(rec[k] - getattr(layer, k)) > 1e-9 * abs(getattr(layer, k))
                          for k in ("tau_in", "tau_out"))
                   or abs(rec["centring"] - layer.centring) > 1e-9 * (abs(layer.centring)
                                                                      + layer.tau_out))
            if bad:
                raise InvalidRecordError(
                    f"{source}: the stored layers[{i}] {rec} do not follow from the "
                    f"parameters (they give kind {layer.kind!r}, params {dict(layer.params)}, "
                    f"tau_in {layer.tau_in!r}, tau_out {layer.tau_out!r}, centring "
                    f"{layer.centring!r}): an edited or corrupt record; re-create it with "
                    f"DesignedNetwork.save")
        try:
            net = _finish(fam, params, layers, target, r["enn_groups"], r["tol"],
                          r["diagnostics"])
        except RmtDeqError as exc:
            raise InvalidRecordError(f"{source}: its network cannot be evaluated: {exc}") \
                from None
        derived = r["derived"]
        if "achieved" in derived:
            gap = np.abs(_unit_scaled(np.subtract(derived["achieved"], net.achieved),
                                      target.data_powers, target.tau0))
            gap = gap / target.equation_scales()
            if not gap.max() <= 1e-9:
                raise InvalidRecordError(
                    f"{source}: the stored achieved values {list(derived['achieved'])} do not "
                    f"follow from the parameters ({list(net.achieved)}, relative gaps "
                    f"{gap.tolist()}): an edited or corrupt record; re-create it with "
                    f"DesignedNetwork.save")
        if "feasible" in derived and derived["feasible"] != net.feasible:
            raise InvalidRecordError(
                f"{source}: the record says feasible = {derived['feasible']} but its network "
                f"has relative equation errors {net.relative_errors} against tol = "
                f"{r['tol']:g} (feasible = {net.feasible}); a record written with another "
                f"feasibility test, or edited: re-run the design")
        stored_eq = derived.get("failing_equation")
        if not net.feasible and stored_eq is not None:     # the solve's diagnosis
            net = DesignedNetwork(**{**net.__dict__, "failing_equation": stored_eq})
        return net

    @classmethod
    def from_json(cls, text: str | bytes, family: DesignFamily | None = None, *,
                  source: str = "design record") -> "DesignedNetwork":
        """Rebuild from :meth:`to_json` text (InvalidRecordError if it is not UTF-8 JSON
        of a valid record)."""
        from rmt_deq.design.record import parse_record_text
        return cls.from_dict(parse_record_text(text, source), family, source=source)

    @classmethod
    def load(cls, path: str, family: DesignFamily | None = None) -> "DesignedNetwork":
        """Read a file written by :meth:`save`.

        Raises
        ------
        InvalidRecordError
            The file cannot be read, is not UTF-8 JSON, or is not a valid record; the
            message names the file, the problem and the fix.
        """
        from rmt_deq.design.record import read_record_file
        return cls.from_dict(read_record_file(path), family,
                             source=f"design file {str(path)!r}")

    def record(self) -> dict:
        """The CLI's JSON object: family, residual, params (and feasibility details)."""
        return {"family": self.family, "residual": self.residual,
                "params": {k: float(v) for k, v in self.params.items()},
                "target": self.target.kind, "equations": list(self.target.equations),
                "required": list(self.target.values), "achieved": list(self.achieved),
                "relative_errors": dict(self.relative_errors),
                "tol": self.diagnostics.get("tol"),
                "relative_residual": self.relative_residual, "feasible": self.feasible,
                "failing_equation": self.failing_equation, "tau0": self.tau0,
                "taus": list(self.taus),
                "solve_time_s": self.diagnostics.get("solve_time_s")}


def load_designed_network(path: str, family: DesignFamily | None = None) -> DesignedNetwork:
    """:meth:`DesignedNetwork.load` (InvalidRecordError, naming the file, for anything
    that is not a valid record)."""
    return DesignedNetwork.load(path, family)


@dataclass(frozen=True, eq=False)
class ENNForward:
    """Output of :meth:`DesignedNetwork.forward`.

    Attributes
    ----------
    features : ndarray, shape (m, n)
        h_L; the CK Gram matrix is ``features.T @ features``.
    hidden : tuple of ndarray
        h_1 .. h_L when ``keep_hidden`` was set (else empty).
    """

    features: np.ndarray = field(repr=False)
    hidden: tuple = field(default=(), repr=False)

    @property
    def gram(self) -> np.ndarray:
        """features^T features (n x n)."""
        return self.features.T @ self.features


def _to_explicit(net: DesignedNetwork) -> Any:
    from rmt_deq.networks.explicit import ExplicitNetwork

    if any(layer.kind == "custom" for layer in net.layers):
        raise InvalidParameterError(
            "a ParametricFamily design has code, not spec strings, as its activations; "
            "use forward() or exact_kernels() instead of rmt_deq.networks.explicit")
    return ExplicitNetwork(tuple(layer.activation.name for layer in net.layers))


def _finish(fam: DesignFamily, params: Mapping[str, float], layers: tuple,
            target: DesignTarget, groups: tuple | None, tol: float,
            diagnostics: dict) -> DesignedNetwork:
    """The network with its quantities evaluated at the target's own scale (not the unit
    scale of the solve) and the per-equation verdict."""
    with np.errstate(over="ignore", invalid="ignore"):
        ach = np.asarray(enn_equations(layers, target.tau0, target.kind, enn_groups=groups,
                                       refine=bool(target.refine)), dtype=float)
    if not np.all(np.isfinite(ach)):
        raise InvalidParameterError(
            f"the {fam.name} network {dict(params)} has non-finite design quantities "
            f"{dict(zip(target.equations, ach.tolist()))} at tau0 = {target.tau0:g} "
            f"(float64 overflow at this data scale); rescale the data so that tau0 is "
            f"nearer 1")
    err = ach - np.asarray(target.values)
    rel = target.relative_errors(ach)
    feasible = bool(rel.max() <= tol)
    failing = None if feasible else target.equations[int(np.argmax(rel))]
    diagnostics = {**diagnostics, "tol": tol}
    return DesignedNetwork(
        family=fam.name, params=dict(params), layers=layers, tau0=target.tau0, target=target,
        achieved=tuple(float(a) for a in ach),
        errors={n: float(e) for n, e in zip(target.equations, err)},
        residual=float(np.abs(err).max()), relative_residual=float(rel.max()),
        feasible=feasible, failing_equation=failing, enn_groups=groups,
        diagnostics=diagnostics,
        relative_errors={n: float(r) for n, r in zip(target.equations, rel)})


def _diagnose_failure(fam: DesignFamily, fun: Callable, T: np.ndarray, w: np.ndarray,
                      x_best: np.ndarray, det: list, tol: float, max_iter: int, stop: float,
                      target: DesignTarget, net: "DesignedNetwork", tried: int
                      ) -> tuple[str, str]:
    """Which equation fails: for each equation k, solve the other three (weight 0 on k)
    from the best least-squares point and the deterministic starts; the failing equation
    is the one left with the smallest relative error when the other three hold (the family
    can meet every other equation but not this one).  Falls back to the equation with the
    largest relative error at the least-squares point when no three can be met."""
    names = target.equations
    leftover: dict = {}
    for k in range(len(T)):
        wk = w.copy()
        wk[k] = 0.0
        for x0 in [x_best] + list(det[:4]):
            res = _levenberg_marquardt(fun, x0, T, wk, max_iter, stop)
            if math.isfinite(res["cost"]) and float(np.max(np.abs(res["r"]))) <= tol:
                F, _ = fun(res["x"])
                leftover[names[k]] = float(abs(F[k] - T[k]) * w[k])
                break
    ls = ", ".join(f"{n} {r:.3g}" for n, r in net.relative_errors.items())
    if leftover:
        eq = min(leftover, key=leftover.get)
        others = [n for n in names if n != eq]
        why = (f"no point satisfies all four equations: with {', '.join(others)} met exactly "
               f"{eq} is still off by a relative {leftover[eq]:.3g}, so {eq} is the equation "
               f"the family fails (dropping instead: "
               + ", ".join(f"{n} -> {v:.3g}" for n, v in leftover.items() if n != eq)
               + f"); the best least-squares point after {tried} start(s) leaves relative "
               f"errors {ls}")
    else:
        eq = net.failing_equation
        why = (f"no three of the equations can be met together; the best least-squares point "
               f"after {tried} start(s) leaves relative errors {ls}; {eq} has the largest")
    return eq, why


_SOLVER_OPTIONS = ("enn_groups", "tol", "n_starts", "max_iter", "rng", "strict")


def design_network(target: DesignTarget, family: str | DesignFamily = "quadcubic2",
                   **options: Any) -> DesignedNetwork:
    """Solve for an explicit network of ``family`` that matches ``target``.

    Parameters
    ----------
    target : DesignTarget
        From :func:`design_target` (or built by hand).
    family : str or DesignFamily
        ``"lrelu2"``, ``"quad2"``, ``"quadcubic2"``, ``"htanh1"``, ``"htanhlin2"`` or a
        :class:`ParametricFamily`.  A refined target (``target.refine``) needs an odd
        family.
    enn_groups : iterable of {"v", "W1", ..., "WL"}, optional
        ENN NTK groups summed for an NTK target (default all).
    tol : float
        Largest relative error of each equation accepted as a match (default 1e-10; a
        match is polished to rounding, ~1e-15).  Each equation is measured on its own scale
        (:meth:`DesignTarget.relative_errors`), so neither the solve nor the verdict
        depends on the units of tau0.
    n_starts : int
        Most starting points tried (default 12); the family's deterministic starts come
        first, then random ones.  The solve stops at the first start that matches.
    max_iter : int
        Levenberg-Marquardt iterations per start (default 100).
    rng : int or Generator
        Seed of the random starts (default 0: reproducible).
    strict : bool
        If True (default) an unmatched target raises InfeasibleDesignError; if False the
        best least-squares network is returned with ``feasible=False``.

    Returns
    -------
    DesignedNetwork
        ``feasible`` is True only if every equation's relative error, evaluated at the
        target's tau0 from the returned layers, is <= ``tol`` (``relative_errors``).

    Notes
    -----
    Levenberg-Marquardt on the relative equation errors (:func:`_weights`).  A
    scale-covariant family (every built-in one) is solved on
    :meth:`DesignTarget.unit_problem` (data scale 1, largest unit value 1) and the answer
    rescaled (:meth:`DesignFamily.rescale`), so the iterations do not depend on tau0 or on
    the kernel's magnitude; a :class:`ParametricFamily` is solved at the target's scale.

    Raises
    ------
    InfeasibleDesignError
        No start matched (``strict``); it carries ``residual`` (max absolute equation error
        at the best least-squares point), ``failing_equation`` and ``best`` (that network,
        with its ``relative_errors``).
    UnknownOptionError
        Unknown option, family or group.
    InvalidParameterError
        A bad option value, a refined target with a family that is not odd, or a network
        whose parameters or design quantities are not finite float64 numbers at the
        target's tau0.
    """
    unknown = sorted(set(options) - set(_SOLVER_OPTIONS))
    if unknown:
        raise UnknownOptionError(
            f"design_network got unknown option(s) {unknown}; allowed: {list(_SOLVER_OPTIONS)}")
    if not isinstance(target, DesignTarget):
        raise InvalidParameterError(
            f"target must be a DesignTarget (design_target(...)), got {type(target).__name__}")
    fam = get_family(family)
    tol = options.get("tol", 1e-10)
    if isinstance(tol, bool) or not (isinstance(tol, (int, float)) and math.isfinite(tol)
                                     and tol > 0):
        raise InvalidParameterError(f"tol must be a finite number > 0, got {tol!r}")
    n_starts = check_positive_int(options.get("n_starts", 12), "n_starts")
    max_iter = check_positive_int(options.get("max_iter", 100), "max_iter")
    strict = options.get("strict", True)
    if not isinstance(strict, bool):
        raise InvalidParameterError(f"strict must be True or False, got {strict!r}")
    gen = as_rng(options.get("rng", 0))
    if target.refine and not fam.odd:
        raise InvalidParameterError(
            f"a refined NTK target needs an odd family (htanh1, htanhlin2, or "
            f"ParametricFamily(..., odd=True)); {fam.name!r} is not odd")
    groups = options.get("enn_groups")
    if groups is not None:
        if target.kind != "ntk":
            raise InvalidParameterError("enn_groups applies to an NTK target only")
        groups = _check_enn_groups(groups, fam.n_layers)

    t_start = time.perf_counter()
    # the problem actually solved: data scale 1, kernel scale 1 for a covariant family
    work, lam, mu = target.unit_problem() if fam.covariant else (target, 1.0, 1.0)
    T = np.asarray(work.values)
    w = _weights(work)
    structural = fam.structural_failure(work)
    fun = lambda x: fam.evaluate(x, work, groups)   # noqa: E731
    stop = min(tol, 1e-15)
    det = fam.starts(work)
    best, tried, iters = None, 0, 0
    # trial points far out may overflow; non-finite steps are rejected, so no warnings
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if structural is None:
            det_iter = iter(det)
            while tried < n_starts:
                x0 = next(det_iter, None)
                if x0 is None:
                    x0 = fam.random_start(gen, work)
                res = _levenberg_marquardt(fun, x0, T, w, max_iter, stop)
                tried += 1
                iters += res["iterations"]
                if best is None or res["cost"] < best["cost"]:
                    best = res
                if math.isfinite(res["cost"]) and float(np.max(np.abs(res["r"]))) <= tol:
                    break
        else:
            # no solve can succeed: report the least-squares point of the first start
            res = _levenberg_marquardt(fun, det[0] if det else fam.random_start(gen, work),
                                       T, w, max_iter, stop)
            tried, iters, best = 1, res["iterations"], res
    elapsed = time.perf_counter() - t_start
    if best is None or not math.isfinite(best["cost"]):
        raise InfeasibleDesignError(
            f"family {fam.name!r}: no start produced finite equations for this target",
            residual=math.inf, failing_equation="")
    x = fam.rescale(best["x"], lam, mu) if fam.covariant else best["x"]
    params = fam.canonical(fam.params_from_free(x))
    if not all(math.isfinite(v) for v in params.values()):
        raise InvalidParameterError(
            f"the {fam.name} network matching this target has parameters {params} that are "
            f"not finite float64 numbers at tau0 = {target.tau0:g}; rescale the data so "
            f"that tau0 is nearer 1")
    layers = fam.build_layers(params, target.tau0)
    diag = {"starts": tried, "iterations": iters, "solve_time_s": elapsed,
            "analytic_jacobian": fam.analytic, "message": "matched"}
    net = _finish(fam, params, layers, target, groups, tol, diag)
    if structural is not None and net.feasible:     # pragma: no cover - defensive
        structural = None
    if not net.feasible:
        if structural is not None:
            eq, why = structural
        else:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                eq, why = _diagnose_failure(fam, fun, T, w, best["x"], det, tol, max_iter,
                                            stop, work, net, tried)
        net = DesignedNetwork(**{**net.__dict__, "failing_equation": eq,
                                 "diagnostics": {**net.diagnostics, "message": why}})
        if strict:
            err = InfeasibleDesignError(
                f"family {fam.name!r} cannot match the {target.kind.upper()} target of "
                f"{target.activation or 'the given'} (sa = {target.sa:g}, tau0 = "
                f"{target.tau0:g}): {why} (largest relative error "
                f"{net.relative_residual:.3g} > tol = {tol:g}; max absolute error "
                f"{net.residual:.3g})",
                residual=net.residual, failing_equation=eq)
            err.best = net
            raise err
    return net


def design_for_deq(activation: ActivationLike, sa: float, tau0: float = 1.0,
                   sb: float | None = None, *, family: str | DesignFamily = "quadcubic2",
                   target: str = "ck", ntk_groups: Iterable[str] | None = None,
                   refine: bool = False, **options: Any) -> DesignedNetwork:
    """:func:`design_target` then :func:`design_network` (options as there; every option
    is checked, none is ignored: ``ntk_groups`` and ``refine`` need an NTK target, unknown
    keywords raise UnknownOptionError before the DEQ is solved)."""
    check_options(options, _SOLVER_OPTIONS, "design_for_deq")
    tgt = design_target(activation, sa, tau0, sb, target=target, ntk_groups=ntk_groups,
                        refine=refine)
    return design_network(tgt, family, **options)


def design_record(activation: ActivationLike, sa: float, tau0: float = 1.0,
                  sb: float | None = None, *, family: str = "quadcubic2",
                  target: str = "ck") -> dict:
    """What ``rmt-deq design ... --json`` prints: a JSON-ready dict with ``family``,
    ``residual`` (max absolute equation error), ``params`` and, for an unmatched target,
    ``feasible: false`` and ``failing_equation`` (never raises InfeasibleDesignError)."""
    net = design_for_deq(activation, sa, tau0, sb, family=family, target=target,
                         strict=False)
    return net.record()


# ----------------------------------------------------------------------------------------
# verification: exact and sampled kernels of the designed network against the DEQ's
# ----------------------------------------------------------------------------------------


