"""Frozen-feature detection probe: an mmdet Faster R-CNN R18-FPN (the CPU-demo fine-tune
detector without its mask branch) whose pre-trained parts are frozen, trained for a fixed budget
on the rest, COCO box AP on the val split.

Variants: ``backbone`` (the backbone frozen, eval-mode BN) and ``all`` (every part the checkpoint
fills frozen: for MCL and SoCo backbone + FPN + the 4-conv box-head convs; ``random`` freezes
all three). The frozen stage's outputs on the un-augmented, resized images (C2-C5, or the FPN
levels when the FPN is frozen too) are computed once per checkpoint and cached on disk as float16;
the remaining layers train on the cache with mmdet's own losses. Checkpoints: anything
:func:`mcl_plugin.converters.convert.load_source_checkpoint` reads, mapped by the converter's
rules, or ``random``.

Modules: :mod:`.detector` (build, load, freeze), :mod:`.data` (images, cached features),
:mod:`.probe` (training on the cache, evaluation, the run and its report). Front-end:
``tools/analysis/det_probe.py``.
"""
from .data import frozen_features, load_split, read_classes, to_data_samples
from .detector import (FT_CONFIG, VARIANTS, ProbeDetector, build_detector, load_detector,
                       set_train_mode)
from .probe import (DetProbeConfig, DetResult, coco_box_ap, det_to_markdown, evaluate,
                    run_det_probe, train_on_cache)

__all__ = [
    'frozen_features', 'load_split', 'read_classes', 'to_data_samples', 'FT_CONFIG', 'VARIANTS',
    'ProbeDetector', 'build_detector', 'load_detector', 'set_train_mode', 'DetProbeConfig',
    'DetResult', 'coco_box_ap', 'det_to_markdown', 'evaluate', 'run_det_probe', 'train_on_cache'
]
