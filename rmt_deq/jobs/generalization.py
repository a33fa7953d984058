"""The generalization job: observed and predicted errors of ridge regression on the
features of a DEQ, of its designed explicit network and on their kernels, for a mixture
specification, a data file or the built-in digits (docs/generalization.md).

:func:`generalization_report` returns a JSON-ready dict; the CLI prints it.
"""
from __future__ import annotations

from typing import Any, Iterable

from rmt_deq import _io
from rmt_deq._io import json_ready
from rmt_deq._validation import check_positive_finite
from rmt_deq.data.labelled import load_labelled_data
from rmt_deq.errors import InvalidParameterError
from rmt_deq.generalization.experiment import METHODS, RF_METHODS, generalization_experiment
from rmt_deq.generalization.problem import data_problem, mixture_problem
from rmt_deq.jobs.spectrum import load_mixture_spec
from rmt_deq.plotting import plot_generalization, save_figure

__all__ = ["generalization_report"]

_SCORES = ("train_mse", "test_mse", "test_accuracy")


def generalization_report(activation: Any, sa: float, sb: float | None = None, *,
                          mixture: Any = None, data: Any = None,
                          classes: Iterable[Any] | None = None, ridge: float = 1.0,
                          width: int = 1024, seeds: int = 10, test_fraction: float = 0.5,
                          n_train: int | None = None, n_test: int | None = None,
                          tau0: float | None = None, data_seed: int = 0, seed: int = 0,
                          methods: Iterable[str] = METHODS,
                          explicit_family: str | None = None,
                          hidden_ratio: float = 1.0) -> dict:
    """Predicted and observed generalization, as a JSON-ready dict (CLI job).

    ``rmt-deq generalization --activation A --sa S (--mixture SPEC.json | --data F.npz |
    --data digits) --ridge L --width M --seeds R``.

    Parameters
    ----------
    activation, sa, sb :
        The DEQ.
    mixture : str or mapping, optional
        SPEC.json (:func:`rmt_deq.jobs.spectrum.load_mixture_spec`): means, covs and the
        class sizes of the whole sample, split into training and test columns.
    data : str, optional
        ``"digits"`` or a ``.npz``/``.npy``/``.csv`` file
        (:func:`rmt_deq.data.labelled.load_labelled_data`), normalised to mean squared
        column norm ``tau0**2``.
    classes : iterable, optional
        With ``data``: keep only these labels (e.g. (0, 1)).
    ridge : float
        lambda > 0 on the Gram scale.
    width : int
        m of the random-feature learners.
    seeds : int
        Weight draws (>= 2).
    test_fraction : float
        Share of the columns held out (unless n_train and n_test are given).
    n_train, n_test : int, optional
    tau0 : float, optional
        Normalisation of ``data`` (default 1); not applicable to a mixture, whose scale is
        its own.
    data_seed, seed : int
        Seeds of the sample and split, and of the weights.
    methods : iterable of str
        Learners among "deq_rf", "enn_rf", "ck_kernel", "ntk_kernel".
    explicit_family : str, optional
        Design family of the explicit network.
    hidden_ratio : float
        Width of the explicit network's layers below the last over ``width`` (default 1).

    Returns
    -------
    dict
        ``predicted`` (from the statistics through the surrogates) and
        ``predicted_exact_kernel`` (random-feature learners, from the exact CK; a
        two-layer design's from its two layers' exact kernels), each
        ``{learner: {train_mse, test_mse, test_accuracy}}``; ``observed``
        ``{learner: {train_mse, train_mse_se, test_mse, test_mse_se, test_accuracy,
        test_accuracy_se, seeds}}``; ``problem``, ``settings``, ``timing``, ``design``.

    Raises
    ------
    InvalidParameterError
        Neither or both of mixture and data; classes or tau0 with a mixture; bad sizes.
    DataFileError, UnknownOptionError, ShapeMismatchError, NonFiniteInputError,
    MissingDependencyError, NoFixedPointError, ConvergenceError, InfeasibleDesignError
        From the loaders and the solvers.
    """
    if (mixture is None) == (data is None):
        raise InvalidParameterError("give exactly one of mixture (SPEC.json) and data "
                                    "(a file or 'digits')")
    if mixture is not None:
        if classes is not None or tau0 is not None:
            raise InvalidParameterError("classes and tau0 apply to data only; a mixture "
                                        "spec uses all its classes at its own scale")
        mix, sizes = load_mixture_spec(mixture)
        N = int(sizes.sum())
        if (n_train is None) != (n_test is None):
            raise InvalidParameterError("give both n_train and n_test, or neither")
        if n_train is None:
            f = float(test_fraction)
            if not 0.0 < f < 1.0:
                raise InvalidParameterError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
            n_test = int(round(f * N))
            n_train = N - n_test
        problem = mixture_problem(mix, n_train, n_test, rng=data_seed)
    else:
        t = 1.0 if tau0 is None else check_positive_finite(tau0, "tau0")
        ld = load_labelled_data(data, classes=classes, tau0=t)
        problem = data_problem(ld, test_fraction, n_train=n_train, n_test=n_test,
                               rng=data_seed)
    res = generalization_experiment(problem, activation, sa, sb, widths=(width,),
                                    ridges=(ridge,), seeds=seeds, methods=methods,
                                    explicit_family=explicit_family,
                                    hidden_ratio=hidden_ratio, seed=seed)
    lam, m = res.ridges[0], res.widths[0]
    meths = tuple(o.method for o in res.observed)
    predicted = {k: {s: getattr(res.predicted_for(k, lam, m, "surrogate"), s) for s in _SCORES}
                 for k in meths}
    exact = {k: {s: getattr(res.predicted_for(k, lam, m, "exact"), s) for s in _SCORES}
             for k in meths if k in RF_METHODS}
    observed = {}
    for k in meths:
        o = res.observed_for(k, lam, m)
        observed[k] = {s: getattr(o, s) for s in
                       ("train_mse", "train_mse_se", "test_mse", "test_mse_se",
                        "test_accuracy", "test_accuracy_se", "seeds")}
    return json_ready({
        "predicted": predicted, "predicted_exact_kernel": exact, "observed": observed,
        "problem": dict(res.problem),
        "settings": {"activation": res.activation, "sa": res.sa, "sb": res.sb,
                     "ridge": lam, "width": m, "seeds": res.seeds, "seed": seed,
                     "data_seed": data_seed, "hidden_ratio": res.hidden_ratio},
        "timing": dict(res.timing),
        "design": None if res.design is None else dict(res.design)})


# =======================================================================================
# command line: ``rmt-deq generalization``
# =======================================================================================
def add_generalization_parser(sub: Any, parents: list, real: Any, help: str) -> None:
    """Register ``rmt-deq generalization`` on the CLI's sub-parsers (``parents``: the
    DEQ options; ``real``: the CLI's finite-float type; ``help``: the one-line help)."""
    g = sub.add_parser(
        "generalization", parents=parents, help=help,
        description=(
            "Ridge regression on (a) random features of sampled DEQs of width --width, "
            "(b) random features of the designed explicit network of the same width, "
            "(c) the exact CK and (d) the exact NTK (kernel ridge), over --seeds weight "
            "draws; beside the observed train/test MSE and accuracy (mean and standard "
            "error), the errors predicted without training: the deterministic equivalent "
            "from the class statistics through the surrogates, and from the exact kernel "
            "(docs/generalization.md).  Labels are +-1 for two classes, one-vs-rest "
            "otherwise.  X is p x n (columns are samples)."))
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--mixture", help="SPEC.json of a Gaussian mixture (means, covs, sizes "
                                       "of the whole sample, split into train and test)")
    src.add_argument("--data", help="'digits' (optional extra [data]) or a labelled .npz "
                                    "(X p x n, labels), .npy or .csv file")
    g.add_argument("--ridge", type=real, required=True, help="ridge lambda > 0 (Gram scale)")
    g.add_argument("--width", type=int, default=1024, help="width m of the random features")
    g.add_argument("--seeds", type=int, default=10, help="weight draws (>= 2; default 10)")
    g.add_argument("--classes", default=None,
                   help="with --data: comma-separated labels to keep (e.g. 0,1)")
    g.add_argument("--test-fraction", type=real, default=0.5,
                   help="share of the columns held out (default 0.5)")
    g.add_argument("--tau0", type=real, default=None,
                   help="with --data: the normalisation, mean squared column norm tau0^2 "
                        "(default 1)")
    g.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated learners from {','.join(METHODS)} (default all)")
    g.add_argument("--family", default=None, help="design family of the explicit network "
                                                  "(default: the best feasible)")
    g.add_argument("--hidden-ratio", type=real, default=1.0,
                   help="width of the explicit network's hidden layers over --width "
                        "(default 1: all layers --width wide)")
    g.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    g.add_argument("--data-seed", type=int, default=0,
                   help="seed of the sample and the split (default 0)")
    g.add_argument("--json", action="store_true", help="print one strict JSON object")
    g.add_argument("--plot", default=None,
                   help="figure of predicted vs observed test MSE (format from the suffix)")


def _classes(text: str | None) -> tuple | None:
    if text is None:
        return None
    out = []
    for c in text.split(","):
        c = c.strip()
        if c:
            try:
                out.append(int(c))
            except ValueError:
                out.append(c)
    return tuple(out)


def generalization_lines(report: dict) -> list[str]:
    """The report as a table: one row per learner, predicted beside observed."""
    s = report["settings"]
    rows = [f"{s['activation']} DEQ, sa = {s['sa']:g}, sb = {s['sb']:g}: ridge {s['ridge']:g}, "
            f"width {int(s['width'])}, {int(s['seeds'])} seeds",
            f"{'learner':<11} {'test MSE observed':>22} {'predicted':>10} {'(exact K)':>10} "
            f"{'accuracy observed':>22} {'predicted':>10}"]
    for k, o in report["observed"].items():
        pr = report["predicted"].get(k, {})
        ex = report["predicted_exact_kernel"].get(k, {})

        def f(v: Any, w: int = 10) -> str:
            return f"{v:>{w}.4g}" if v is not None else f"{'-':>{w}}"
        rows.append(f"{k:<11} {o['test_mse']:>11.4g} ± {o['test_mse_se']:<8.2g} "
                    f"{f(pr.get('test_mse'))} {f(ex.get('test_mse'))} "
                    f"{o['test_accuracy']:>11.4g} ± {o['test_accuracy_se']:<8.2g} "
                    f"{f(pr.get('test_accuracy'))}")
    return rows


def run_generalization(args: Any, echo: Any) -> int:
    """``rmt-deq generalization``: check the output path, run, print (JSON or table)."""
    if args.plot:
        _io.check_output_path(args.plot, "--plot", figure=True)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    report = generalization_report(
        args.activation, args.sa, args.sb, mixture=args.mixture, data=args.data,
        classes=_classes(args.classes), ridge=args.ridge, width=args.width,
        seeds=args.seeds, test_fraction=args.test_fraction, tau0=args.tau0,
        data_seed=args.data_seed, seed=args.seed, methods=methods,
        explicit_family=args.family, hidden_ratio=args.hidden_ratio)
    if args.plot:
        ax = plot_generalization(report, title=(
            f"{report['settings']['activation']} DEQ, ridge {args.ridge:g}, "
            f"width m = {args.width}"))
        report["figure"] = save_figure(ax.figure, args.plot)
    if args.json:
        echo(_io.dumps(report))
    else:
        for line in generalization_lines(report):
            echo(line)
    return 0
