"""The jobs the command line runs, as plain functions scripts and notebooks can call.

* :mod:`rmt_deq.jobs.kernel`: a kernel matrix of a DEQ or of a saved designed network
  from a data file (``rmt-deq kernel``);
* :mod:`rmt_deq.jobs.spectrum`: the limiting spectrum report against the observed
  eigenvalues (``rmt-deq spectrum``);
* :mod:`rmt_deq.jobs.check`: one configuration, every distance beside its expected size
  (``rmt-deq check``);
* :mod:`rmt_deq.jobs.generalization`: ridge learners observed and predicted
  (``rmt-deq generalization``);
* :mod:`rmt_deq.jobs.options`: the command-line pieces several commands share (the
  sampled-kernel options, the progress bar);
* :mod:`rmt_deq.jobs.demo`: the demo (``rmt-deq demo``);
* :mod:`rmt_deq.jobs.derivations`: the sympy derivations' checks (``rmt-deq derivations``).
* :mod:`rmt_deq.jobs.figures`: the figure set (``rmt-deq figures``).

Nothing here prints unless an ``echo`` callable is passed.
"""
