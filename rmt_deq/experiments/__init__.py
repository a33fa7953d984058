"""Verification by measurement: how fast theory and exact kernels meet as p grows.

* :mod:`rmt_deq.experiments.harness`: the one loop over the dimension p (seeds, mixture,
  sample) every convergence check shares, and the log-log slope fit with its standard error;
* :mod:`rmt_deq.experiments.surrogates`: the CK and NTK surrogates (DEQ and explicit
  networks) against the exact infinite-width kernels (docs/theory.md §4, §5, §6);
* :mod:`rmt_deq.experiments.designs`: designed explicit networks against the DEQ they were
  designed for (docs/theory.md §6);
* :mod:`rmt_deq.experiments.observed`: the eigenvalues of a kernel on the data (exact,
  sampled or surrogate) against the predicted spectrum: bulk distances, spike errors,
  eigenvector alignments (docs/theory.md §7);
* :mod:`rmt_deq.experiments.check`: one configuration through solve, surrogates, exact and
  sampled kernels, spectra and design, every distance beside its expected size
  (:mod:`rmt_deq.experiments.check_figure` draws it on one page);
* :mod:`rmt_deq.experiments.manifest`: the provenance record (package version, git commit,
  command line, seeds, wall time) every figure and benchmark output carries.

Results are frozen dataclasses with ``to_dict()``, so tests, benchmarks and the figure
scripts use the same measurements.
"""
