"""The generalization job: observed and predicted errors of ridge regression on the
features of a DEQ, of its designed explicit network and on their kernels, for a mixture
specification, a data file or the built-in digits (docs/generalization.md).

:func:`generalization_report` returns a JSON-ready dict; the CLI prints it.
"""
from __future__ import annotations

from typing import Any, Iterable

from rmt_deq._io import json_ready
from rmt_deq._validation import check_positive_finite
from rmt_deq.data.labelled import load_labelled_data
from rmt_deq.errors import InvalidParameterError
from rmt_deq.generalization.experiment import METHODS, RF_METHODS, generalization_experiment
from rmt_deq.generalization.problem import data_problem, mixture_problem
from rmt_deq.jobs.spectrum import load_mixture_spec

__all__ = ["generalization_report"]

_SCORES = ("train_mse", "test_mse", "test_accuracy")


def generalization_report(activation: Any, sa: float, sb: float | None = None, *,
                          mixture: Any = None, data: Any = None,
                          classes: Iterable[Any] | None = None, ridge: float = 1.0,
                          width: int = 1024, seeds: int = 10, test_fraction: float = 0.5,
                          n_train: int | None = None, n_test: int | None = None,
                          tau0: float | None = None, data_seed: int = 0, seed: int = 0,
                          methods: Iterable[str] = METHODS,
                          explicit_family: str | None = None) -> dict:
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

    Returns
    -------
    dict
        ``predicted`` (from the statistics through the surrogates) and
        ``predicted_exact_kernel`` (random-feature learners, from the exact CK), each
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
                                    explicit_family=explicit_family, seed=seed)
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
                     "data_seed": data_seed},
        "timing": dict(res.timing),
        "design": None if res.design is None else dict(res.design)})
