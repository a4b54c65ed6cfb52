"""Selective-search object proposals for SoCo, generated offline: OpenCV selective search
(:mod:`.search`), SoCo's own selective search re-implemented (:mod:`.official`), SoCo's filters
and fall-backs (:mod:`.filters`), the resumable multi-process generator (:mod:`.generate`), the
file writer (:mod:`.writer`), the shard-directory writer (:mod:`.shards`) and ground-truth boxes
as proposals (:mod:`.annotations`).

The file format and its reader belong to the plugin (:mod:`mcl_plugin.datasets.proposals`,
used by :class:`~mcl_plugin.datasets.ProposalImageDataset`); they are re-exported here.
The command-line front-end is ``tools/generate_proposals.py``.
"""
from mcl_plugin.datasets.proposals import (BOX_FORMAT, DEFAULT_SHARD_SIZE, FALLBACKS, FORMAT_NAME,
                                           FORMAT_VERSION, ShardedProposals, load_proposals,
                                           parse_proposals)

from .annotations import annotation_records, annotation_settings, load_coco
from .filters import ProposalFilter, box_iou_xywh, count_recalled, suppress_overlaps
from .generate import generate_proposals, partial_path, process_image, summary_path
from .official import OfficialSearchConfig, official_selective_search, read_rgb, require_skimage
from .search import (SS_MODES, SelectiveSearchConfig, opencv_selective_search,
                     python_selective_search, require_ximgproc, unique_boxes)
from .shards import (IMAGENET_TRAIN_IMAGES, calibrate, compact_boxes, generate_sharded,
                     shard_bytes, write_shards)
from .writer import build_proposals_json, summarize

__all__ = [
    'SelectiveSearchConfig', 'ProposalFilter', 'opencv_selective_search',
    'python_selective_search', 'unique_boxes', 'box_iou_xywh', 'count_recalled',
    'build_proposals_json', 'parse_proposals', 'load_proposals', 'summarize', 'FALLBACKS',
    'SS_MODES', 'FORMAT_NAME', 'FORMAT_VERSION', 'BOX_FORMAT', 'process_image',
    'generate_proposals', 'require_ximgproc', 'partial_path', 'summary_path', 'suppress_overlaps',
    'OfficialSearchConfig', 'official_selective_search', 'read_rgb', 'require_skimage',
    'DEFAULT_SHARD_SIZE', 'ShardedProposals', 'annotation_records', 'annotation_settings',
    'load_coco', 'IMAGENET_TRAIN_IMAGES', 'calibrate', 'compact_boxes', 'generate_sharded',
    'shard_bytes', 'write_shards'
]
