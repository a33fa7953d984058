"""The design solve: a network of a family whose four quantities meet a target.

:func:`design_network` minimises the relative equation errors (docs/theory.md §6.4) by
Levenberg-Marquardt with the family's Jacobian, from several starts; a target that no start
reaches raises :class:`~rmt_deq.errors.InfeasibleDesignError` with the best least-squares
point and the failing equation, diagnosed by solving the other three equations
(:func:`diagnose_failure`).  A scale-covariant family is solved at data scale 1 and kernel
scale 1 and the answer rescaled, so the solve does not depend on tau0.  Measurements of the
solver are in docs/design.md.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

import numpy as np

from rmt_deq._validation import as_rng, check_options, check_positive_int
from rmt_deq.activations import ActivationLike
from rmt_deq.design.families import DesignFamily, get_family
from rmt_deq.design.network import DesignedNetwork
from rmt_deq.design.targets import DesignTarget, check_explicit_groups, design_target, \
    unit_scaled
from rmt_deq.errors import InfeasibleDesignError, InvalidParameterError, RmtDeqError, \
    UnknownOptionError

__all__ = ["SOLVER_OPTIONS", "equation_weights", "diagnose_failure", "design_network",
           "design_for_deq", "design_record"]

#: Levenberg-Marquardt: first damping, floor of the scaling diagonal (relative to its
#: largest entry), damping at which a start is abandoned
_INITIAL_DAMPING = 1e-3
_DIAG_FLOOR = 1e-12
_MAX_DAMPING = 1e20
#: a start stops after this many accepted steps in a row that lower the cost by less than
#: _STALL_DECREASE of it (a nonzero least-squares minimum), or a step below _STEP_RTOL of x
_STALL_STEPS = 3
_STALL_DECREASE = 1e-10
_STEP_RTOL = 1e-15
#: the solve stops at the rounding level of the unit problem
_ROUNDING = 1e-15


def equation_weights(target: DesignTarget) -> np.ndarray:
    """w_k with w_k |F_k - T_k| = equation k's relative error
    (:meth:`DesignTarget.relative_errors`): w_k = tau0^(d_k - 2) / s_k."""
    return np.asarray(unit_scaled(1.0 / target.equation_scales(), target.data_powers,
                                  target.tau0))


def _levenberg_marquardt(fun: Callable, x0: np.ndarray, T: np.ndarray, w: np.ndarray,
                         max_iter: int, stop: float) -> dict:
    """Minimise sum (w (F(x) - T))^2 from x0 (Nielsen's damping update).

    Stops when max |w (F - T)| <= ``stop``, after ``max_iter`` iterations, when the damping
    exceeds ``_MAX_DAMPING``, after ``_STALL_STEPS`` accepted steps that reduce the cost by
    less than ``_STALL_DECREASE`` of it (a nonzero least-squares minimum), or when a step
    no longer moves x.  Returns the best point, its cost, residuals and iterations.
    """
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
        d = np.maximum(d, _DIAG_FLOOR * dmax)
        if lam is None:
            lam = _INITIAL_DAMPING
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
                slow = slow + 1 if cost - cn <= _STALL_DECREASE * cost else 0
                rho = (cost - cn) / pred if pred > 0 else 1.0
                lam *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                nu = 2.0
                x, r, Jw, cost = xn, rn, w[:, None] * Jn, cn
                accepted = True
            else:
                lam *= nu
                nu *= 2.0
                if lam > _MAX_DAMPING:
                    break
        if not accepted or slow >= _STALL_STEPS:
            break
        if float(np.max(np.abs(dx))) <= _STEP_RTOL * (1.0 + float(np.max(np.abs(x)))):
            break
    return {"x": x, "cost": cost, "r": r, "iterations": it}


def diagnose_failure(fam: DesignFamily, fun: Callable, T: np.ndarray, w: np.ndarray,
                      x_best: np.ndarray, det: list, tol: float, max_iter: int, stop: float,
                      target: DesignTarget, net: DesignedNetwork, tried: int
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


#: the options of :func:`design_network` (and :func:`design_for_deq`)
SOLVER_OPTIONS = ("explicit_groups", "tol", "n_starts", "max_iter", "rng", "strict")


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
    explicit_groups : iterable of {"v", "W1", ..., "WL"}, optional
        The network's NTK groups summed for an NTK target (default all).
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
    unknown = sorted(set(options) - set(SOLVER_OPTIONS))
    if unknown:
        raise UnknownOptionError(
            f"design_network got unknown option(s) {unknown}; allowed: {list(SOLVER_OPTIONS)}")
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
    groups = options.get("explicit_groups")
    if groups is not None:
        if target.kind != "ntk":
            raise InvalidParameterError("explicit_groups applies to an NTK target only")
        groups = check_explicit_groups(groups, fam.n_layers)

    t_start = time.perf_counter()
    # the problem actually solved: data scale 1, kernel scale 1 for a covariant family
    work, lam, mu = target.unit_problem() if fam.covariant else (target, 1.0, 1.0)
    T = np.asarray(work.values)
    w = equation_weights(work)
    structural = fam.structural_failure(work)
    fun = lambda x: fam.evaluate(x, work, groups)   # noqa: E731
    stop = min(tol, _ROUNDING)
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
    network = fam.build_network(params, target.tau0)
    diag = {"starts": tried, "iterations": iters, "solve_time_s": elapsed,
            "analytic_jacobian": fam.analytic, "message": "matched"}
    net = DesignedNetwork.build(fam, params, network, target, groups, tol, diag)
    if structural is not None and net.feasible:     # pragma: no cover - defensive
        structural = None
    if not net.feasible:
        if structural is not None:
            eq, why = structural
        else:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                eq, why = diagnose_failure(fam, fun, T, w, best["x"], det, tol, max_iter,
                                            stop, work, net, tried)
        net = net.with_diagnosis(eq, why)
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
    check_options(options, SOLVER_OPTIONS, "design_for_deq")
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
