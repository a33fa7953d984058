"""rmt_deq: random-matrix theory of deep equilibrium models on Gaussian-mixture data.

Data flow: activation -> Gaussian moments -> fixed point (four equations) -> surrogate
kernels -> spectra, with exact infinite-width kernels, sampling and design beside them.
Convention everywhere: a data matrix X is p x n (columns are samples).

The names here are the common entry points, one per job; everything else lives in the
subpackages that name its layer (``rmt_deq.moments``, ``rmt_deq.fixed_point``,
``rmt_deq.kernels``, ``rmt_deq.spectra``, ``rmt_deq.data``, ``rmt_deq.networks``,
``rmt_deq.sampling``, ``rmt_deq.design``, ``rmt_deq.generalization``, ``rmt_deq.metrics``,
``rmt_deq.errors``), see docs/index.md.
"""
from __future__ import annotations

import importlib as _importlib
from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

#: where each public name lives; a name is imported when first used (PEP 562), so
#: ``import rmt_deq`` loads no numerical module and costs almost nothing
_LAZY: dict[str, str] = {
    "Activation": "rmt_deq.activations",
    "available_activations": "rmt_deq.activations",
    "get_activation": "rmt_deq.activations",
    "GaussianMixture": "rmt_deq.data.mixture",
    "default_mixture": "rmt_deq.data.mixture",
    "plugin_statistics": "rmt_deq.data.statistics",
    "design_for_deq": "rmt_deq.design.solve",
    "design_network": "rmt_deq.design.solve",
    "load_designed_network": "rmt_deq.design.network",
    "design_target": "rmt_deq.design.targets",
    "RmtDeqError": "rmt_deq.errors",
    "solve_four_equations": "rmt_deq.fixed_point.four_equations",
    "FixedPointSolution": "rmt_deq.fixed_point.solution",
    "run_demo": "rmt_deq.jobs.demo",
    "kernel_from_data": "rmt_deq.jobs.kernel",
    "sampled_kernel_from_data": "rmt_deq.jobs.kernel",
    "spectrum_report": "rmt_deq.jobs.spectrum",
    "ck_surrogate_coefficients": "rmt_deq.kernels.ck_surrogate",
    "mixture_ck_surrogate": "rmt_deq.kernels.ck_surrogate",
    "plugin_ck_surrogate": "rmt_deq.kernels.ck_surrogate",
    "exact_ck": "rmt_deq.kernels.exact",
    "exact_kernels": "rmt_deq.kernels.exact",
    "exact_ntk": "rmt_deq.kernels.exact",
    "exact_explicit_kernels": "rmt_deq.kernels.explicit",
    "explicit_ntk_surrogate": "rmt_deq.kernels.explicit_surrogate",
    "mixture_ntk_surrogate": "rmt_deq.kernels.ntk_surrogate",
    "ntk_surrogate_coefficients": "rmt_deq.kernels.ntk_surrogate",
    "plugin_ntk_surrogate": "rmt_deq.kernels.ntk_surrogate",
    "Kernel": "rmt_deq.kernels.result",
    "compare_kernels": "rmt_deq.metrics",
    "ks_distance": "rmt_deq.metrics",
    "spectral_distances": "rmt_deq.metrics",
    "top_eigen_comparison": "rmt_deq.metrics",
    "gaussian_moments": "rmt_deq.moments.gaussian",
    "ExplicitNetwork": "rmt_deq.networks.explicit",
    "plot_spectrum": "rmt_deq.plotting",
    "sampled_ck": "rmt_deq.sampling.deq",
    "sampled_kernel": "rmt_deq.sampling.deq",
    "sampled_ntk": "rmt_deq.sampling.deq",
    "sampled_explicit_ck": "rmt_deq.sampling.explicit",
    "sampled_explicit_ntk": "rmt_deq.sampling.explicit",
    "kernel_bulk": "rmt_deq.spectra.bulk",
    "gram_model": "rmt_deq.spectra.model",
    "gram_model_from_mixture": "rmt_deq.spectra.model",
    "isolated_eigenvalues": "rmt_deq.spectra.spikes",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'rmt_deq' has no attribute {name!r}") from None
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value          # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # static tools see the names as plain imports
    from rmt_deq.activations import Activation, available_activations, get_activation
    from rmt_deq.data.mixture import GaussianMixture, default_mixture
    from rmt_deq.data.statistics import plugin_statistics
    from rmt_deq.design.solve import design_for_deq, design_network
    from rmt_deq.design.network import load_designed_network
    from rmt_deq.design.targets import design_target
    from rmt_deq.errors import RmtDeqError
    from rmt_deq.fixed_point.four_equations import solve_four_equations
    from rmt_deq.fixed_point.solution import FixedPointSolution
    from rmt_deq.jobs.demo import run_demo
    from rmt_deq.jobs.kernel import kernel_from_data, sampled_kernel_from_data
    from rmt_deq.jobs.spectrum import spectrum_report
    from rmt_deq.kernels.ck_surrogate import (ck_surrogate_coefficients, mixture_ck_surrogate,
                                              plugin_ck_surrogate)
    from rmt_deq.kernels.exact import exact_ck, exact_kernels, exact_ntk
    from rmt_deq.kernels.explicit import exact_explicit_kernels
    from rmt_deq.kernels.explicit_surrogate import explicit_ntk_surrogate
    from rmt_deq.kernels.ntk_surrogate import (mixture_ntk_surrogate, ntk_surrogate_coefficients,
                                               plugin_ntk_surrogate)
    from rmt_deq.kernels.result import Kernel
    from rmt_deq.metrics import (compare_kernels, ks_distance, spectral_distances,
                                 top_eigen_comparison)
    from rmt_deq.moments.gaussian import gaussian_moments
    from rmt_deq.networks.explicit import ExplicitNetwork
    from rmt_deq.plotting import plot_spectrum
    from rmt_deq.sampling.deq import sampled_ck, sampled_kernel, sampled_ntk
    from rmt_deq.sampling.explicit import sampled_explicit_ck, sampled_explicit_ntk
    from rmt_deq.spectra.bulk import kernel_bulk
    from rmt_deq.spectra.model import gram_model, gram_model_from_mixture
    from rmt_deq.spectra.spikes import isolated_eigenvalues

try:
    __version__ = _metadata.version("rmt_deq")
except _metadata.PackageNotFoundError:   # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    # activations and the four equations
    "Activation", "get_activation", "available_activations", "gaussian_moments",
    "solve_four_equations", "FixedPointSolution",
    # data
    "GaussianMixture", "default_mixture", "plugin_statistics",
    # kernels: one result type for every route
    "Kernel", "exact_ck", "exact_ntk", "exact_kernels", "exact_explicit_kernels",
    "ck_surrogate_coefficients", "ntk_surrogate_coefficients",
    "mixture_ck_surrogate", "plugin_ck_surrogate", "mixture_ntk_surrogate",
    "plugin_ntk_surrogate", "explicit_ntk_surrogate",
    # finite-width sampling
    "ExplicitNetwork", "sampled_ck", "sampled_ntk", "sampled_kernel", "sampled_explicit_ck",
    "sampled_explicit_ntk",
    # spectra
    "gram_model", "gram_model_from_mixture", "kernel_bulk", "isolated_eigenvalues",
    # comparisons
    "compare_kernels", "top_eigen_comparison", "ks_distance", "spectral_distances",
    # design
    "design_target", "design_network", "design_for_deq", "load_designed_network",
    # jobs and plotting
    "run_demo", "kernel_from_data", "sampled_kernel_from_data", "spectrum_report",
    "plot_spectrum",
    "RmtDeqError",
]
