"""Generate tests/reference/mpmath_references.json: the mpmath references the tests read.

Regenerate (several minutes of CPU; run from the repository root)::

    OPENBLAS_NUM_THREADS=1 python tests/reference/make_mpmath_references.py

The file holds, under a header (format version, mpmath version, digits, this command):

``moments``
    every Gaussian moment of every activation of tests/conftest.py (and the user sine) at
    the scales of tests/test_moments.py, by :func:`rmt_deq.moments.gaussian.mp_gaussian_moments`
    at 50 digits (what tests/test_moments.py compares the float64 engines with);
``solver``
    tau, alpha1..alpha4 of the four-equation system by
    ``solve_four_equations(..., method="mpmath", dps=30)`` for the cases of
    tests/test_fixed_point.py;
``grid``
    tau, alpha1..alpha4 on the grid tau0 x sa x activation of tests/test_trust_numerics.py,
    from an mpmath computation written here, independent of the package's engines: the tau
    equation tau^2 = sa E[phi_c(tau xi)^2] + sb tau0^2 solved at high precision (its
    smallest root above sb tau0^2, bracketed by a geometric search and polished by the
    Anderson-Bjorck method), and the moments at the root by tanh-sinh quadrature of their
    defining integrals (phi centred at phi(0), working precision raised by the digits that
    small scales cancel).  Each point is computed at two precisions and kept only when both
    agree to 1e-18; a point with no stable fixed point is recorded as such;
``scale_moments``
    mean, V0, e1, e2, e3, g4 of the smooth and kinked activations at very small and very
    large tau, by the same independent integrator.

The values are stored as float64 (17 significant digits), far more than the tolerances
(1e-10 .. 1e-14) the tests assert.
"""
from __future__ import annotations

import json
import math
import pathlib
import sys
import time

import mpmath as mp

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = pathlib.Path(__file__).resolve().parent / "mpmath_references.json"
COMMAND = "OPENBLAS_NUM_THREADS=1 python tests/reference/make_mpmath_references.py"
FORMAT_VERSION = 1

# ---------------------------------------------------------------------------------------
# the grid of the accuracy test (tests/test_trust_numerics.py reads these from the file)
# ---------------------------------------------------------------------------------------
GRID_TAU0 = [1e-12, 1e-8, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e8, 1e12]
GRID_SA = [0.1, 0.3, 0.5, 0.7, 0.9]
GRID_DPS = (24, 32)          # the two working precisions (before the small-scale boost)
AGREE = 1e-18                # both precisions must agree to this (relative)
SCALE_TAUS = [1e-12, 1e-6, 1e-3, 1e3, 1e6, 1e12]


def _sig(x):
    return 1 / (1 + mp.exp(-x))


#: name -> (phi as an mpmath function, kinks); written here, not taken from the package
GRID_FUNCTIONS = {
    "relu": (lambda x: x if x > 0 else mp.mpf(0), (0,)),
    "leaky_relu:0.1": (lambda x: x if x > 0 else x / 10, (0,)),
    "tanh": (mp.tanh, ()),
    "sigmoid": (_sig, ()),
    "softplus": (lambda x: mp.log1p(mp.exp(x)) if x < 0 else x + mp.log1p(mp.exp(-x)), ()),
    "swish": (lambda x: x * _sig(x), ()),
    "gelu": (lambda x: x * mp.ncdf(x), ()),
    "erf": (mp.erf, ()),
    "elu:1": (lambda x: x if x > 0 else mp.expm1(x), (0,)),
    "user_quadratic": (lambda x: x / 2 + x * x / 100, ()),   # the callable 0.5 t + 0.01 t^2
}
#: the callable sigmoid (scipy.special.expit, no derivative given) is the same function as
#: the registered sigmoid: its reference is sigmoid's
GRID_ALIASES = {"user_sigmoid": "sigmoid"}
SCALE_ACTIVATIONS = ["tanh", "sigmoid", "softplus", "swish", "gelu", "erf", "elu:1",
                     "user_quadratic"]


# ---------------------------------------------------------------------------------------
# independent Gaussian expectations
# ---------------------------------------------------------------------------------------
def _boost(tau, power: int) -> int:
    """Digits that centred moments of order ``power`` in tau cancel at small tau."""
    return power * max(0, int(math.ceil(-math.log10(float(tau))))) + 5


def _breakpoints(tau, kinks) -> list:
    pts = {mp.mpf(0)}
    for s in (2, 4, 8):
        pts.update((mp.mpf(s), mp.mpf(-s)))
    for x in [mp.mpf(k) for k in kinks] + [mp.mpf(v) * sgn for v in (0.25, 1, 4, 16, 64)
                                          for sgn in (1, -1)]:
        s = x / tau
        if abs(s) < 40:
            pts.add(s)
    return [-mp.inf] + sorted(pts) + [mp.inf]


def expect(h, tau, kinks) -> mp.mpf:
    """E[h(xi)] for xi ~ N(0, 1), h already composed with tau (breakpoints at kinks/tau)."""
    c = 1 / mp.sqrt(2 * mp.pi)
    return mp.quad(lambda s: h(s) * mp.exp(-s * s / 2) * c, _breakpoints(tau, kinks))


def centred_v0(phi, kinks, tau) -> mp.mpf:
    """V0 = E[P^2] - E[P]^2 with P = phi - phi(0) (no cancellation against phi(0)^2)."""
    p0 = phi(mp.mpf(0))
    P = lambda s: phi(tau * s) - p0  # noqa: E731
    m1 = expect(P, tau, kinks)
    m2 = expect(lambda s: P(s) ** 2, tau, kinks)
    return m2 - m1 * m1


def moments_at(phi, kinks, tau, keys=("mean", "V0", "e1", "e2", "e3", "g4")) -> dict:
    """Moments at tau from their defining integrals (Hermite weights, phi centred at 0)."""
    p0 = phi(mp.mpf(0))
    P = lambda s: phi(tau * s) - p0  # noqa: E731
    m1 = expect(P, tau, kinks)
    m2 = expect(lambda s: P(s) ** 2, tau, kinks)
    out = {"mean": p0 + m1, "V0": m2 - m1 * m1}
    if "e1" in keys:
        out["e1"] = expect(lambda s: s * P(s), tau, kinks) / tau
    he2 = expect(lambda s: (s * s - 1) * P(s), tau, kinks)
    out["e2"] = he2 / tau ** 2
    if "e3" in keys:
        out["e3"] = expect(lambda s: (s ** 3 - 3 * s) * P(s), tau, kinks) / tau ** 3
    # E[(phi_c^2)''] tau^2 = E[He2 phi_c^2] = E[He2 P^2] - 2 E[P] E[He2 P]
    he2_p2 = expect(lambda s: (s * s - 1) * P(s) ** 2, tau, kinks)
    out["g4"] = (he2_p2 - 2 * m1 * he2) / tau ** 2
    return out


def _tau_map(phi, kinks, sa, c):
    return lambda q: mp.mpf(sa) * centred_v0(phi, kinks, mp.sqrt(q)) + c - q


def bracket_root(name: str, sa: float, tau0: float):
    """(lo, hi, q): the first sign change of f(q) = T(q) - q above sb tau0^2 (factors of 2)
    and a 12-digit root in it, or None when there is none below 1e12 max(sb tau0^2, 1)."""
    phi, kinks = GRID_FUNCTIONS[name]
    with mp.workdps(15 + _boost(tau0, 1)):
        c = (1 - mp.mpf(sa)) * mp.mpf(tau0) ** 2
        f = _tau_map(phi, kinks, sa, c)
        # f(q) >= c - q > 0 on (0, c]
        # up to 1e12 times sb tau0^2 or the scale 1 on which the functions bend (a tau map
        # steeper than 1 near 0 reaches its stable root only where phi saturates)
        lo, hi, top = c, 2 * c, max(c, 1) * mp.mpf(10) ** 12
        while f(hi) > 0:
            lo, hi = hi, 2 * hi
            if hi > top:
                return None
        q = mp.findroot(f, (lo, hi), solver="anderson", tol=mp.mpf(10) ** -24)
        return lo, hi, q


def solve_grid_point(name: str, sa: float, tau0: float, dps: int, start) -> dict:
    """The root of the tau equation polished at ``dps`` (+ boost) digits, and the alphas."""
    phi, kinks = GRID_FUNCTIONS[name]
    lo, hi, q0 = start
    with mp.workdps(dps + _boost(tau0, 2)):
        sa_m, sb_m, t0 = mp.mpf(sa), 1 - mp.mpf(sa), mp.mpf(tau0)
        f = _tau_map(phi, kinks, sa, sb_m * t0 ** 2)
        q = mp.findroot(f, (mp.mpf(q0), mp.mpf(q0) * (1 + mp.mpf(10) ** -10)),
                        solver="secant", tol=mp.mpf(10) ** (-2 * dps))
        # (the bracket was found at lower precision: allow its rounding)
        if not lo * (1 - mp.mpf(10) ** -12) <= q <= hi * (1 + mp.mpf(10) ** -12):
            raise RuntimeError(f"{name} sa={sa} tau0={tau0}: polished root left the bracket")
        tau = mp.sqrt(q)
        m = moments_at(phi, kinks, tau, keys=("e1",))
        g1, g2, g4 = m["e1"] ** 2, m["e2"] ** 2, m["g4"]
        k1, k4 = sa_m * g1, sa_m * g4 / 2
        if not (k1 < 1 and k4 < 1):
            return {"status": "no_fixed_point", "why": f"contraction fails: sa g1 = "
                    f"{float(k1):.4g}, sa g4/2 = {float(k4):.4g}"}
        a1 = sb_m / (1 - k1)
        a4 = sb_m / (1 - k4)
        a2 = sa_m * g2 * a4 ** 2 / (4 * (1 - k1))
        a3 = sa_m * g2 * a1 ** 2 / (2 * (1 - k1))
        return {"status": "ok", "q": q, "tau": tau, "alpha1": a1, "alpha2": a2, "alpha3": a3,
                "alpha4": a4}


def grid_reference(name: str, sa: float, tau0: float) -> dict:
    """A grid point at two precisions; raises if they disagree."""
    start = bracket_root(name, sa, tau0)
    if start is None:
        return {"status": "no_fixed_point", "why": "no root up to 1e12 max(sb tau0^2, 1)"}
    lo = solve_grid_point(name, sa, tau0, GRID_DPS[0], start)
    # the higher precision starts from the lower one's root (found independently of it:
    # the secant iteration re-converges at the higher precision)
    hi = solve_grid_point(name, sa, tau0, GRID_DPS[1],
                          start[:2] + (lo["q"] if lo["status"] == "ok" else start[2],))
    if lo["status"] != hi["status"]:
        raise RuntimeError(f"{name} sa={sa} tau0={tau0}: status differs {lo} {hi}")
    if hi["status"] != "ok":
        return hi
    out = {"status": "ok"}
    for k in ("tau", "alpha1", "alpha2", "alpha3", "alpha4"):
        a, b = lo[k], hi[k]
        # alpha2, alpha3 vanish for odd phi: compare them on the scale alpha1/tau^2 (the
        # size of alpha2 for a phi that bends on the scale tau)
        scale = max(abs(b), mp.mpf(10) ** -30) if k not in ("alpha2", "alpha3") else \
            max(abs(b), abs(hi["alpha1"]) / hi["tau"] ** 2)
        if abs(a - b) > AGREE * scale:
            raise RuntimeError(f"{name} sa={sa} tau0={tau0} {k}: {a} vs {b}")
        out[k] = float(b)
    return out


def scale_reference(name: str, tau: float) -> dict:
    """Moments at a very small or very large tau, at two precisions that must agree.

    The working precision is raised by the digits the Hermite-weighted integrals cancel
    (up to three powers of tau at small tau, one at large tau).  Agreement is relative, or
    for a moment that vanishes (odd phi) absolute on its natural size: the size of phi
    over the Gaussian, divided by tau to the number of derivatives the moment takes.
    """
    phi, kinks = GRID_FUNCTIONS[name]
    big = max(0, int(math.ceil(math.log10(tau)))) + 5
    vals = []
    for dps in GRID_DPS:
        with mp.workdps(dps + _boost(tau, 4) + big):
            m = moments_at(phi, kinks, mp.mpf(tau))
            p0 = phi(mp.mpf(0))
            m["_size"] = mp.sqrt(m["V0"] + (m["mean"] - p0) ** 2 + p0 ** 2)
            vals.append(m)
    size, t = vals[1]["_size"], mp.mpf(tau)
    order = {"mean": 0, "V0": 0, "e1": 1, "e2": 2, "e3": 3, "g4": 2}
    out = {}
    for k, n in order.items():
        a, b = vals[0][k], vals[1][k]
        natural = size ** 2 / t ** 2 if k == "g4" else (size ** 2 if k == "V0"
                                                          else size / t ** n)
        if abs(a - b) > AGREE * max(abs(b), natural):
            raise RuntimeError(f"{name} tau={tau} {k}: {a} vs {b}")
        out[k] = float(b)
    return out


# ---------------------------------------------------------------------------------------
# references computed with the package's mpmath paths (what the older tests compared with)
# ---------------------------------------------------------------------------------------
MOMENT_TAUS = [0.05, 0.3, 1.0, 2.5, 7.0, 20.0]
MOMENT_FIELDS = ("mean", "second", "V0", "e1", "e2", "e3", "h0", "h2", "g4")
MOMENT_DPS = 50
SOLVER_SPECS = ["relu", "tanh", "swish", "erf", "leaky_relu:0.1", "sigmoid"]
SOLVER_CASES = [(0.2, 1.0), (0.5, 0.7), (0.8, 1.6)]
SOLVER_KEYS = ("tau", "alpha1", "alpha2", "alpha3", "alpha4")
SOLVER_DPS = 30


def _package():
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest  # noqa: F401  (the activation list of the moment tests)
    from rmt_deq.activations import get_activation
    from rmt_deq.fixed_point.four_equations import solve_four_equations
    from rmt_deq.moments.gaussian import mp_gaussian_moments
    return conftest, get_activation, solve_four_equations, mp_gaussian_moments


def moment_reference(spec: str, tau: float) -> list:
    conftest, get_activation, _, mp_gaussian_moments = _package()
    act = conftest.user_sine() if spec == "user_sine" else get_activation(spec)
    m = mp_gaussian_moments(act, tau, dps=MOMENT_DPS)
    return [float(getattr(m, f)) for f in MOMENT_FIELDS]


def solver_reference(spec: str, sa: float, tau0: float) -> list:
    _, _, solve_four_equations, _ = _package()
    sol = solve_four_equations(spec, sa, tau0, method="mpmath", dps=SOLVER_DPS)
    return [float(getattr(sol, k)) for k in SOLVER_KEYS]


def main() -> None:
    t_start = time.time()
    conftest, *_ = _package()
    data = {
        "format_version": FORMAT_VERSION,
        "generated_by": COMMAND,
        "mpmath_version": mp.__version__,
        "note": "float64 values of mpmath references; see the generator's docstring",
    }
    specs = conftest.ACTIVATION_SPECS + ["user_sine"]
    data["moments"] = {"dps": MOMENT_DPS, "taus": MOMENT_TAUS, "fields": list(MOMENT_FIELDS),
                       "values": {s: [moment_reference(s, t) for t in MOMENT_TAUS]
                                  for s in specs}}
    print(f"moments done ({time.time() - t_start:.0f} s)", flush=True)
    data["solver"] = {"dps": SOLVER_DPS, "cases": [list(c) for c in SOLVER_CASES],
                      "keys": list(SOLVER_KEYS),
                      "values": {s: [solver_reference(s, sa, t0) for sa, t0 in SOLVER_CASES]
                                 for s in SOLVER_SPECS}}
    print(f"solver done ({time.time() - t_start:.0f} s)", flush=True)
    grid = {}
    for name in GRID_FUNCTIONS:
        grid[name] = [[grid_reference(name, sa, t0) for sa in GRID_SA] for t0 in GRID_TAU0]
        print(f"grid {name} done ({time.time() - t_start:.0f} s)", flush=True)
    data["grid"] = {"dps": list(GRID_DPS), "agree": AGREE, "tau0": GRID_TAU0, "sa": GRID_SA,
                    "aliases": GRID_ALIASES, "values": grid}
    data["scale_moments"] = {"dps": list(GRID_DPS), "taus": SCALE_TAUS,
                             "values": {n: [scale_reference(n, t) for t in SCALE_TAUS]
                                        for n in SCALE_ACTIVATIONS}}
    data["seconds"] = round(time.time() - t_start)
    OUT.write_text(json.dumps(data, indent=0, sort_keys=False) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB) in {data['seconds']} s")


if __name__ == "__main__":
    main()
