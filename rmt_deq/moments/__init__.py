"""rmt_deq.moments: Gaussian moments of an activation (docs/theory.md §3.1, §3.4-3.6) and
bivariate Gaussian expectations (docs/theory.md §2.2-2.3).

Modules, each importing only those listed before it: closed_forms (exact formulas),
result (GaussianMoments), _quadrature (the float64 rule), series (small-scale Taylor
series), precise (the mpmath engine), _engines (trusting dispatch), table (interpolation
tables), gaussian (the public one-dimensional API); pair_closed, _scale_rule, scales
(one-dimensional moments at many scales), mehler, pair_quadrature, bivariate (the public
scalar pair API), pairs (PairExpectations).
"""
