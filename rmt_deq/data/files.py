"""Labelled data files: ``.npz`` archives, ``.npy`` tables and ``.csv`` tables.

Two layouts, each with one meaning (docs/generalization.md, "Real data"):

* ``.npz`` (``numpy.savez(path, X=X, labels=labels)``): the package's own convention, X is
  p x n with the samples as **columns** and ``labels`` has one entry per column; read by
  :func:`rmt_deq._io.read_npz` (the one reader of data archives), with only ``X`` and
  ``labels`` allowed;
* ``.npy`` and ``.csv``: a **table**, one sample per **row**, the class label in the last
  column (an integer), the features in the other columns; a ``.csv`` file may start with
  one header line (a line with a field that is not a number).  The table is transposed on
  reading, so every reader returns X as p x n.

:func:`read_labelled_file` dispatches on the suffix and returns ``(X, labels)`` as read,
before any validation of values beyond the file's format; :mod:`rmt_deq.data.labelled`
validates and normalises.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from rmt_deq._io import _input_file, _looks_like, _read_head, read_npz
from rmt_deq.errors import DataFileError, NonFiniteInputError, ShapeMismatchError

__all__ = ["read_labelled_file", "read_table", "LABELLED_SUFFIXES"]

#: the suffixes :func:`read_labelled_file` understands
LABELLED_SUFFIXES = (".npz", ".npy", ".csv")
_TABLE_HINT = ("one sample per row, the features in the first columns and the integer "
               "class label in the last column")


def _label_column(values: np.ndarray, source: str) -> np.ndarray:
    """The last column of a table as integer labels (finite, integral values)."""
    lab = values[:, -1]
    if not np.all(np.isfinite(lab)):
        row = int(np.flatnonzero(~np.isfinite(lab))[0])
        raise NonFiniteInputError(f"{source}: the label of row {row} is {lab[row]!r}; the "
                                  f"last column must hold integer class labels")
    if not np.all(lab == np.round(lab)):
        row = int(np.flatnonzero(lab != np.round(lab))[0])
        raise DataFileError(f"{source}: the label of row {row} is {lab[row]!r}, not an "
                            f"integer; the table must have {_TABLE_HINT}")
    return lab.astype(np.int64)


def _split_table(values: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(X p x n, labels) from an n x (p + 1) table."""
    if values.ndim != 2 or values.shape[1] < 2 or values.shape[0] < 1:
        raise ShapeMismatchError(f"{source}: expected a 2-D table with {_TABLE_HINT} (at "
                                 f"least two columns); got shape {values.shape}")
    labels = _label_column(values, source)
    X = np.ascontiguousarray(values[:, :-1].T, dtype=np.float64)
    return X, labels


def _parse_float(field: str) -> float | None:
    try:
        return float(field)
    except ValueError:
        return None


def _read_csv(path: str, source: str) -> np.ndarray:
    """A numeric table from comma-separated text (one optional header line)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataFileError(f"cannot read {source}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFileError(f"{source} is not UTF-8 text (it looks like "
                            f"{_looks_like(raw[:8])}); expected a CSV table with "
                            f"{_TABLE_HINT}") from None
    rows: list[list[float]] = []
    width = None
    first = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        vals = [_parse_float(f) for f in fields]
        if first:
            first = False
            if any(v is None for v in vals):          # a header line
                width = len(fields)
                continue
        bad = [j for j, v in enumerate(vals) if v is None]
        if bad:
            raise DataFileError(f"{source}, line {lineno}, column {bad[0] + 1}: "
                                f"{fields[bad[0]]!r} is not a number; expected {_TABLE_HINT}")
        if width is not None and len(vals) != width:
            raise ShapeMismatchError(f"{source}, line {lineno}: {len(vals)} fields where the "
                                     f"previous lines have {width}; every row must have the "
                                     f"same number of columns")
        width = len(vals)
        rows.append(vals)  # type: ignore[arg-type]
    if not rows:
        raise DataFileError(f"{source} holds no data rows; expected {_TABLE_HINT}")
    return np.array(rows, dtype=np.float64)


def _read_npy(path: str, source: str) -> np.ndarray:
    head = _read_head(path, source)
    if not head.startswith(b"\x93NUMPY"):
        raise DataFileError(f"{source} is not a .npy array (it looks like "
                            f"{_looks_like(head) if head else 'an empty file'}); expected "
                            f"numpy.save(path, table) with {_TABLE_HINT}")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataFileError(f"{source} is not a readable .npy array ({type(exc).__name__}: "
                            f"{exc}); store a numeric table with {_TABLE_HINT}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf":
        raise DataFileError(f"{source} has dtype {getattr(arr, 'dtype', type(arr))}; the "
                            f"table must hold real numbers ({_TABLE_HINT})")
    return np.asarray(arr, dtype=np.float64)


def read_table(path: Any) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``.npy`` or ``.csv`` table (one sample per row, label last).

    Returns
    -------
    (X, labels)
        X of shape (p, n) (columns are samples), float64 as read (NaN/inf possible in the
        features: :func:`rmt_deq.data.labelled.labelled_data` refuses them); labels int64.

    Raises
    ------
    DataFileError
        Missing or unreadable file, wrong format, a field that is not a number, a label
        that is not an integer.
    ShapeMismatchError
        Not a 2-D table with at least two columns, or ragged rows.
    NonFiniteInputError
        A NaN/inf label.
    """
    s = _input_file(path, "data")
    source = f"data file {s!r}"
    suffix = os.path.splitext(s)[1].lower()
    if suffix == ".npy":
        values = _read_npy(s, source)
    elif suffix == ".csv":
        values = _read_csv(s, source)
    else:
        raise DataFileError(f"{source}: a table must be a .npy or .csv file; got suffix "
                            f"{suffix!r}")
    return _split_table(values, source)


def read_labelled_file(path: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(X, labels)`` from a ``.npz``, ``.npy`` or ``.csv`` file (module docstring).

    Returns
    -------
    (X, labels)
        X of shape (p, n) with the samples as columns; labels of length n.

    Raises
    ------
    DataFileError
        Unknown suffix, unreadable or malformed file, missing ``X``/``labels``.
    UnknownOptionError
        An ``.npz`` archive with arrays other than ``X`` and ``labels``.
    ShapeMismatchError, NonFiniteInputError
        As :func:`read_table`.
    """
    s = _input_file(path, "data")
    suffix = os.path.splitext(s)[1].lower()
    if suffix == ".npz":
        d = read_npz(s, "data", required=("X", "labels"), allowed=("X", "labels"))
        X = d["X"]
        if X.ndim != 2:
            raise ShapeMismatchError(f"data file {s!r}: X must be 2-D (p x n, columns are "
                                     f"samples); got shape {X.shape}")
        return np.asarray(X, dtype=np.float64), np.asarray(d["labels"])
    if suffix in (".npy", ".csv"):
        return read_table(s)
    raise DataFileError(f"data file {s!r} has suffix {suffix!r}; use one of "
                        f"{', '.join(LABELLED_SUFFIXES)} (or the built-in data set 'digits')")

