"""Typed access to the fields of a saved design record (JSON), shared by the design modules.

Every problem raises :class:`~rmt_deq.errors.InvalidRecordError` naming the record, the key
and the fix; nothing here raises KeyError, TypeError or a decoding error.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from rmt_deq.errors import InvalidRecordError

__all__ = ["RESAVE", "fail", "kind_of", "mapping", "keys", "number", "string", "numbers",
           "named_numbers"]

#: how a message says to repair a record
RESAVE = "re-create it with DesignedNetwork.save (or rmt-deq design --out)"


def fail(source: str, problem: str, fix: str = RESAVE) -> InvalidRecordError:
    """The error of a record field: "<source>: <problem>; <fix>"."""
    return InvalidRecordError(f"{source}: {problem}; {fix}")


def mapping(value: Any, source: str, key: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise fail(source, f"{key} must be a JSON object, got {kind_of(value)}")
    return value


def kind_of(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r:.60})"


def keys(d: Mapping, source: str, where: str, required: tuple, optional: tuple = ()) -> None:
    missing = [k for k in required if k not in d]
    if missing:
        raise fail(source, f"missing key {missing[0]!r} in {where}"
                            + (f" (also {missing[1:]})" if len(missing) > 1 else ""))
    unknown = sorted(str(k) for k in d if k not in required and k not in optional)
    if unknown:
        raise fail(source, f"unknown key(s) {unknown} in {where} (expected "
                            f"{list(required) + list(optional)})",
                   "remove them (an edited file, or one from another program or version)")


def number(value: Any, source: str, key: str, *, allow_nan: bool = False,
           positive: bool = False) -> float:
    """A JSON number (not a boolean) that is finite (or NaN when allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(source, f"{key} must be a number, got {kind_of(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise fail(source, f"{key} = {value} does not fit a float64") from None
    if math.isnan(v) and allow_nan:
        return v
    if not math.isfinite(v):
        raise fail(source, f"{key} must be a finite number, got {value!r}")
    if positive and not v > 0:
        raise fail(source, f"{key} must be > 0, got {value!r}")
    return v


def string(value: Any, source: str, key: str) -> str:
    if not isinstance(value, str):
        raise fail(source, f"{key} must be a string, got {kind_of(value)}")
    return value


def numbers(value: Any, source: str, key: str, n: int) -> tuple:
    if not isinstance(value, list) or len(value) != n:
        raise fail(source, f"{key} must be an array of {n} numbers, got {kind_of(value)}")
    return tuple(number(v, source, f"{key}[{i}]") for i, v in enumerate(value))


def named_numbers(value: Any, source: str, key: str, names: tuple, **kw: Any) -> dict:
    d = mapping(value, source, key)
    keys(d, source, key, tuple(names))
    return {k: number(d[k], source, f"{key}[{k!r}]", **kw) for k in names}
