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

__version__ = "0.1.0"

__all__ = [
    "Activation", "available_activations", "get_activation", "register_activation",
    "GaussianMoments", "gaussian_moments", "gaussian_expectation", "raw_moments",
    "FixedPointSolution", "solve_four_equations",
    "RmtDeqError", "InvalidParameterError", "ShapeMismatchError", "NonFiniteInputError",
    "UnknownActivationError", "UnknownOptionError", "DivergentMomentError",
    "NoFixedPointError", "ConvergenceError", "InfeasibleDesignError",
]
