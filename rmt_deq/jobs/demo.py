"""The demo job (``rmt-deq demo``): one DEQ on one sample, theory against the exact kernel.

:func:`run_demo` solves the four equations (docs/theory.md §3), compares the exact
Implicit-CK (§2.2) with the CK surrogate (§4), predicts the kernel's spectrum from the
mixture statistics alone (§7) and draws it over the exact kernel's eigenvalues.  It
reports through an ``echo`` callable and prints nothing itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from rmt_deq._io import check_output_path, json_ready
from rmt_deq._results import readonly
from rmt_deq._validation import check_memory, check_positive_int, memory_budget
from rmt_deq.activations import ActivationLike
from rmt_deq.data.mixture import default_mixture
from rmt_deq.errors import InvalidParameterError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate
from rmt_deq.kernels.exact import exact_ck
from rmt_deq.metrics import relative_operator_distance, spectral_distances, SpectralDistances
from rmt_deq.plotting import plot_spectrum, save_figure
from rmt_deq.spectra.bulk import BulkSpectrum, kernel_bulk
from rmt_deq.spectra.model import gram_model_from_mixture
from rmt_deq.spectra.spikes import Spikes, isolated_eigenvalues

__all__ = ["run_demo", "DemoResult", "demo_memory"]

#: the demo's data: K = 2 classes, n = DEMO_RATIO * p samples
DEMO_CLASSES = 2
DEMO_RATIO = 0.8
#: the smallest p the demo accepts (a few samples per class)
DEMO_MIN_P = 10
#: the fixed-point quantities the demo reports
_REPORTED = ("tau", "alpha1", "alpha2", "alpha3", "alpha4", "g1", "g2", "g4")


def _samples(p: int) -> int:
    """n = DEMO_RATIO * p, rounded down."""
    return int(DEMO_RATIO * p)


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` computed.

    Attributes
    ----------
    solution : FixedPointSolution
        The four-equation solution at the sample's tau0.
    eig_exact, eig_surrogate : ndarray
        Eigenvalues of the exact CK G and of the surrogate G~ (ascending, read-only).
    relative_error : float
        ||G~ - G|| / ||G|| (operator norm).
    bulk : BulkSpectrum
        The predicted limiting bulk of G.
    spikes : Spikes
        The predicted isolated eigenvalues.
    distances : SpectralDistances
        Kolmogorov-Smirnov and 1-Wasserstein distances of the exact bulk to the prediction
        (:func:`rmt_deq.metrics.spectral_distances`).
    figure : str or None
        The figure written, if any.
    """

    solution: FixedPointSolution
    eig_exact: np.ndarray
    eig_surrogate: np.ndarray
    relative_error: float
    bulk: BulkSpectrum
    spikes: Spikes
    distances: SpectralDistances
    figure: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the solution, bulk and spikes as their own dicts)."""
        return json_ready({
            "solution": self.solution.to_dict(), "eig_exact": self.eig_exact,
            "eig_surrogate": self.eig_surrogate, "relative_error": self.relative_error,
            "bulk": self.bulk.to_dict(), "spikes": self.spikes.to_dict(),
            "distances": self.distances.to_dict(), "figure": self.figure})


def demo_memory(p: int) -> float:
    """Bytes :func:`run_demo` needs at dimension p (n = 0.8 p): the sample and its noise
    (2 p n), the exact CK with its work arrays, the surrogate's G~, Sigma~ and X^T X, their
    difference and the two eigen-decompositions (8 n^2 in all), in float64."""
    n = _samples(p)
    return 8.0 * (2.0 * p * n + 8.0 * n * n)


# adapters: the only places that read the kernels' and the solution's result fields
def _ck_matrix(kernel: Any) -> np.ndarray:
    """The CK G of a CK result (exact or surrogate)."""
    return kernel.ck


def _solution_report(sol: FixedPointSolution) -> list[str]:
    """The lines of the report about the four-equation solution."""
    lines = [f"four equations: activation {sol.activation}, sa = {sol.sa:g}, "
             f"sb = {sol.sb:g}, tau0 = {sol.tau0:.6g}"]
    lines += [f"  {name:7s} = {getattr(sol, name): .12g}" for name in _REPORTED]
    lines.append(f"  residual {sol.report.residual:.1e}, contraction sa*g1 = "
                 f"{sol.contraction['alpha1']:.3g}, unique: {sol.unique}")
    return lines


def run_demo(activation: ActivationLike = "relu", sa: float = 0.2, p: int = 400,
             seed: int = 0, out: str | None = "rmt_deq_demo.png",
             echo: Callable[[str], Any] | None = None,
             max_memory: float | None = None) -> DemoResult:
    """Solve the four equations, compare the exact CK with the predicted spectrum, draw it.

    The figure is the spectral one of docs/theory.md §7: the histogram of the eigenvalues
    of the exact infinite-width Implicit-CK G on one sample, the limiting density of the
    bulk predicted from the mixture statistics alone
    (:func:`rmt_deq.spectra.bulk.kernel_bulk`), and the predicted isolated eigenvalues
    (:func:`rmt_deq.spectra.spikes.isolated_eigenvalues`).

    Parameters
    ----------
    activation, sa : the DEQ (sb = 1 - sa)
    p : int
        Dimension; n = 0.8 p samples from :func:`rmt_deq.data.mixture.default_mixture`
        (K = 2).
    seed : int
        Seed of the mixture (the sample's is seed + 1).
    out : str or None
        Where to write the spectral figure (format from the suffix: .png, .pdf, .svg...);
        None for no figure.  Checked before anything is computed, written atomically.
    echo : callable, optional
        Called with each line of the report (the CLI passes ``print``).
    max_memory : float, optional
        Memory budget in bytes (default :data:`rmt_deq._validation.DEFAULT_MAX_MEMORY`);
        the estimate :func:`demo_memory` is checked against it before anything is allocated.

    Returns
    -------
    DemoResult

    Raises
    ------
    InvalidParameterError
        p < 10 (too few samples for two classes), a bad seed or DEQ.
    MemoryBudgetError
        The demo at this p would need more than ``max_memory``.
    OutputPathError
        ``out`` cannot be written (checked first).
    """
    p = check_positive_int(p, "p")
    if p < DEMO_MIN_P:
        raise InvalidParameterError(
            f"the demo needs p >= {DEMO_MIN_P} (n = 0.8 p samples in two classes); got "
            f"p = {p}")
    check_memory(demo_memory(p), memory_budget(max_memory),
                 f"the demo's sample (p x n = {p} x {_samples(p)}) and n x n kernels",
                 "use a smaller p (--p), or raise max_memory (--max-memory)")
    if out:
        check_output_path(out, "out", figure=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
    say = echo or (lambda s: None)
    mixture = default_mixture(p, DEMO_CLASSES, rng=seed)
    sample = mixture.sample(_samples(p), rng=seed + 1)
    sur = mixture_ck_surrogate(mixture, sample, activation, sa)
    sol = sur.solution
    for line in _solution_report(sol):
        say(line)
    G = _ck_matrix(exact_ck(sample.X, activation, sa, solution=sol))
    Gt = _ck_matrix(sur)
    err = relative_operator_distance(Gt, G)
    ev_exact = np.linalg.eigvalsh(G)
    ev_sur = np.linalg.eigvalsh(Gt)
    say(f"p = {p}, n = {sample.n}: ||G - G~|| / ||G|| = {err:.4f} (exact CK vs RMT surrogate)")
    model = gram_model_from_mixture(mixture, sample)
    coef = sur.info.coefficients["G"]
    bulk = kernel_bulk(model, coef)
    spikes = isolated_eigenvalues(model, coef, bulk=bulk)
    dist = spectral_distances(ev_exact, bulk, exclude=spikes.positions)
    say("predicted spectrum of G (no sampling): support "
        + ", ".join(f"[{a:.4g}, {b:.4g}]" for a, b in bulk.support)
        + (f", atom {bulk.atom:.3g} at {bulk.atom_at:.4g}" if bulk.atom > 0 else ""))
    say(f"  exact CK bulk vs prediction: Kolmogorov-Smirnov {dist.ks:.4f}, "
        f"1-Wasserstein {dist.w1_relative:.4f} of the bulk width")
    top = np.sort(ev_exact)[::-1][:spikes.count]
    say("  isolated eigenvalues predicted "
        + ", ".join(f"{s:.4g}" for s in spikes.positions[::-1])
        + "; exact CK top eigenvalues " + ", ".join(f"{s:.4g}" for s in top))
    figure = None
    if out:
        ax = plot_spectrum(
            bulk, spikes, eigenvalues=ev_exact, label="exact Implicit-CK G",
            title=f"{sol.activation} DEQ, $\\sigma_a^2$ = {sa:g}, p = {p}, n = {sample.n}\n"
                  f"bulk: Kolmogorov-Smirnov distance {dist.ks:.3f},\n"
                  f"Wasserstein-1 distance {dist.w1_relative:.4f} bulk widths")
        save_figure(ax.figure, out)
        figure = str(out)
        say(f"wrote {out}")
    return DemoResult(solution=sol, eig_exact=readonly(ev_exact),
                      eig_surrogate=readonly(ev_sur), relative_error=err, bulk=bulk,
                      spikes=spikes, distances=dist, figure=figure)
