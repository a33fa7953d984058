"""Command line: ``rmt-deq COMMAND [options]``, also ``python -m rmt_deq COMMAND ...``.

Commands (``rmt-deq COMMAND --help`` for each one's options):

* ``solve``: the four-equation system (tau, alpha1..alpha4) of a DEQ (docs/theory.md §3);
* ``kernel``: the CK or NTK matrix of a DEQ on a data file, exact (§2.2, §2.3), by the
  surrogates (§4, §5) or sampled at finite width (§8); or of a saved designed network
  (``--network``), exact or sampled;
* ``spectrum``: the limiting eigenvalue spectrum of the CK or NTK without sampling:
  density, atom, support, isolated eigenvalues (§7), against the observed eigenvalues of
  the exact, sampled or surrogate kernel on the data;
* ``design``: a shallow explicit network matching a DEQ's CK or NTK (§6), saved as JSON
  (``--out``) or as a PyTorch module source (``--torch``);
* ``check``: one configuration through all of the above, every distance beside its
  expected size (:mod:`rmt_deq.jobs.check`);
* ``generalization``: ridge regression on DEQ and designed-network features and kernels,
  observed and predicted without training (docs/generalization.md);
* ``demo``: a default case solved and drawn (four equations, exact CK, predicted spectrum);
* ``derivations``: the sympy derivations' checks, a pass/fail table (needs sympy; exit
  status 1 when one fails).
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
import os
import sys
from typing import Any, NoReturn, Sequence

import numpy as np

from rmt_deq import _io
from rmt_deq.errors import InvalidParameterError, RmtDeqError
from rmt_deq.jobs.options import (MEMORY_DEFAULT as _MEMORY_DEFAULT, ProgressBar,
                                  memory_size as _bytes, real as _real, sampled_given,
                                  sampled_summary, sampled_values)

__all__ = ["main", "build_parser", "COMMANDS"]

_ACT_HELP = ("activation name, parameters after a colon: relu, leaky_relu:0.1, tanh, erf, "
             "sigmoid, swish, gelu, elu:1, softplus, hard_tanh:a,c, quadratic:a,b, "
             "polynomial:c0,c1,...")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (status 2), like the jobs' errors."""

    def error(self, message: str) -> NoReturn:
        msg = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {msg} (see {self.prog} --help)\n")


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


def _deq_options(required: bool = True) -> argparse.ArgumentParser:
    """Parent parser of the options that name a DEQ (solve, kernel, spectrum, design);
    ``required=False`` where another model may be named instead (kernel --network)."""
    deq = argparse.ArgumentParser(add_help=False)
    deq.add_argument("--activation", required=required, help=_ACT_HELP)
    deq.add_argument("--sa", type=_real, required=required,
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


def _add_solve(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    from rmt_deq.moments.gaussian import METHODS

    s = sub.add_parser("solve", parents=[deq, _scale_options()], help=help)
    s.add_argument("--method", default="auto", choices=METHODS,
                   help="engine of the Gaussian moments (default auto)")
    s.add_argument("--dps", type=int, default=None,
                   help="digits for --method mpmath (default 50, range 20..100; --method mpmath only)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON object (q_scan is null when the fixed point is "
                        "unique on all of [0, inf))")


def _add_kernel(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    from rmt_deq.jobs.kernel import add_kernel_parser
    add_kernel_parser(sub, [_deq_options(required=False)], help)


def _add_spectrum(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    from rmt_deq.jobs.spectrum import add_spectrum_parser
    add_spectrum_parser(sub, [deq], help)


def _add_design(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    from rmt_deq.design.families import FAMILIES
    from rmt_deq.design.targets import TARGETS

    g = sub.add_parser(
        "design", parents=[deq, _scale_options()], help=help,
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
    g.add_argument("--family", required=True, choices=FAMILIES)
    g.add_argument("--target", choices=TARGETS, default="ck")
    g.add_argument("--refine", action="store_true",
                   help="NTK target of an odd DEQ activation: also match the refinement "
                        "coefficients c5 and theta_slope (family htanhlin2)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (family, residual, params, ...)")
    g.add_argument("--out", default=None, help="also save the designed network (JSON file)")
    g.add_argument("--torch", default=None,
                   help="also write the network as a PyTorch nn.Module source file "
                        "(DesignedNetwork.torch_source; writing it needs no torch)")


def _add_generalization(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    from rmt_deq.jobs.generalization import add_generalization_parser
    add_generalization_parser(sub, [deq], _real, help)


def _add_check(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    from rmt_deq.jobs.check import add_check_parser
    add_check_parser(sub, [deq], help)


def _add_demo(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    d = sub.add_parser("demo", help=help)
    d.add_argument("--activation", default="relu", help=_ACT_HELP)
    d.add_argument("--sa", type=_real, default=0.2)
    d.add_argument("--p", type=int, default=400, help="dimension (default 400; n = 0.8 p)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="rmt_deq_demo.png",
                   help="figure path; format from the suffix (.png, .pdf, .svg, ...)")
    d.add_argument("--max-memory", type=_bytes, default=None,
                   help=f"memory budget of the demo's data and kernels (e.g. 8G; default "
                        f"{_MEMORY_DEFAULT})")


def _add_derivations(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    dv = sub.add_parser("derivations", help=help)
    dv.add_argument("--only", nargs="+", action="extend", metavar="NAME", default=None,
                    help="run only these derivations (names as in the table; an unknown "
                         "one is refused with the list)")
    dv.add_argument("--json", action="store_true",
                    help="print one JSON list (name, status, seconds, proves, message)")


def _add_figures(sub: Any, help: str, deq: argparse.ArgumentParser) -> None:
    from rmt_deq.jobs.figures import add_figures_parser
    add_figures_parser(sub, help)


#: the sub-commands: name -> (one-line help, builder of its options).  A builder imports its
#: job's module, so a process builds only the options of the command it runs.
COMMANDS = {
    "solve": ("solve the four-equation system (tau, alpha1..alpha4)", _add_solve),
    "kernel": ("compute a kernel matrix on data", _add_kernel),
    "spectrum": ("limiting eigenvalue spectrum of the CK/NTK (no sampling): density, atom, "
                 "support, isolated eigenvalues", _add_spectrum),
    "design": ("design a shallow explicit network matching a DEQ's CK or NTK", _add_design),
    "generalization": ("predicted and observed errors of ridge regression on DEQ features "
                       "and kernels", _add_generalization),
    "check": ("one configuration through solve, surrogates, exact and sampled kernels, "
              "spectra and design: every distance beside its expected size", _add_check),
    "demo": ("solve a default case and write a spectral figure", _add_demo),
    "derivations": ("run the sympy derivations' checks (needs sympy) and print a pass/fail "
                    "table", _add_derivations),
    "figures": ("build the figure set (PNG/PDF/SVG and tables) with its manifest",
                _add_figures),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``rmt-deq`` parser: one sub-command per job, choice lists from the library.

    ``command`` builds the options of that sub-command only (the others are listed with
    their help, so ``rmt-deq --help`` and an unknown command's error still name them all);
    ``None`` builds every sub-command's options.
    """
    ap = _Parser(
        prog="rmt-deq",
        description="Random-matrix theory of deep equilibrium models (Implicit-CK/NTK).  "
                    "Bad input exits with status 2 and a one-line message; in --json "
                    "output a number that is not finite is null.")
    ap.add_argument("--version", action=_Version, help="print the version and exit")
    sub = ap.add_subparsers(dest="command", required=True)
    deq = _deq_options()
    for name, (help, add) in COMMANDS.items():
        if command is None or name == command:
            add(sub, help, deq)
        else:
            sub.add_parser(name, help=help)
    return ap


def _command_of(argv: Sequence[str]) -> str:
    """The sub-command named in ``argv`` (its first token that is not an option), or ""."""
    first = next((a for a in argv if not a.startswith("-")), "")
    return first if first in COMMANDS else ""


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


def _sampler(args: argparse.Namespace, width_required: bool = False) -> tuple[dict, Any]:
    """The sampler's keyword options from the sampled group (defaults filled in) and the
    progress bar (None unless --progress or stderr is a terminal); ``width_required``: the
    kernel command's sampled routes, which have no default width."""
    if width_required and args.width is None:
        raise InvalidParameterError("--method sampled needs --width M (the network width)")
    opt = sampled_values(args)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(sys.stderr) if show else None
    kw = {"width": args.width, "realizations": opt["realizations"], "family": opt["family"],
          "rng": opt["seed"], "dtype": opt["dtype"], "target_error": args.target_error,
          "confidence": opt["confidence"], "progress": bar, "backend": args.backend}
    if args.control_variate is not None:
        kw["control_variate"] = args.control_variate
    return kw, bar


def _cmd_kernel_sampled(args: argparse.Namespace, data: dict, executor: Any = None) -> int:
    from rmt_deq.experiments.observed import sampling_record
    from rmt_deq.jobs.kernel import sampled_kernel_from_data

    kw, bar = _sampler(args, width_required=True)
    res = sampled_kernel_from_data(
        data["X"], args.activation, args.sa, args.sb, labels=data.get("labels"),
        means=data.get("means"), covs=data.get("covs"), tau0=args.tau0, kind=args.kind,
        groups=_groups(args.groups), executor=executor, **kw)
    if bar is not None:
        bar.close()
    K = np.asarray(res.matrix)
    _io.write_npy(args.out, K, "--out")
    if args.info:
        _io.write_json(args.info, sampling_record(res, args.kind, kw["rng"]), "--info")
    print(sampled_summary(res, args.kind, args.out, K.shape), file=sys.stderr)
    return 0


def _kernel_model(args: argparse.Namespace) -> None:
    """Exactly one model: a DEQ (--activation and --sa) or a designed network (--network),
    with only the options that apply to it."""
    if args.network is not None:
        deq_only = [flag for flag, given in (
            ("--activation", args.activation is not None), ("--sa", args.sa is not None),
            ("--sb", args.sb is not None), ("--tau0", args.tau0 is not None),
            ("--method surrogate", args.method == "surrogate"),
            ("--control-variate", args.control_variate)) if given]
        if deq_only:
            raise InvalidParameterError(
                f"--network conflicts with {', '.join(deq_only)}: a designed network is "
                f"used as designed (its layers and the centrings of its design tau0), "
                f"--method exact or sampled; give either --network FILE or a DEQ "
                f"(--activation, --sa, ...)")
    elif args.activation is None or args.sa is None:
        missing = [f for f, v in (("--activation", args.activation), ("--sa", args.sa))
                   if v is None]
        raise InvalidParameterError(
            f"name the model: a DEQ needs both --activation and --sa (missing "
            f"{' and '.join(missing)}), or give --network FILE (a designed network)")


def _cmd_kernel_network(args: argparse.Namespace, data: dict, executor: Any = None) -> int:
    from rmt_deq.jobs.kernel import network_kernel_from_data

    sampling = seed = bar = None
    if args.method == "sampled":
        kw, bar = _sampler(args, width_required=True)
        seed = kw["rng"]
        sampling = {**kw, "executor": executor}
    res = network_kernel_from_data(
        data["X"], args.network, labels=data.get("labels"), means=data.get("means"),
        covs=data.get("covs"), kind=args.kind, method=args.method,
        groups=_groups(args.groups), sampling=sampling)
    if bar is not None:
        bar.close()
    _io.write_npy(args.out, res.matrix, "--out")
    if args.info:
        _io.write_json(args.info, {**res.record(), "network": args.network, "seed": seed},
                       "--info")
    net, scale = res.network, res.data_scale
    head = (sampled_summary(res.kernel, args.kind, args.out, res.matrix.shape)
            if args.method == "sampled" else
            f"wrote {args.out}: {args.kind} (exact), shape {res.matrix.shape}")
    print(f"{head}; designed network {net.family} at tau0 = {net.tau0:g}, data tau0 = "
          f"{scale.tau0:.4g} ({scale.source})", file=sys.stderr)
    return 0


def _refuse_sampled(args: argparse.Namespace, needs: str, got: str) -> None:
    """Refuse sampled-kernel options given where they do not apply."""
    given = sampled_given(args)
    if given:
        raise InvalidParameterError(
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to {needs} only "
            f"(got {got}); drop {'it' if len(given) == 1 else 'them'} or use {needs}")


def _cmd_kernel(args: argparse.Namespace) -> int:
    from rmt_deq.data.labelled import data_arrays
    from rmt_deq.jobs.kernel import kernel_from_data

    _kernel_model(args)
    if args.method != "sampled":
        _refuse_sampled(args, "--method sampled", f"--method {args.method}")
    _io.check_output_path(args.out, "--out")
    if args.info is not None:
        _io.check_output_path(args.info, "--info")
    _io.check_distinct_outputs({"--out": args.out, "--info": args.info},
                               inputs={"--data": args.data, "--network": args.network})
    data = data_arrays(args.data, "--data")
    if args.method == "sampled":
        from rmt_deq.sampling.executors import make_executor

        with make_executor(args.workers, args.scheduler) as executor:
            if args.network is not None:
                return _cmd_kernel_network(args, data, executor)
            return _cmd_kernel_sampled(args, data, executor)
    if args.network is not None:
        return _cmd_kernel_network(args, data)
    K = kernel_from_data(data["X"], args.activation, args.sa, args.sb,
                         labels=data.get("labels"), means=data.get("means"),
                         covs=data.get("covs"), tau0=args.tau0, kind=args.kind,
                         method=args.method, groups=_groups(args.groups))
    _io.write_npy(args.out, K, "--out")
    print(f"wrote {args.out}: {args.kind} ({args.method}), shape {K.shape}", file=sys.stderr)
    return 0


def _cmd_spectrum(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.spectrum import default_observe, report_lines, spectrum_report

    observe = args.observe or default_observe(args.data, args.sample_seed)
    if observe != "sampled":
        _refuse_sampled(args, "--observe sampled", f"--observe {observe}")
    outputs = {"--plot": args.plot, "--info": args.info}
    for flag, path in outputs.items():
        if path is not None:
            _io.check_output_path(path, flag, figure=flag == "--plot")
    _io.check_distinct_outputs(outputs, inputs={"--mixture": args.mixture, "--data": args.data})
    sampling, bar = _sampler(args) if observe == "sampled" else (None, None)
    if sampling is not None and args.width is None:
        sampling.pop("width")
    from rmt_deq.sampling.executors import make_executor

    try:
        with make_executor(args.workers, args.scheduler) as executor:
            if sampling is not None and executor is not None:
                sampling["executor"] = executor
            rep = spectrum_report(args.activation, args.sa, args.sb, mixture=args.mixture,
                                  data=args.data, kind=args.kind, groups=_groups(args.groups),
                                  num=args.num, plot=args.plot, sample_seed=args.sample_seed,
                                  observe=args.observe, sampling=sampling,
                                  max_memory=args.max_memory)
    finally:
        if bar is not None:
            bar.close()
    if args.info:
        _io.write_json(args.info, rep["observed"]["sampling"], "--info")
    if args.json:
        _print_json(rep)
    else:
        for line in report_lines(rep):
            print(line)
    for path in (rep["figure"], args.info):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.check import check_command

    return check_command(args)


def _cmd_design(args: argparse.Namespace) -> int:
    from rmt_deq.design.solve import design_for_deq

    for flag, path in (("--out", args.out), ("--torch", args.torch)):
        if path:
            _io.check_output_path(path, flag)
    _io.check_distinct_outputs({"--out": args.out, "--torch": args.torch})
    net = design_for_deq(args.activation, args.sa, args.tau0, args.sb, family=args.family,
                         target=args.target, refine=args.refine)
    if args.out:
        net.save(args.out)
    if args.torch:
        net.save_torch(args.torch)
    if args.json:
        _print_json(net.record())
        return 0
    for line in _design_lines(net, args.target):
        print(line)
    for path in (args.out, args.torch):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.demo import run_demo

    _io.check_output_path(args.out, "--out", figure=True)
    run_demo(activation=args.activation, sa=args.sa, p=args.p, seed=args.seed,
             out=args.out, echo=print, max_memory=args.max_memory)
    return 0


def _cmd_generalization(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.generalization import run_generalization

    return run_generalization(args, print)


def _cmd_derivations(args: argparse.Namespace) -> int:
    from rmt_deq.jobs.derivations import run_derivations

    results = run_derivations(args.only,
                              echo=None if args.json else lambda s: print(s, flush=True))
    if args.json:
        _print_json([r.record() for r in results])
    return 0 if all(r.passed for r in results) else 1


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
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command_of(argv)).parse_args(argv)
    where = f"rmt-deq {args.command}"
    try:
        with np.errstate(all="ignore"):
            return {"solve": _cmd_solve, "kernel": _cmd_kernel, "demo": _cmd_demo,
                    "spectrum": _cmd_spectrum, "design": _cmd_design,
                    "generalization": _cmd_generalization, "check": _cmd_check,
                    "derivations": _cmd_derivations,
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
