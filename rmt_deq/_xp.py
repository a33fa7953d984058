"""Array backends of the finite-width samplers and the exact kernels (the array API standard).

numpy is the default and runs the package's own numpy code, unchanged.  Any other backend
runs the same algorithms written against the array API standard
(https://data-apis.org/array-api/) only, through a namespace ``xp``:

``"array_api_strict"``
    The standard's reference implementation (CPU, float64): the namespace the backend
    code is tested against, so that it uses nothing outside the standard.
``"torch"``, ``"cupy"``
    PyTorch and CuPy through ``array_api_compat`` (the optional extra
    ``pip install rmt_deq[gpu]``).  Neither library's own namespace is the standard
    (``torch.max`` returns values and indices, a torch tensor has no
    ``__array_namespace__``), and ``array_api_compat`` is the small, maintained shim that
    makes them so; a hand-written shim here would be a second one to keep up to date.
    torch runs on CUDA when it is available, else on the CPU; CuPy on its current device.
a namespace module
    Any module with ``__array_namespace_info__`` (a compliant library), used as it is.

The backend is also inferred from the data: an array that is not numpy's but carries
``__array_namespace__`` (or a torch tensor / CuPy array, with ``array_api_compat``)
selects its own namespace and device.

What runs where.  The weights are drawn on the host with numpy's Generator from the seed
tree of :mod:`rmt_deq.sampling._montecarlo` and moved to the device with ``xp.asarray``:
the same seed gives the same weights on every backend (so results agree to rounding and
numpy's stay bit-identical), at the price of a host draw and a transfer of O(m^2) numbers
per realization, small beside the O(m^2 n) work per solver iteration on the device.  The
validation, the four-equation centring and the Monte-Carlo accumulator stay on the host;
the n x n results of each realization come back as numpy float64, and so does every
result returned to the user.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rmt_deq.errors import (
    InvalidParameterError,
    MissingDependencyError,
    UnknownOptionError,
)

__all__ = ["BACKENDS", "NUMPY", "Backend", "check_backend", "host_array", "host_data",
           "namespace_of", "resolve_backend"]

#: the backends known by name (``backend=`` and the CLI's ``--backend``)
BACKENDS = ("numpy", "array_api_strict", "torch", "cupy")
#: the backends reached through array_api_compat, and the package each needs
_COMPAT = {"torch": "torch", "cupy": "cupy"}
_GPU_EXTRA = "pip install 'rmt_deq[gpu]'"


@dataclass(frozen=True, eq=False)
class Backend:
    """An array namespace, its device and how to move arrays to and from it.

    Attributes
    ----------
    name : str
        A name of :data:`BACKENDS`, or the module name of a namespace given directly.
    xp : module
        The array API namespace (``numpy`` itself for the default).
    device : object or None
        Where arrays are created (None: the namespace's default).
    """

    name: str
    xp: ModuleType
    device: Any = None

    @property
    def is_numpy(self) -> bool:
        """Whether this is the default numpy backend (the package's own numpy code)."""
        return self.name == "numpy"

    def dtype(self, dtype: Any) -> Any:
        """The namespace's floating dtype named like the numpy ``dtype``."""
        return getattr(self.xp, np.dtype(dtype).name)

    def asarray(self, a: Any, dtype: Any) -> Any:
        """``a`` (a numpy array) as an array of the namespace in ``dtype`` on the device."""
        if self.is_numpy:
            return np.asarray(a, dtype=dtype)
        return self.xp.asarray(np.ascontiguousarray(a, dtype=dtype), dtype=self.dtype(dtype),
                               device=self.device)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """An uninitialised array of the namespace on the device."""
        if self.is_numpy:
            return np.empty(shape, dtype=dtype)
        return self.xp.empty(shape, dtype=self.dtype(dtype), device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        """An array of the namespace as a float64 numpy array on the host."""
        return host_array(a).astype(np.float64, copy=False)

    def __reduce__(self) -> tuple:
        if self.name not in BACKENDS:
            raise InvalidParameterError(
                f"the array namespace {self.name!r} given as a module cannot be sent to "
                f"another process; name it by one of {BACKENDS} or run without a process "
                f"pool")
        return (resolve_backend, (self.name,))


#: the default backend
NUMPY = Backend("numpy", np)


def host_array(a: Any) -> np.ndarray:
    """Any supported array as a numpy array in its dtype (a copy off the device when
    needed)."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if hasattr(a, "detach") and type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.from_dlpack(a)


def _compat(name: str) -> ModuleType:
    """The array_api_compat namespace of ``name`` ("torch" or "cupy")."""
    for package in ("array_api_compat", _COMPAT[name]):
        try:
            importlib.import_module(package)
        except ImportError:
            raise MissingDependencyError(
                f"the {name!r} backend needs the package {package!r}, which is not "
                f"installed: install {_COMPAT[name]} and run {_GPU_EXTRA} (or use "
                f"backend='numpy')") from None
    return importlib.import_module(f"array_api_compat.{name}")


def _named(name: str) -> Backend:
    if name == "numpy":
        return NUMPY
    if name == "array_api_strict":
        try:
            return Backend(name, importlib.import_module("array_api_strict"))
        except ImportError:
            raise MissingDependencyError(
                "the 'array_api_strict' backend needs the package array-api-strict: "
                "pip install array-api-strict (or use backend='numpy')") from None
    xp = _compat(name)
    device = None
    if name == "torch":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return Backend(name, xp, device)


def _from_array(a: Any) -> Backend | None:
    """The backend of a non-numpy array, None for anything else."""
    if isinstance(a, (np.ndarray, np.generic, list, tuple, int, float)) or a is None:
        return None
    module = type(a).__module__.split(".")[0]
    if module in _COMPAT:
        return Backend(module, _compat(module), getattr(a, "device", None))
    get_ns = getattr(a, "__array_namespace__", None)
    if get_ns is None:
        return None
    xp = get_ns()
    name = xp.__name__.split(".")[0]
    if name == "numpy":
        return None
    return Backend(name, xp, getattr(a, "device", None))


def resolve_backend(backend: Any = None, *arrays: Any) -> Backend:
    """The :class:`Backend` of the option ``backend`` and the data ``arrays``.

    Parameters
    ----------
    backend : str, module, Backend or None
        A name of :data:`BACKENDS`, an array API namespace module, a :class:`Backend`, or
        None: the backend of the first non-numpy array among ``arrays`` (numpy if none).
    *arrays
        The user's data (e.g. X, p x n), consulted only when ``backend`` is None.

    Returns
    -------
    Backend

    Raises
    ------
    UnknownOptionError
        An unknown name (the message lists :data:`BACKENDS`), or an object that is not an
        array namespace.
    MissingDependencyError
        The backend's library (or array_api_compat) is not installed.
    """
    if isinstance(backend, Backend):
        return backend
    if backend is None:
        for a in arrays:
            found = _from_array(a)
            if found is not None:
                return found
        return NUMPY
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise UnknownOptionError(
                f"unknown backend {backend!r}; choose one of {BACKENDS} or pass an array "
                f"API namespace module")
        return _named(backend)
    if isinstance(backend, ModuleType) and hasattr(backend, "__array_namespace_info__"):
        name = backend.__name__
        return NUMPY if name == "numpy" else Backend(name, backend)
    raise UnknownOptionError(
        f"backend must be one of {BACKENDS}, an array API namespace module or None, got "
        f"{type(backend).__name__}")


def namespace_of(a: Any) -> ModuleType:
    """The array API namespace of the array ``a`` (numpy for a numpy array)."""
    found = _from_array(a)
    return np if found is None else found.xp


def host_data(a: Any) -> Any:
    """The user's data as the package validates it: an array of another namespace copied
    to a numpy array on the host, anything else as it is."""
    return a if _from_array(a) is None else host_array(a)


def check_backend(backend: Any) -> Any:
    """Validate a ``backend`` option without keeping the namespace: a known name (or None)
    is returned as given (picklable), a namespace module as it is."""
    resolve_backend(backend)
    return backend
