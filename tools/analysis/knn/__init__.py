"""k-NN probe: compare the backbones of several checkpoints without fine-tuning.

For every checkpoint the backbone is rebuilt and loaded, the crops of the object instances of a
COCO-format set (:class:`~mcl_plugin.datasets.CocoObjectCropDataset` +
:class:`~mcl_plugin.datasets.transforms.CropToBox`) are resized to a square, and the
global-average-pooled output of the **last backbone stage** is the crop's feature. A weighted
k-nearest-neighbour classifier (cosine similarity, the ``k`` most similar training crops vote
with weight ``exp(similarity / T)``; InstDisc, Wu et al. 2018) labels every validation crop;
its top-1 accuracy is the probe's score. Nothing is trained, so the numbers compare
representations, not fine-tuning recipes.

Accepted checkpoints (everything :func:`mcl_plugin.converters.convert.load_source_checkpoint`
reads): pre-training checkpoints of the plugin's algorithms (MCL, MCL-sup, SoCo, DetCo, PLRC;
online weights, or the EMA / momentum target with ``use_ema``), mmpretrain / mmselfsup BYOL,
MoCo and DenseCL checkpoints, files written by ``tools/convert_to_mmdet.py``, fine-tuned mmdet
detectors and backbone-only files; plus ``random`` (a freshly initialised backbone, seeded).
The ResNet depth is read from the checkpoint; other backbones need ``backbone_cfg``.

The command-line front-end is ``tools/analysis/knn_probe.py``. Modules: :mod:`.backbone`
(architecture, loading), :mod:`.features` (crops, features), :mod:`.classify` (the k-NN rule),
:mod:`.tsne` (t-SNE plots), :mod:`.probe` (the run and its report), :mod:`.cache` (on-disk
feature cache), :mod:`.linear` (the linear probe on the same crops and features; front-end
``tools/analysis/linear_probe.py``).
"""
from .backbone import (DEFAULT_BACKBONE, RANDOM, LoadedBackbone, build_backbone,
                       infer_resnet_cfg, load_backbone, parse_spec)
from .classify import knn_predict, knn_top1
from .cache import cache_path, cached, source_fingerprint
from .features import MEAN_RGB, STD_RGB, CropSet, extract_features, instance_keys, load_crops
from .linear import (CV_CS, LinearConfig, LinearResult, cv_logistic_top1, linear_reading,
                     linear_to_markdown, linear_top1, nearest_centroid_top1,
                     pooled_instance_top1, run_linear_probe, train_linear)
from .probe import ProbeResult, results_to_markdown, run_probe
from .tsne import plot_tsne, tsne

__all__ = [
    'CropSet', 'ProbeResult', 'LoadedBackbone', 'parse_spec', 'infer_resnet_cfg', 'build_backbone',
    'load_backbone', 'load_crops', 'extract_features', 'knn_predict', 'knn_top1', 'tsne',
    'plot_tsne', 'run_probe', 'results_to_markdown', 'RANDOM', 'DEFAULT_BACKBONE', 'MEAN_RGB',
    'STD_RGB', 'cache_path', 'cached', 'source_fingerprint', 'LinearConfig', 'LinearResult',
    'linear_to_markdown', 'linear_top1', 'linear_reading', 'nearest_centroid_top1',
    'run_linear_probe', 'train_linear', 'CV_CS', 'cv_logistic_top1', 'instance_keys',
    'pooled_instance_top1'
]
