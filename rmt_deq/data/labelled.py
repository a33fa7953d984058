"""Labelled real data in the units of the DEQ theory: validation, normalisation, splits.

The theory (docs/theory.md §1) describes columns x_i = (mu_a + omega_i)/sqrt(p) with
||mu_a|| = O(1) and ||x_i||^2 close to tau0^2.  Raw data rarely look like this: pixel
intensities share a large common mean and have an arbitrary scale.  :func:`normalise_data`
therefore

1. **centres by the global mean** xbar = (1/n) sum_i x_i (of all classes together): the
   common component, which would otherwise be a mean of norm O(sqrt p) shared by every
   class, is removed; the class means become mu_a - mubar, the covariances are unchanged;
2. **scales** by one number s so that the average squared column norm is tau0^2 (default
   1): (1/n) sum_i ||s (x_i - xbar)||^2 = tau0^2.  Class means scale by s, class
   covariances by s^2, so the plug-in statistics of docs/theory.md §1.4 scale as
   tau0^2, t, psi by s^2 and T by s^4.

The plug-in data scale sqrt(tr C°/p) of the normalised data is then slightly below tau0:
(1/n) sum ||x_i||^2 = tr(C°)/p + sum_a c_a ||mu_a - mubar||^2/p, and the second term is the
spread of the class means (docs/generalization.md gives its size on the digits).

:func:`load_digits` gives scikit-learn's 8 x 8 handwritten digits (an optional dependency,
``pip install rmt_deq[data]``); :func:`load_labelled_data` reads ``"digits"`` or a file
(:mod:`rmt_deq.data.files`); :func:`train_test_split` splits class by class.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from rmt_deq._io import json_ready, read_npz
from rmt_deq._results import readonly
from rmt_deq._validation import as_data_matrix, as_labels, as_rng, check_positive_finite
from rmt_deq.data.files import read_labelled_file
from rmt_deq.errors import InvalidParameterError, MissingDependencyError, ShapeMismatchError

__all__ = ["Normalisation", "LabelledData", "labelled_data", "normalise_data",
           "load_digits", "load_labelled_data", "data_arrays", "train_test_split", "BUILTIN_DATA",
           "MIN_CLASS_SIZE"]

#: the built-in data sets
BUILTIN_DATA = ("digits",)
#: fewest samples per class: the plug-in estimate of tr(C_a^2)/p needs four
#: (docs/theory.md §1.4)
MIN_CLASS_SIZE = 4


@dataclass(frozen=True, eq=False)
class Normalisation:
    """The affine map x -> scale (x - mean) applied to the raw columns.

    Attributes
    ----------
    mean : ndarray, shape (p,)
        The global mean of the raw columns.
    scale : float
        s, chosen so that the normalised columns have mean squared norm ``tau0**2``.
    tau0 : float
        The target root-mean-square column norm.
    """

    mean: np.ndarray = field(repr=False)
    scale: float
    tau0: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", readonly(self.mean, dtype=float))

    def apply(self, X: Any) -> np.ndarray:
        """The same map on new raw columns (X p x n, e.g. data that arrives later)."""
        Xa = as_data_matrix(X)
        if Xa.shape[0] != self.mean.shape[0]:
            raise InvalidParameterError(
                f"X has p = {Xa.shape[0]} rows but the normalisation is for p = "
                f"{self.mean.shape[0]}")
        return self.scale * (Xa - self.mean[:, None])

    def to_dict(self) -> dict:
        return json_ready({"scale": self.scale, "tau0": self.tau0,
                           "mean_norm": float(np.linalg.norm(self.mean))})


@dataclass(frozen=True, eq=False)
class LabelledData:
    """A labelled data matrix, columns are samples.

    Attributes
    ----------
    X : ndarray, shape (p, n)
        Read-only, finite float64.
    labels : ndarray, shape (n,)
        The original labels.
    codes : ndarray of int, shape (n,)
        Class of each column in 0..K-1 (sorted order of the distinct labels).
    classes : ndarray, shape (K,)
        The original label of each class.
    source : str
        Where the data came from ("digits", a file name, "array").
    normalisation : Normalisation or None
        The map applied to the raw data (None: used as given).
    """

    X: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    classes: np.ndarray
    source: str = "array"
    normalisation: Normalisation | None = None

    def __post_init__(self) -> None:
        for name in ("X", "labels", "codes", "classes"):
            object.__setattr__(self, name, readonly(getattr(self, name)))

    @property
    def p(self) -> int:
        return int(self.X.shape[0])

    @property
    def n(self) -> int:
        return int(self.X.shape[1])

    @property
    def K(self) -> int:
        return int(self.classes.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """n_a per class."""
        return np.bincount(self.codes, minlength=self.K)

    def subset(self, index: Any) -> "LabelledData":
        """The columns ``index`` (classes renumbered if some disappear)."""
        idx = np.asarray(index)
        return labelled_data(self.X[:, idx], self.labels[idx], source=self.source,
                             normalisation=self.normalisation, min_class_size=1)

    def to_dict(self) -> dict:
        return json_ready({"source": self.source, "p": self.p, "n": self.n, "K": self.K,
                           "classes": self.classes.tolist(), "sizes": self.sizes,
                           "normalisation": None if self.normalisation is None
                           else self.normalisation.to_dict()})


def labelled_data(X: Any, labels: Any, *, source: str = "array",
                  normalisation: Normalisation | None = None,
                  min_class_size: int = MIN_CLASS_SIZE) -> LabelledData:
    """Validate a labelled data matrix (no normalisation: see :func:`normalise_data`).

    Raises
    ------
    ShapeMismatchError
        X not 2-D (p x n, columns are samples), labels not one per column.
    NonFiniteInputError
        NaN/inf in X or in the labels.
    InvalidParameterError
        A single class (classification needs two), or a class with fewer than
        ``min_class_size`` samples.
    """
    Xa = as_data_matrix(X)
    codes, classes = as_labels(labels, Xa.shape[1], p=Xa.shape[0])
    if classes.size < 2:
        raise InvalidParameterError(
            f"the data ({source}) have a single class {classes.tolist()!r}; classification "
            f"and the class statistics need at least two classes: pass data with two or "
            f"more distinct labels")
    sizes = np.bincount(codes, minlength=classes.size)
    if sizes.min() < min_class_size:
        a = int(np.argmin(sizes))
        raise InvalidParameterError(
            f"class {classes[a]!r} of the data ({source}) has {int(sizes[a])} sample(s); "
            f"each class needs at least {min_class_size} (plug-in class statistics): add "
            f"samples or drop the class")
    return LabelledData(X=Xa, labels=np.asarray(labels), codes=codes, classes=classes,
                        source=source, normalisation=normalisation)


def normalise_data(data: LabelledData, tau0: float = 1.0) -> LabelledData:
    """Centre by the global mean and scale to mean squared column norm tau0^2.

    Returns
    -------
    LabelledData
        With ``normalisation`` recording the mean and the scale (module docstring).

    Raises
    ------
    InvalidParameterError
        tau0 not finite and > 0; all columns equal (nothing left after centring).
    """
    t = check_positive_finite(tau0, "tau0")
    mean = data.X.mean(axis=1)
    Xc = data.X - mean[:, None]
    m2 = float(np.einsum("ij,ij->", Xc, Xc)) / data.n
    if not m2 > 0:
        raise InvalidParameterError(f"the data ({data.source}) have identical columns: "
                                    f"nothing is left after centring")
    s = t / math.sqrt(m2)
    return LabelledData(X=s * Xc, labels=data.labels, codes=data.codes,
                        classes=data.classes, source=data.source,
                        normalisation=Normalisation(mean=mean, scale=s, tau0=t))


def _select(X: np.ndarray, labels: np.ndarray, classes: Iterable[Any] | None,
            source: str) -> tuple[np.ndarray, np.ndarray]:
    if labels.ndim != 1 or labels.shape[0] != X.shape[1]:
        raise ShapeMismatchError(
            f"the labels of the data ({source}) must be one per column of X (n = "
            f"{X.shape[1]}); got shape {labels.shape}")
    if classes is None:
        return X, labels
    want = list(classes)
    present = set(np.unique(labels).tolist())
    missing = [c for c in want if c not in present]
    if missing:
        raise InvalidParameterError(f"classes {missing!r} are not labels of the data "
                                    f"({source}); present: {sorted(present)!r}")
    keep = np.isin(labels, want)
    return X[:, keep], labels[keep]


def load_digits(classes: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8 x 8 handwritten digits, raw: X (64 x 1797, columns are samples,
    pixel intensities 0..16) and labels 0..9; ``classes`` keeps only those digits.

    Raises
    ------
    MissingDependencyError
        scikit-learn is not installed (``pip install rmt_deq[data]``).
    InvalidParameterError
        ``classes`` names a digit that is not 0..9.
    """
    try:
        datasets = importlib.import_module("sklearn.datasets")
    except ImportError:
        raise MissingDependencyError(
            "the built-in 'digits' data need scikit-learn, which is not installed: run "
            "pip install rmt_deq[data] (or pass your own .npz/.npy/.csv file)") from None
    d = datasets.load_digits()
    X = np.asarray(d.data, dtype=np.float64).T
    labels = np.asarray(d.target, dtype=np.int64)
    return _select(X, labels, classes, "digits")


def load_labelled_data(source: Any, *, classes: Iterable[Any] | None = None,
                       tau0: float | None = 1.0) -> LabelledData:
    """Load ``"digits"`` or a ``.npz``/``.npy``/``.csv`` file, validate, normalise.

    Parameters
    ----------
    source : "digits" or path
        A built-in data set or a file (:mod:`rmt_deq.data.files` for the layouts).
    classes : iterable of labels, optional
        Keep only these classes (e.g. ``(0, 1)`` for two digits).
    tau0 : float or None
        Normalise to mean squared column norm tau0^2 (:func:`normalise_data`); None: use
        the data as stored (they must already be in the theory's units).

    Raises
    ------
    MissingDependencyError, DataFileError, UnknownOptionError, ShapeMismatchError,
    NonFiniteInputError, InvalidParameterError
        From the loaders and :func:`labelled_data`.
    """
    if isinstance(source, str) and source in BUILTIN_DATA:
        X, labels = load_digits(classes)
        name = "digits"
    else:
        X, labels = read_labelled_file(source)
        name = str(source)
        X, labels = _select(as_data_matrix(X), np.asarray(labels), classes, name)
    data = labelled_data(X, labels, source=name)
    return data if tau0 is None else normalise_data(data, tau0)


def data_arrays(source: Any, what: str = "data", *,
                required: Iterable[str] = ("X",)) -> dict:
    """The arrays of a data argument: a built-in data set by name, or an ``.npz`` file.

    ``"digits"`` gives ``{"X": ..., "labels": ...}``: the handwritten digits (optional extra
    ``[data]``), centred and scaled to mean squared column norm 1 (:func:`normalise_data`),
    X p x n (columns are samples), labels the digit of each column.  Any other value is
    read as an ``.npz`` file by :func:`rmt_deq._io.read_npz` with the given required arrays.

    Raises
    ------
    MissingDependencyError
        ``"digits"`` without scikit-learn.
    DataFileError, ...
        From :func:`rmt_deq._io.read_npz`.
    """
    if isinstance(source, str) and source in BUILTIN_DATA:
        d = load_labelled_data(source)
        return {"X": d.X, "labels": d.labels}
    return read_npz(source, what, required=tuple(required))


def train_test_split(data: LabelledData, test_fraction: float = 0.5, *,
                     n_train: int | None = None, n_test: int | None = None,
                     rng: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: index arrays (train, test) into the columns of ``data``.

    Each class is shuffled (by ``rng``) and cut in the same proportion, so both parts keep
    the class proportions up to rounding.  ``n_train``/``n_test`` (together) take that
    many samples instead of ``test_fraction`` of all (a subsample when they sum to less
    than n).

    Raises
    ------
    InvalidParameterError
        test_fraction not in (0, 1); n_train/n_test not positive or summing beyond n; a
        class left with fewer than two samples in either part.
    """
    gen = as_rng(rng)
    n = data.n
    if (n_train is None) != (n_test is None):
        raise InvalidParameterError("give both n_train and n_test, or neither")
    if n_train is None:
        f = float(test_fraction)
        if not 0.0 < f < 1.0:
            raise InvalidParameterError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
        n_te, n_tr = int(round(f * n)), n - int(round(f * n))
    else:
        n_tr, n_te = int(n_train), int(n_test)
        if n_tr < 1 or n_te < 1 or n_tr + n_te > n:
            raise InvalidParameterError(
                f"n_train = {n_train} and n_test = {n_test} must be positive with a sum "
                f"at most n = {n}")
    train, test = [], []
    total = n_tr + n_te
    for a in range(data.K):
        idx = np.flatnonzero(data.codes == a)
        gen.shuffle(idx)
        k_tr = int(round(idx.size * n_tr / n))
        k_te = int(round(idx.size * n_te / n)) if total < n else idx.size - k_tr
        if k_tr < 2 or k_te < 2:
            raise InvalidParameterError(
                f"class {data.classes[a]!r} would have {k_tr} training and {k_te} test "
                f"samples; each part needs two per class: use more data or a fraction "
                f"nearer 1/2")
        train.append(idx[:k_tr])
        test.append(idx[k_tr:k_tr + k_te])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
