"""Reading and validating saved designed-network records (the JSON of
:meth:`rmt_deq.design.core.DesignedNetwork.to_dict`).

Every problem raises :class:`~rmt_deq.errors.InvalidRecordError` naming the file (or
record), the key and the fix; nothing here raises KeyError, TypeError or a decoding error.

The record's keys:

``format, family, params, tau0, layers, target, enn_groups, diagnostics`` (required)
    What the network is (family, parameters, data scale), what it was designed for
    (target, ENN NTK groups), the stored layer scales (checked against the parameters)
    and the solve's diagnostics (``tol``, the tolerance of the feasibility verdict, is
    required; the other diagnostics -- counters, timings, messages -- are informational
    scalars and accepted under any name, since nothing is computed from them).
``achieved, errors, relative_errors, residual, relative_residual, feasible,
failing_equation`` (optional)
    Derived from the above and recomputed on load; when present they are type-checked,
    and ``achieved`` and ``feasible`` must agree with the recomputation (a record whose
    stored verdict its own network does not support is rejected).  They are optional so
    that a hand-written record of a network's parameters can be loaded and evaluated.

Any other key is rejected (a newer format, or an edited file).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

from rmt_deq.errors import InvalidRecordError, RmtDeqError

__all__ = ["read_record_file", "parse_record_text", "check_record", "target_from_dict"]

REQUIRED_KEYS = ("format", "family", "params", "tau0", "layers", "target", "enn_groups",
                 "diagnostics")
DERIVED_KEYS = ("achieved", "errors", "relative_errors", "residual", "relative_residual",
                "feasible", "failing_equation")
TARGET_KEYS = ("kind", "equations", "values", "tau0", "activation", "sa", "sb",
               "ntk_groups")
LAYER_KEYS = ("kind", "params", "tau_in", "tau_out", "centring")
_RESAVE = "re-create it with DesignedNetwork.save (or rmt-deq design --out)"


def _fail(source: str, problem: str, fix: str = _RESAVE) -> InvalidRecordError:
    return InvalidRecordError(f"{source}: {problem}; {fix}")


def read_record_file(path: Any) -> Any:
    """The parsed JSON of a design file.

    Raises
    ------
    InvalidRecordError
        The file cannot be read, is not UTF-8 text or is not JSON.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidRecordError(f"a design file path must be a string or path-like, got "
                                 f"{type(path).__name__}")
    source = f"design file {os.fspath(path)!r}"
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise _fail(source, f"cannot be read ({exc.strerror or exc})",
                    "check the path and its permissions") from None
    return parse_record_text(raw, source)


def parse_record_text(text: str | bytes, source: str = "design record") -> Any:
    """``json.loads`` of a record's text (bytes must be UTF-8).

    Raises
    ------
    InvalidRecordError
        Not UTF-8 text, or not JSON.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(source, f"is not UTF-8 text (byte 0x{text[exc.start]:02x} at offset "
                                f"{exc.start}), so it is not a designed-network JSON record",
                        "give the JSON file written by DesignedNetwork.save (or rmt-deq "
                        "design --out)") from None
    if not isinstance(text, str):
        raise InvalidRecordError(f"{source}: expected JSON text, got {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(source, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                            f"{exc.colno})",
                    "give the JSON file written by DesignedNetwork.save (or rmt-deq design "
                    "--out)") from None
    except RecursionError:
        raise _fail(source, "is JSON nested too deeply to be a designed-network record",
                    "give the JSON file written by DesignedNetwork.save") from None


# ----------------------------------------------------------------------------------------
# typed field access
# ----------------------------------------------------------------------------------------
def _mapping(value: Any, source: str, key: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise _fail(source, f"{key} must be a JSON object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r:.60})"


def _keys(d: Mapping, source: str, where: str, required: tuple, optional: tuple = ()) -> None:
    missing = [k for k in required if k not in d]
    if missing:
        raise _fail(source, f"missing key {missing[0]!r} in {where}"
                            + (f" (also {missing[1:]})" if len(missing) > 1 else ""))
    unknown = sorted(str(k) for k in d if k not in required and k not in optional)
    if unknown:
        raise _fail(source, f"unknown key(s) {unknown} in {where} (expected "
                            f"{list(required) + list(optional)})",
                    "remove them (an edited file, or one from another program or version)")


def number(value: Any, source: str, key: str, *, allow_nan: bool = False,
           positive: bool = False) -> float:
    """A JSON number (not a boolean) that is finite (or NaN when allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(source, f"{key} must be a number, got {_kind(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise _fail(source, f"{key} = {value} does not fit a float64") from None
    if math.isnan(v) and allow_nan:
        return v
    if not math.isfinite(v):
        raise _fail(source, f"{key} must be a finite number, got {value!r}")
    if positive and not v > 0:
        raise _fail(source, f"{key} must be > 0, got {value!r}")
    return v


def _string(value: Any, source: str, key: str) -> str:
    if not isinstance(value, str):
        raise _fail(source, f"{key} must be a string, got {_kind(value)}")
    return value


def _numbers(value: Any, source: str, key: str, n: int) -> tuple:
    if not isinstance(value, list) or len(value) != n:
        raise _fail(source, f"{key} must be an array of {n} numbers, got {_kind(value)}")
    return tuple(number(v, source, f"{key}[{i}]") for i, v in enumerate(value))


def _named_numbers(value: Any, source: str, key: str, names: tuple, **kw: Any) -> dict:
    d = _mapping(value, source, key)
    _keys(d, source, key, tuple(names))
    return {k: number(d[k], source, f"{key}[{k!r}]", **kw) for k in names}


# ----------------------------------------------------------------------------------------
# the record
# ----------------------------------------------------------------------------------------
def target_from_dict(d: Any, source: str = "design target record") -> Any:
    """A :class:`~rmt_deq.design.core.DesignTarget` from its ``as_dict``, every field checked."""
    from rmt_deq.design.core import DesignTarget, EQUATIONS, REFINED_EQUATIONS, TARGETS

    where = "target"
    d = _mapping(d, source, where)
    _keys(d, source, where, TARGET_KEYS, ("refine",))
    kind = _string(d["kind"], source, "target.kind")
    if kind not in TARGETS:
        raise _fail(source, f"target.kind {kind!r} is not one of {TARGETS}")
    refine = d.get("refine", False)
    if not isinstance(refine, bool):
        raise _fail(source, f"target.refine must be true or false, got {_kind(refine)}")
    names = REFINED_EQUATIONS if refine else EQUATIONS[kind]
    if d["equations"] != list(names):
        raise _fail(source, f"target.equations must be {list(names)} for a "
                            f"{'refined ' if refine else ''}{kind} target, got "
                            f"{d['equations']!r}")
    values = _numbers(d["values"], source, "target.values", 4)
    activation = d["activation"]
    if activation is not None:
        _string(activation, source, "target.activation")
    sa = number(d["sa"], source, "target.sa", allow_nan=True)
    sb = number(d["sb"], source, "target.sb", allow_nan=True)
    for key, v in (("sa", sa), ("sb", sb)):
        if not (math.isnan(v) or v > 0):
            raise _fail(source, f"target.{key} must be > 0 (or NaN for a user-given "
                                f"target), got {v!r}")
    groups = d["ntk_groups"]
    if not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
        raise _fail(source, f"target.ntk_groups must be an array of group names, got "
                            f"{_kind(groups)}")
    try:
        return DesignTarget(kind=kind, values=values,
                            tau0=number(d["tau0"], source, "target.tau0", positive=True),
                            activation=activation, sa=sa, sb=sb, ntk_groups=tuple(groups),
                            refine=refine)
    except InvalidRecordError:
        raise
    except RmtDeqError as exc:
        raise _fail(source, f"the target is not valid: {exc}") from None


def check_record(d: Any, family: Any, source: str) -> dict:
    """Validate a record's fields (types, shapes, finiteness, names); returns them parsed.

    Returns
    -------
    dict with ``family`` (a DesignFamily), ``params``, ``tau0``, ``target`` (DesignTarget),
    ``enn_groups`` (tuple or None), ``tol``, ``diagnostics``, ``layers`` (list of dicts with
    float fields) and ``derived`` (the optional derived keys present, parsed).
    """
    from rmt_deq.design.core import _FAMILY_CLASSES, _JSON_FORMAT, DesignFamily, FAMILIES, get_family

    if not isinstance(d, Mapping):
        raise _fail(source, f"is {_kind(d)}, not a designed-network record (a JSON object "
                            f"with format {_JSON_FORMAT!r})",
                    "give the JSON file written by DesignedNetwork.save")
    if "format" not in d:
        raise _fail(source, f"missing key 'format' (expected {_JSON_FORMAT!r}): not a "
                            f"designed-network record",
                    "give the JSON file written by DesignedNetwork.save")
    if d["format"] != _JSON_FORMAT:
        raise _fail(source, f"format {d['format']!r} is not a designed-network record "
                            f"(expected format {_JSON_FORMAT!r})",
                    "give the JSON file written by DesignedNetwork.save")
    _keys(d, source, "the record", REQUIRED_KEYS, DERIVED_KEYS)
    name = _string(d["family"], source, "family")
    if family is not None:
        if not isinstance(family, DesignFamily):
            raise InvalidRecordError(
                f"family must be a DesignFamily (e.g. ParametricFamily(...)), got "
                f"{type(family).__name__}")
        if family.name != name:
            raise _fail(source, f"the record's family is {name!r} but family="
                                f"{family.name!r} was passed",
                        "pass the family the network was designed with")
        fam = family
    elif name in _FAMILY_CLASSES:
        fam = get_family(name)
    else:
        raise _fail(source, f"family {name!r} is not a built-in design family {FAMILIES}, "
                            f"so it is user-defined (its sigma is code, not data)",
                    f"load it with family=ParametricFamily(..., name={name!r}), the family "
                    f"it was designed with")
    params = _named_numbers(d["params"], source, "params", tuple(fam.param_names))
    tau0 = number(d["tau0"], source, "tau0", positive=True)
    target = target_from_dict(d["target"], source)
    if abs(target.tau0 - tau0) > 4 * 2.0 ** -52 * tau0:
        raise _fail(source, f"tau0 = {tau0!r} but target.tau0 = {target.tau0!r}: the network "
                            f"and its target are at different data scales")
    groups = d["enn_groups"]
    if groups is not None:
        if target.kind != "ntk":
            raise _fail(source, f"enn_groups = {groups!r} with a {target.kind} target (ENN "
                                f"NTK groups apply to an NTK target only)",
                        "set enn_groups to null")
        if not (isinstance(groups, list) and groups and all(isinstance(g, str)
                                                             for g in groups)):
            raise _fail(source, f"enn_groups must be null or a non-empty array of group "
                                f"names, got {_kind(groups)}")
        allowed = ("v",) + tuple(f"W{l}" for l in range(1, fam.n_layers + 1))
        bad = [g for g in groups if g not in allowed]
        if bad:
            raise _fail(source, f"unknown ENN NTK group(s) {bad}; this {fam.n_layers}-layer "
                                f"network has {allowed}")
        groups = tuple(g for g in allowed if g in groups)
    layers = d["layers"]
    if not isinstance(layers, list) or len(layers) != fam.n_layers:
        raise _fail(source, f"layers must be an array of {fam.n_layers} layer objects for "
                            f"family {fam.name!r}, got {_kind(layers)}")
    parsed_layers = []
    for i, rec in enumerate(layers):
        where = f"layers[{i}]"
        rec = _mapping(rec, source, where)
        _keys(rec, source, where, LAYER_KEYS)
        lp = _mapping(rec["params"], source, f"{where}.params")
        parsed_layers.append({
            "kind": _string(rec["kind"], source, f"{where}.kind"),
            "params": {str(k): number(v, source, f"{where}.params[{k!r}]")
                       for k, v in lp.items()},
            "tau_in": number(rec["tau_in"], source, f"{where}.tau_in", positive=True),
            "tau_out": number(rec["tau_out"], source, f"{where}.tau_out", positive=True),
            "centring": number(rec["centring"], source, f"{where}.centring")})
    diag = _mapping(d["diagnostics"], source, "diagnostics")
    if "tol" not in diag:
        raise _fail(source, "missing key 'tol' in diagnostics (the tolerance of the "
                            "feasibility verdict)")
    tol = number(diag["tol"], source, "diagnostics['tol']", positive=True)
    for k, v in diag.items():
        if not isinstance(k, str) or not (v is None or isinstance(v, (str, bool, int, float))):
            raise _fail(source, f"diagnostics[{k!r}] must be a string, number, boolean or "
                                f"null, got {_kind(v)}")
    names = target.equations
    derived: dict = {}
    if "achieved" in d:
        derived["achieved"] = _numbers(d["achieved"], source, "achieved", 4)
    for key in ("errors", "relative_errors"):
        if key in d:
            derived[key] = _named_numbers(d[key], source, key, names)
    for key in ("residual", "relative_residual"):
        if key in d:
            derived[key] = number(d[key], source, key)
    if "feasible" in d:
        if not isinstance(d["feasible"], bool):
            raise _fail(source, f"feasible must be true or false, got {_kind(d['feasible'])}")
        derived["feasible"] = d["feasible"]
    if "failing_equation" in d:
        fe = d["failing_equation"]
        if fe is not None and fe not in names:
            raise _fail(source, f"failing_equation must be null or one of {list(names)}, got "
                                f"{_kind(fe)}")
        derived["failing_equation"] = fe
    return {"family": fam, "params": params, "tau0": tau0, "target": target,
            "enn_groups": groups, "tol": tol, "diagnostics": dict(diag),
            "layers": parsed_layers, "derived": derived}
