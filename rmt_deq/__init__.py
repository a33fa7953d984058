"""rmt_deq: random-matrix theory of deep equilibrium models on Gaussian-mixture data.

Data flow: activation -> Gaussian moments -> fixed point (four equations) -> surrogate
kernels -> spectra, with exact infinite-width kernels, sampling and design beside them.
Convention everywhere: a data matrix X is p x n (columns are samples).
"""
from .activations import Activation, available_activations, get_activation, register_activation
from .errors import (ConvergenceError, DivergentMomentError, InfeasibleDesignError,
                     InvalidParameterError, NoFixedPointError, NonFiniteInputError,
                     RmtDeqError, ShapeMismatchError, UnknownActivationError,
                     UnknownOptionError)
from .fixed_point import FixedPointSolution, solve_four_equations
from .gaussian import GaussianMoments, gaussian_expectation, gaussian_moments, raw_moments
from .mixture import (GaussianMixture, MixtureSample, MixtureStatistics, PluginEstimate,
                      plugin_statistics)
from .surrogate import (CKSurrogate, SurrogateCoefficients, ck_surrogate,
                        mixture_ck_surrogate, plugin_ck_surrogate, surrogate_coefficients)
from .bivariate import bivariate_expectation
from .kernels import ExactKernel, ExactNTK, exact_ck, exact_ntk, published_ntk
from .pipeline import default_mixture, kernel_from_data, run_demo

__version__ = "0.1.0"

__all__ = [
    "Activation", "available_activations", "get_activation", "register_activation",
    "GaussianMoments", "gaussian_moments", "gaussian_expectation", "raw_moments",
    "FixedPointSolution", "solve_four_equations",
    "GaussianMixture", "MixtureSample", "MixtureStatistics", "PluginEstimate",
    "plugin_statistics", "default_mixture",
    "CKSurrogate", "SurrogateCoefficients", "ck_surrogate", "mixture_ck_surrogate",
    "plugin_ck_surrogate", "surrogate_coefficients",
    "bivariate_expectation", "ExactKernel", "ExactNTK", "exact_ck", "exact_ntk",
    "published_ntk", "kernel_from_data", "run_demo",
    "RmtDeqError", "InvalidParameterError", "ShapeMismatchError", "NonFiniteInputError",
    "UnknownActivationError", "UnknownOptionError", "DivergentMomentError",
    "NoFixedPointError", "ConvergenceError", "InfeasibleDesignError",
]
