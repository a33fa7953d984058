"""A learning problem: labelled columns split into training and test parts, with the
statistics the surrogates need (docs/generalization.md §3).

Every kernel and feature map of an experiment is computed on the union of the two parts
(train first in the index arrays, nothing else shared), at one data scale tau0: the
mixture's own tr(C°)/p for a :class:`~rmt_deq.data.mixture.GaussianMixture` sample, the
plug-in estimate (docs/theory.md §1.4) for other labelled data.  The DEQ's centring, the
exact kernels, the surrogates and the designed network all use that tau0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import readonly
from rmt_deq._validation import as_rng, check_positive_int
from rmt_deq.data.labelled import LabelledData, labelled_data, train_test_split
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.data.statistics import plugin_statistics
from rmt_deq.errors import InvalidParameterError

__all__ = ["Problem", "mixture_problem", "data_problem"]


@dataclass(frozen=True, eq=False)
class Problem:
    """Labelled columns with a train/test split.

    Attributes
    ----------
    X : ndarray, shape (p, N)
        All columns (training and test).
    codes : ndarray of int, shape (N,)
        Classes 0..K-1.
    K : int
    train, test : ndarray of int
        Column indices of the two parts (disjoint).
    tau0 : float
        The data scale of every kernel (module docstring).
    tau0_source : str
        "mixture statistics" or "plug-in from labels".
    source : str
        "mixture" or the data's source.
    mixture : GaussianMixture or None
    sample : MixtureSample or None
        The union as a sample of ``mixture`` (exact statistics and psi for the surrogates).
    """

    X: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    K: int
    train: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    tau0: float
    tau0_source: str
    source: str
    mixture: GaussianMixture | None = field(default=None, repr=False)
    sample: MixtureSample | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("X", "codes", "train", "test"):
            object.__setattr__(self, name, readonly(getattr(self, name)))

    @property
    def p(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_train(self) -> int:
        return int(self.train.size)

    @property
    def n_test(self) -> int:
        return int(self.test.size)

    def to_dict(self) -> dict:
        return json_ready({"source": self.source, "p": self.p, "K": self.K,
                           "n_train": self.n_train, "n_test": self.n_test,
                           "n_train_over_p": self.n_train / self.p, "tau0": self.tau0,
                           "tau0_source": self.tau0_source,
                           "train_sizes": np.bincount(self.codes[self.train], minlength=self.K),
                           "test_sizes": np.bincount(self.codes[self.test], minlength=self.K)})


def mixture_problem(mixture: GaussianMixture, n_train: int, n_test: int,
                    rng: Any = 0) -> Problem:
    """Draw n_train + n_test columns of ``mixture`` (one sample, class sizes from its
    proportions) and split them class by class (:func:`~rmt_deq.data.labelled.train_test_split`,
    same ``rng``).

    Raises
    ------
    InvalidParameterError
        Not a GaussianMixture; sizes that leave a class with fewer than two columns in a
        part.
    """
    if not isinstance(mixture, GaussianMixture):
        raise InvalidParameterError(
            f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    n_tr = check_positive_int(n_train, "n_train")
    n_te = check_positive_int(n_test, "n_test")
    gen = as_rng(rng)
    sample = mixture.sample(n_tr + n_te, gen)
    data = labelled_data(sample.X, sample.labels, source="mixture", min_class_size=1)
    train, test = train_test_split(data, n_train=n_tr, n_test=n_te, rng=gen)
    stats = mixture.statistics(sample)
    return Problem(X=sample.X, codes=np.asarray(sample.labels, dtype=np.int64), K=mixture.K,
                   train=train, test=test, tau0=float(stats.tau0),
                   tau0_source="mixture statistics", source="mixture", mixture=mixture,
                   sample=sample)


def data_problem(data: LabelledData, test_fraction: float = 0.5, *,
                 n_train: int | None = None, n_test: int | None = None,
                 rng: Any = 0) -> Problem:
    """Split labelled data (normalised: :func:`~rmt_deq.data.labelled.load_labelled_data`)
    class by class; tau0 is the plug-in tr(C°)/p of all the columns used.

    Raises
    ------
    InvalidParameterError
        ``data`` not LabelledData; a split leaving fewer than two columns of a class in a
        part; a class with fewer than four columns (plug-in statistics).
    """
    if not isinstance(data, LabelledData):
        raise InvalidParameterError(
            f"data must be LabelledData (rmt_deq.data.labelled.load_labelled_data), got "
            f"{type(data).__name__}")
    train, test = train_test_split(data, test_fraction, n_train=n_train, n_test=n_test,
                                   rng=rng)
    used = np.concatenate([train, test])
    X = np.asarray(data.X)[:, used]
    codes = np.asarray(data.codes)[used]
    n_tr = train.size
    est = plugin_statistics(X, codes)
    tau0 = float(est.statistics.tau0)
    if not (math.isfinite(tau0) and tau0 > 0):
        raise InvalidParameterError(f"the plug-in data scale of {data.source} is {tau0!r}")
    return Problem(X=X, codes=codes, K=data.K, train=np.arange(n_tr),
                   test=np.arange(n_tr, used.size), tau0=tau0,
                   tau0_source="plug-in from labels", source=data.source)
