"""The figure set (``rmt-deq figures``): a registry of figures, each built from fixed seeds
by the library's measurements and drawn in the journal style of :mod:`rmt_deq.plotting`.

* :mod:`~rmt_deq.jobs.figures.registry`: name -> builder ``build(size, seed)`` returning a
  figure and its table (:class:`FigureOutput`);
* :mod:`~rmt_deq.jobs.figures.run`: :func:`build_figures` (files, tables, manifest) and
  the command line's sub-parser;
* the figure groups: :mod:`~rmt_deq.jobs.figures.spectra` (spectral densities and the
  distances of the bulk), :mod:`~rmt_deq.jobs.figures.alignments` (isolated eigenvalues
  and eigenvector alignments), :mod:`~rmt_deq.jobs.figures.convergence` (surrogates
  against exact kernels over p), :mod:`~rmt_deq.jobs.figures.design` (designed explicit
  networks against their DEQ), :mod:`~rmt_deq.jobs.figures.sampling` (finite-width
  kernels, weight families, error bars), :mod:`~rmt_deq.jobs.figures.generalization`
  (ridge on DEQ and designed-network random features, predicted against observed; the
  digits' kernel spectrum, which needs scikit-learn).
"""
from rmt_deq.jobs.figures.registry import (SIZES, FigureOutput, FigureSpec, figure_names,
                                           figure_specs, register)
from rmt_deq.jobs.figures.run import (FORMATS, FigureProgress, FiguresResult,
                                      add_figures_parser, build_figures, run_figures_command)

__all__ = ["SIZES", "FORMATS", "FigureOutput", "FigureSpec", "FigureProgress",
           "FiguresResult", "figure_names", "figure_specs", "register", "build_figures",
           "add_figures_parser", "run_figures_command"]
