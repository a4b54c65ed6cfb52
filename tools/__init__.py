"""The command-line tools of mcl_plugin and the offline code they run (not part of the plugin).

The scripts (``tools/train.py``, ``tools/benchmark.py``, ``tools/prepare_data.py``, ...) are run
by path; the packages next to them are importable from the repository root (the editable
install puts it on ``sys.path``):

- :mod:`tools.data`: the data builder of ``tools/prepare_data.py``.
- :mod:`tools.proposals`: selective-search proposal generation (``tools/generate_proposals.py``).
- :mod:`tools.analysis.bench`: the training-step benchmark (``tools/benchmark.py``).
- :mod:`tools.analysis.knn`: the k-NN probe (``tools/analysis/knn_probe.py``).
"""
