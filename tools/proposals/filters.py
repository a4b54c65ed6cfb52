"""SoCo's box filters with their fall-backs, and the box arithmetic they and the proposal
evaluation use (IoU, overlap suppression, recall). Boxes are xywh in original pixels.

The official chain (hologerry/SoCo @ 2be1229, MIT): ``filter_ratio_size`` with ``r=3, 0.3, 0.8``
(``selective_search/filter_ss_proposals_json.py:12, 41-45``, ``filters.py:56-66``); for an image
left without boxes ``filter_ratio(r=3)``, then ``filter_none`` (sides >= 32 only)
(``filter_ss_proposals_json_post_no_prop.py:25-32``); an image still empty gets the whole image
when it is loaded (``contrast/data/dataset.py:442-443``)."""
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np


@dataclass
class ProposalFilter:
    """SoCo's box filters (defaults: the paper's ``ratio3size0308`` + official ``w, h >= 32``).

    Attributes:
        min_ratio (float): Smallest ``w / h``.
        max_ratio (float): Largest ``w / h``.
        min_rel_size (float): Smallest ``sqrt(w h) / sqrt(W H)``.
        max_rel_size (float): Largest ``sqrt(w h) / sqrt(W H)``.
        min_side (float): Smallest ``w`` and ``h`` in original pixels.
        max_overlap (float, optional): Drop a box whose IoU with a box kept before it (in
            selective search's order) is at least this: near-duplicates only add redundancy
            (0.8 halves OpenCV fast mode's filtered boxes on data/pretrain). None: keep all
            (the paper's setting).
        max_per_image (int, optional): Keep at most this many boxes (in selective search's
            order, which ranks hierarchy levels) after filtering. None: all.
        side_fallback (bool): Add the official fall-back stage between ``ratio`` and
            ``whole_image``: the boxes that pass the side test alone (``fallback="side"``,
            official ``filter_none``). On for ``--method official``; off by default (OpenCV runs
            fall back from ``ratio`` straight to ``whole_image``, as before).
    """

    min_ratio: float = 1 / 3
    max_ratio: float = 3.0
    min_rel_size: float = 0.3
    max_rel_size: float = 0.8
    min_side: float = 32.0
    max_per_image: Optional[int] = None
    max_overlap: Optional[float] = None
    side_fallback: bool = False

    def side_mask(self, boxes: np.ndarray) -> np.ndarray:
        """Side test only (the ``side`` fall-back keeps what passes it)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        w, h = boxes[:, 2], boxes[:, 3]
        return (w >= self.min_side) & (h >= self.min_side) & (w > 0) & (h > 0)

    def ratio_mask(self, boxes: np.ndarray) -> np.ndarray:
        """Side and aspect tests (the ``ratio`` fall-back keeps what passes these)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        w, h = boxes[:, 2], boxes[:, 3]
        ratio = np.divide(w, h, out=np.zeros_like(w), where=h > 0)
        return self.side_mask(boxes) & (ratio >= self.min_ratio) & (ratio <= self.max_ratio)

    def mask(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Boolean mask of the boxes that pass every filter."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        rel = np.sqrt(boxes[:, 2] * boxes[:, 3]) / math.sqrt(width * height)
        return self.ratio_mask(boxes) & (rel >= self.min_rel_size) & (rel <= self.max_rel_size)

    def apply(self, boxes: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, str, int]:
        """Filter with the fall-backs.

        Returns:
            tuple: ``(boxes (N>=1, 4) float32 xywh, fallback, num_filtered)`` where
            ``fallback`` is one of :data:`FALLBACKS` and ``num_filtered`` counts the boxes that
            passed every filter (before ``max_per_image``).
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        keep = boxes[self.mask(boxes, width, height)]
        num_filtered, fallback = len(keep), 'none'
        if not len(keep):
            keep, fallback = boxes[self.ratio_mask(boxes)], 'ratio'
        if not len(keep) and self.side_fallback:
            keep, fallback = boxes[self.side_mask(boxes)], 'side'
        if not len(keep):
            keep = np.array([[0, 0, width, height]], dtype=np.float32)
            fallback = 'whole_image'
        if self.max_overlap is not None and len(keep) > 1:
            keep = suppress_overlaps(keep, self.max_overlap)
        if self.max_per_image is not None:
            keep = keep[:self.max_per_image]
        return keep, fallback, num_filtered


def suppress_overlaps(boxes: np.ndarray, max_overlap: float) -> np.ndarray:
    """Greedy duplicate removal in the given order: a box is dropped when its IoU with an
    earlier kept box is ``>= max_overlap`` (NMS without scores)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return boxes[overlap_keep(boxes, max_overlap)]


def overlap_keep(boxes: np.ndarray, max_overlap: float) -> List[int]:
    """Indices :func:`suppress_overlaps` keeps (IoU in float32, as there)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    iou = box_iou_xywh(boxes, boxes)
    kept: List[int] = []
    for i in range(len(boxes)):
        if not kept or iou[i, kept].max() < max_overlap:
            kept.append(i)
    return kept


# ------------------------------------------------------------------------------- evaluation
def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of xywh boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def count_recalled(proposals: np.ndarray, gt: np.ndarray, iou: float = 0.5) -> int:
    """Number of ground-truth boxes covered by at least one proposal with IoU >= ``iou``."""
    gt = np.asarray(gt).reshape(-1, 4)
    if not len(gt):
        return 0
    proposals = np.asarray(proposals).reshape(-1, 4)
    if not len(proposals):
        return 0
    return int((box_iou_xywh(gt, proposals).max(axis=1) >= iou).sum())
