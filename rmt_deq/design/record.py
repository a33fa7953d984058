"""Reading and validating saved designed-network records (the JSON of
:meth:`rmt_deq.design.network.DesignedNetwork.to_dict`).

Every problem raises :class:`~rmt_deq.errors.InvalidRecordError` naming the file (or
record), the key and the fix; nothing here raises KeyError, TypeError or a decoding error.

The record's keys:

``format, family, params, tau0, layers, target, explicit_groups, diagnostics`` (required)
    What the network is (family, parameters, data scale), what it was designed for
    (target, the network's NTK groups), the stored layer scales (checked against the
    parameters) and the solve's diagnostics (``tol``, the tolerance of the feasibility
    verdict, is required; the other diagnostics -- counters, timings, messages -- are
    informational scalars and accepted under any name, since nothing is computed from
    them).
``achieved, errors, relative_errors, residual, relative_residual, feasible,
failing_equation`` (optional)
    Derived from the above and recomputed on load; when present they are type-checked,
    and ``achieved`` and ``feasible`` must agree with the recomputation (a record whose
    stored verdict its own network does not support is rejected).  They are optional so
    that a hand-written record of a network's parameters can be loaded and evaluated.

Any other key is rejected (a newer format, or an edited file).  Records of the first
format (``rmt_deq.design.core/1``, whose ``enn_groups`` is today's ``explicit_groups``) are
read too.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

from rmt_deq.design._fields import fail, keys, kind_of, mapping, named_numbers, number, \
    numbers, string
from rmt_deq.design.families import FAMILIES, DesignFamily, get_family
from rmt_deq.design.targets import target_from_dict
from rmt_deq.errors import InvalidRecordError

__all__ = ["FORMAT", "OLD_FORMATS", "REQUIRED_KEYS", "DERIVED_KEYS", "LAYER_KEYS",
           "read_record_file", "parse_record_text", "check_record"]

#: the ``format`` of the records written now
FORMAT = "rmt_deq.design/2"
#: earlier formats that are still read, and the keys they name differently
OLD_FORMATS = {"rmt_deq.design.core/1": {"enn_groups": "explicit_groups"}}
REQUIRED_KEYS = ("format", "family", "params", "tau0", "layers", "target", "explicit_groups",
                 "diagnostics")
DERIVED_KEYS = ("achieved", "errors", "relative_errors", "residual", "relative_residual",
                "feasible", "failing_equation")
LAYER_KEYS = ("kind", "params", "tau_in", "tau_out", "centring")


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
        raise fail(source, f"cannot be read ({exc.strerror or exc})",
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
            raise fail(source, f"is not UTF-8 text (byte 0x{text[exc.start]:02x} at offset "
                                f"{exc.start}), so it is not a designed-network JSON record",
                       "give the JSON file written by DesignedNetwork.save (or rmt-deq "
                       "design --out)") from None
    if not isinstance(text, str):
        raise InvalidRecordError(f"{source}: expected JSON text, got {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(source, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                            f"{exc.colno})",
                   "give the JSON file written by DesignedNetwork.save (or rmt-deq design "
                   "--out)") from None
    except RecursionError:
        raise fail(source, "is JSON nested too deeply to be a designed-network record",
                   "give the JSON file written by DesignedNetwork.save") from None


# ----------------------------------------------------------------------------------------
# the record
# ----------------------------------------------------------------------------------------
def check_record(d: Any, family: Any, source: str) -> dict:
    """Validate a record's fields (types, shapes, finiteness, names); returns them parsed.

    Returns
    -------
    dict with ``family`` (a DesignFamily), ``params``, ``tau0``, ``target`` (DesignTarget),
    ``explicit_groups`` (tuple or None), ``tol``, ``diagnostics``, ``layers`` (list of dicts with
    float fields) and ``derived`` (the optional derived keys present, parsed).
    """
    if not isinstance(d, Mapping):
        raise fail(source, f"is {kind_of(d)}, not a designed-network record (a JSON object "
                            f"with format {FORMAT!r})",
                   "give the JSON file written by DesignedNetwork.save")
    if "format" not in d:
        raise fail(source, f"missing key 'format' (expected {FORMAT!r}): not a "
                            f"designed-network record",
                   "give the JSON file written by DesignedNetwork.save")
    if d["format"] in OLD_FORMATS:
        renamed = OLD_FORMATS[d["format"]]
        newer = sorted(k for k in renamed.values() if k in d)
        if newer:
            raise fail(source, f"unknown key(s) {newer} in a record of format "
                               f"{d['format']!r} (it names them {sorted(renamed)})",
                       "remove them (an edited file, or one from another program or version)")
        d = {renamed.get(k, k): v for k, v in d.items() if k != "format"}
        d["format"] = FORMAT
    if d["format"] != FORMAT:
        raise fail(source, f"format {d['format']!r} is not a designed-network record "
                           f"(expected format {FORMAT!r})",
                   "give the JSON file written by DesignedNetwork.save")
    keys(d, source, "the record", REQUIRED_KEYS, DERIVED_KEYS)
    name = string(d["family"], source, "family")
    if family is not None:
        if not isinstance(family, DesignFamily):
            raise InvalidRecordError(
                f"family must be a DesignFamily (e.g. ParametricFamily(...)), got "
                f"{type(family).__name__}")
        if family.name != name:
            raise fail(source, f"the record's family is {name!r} but family="
                                f"{family.name!r} was passed",
                       "pass the family the network was designed with")
        fam = family
    elif name in FAMILIES:
        fam = get_family(name)
    else:
        raise fail(source, f"family {name!r} is not a built-in design family {FAMILIES}, "
                            f"so it is user-defined (its sigma is code, not data)",
                   f"load it with family=ParametricFamily(..., name={name!r}), the family "
                   f"it was designed with")
    params = named_numbers(d["params"], source, "params", tuple(fam.param_names))
    tau0 = number(d["tau0"], source, "tau0", positive=True)
    target = target_from_dict(d["target"], source)
    if abs(target.tau0 - tau0) > 4 * 2.0 ** -52 * tau0:
        raise fail(source, f"tau0 = {tau0!r} but target.tau0 = {target.tau0!r}: the network "
                            f"and its target are at different data scales")
    groups = d["explicit_groups"]
    if groups is not None:
        if target.kind != "ntk":
            raise fail(source, f"explicit_groups = {groups!r} with a {target.kind} target "
                               f"(the network's NTK groups apply to an NTK target only)",
                       "set explicit_groups to null")
        if not (isinstance(groups, list) and groups and all(isinstance(g, str)
                                                             for g in groups)):
            raise fail(source, f"explicit_groups must be null or a non-empty array of group "
                               f"names, got {kind_of(groups)}")
        allowed = ("v",) + tuple(f"W{l}" for l in range(1, fam.n_layers + 1))
        bad = [g for g in groups if g not in allowed]
        if bad:
            raise fail(source, f"unknown NTK group(s) {bad} of the explicit network; this "
                               f"{fam.n_layers}-layer network has {allowed}")
        groups = tuple(g for g in allowed if g in groups)
    layers = d["layers"]
    if not isinstance(layers, list) or len(layers) != fam.n_layers:
        raise fail(source, f"layers must be an array of {fam.n_layers} layer objects for "
                            f"family {fam.name!r}, got {kind_of(layers)}")
    parsed_layers = []
    for i, rec in enumerate(layers):
        where = f"layers[{i}]"
        rec = mapping(rec, source, where)
        keys(rec, source, where, LAYER_KEYS)
        lp = mapping(rec["params"], source, f"{where}.params")
        parsed_layers.append({
            "kind": string(rec["kind"], source, f"{where}.kind"),
            "params": {str(k): number(v, source, f"{where}.params[{k!r}]")
                       for k, v in lp.items()},
            "tau_in": number(rec["tau_in"], source, f"{where}.tau_in", positive=True),
            "tau_out": number(rec["tau_out"], source, f"{where}.tau_out", positive=True),
            "centring": number(rec["centring"], source, f"{where}.centring")})
    diag = mapping(d["diagnostics"], source, "diagnostics")
    if "tol" not in diag:
        raise fail(source, "missing key 'tol' in diagnostics (the tolerance of the "
                            "feasibility verdict)")
    tol = number(diag["tol"], source, "diagnostics['tol']", positive=True)
    for k, v in diag.items():
        if not isinstance(k, str) or not (v is None or isinstance(v, (str, bool, int, float))):
            raise fail(source, f"diagnostics[{k!r}] must be a string, number, boolean or "
                                f"null, got {kind_of(v)}")
    names = target.equations
    derived: dict = {}
    if "achieved" in d:
        derived["achieved"] = numbers(d["achieved"], source, "achieved", 4)
    for key in ("errors", "relative_errors"):
        if key in d:
            derived[key] = named_numbers(d[key], source, key, names)
    for key in ("residual", "relative_residual"):
        if key in d:
            derived[key] = number(d[key], source, key)
    if "feasible" in d:
        if not isinstance(d["feasible"], bool):
            raise fail(source, f"feasible must be true or false, got {kind_of(d['feasible'])}")
        derived["feasible"] = d["feasible"]
    if "failing_equation" in d:
        fe = d["failing_equation"]
        if fe is not None and fe not in names:
            raise fail(source, f"failing_equation must be null or one of {list(names)}, got "
                                f"{kind_of(fe)}")
        derived["failing_equation"] = fe
    return {"family": fam, "params": params, "tau0": tau0, "target": target,
            "explicit_groups": groups, "tol": tol, "diagnostics": dict(diag),
            "layers": parsed_layers, "derived": derived}
