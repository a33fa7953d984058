"""Activation functions and their registry.

An :class:`Activation` bundles everything the rest of the package needs to know about a
nonlinearity phi:

* ``fn`` / ``d1``: vectorised numpy implementations of phi and phi' (phi' almost everywhere
  for kinked functions);
* ``mp_fn`` / ``mp_d1``: mpmath implementations, for the high-precision path;
* ``kinks``: the points where phi or one of its derivatives jumps (quadrature is split there);
* ``pieces``: for piecewise-polynomial activations (ReLU family, hard tanh, polynomials) the
  exact representation, from which every Gaussian moment has a closed form
  (see :mod:`rmt_deq.moments.closed_forms`);
* ``closed_form``: the name of an explicit closed form of the raw Gaussian moments
  (``"erf"``), which :mod:`rmt_deq.moments.closed_forms` implements.

Activations are obtained by name with :func:`get_activation`, e.g. ``"relu"``,
``"leaky_relu:0.1"``, ``"hard_tanh:1,1"``, ``"polynomial:0,1,0.5"``, or wrapped from a user
callable with :meth:`Activation.from_callable`.  A spec string is resolved once: the
registry interns its Activation (the same object for the same spec), so what the engines
cache per activation (moment tables, Taylor series) is shared by every use of the spec.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, Union

import mpmath as mp
import numpy as np
from numpy.polynomial import polynomial as P
from scipy import special

from rmt_deq._validation import check_finite_real, check_positive_real
from rmt_deq.errors import InvalidParameterError, UnknownActivationError

__all__ = ["Activation", "PolyPiece", "piecewise_activation", "get_activation",
           "register_activation", "available_activations", "ActivationLike"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PolyPiece:
    """phi(x) = sum_k coeffs[k] x**k on the open interval (lo, hi); lo/hi may be +-inf."""

    lo: float
    hi: float
    coeffs: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class Activation:
    """A scalar nonlinearity phi with what the Gaussian-moment engines need.

    Use :func:`get_activation` or :meth:`from_callable` rather than the constructor.

    Attributes
    ----------
    name : str
        Canonical spec string (``"leaky_relu:0.1"``); ``get_activation(name)`` rebuilds it.
    fn, d1 : callable
        numpy ufunc-like phi and phi' (float64 arrays in and out, any shape).
    mp_fn, mp_d1 : callable or None
        mpmath versions (scalar in, scalar out); ``None`` disables the mpmath path.
    kinks : tuple of float
        Points (in the preactivation variable x) where phi is not smooth.
    scale : float
        Characteristic length of phi in x (where it bends); used to place quadrature panels.
    pieces : tuple of PolyPiece or None
        Exact piecewise-polynomial representation, if any (enables closed forms).
    closed_form : str or None
        Name of the closed form of the raw moments in
        :data:`rmt_deq.moments.closed_forms.CLOSED_FORMS` (``"erf"``), if any.
    odd : bool
        True when phi(-x) = -phi(x) (then E[phi] = E[phi''] = 0 and g2 = 0).
    fn_shift, d1_shift : callable or None
        phi(x) - phi(0) and phi'(x) - phi'(0) evaluated without cancelling against phi(0),
        phi'(0) (e.g. tanh(x/2)/2 for the sigmoid); ``None``: plain subtraction.  The
        quadrature engine integrates these, so that small scales keep their digits.
    d1_error : callable or None
        An estimate of the absolute error of ``d1`` at x when phi' is only known
        numerically (a user callable without a derivative and without complex support);
        ``None`` when ``d1`` is accurate to a few ulps.  The moment engines propagate it
        into their error estimates.
    """

    name: str
    fn: ArrayFn
    d1: ArrayFn
    mp_fn: Callable[[Any], Any] | None = None
    mp_d1: Callable[[Any], Any] | None = None
    kinks: tuple[float, ...] = ()
    scale: float = 1.0
    pieces: tuple[PolyPiece, ...] | None = None
    closed_form: str | None = None
    odd: bool = False
    params: tuple[float, ...] = field(default=())
    fn_shift: ArrayFn | None = None
    d1_shift: ArrayFn | None = None
    d1_error: ArrayFn | None = None

    def __call__(self, x: Any) -> np.ndarray:
        """phi(x), elementwise, float64."""
        return self.fn(np.asarray(x, dtype=float))

    def derivative(self, x: Any) -> np.ndarray:
        """phi'(x), elementwise (almost everywhere for kinked activations)."""
        return self.d1(np.asarray(x, dtype=float))

    @property
    def has_closed_form(self) -> bool:
        """Whether the one-dimensional Gaussian moments have an exact closed form."""
        return self.pieces is not None or self.closed_form is not None

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"Activation({self.name!r})"

    @classmethod
    def from_callable(cls, fn: ArrayFn, *, name: str | None = None,
                      derivative: ArrayFn | None = None, kinks: Iterable[float] = (),
                      scale: float = 1.0, mp_fn: Callable[[Any], Any] | None = None,
                      mp_derivative: Callable[[Any], Any] | None = None,
                      odd: bool = False) -> "Activation":
        """Wrap a user function phi (numpy in, numpy out) as an :class:`Activation`.

        Parameters
        ----------
        fn : callable
            phi, applied elementwise to float64 arrays: it must return a real array of the
            input's shape (a scalar for an array input is refused -- for a constant
            activation return ``np.full_like(x, c)``; complex or non-numeric output is
            refused).  It is evaluated once on a few points here, so a function that does
            not behave fails at once.
        derivative : callable, optional
            phi'.  If omitted it is computed by complex-step differentiation when ``fn``
            accepts complex input (exact to rounding for real-analytic phi), otherwise by a
            Richardson-extrapolated central difference, whose error is estimated
            (``d1_error``): results that it would spoil raise
            :class:`~rmt_deq.errors.PrecisionLossError` rather than being returned.
        kinks : iterable of float
            Points where phi or a derivative jumps: quadrature is split there.  Omitting a
            kink silently costs digits, so list every one.
        scale : float
            Length scale on which phi bends (default 1).
        mp_fn, mp_derivative : callable, optional
            mpmath versions enabling ``method="mpmath"``; if only ``mp_fn`` is given,
            ``mpmath.diff`` provides the derivative.
        odd : bool
            Declare phi odd (used only for reporting/centring shortcuts).

        Raises
        ------
        UnknownActivationError
            ``fn`` (or ``derivative``) is not callable, raises on a float64 array, or
            returns something other than a real array of the input's shape.
        """
        if not callable(fn):
            raise UnknownActivationError(
                f"activation must be a name or a callable, got {type(fn).__name__}")
        if derivative is not None and not callable(derivative):
            raise UnknownActivationError(
                f"derivative must be a callable (phi' on float64 arrays) or None, got "
                f"{type(derivative).__name__}")
        label = name or getattr(fn, "__name__", "custom")
        try:
            kinks_t = tuple(sorted(float(k) for k in kinks))
        except (TypeError, ValueError):
            kinks_t = (math.nan,)
        if not all(math.isfinite(k) for k in kinks_t):
            raise InvalidParameterError(f"kinks must be finite numbers, got {kinks!r}")
        check_positive_real(scale, "scale")
        phi = _as_float_fn(fn, label, "activation")
        _probe(phi)
        d1_error = None
        if derivative is not None:
            d1 = _as_float_fn(derivative, label, "derivative")
            _probe(d1)
        else:
            d1, d1_error = _numerical_derivative(fn, phi)
        if mp_fn is not None and mp_derivative is None:
            mp_derivative = lambda x, f=mp_fn: mp.diff(f, x)  # noqa: E731
        return cls(name=label, fn=phi, d1=d1, mp_fn=mp_fn, mp_d1=mp_derivative,
                   kinks=kinks_t, scale=float(scale), odd=odd, d1_error=d1_error)


ActivationLike = Union[str, Activation, Callable[[np.ndarray], np.ndarray]]


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
#: points on which a user callable is tried when it is wrapped
_PROBE = np.array([-2.5, -0.3, 0.0, 0.7, 3.0])


def _as_float_fn(fn: Callable, label: str, role: str) -> ArrayFn:
    """Wrap a user callable so that it returns a real float64 array of its input's shape.

    Refuses (UnknownActivationError, naming ``label`` and ``role``) a result that is None or
    not numeric, complex with a non-zero imaginary part (a real activation is needed; the
    complex-step derivative calls the raw ``fn``, not this wrapper), or of another shape
    (a scalar for an array input: no broadcasting, since a reduction such as ``np.sum``
    would otherwise pass as a constant).
    """
    def wrapped(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        try:
            out = fn(x)
        except Exception as exc:  # noqa: BLE001 - reported with what was being evaluated
            raise UnknownActivationError(
                f"the {role} of {label!r} raised {type(exc).__name__} ({exc}) on a float64 "
                f"array of shape {x.shape}; it must accept numpy arrays and apply "
                f"elementwise (use np.tanh, np.where... rather than math functions and "
                f"if-statements)") from exc
        if out is None:
            raise UnknownActivationError(
                f"the {role} of {label!r} returned None; it must return an array of the "
                f"input's shape (did the function forget to `return`?)")
        arr = np.asarray(out)
        if arr.dtype.kind == "c":
            if np.any(arr.imag != 0):
                raise UnknownActivationError(
                    f"the {role} of {label!r} returned complex values on real input; an "
                    f"activation must be real-valued (return the real quantity you mean, "
                    f"e.g. np.real(...) or np.abs(...), explicitly)")
            arr = arr.real
        if arr.dtype.kind not in "biuf":
            raise UnknownActivationError(
                f"the {role} of {label!r} returned {type(out).__name__} of dtype "
                f"{arr.dtype} on a float64 array; it must return real numbers")
        if arr.shape != x.shape:
            hint = (" (a scalar: for a constant activation return np.full_like(x, c))"
                    if arr.ndim == 0 else "")
            raise UnknownActivationError(
                f"the {role} of {label!r} returned shape {arr.shape}{hint} for an input of "
                f"shape {x.shape}; it must apply elementwise and keep the shape")
        return arr.astype(float, copy=False)

    wrapped.__name__ = getattr(fn, "__name__", "phi")
    return wrapped


def _probe(fn: ArrayFn) -> None:
    """Evaluate a wrapped callable once (fails early with the wrapper's message)."""
    with np.errstate(all="ignore"):
        fn(_PROBE)


def _numerical_derivative(fn: Callable, phi: ArrayFn) -> tuple[ArrayFn, ArrayFn | None]:
    """phi' by complex step if phi accepts complex numbers, else Richardson central diff.

    Returns ``(d1, d1_error)``: ``d1_error`` is None for the complex step (accurate to a few
    ulps for real-analytic phi) and, for the central difference, an estimate of its absolute
    error at x: the change from the fourth- to the sixth-order extrapolation (truncation)
    plus the rounding of the differences, 2 eps max|phi| / h (the extrapolation weights
    sum to 1.65 times the rounding of a single difference).
    """
    probe = np.array([0.3, -1.1, 2.0])
    complex_ok = False
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(probe + 1e-30j))
        if np.iscomplexobj(out) and out.shape == probe.shape and np.all(np.isfinite(out)):
            h = 1e-6
            fd = (phi(probe + h) - phi(probe - h)) / (2 * h)
            cs = out.imag / 1e-30
            complex_ok = bool(np.allclose(cs, fd, rtol=1e-5, atol=1e-7))
    except Exception:  # noqa: BLE001 - any failure means "no complex support"
        complex_ok = False
    if complex_ok:
        def d1(x: np.ndarray) -> np.ndarray:
            return np.asarray(fn(np.asarray(x, float) + 1e-30j)).imag / 1e-30

        return d1, None

    def _richardson(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, float)
        h = 1e-3 * np.maximum(1.0, np.abs(x))
        fp = [phi(x + k * h) for k in (1, 2, 4)]
        fm = [phi(x - k * h) for k in (1, 2, 4)]
        d_h = (fp[0] - fm[0]) / (2 * h)
        d_2h = (fp[1] - fm[1]) / (4 * h)
        d_4h = (fp[2] - fm[2]) / (8 * h)
        r1 = (4 * d_h - d_2h) / 3
        r2 = (4 * d_2h - d_4h) / 3
        best = (16 * r1 - r2) / 15
        size = np.max(np.abs(np.stack(fp + fm)), axis=0)
        return best, np.abs(best - r1) + 2.0 * _EPS * size / h

    def d1(x: np.ndarray) -> np.ndarray:
        return _richardson(x)[0]

    def d1_error(x: np.ndarray) -> np.ndarray:
        return _richardson(x)[1]

    return d1, d1_error


_EPS = float(np.finfo(float).eps)


def _pieces_fn(pieces: Sequence[PolyPiece]) -> tuple[ArrayFn, ArrayFn, Callable, Callable]:
    """numpy and mpmath evaluators of a piecewise polynomial and of its derivative."""
    derivs = [P.polyder(np.array(pc.coeffs, float)) if len(pc.coeffs) > 1 else np.zeros(1)
              for pc in pieces]

    def fn(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        out = np.zeros_like(x)
        for pc in pieces:
            mask = (x > pc.lo) & (x <= pc.hi) if math.isfinite(pc.lo) else x <= pc.hi
            out = np.where(mask, P.polyval(x, np.array(pc.coeffs, float)), out)
        return out

    def d1(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        out = np.zeros_like(x)
        for pc, dc in zip(pieces, derivs):
            mask = (x > pc.lo) & (x <= pc.hi) if math.isfinite(pc.lo) else x <= pc.hi
            out = np.where(mask, P.polyval(x, dc), out)
        return out

    def _mp_poly(c: Sequence[float], x: Any) -> Any:
        return mp.polyval([mp.mpf(ci) for ci in reversed(list(c))], x) if len(c) else mp.mpf(0)

    def mp_fn(x: Any) -> Any:
        for pc in pieces:
            if x <= pc.hi:
                return _mp_poly(pc.coeffs, x)
        return _mp_poly(pieces[-1].coeffs, x)

    def mp_d1(x: Any) -> Any:
        for pc, dc in zip(pieces, derivs):
            if x <= pc.hi:
                return _mp_poly(list(dc), x)
        return _mp_poly(list(derivs[-1]), x)

    return fn, d1, mp_fn, mp_d1


def piecewise_activation(name: str, pieces: Sequence[PolyPiece], *, fn: ArrayFn | None = None,
                         d1: ArrayFn | None = None, odd: bool = False,
                         params: tuple[float, ...] = (), scale: float = 1.0) -> Activation:
    """The :class:`Activation` of a piecewise polynomial (exact ``pieces``: closed-form
    moments; kinks at the piece boundaries; mpmath evaluators built from the pieces).

    ``fn``, ``d1`` replace the numpy evaluators built from the pieces (faster forms of the
    same function, e.g. ``np.maximum(x, 0)`` for relu); they must agree with the pieces.
    """
    pfn, pd1, mfn, md1 = _pieces_fn(pieces)
    kinks = tuple(pc.hi for pc in pieces[:-1])
    return Activation(name=name, fn=fn or pfn, d1=d1 or pd1, mp_fn=mfn, mp_d1=md1,
                      kinks=kinks, scale=scale, pieces=tuple(pieces), odd=odd, params=params)


_INF = math.inf
_SQRT_PI = math.sqrt(math.pi)


# ----------------------------------------------------------------------------------------
# built-in activations (factories take the spec parameters as floats)
# ----------------------------------------------------------------------------------------
def _num(x: float) -> str:
    """Shortest text that parses back to exactly ``x`` (names must rebuild the activation)."""
    short = f"{float(x):g}"
    return short if float(short) == float(x) else repr(float(x))


def _relu() -> Activation:
    return piecewise_activation(
        "relu", [PolyPiece(-_INF, 0.0, (0.0,)), PolyPiece(0.0, _INF, (0.0, 1.0))],
        fn=lambda x: np.maximum(x, 0.0), d1=lambda x: (x > 0).astype(float))


def _leaky_relu(slope: float = 0.01) -> Activation:
    check_finite_real(slope, "leaky_relu slope")
    s = float(slope)
    return piecewise_activation(
        f"leaky_relu:{_num(s)}",
        [PolyPiece(-_INF, 0.0, (0.0, s)), PolyPiece(0.0, _INF, (0.0, 1.0))],
        fn=lambda x: np.where(x > 0, x, s * x), d1=lambda x: np.where(x > 0, 1.0, s),
        params=(s,))


def _hard_tanh(a: float = 1.0, c: float = 1.0) -> Activation:
    check_finite_real(a, "hard_tanh gain a")
    check_positive_real(c, "hard_tanh clip level c")
    a, c = float(a), float(c)
    return piecewise_activation(
        f"hard_tanh:{_num(a)},{_num(c)}",
        [PolyPiece(-_INF, -c, (-a * c,)), PolyPiece(-c, c, (0.0, a)), PolyPiece(c, _INF, (a * c,))],
        fn=lambda x: a * np.clip(x, -c, c), d1=lambda x: np.where(np.abs(x) < c, a, 0.0),
        odd=True, params=(a, c), scale=c)


def _polynomial(*coeffs: float) -> Activation:
    if len(coeffs) == 0:
        raise UnknownActivationError(
            "polynomial needs its coefficients, lowest degree first, e.g. 'polynomial:0,1,0.5'")
    for c in coeffs:
        check_finite_real(c, "polynomial coefficient")
    cs = tuple(float(c) for c in coeffs)
    arr = np.array(cs)
    odd = bool(np.all(arr[0::2] == 0))
    return piecewise_activation(
        "polynomial:" + ",".join(_num(c) for c in cs), [PolyPiece(-_INF, _INF, cs)],
        fn=lambda x: P.polyval(x, arr),
        d1=lambda x: P.polyval(x, P.polyder(arr)) if len(arr) > 1 else np.zeros_like(x),
        odd=odd, params=cs)


def _quadratic(a: float = 0.0, b: float = 1.0) -> Activation:
    """phi(t) = a t + b t^2."""
    check_finite_real(a, "quadratic a")
    check_finite_real(b, "quadratic b")
    act = _polynomial(0.0, float(a), float(b))
    return dataclasses.replace(act, name=f"quadratic:{_num(a)},{_num(b)}")


def _tanh() -> Activation:
    return Activation("tanh", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, mp.tanh,
                      lambda x: 1 / mp.cosh(x) ** 2, odd=True,
                      d1_shift=lambda x: -np.tanh(x) ** 2)


def _erf() -> Activation:
    return Activation("erf", special.erf, lambda x: 2.0 / _SQRT_PI * np.exp(-x * x), mp.erf,
                      lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x),
                      closed_form="erf", odd=True,
                      d1_shift=lambda x: 2.0 / _SQRT_PI * np.expm1(-x * x))


def _mp_sigmoid(x: Any) -> Any:
    return 1 / (1 + mp.exp(-x))


def _sigmoid() -> Activation:
    # sigmoid(x) - 1/2 = tanh(x/2)/2 and sigmoid'(x) - 1/4 = -tanh(x/2)^2/4, exactly
    return Activation("sigmoid", special.expit, lambda x: special.expit(x) * special.expit(-x),
                      _mp_sigmoid, lambda x: _mp_sigmoid(x) * _mp_sigmoid(-x),
                      fn_shift=lambda x: 0.5 * np.tanh(0.5 * x),
                      d1_shift=lambda x: -0.25 * np.tanh(0.5 * x) ** 2)


def _swish() -> Activation:
    def d1(x: np.ndarray) -> np.ndarray:
        s = special.expit(x)
        return s + x * s * special.expit(-x)

    return Activation("swish", lambda x: x * special.expit(x), d1,
                      lambda x: x * _mp_sigmoid(x),
                      lambda x: _mp_sigmoid(x) + x * _mp_sigmoid(x) * _mp_sigmoid(-x),
                      d1_shift=lambda x: (0.5 * np.tanh(0.5 * x)
                                          + x * special.expit(x) * special.expit(-x)))


def _gelu() -> Activation:
    return Activation(
        "gelu", lambda x: x * special.ndtr(x),
        lambda x: special.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi),
        lambda x: x * mp.ncdf(x),
        lambda x: mp.ncdf(x) + x * mp.npdf(x),
        d1_shift=lambda x: (0.5 * special.erf(x / math.sqrt(2.0))
                            + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)))


def _elu(alpha: float = 1.0) -> Activation:
    check_finite_real(alpha, "elu alpha")
    al = float(alpha)
    return Activation(
        f"elu:{_num(al)}", lambda x: np.where(x > 0, x, al * np.expm1(np.minimum(x, 0.0))),
        lambda x: np.where(x > 0, 1.0, al * np.exp(np.minimum(x, 0.0))),
        lambda x: x if x > 0 else al * mp.expm1(x),
        lambda x: mp.mpf(1) if x > 0 else al * mp.exp(x), kinks=(0.0,), params=(al,),
        # phi'(0) = alpha (the x <= 0 branch): phi' - alpha = alpha expm1(x) for x <= 0
        d1_shift=lambda x: np.where(x > 0, 1.0 - al, al * np.expm1(np.minimum(x, 0.0))))


def _softplus_shift(x: np.ndarray) -> np.ndarray:
    """softplus(x) - log 2 = log1p(expm1(x)/2), without cancellation near 0."""
    x = np.asarray(x, float)
    small = np.abs(x) < 1.0
    with np.errstate(over="ignore"):
        near = np.log1p(0.5 * np.expm1(np.where(small, x, 0.0)))
    return np.where(small, near, np.logaddexp(0.0, x) - math.log(2.0))


def _softplus() -> Activation:
    return Activation("softplus", lambda x: np.logaddexp(0.0, x), special.expit,
                      lambda x: mp.log1p(mp.exp(x)), _mp_sigmoid,
                      fn_shift=_softplus_shift, d1_shift=lambda x: 0.5 * np.tanh(0.5 * x))


_REGISTRY: dict[str, Callable[..., Activation]] = {
    "relu": _relu, "leaky_relu": _leaky_relu, "hard_tanh": _hard_tanh, "tanh": _tanh,
    "erf": _erf, "sigmoid": _sigmoid, "swish": _swish, "silu": _swish, "gelu": _gelu,
    "elu": _elu, "softplus": _softplus, "quadratic": _quadratic, "polynomial": _polynomial,
}


#: interned activations: (factory, exact bits of each parameter) -> Activation (keyed by
#: the factory object: a replaced name cannot return a stale activation)
_INTERNED: dict[tuple, Activation] = {}
#: resolved spec strings -> (registry name, factory, Activation), used while the registry
#: still maps the name to that factory
_SPECS: dict[str, tuple[str, Callable[..., Activation], Activation]] = {}


def available_activations() -> list[str]:
    """Names accepted by :func:`get_activation` (parameters go after a colon)."""
    return sorted(_REGISTRY)


def register_activation(name: str, factory: Callable[..., Activation], *,
                        overwrite: bool = False) -> None:
    """Add ``factory(*float_params) -> Activation`` to the registry under ``name``.

    ``factory`` must return an :class:`Activation` (e.g. built with
    :meth:`Activation.from_callable`); :func:`get_activation` checks that it does.
    Replacing a name (``overwrite=True``) drops the interned activations, so the next
    :func:`get_activation` builds from the new factory.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidParameterError(f"activation name must be an identifier, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise InvalidParameterError(
            f"activation {name!r} is already registered; pass overwrite=True to replace it")
    if not callable(factory):
        raise UnknownActivationError(
            f"the factory registered as {name!r} must be callable (float parameters -> "
            f"Activation), got {type(factory).__name__}")
    _REGISTRY[name] = factory
    _INTERNED.clear()
    _SPECS.clear()


def get_activation(spec: ActivationLike) -> Activation:
    """Return an :class:`Activation` from a spec string, an Activation, or a callable.

    Spec strings are ``"name"`` or ``"name:p1,p2,..."`` (e.g. ``"leaky_relu:0.1"``,
    ``"hard_tanh:1,1"`` for a*clip(t,-c,c), ``"quadratic:a,b"`` for a t + b t^2,
    ``"polynomial:c0,c1,c2"`` lowest degree first).  The activation of a spec is built
    once and interned: the same spec (up to case, spaces and the spelling of its numbers)
    returns the same object, so resolving it again costs a dictionary lookup.  An
    Activation is returned as is; a callable is wrapped by
    :meth:`Activation.from_callable` (a new object per call).

    Raises
    ------
    UnknownActivationError
        Unknown name or unparsable parameters; the message lists the known names.
    """
    if isinstance(spec, str):
        hit = _SPECS.get(spec)
        if hit is not None and _REGISTRY.get(hit[0]) is hit[1]:
            return hit[2]
        return _resolve_spec(spec)
    if isinstance(spec, Activation):
        return spec
    if callable(spec):
        return Activation.from_callable(spec)
    raise UnknownActivationError(
        f"activation must be a name, an Activation or a callable, got {type(spec).__name__}")


def _resolve_spec(spec: str) -> Activation:
    """Parse a spec string and return its interned Activation (built on first use)."""
    name, _, arg = spec.strip().partition(":")
    name = name.strip().lower().replace("-", "_")
    if name not in _REGISTRY:
        raise UnknownActivationError(
            f"unknown activation {spec!r}; known: {', '.join(available_activations())}")
    params: list[float] = []
    if arg.strip():
        try:
            params = [float(t) for t in arg.split(",")]
        except ValueError:
            raise UnknownActivationError(
                f"cannot parse the parameters of {spec!r}: expected comma-separated numbers "
                f"after the colon, e.g. 'leaky_relu:0.1'") from None
    factory = _REGISTRY[name]
    # the exact bits of each parameter (-0.0 and 0.0 are different specs)
    key = (factory,) + tuple(float.hex(v) for v in params)
    act = _INTERNED.get(key)
    if act is None:
        try:
            act = factory(*params)
        except TypeError:
            raise UnknownActivationError(
                f"wrong number of parameters in {spec!r} for activation {name!r}") from None
        if not isinstance(act, Activation):
            raise UnknownActivationError(
                f"the factory registered as {name!r} returned {type(act).__name__}, not an "
                f"Activation; register a factory that returns one, e.g. "
                f"lambda *p: Activation.from_callable(fn, name={name!r})")
        _INTERNED[key] = act
    _SPECS[spec] = (name, factory, act)
    return act
