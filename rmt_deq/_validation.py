"""Input validation shared by every module (one place for the messages users see).

Every validator takes the value first and its name (as the message shows it) second:
``check_x(value, name, ...)``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

import numpy as np

from rmt_deq.errors import (InvalidParameterError, MemoryBudgetError, NonFiniteInputError,
                     ShapeMismatchError, UnknownOptionError)

__all__ = ["as_data_matrix", "as_float_array", "as_real_array", "as_positive_array",
           "check_data_range", "as_labels", "as_rng", "check_choice", "check_groups",
           "check_positive_finite", "check_finite_real", "check_positive_real",
           "check_options", "check_positive_int", "check_tolerance", "check_workers",
           "DEFAULT_MAX_MEMORY", "memory_budget", "check_memory", "DPS_RANGE", "check_dps",
           "check_method_dps", "SCALE_RANGE", "check_scale", "check_variances",
           "VARIANCE_MATCH_RTOL", "same_variance", "check_bool", "split_options"]

#: default memory budget (bytes) of the computations that allocate in proportion to n^2
#: or to the width: the sampler, the exact kernels, the spectra grids
DEFAULT_MAX_MEMORY = 2 * 1024 ** 3


#: dtype kinds accepted as real numbers (float, signed and unsigned integer)
_REAL_KINDS = "fiu"
_KIND_NAMES = {"b": "boolean", "c": "complex", "O": "object (mixed Python objects)",
               "U": "string", "S": "bytes", "M": "datetime", "m": "timedelta",
               "V": "structured/void"}
_KIND_FIX = {"b": "if 0/1 values are meant, pass {name}.astype(float)",
             "c": "take {name}.real yourself if the imaginary part is round-off",
             "O": "convert every entry to a float first (numpy.asarray({name}, dtype=float))"}


def as_float_array(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a finite float64 array, refusing what would be silently changed.

    Complex arrays (numpy would drop the imaginary part with only a warning), booleans,
    strings, dates, object arrays, masked arrays with masked entries and sparse matrices
    are refused with a message that says how to convert them; integers are accepted.

    Raises
    ------
    InvalidParameterError
        A non-real dtype, a masked array with masked entries, a sparse matrix.
    NonFiniteInputError
        NaN or infinite entries (the first position is reported).
    """
    if hasattr(value, "toarray") and hasattr(value, "nnz"):
        raise InvalidParameterError(
            f"{name} is a sparse matrix ({type(value).__name__}); pass {name}.toarray()")
    if isinstance(value, np.ma.MaskedArray):
        masked = int(np.ma.count_masked(value))
        if masked:
            raise InvalidParameterError(
                f"{name} is a masked array with {masked} masked entries; fill or drop them "
                f"({name}.filled(...)) before computing with it")
        value = np.ma.getdata(value)
    arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind not in _REAL_KINDS:
        what = _KIND_NAMES.get(kind, f"dtype {arr.dtype}")
        fix = _KIND_FIX.get(kind, "pass an array of real numbers").format(name=name)
        raise InvalidParameterError(
            f"{name} has {what} entries (dtype {arr.dtype}); a real (float or integer) "
            f"array is required: {fix}")
    arr = np.asarray(arr, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = (f"row {idx[0]}, column {idx[1]}" if len(idx) == 2 else f"index {idx}")
        raise NonFiniteInputError(
            f"{name} has {int(bad.sum())} NaN/inf entries (first at {where}); remove or "
            f"impute them before computing with it")
    return arr


def as_real_array(value: Any, name: str) -> np.ndarray:
    """:func:`as_float_array` for any array argument: also a value that numpy cannot turn
    into a numeric array at all (ragged nested lists, arbitrary objects) is refused, with a
    :class:`ShapeMismatchError` naming ``name``.

    Raises
    ------
    ShapeMismatchError
        ``value`` is not an array of numbers (ragged, or not array-like).
    InvalidParameterError, NonFiniteInputError
        As :func:`as_float_array`.
    """
    try:
        return as_float_array(value, name)
    except (InvalidParameterError, NonFiniteInputError):
        raise
    except (TypeError, ValueError):
        raise ShapeMismatchError(f"{name} must be a numeric array") from None


def check_data_range(X: np.ndarray, dtype: Any = np.float64, name: str = "X") -> None:
    """Refuse data whose scale would overflow or underflow the working precision.

    The largest ``|entry|`` of every nonzero column must lie in
    ``[2**floor(e_min/5), 2**floor(e_max/5)]`` (float64: about 1.9e-62 to 2.6e61;
    float32: about 1.5e-8 to 3.4e7), so that squared column norms, their squares and sums of them over the
    samples (the data scale tau0^2, the kernel entries) stay normal numbers of ``dtype``.
    Zero columns are left to the caller (the exact kernels refuse them with their own
    message).

    Raises
    ------
    InvalidParameterError
        A column scale outside that range; the message gives the scale and the fix.
    """
    info = np.finfo(np.dtype(dtype))
    hi = 2.0 ** (info.maxexp // 5)
    lo = 2.0 ** (info.minexp // 5)
    if X.size == 0:
        return
    colmax = np.max(np.abs(X), axis=0)
    nz = colmax[colmax > 0]
    if nz.size == 0:
        return
    big, small = float(nz.max()), float(nz.min())
    hint = ("the convention is x_i = (mu_a + omega_i)/sqrt(p), whose columns have squared "
            "norm O(1): rescale X")
    if big > hi:
        raise InvalidParameterError(
            f"{name} has a column with entries as large as {big:.3g}: squared norms and "
            f"kernel entries would overflow {info.dtype} (supported column scale up to "
            f"{hi:.3g}); {hint}")
    if small < lo:
        raise InvalidParameterError(
            f"{name} has a nonzero column whose largest entry is {small:.3g}: its squared "
            f"norm would underflow {info.dtype} (supported column scale down to {lo:.3g}); "
            f"{hint}")


def as_data_matrix(X: Any, name: str = "X") -> np.ndarray:
    """Return X as a finite float64 array of shape (p, n) -- columns are samples.

    Raises
    ------
    ShapeMismatchError
        X is not two-dimensional or has an empty dimension.
    NonFiniteInputError
        X has NaN or infinite entries (their positions are reported).
    InvalidParameterError
        X is complex, boolean, object, masked or sparse (see :func:`as_float_array`), or
        its scale would overflow/underflow double precision (:func:`check_data_range`).
    """
    try:
        arr = as_float_array(X, name)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, (InvalidParameterError, NonFiniteInputError)):
            raise
        raise ShapeMismatchError(f"{name} must be a numeric p x n array") from None
    if arr.ndim != 2:
        raise ShapeMismatchError(
            f"{name} must be a 2-D array of shape (p, n) with samples as columns; "
            f"got shape {arr.shape}")
    if 0 in arr.shape:
        raise ShapeMismatchError(f"{name} has an empty dimension: shape {arr.shape}")
    check_data_range(arr, np.float64, name)
    return arr


def as_labels(labels: Any, n: int, name: str = "labels", *,
              p: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate class labels for n samples.

    Parameters
    ----------
    labels : array_like, shape (n,)
        Integers, strings, booleans or floats (classes are the distinct values in sorted
        order); complex and mixed-type object labels are refused.
    n : int
        Number of samples (columns of X).
    p : int, optional
        Number of rows of X: labels with p entries (p != n) are reported as a transposed X.

    Returns
    -------
    codes : ndarray of int, shape (n,)
        Labels mapped to 0..K-1 (in sorted order of the distinct labels).
    classes : ndarray, shape (K,)
        The distinct original labels.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        transposed = (p is not None and p != n and lab.ndim == 1 and lab.shape[0] == p)
        hint = (f"; X looks transposed: the labels have p = {p} entries, the number of "
                f"rows of X, but X must be p x n with samples as columns (pass X.T)"
                if transposed else "")
        raise ShapeMismatchError(
            f"{name} must be a 1-D array with one entry per sample (n = {n}); "
            f"got shape {lab.shape}{hint}")
    if lab.dtype.kind == "c":
        raise InvalidParameterError(
            f"{name} are complex; class labels must be integers, strings or real numbers")
    if lab.dtype.kind == "f" and not np.all(np.isfinite(lab)):
        raise NonFiniteInputError(f"{name} contains NaN/inf")
    try:
        classes, codes = np.unique(lab, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in lab.tolist()})
        raise InvalidParameterError(
            f"{name} mix types {kinds} that cannot be ordered; use one type (all "
            f"integers or all strings)") from None
    return codes.astype(int).reshape(-1), classes


def as_rng(rng: Any) -> np.random.Generator:
    """Accept an int seed, a Generator, or None (fresh entropy) and return a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        if rng is not None and rng < 0:
            raise InvalidParameterError(f"seed must be a non-negative integer, got {rng}")
        return np.random.default_rng(rng)
    raise InvalidParameterError(
        f"rng must be an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """Return value if it is one of choices, else raise UnknownOptionError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise UnknownOptionError(f"unknown {name} {value!r}; choose one of {choices}")
    return value


def check_options(options: dict, allowed: Iterable[str], where: str) -> None:
    """Reject unknown keyword options (they are never silently ignored)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UnknownOptionError(
            f"{where} got unknown option(s) {unknown}; allowed: {sorted(allowed)}")


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int if it is a positive integer (not a bool), else raise
    InvalidParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_workers(workers: Any) -> int | None:
    """Validate a thread count: ``None`` (the default) or a positive integer.

    Zero, negative or non-integer counts are refused (never coerced to 1).
    """
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers <= 0:
        raise InvalidParameterError(
            f"workers must be a positive integer (threads) or None for the default, got "
            f"{workers!r}")
    return int(workers)


def check_positive_finite(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise InvalidParameterError
    naming ``name`` (a tolerance, a data scale tau0, ...)."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(t) and t > 0):
        raise InvalidParameterError(f"{name} must be finite and > 0, got {value!r}")
    return t


def check_finite_real(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number (int or float, numpy's
    included; no strings), else raise InvalidParameterError naming ``name``."""
    if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)):
        raise InvalidParameterError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_positive_real(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (int or float, numpy's
    included; no strings), else raise InvalidParameterError naming ``name``."""
    if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)
            and value > 0):
        raise InvalidParameterError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def as_positive_array(value: Any, name: str, what: str = "") -> np.ndarray:
    """Return ``value`` (a number or an array of numbers) as a new float64 array (a copy:
    results built from it do not change with the caller's array) whose entries are all
    finite and > 0, else raise InvalidParameterError naming ``name`` (``what`` says what
    the value is, e.g. ``" (the Gaussian scale)"``).  Complex input is refused (its
    imaginary part would be dropped)."""
    if np.iscomplexobj(value):
        raise InvalidParameterError(
            f"{name}{what} must be real, got complex {value!r}; pass the real part "
            f"explicitly if the imaginary part is round-off")
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name}{what} must be a number or an array of numbers, got {value!r}") from None
    if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        raise InvalidParameterError(f"{name} must be finite and > 0{what}, got {value!r}")
    return arr


#: working precisions (decimal digits) accepted by the mpmath paths: below 20 the result is
#: not a reference for float64 (tanh-sinh quadrature keeps a few digits less than its
#: working precision, and the moments cancel more at extreme scales); above 100 one
#: four-equation solve takes minutes (its cost grows like dps^2)
DPS_RANGE = (20, 100)


def check_dps(dps: Any) -> int:
    """Return ``dps`` (the decimal digits of an mpmath computation) as an int if it is an
    integer in :data:`DPS_RANGE`, else raise InvalidParameterError."""
    lo, hi = DPS_RANGE
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
        raise InvalidParameterError(
            f"dps (the decimal digits of the mpmath computation) must be an integer in "
            f"[{lo}, {hi}], got {dps!r}")
    if not lo <= dps <= hi:
        raise InvalidParameterError(
            f"dps = {dps} is outside [{lo}, {hi}]: below {lo} digits the mpmath result is "
            f"not a float64 reference, above {hi} it costs minutes; choose dps in "
            f"[{lo}, {hi}] (50 is the default)")
    return int(dps)


def check_method_dps(dps: Any, method: str) -> int | None:
    """Validate ``dps``, the digits of ``method="mpmath"``: its default (50) or a value in
    :data:`DPS_RANGE` with that method; refused (InvalidParameterError) with any other
    method, where it would have no effect.  Returns the digits, or None for other methods."""
    if method == "mpmath":
        return check_dps(50 if dps is None else dps)
    if dps is not None:
        raise InvalidParameterError(
            f"dps = {dps!r} sets the digits of method='mpmath' only and has no effect with "
            f"method={method!r}; drop it or use method='mpmath'")
    return None


#: supported range of the data scales (tau0, and the input part sqrt(sb) tau0 of tau):
#: every moment of an activation growing at most quadratically stays far from float64
#: overflow and underflow inside it
SCALE_RANGE = (1e-50, 1e50)


def check_scale(value: float, name: str, what: str = "") -> float:
    """Raise InvalidParameterError if the positive scale ``value`` is outside
    :data:`SCALE_RANGE` (the message names ``name`` and says to rescale the data)."""
    lo, hi = SCALE_RANGE
    if not lo <= value <= hi:
        raise InvalidParameterError(
            f"{name} = {value:.3g}{what} is outside the supported range [{lo:g}, {hi:g}] "
            f"of data scales (the Gaussian moments would underflow or overflow float64); "
            f"rescale the data (X -> c X multiplies tau0 by c) into that range")
    return value


def _check_variance_range(value: float, name: str, hint: str) -> None:
    """sa, sb in SCALE_RANGE: outside, alpha2 ~ sa g2 alpha^2 under- or overflows float64
    (a subnormal sa = 1e-320 would return alpha2 with three significant digits)."""
    lo, hi = SCALE_RANGE
    if not lo <= value <= hi:
        raise InvalidParameterError(
            f"{name} = {value:.3g} is outside the supported range [{lo:g}, {hi:g}] (the "
            f"coefficients alpha2, alpha3 would underflow or overflow float64); {hint}")


def check_variances(sa: Any, sb: Any = None) -> tuple[float, float]:
    """Validate the weight variances (sa, sb) of a DEQ; sb defaults to 1 - sa.  Returns
    floats.

    Raises
    ------
    InvalidParameterError
        sa is not in (0, 1) when sb is omitted, sa <= 0, sb <= 0, either is not a finite
        number, or either (or 1 - sa) is outside :data:`SCALE_RANGE`.
    """
    try:
        sa_f = float(sa)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"sa must be a number, got {sa!r}") from None
    if not math.isfinite(sa_f) or sa_f <= 0:
        raise InvalidParameterError(
            f"sa (the variance of the recurrent weights A) must be finite and > 0, got {sa!r}")
    _check_variance_range(sa_f, "sa", "the recurrent variance of a contracting DEQ is O(1)")
    if sb is None:
        if sa_f >= 1:
            raise InvalidParameterError(
                f"sa = {sa_f:g} >= 1 leaves no variance for the input weights (sb = 1 - sa); "
                f"use sa in (0, 1) or pass sb explicitly")
        _check_variance_range(1.0 - sa_f, "sb = 1 - sa", "use sa further from 1")
        return sa_f, 1.0 - sa_f
    try:
        sb_f = float(sb)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"sb must be a number, got {sb!r}") from None
    if not math.isfinite(sb_f) or sb_f <= 0:
        raise InvalidParameterError(
            f"sb (the variance of the input weights B) must be finite and > 0, got {sb!r}")
    _check_variance_range(sb_f, "sb", "rescale the data instead (sb tau0^2 is what enters "
                          "the fixed point)")
    return sa_f, sb_f


#: two weight variances are the same (a given result was computed at the requested sa, sb)
#: when they differ by at most this, relative to max(1, |requested|)
VARIANCE_MATCH_RTOL = 1e-12


def same_variance(requested: float, given: float) -> bool:
    """Whether ``given`` (the variance a result was computed with) matches ``requested``
    to :data:`VARIANCE_MATCH_RTOL` relative to max(1, |requested|)."""
    return not abs(requested - float(given)) > VARIANCE_MATCH_RTOL * max(1.0, abs(requested))


def check_tolerance(tol: Any, name: str = "tol") -> float:
    """Return tol as a float if it is finite and > 0, else raise InvalidParameterError."""
    return check_positive_finite(tol, name)


#: what each DEQ parameter group is (for error messages)
_GROUP_HINT = "v: readout, A: recurrent weights, B: input weights"


def check_groups(groups: Any, allowed: Iterable[str]) -> tuple[str, ...]:
    """Validate a selection of NTK parameter groups; return it in the order of ``allowed``.

    Raises
    ------
    UnknownOptionError
        ``groups`` is not a sequence of names, or names a group not in ``allowed``.
    InvalidParameterError
        ``groups`` is empty.
    """
    allowed = tuple(allowed)
    hint = f" ({_GROUP_HINT})" if set(allowed) == {"v", "A", "B"} else ""
    if isinstance(groups, str):
        groups = (groups,)
    try:
        gs = tuple(groups)
    except TypeError:
        raise UnknownOptionError(
            f"groups must be a sequence of names from {allowed}, got {groups!r}") from None
    unknown = [g for g in gs if g not in allowed]
    if unknown:
        raise UnknownOptionError(
            f"unknown NTK parameter group(s) {unknown}; choose from {allowed}{hint}")
    if not gs:
        raise InvalidParameterError(f"select at least one NTK group from {allowed}")
    return tuple(g for g in allowed if g in gs)


def memory_budget(max_memory: Any) -> float:
    """Return the memory budget in bytes (``None``: :data:`DEFAULT_MAX_MEMORY`)."""
    try:
        budget = float(DEFAULT_MAX_MEMORY if max_memory is None else max_memory)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"max_memory must be a number of bytes, got {max_memory!r}") from None
    if not budget > 0:
        raise InvalidParameterError(f"max_memory must be > 0, got {max_memory!r}")
    return budget


def check_memory(needed: float, budget: float, what: str,
                 fix: str = "reduce the sizes or raise max_memory") -> None:
    """Raise :class:`MemoryBudgetError` if ``needed`` bytes exceed ``budget``.

    ``what`` names what needs the memory; ``fix`` says what the caller can change.
    """
    if needed > budget:
        raise MemoryBudgetError(
            f"{what} need about {needed / 2**20:,.0f} MiB, over the memory budget of "
            f"{budget / 2**20:,.0f} MiB (max_memory); {fix}")


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a bool if it is True or False (numpy bools too), else raise
    InvalidParameterError (a flag is never guessed from a truthy value)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def split_options(where: str, options: dict, *records: type) -> tuple:
    """Distribute keyword ``options`` over the fields of the dataclasses ``records``.

    Returns one dict per record with the options that are its fields (a name that is a
    field of several records goes to the first).  Unknown names are rejected (never
    silently ignored) with :class:`UnknownOptionError` listing the allowed ones.
    """
    names = [tuple(f.name for f in dataclasses.fields(r)) for r in records]
    check_options(options, [n for ns in names for n in ns], where)
    taken: set = set()
    parts = []
    for ns in names:
        part = {k: options[k] for k in ns if k in options and k not in taken}
        taken.update(part)
        parts.append(part)
    return tuple(parts)
