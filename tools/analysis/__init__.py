"""Analysis code run by the scripts of ``tools/`` and ``tools/analysis/``: the training-step
benchmark (:mod:`tools.analysis.bench`) and the k-NN probe (:mod:`tools.analysis.knn`)."""
