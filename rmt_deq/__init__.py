"""rmt_deq: random-matrix theory of deep equilibrium models on Gaussian-mixture data.

Data flow: activation -> Gaussian moments -> fixed point (four equations) -> surrogate
kernels -> spectra, with exact infinite-width kernels, sampling and design beside them.
Convention everywhere: a data matrix X is p x n (columns are samples).
"""
from importlib import metadata as _metadata

from rmt_deq.activations import Activation, available_activations, get_activation, register_activation
from rmt_deq.errors import (ConvergenceError, DataFileError, DivergentMomentError,
                     InfeasibleDesignError, InvalidParameterError, InvalidRecordError,
                     MemoryBudgetError, NoFixedPointError, NonFiniteInputError, OutputPathError,
                     OutputWriteError, PrecisionLossError, InconsistentDataError,
                     RmtDeqError, ShapeMismatchError, UnknownActivationError,
                     UnknownOptionError)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.moments.gaussian import gaussian_expectation, gaussian_moments, raw_moments
from rmt_deq.moments.result import GaussianMoments
from rmt_deq.data.conventions import DataScale, check_statistics, data_scale, scale_note
from rmt_deq.data.mixture import default_mixture, GaussianMixture, MixtureSample
from rmt_deq.data.statistics import MixtureStatistics, PluginEstimate, plugin_statistics
from rmt_deq.kernels.result import Kernel
from rmt_deq.kernels.surrogate import SurrogateCoefficients
from rmt_deq.kernels.ck_surrogate import (ck_surrogate_coefficients, ck_surrogate_matrix,
                                          mixture_ck_surrogate, plugin_ck_surrogate)
from rmt_deq.moments.bivariate import bivariate_expectation
from rmt_deq.kernels.exact import (ExactDetails, exact_ck, exact_kernels, exact_ntk,
                                   published_ntk)
from rmt_deq.jobs.kernel import kernel_from_data, sampled_kernel_from_data
from rmt_deq.jobs.demo import run_demo
from rmt_deq.kernels.ntk_surrogate import (NTKCoefficients, mixture_ntk_surrogate,
                                           ntk_group_coefficients, ntk_surrogate_coefficients,
                                           plugin_ntk_surrogate)
from rmt_deq.kernels.explicit_surrogate import (explicit_network_coefficients,
                                                explicit_ntk_surrogate)
from rmt_deq.networks.weights import WEIGHT_FAMILIES, weight_matrix
from rmt_deq.networks.deq import (DEQForward, DEQGradients, DEQWeights, deq_forward,
                  deq_gradients, sample_deq_weights)
from rmt_deq.networks.solver import SolveRecord, SolverOptions, solve_batched
from rmt_deq.networks.explicit import (ExplicitNetwork, explicit_forward,
                                       sample_explicit_weights)
from rmt_deq.kernels.explicit import exact_explicit_kernels
from rmt_deq.sampling.explicit import sampled_explicit_ck, sampled_explicit_ntk
from rmt_deq.sampling.deq import SamplingInfo, sampled_ck, sampled_kernel, sampled_ntk
from rmt_deq.sampling._montecarlo import (MonteCarloOptions, SamplerOptions, SamplingProgress,
                                          mc_error_bound)
from rmt_deq.metrics import (KernelComparison, TopEigenComparison, compare_kernels, ks_distance,
                      relative_frobenius_distance, relative_operator_distance,
                      spectral_distances, top_eigen_comparison, wasserstein1_distance)
from rmt_deq.spectra.model import GramModel, gram_model, gram_model_from_mixture
from rmt_deq.spectra.stieltjes import StieltjesSolution, gram_density, gram_support, stieltjes
from rmt_deq.spectra.bulk import BulkSpectrum, kernel_bulk
from rmt_deq.spectra.spikes import Spikes, isolated_eigenvalues, observed_alignments
from rmt_deq.jobs.spectrum import load_mixture_spec, spectrum_report
from rmt_deq.plotting import plot_spectrum
from rmt_deq.design.families import DesignFamily, get_family
from rmt_deq.design.parametric import ParametricFamily
from rmt_deq.design.targets import DesignTarget, design_target, explicit_equations
from rmt_deq.design.network import DesignedNetwork, load_designed_network
from rmt_deq.design.solve import design_for_deq, design_network, design_record

try:
    __version__ = _metadata.version("rmt_deq")
except _metadata.PackageNotFoundError:   # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Activation", "available_activations", "get_activation", "register_activation",
    "GaussianMoments", "gaussian_moments", "gaussian_expectation", "raw_moments",
    "FixedPointSolution", "solve_four_equations",
    "GaussianMixture", "MixtureSample", "MixtureStatistics", "PluginEstimate",
    "plugin_statistics", "default_mixture", "DataScale", "data_scale", "check_statistics",
    "scale_note",
    "Kernel", "SurrogateCoefficients", "ck_surrogate_matrix", "mixture_ck_surrogate",
    "plugin_ck_surrogate", "ck_surrogate_coefficients",
    "bivariate_expectation", "ExactDetails", "exact_kernels", "exact_ck", "exact_ntk",
    "published_ntk", "kernel_from_data", "run_demo", "sampled_kernel_from_data",
    "NTKCoefficients", "ntk_group_coefficients", "ntk_surrogate_coefficients",
    "mixture_ntk_surrogate", "plugin_ntk_surrogate", "explicit_network_coefficients",
    "explicit_ntk_surrogate",
    "WEIGHT_FAMILIES", "weight_matrix", "DEQWeights", "DEQForward", "DEQGradients",
    "SolveRecord", "SolverOptions", "solve_batched", "sample_deq_weights", "deq_forward", "deq_gradients",
    "ExplicitNetwork", "exact_explicit_kernels", "explicit_forward",
    "sample_explicit_weights", "sampled_explicit_ck", "sampled_explicit_ntk",
    "MonteCarloOptions", "SamplerOptions", "SamplingInfo", "SamplingProgress", "mc_error_bound",
    "sampled_ck", "sampled_ntk", "sampled_kernel",
    "KernelComparison", "TopEigenComparison", "compare_kernels", "ks_distance",
    "relative_frobenius_distance", "relative_operator_distance", "top_eigen_comparison",
    "wasserstein1_distance",
    "GramModel", "BulkSpectrum", "StieltjesSolution", "gram_model", "gram_model_from_mixture", "gram_density",
    "gram_support", "kernel_bulk", "spectral_distances", "stieltjes",
    "Spikes", "isolated_eigenvalues", "observed_alignments", "spectrum_report",
    "load_mixture_spec", "plot_spectrum",
    "DesignTarget", "DesignFamily", "ParametricFamily", "DesignedNetwork",
    "design_target", "design_network", "design_for_deq", "design_record",
    "explicit_equations", "get_family", "load_designed_network",
    "RmtDeqError", "InvalidParameterError", "InvalidRecordError", "MemoryBudgetError", "ShapeMismatchError", "NonFiniteInputError",
    "UnknownActivationError", "UnknownOptionError", "DivergentMomentError",
    "NoFixedPointError", "ConvergenceError", "InfeasibleDesignError", "DataFileError",
    "OutputPathError", "OutputWriteError", "PrecisionLossError", "InconsistentDataError",
]
