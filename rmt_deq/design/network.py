"""The result of a design: :class:`DesignedNetwork`, the explicit network with its verdict.

A design result holds the designed :class:`~rmt_deq.networks.explicit.ExplicitNetwork`
(``.network``: its layers, pinned to the target's data scale), the target, the family and
its parameters, the network's four values against the target's (per-equation absolute and
relative errors, docs/theory.md §6.4), the verdict, and the solver's
:class:`~rmt_deq._results.SolverReport`.  It runs the network (a plain numpy forward pass,
or a stand-alone numpy function of it), writes it out as a PyTorch module
(:mod:`rmt_deq.design.torch_export`), gives its exact kernels and surrogate coefficients,
and saves to / loads from JSON (:mod:`rmt_deq.design.record`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rmt_deq._io import write_json, write_text
from rmt_deq._results import SolverReport, frozen_mapping
from rmt_deq._validation import as_data_matrix, check_options, check_positive_int
from rmt_deq.design.families import DesignFamily
from rmt_deq.design.record import FORMAT, check_record, parse_record_text, read_record_file
from rmt_deq.design.targets import DesignTarget, explicit_equations, unit_scaled
from rmt_deq.design.torch_export import torch_source
from rmt_deq.errors import InvalidParameterError, InvalidRecordError, RmtDeqError
from rmt_deq.kernels.explicit import exact_explicit_kernels
from rmt_deq.kernels.explicit_surrogate import (ExplicitNetworkCoefficients,
                                                explicit_network_coefficients)
from rmt_deq.kernels.result import Kernel
from rmt_deq.networks.explicit import (ExplicitForward, ExplicitNetwork, ExplicitWeights,
                                       explicit_forward, sample_explicit_weights)

__all__ = ["DesignedNetwork", "load_designed_network"]

#: options of :meth:`DesignedNetwork.exact_kernels` (passed on; tau0 is the network's)
_EXACT_OPTIONS = ("groups", "method", "tol", "kmax", "workers", "max_memory")
#: tolerances of the consistency checks of a loaded record: the parameters are stored at
#: full precision, the layer scales and achieved values are recomputed from them
_PARAM_RTOL = 1e-12
_SCALE_RTOL = 1e-9


@dataclass(frozen=True, eq=False)
class DesignedNetwork:
    """An explicit network designed to match a DEQ kernel, with its verdict.

    Attributes
    ----------
    family : str
    params : mapping of str to float
        The family's parameters, read-only (``lrelu2``: a1, b1, a2, b2 with sigma_l(t) =
        max(a_l t, b_l t), a_l >= |b_l|; ``quad2``: a1, b1, a2, b2 with sigma_l(t) =
        a_l t + b_l (t^2 - tau_{l-1}^2); ``quadcubic2``: also c2, the coefficient of
        t^3 - 3 tau_1^2 t in layer 2; ``htanh1``: a1, c1 with sigma(t) = a1 clip(t, -c1, c1);
        ``htanhlin2``: a1 (= 1), c1, b1, a2, c2, b2 with sigma_l(t) = a_l clip(t, -c_l, c_l)
        + b_l t).
    network : ExplicitNetwork
        The network, pinned to the target's tau0 (each layer with its kind, parameters,
        input and output scales and centring).
    target : DesignTarget
    achieved : tuple of 4 floats
        The network's values of the target's four quantities (``target.equations``).
    errors : mapping of str to float
        achieved - required, per equation (absolute, in each equation's own units).
    relative_errors : mapping of str to float
        Per equation, |achieved - required| on the equation's own scale
        (:meth:`DesignTarget.relative_errors`).
    residual : float
        max |achieved - required| (absolute; the equations have different units, so this
        is a summary, not the feasibility test).
    relative_residual : float
        max of ``relative_errors``.
    feasible : bool
        Every equation's relative error is <= the solve tolerance (``report.tolerance``).
    failing_equation : str or None
        When not feasible: the equation the family fails (the solver's diagnosis), else the
        one with the largest relative error.
    explicit_groups : tuple of str or None
        The network's NTK groups summed for an NTK design (None: all).
    diagnostics : mapping
        ``starts`` tried, ``iterations`` (total), ``solve_time_s``, ``tol``,
        ``analytic_jacobian``, ``message`` (read-only; what the JSON record stores).
    report : SolverReport
        The solve: ``converged`` is ``feasible`` (False only for ``strict=False``),
        ``residual`` the relative residual, ``tolerance`` the tol, ``iterations``,
        ``message``.
    """

    family: str
    params: Mapping[str, float]
    network: ExplicitNetwork = field(repr=False)
    target: DesignTarget = field(repr=False)
    achieved: tuple = ()
    errors: Mapping[str, float] = field(default_factory=dict)
    relative_errors: Mapping[str, float] = field(default_factory=dict)
    residual: float = float("nan")
    relative_residual: float = float("nan")
    feasible: bool = False
    failing_equation: str | None = None
    explicit_groups: tuple | None = None
    diagnostics: Mapping[str, Any] = field(default_factory=dict, repr=False)
    report: SolverReport | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("params", "errors", "relative_errors", "diagnostics"):
            object.__setattr__(self, name, frozen_mapping(getattr(self, name), arrays=False))
        object.__setattr__(self, "achieved", tuple(self.achieved))

    # -- construction --------------------------------------------------------------------
    @classmethod
    def build(cls, fam: DesignFamily, params: Mapping[str, float], network: ExplicitNetwork,
              target: DesignTarget, explicit_groups: tuple | None, tol: float,
              diagnostics: Mapping[str, Any]) -> "DesignedNetwork":
        """The result for ``network`` (the family's network of ``params``): its four
        quantities evaluated at the target's own scale (not the unit scale of a solve) and
        the per-equation verdict against ``tol``.

        Raises
        ------
        InvalidParameterError
            The quantities are not finite float64 numbers at the target's tau0.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            ach = np.asarray(explicit_equations(network, target.tau0, target.kind,
                                                explicit_groups=explicit_groups,
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
        diagnostics = {**diagnostics, "tol": tol}
        iterations = diagnostics.get("iterations", 0)
        report = SolverReport(
            converged=feasible, residual=float(rel.max()), tolerance=tol,
            iterations=iterations if isinstance(iterations, int) and not isinstance(
                iterations, bool) else 0,
            message=str(diagnostics.get("message", "")))
        return cls(
            family=fam.name, params=dict(params), network=network, target=target,
            achieved=tuple(float(a) for a in ach),
            errors={n: float(e) for n, e in zip(target.equations, err)},
            relative_errors={n: float(r) for n, r in zip(target.equations, rel)},
            residual=float(np.abs(err).max()), relative_residual=float(rel.max()),
            feasible=feasible,
            failing_equation=None if feasible else target.equations[int(np.argmax(rel))],
            explicit_groups=explicit_groups, diagnostics=diagnostics, report=report)

    def with_diagnosis(self, equation: str | None, message: str | None = None
                       ) -> "DesignedNetwork":
        """A copy naming the failing equation (and, given, the message of the diagnosis)."""
        if message is None:
            return dataclasses.replace(self, failing_equation=equation)
        return dataclasses.replace(
            self, failing_equation=equation,
            diagnostics={**self.diagnostics, "message": message},
            report=dataclasses.replace(self.report, message=message))

    # -- structure -----------------------------------------------------------------------
    @property
    def layers(self) -> tuple:
        """The network's layers (:class:`~rmt_deq.networks.explicit.ExplicitLayer`)."""
        return self.network.layers

    @property
    def tau0(self) -> float:
        """Data scale (input scale of layer 1)."""
        return self.network.tau0

    @property
    def L(self) -> int:
        """Number of hidden layers."""
        return self.network.depth

    @property
    def activations(self) -> tuple:
        """The uncentred sigma_l as Activations (each layer subtracts its ``centring``)."""
        return self.network.activations

    @property
    def taus(self) -> tuple:
        """(tau_0, tau_1, ..., tau_L)."""
        return self.network.scales.tau

    @property
    def centrings(self) -> tuple:
        """(c_1, ..., c_L)."""
        return self.network.scales.centring

    # -- finite width --------------------------------------------------------------------
    def sample_weights(self, width: int, p: int, rng: Any = None,
                       hidden_width: int | None = None) -> ExplicitWeights:
        """Unit-variance Gaussian weights W_1 (width x p), W_2..W_L (width x width), v
        (:func:`rmt_deq.networks.explicit.sample_explicit_weights`); with ``hidden_width``
        the layers below the last are that wide (W_L is then width x hidden_width)."""
        m = check_positive_int(width, "width")
        return sample_explicit_weights(self.network, m, p, rng=rng, hidden_width=hidden_width)

    def forward(self, X: Any, weights: Any = None, *, width: int | None = None,
                rng: Any = None) -> ExplicitForward:
        """Plain numpy forward pass h_l = (sigma_l(W_l h_{l-1}) - c_l)/sqrt(m), h_0 = x.

        The centrings c_l are those of the design data scale ``tau0`` whatever the data
        (the network is used as designed).

        Parameters
        ----------
        X : array_like, shape (p, n)
            Data; columns are samples.
        weights : ExplicitWeights or sequence of L arrays, optional
            W_1 (m x p), W_2 .. W_L (m x m) with unit-variance entries (the 1/sqrt(m)
            scalings are applied here).  Default: drawn at ``width`` from ``rng``.
        width : int, optional
            Width m of the drawn weights (required without ``weights``; not with them).
        rng : int or numpy.random.Generator, optional
            Seed or generator of the drawn weights (W_1..W_L, then v, as
            :meth:`sample_weights`): the same seed gives the same weights; None draws fresh
            entropy.  Not with ``weights``.

        Returns
        -------
        ExplicitForward
            ``H`` = (h_1, ..., h_L), ``features`` = h_L (m x n), ``gram`` the CK Gram
            matrix features.T @ features.

        Raises
        ------
        InvalidParameterError
            Neither weights nor a width; weights together with a width or rng (they would
            be ignored); a bad rng.
        ShapeMismatchError
            Weights of the wrong number or shapes.
        """
        Xa = as_data_matrix(X)
        if weights is None:
            if width is None:
                raise InvalidParameterError("give weights or a width to draw them at")
            weights = self.sample_weights(width, Xa.shape[0], rng)
        elif width is not None or rng is not None:
            raise InvalidParameterError(
                "width and rng choose weights to draw; with given weights they do not apply: "
                "drop them, or drop weights to draw new ones")
        return explicit_forward(Xa, self.network, weights, tau0=self.tau0)

    def torch_source(self, class_name: str = "DesignedNetwork") -> str:
        """Python source of a PyTorch ``nn.Module`` of this network (text only: torch is
        not imported here).

        The module holds the widths, unit-variance weights drawn at init and the
        designed constants at full precision, and its ``forward`` computes this
        network's :meth:`forward` (same activations, centrings and 1/sqrt(m) scaling)
        with rows as samples: x (n, p) -> h_L (n, m); ``readout`` gives f = v^T h_L
        (:func:`rmt_deq.design.torch_export.torch_source`).

        Raises
        ------
        InvalidParameterError
            ``class_name`` is not a Python identifier; a layer whose activation has no
            torch expression (a user family's, named in the message).
        """
        return torch_source(self, class_name)

    def save_torch(self, path: str, class_name: str = "DesignedNetwork") -> str:
        """Write :meth:`torch_source` to exactly ``path``, atomically (a failed write
        leaves a previous file unchanged); returns the path written."""
        src = self.torch_source(class_name)
        return write_text(path, src, what="PyTorch module")

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
    def coefficients(self) -> ExplicitNetworkCoefficients:
        """Surrogate coefficients of the network's CK and NTK at its tau0
        (:func:`rmt_deq.kernels.explicit_surrogate.explicit_network_coefficients`)."""
        return explicit_network_coefficients(self.network, self.tau0)

    def exact_kernels(self, X: Any, **options: Any) -> Kernel:
        """Exact infinite-width CK and NTK at this network's tau0
        (:func:`rmt_deq.kernels.explicit.exact_explicit_kernels`; ``.ck`` is K_L).  Options
        are passed on: groups, method, tol, kmax, workers, max_memory."""
        check_options(options, _EXACT_OPTIONS, "DesignedNetwork.exact_kernels")
        return exact_explicit_kernels(X, self.network, tau0=self.tau0, **options)

    def ck(self, X: Any, **options: Any) -> np.ndarray:
        """The exact infinite-width CK K_L of this network on X (the ``ck`` of
        :meth:`exact_kernels`).

        Parameters
        ----------
        X : array_like, shape (p, n)
            Data; columns are samples.
        **options
            method, tol, kmax, workers, max_memory (as :meth:`exact_kernels`).

        Returns
        -------
        ndarray, shape (n, n)
            float64, a new (writable) array.
        """
        if "groups" in options:
            raise InvalidParameterError("groups select NTK parameter groups; use ntk(X, "
                                        "groups=...) for them, and drop groups for the CK")
        return np.array(self.exact_kernels(X, **options).ck, dtype=np.float64)

    def ntk(self, X: Any, groups: Any = None, **options: Any) -> np.ndarray:
        """The exact infinite-width NTK of f = v^T h_L on X, summed over ``groups`` (the
        ``ntk`` of :meth:`exact_kernels`).

        Parameters
        ----------
        X : array_like, shape (p, n)
            Data; columns are samples.
        groups : iterable of {"v", "W1", ..., "WL"}, optional
            Parameter groups summed (default all).
        **options
            method, tol, kmax, workers, max_memory (as :meth:`exact_kernels`).

        Returns
        -------
        ndarray, shape (n, n)
            float64, a new (writable) array.
        """
        return np.array(self.exact_kernels(X, groups=groups, **options).ntk,
                        dtype=np.float64)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dictionary (every float at full precision)."""
        return {
            "format": FORMAT,
            "family": self.family,
            "params": {k: float(v) for k, v in self.params.items()},
            "tau0": float(self.tau0),
            "layers": [layer.to_dict() for layer in self.layers],
            "target": self.target.as_dict(),
            "explicit_groups": (None if self.explicit_groups is None
                                else list(self.explicit_groups)),
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
        """:meth:`to_dict` as JSON text (``kwargs`` go to ``json.dumps``)."""
        return json.dumps(self.to_dict(), **kwargs)

    def save(self, path: str) -> None:
        """Write :meth:`to_dict` as JSON to ``path``, atomically (a failed write leaves a
        previous file unchanged; non-finite numbers become null)."""
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
            Required for a user family's design (its sigma is code, not data); its name
            must be the record's.
        source : str
            How messages name the record (``load`` passes the file name).

        Raises
        ------
        InvalidRecordError
            Naming the key and the problem: a missing or unknown key, a wrong type, shape
            or value, an unknown family, or stored numbers that do not follow from the
            parameters (an edited or corrupt record).
        """
        r = check_record(d, family, source)
        fam, params, tau0, target = r["family"], r["params"], r["tau0"], r["target"]
        canon = fam.canonical(params)
        if any(abs(canon[k] - params[k]) > _PARAM_RTOL * abs(params[k]) for k in params):
            raise InvalidRecordError(
                f"{source}: params {params} are not in the canonical form of family "
                f"{fam.name!r} ({canon}); re-create the record with DesignedNetwork.save")
        try:
            network = fam.build_network(params, tau0)
        except RmtDeqError as exc:
            raise InvalidRecordError(
                f"{source}: params {params} do not define a {fam.name} network at tau0 = "
                f"{tau0:g}: {exc}; re-create the record with DesignedNetwork.save") from None
        for i, (layer, rec) in enumerate(zip(network.layers, r["layers"])):
            _check_stored_layer(source, i, layer, rec)
        try:
            net = cls.build(fam, params, network, target, r["explicit_groups"], r["tol"],
                            r["diagnostics"])
        except RmtDeqError as exc:
            raise InvalidRecordError(f"{source}: its network cannot be evaluated: {exc}") \
                from None
        derived = r["derived"]
        if "achieved" in derived:
            gap = np.abs(unit_scaled(np.subtract(derived["achieved"], net.achieved),
                                     target.data_powers, target.tau0))
            gap = gap / target.equation_scales()
            if not gap.max() <= _SCALE_RTOL:
                raise InvalidRecordError(
                    f"{source}: the stored achieved values {list(derived['achieved'])} do not "
                    f"follow from the parameters ({list(net.achieved)}, relative gaps "
                    f"{gap.tolist()}): an edited or corrupt record; re-create it with "
                    f"DesignedNetwork.save")
        if "feasible" in derived and derived["feasible"] != net.feasible:
            raise InvalidRecordError(
                f"{source}: the record says feasible = {derived['feasible']} but its network "
                f"has relative equation errors {dict(net.relative_errors)} against tol = "
                f"{r['tol']:g} (feasible = {net.feasible}); a record written with another "
                f"feasibility test, or edited: re-run the design")
        stored_eq = derived.get("failing_equation")
        if not net.feasible and stored_eq is not None:     # the solve's diagnosis
            net = net.with_diagnosis(stored_eq)
        return net

    @classmethod
    def from_json(cls, text: str | bytes, family: DesignFamily | None = None, *,
                  source: str = "design record") -> "DesignedNetwork":
        """Rebuild from :meth:`to_json` text (InvalidRecordError if it is not UTF-8 JSON
        of a valid record)."""
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


def _check_stored_layer(source: str, i: int, layer: Any, rec: Mapping[str, Any]) -> None:
    """The stored layers[i] must be the layer rebuilt from the parameters."""
    stored = dict(rec["params"])
    bad = (rec["kind"] != layer.kind or set(stored) != set(layer.params)
           or any(abs(stored[k] - layer.params[k]) > _PARAM_RTOL * abs(layer.params[k])
                  for k in layer.params)
           or any(abs(rec[k] - getattr(layer, k)) > _SCALE_RTOL * abs(getattr(layer, k))
                  for k in ("tau_in", "tau_out"))
           or abs(rec["centring"] - layer.centring) > _SCALE_RTOL * (abs(layer.centring)
                                                                     + layer.tau_out))
    if bad:
        raise InvalidRecordError(
            f"{source}: the stored layers[{i}] {rec} do not follow from the "
            f"parameters (they give kind {layer.kind!r}, params {dict(layer.params)}, "
            f"tau_in {layer.tau_in!r}, tau_out {layer.tau_out!r}, centring "
            f"{layer.centring!r}): an edited or corrupt record; re-create it with "
            f"DesignedNetwork.save")


def load_designed_network(path: str, family: DesignFamily | None = None) -> DesignedNetwork:
    """:meth:`DesignedNetwork.load` (InvalidRecordError, naming the file, for anything
    that is not a valid record)."""
    return DesignedNetwork.load(path, family)
