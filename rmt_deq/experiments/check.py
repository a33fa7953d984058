"""One DEQ configuration through the whole theory, every distance beside its expected size.

:func:`run_check` takes one activation, one sa and one labelled data set (a sample of a
known mixture, or any labelled data with plug-in statistics) and goes through

1. the four-equation system (docs/theory.md §3) at the data's tau0;
2. the CK and NTK surrogates (§4, §5);
3. the exact infinite-width CK G and NTK (§2);
4. the sampled finite-width DEQ (§8): one Monte-Carlo run gives the CK and the NTK with
   their error bars;
5. the predicted spectra (§7) against the exact and the sampled eigenvalues
   (:mod:`rmt_deq.experiments.observed`);
6. the design (§6): every registered family is tried for the CK target and the feasible one
   whose exact CK is closest to the DEQ's is kept; its exact CK is compared with the DEQ's,
   and its sampled CK with its exact one;

and returns one table (:class:`CheckResult`, rows :class:`CheckRow`): each distance, the
size the theory leads one to expect for it, their ratio and the verdict (within the
expected size or not).  The expected sizes (:data:`EXPECTED_SIZES` says how each is made):

* a surrogate against its exact kernel: O(p^-1/2) in relative operator norm, taken as
  1/sqrt(p) (docs/theory.md §4, §5: measured rates ~ p^-1/2; the tanh NTK converges only
  like sqrt(log p / p));
* the designed network's exact CK against the DEQ's: the design makes the two surrogates
  equal, so 2/sqrt(p) (each kernel within 1/sqrt(p) of the common surrogate);
* a sampled kernel against its exact kernel: the sampler's Monte-Carlo error bar, relative
  to the exact kernel's norm (the finite-width bias O(1/m) is not part of it);
* the bulk of the exact kernel's spectrum against the prediction (Kolmogorov-Smirnov, and
  1-Wasserstein over the bulk width): 1/sqrt(p) (the surrogate's operator-norm error moves
  the eigenvalues) plus log(n)/n (the fluctuation of n eigenvalues about their limit);
  for the sampled kernel, plus what its error bar eps can move by Weyl's inequality
  (every eigenvalue by at most eps: the CDF by at most max(density) eps, W1 by eps);
* spikes: relative error 1/sqrt(p) (the surrogate's error) plus 1/sqrt(n) (an isolated
  eigenvalue of n samples fluctuates by O(n^-1/2) about its limit), plus eps/|lambda| for
  the sampled kernel (Weyl);
* eigenvector alignments <u, j_a/sqrt(n_a)>^2: absolute error 1/sqrt(p) + 1/sqrt(n) (the
  same two sources), plus, sampled, 4 sqrt(2) eps / gap by the Davis-Kahan bound
  sin(theta) <= 2 eps / gap (gap the distance of a spike to the rest of the predicted
  spectrum; |cos^2 - cos'^2| <= 2 sqrt(2) sin(theta));
* a bound at or above the largest value a quantity can take (1 for Kolmogorov-Smirnov and
  for squared cosines) gives no verdict;
* the design equations: the solver's tolerance.

Nothing here prints: ``stage`` hears of each step and ``progress`` of the samplers'
realizations (:class:`rmt_deq.sampling._montecarlo.SamplingProgress`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import frozen_mapping
from rmt_deq._validation import (as_data_matrix, as_labels, as_rng, check_positive_finite,
                                 check_positive_int, check_variances, memory_budget)
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.design.families import FAMILIES
from rmt_deq.design.network import DesignedNetwork
from rmt_deq.design.solve import design_network
from rmt_deq.design.targets import design_target
from rmt_deq.errors import InfeasibleDesignError, InvalidParameterError
from rmt_deq.experiments.harness import Record
from rmt_deq.experiments.observed import (Prediction, SpectralInputs, SpectrumComparison,
                                          compare_spectrum, data_inputs, observed_kernel,
                                          predict_spectrum)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.exact import NTK_GROUPS, exact_kernels
from rmt_deq.kernels.ntk_surrogate import ntk_group_coefficients
from rmt_deq.metrics import operator_norm, relative_operator_distance
from rmt_deq.networks.weights import check_dtype, check_family
from rmt_deq.sampling.deq import sampled_ntk
from rmt_deq.sampling.explicit import sampled_explicit_ck

__all__ = ["CHECK_DEFAULTS", "EXPECTED_SIZES", "CheckRow", "check_row", "DesignOutcome",
           "CheckResult", "run_check", "format_table"]

#: the sampled kernels' defaults of :func:`run_check` (and of ``rmt-deq check``)
CHECK_DEFAULTS: Mapping[str, Any] = {"width": 500, "realizations": 48, "family": "gaussian",
                                     "seed": 0, "dtype": "float64", "confidence": 0.95}
#: how each expected size is made (the ``expected_size`` column says it with its value)
EXPECTED_SIZES = {
    "surrogate": "O(p^-1/2): 1/sqrt(p)",
    "sampled": "Monte-Carlo error bar / ||exact||",
    "bulk": "p^-1/2 + log(n)/n",
    "bulk_sampled": "p^-1/2 + log(n)/n + Weyl shift of the MC error bar",
    "spikes": "p^-1/2 + n^-1/2",
    "spikes_sampled": "p^-1/2 + n^-1/2 + MC error bar / min |spike|",
    "alignments": "p^-1/2 + n^-1/2",
    "alignments_sampled": "p^-1/2 + n^-1/2 + 4 sqrt(2) MC error bar / gap",
    "design_exact": "2/sqrt(p) (both kernels within 1/sqrt(p) of one surrogate)",
    "design_sampled": "Monte-Carlo error bar / ||exact||",
    "design_equations": "solver tolerance",
}
_KERNELS = {"ck": "CK", "ntk": "NTK"}


# ----------------------------------------------------------------------------------------
# rows and the verdict
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckRow(Record):
    """One distance of the check with its expected size.

    Attributes
    ----------
    key : str
        Short name (e.g. "ck.surrogate").
    quantity : str
        What is measured.
    value : float or None
        The distance (None when it does not exist, e.g. no spikes, no feasible design).
    expected : float or None
        The size the theory leads one to expect.
    expected_size : str
        How ``expected`` is made, with its value.
    ratio : float or None
        value / expected.
    within : bool or None
        value <= expected (None when there is no value).
    note : str
    """

    key: str
    quantity: str
    value: float | None
    expected: float | None
    expected_size: str
    ratio: float | None
    within: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        """"yes" (within the expected size), "no", or "n/a" (no value)."""
        return "n/a" if self.within is None else ("yes" if self.within else "no")

    def to_dict(self) -> dict:
        """JSON-ready dictionary with the ``verdict``."""
        return {**super().to_dict(), "verdict": self.verdict}


def check_row(key: str, quantity: str, value: float | None, expected: float | None,
              how: str, note: str = "", *, ceiling: float | None = None) -> CheckRow:
    """A :class:`CheckRow` with its verdict: within the expected size when
    value <= expected, ratio = value/expected.

    No verdict (None, "n/a") for a missing or non-finite value, a missing expected size,
    or an expected size at or above ``ceiling``, the largest value the quantity can take
    (a Kolmogorov-Smirnov distance or a squared cosine is at most 1): such a bound says
    nothing, and the note says so.
    """
    v = None if value is None else float(value)
    e = None if expected is None else float(expected)
    if v is None or not math.isfinite(v) or e is None or not math.isfinite(e) or e < 0:
        return CheckRow(key, quantity, v, e, how if e is None else f"{how} = {e:.3g}",
                        None, None, note)
    ratio = v / e if e > 0 else (0.0 if v == 0 else math.inf)
    if ceiling is not None and e >= ceiling:
        vacuous = (f"expected size >= {ceiling:g}, the largest possible value: no verdict "
                   f"(a smaller Monte-Carlo error bar is needed)")
        return CheckRow(key, quantity, v, e, f"{how} = {e:.3g}", ratio, None,
                        f"{note}; {vacuous}" if note else vacuous)
    return CheckRow(key, quantity, v, e, f"{how} = {e:.3g}", ratio, bool(v <= e), note)


@dataclass(frozen=True)
class DesignOutcome(Record):
    """One registered design family tried for the CK target.

    Attributes
    ----------
    family : str
    feasible : bool
    relative_residual : float or None
        Largest relative equation error of its best network (None if the solve failed).
    message : str
        The solver's diagnosis.
    exact_distance : float or None
        A feasible family: ||K_L - G|| / ||G||, its exact CK against the DEQ's (the
        residuals of feasible families are at rounding level, so this says more about
        which design is closest; None for an infeasible family).
    """

    family: str
    feasible: bool
    relative_residual: float | None
    message: str
    exact_distance: float | None = None


@dataclass(frozen=True, eq=False)
class CheckResult(Record):
    """What :func:`run_check` measured.

    Attributes
    ----------
    activation : str
    sa, sb, tau0 : float
    p, n, K : int
    source : str
        Where the statistics come from (exact mixture or plug-in).
    solution : FixedPointSolution
    rows : tuple of CheckRow
    design_family : str or None
        The family kept (None: no feasible family).
    design_params : mapping or None
    design_outcomes : tuple of DesignOutcome
        Every family tried.
    sampling : mapping
        The sampled kernels' options, Monte-Carlo error bars and run records.
    timings : mapping str -> float
        Seconds per step.
    notes : tuple of str
    predictions : mapping {"ck", "ntk"} -> Prediction
    spectra : mapping {"ck", "ntk"} -> {"exact", "sampled"} -> SpectrumComparison
    network : DesignedNetwork or None
    """

    activation: str
    sa: float
    sb: float
    tau0: float
    p: int
    n: int
    K: int
    source: str
    solution: FixedPointSolution = field(repr=False)
    rows: tuple = ()
    design_family: str | None = None
    design_params: Mapping[str, float] | None = None
    design_outcomes: tuple = ()
    sampling: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    notes: tuple = ()
    predictions: Mapping[str, Prediction] = field(default_factory=dict, repr=False)
    spectra: Mapping[str, Mapping[str, SpectrumComparison]] = field(default_factory=dict,
                                                                    repr=False)
    network: DesignedNetwork | None = field(default=None, repr=False)

    def row(self, key: str) -> CheckRow:
        """The row named ``key``."""
        for r in self.rows:
            if r.key == key:
                return r
        raise InvalidParameterError(f"no row {key!r}; rows: {[r.key for r in self.rows]}")

    @property
    def failed(self) -> tuple:
        """The rows whose value exceeds their expected size."""
        return tuple(r for r in self.rows if r.within is False)

    def to_dict(self) -> dict:
        """JSON-ready dictionary: the configuration, the rows, the design, the sampling
        record, the timings, the notes and, per kernel, the spectral comparisons (without
        the eigenvalues)."""
        return json_ready({
            "activation": self.activation, "sa": self.sa, "sb": self.sb, "tau0": self.tau0,
            "p": self.p, "n": self.n, "K": self.K, "source": self.source,
            "solution": self.solution.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
            "design": {"family": self.design_family,
                       "params": None if self.design_params is None
                       else dict(self.design_params),
                       "tried": [o.to_dict() for o in self.design_outcomes]},
            "sampling": dict(self.sampling), "timings": dict(self.timings),
            "notes": list(self.notes),
            "spectra": {k: {route: c.to_dict(eigenvalues=False) for route, c in v.items()}
                        for k, v in self.spectra.items()}})


def format_table(result: CheckResult) -> str:
    """The rows as a plain-text table (quantity, value, expected size, ratio, verdict)."""
    head = ("quantity", "value", "expected size", "ratio", "within")
    body = [(r.quantity, "-" if r.value is None else f"{r.value:.4g}", r.expected_size,
             "-" if r.ratio is None else f"{r.ratio:.3g}",
             r.verdict + (f"  ({r.note})" if r.note else "")) for r in result.rows]
    widths = [max(len(row[i]) for row in [head] + body) for i in range(4)]
    lines = []
    for row in [head] + body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
        if row is head:
            lines.append("-" * (sum(widths) + 8 + len(head[4])))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# the steps
# ----------------------------------------------------------------------------------------
def _spike_gaps(pred: Prediction) -> np.ndarray:
    """Distance of each predicted spike to the rest of the predicted spectrum (the other
    spikes, the support intervals, the atom)."""
    pos = np.asarray(pred.spikes.positions, dtype=float)
    gaps = np.full(pos.size, math.inf)
    for s, x in enumerate(pos):
        others = np.delete(pos, s)
        if others.size:
            gaps[s] = float(np.min(np.abs(others - x)))
        for a, b in pred.bulk.support:
            gaps[s] = min(gaps[s], max(a - x, x - b, 0.0))
        if pred.bulk.atom > 0:
            gaps[s] = min(gaps[s], abs(x - pred.bulk.atom_at))
    return gaps


def _spectral_rows(kind: str, pred: Prediction, exact: SpectrumComparison,
                   sampled: SpectrumComparison, eps: float, p: int, n: int) -> list:
    """The rows of one kernel's spectrum: bulk KS and W1, spikes and alignments, exact and
    sampled (``eps`` the sampled kernel's Monte-Carlo error bar, absolute)."""
    K = _KERNELS[kind]
    bulk = 1.0 / math.sqrt(p) + math.log(n) / n
    spike = 1.0 / math.sqrt(p) + 1.0 / math.sqrt(n)
    width = pred.bulk.width
    rho = float(np.max(pred.bulk.density)) if np.size(pred.bulk.density) else 0.0
    pos = np.abs(np.asarray(pred.spikes.positions, dtype=float))
    nospike = "" if pos.size else "no isolated eigenvalue predicted"
    gap = float(np.min(_spike_gaps(pred))) if pos.size else math.inf
    rows = []
    for comp, tag in ((exact, "exact"), (sampled, "sampled")):
        e = 0.0 if tag == "exact" else eps
        suffix = "" if tag == "exact" else "_sampled"
        d = comp.distances
        rows.append(check_row(f"{kind}.bulk.ks.{tag}",
                              f"{K} spectrum bulk: Kolmogorov-Smirnov ({tag} kernel)",
                              d.ks, bulk + rho * e, EXPECTED_SIZES["bulk" + suffix],
                              ceiling=1.0))
        rows.append(check_row(f"{kind}.bulk.w1.{tag}",
                              f"{K} spectrum bulk: Wasserstein-1 / bulk width ({tag} kernel)",
                              d.w1_relative, bulk + e / width,
                              EXPECTED_SIZES["bulk" + suffix]))
        rows.append(check_row(f"{kind}.spikes.{tag}",
                              f"{K} spike positions ({tag} kernel, max relative error)",
                              comp.max_spike_error,
                              spike + (e / float(pos.min()) if pos.size else 0.0),
                              EXPECTED_SIZES["spikes" + suffix], nospike))
        rows.append(check_row(f"{kind}.alignments.{tag}",
                              f"{K} spike eigenvector alignments ({tag} kernel, max |error|)",
                              comp.max_alignment_error,
                              spike + 4.0 * math.sqrt(2.0) * e / gap,
                              EXPECTED_SIZES["alignments" + suffix], nospike, ceiling=1.0))
    return rows


def _best_design(sol: FixedPointSolution, X: np.ndarray,
                 G: np.ndarray) -> tuple[DesignedNetwork | None, tuple, dict]:
    """Every registered family for the CK target of ``sol``; the feasible network whose
    exact CK is closest to the DEQ's ``G`` on ``X`` (relative operator norm; ties: the
    registry's order), or None; the outcome of every family (a feasible one with that
    distance); and the exact CK of each feasible network.

    Every feasible family matches the surrogate's coefficients to the solver's tolerance
    (their residuals differ only in rounding), so the residual cannot rank them; what
    differs is the part of the kernel the surrogate leaves out, which the distance on the
    data measures."""
    target = design_target(sol, target="ck")
    outcomes, best, kernels = [], None, {}
    best_dist = math.inf
    for fam in FAMILIES:
        try:
            net = design_network(target, fam, strict=False)
        except (InfeasibleDesignError, InvalidParameterError) as exc:
            outcomes.append(DesignOutcome(fam, False, None, " ".join(str(exc).split())))
            continue
        message = str(net.diagnostics.get("message", ""))
        dist = None
        if net.feasible:
            kernels[fam] = np.asarray(net.exact_kernels(X, groups=("v",)).ck)
            dist = relative_operator_distance(kernels[fam], G)
        outcomes.append(DesignOutcome(fam, bool(net.feasible), float(net.relative_residual),
                                      message, dist))
        if net.feasible and (best is None or dist < best_dist):
            best, best_dist = net, dist
    return best, tuple(outcomes), kernels


def run_check(
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    X: Any,
    labels: Any,
    means: Any = None,
    covs: Any = None,
    width: int = CHECK_DEFAULTS["width"],
    realizations: int = CHECK_DEFAULTS["realizations"],
    family: str = CHECK_DEFAULTS["family"],
    seed: int = CHECK_DEFAULTS["seed"],
    dtype: str = CHECK_DEFAULTS["dtype"],
    confidence: float = CHECK_DEFAULTS["confidence"],
    target_error: float | None = None,
    data_covariance: str | None = None,
    max_memory: float | None = None,
    stage: Callable[[str], Any] | None = None,
    progress: Callable[[Any], Any] | None = None,
    source: str | None = None,
) -> CheckResult:
    """One configuration through solve, surrogates, exact and sampled kernels, spectra and
    design, with every distance beside its expected size (module docstring).

    Parameters
    ----------
    activation, sa, sb :
        The DEQ (sb defaults to 1 - sa).
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Class of each sample.
    means, covs : array_like, optional
        Exact class means (K x p) and covariances (K x p or K x p x p) of sqrt(p) x_i
        (checked against X); without them the statistics are plug-in estimates.
    width, realizations, family, seed, dtype, confidence, target_error :
        The sampled kernels (:func:`rmt_deq.sampling.deq.sampled_ntk`, which gives the CK
        and the NTK of the same draws, and
        :func:`rmt_deq.sampling.explicit.sampled_explicit_ck` for the designed network,
        seeded from ``[seed, 1]``).
    data_covariance : {"diagonal", "sample"}, optional
        Plug-in statistics only (:func:`rmt_deq.experiments.observed.data_inputs`).
    max_memory : float, optional
        Memory budget of the exact kernels and the samplers.
    stage : callable, optional
        Called with a short description before each step.
    progress : callable, optional
        Passed to the samplers (one event per realization and for the error bars).
    source : str, optional
        How the report names the data (default: where the statistics come from).

    Returns
    -------
    CheckResult

    Raises
    ------
    InvalidParameterError, ShapeMismatchError, NonFiniteInputError, UnknownOptionError
        Bad data, DEQ or sampling options (checked before the long computations).
    ConvergenceError
        A finite-width DEQ did not reach its fixed point.
    """
    say = stage or (lambda s: None)
    clock: dict[str, float] = {}
    t = time.perf_counter()
    Xa = as_data_matrix(X)
    codes, _ = as_labels(labels, Xa.shape[1], p=Xa.shape[0])
    act = get_activation(activation)
    sa_f, sb_f = check_variances(sa, sb)
    m = check_positive_int(width, "width")
    R = check_positive_int(realizations, "realizations")
    check_family(family)
    check_dtype(dtype)
    as_rng(seed)
    if not check_positive_finite(confidence, "confidence") < 1:
        raise InvalidParameterError(f"confidence must lie in (0, 1), got {confidence!r}")
    if target_error is not None:
        check_positive_finite(target_error, "target_error")
    budget = memory_budget(max_memory)
    say("four-equation system")
    inputs: SpectralInputs = data_inputs(Xa, codes, means, covs,
                                         data_covariance=data_covariance)
    p, n = Xa.shape
    sol = solve_four_equations(act, sa_f, inputs.stats.tau0, sb_f)
    clock["solve"] = time.perf_counter() - t

    def timed(name: str, what: str, fn: Callable[[], Any]) -> Any:
        say(what)
        t0 = time.perf_counter()
        out = fn()
        clock[name] = time.perf_counter() - t0
        return out

    sur = timed("surrogates", "CK and NTK surrogates", lambda: {
        k: observed_kernel("surrogate", k, inputs, act, sol).matrix for k in _KERNELS})
    exact = timed("exact", "exact infinite-width CK and NTK", lambda: exact_kernels(
        Xa, act, sa_f, sb_f, get=("ck", "ntk"), solution=sol, max_memory=budget))
    exact_m = {"ck": np.asarray(exact.ck), "ntk": np.asarray(exact.ntk)}
    smp = timed("sampled", f"sampled DEQ (m = {m}, {R} realizations)", lambda: sampled_ntk(
        Xa, act, sa_f, sb_f, width=m, groups=NTK_GROUPS, solution=sol, realizations=R,
        family=family, rng=seed, dtype=dtype, confidence=confidence,
        target_error=target_error, progress=progress, max_memory=budget))
    smp_m = {"ck": np.asarray(smp.ck), "ntk": np.asarray(smp.ntk)}

    def spectra() -> tuple[dict, dict]:
        preds, comps = {}, {}
        for k in _KERNELS:
            preds[k] = predict_spectrum(k, sol, inputs)
            comps[k] = {route: compare_spectrum(mat[k], preds[k], labels=codes,
                                                label=f"{route} {_KERNELS[k]}")
                        for route, mat in (("exact", exact_m), ("sampled", smp_m))}
        return preds, comps

    preds, comps = timed("spectra", "predicted spectra against the observed ones", spectra)
    rows = []
    norms = {k: operator_norm(exact_m[k]) for k in _KERNELS}
    inv = 1.0 / math.sqrt(p)
    total = ntk_group_coefficients(sol)["total"]
    for k, name in _KERNELS.items():
        slow = ""
        if k == "ntk" and abs(total.c5) > 1e-12 * abs(total.c1):
            slow = (f"refinement coefficient c5 = {total.c5:.3g} != 0: a term of order "
                    f"sqrt(log p / p) remains")
        rows.append(check_row(f"{k}.surrogate",
                              f"{name} surrogate vs exact (operator norm, relative)",
                              relative_operator_distance(sur[k], exact_m[k]), inv,
                              EXPECTED_SIZES["surrogate"], slow))
        rows.append(check_row(f"{k}.sampled", f"sampled {name} vs exact (operator norm, "
                                             f"relative)",
                              relative_operator_distance(smp_m[k], exact_m[k]),
                              float(smp.error[k]) / norms[k], EXPECTED_SIZES["sampled"],
                              "finite-width bias O(1/m) not in the error bar"))
        rows += _spectral_rows(k, preds[k], comps[k]["exact"], comps[k]["sampled"],
                               float(smp.error[k]), p, n)
    net, outcomes, designed_exact = timed(
        "design", f"design: {len(FAMILIES)} families for the CK target, exact CK of each "
                  f"feasible one", lambda: _best_design(sol, Xa, exact_m["ck"]))
    design_sampling: dict[str, Any] = {}
    if net is None:
        none = "no registered family matches this CK target"
        rows += [check_row("design.equations", "design equations (max relative error)",
                           None, None, EXPECTED_SIZES["design_equations"], none),
                 check_row("design.exact", "designed network CK vs DEQ CK (exact kernels, "
                                           "operator norm, relative)", None, 2 * inv,
                           EXPECTED_SIZES["design_exact"], none),
                 check_row("design.sampled", "designed network: sampled CK vs exact "
                                             "(operator norm, relative)", None, None,
                           EXPECTED_SIZES["design_sampled"], none)]
    else:
        def designed() -> tuple[np.ndarray, Any]:
            K_exp = designed_exact[net.family]
            S = sampled_explicit_ck(Xa, net.network, width=m, realizations=R,
                                    family=family, rng=np.random.default_rng([seed, 1]),
                                    dtype=dtype, tau0=net.tau0, confidence=confidence,
                                    target_error=target_error, progress=progress,
                                    max_memory=budget)
            return K_exp, S

        K_exp, S_exp = timed("designed", f"designed {net.family} network: sampled CK",
                             designed)
        design_sampling = {"mc_error": float(S_exp.error["ck"]),
                           "mc_error_relative": float(S_exp.error_relative["ck"]),
                           "realizations": S_exp.info.realizations,
                           "elapsed_s": S_exp.info.elapsed}
        rows += [check_row("design.equations",
                           f"design equations ({net.family}, max relative error)",
                           net.relative_residual, float(net.diagnostics["tol"]),
                           EXPECTED_SIZES["design_equations"]),
                 check_row("design.exact", f"designed {net.family} CK vs DEQ CK (exact "
                                           f"kernels, operator norm, relative)",
                           relative_operator_distance(K_exp, exact_m["ck"]), 2 * inv,
                           EXPECTED_SIZES["design_exact"]),
                 check_row("design.sampled", f"designed {net.family}: sampled CK vs exact "
                                             f"(operator norm, relative)",
                           relative_operator_distance(np.asarray(S_exp.ck), K_exp),
                           float(S_exp.error["ck"]) / operator_norm(K_exp),
                           EXPECTED_SIZES["design_sampled"],
                           "finite-width bias O(1/m) not in the error bar")]
    sampling = {"width": m, "realizations": smp.info.realizations, "requested": R,
                "family": smp.info.family, "dtype": smp.info.dtype, "seed": seed,
                "confidence": smp.info.confidence, "stopped_early": smp.info.stopped_early,
                "mc_error": {k: float(smp.error[k]) for k in _KERNELS},
                "mc_error_relative": {k: float(smp.error_relative[k]) for k in _KERNELS},
                "elapsed_s": smp.info.elapsed, "designed": design_sampling}
    notes = list(inputs.notes)
    if preds["ck"].bulk.atom > 0:
        notes.append("n > p: the predicted spectrum has an atom, which the exact kernel "
                     "spreads over a width O(p^-1/2): Kolmogorov-Smirnov is then not the "
                     "distance to judge the bulk by (1-Wasserstein is)")
    clock["total"] = time.perf_counter() - t
    return CheckResult(
        activation=act.name, sa=sa_f, sb=sb_f, tau0=float(inputs.stats.tau0), p=p, n=n,
        K=inputs.K, source=inputs.source if source is None else str(source),
        solution=sol, rows=tuple(rows),
        design_family=None if net is None else net.family,
        design_params=None if net is None else frozen_mapping(net.params, arrays=False),
        design_outcomes=outcomes, sampling=frozen_mapping(sampling, arrays=False),
        timings=frozen_mapping(clock, arrays=False), notes=tuple(notes),
        predictions=frozen_mapping(preds, arrays=False),
        spectra=frozen_mapping(comps, arrays=False), network=net)
