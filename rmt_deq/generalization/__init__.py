"""Generalization: what DEQs and their designed explicit networks learn, measured and
predicted (docs/generalization.md).

Modules, in import order: ``ridge`` (ridge on a Gram matrix, targets, scores),
``equivalent`` (the deterministic equivalent of random-feature ridge), ``problem``
(labelled train/test data with its statistics), ``designed`` (the one adapter to the
designed explicit network), ``features`` (the random features and the kernels of a
problem), ``experiment`` (observed over seeds beside predicted), ``curves`` (sweeps over
the ridge, the width and n/p).
"""
