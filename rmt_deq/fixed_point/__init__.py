"""rmt_deq.fixed_point: the four-equation system (docs/theory.md §3).

Modules, each importing only those listed before it: solution (FixedPointSolution),
_equations (the coefficients and residuals at a root), _tau_root (Newton on tau^2, the
uniqueness scan), accuracy (error estimates), high_precision (the mpmath solve),
four_equations (solve_four_equations), centring (the solution fixing a DEQ's centring).
"""
