"""The jobs the command line runs, as plain functions scripts and notebooks can call.

* :mod:`rmt_deq.jobs.kernel`: a kernel matrix from a data file (``rmt-deq kernel``);
* :mod:`rmt_deq.jobs.spectrum`: the limiting spectrum report (``rmt-deq spectrum``);
* :mod:`rmt_deq.jobs.demo`: the demo (``rmt-deq demo``);
* :mod:`rmt_deq.jobs.figures`: the figure set (``rmt-deq figures``).

Nothing here prints unless an ``echo`` callable is passed.
"""
