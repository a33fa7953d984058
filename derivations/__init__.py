"""Symbolic (sympy) derivations behind rmt_deq; each module runs as a script and is
executed by tests/test_derivations.py.

stein            Stein/Hermite identities, the heat equation in tau^2 (docs/theory.md §3)
closed_moments   every closed-form raw Gaussian moment the package uses (relu, leaky relu,
                 hard tanh, quadratic, cubic, erf), compared with rmt_deq.moments.gaussian
ck_expansion     the second-order expansion of E[phi_c(u_i) phi_c(u_j)] (docs/theory.md §4)
four_equations   alpha1..alpha4 by coefficient matching, compared with the solver
"""
