"""Design targets: the four numbers a DEQ asks of an explicit network, and the network's.

A target (:class:`DesignTarget`, :func:`design_target`) is the DEQ's CK or NTK surrogate
coefficients in the form an explicit network must reproduce (docs/theory.md §6.4): CK
equations ``alpha1, alpha2, alpha3, tau``, NTK equations ``c1, d2, d3, theta_diag``, refined
NTK equations ``c1, theta_diag, c5, theta_slope`` (odd DEQ activations, docs/theory.md
§5.3).  :func:`design_outputs` evaluates the network's side through the one layer map of
:mod:`rmt_deq.kernels.explicit_surrogate`, for floats or dual numbers.

Each equation is judged on its own scale (:meth:`DesignTarget.relative_errors`): its matrix
in the surrogate scales like tau0^d_k (``DATA_POWERS``), so the target in the units of data
scale 1 is T_k tau0^(d_k - 2), and an equation whose target is below ``EQUATION_FLOOR`` of
the kernel scale (an odd DEQ's zeros) is measured against that fraction of it.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._validation import check_choice, check_groups, check_positive_finite
from rmt_deq.activations import ActivationLike
from rmt_deq.design._dual import value
from rmt_deq.design._fields import fail, keys, mapping, number, numbers, string, kind_of
from rmt_deq.design.layers import layer_moment_fn
from rmt_deq.errors import InvalidParameterError, InvalidRecordError, RmtDeqError, \
    UnknownOptionError
from rmt_deq.fixed_point.four_equations import FixedPointSolution, solve_four_equations
from rmt_deq.kernels.explicit_surrogate import LayerMoments, layer_recursion
from rmt_deq.kernels.ntk_surrogate import ntk_group_coefficients
from rmt_deq.networks.explicit import ExplicitLayer, ExplicitNetwork

__all__ = ["TARGETS", "EQUATIONS", "REFINED_EQUATIONS", "DATA_POWERS", "EQUATION_FLOOR",
           "MIN_KERNEL_SCALE", "TARGET_KEYS", "check_design_scale", "unit_scaled",
           "DesignTarget", "design_target", "target_from_dict", "design_outputs",
           "explicit_equations", "check_explicit_groups"]

TARGETS = ("ck", "ntk")
EQUATIONS = {"ck": ("alpha1", "alpha2", "alpha3", "tau"),
             "ntk": ("c1", "d2", "d3", "theta_diag")}
#: equations of a refined NTK target (``design_target(..., target="ntk", refine=True)``)
REFINED_EQUATIONS = ("c1", "theta_diag", "c5", "theta_slope")
#: the keys of a target's record (:meth:`DesignTarget.as_dict`), besides ``refine``
TARGET_KEYS = ("kind", "equations", "values", "tau0", "activation", "sa", "sb",
               "ntk_groups")
#: |d2|, |d3| of an odd DEQ's NTK target, relative to the kernel scale, below which they
#: are rounding (a refined target needs an odd DEQ activation)
_ODD_TOL = 1e-12
_NTK_DEQ_GROUPS = ("v", "A", "B")


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
        Data scale sqrt(tr C°/p) (the explicit network's input scale).  tau0^2 and
        1/tau0^2 must be finite normal float64 numbers (tau0 within about
        1.5e-154 .. 1.3e154).
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
        and the two refinement coefficients of docs/theory.md §5.3,
        c5 (x_i.x_j)(delta_i + delta_j) and theta_slope delta_i.

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
        if not kappa >= MIN_KERNEL_SCALE:
            raise InvalidParameterError(
                f"the target {dict(zip(self.equations, vals))} at tau0 = {self.tau0:g} has "
                f"kernel scale {kappa:.3g} (max_k |T_k| tau0^(d_k - 2)), which is zero or "
                f"below {MIN_KERNEL_SCALE:g}: there is no kernel to match; check the "
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
        return unit_scaled(self.values, self.data_powers, self.tau0)

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
            err = np.abs(np.asarray(unit_scaled(F - np.asarray(self.values),
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
        return target_from_dict(d, "design target record")


#: how equation k's matrix scales with the data scale: tau0^DATA_POWERS[k] (X^T X: 2; the


#: how equation k's matrix scales with the data scale: tau0^DATA_POWERS[k] (X^T X: 2; the
#: t t^T and T blocks and (x_i.x_j)(delta_i + delta_j): 4; the identity: 0; delta_i: 2)
DATA_POWERS = {"alpha1": 2, "alpha2": 4, "alpha3": 4, "tau": 0,
               "c1": 2, "d2": 4, "d3": 4, "theta_diag": 0, "c5": 4, "theta_slope": 2}
#: an equation whose target is below this fraction of the kernel scale is measured against
#: that fraction of the kernel scale (``DesignTarget.relative_errors``); with the default
#: tol = 1e-10 it accepts the rounding (~1e-13 of the kernel) of an odd DEQ's zeros
EQUATION_FLOOR = 1e-3
#: the smallest kernel scale of a target: its floor (EQUATION_FLOOR of it) stays a normal
#: float64 number
MIN_KERNEL_SCALE = sys.float_info.min / EQUATION_FLOOR


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


def unit_scaled(values: Sequence[float], powers: Sequence[int], tau0: float) -> tuple:
    """``values`` in the units of data scale 1: values_k tau0^(powers_k - 2) (powers in
    {0, 2, 4}: one multiplication or division by tau0^2, no power that could overflow on
    its own)."""
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
        the refinement coefficients c5 and theta_slope (docs/theory.md §5.3) whose matrices
        vanish only like sqrt(log p / p).  A network matching them has the DEQ's refined
        surrogate, so its exact NTK approaches the DEQ's faster in p (docs/design.md).
        Needs an odd design family (``"htanhlin2"``, or a ParametricFamily with
        ``odd=True``).

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
        groups = check_groups(_NTK_DEQ_GROUPS if ntk_groups is None else ntk_groups,
                              _NTK_DEQ_GROUPS)
        tot = ntk_group_coefficients(sol, groups)["total"]
        vals = (tot.c1, tot.d2, tot.d3, tot.theta_diag)
        if refine:
            unit = np.abs(unit_scaled(vals, [DATA_POWERS[e] for e in EQUATIONS["ntk"]],
                                       float(sol.tau0)))
            if unit[1] > _ODD_TOL * unit.max() or unit[2] > _ODD_TOL * unit.max():
                raise InvalidParameterError(
                    f"refine=True needs an odd DEQ activation (NTK d2 = d3 = 0); "
                    f"{sol.activation} has d2 = {tot.d2:.6g}, d3 = {tot.d3:.6g}")
            vals = (tot.c1, tot.theta_diag, tot.c5, tot.theta_slope)
    return DesignTarget(kind=target, values=tuple(float(v) for v in vals),
                        tau0=float(sol.tau0), activation=sol.activation, sa=sa_f, sb=sb_f,
                        ntk_groups=groups, solution=sol, refine=bool(refine))


def target_from_dict(d: Any, source: str = "design target record") -> Any:
    """A :class:`DesignTarget` from its ``as_dict``, every field checked.

    Raises
    ------
    InvalidRecordError
        A missing, unknown or ill-typed key, or values that are not a valid target.
    """
    where = "target"
    d = mapping(d, source, where)
    keys(d, source, where, TARGET_KEYS, ("refine",))
    kind = string(d["kind"], source, "target.kind")
    if kind not in TARGETS:
        raise fail(source, f"target.kind {kind!r} is not one of {TARGETS}")
    refine = d.get("refine", False)
    if not isinstance(refine, bool):
        raise fail(source, f"target.refine must be true or false, got {kind_of(refine)}")
    names = REFINED_EQUATIONS if refine else EQUATIONS[kind]
    if d["equations"] != list(names):
        raise fail(source, f"target.equations must be {list(names)} for a "
                            f"{'refined ' if refine else ''}{kind} target, got "
                            f"{d['equations']!r}")
    values = numbers(d["values"], source, "target.values", 4)
    activation = d["activation"]
    if activation is not None:
        string(activation, source, "target.activation")
    sa = number(d["sa"], source, "target.sa", allow_nan=True)
    sb = number(d["sb"], source, "target.sb", allow_nan=True)
    for key, v in (("sa", sa), ("sb", sb)):
        if not (math.isnan(v) or v > 0):
            raise fail(source, f"target.{key} must be > 0 (or NaN for a user-given "
                                f"target), got {v!r}")
    groups = d["ntk_groups"]
    if not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
        raise fail(source, f"target.ntk_groups must be an array of group names, got "
                            f"{kind_of(groups)}")
    try:
        return DesignTarget(kind=kind, values=values,
                            tau0=number(d["tau0"], source, "target.tau0", positive=True),
                            activation=activation, sa=sa, sb=sb, ntk_groups=tuple(groups),
                            refine=refine)
    except InvalidRecordError:
        raise
    except RmtDeqError as exc:
        raise fail(source, f"the target is not valid: {exc}") from None


def design_outputs(moment_fns: Sequence[Callable[[Any], tuple]], q0: Any, kind: str,
                   groups: Sequence[str] | None = None, refine: bool = False) -> list:
    """(alpha1, alpha2, alpha3, tau^2) of K_L, or (c1, d2, d3, theta_diag) of the NTK summed
    over ``groups`` (None: all), or with ``refine`` (c1, theta_diag, c5, theta_slope).

    ``moment_fns[l](q)`` gives (g1, g2, g4, V0, h0) of layer l + 1 at input variance q,
    followed by (e1 e3, h2) for ``refine`` (floats or dual numbers); the layer map is
    :func:`rmt_deq.kernels.explicit_surrogate.layer_recursion` (docs/theory.md §6.2-§6.3).
    """
    moments, q = [], q0
    for mf in moment_fns:
        m = mf(q)
        moments.append(LayerMoments(*m[:5], *(m[5:7] if refine else ())))
        q = m[3]
    Ks, coefs = layer_recursion(moments, q0, ("v",) if kind == "ck" else groups)
    if kind == "ck":
        return list(Ks[-1][:4])
    total = [0.0] * 6
    for c in coefs.values():
        total = [t + ci for t, ci in zip(total, c)]
    if refine:
        return [total[0], total[3], total[4], total[5]]
    return total[:4]


def explicit_equations(network: ExplicitNetwork | Sequence[ExplicitLayer], tau0: float,
                       target: str = "ck", *, explicit_groups: Iterable[str] | None = None,
                       refine: bool = False) -> tuple:
    """The four design quantities of a designed explicit network (docs/theory.md §6.4).

    Parameters
    ----------
    network : ExplicitNetwork or sequence of ExplicitLayer
        Designed layers (:func:`rmt_deq.design.layers.make_layer`).
    tau0 : float
    target : {"ck", "ntk"}
    explicit_groups : iterable of {"v", "W1", ..., "WL"}, optional
        NTK groups (default all).
    refine : bool
        NTK only: return (c1, theta_diag, c5, theta_slope) (``REFINED_EQUATIONS``) instead.

    Returns
    -------
    tuple of 4 floats, in the order of ``EQUATIONS[target]`` (or ``REFINED_EQUATIONS``)

    Raises
    ------
    InvalidParameterError
        ``refine`` or ``explicit_groups`` with a CK target, or ``refine`` with a layer kind that
        has no closed-form refined moments here (pwlinear, hermite).
    """
    check_choice(target, "target", TARGETS)
    if not isinstance(refine, bool):
        raise InvalidParameterError(f"refine must be True or False, got {refine!r}")
    if refine and target != "ntk":
        raise InvalidParameterError("refine=True applies to target='ntk' only")
    if explicit_groups is not None and target != "ntk":
        raise InvalidParameterError("explicit_groups applies to target='ntk' only (the CK has "
                                    "no parameter groups)")
    layers = network.layers if isinstance(network, ExplicitNetwork) else tuple(network)
    fns = [layer_moment_fn(layer, refine) for layer in layers]
    groups = None if explicit_groups is None else check_explicit_groups(explicit_groups,
                                                                        len(layers))
    return tuple(float(value(v)) for v in design_outputs(fns, float(tau0) ** 2, target,
                                                         groups, refine))


def check_explicit_groups(groups: Iterable[str], L: int) -> tuple:
    """A selection of an L-layer explicit network's NTK groups ("v", "W1".."WL") in
    canonical order (UnknownOptionError for an unknown or empty selection)."""
    names = ("v",) + tuple(f"W{l}" for l in range(1, L + 1))
    if isinstance(groups, str):
        groups = (groups,)
    gs = tuple(groups)
    bad = [g for g in gs if g not in names]
    if bad or not gs:
        raise UnknownOptionError(
            f"unknown explicit-network NTK group(s) {bad or gs}; choose from {names}")
    return tuple(g for g in names if g in gs)
