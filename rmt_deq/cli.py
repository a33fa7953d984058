"""Command line: ``rmt-deq COMMAND [options]``, also ``python -m rmt_deq COMMAND ...``.

Commands (``rmt-deq COMMAND --help`` for each one's options):

* ``solve``: the four-equation system (tau, alpha1..alpha4) of a DEQ (docs/theory.md §3);
* ``kernel``: the CK or NTK matrix of a DEQ on a data file, exact (§2.2, §2.3), by the
  surrogates (§4, §5) or sampled at finite width (§8);
* ``spectrum``: the limiting eigenvalue spectrum of the CK or NTK without sampling:
  density, atom, support, isolated eigenvalues (§7);
* ``design``: a shallow explicit network matching a DEQ's CK or NTK (§6);
* ``demo``: a default case solved and drawn (four equations, exact CK, predicted spectrum);
* ``figures``: the figure set with its tables and manifest (:mod:`rmt_deq.jobs.figures`).

``rmt-deq --version`` prints the package version (from the installed package's metadata).

Library code prints nothing; this module is where output and progress are shown.

Every rejected input ends with exit status 2 and one line on stderr: argparse's errors
(unknown option, bad number, a choice not in the list) and every :class:`RmtDeqError`
raised by the jobs.  Output paths are checked before anything is computed and written
atomically (:mod:`rmt_deq._io`); every ``--json`` document is strict JSON, a number that
is not finite (e.g. ``q_scan`` when the fixed point is unique on all of [0, inf)) being
written as ``null``.  The choice lists are the library's own constants.  Each command imports
its job when it runs.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import Any, NoReturn, Sequence

import numpy as np

from rmt_deq import _io
from rmt_deq._validation import DEFAULT_MAX_MEMORY
from rmt_deq.design.families import FAMILIES as _DESIGN_FAMILIES
from rmt_deq.design.targets import TARGETS as _DESIGN_TARGETS
from rmt_deq.errors import InvalidParameterError, RmtDeqError
from rmt_deq.moments.gaussian import METHODS as _MOMENT_METHODS
from rmt_deq.kernels.exact import NTK_GROUPS
from rmt_deq.jobs.figures import add_figures_parser
from rmt_deq.jobs.kernel import KINDS, METHODS as _KERNEL_METHODS
from rmt_deq.networks.weights import DTYPES as _WEIGHT_DTYPES, WEIGHT_FAMILIES

__all__ = ["main", "build_parser"]

_ACT_HELP = ("activation name, parameters after a colon: relu, leaky_relu:0.1, tanh, erf, "
             "sigmoid, swish, gelu, elu:1, softplus, hard_tanh:a,c, quadratic:a,b, "
             "polynomial:c0,c1,...")
_GROUPS_HELP = (f"NTK parameter groups to sum, comma-separated from {','.join(NTK_GROUPS)} "
                f"(--kind ntk only; default all)")
#: what the sampled-kernel options default to when --method sampled is given
_SAMPLED_DEFAULTS = {"realizations": 16, "family": "gaussian", "seed": 0,
                     "dtype": "float64", "confidence": 0.95}
_SAMPLED_OPTIONS = ("width", "realizations", "family", "seed", "dtype", "target_error",
                    "confidence", "control_variate", "progress", "info")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (status 2), like the jobs' errors."""

    def error(self, message: str) -> NoReturn:
        msg = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {msg} (see {self.prog} --help)\n")


def _real(s: str) -> float:
    """A finite real number (argparse type): NaN and +-inf are refused at the edge."""
    try:
        x = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {s!r}")
    return x


_MEMORY_DEFAULT = f"{DEFAULT_MAX_MEMORY / 2 ** 30:g}G"
_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def _bytes(s: str) -> float:
    """A memory size: a number of bytes, or with a binary unit K, M, G, T (e.g. 8G, 512MiB)."""
    m = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*", s)
    try:
        x = float(m.group(1)) * _UNITS[m.group(2).lower()] if m else float("nan")
    except ValueError:
        x = float("nan")
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(
            f"must be a positive memory size in bytes, optionally with K, M, G or T "
            f"(e.g. 8G); got {s!r}")
    return x


def _groups(s: str | None) -> tuple[str, ...] | None:
    return None if s is None else tuple(g.strip() for g in s.split(",") if g.strip())


class _Version(argparse.Action):
    """``--version``: print the package version (installed metadata) and exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from rmt_deq.experiments.manifest import package_version

        print(f"{parser.prog} {package_version()}")
        parser.exit(0)


def _deq_options() -> argparse.ArgumentParser:
    """Parent parser of the options that name a DEQ (solve, kernel, spectrum, design)."""
    deq = argparse.ArgumentParser(add_help=False)
    deq.add_argument("--activation", required=True, help=_ACT_HELP)
    deq.add_argument("--sa", type=_real, required=True,
                     help="variance of recurrent weights A")
    deq.add_argument("--sb", type=_real, default=None,
                     help="variance of input weights B (default 1 - sa)")
    return deq


def _scale_options() -> argparse.ArgumentParser:
    """Parent parser of the data scale of the commands without data (solve, design)."""
    scale = argparse.ArgumentParser(add_help=False)
    scale.add_argument("--tau0", type=_real, default=1.0,
                       help="data scale sqrt(tr C°/p) (default 1)")
    return scale


def build_parser() -> argparse.ArgumentParser:
    """The ``rmt-deq`` parser: one sub-command per job, choice lists from the library."""
    ap = _Parser(
        prog="rmt-deq",
        description="Random-matrix theory of deep equilibrium models (Implicit-CK/NTK).  "
                    "Bad input exits with status 2 and a one-line message; in --json "
                    "output a number that is not finite is null.")
    ap.add_argument("--version", action=_Version, help="print the version and exit")
    sub = ap.add_subparsers(dest="command", required=True)
    deq, scale = _deq_options(), _scale_options()

    s = sub.add_parser("solve", parents=[deq, scale],
                       help="solve the four-equation system (tau, alpha1..alpha4)")
    s.add_argument("--method", default="auto", choices=_MOMENT_METHODS,
                   help="engine of the Gaussian moments (default auto)")
    s.add_argument("--dps", type=int, default=None,
                   help="digits for --method mpmath (default 50, range 20..100; --method mpmath only)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON object (q_scan is null when the fixed point is "
                        "unique on all of [0, inf))")

    k = sub.add_parser(
        "kernel", parents=[deq],
        help="compute a kernel matrix on data",
        description=(
            "Compute a kernel on the columns of X.  FILE.npz holds X (p x n, columns are "
            "samples) and labels (n,); optionally means (K x p) and covs (K x p diagonals "
            "or K x p x p) to use the exact mixture statistics for the surrogate instead of "
            "plug-in estimates; no other arrays.  Units: x_i = (mu_a + omega_i)/sqrt(p), "
            "omega_i ~ N(0, C_a), so means[a] is the class mean of sqrt(p) x_i and covs[a] "
            "its class covariance (not those of x_i); means/covs that contradict X are "
            "refused.  Convention: for --kind ck the output is "
            "G, the conjugate kernel of z = phi_c(u)/sqrt(m) (G_ij = E[phi_c(u_i) "
            "phi_c(u_j)]), not the preactivation kernel Sigma = sa G + sb X^T X; for "
            "--kind ntk it is the NTK of f = v^T z summed over --groups.  --method "
            "surrogate is the CK or NTK surrogate; --method sampled averages finite-width "
            "DEQs (width --width, --realizations weight draws from --family) and reports "
            "its Monte-Carlo error bar.  --out is written exactly as named, in .npy "
            "format."))
    k.add_argument("--data", required=True, help="input .npz file (X, labels[, means, covs])")
    k.add_argument("--tau0", type=_real, default=None,
                   help="data scale tau0 = sqrt(tr C°/p) (exact and sampled kernels); default: "
                        "from means/covs when given, else the plug-in estimate from the "
                        "labels, else all samples as one class")
    k.add_argument("--kind", choices=KINDS, default="ck")
    k.add_argument("--method", choices=_KERNEL_METHODS, default="exact")
    k.add_argument("--groups", default=None, help=_GROUPS_HELP)
    k.add_argument("--out", required=True, help="output file (n x n, .npy format)")
    smp = k.add_argument_group("sampled kernels (--method sampled only)")
    smp.add_argument("--width", type=int, default=None, help="network width m (required)")
    smp.add_argument("--realizations", type=int, default=None,
                     help=f"independent weight draws averaged (default "
                          f"{_SAMPLED_DEFAULTS['realizations']})")
    smp.add_argument("--family", choices=WEIGHT_FAMILIES, default=None,
                     help=f"family of the recurrent weights A (default "
                          f"{_SAMPLED_DEFAULTS['family']})")
    smp.add_argument("--seed", type=int, default=None,
                     help=f"seed (same seed and options give the same matrix; default "
                          f"{_SAMPLED_DEFAULTS['seed']})")
    smp.add_argument("--dtype", choices=_WEIGHT_DTYPES, default=None,
                     help=f"working precision (the average is kept in float64; default "
                          f"{_SAMPLED_DEFAULTS['dtype']})")
    smp.add_argument("--target-error", type=_real, default=None,
                     help="stop early once the relative Monte-Carlo error bar is below this")
    smp.add_argument("--confidence", type=_real, default=None,
                     help=f"confidence of the Monte-Carlo error bar (default "
                          f"{_SAMPLED_DEFAULTS['confidence']})")
    smp.add_argument("--control-variate", action="store_true",
                     help="--kind ck: average with the input-injection control variate "
                          "(unbiased, smaller Monte-Carlo error for the same realizations)")
    smp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar on stderr (default: when stderr is a terminal)")
    smp.add_argument("--info", default=None,
                     help="also write the error bar and solver diagnostics to this JSON file")

    sp = sub.add_parser(
        "spectrum", parents=[deq],
        help="limiting eigenvalue spectrum of the CK/NTK (no sampling): density, atom, "
             "support, isolated eigenvalues",
        description=(
            "The limiting spectral density, the point atom, the support intervals and the "
            "isolated eigenvalues (spikes) of the DEQ's CK G (--kind ck) or NTK (--kind "
            "ntk), computed from the mixture statistics alone (docs/spectra.md).  SPEC.json "
            "holds means (K x p), covs (K x p diagonals or K x p x p) and sizes (n_a per "
            "class); FILE.npz holds X (p x n, columns are samples) and labels (n,), "
            "optionally means and covs (else plug-in estimates).  Units: x_i = (mu_a + "
            "omega_i)/sqrt(p), omega_i ~ N(0, C_a): means are the class means of sqrt(p) "
            "x_i and covs its class covariances.  --json prints one object "
            "with x, density, atom, atom_at, support, spikes (and more)."))
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--mixture", help="SPEC.json (means, covs, sizes)")
    src.add_argument("--data", help="FILE.npz (X, labels[, means, covs])")
    sp.add_argument("--kind", choices=KINDS, default="ck")
    sp.add_argument("--groups", default=None, help=_GROUPS_HELP)
    sp.add_argument("--num", type=int, default=None,
                    help="grid points of the density (default 1000)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--plot", default=None,
                    help="write a figure; format from the suffix (.png, .pdf, .svg, ...)")
    sp.add_argument("--sample-seed", type=int, default=None,
                    help="with --mixture and --plot: histogram the surrogate's eigenvalues "
                         "on one sample drawn with this seed")
    sp.add_argument("--max-memory", type=_bytes, default=None,
                    help="memory budget of the density grid and the figure's "
                         f"eigen-decomposition (e.g. 8G; default {_MEMORY_DEFAULT})")

    g = sub.add_parser(
        "design", parents=[deq, scale],
        help="design a shallow explicit network matching a DEQ's CK or NTK",
        description=(
            "Solve for an explicit network of --family whose CK (or NTK) surrogate "
            "coefficients equal the DEQ's (the explicit-network design).  Families: lrelu2 "
            "(sigma_l(t) = max(a_l t, b_l t) before centring; params a1, b1, a2, b2), quad2 "
            "(sigma_l(t) = a_l t + b_l (t^2 - tau_{l-1}^2); a1, b1, a2, b2), htanh1 "
            "(sigma(t) = a1 clip(t, -c1, c1); a1, c1), quadcubic2 (quad2 plus c2 (t^3 - "
            "3 tau_1^2 t) in layer 2), htanhlin2 (two odd layers a_l clip(t, -c_l, c_l) + "
            "b_l t, a1 = 1; a1, c1, b1, a2, c2, b2).  Each equation is judged on its own "
            "scale (relative to its target, or to 1e-3 of the kernel scale for a target "
            "that is ~0), so the verdict does not depend on the units of --tau0.  A target "
            "the family cannot match exits with status 2 and says which equation fails."))
    g.add_argument("--family", required=True, choices=_DESIGN_FAMILIES)
    g.add_argument("--target", choices=_DESIGN_TARGETS, default="ck")
    g.add_argument("--refine", action="store_true",
                   help="NTK target of an odd DEQ activation: also match the refinement "
                        "coefficients c5 and theta_slope (family htanhlin2)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (family, residual, params, ...)")
    g.add_argument("--out", default=None, help="also save the designed network (JSON file)")

    d = sub.add_parser("demo", help="solve a default case and write a spectral figure")
    d.add_argument("--activation", default="relu", help=_ACT_HELP)
    d.add_argument("--sa", type=_real, default=0.2)
    d.add_argument("--p", type=int, default=400, help="dimension (default 400; n = 0.8 p)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="rmt_deq_demo.png",
                   help="figure path; format from the suffix (.png, .pdf, .svg, ...)")
    d.add_argument("--max-memory", type=_bytes, default=None,
                   help=f"memory budget of the demo's data and kernels (e.g. 8G; default "
                        f"{_MEMORY_DEFAULT})")
    add_figures_parser(sub)
    return ap


def _print_json(obj: Any) -> None:
    """Print one strict JSON document (non-finite numbers as null)."""
    print(_io.dumps(obj))


def _cmd_solve(args: argparse.Namespace) -> int:
    from rmt_deq.fixed_point.four_equations import solve_four_equations

    if args.dps is not None and args.method != "mpmath":
        raise InvalidParameterError(f"--dps applies to --method mpmath only (got --method "
                                    f"{args.method}); drop --dps or use --method mpmath")
    kw = {} if args.dps is None else {"dps": args.dps}
    sol = solve_four_equations(args.activation, args.sa, args.tau0, args.sb,
                               method=args.method, **kw)
    if args.json:
        _print_json(sol.to_dict())
        return 0
    for line in _solution_lines(sol):
        print(line)
    return 0


# adapters: the only places that read the jobs' result fields
def _solution_lines(sol: Any) -> list[str]:
    """The text report of a four-equation solution."""
    lines = [f"activation {sol.activation}   sa = {sol.sa:g}   sb = {sol.sb:g}   "
             f"tau0 = {sol.tau0:g}"]
    lines += [f"  {name:9s} = {getattr(sol, name): .16g}"
              for name in ("tau", "alpha1", "alpha2", "alpha3", "alpha4", "g1", "g2", "g4",
                           "centring")]
    c = sol.contraction
    lines.append(f"  contraction: tau map sa*g4/2 = {c['tau_map']:.4g}, sa*g1 = "
                 f"{c['alpha1']:.4g}, sa*E[phi'^2] = {c['deq_jacobian']:.4g}")
    lines.append(f"  residual {sol.report.residual:.2e} (tolerance {sol.report.tolerance:.1e}) after "
                 f"{sol.report.iterations} iterations; unique on [0, {sol.q_scan:.3g}]: "
                 f"{sol.unique}")
    if sol.error_estimate:
        lines.append(f"  estimated relative error (moment precision) "
                     f"{max(sol.error_estimate.values()):.1e}")
    return lines


def _design_lines(net: Any, target: str) -> list[str]:
    """The text report of a designed network: parameters, each equation, the residual."""
    lines = [f"{net.family} network for the {target.upper()} of {net.target.activation} "
             f"(sa = {net.target.sa:g}, sb = {net.target.sb:g}, tau0 = {net.tau0:g})"]
    lines += [f"  {k:3s} = {v: .16g}" for k, v in net.params.items()]
    lines += [f"  {name:10s} required {req: .12g}   achieved {got: .12g}   relative error "
              f"{net.relative_errors[name]:.1e}"
              for name, req, got in zip(net.target.equations, net.target.values,
                                        net.achieved)]
    lines.append(f"  relative residual {net.relative_residual:.1e} (every equation within "
                 f"{net.diagnostics['tol']:g} of its own scale); residual (max absolute "
                 f"equation error) {net.residual:.2e}; solved in "
                 f"{1e3 * net.diagnostics['solve_time_s']:.2f} ms")
    return lines


def _sampled_info(res: Any, kind: str, seed: int) -> dict:
    """The ``--info`` record of a sampled kernel: error bar and solver diagnostics."""
    info, sol = res.info, res.solution
    d = {"kind": kind, "method": "sampled", "width": info.width,
         "realizations": info.realizations, "requested": info.requested,
         "family": info.family, "dtype": info.dtype, "seed": seed,
         "activation": sol.activation, "sa": sol.sa, "sb": sol.sb,
         "tau0": res.tau0, "tau0_source": res.tau0_source, "tau": sol.tau,
         "centring": sol.centring,
         "mc_error": res.error[kind], "mc_error_relative": res.error_relative[kind],
         "confidence": info.confidence, "stopped_early": info.stopped_early,
         "control_variate": bool(info.control_variate),
         "forward_iterations": [r.report.iterations for r in info.forward],
         "elapsed_s": info.elapsed}
    if kind == "ntk":
        d["groups"] = list(res.selected)
        d["group_errors"] = {k: e for k, e in res.error.items() if k != "ntk"}
    return d


def _sampled_summary(res: Any, kind: str, out: str, shape: tuple) -> str:
    """The one-line stderr summary of a sampled kernel."""
    info = res.info
    return (f"wrote {out}: {kind} (sampled: m = {info.width}, "
            f"{info.realizations} realizations, {info.family}, {info.dtype}), shape {shape}; "
            f"Monte-Carlo error {res.error[kind]:.3g} ({res.error_relative[kind]:.2%} of the "
            f"norm, {info.confidence:.0%} confidence) in {info.elapsed:.1f}s")


class _ProgressBar:
    """Text progress bar for sampled kernels, redrawn in place on a stream.

    The realizations fill the bar up to R/(R + 1); the final error bars (phase "error
    bar", counted in bootstrap sign draws) fill the last step, so the bar is full only
    when the whole computation is.
    """

    def __init__(self, stream, width: int = 30) -> None:
        self.stream, self.width = stream, width
        self._open = 0                       # length of the line being redrawn, 0 if none
        self._phase_start = 0.0

    def __call__(self, p) -> None:
        if p.phase == "error bar":
            if p.draws_done == 0:
                self._phase_start = p.elapsed
            f = 1.0 if p.draws_total == 0 else p.draws_done / p.draws_total
            frac = (p.realization + f) / (p.realization + 1)
            spent = p.elapsed - self._phase_start
            eta = f"{spent / f * (1.0 - f):6.1f}s" if f > 0 else "     ?"
            text = (f"{p.realization}/{p.realizations}  error bar {p.draws_done}/"
                    f"{p.draws_total} sign draws  {p.elapsed:6.1f}s  eta {eta}")
            finished = p.draws_done == p.draws_total
        else:
            frac = p.realization / (p.realizations + 1)
            eta = p.elapsed / p.realization * (p.realizations - p.realization)
            err = "" if p.relative_error is None else f"  rel. MC error {p.relative_error:.2e}"
            text = (f"{p.realization}/{p.realizations}  {p.elapsed:6.1f}s  "
                    f"eta {eta:6.1f}s{err}")
            finished = False
        done = int(self.width * frac)            # full only when everything is done
        line = f"[{'#' * done}{'.' * (self.width - done)}] {text}"
        self.stream.write("\r" + line.ljust(self._open))
        self._open = len(line)
        if finished:
            self.close()
        self.stream.flush()

    def close(self) -> None:
        """End the line being redrawn (nothing if there is none)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = 0


def _sampled_given(args: argparse.Namespace) -> list[str]:
    """The sampled-kernel options given on the command line (as --names)."""
    given = []
    for name in _SAMPLED_OPTIONS:
        value = getattr(args, name)
        if value is None or (name == "control_variate" and not value):
            continue
        flag = "--no-progress" if name == "progress" and value is False else f"--{name}"
        given.append(flag.replace("_", "-"))
    return given


def _cmd_kernel_sampled(args: argparse.Namespace, data: dict) -> int:
    from rmt_deq.jobs.kernel import sampled_kernel_from_data

    if args.width is None:
        raise InvalidParameterError("--method sampled needs --width M (the network width)")
    opt = {name: (_SAMPLED_DEFAULTS[name] if getattr(args, name) is None
                  else getattr(args, name)) for name in _SAMPLED_DEFAULTS}
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = _ProgressBar(sys.stderr) if show else None
    res = sampled_kernel_from_data(
        data["X"], args.activation, args.sa, args.sb, labels=data.get("labels"),
        means=data.get("means"), covs=data.get("covs"), tau0=args.tau0, kind=args.kind,
        groups=_groups(args.groups), width=args.width, realizations=opt["realizations"],
        family=opt["family"], rng=opt["seed"], dtype=opt["dtype"],
        target_error=args.target_error, confidence=opt["confidence"], progress=bar,
        **({"control_variate": True} if args.control_variate else {}))
    if bar is not None and res.info.stopped_early:
        bar.close()
    K = np.asarray(res.matrix)
    _io.write_npy(args.out, K, "--out")
    if args.info:
        _io.write_json(args.info, _sampled_info(res, args.kind, opt["seed"]), "--info")
    print(_sampled_summary(res, args.kind, args.out, K.shape), file=sys.stderr)
    return 0


def _cmd_kernel(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.kernel import kernel_from_data

    given = _sampled_given(args)
    if args.method != "sampled" and given:
        raise InvalidParameterError(
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --method sampled "
            f"only (got --method {args.method}); drop {'it' if len(given) == 1 else 'them'} "
            f"or use --method sampled")
    _io.check_output_path(args.out, "--out")
    if args.info is not None:
        _io.check_output_path(args.info, "--info")
    _io.check_distinct_outputs({"--out": args.out, "--info": args.info},
                               inputs={"--data": args.data})
    data = _io.read_npz(args.data, "--data")
    if args.method == "sampled":
        return _cmd_kernel_sampled(args, data)
    K = kernel_from_data(data["X"], args.activation, args.sa, args.sb,
                         labels=data.get("labels"), means=data.get("means"),
                         covs=data.get("covs"), tau0=args.tau0, kind=args.kind,
                         method=args.method, groups=_groups(args.groups))
    _io.write_npy(args.out, K, "--out")
    print(f"wrote {args.out}: {args.kind} ({args.method}), shape {K.shape}", file=sys.stderr)
    return 0


def _cmd_spectrum(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.spectrum import spectrum_report

    if args.plot is not None:
        _io.check_output_path(args.plot, "--plot", figure=True)
        _io.check_distinct_outputs({"--plot": args.plot},
                                   inputs={"--mixture": args.mixture, "--data": args.data})
    rep = spectrum_report(args.activation, args.sa, args.sb, mixture=args.mixture,
                          data=args.data, kind=args.kind, groups=_groups(args.groups),
                          num=args.num, plot=args.plot, sample_seed=args.sample_seed,
                          max_memory=args.max_memory)
    if args.json:
        _print_json(rep)
        return 0
    print(f"{rep['kind']} of {rep['activation']}, sa = {rep['sa']:g}, sb = {rep['sb']:g}: "
          f"p = {rep['p']}, n = {rep['n']} ({rep['source']})")
    print("  support: " + ", ".join(f"[{a:.6g}, {b:.6g}]" for a, b in rep["support"]))
    if rep["atom"] > 0:
        print(f"  atom: mass {rep['atom']:.6g} at {rep['atom_at']:.6g}")
    else:
        print("  atom: none")
    print("  isolated eigenvalues: "
          + (", ".join(f"{s:.6g}" for s in rep["spikes"]) if rep["spikes"] else "none"))
    for note in rep["notes"]:
        print(f"  note: {note}")
    if rep["figure"]:
        print(f"wrote {rep['figure']}", file=sys.stderr)
    return 0


def _cmd_design(args: argparse.Namespace) -> int:
    from rmt_deq.design.solve import design_for_deq

    if args.out:
        _io.check_output_path(args.out, "--out")
    net = design_for_deq(args.activation, args.sa, args.tau0, args.sb, family=args.family,
                         target=args.target, refine=args.refine)
    if args.out:
        net.save(args.out)
    if args.json:
        _print_json(net.record())
        return 0
    for line in _design_lines(net, args.target):
        print(line)
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.demo import run_demo

    _io.check_output_path(args.out, "--out", figure=True)
    run_demo(activation=args.activation, sa=args.sa, p=args.p, seed=args.seed,
             out=args.out, echo=print, max_memory=args.max_memory)
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.figures import run_figures_command

    return run_figures_command(args)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rmt-deq`` console script; returns the exit status.

    Bad input exits with status 2 and one line on stderr (argparse errors raise
    ``SystemExit(2)`` after printing it; every :class:`RmtDeqError` is printed as
    ``rmt-deq COMMAND: error: TYPE: message``).  Other exceptions are programming errors
    and propagate with their traceback.  numpy's floating-point warnings (overflow,
    invalid value) are not printed: the jobs check their results and say what failed.
    """
    args = build_parser().parse_args(argv)
    where = f"rmt-deq {args.command}"
    try:
        with np.errstate(all="ignore"):
            return {"solve": _cmd_solve, "kernel": _cmd_kernel, "demo": _cmd_demo,
                    "spectrum": _cmd_spectrum, "design": _cmd_design,
                    "figures": _cmd_figures}[args.command](args)
    except RmtDeqError as exc:
        print(f"{where}: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{where}: error: MemoryError: out of memory; use smaller sizes (--p, --num, "
              f"fewer samples) or a machine with more memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rmt-deq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (e.g. ``| head``): stop quietly, as a shell would
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
