"""Training-step cost of every pre-training method of the plugin and of two mmpretrain baselines.

``tools/benchmark.py`` is the command-line front-end; this package holds the pieces it runs:
the model configs at one backbone depth, read from each algorithm's config files
(:mod:`.models`: :func:`model_cfg`), synthetic batches with the structure each method's data
pipeline produces (:mod:`.inputs`: :func:`make_batch`), the timed worker (:mod:`.worker`:
:func:`run_worker`, one algorithm per fresh process), the selective-search timing for SoCo's
proposals and the montage-assembler timing (:mod:`.extras`) and the summary / Markdown table
(:mod:`.report`), and the MAC count of one step with mmengine's FLOP analysis
(:mod:`.macs`: :func:`step_macs`; step = 3 x online forward + target forward) and the memory
of one step taken apart (:func:`step_memory`: saved activations, weights, gradients, optimizer
state).

Equal budget: every algorithm gets the same backbone (ResNet-``depth``, BN), the same number of
source images per step (``batch``) and the same image size ``img``. What ``img`` is, per method
(each method's own extra inputs are part of its cost):

- ``byol``, ``mocov2`` (mmpretrain): two views of ``img x img``.
- ``mcl``: ``2 x S`` views of ``img x img`` per image; the model assembles them into montages of
  ``img x img`` (level ``s`` tiles are ``img / 2^s``; ``ceil(batch / 4^s)`` montages per level and
  branch, the last one completed with repeated tiles) that go through the online and the EMA
  network. ``TilePooler.out_size = img // 32``.
- ``mcl-official`` (extra, ``--heads paper`` only): MCL with the official recipe
  (``configs/_base_/models/mcl_r50-fpn_official.py``): ``batch / [1, 4, 16, 32][s]`` montages,
  one backbone pass per branch, the tile head + projector per FPN level over every montage.
- ``mcl-sup``: ``S`` views of ``img x img`` -> montages as MCL, one branch, no EMA network.
- ``vanilla-sup`` (only for ``--pair sup``): one ``img x img`` view, the same backbone + GAP +
  linear classifier.
- ``soco``: views V1, V2 of ``img`` and V3 of ``img / 2`` (the paper's 224/224/112), ``K = 4``
  proposal boxes per image and view (sides 30-90 % of the view), RoIAlign scale thresholds
  ``(48, 96, 192) * img / 224``.
- ``detco``: two global views of ``img`` + two sets of 9 jigsaw patches of
  ``round(64 * img / 224)`` px (the paper's 64 px patches for 224 px views).
- ``plrc``: two views of ``img`` with ``2 x R x R`` grid region maps, ``R = img // 4`` (the
  paper's 56 for 224).

A step is ``model.train_step``: data preprocessor (uint8 -> normalised float) + forward incl.
the EMA / momentum update + loss + backward + SGD step (momentum 0.9, same for every method; the
configs' LARS costs about the same; with ``--foreach`` a multi-tensor SGD step:
:func:`build_optimizer`). With ``--channels-last`` the weights and the preprocessed images are
in ``torch.channels_last``.
"""
from .extras import bench_assembler, bench_selective_search, sample_images
from .inputs import (DETCO_PATCHES, SOCO_PROPOSALS, describe_inputs, detco_patch_size,
                     make_batch, montage_counts, online_pixels)
from .models import (ALGOS, BASELINES, CONFIGS, EXTRA_ALGOS, FPN_IN, LABELS, NUM_CLASSES,
                     NAME_SUFFIXES, build_model, classifier_cfg, config_root, label, model_cfg,
                     split_name)
from .macs import counted_parts, module_macs, step_macs
from .report import MAC_KEYS, add_ratios, markdown_table, summarize
from .worker import (build_optimizer, max_rss_mb, rss_mb, run_isolated, run_worker,
                     saved_tensor_bytes, step_memory)

__all__ = [
    'ALGOS', 'EXTRA_ALGOS', 'BASELINES', 'FPN_IN', 'NUM_CLASSES', 'LABELS', 'CONFIGS',
    'NAME_SUFFIXES', 'label', 'split_name',
    'SOCO_PROPOSALS', 'DETCO_PATCHES', 'config_root', 'classifier_cfg', 'model_cfg',
    'build_model', 'detco_patch_size', 'montage_counts', 'describe_inputs', 'online_pixels',
    'make_batch', 'rss_mb', 'max_rss_mb', 'run_worker', 'run_isolated', 'sample_images',
    'bench_selective_search', 'bench_assembler', 'module_macs', 'step_macs',
    'counted_parts', 'summarize', 'add_ratios', 'markdown_table', 'saved_tensor_bytes',
    'step_memory', 'build_optimizer'
]
