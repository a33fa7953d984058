"""Files the package reads and writes (one place for paths, formats and their messages).

Outputs
    :func:`check_output_path` refuses, before anything is computed, an output path that is a
    folder, whose folder is missing or not writable, whose name is too long, or (figures)
    whose suffix is not a format this matplotlib can write; :func:`check_distinct_outputs`
    refuses two outputs of one job naming the same file (or an output naming an input).
    The writers (:func:`write_npy`, :func:`write_json`, :func:`write_text`,
    :func:`write_figure`) write exactly the path given, atomically: the content goes to a
    temporary file in the same folder, is flushed to disk and then moved over the target
    with :func:`os.replace`.  A failed write (disk full, file-size limit, an error while
    rendering) leaves the previous file unchanged and removes the temporary file.

JSON
    :func:`json_ready` / :func:`dumps` are the one JSON emitter: numpy scalars and arrays
    become Python numbers and lists, and a float that is not finite (NaN, +inf, -inf) becomes
    ``null``, so every document parses with a strict JSON parser.

Inputs
    :func:`read_npz` reads a data archive (``numpy.savez``) and :func:`read_json` a JSON file
    (strictly: NaN/Infinity are refused), with a :class:`~rmt_deq.errors.DataFileError` that
    names the file, what it is and what it should be; :func:`json_numeric_array` validates a
    nested list of numbers (types, rectangular shape, finiteness).
"""
from __future__ import annotations

import errno
import json
import math
import os
import secrets
import stat
import zipfile
import zlib
from typing import Any, BinaryIO, Callable, Iterable, Mapping

import numpy as np

from rmt_deq.errors import (DataFileError, NonFiniteInputError, OutputPathError, OutputWriteError,
                     ShapeMismatchError, UnknownOptionError)

__all__ = ["json_ready", "dumps", "check_output_path", "check_distinct_outputs",
           "figure_format", "write_npy", "write_json", "write_text", "write_figure",
           "read_npz", "read_json", "json_numeric_array", "DATA_ARRAYS"]

#: the arrays a data archive may hold (X is p x n, columns are samples)
DATA_ARRAYS = ("X", "labels", "means", "covs")
_DATA_HINT = ("an .npz archive written by numpy.savez(path, X=X, labels=labels[, means=..., "
              "covs=...]) with X p x n (columns are samples)")
#: dtype kinds accepted for real-valued arrays and for labels
_REAL_KINDS = "iuf"
_LABEL_KINDS = "biufUS"


# =======================================================================================
# JSON
# =======================================================================================
def json_ready(obj: Any) -> Any:
    """``obj`` as plain JSON values: dicts with string keys, lists, str, bool, None, int and
    finite float; a non-finite float becomes None (JSON null).

    Raises
    ------
    TypeError
        An object with no JSON form (a programming error, not bad input).
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    raise TypeError(f"no JSON form for {type(obj).__name__} {obj!r}")


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of :func:`json_ready` (``obj``) (never NaN/Infinity literals)."""
    return json.dumps(json_ready(obj), allow_nan=False, **kwargs)


# =======================================================================================
# output paths
# =======================================================================================
def _as_path(path: Any, what: str, error: type) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"{what} must be a file path, got {type(path).__name__}")
    s = os.fspath(path)
    if not isinstance(s, str) or not s.strip():
        raise error(f"{what} must be a non-empty file path, got {s!r}")
    if "\0" in s:
        raise error(f"{what} {s!r} contains a NUL character")
    return s


def _open_temp(folder: str, base: str) -> tuple[int, str]:
    """Create a new empty file in ``folder`` (mode 0o666 less the umask); (fd, path)."""
    while True:
        tmp = os.path.join(folder, f".{base[:40]}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


_FIGURE_FORMATS: dict[str, str | None] = {}


def _probe_format(fmt: str) -> str | None:
    """None if a tiny figure can be written in format ``fmt`` here, else why not (cached)."""
    import io

    from matplotlib.figure import Figure

    if fmt not in _FIGURE_FORMATS:
        fig = Figure(figsize=(0.5, 0.5))
        fig.add_subplot(1, 1, 1).plot([0.0, 1.0])
        try:
            fig.savefig(io.BytesIO(), format=fmt, dpi=10)
            _FIGURE_FORMATS[fmt] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot write it here"
            _FIGURE_FORMATS[fmt] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return _FIGURE_FORMATS[fmt]


def figure_format(path: str, what: str = "figure path") -> str:
    """The figure format of ``path`` (its suffix, lower case), if this matplotlib can write
    it; else raise :class:`OutputPathError` listing the formats that work.

    Each format is tried once (a tiny figure rendered to memory), so a format matplotlib
    lists but cannot write here (e.g. ``pgf`` without LaTeX) is refused up front.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    fmt = os.path.splitext(path)[1][1:].lower()
    known = sorted(FigureCanvasBase.get_supported_filetypes())
    if fmt in known and _probe_format(fmt) is None:
        return fmt
    works = [f for f in known if f != fmt and _probe_format(f) is None]
    if not fmt:
        problem = "has no suffix to choose the figure format"
    elif fmt in known:
        problem = (f"asks for format {fmt!r}, which cannot be written here "
                   f"({_probe_format(fmt)})")
    else:
        problem = f"has an unknown figure suffix {'.' + fmt!r}"
    raise OutputPathError(f"{what} {path!r} {problem}; use one of "
                          + ", ".join("." + f for f in works))


def check_output_path(path: Any, what: str = "output", *, figure: bool = False) -> str:
    """Check that ``path`` can be written, before computing what goes in it.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        How the message names the output (e.g. ``"--out"``).
    figure : bool
        The suffix must be a figure format this matplotlib can write (:func:`figure_format`).

    Returns
    -------
    str
        The path with symbolic links resolved (where the writers write).

    Raises
    ------
    OutputPathError
        The path is empty, a folder, an existing non-regular file (a device, a pipe), a
        read-only file; its folder does not exist or cannot be written; its name is too
        long; or (figures) its suffix is not a writable format.
    """
    s = _as_path(path, what, OutputPathError)
    real = os.path.realpath(s)
    if os.path.isdir(real):
        raise OutputPathError(f"{what} {s!r} is a folder; give a file name, e.g. "
                              f"{os.path.join(s, 'name')!r}")
    if os.path.lexists(real) and not os.path.isfile(real):
        raise OutputPathError(f"{what} {s!r} exists and is not a regular file; choose "
                              f"another path")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise OutputPathError(f"{what} {s!r}: the folder {os.path.dirname(s) or folder!r} "
                              f"does not exist; create it first")
    base = os.path.basename(real)
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(base)) > name_max:
        raise OutputPathError(f"{what}: the file name {base[:40]!r}... is longer than "
                              f"{name_max} bytes")
    if os.path.isfile(real) and not os.access(real, os.W_OK):
        raise OutputPathError(f"{what} {s!r} exists and is read-only; remove it or choose "
                              f"another path")
    try:
        fd, probe = _open_temp(folder, base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{what} {s!r}: cannot create files in "
                              f"{os.path.dirname(s) or folder!r} ({exc.strerror})") from None
    if figure:
        figure_format(s, what)
    return real


def check_distinct_outputs(outputs: Mapping[str, Any],
                           inputs: Mapping[str, Any] | None = None) -> None:
    """Refuse two outputs (``{name: path or None}``) that are the same file, or an output
    that is also one of ``inputs`` (it would replace the data being read).

    Raises
    ------
    OutputPathError
    """
    def key(p: Any) -> tuple:
        real = os.path.realpath(os.fspath(p))
        try:
            st = os.stat(real)
            return (st.st_dev, st.st_ino)
        except OSError:
            return (real,)

    seen: dict[tuple, str] = {}
    for name, p in (inputs or {}).items():
        if p is not None:
            seen.setdefault(key(p), f"the input {name}")
    for name, p in outputs.items():
        if p is None:
            continue
        k = key(p)
        if k in seen:
            raise OutputPathError(f"{name} {os.fspath(p)!r} is the same file as "
                                  f"{seen[k]}; give distinct paths")
        seen[k] = name


# =======================================================================================
# atomic writers
# =======================================================================================
def _atomic_write(path: Any, write: Callable[[BinaryIO], None], what: str,
                  figure: bool = False) -> str:
    real = check_output_path(path, what, figure=figure)
    folder, base = os.path.split(real)
    try:
        fd, tmp = _open_temp(folder, base)
    except OSError as exc:
        raise OutputWriteError(f"could not write {what} {os.fspath(path)!r}: "
                               f"{exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
            if os.fstat(fh.fileno()).st_size != fh.tell():    # a short write went unseen
                raise OSError(errno.EIO, f"short write ({os.fstat(fh.fileno()).st_size} of "
                                         f"{fh.tell()} bytes)")
        if os.path.isfile(real):
            os.chmod(tmp, stat.S_IMODE(os.stat(real).st_mode))
        os.replace(tmp, real)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, OutputWriteError):
            reason = exc.strerror or str(exc)
            raise OutputWriteError(f"could not write {what} {os.fspath(path)!r}: {reason}; "
                                   f"the previous file (if any) is unchanged") from exc
        raise
    return real


class _PythonWrites:
    """A file seen through its ``write`` method only: numpy then writes with Python calls,
    which raise on a failed write, instead of through a C ``FILE*`` (``ndarray.tofile``),
    whose failed flush can go unreported and leave a truncated file."""

    def __init__(self, fh: BinaryIO) -> None:
        self.write = fh.write


def write_npy(path: Any, array: Any, what: str = "output") -> str:
    """Write ``array`` in ``.npy`` format to exactly ``path`` (no suffix added), atomically.

    Returns the path written (symbolic links resolved).
    """
    arr = np.asarray(array)
    return _atomic_write(
        path, lambda fh: np.save(_PythonWrites(fh), arr, allow_pickle=False), what)


def write_json(path: Any, obj: Any, what: str = "output", indent: int | None = 1) -> str:
    """Write :func:`dumps` (``obj``) to ``path``, atomically (non-finite floats -> null)."""
    data = (dumps(obj, indent=indent) + "\n").encode("utf-8")
    return _atomic_write(path, lambda fh: fh.write(data), what)


def write_text(path: Any, text: str, what: str = "output") -> str:
    """Write ``text`` (UTF-8) to ``path``, atomically."""
    data = text.encode("utf-8")
    return _atomic_write(path, lambda fh: fh.write(data), what)


def write_figure(fig: Any, path: Any, dpi: int = 130, what: str = "figure") -> str:
    """Write a matplotlib figure in the format of the path's suffix, atomically."""
    fmt = figure_format(_as_path(path, what, OutputPathError), what)
    # no creation date in the file: the same figure gives the same bytes on every run
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None},
                "ps": {"CreationDate": None}, "eps": {"CreationDate": None}}.get(fmt)
    extra = {} if metadata is None else {"metadata": metadata}
    return _atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, **extra), what,
                         figure=True)


# =======================================================================================
# input files
# =======================================================================================
def _input_file(path: Any, what: str) -> str:
    s = _as_path(path, what, DataFileError)
    if not os.path.exists(s):
        raise DataFileError(f"{what} file {s!r} does not exist")
    if os.path.isdir(s):
        raise DataFileError(f"{what} {s!r} is a folder, not a file")
    return s


def _read_head(path: str, what: str, size: int = 8) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise DataFileError(f"cannot read {what} file {path!r}: {exc.strerror}") from None


def _looks_like(head: bytes) -> str:
    if head[:1] == b"\x80":
        return "a Python pickle"
    if head[:1] in (b"{", b"["):
        return "JSON text"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "binary data of another format"


def read_npz(path: Any, what: str = "data", *, required: Iterable[str] = ("X",),
             allowed: Iterable[str] = DATA_ARRAYS) -> dict:
    """Read a data archive (``numpy.savez``): ``{name: ndarray}``.

    Checks the file (exists, not empty, an ``.npz`` zip rather than an ``.npy``, a pickle or
    text), the array names (``required`` present, none outside ``allowed``) and the dtypes
    (``X``, ``means``, ``covs`` real numbers; ``labels`` numbers or strings).  Shapes and
    values are the job's to check.

    Raises
    ------
    DataFileError
        Unreadable or wrong file, missing arrays, object/complex/string data.
    UnknownOptionError
        Arrays other than ``allowed`` (they are never silently ignored).
    """
    s = _input_file(path, what)
    allowed = tuple(allowed)
    head = _read_head(s, what)
    if not head:
        raise DataFileError(f"{what} file {s!r} is empty; expected {_DATA_HINT}")
    if head.startswith(b"\x93NUMPY"):
        raise DataFileError(f"{what} file {s!r} is a single .npy array, not an .npz archive; "
                            f"expected {_DATA_HINT}")
    if not head.startswith(b"PK"):
        raise DataFileError(f"{what} file {s!r} is not an .npz archive (it looks like "
                            f"{_looks_like(head)}); expected {_DATA_HINT}")
    data: dict[str, np.ndarray] = {}
    try:
        with np.load(s, allow_pickle=False) as f:
            names = list(f.files)
            missing = [k for k in required if k not in names]
            if missing:
                raise DataFileError(
                    f"{what} file {s!r} has no array {', '.join(map(repr, missing))}; found "
                    f"{sorted(names)}; expected {_DATA_HINT}")
            unknown = sorted(set(names) - set(allowed))
            if unknown:
                raise UnknownOptionError(
                    f"{what} file {s!r} has unknown array(s) {unknown}; allowed: "
                    f"{', '.join(allowed)}")
            for k in names:
                try:
                    arr = f[k]
                except ValueError:
                    raise DataFileError(
                        f"array {k!r} in {what} file {s!r} holds Python objects (it needs "
                        f"unpickling); store numeric arrays") from None
                if not isinstance(arr, np.ndarray):
                    raise DataFileError(f"entry {k!r} of {what} file {s!r} is not a "
                                        f"numpy array")
                data[k] = arr
    except (DataFileError, UnknownOptionError):
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataFileError(f"{what} file {s!r} is not a readable .npz archive "
                            f"({type(exc).__name__}: {exc}); expected {_DATA_HINT}") from None
    for k, arr in data.items():
        kinds = _LABEL_KINDS if k == "labels" else _REAL_KINDS
        if arr.dtype.kind not in kinds:
            raise DataFileError(
                f"array {k!r} in {what} file {s!r} has dtype {arr.dtype}; "
                + ("labels must be integers or strings" if k == "labels"
                   else "it must hold real numbers (integer or floating point)"))
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (not valid JSON)")


def read_json(path: Any, what: str = "JSON") -> Any:
    """Parse a JSON file strictly (NaN/Infinity literals refused).

    Raises
    ------
    DataFileError
        Missing, unreadable, empty, not UTF-8, or not valid JSON (line and column given).
    """
    s = _input_file(path, what)
    try:
        with open(s, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataFileError(f"cannot read {what} file {s!r}: {exc.strerror}") from None
    if not raw.strip():
        raise DataFileError(f"{what} file {s!r} is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataFileError(f"{what} file {s!r} is not UTF-8 text (it looks like "
                            f"{_looks_like(raw[:8])}); expected a JSON object") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{what} file {s!r} is not valid JSON: {exc.msg} at line "
                            f"{exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:
        raise DataFileError(f"{what} file {s!r}: {exc}") from None
    except RecursionError:
        raise DataFileError(f"{what} file {s!r} is nested too deeply") from None


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, (bool, np.bool_)):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, Mapping):
        return "an object"
    return f"a {type(v).__name__}"


def _nested_shape(v: Any, name: str, depth: int) -> tuple:
    """Shape of a rectangular nested list of real numbers (at most ``depth`` levels)."""
    if isinstance(v, (list, tuple)):
        if depth == 0:
            raise ShapeMismatchError(f"{name} is nested too deeply")
        if v and all(type(x) in (int, float) for x in v):     # a row of plain numbers
            try:
                vals = np.array([float(x) for x in v])
            except OverflowError:
                raise NonFiniteInputError(f"{name} has a number too large for float64") from None
            if not np.all(np.isfinite(vals)):
                i = int(np.flatnonzero(~np.isfinite(vals))[0])
                raise NonFiniteInputError(f"{name}[{i}] = {v[i]!r} is not finite")
            return (len(v),)
        subs = [_nested_shape(x, f"{name}[{i}]", depth - 1) for i, x in enumerate(v)]
        for i, sub in enumerate(subs):
            if sub != subs[0]:
                raise ShapeMismatchError(
                    f"{name} is ragged: {name}[0] has shape {subs[0]} but {name}[{i}] has "
                    f"shape {sub}; every row must have the same length")
        return (len(v),) + (subs[0] if subs else ())
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                             np.floating)):
        raise DataFileError(f"{name} must hold numbers; found {_json_type(v)} ({v!r:.40})")
    try:
        x = float(v)
    except OverflowError:
        raise NonFiniteInputError(f"{name} = {v!r:.40} is too large for float64") from None
    if not math.isfinite(x):
        raise NonFiniteInputError(f"{name} = {v!r} is not finite")
    return ()


def json_numeric_array(value: Any, name: str, ndims: Iterable[int]) -> np.ndarray:
    """A float64 array from a nested list of real numbers (or a real numpy array).

    Raises
    ------
    DataFileError
        A leaf is not a number (a string, a boolean, null, an object).
    ShapeMismatchError
        Ragged rows, or a number of dimensions not in ``ndims``.
    NonFiniteInputError
        NaN, infinite, or beyond float64.
    """
    ndims = tuple(ndims)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _REAL_KINDS:
            raise DataFileError(f"{name} must hold real numbers; got dtype {value.dtype}")
        arr = value.astype(float)
        if not np.all(np.isfinite(arr)):
            raise NonFiniteInputError(f"{name} has NaN/inf entries")
    else:
        shape = _nested_shape(value, name, max(ndims))
        arr = np.array(value, dtype=float).reshape(shape)
    if arr.ndim not in ndims or 0 in arr.shape:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ShapeMismatchError(f"{name} must be a non-empty {want} array; got shape "
                                 f"{arr.shape}")
    return arr
