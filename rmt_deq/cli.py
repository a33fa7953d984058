"""Command line: ``rmt-deq solve | kernel | spectrum | demo``.

Library code prints nothing; this module is where output and progress are shown.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numpy as np

from .errors import RmtDeqError, ShapeMismatchError

__all__ = ["main", "build_parser"]

_ACT_HELP = ("activation name, parameters after a colon: relu, leaky_relu:0.1, tanh, erf, "
             "sigmoid, swish, gelu, elu:1, softplus, hard_tanh:a,c, quadratic:a,b, "
             "polynomial:c0,c1,...")


def _float_or_none(s: str | None) -> float | None:
    return None if s is None else float(s)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="rmt-deq",
        description="Random-matrix theory of deep equilibrium models (Implicit-CK/NTK).")
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solve", help="solve the four-equation system (tau, alpha1..alpha4)")
    s.add_argument("--activation", required=True, help=_ACT_HELP)
    s.add_argument("--sa", type=float, required=True, help="variance of recurrent weights A")
    s.add_argument("--sb", type=float, default=None, help="variance of input weights B "
                   "(default 1 - sa)")
    s.add_argument("--tau0", type=float, default=1.0, help="data scale sqrt(tr C°/p) "
                   "(default 1)")
    s.add_argument("--method", default="auto", choices=["auto", "closed", "quadrature",
                                                         "mpmath"])
    s.add_argument("--dps", type=int, default=50, help="digits for --method mpmath")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    k = sub.add_parser(
        "kernel",
        help="compute a kernel matrix on data",
        description=(
            "Compute a kernel on the columns of X.  FILE.npz holds X (p x n, columns are "
            "samples) and labels (n,); optionally means (K x p) and covs (K x p diagonals "
            "or K x p x p) to use the exact mixture statistics for the surrogate instead of "
            "plug-in estimates.  Units: x_i = (mu_a + omega_i)/sqrt(p), omega_i ~ N(0, C_a), "
            "so means[a] is the class mean of sqrt(p) x_i and covs[a] its class covariance "
            "(not those of x_i); means/covs that contradict X are refused.  Convention: for "
            "--kind ck the output is G, the conjugate "
            "kernel of z = phi_c(u)/sqrt(m) (G_ij = E[phi_c(u_i) phi_c(u_j)]), not the "
            "preactivation kernel Sigma = sa G + sb X^T X; for --kind ntk it is the NTK of "
            "f = v^T z summed over --groups.  --method sampled averages finite-width "
            "DEQs (width --width, --realizations weight draws from --family) and reports "
            "its Monte-Carlo error bar."))
    k.add_argument("--data", required=True, help="input .npz file (X, labels[, means, covs])")
    k.add_argument("--activation", required=True, help=_ACT_HELP)
    k.add_argument("--sa", type=float, required=True)
    k.add_argument("--sb", type=float, default=None)
    k.add_argument("--tau0", type=float, default=None,
                   help="data scale tau0 = sqrt(tr C°/p); default: from means/covs when "
                        "given, else the plug-in estimate from the labels, else all samples "
                        "as one class (the same convention for every --method)")
    k.add_argument("--kind", choices=["ck", "ntk"], default="ck")
    k.add_argument("--method", choices=["exact", "surrogate", "sampled"], default="exact")
    k.add_argument("--groups", default="v,A,B",
                   help="NTK parameter groups to sum, comma-separated from v,A,B")
    k.add_argument("--out", required=True, help="output .npy file (n x n)")
    smp = k.add_argument_group("sampled kernels (--method sampled)")
    smp.add_argument("--width", type=int, default=None, help="network width m (required)")
    smp.add_argument("--realizations", type=int, default=16,
                     help="independent weight draws averaged (default 16)")
    smp.add_argument("--family", choices=["gaussian", "orthogonal", "symmetric"],
                     default="gaussian", help="family of the recurrent weights A")
    smp.add_argument("--seed", type=int, default=0,
                     help="seed (same seed and options give the same matrix; default 0)")
    smp.add_argument("--dtype", choices=["float32", "float64"], default="float64",
                     help="working precision (the average is kept in float64)")
    smp.add_argument("--target-error", type=float, default=None,
                     help="stop early once the relative Monte-Carlo error bar is below this")
    smp.add_argument("--confidence", type=float, default=0.95,
                     help="confidence of the Monte-Carlo error bar (default 0.95)")
    smp.add_argument("--control-variate", action="store_true",
                     help="--kind ck: average with the input-injection control variate "
                          "(unbiased, smaller Monte-Carlo error for the same realizations)")
    smp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar on stderr (default: when stderr is a terminal)")
    smp.add_argument("--info", default=None,
                     help="also write the error bar and solver diagnostics to this JSON file")

    sp = sub.add_parser(
        "spectrum",
        help="limiting eigenvalue spectrum of the CK/NTK (no sampling): density, atom, "
             "support, isolated eigenvalues",
        description=(
            "The limiting spectral density, the point atom, the support intervals and the "
            "isolated eigenvalues (spikes) of the DEQ's CK G (--kind ck) or NTK (--kind "
            "ntk), computed from the mixture statistics alone (theory.md §7).  SPEC.json "
            "holds means (K x p), covs (K x p diagonals or K x p x p) and sizes (n_a per "
            "class); FILE.npz holds X (p x n, columns are samples) and labels (n,), "
            "optionally means and covs (else plug-in estimates).  Units: x_i = (mu_a + "
            "omega_i)/sqrt(p), omega_i ~ N(0, C_a): means are the class means of sqrt(p) "
            "x_i and covs its class covariances.  --json prints one object "
            "with x, density, atom, atom_at, support, spikes (and more)."))
    sp.add_argument("--activation", required=True, help=_ACT_HELP)
    sp.add_argument("--sa", type=float, required=True)
    sp.add_argument("--sb", type=float, default=None, help="default 1 - sa")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--mixture", help="SPEC.json (means, covs, sizes)")
    src.add_argument("--data", help="FILE.npz (X, labels[, means, covs])")
    sp.add_argument("--kind", choices=["ck", "ntk"], default="ck")
    sp.add_argument("--groups", default="v,A,B",
                    help="NTK parameter groups, comma-separated from v,A,B (--kind ntk)")
    sp.add_argument("--num", type=int, default=1000, help="grid points of the density")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--plot", default=None, help="write a figure (PNG/PDF/SVG)")
    sp.add_argument("--sample-seed", type=int, default=None,
                    help="with --mixture and --plot: histogram the surrogate's eigenvalues "
                         "on one sample drawn with this seed")

    g = sub.add_parser(
        "design",
        help="design a shallow explicit network matching a DEQ's CK or NTK",
        description=(
            "Solve for an explicit network of --family whose CK (or NTK) surrogate "
            "coefficients equal the DEQ's (theory.md section 6).  Families: lrelu2 "
            "(sigma_l(t) = max(a_l t, b_l t) before centring; params a1, b1, a2, b2), quad2 "
            "(sigma_l(t) = a_l t + b_l (t^2 - tau_{l-1}^2); a1, b1, a2, b2), htanh1 "
            "(sigma(t) = a1 clip(t, -c1, c1); a1, c1), quadcubic2 (quad2 plus c2 (t^3 - "
            "3 tau_1^2 t) in layer 2), htanhlin2 (two odd layers a_l clip(t, -c_l, c_l) + "
            "b_l t, a1 = 1; a1, c1, b1, a2, c2, b2).  A target the family cannot match "
            "exits with status 2 and says which equation fails."))
    g.add_argument("--activation", required=True, help=_ACT_HELP)
    g.add_argument("--sa", type=float, required=True, help="variance of recurrent weights A")
    g.add_argument("--sb", type=float, default=None, help="variance of input weights B "
                   "(default 1 - sa)")
    g.add_argument("--tau0", type=float, default=1.0, help="data scale sqrt(tr C°/p) "
                   "(default 1)")
    g.add_argument("--family", required=True,
                   choices=["lrelu2", "quad2", "htanh1", "quadcubic2", "htanhlin2"])
    g.add_argument("--target", choices=["ck", "ntk"], default="ck")
    g.add_argument("--refine", action="store_true",
                   help="NTK target of an odd DEQ activation: also match the refinement "
                        "coefficients c5 and theta_slope (family htanhlin2)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (family, residual, params, ...)")
    g.add_argument("--out", default=None, help="also save the designed network (JSON file)")

    d = sub.add_parser("demo", help="solve a default case and write a spectral figure")
    d.add_argument("--activation", default="relu", help=_ACT_HELP)
    d.add_argument("--sa", type=float, default=0.2)
    d.add_argument("--p", type=int, default=400, help="dimension (default 400)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="rmt_deq_demo.png", help="figure path")
    return ap


def _cmd_solve(args: argparse.Namespace) -> int:
    from .fixed_point import solve_four_equations

    sol = solve_four_equations(args.activation, args.sa, args.tau0, args.sb,
                               method=args.method, dps=args.dps)
    if args.json:
        d = sol.to_dict()
        print(json.dumps(d, indent=None, default=float))
        return 0
    print(f"activation {sol.activation}   sa = {sol.sa:g}   sb = {sol.sb:g}   "
          f"tau0 = {sol.tau0:g}")
    for name in ("tau", "alpha1", "alpha2", "alpha3", "alpha4", "g1", "g2", "g4", "centring"):
        print(f"  {name:9s} = {getattr(sol, name): .16g}")
    c = sol.contraction
    print(f"  contraction: tau map sa*g4/2 = {c['tau_map']:.4g}, sa*g1 = {c['alpha1']:.4g}, "
          f"sa*E[phi'^2] = {c['deq_jacobian']:.4g}")
    print(f"  residual {sol.residual:.2e} after {sol.iterations} Newton iterations; "
          f"unique on [0, {sol.q_scan:.3g}]: {sol.unique}")
    return 0


def _load_npz(path: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {key: f[key] for key in f.files}
    except (OSError, ValueError) as exc:
        raise ShapeMismatchError(f"cannot read {path!r} as an .npz file: {exc}") from None
    if "X" not in data:
        raise ShapeMismatchError(f"{path!r} has no array 'X' (p x n, columns are samples); "
                                 f"found {sorted(data)}")
    return data


def _finite(x: float) -> float | None:
    """x, or None (JSON null) when it is not finite (one realization: no error bar)."""
    x = float(x)
    return x if np.isfinite(x) else None


class _ProgressBar:
    """Text progress bar for sampled kernels, redrawn in place on a stream."""

    def __init__(self, stream, width: int = 30) -> None:
        self.stream, self.width = stream, width

    def __call__(self, p) -> None:
        frac = p.realization / p.realizations
        done = int(round(self.width * frac))
        eta = p.elapsed / p.realization * (p.realizations - p.realization)
        err = "" if p.relative_error is None else f"  rel. MC error {p.relative_error:.2e}"
        self.stream.write(f"\r[{'#' * done}{'.' * (self.width - done)}] "
                          f"{p.realization}/{p.realizations}  {p.elapsed:6.1f}s  "
                          f"eta {eta:6.1f}s{err}")
        if p.realization == p.realizations:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _cmd_kernel_sampled(args: argparse.Namespace, data: dict, groups: tuple) -> int:
    from .errors import InvalidParameterError
    from .pipeline import sampled_kernel_from_data

    if args.width is None:
        raise InvalidParameterError("--method sampled needs --width M (the network width)")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = _ProgressBar(sys.stderr) if show else None
    res = sampled_kernel_from_data(
        data["X"], args.activation, args.sa, args.sb, labels=data.get("labels"),
        means=data.get("means"), covs=data.get("covs"), tau0=args.tau0, kind=args.kind,
        groups=groups, width=args.width, realizations=args.realizations,
        family=args.family, rng=args.seed, dtype=args.dtype, target_error=args.target_error,
        confidence=args.confidence, progress=bar,
        **({"control_variate": True} if args.control_variate else {}))
    if bar is not None and res.info.stopped_early:
        bar.close()
    K = np.asarray(res.matrix)
    np.save(args.out, K)
    info = res.info
    if args.info:
        d = {"kind": args.kind, "method": "sampled", "width": info.width,
             "realizations": info.realizations, "requested": info.requested,
             "family": info.family, "dtype": info.dtype, "seed": args.seed,
             "activation": info.activation, "sa": info.sa, "sb": info.sb,
             "tau0": info.tau0, "tau0_source": info.tau0_source, "tau": info.tau,
             "centring": info.centring,
             "mc_error": _finite(res.mc_error),
             "mc_error_relative": _finite(res.mc_error_relative),
             "confidence": info.confidence, "stopped_early": info.stopped_early,
             "control_variate": bool(info.control_variate),
             "forward_iterations": [r.iterations for r in info.forward],
             "elapsed_s": info.elapsed}
        if args.kind == "ntk":
            d["groups"] = list(res.selected)
            d["group_errors"] = {g: _finite(e) for g, e in res.group_errors.items()}
        with open(args.info, "w") as f:
            json.dump(d, f, indent=1, default=float)
    print(f"wrote {args.out}: {args.kind} (sampled: m = {info.width}, "
          f"{info.realizations} realizations, {info.family}, {info.dtype}), shape {K.shape}; "
          f"Monte-Carlo error {res.mc_error:.3g} ({res.mc_error_relative:.2%} of the norm, "
          f"{info.confidence:.0%} confidence) in {info.elapsed:.1f}s", file=sys.stderr)
    return 0


def _cmd_kernel(args: argparse.Namespace) -> int:
    from .pipeline import kernel_from_data

    data = _load_npz(args.data)
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    if args.method == "sampled":
        return _cmd_kernel_sampled(args, data, groups)
    if (args.width is not None or args.target_error is not None or args.info is not None
            or args.control_variate):
        from .errors import InvalidParameterError
        raise InvalidParameterError("--width, --target-error, --info and --control-variate "
                                    "apply to --method sampled only")
    K = kernel_from_data(data["X"], args.activation, args.sa, args.sb,
                         labels=data.get("labels"), means=data.get("means"),
                         covs=data.get("covs"), tau0=args.tau0, kind=args.kind,
                         method=args.method, groups=groups)
    np.save(args.out, K)
    print(f"wrote {args.out}: {args.kind} ({args.method}), shape {K.shape}", file=sys.stderr)
    return 0


def _cmd_spectrum(args: argparse.Namespace) -> int:
    from .spikes import spectrum_report

    groups = None
    if args.kind == "ntk":
        groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    rep = spectrum_report(args.activation, args.sa, args.sb, mixture=args.mixture,
                          data=args.data, kind=args.kind, groups=groups, num=args.num,
                          plot=args.plot, sample_seed=args.sample_seed)
    if args.json:
        print(json.dumps(rep, default=float))
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
    from .design import design_for_deq

    net = design_for_deq(args.activation, args.sa, args.tau0, args.sb, family=args.family,
                         target=args.target, refine=args.refine)
    if args.out:
        net.save(args.out)
    if args.json:
        print(json.dumps(net.record(), default=float))
        return 0
    print(f"{net.family} network for the {args.target.upper()} of {net.target.activation} "
          f"(sa = {net.target.sa:g}, sb = {net.target.sb:g}, tau0 = {net.tau0:g})")
    for k, v in net.params.items():
        print(f"  {k:3s} = {v: .16g}")
    for name, req, got in zip(net.target.equations, net.target.values, net.achieved):
        print(f"  {name:10s} required {req: .12g}   achieved {got: .12g}")
    print(f"  residual (max absolute equation error) {net.residual:.2e}; "
          f"solved in {1e3 * net.diagnostics['solve_time_s']:.2f} ms")
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .pipeline import run_demo

    run_demo(activation=args.activation, sa=args.sa, p=args.p, seed=args.seed,
             out=args.out, echo=print)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rmt-deq`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return {"solve": _cmd_solve, "kernel": _cmd_kernel, "demo": _cmd_demo,
                "spectrum": _cmd_spectrum, "design": _cmd_design}[args.command](args)
    except RmtDeqError as exc:
        print(f"rmt-deq {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rmt-deq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
