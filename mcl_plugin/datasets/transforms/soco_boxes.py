"""SoCo's per-box operations on a view: box jitter and in-box Cutout (used by :mod:`.soco`)."""
import math
from typing import Dict, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mcl_plugin.registry import TRANSFORMS


def jitter_boxes(boxes: np.ndarray, prob: float, ratio: float, rng: np.random.RandomState,
                 anchor: str = 'center') -> np.ndarray:
    """SoCo's box jitter: with probability ``prob`` per box, ``x += r1 w, y += r2 h,
    w += r3 w, h += r4 h`` with independent ``r_i ~ U(-ratio, ratio)`` (the paper writes one
    ``r``; the official code draws four, ``bboxs_utils.py:200-226``).

    Args:
        anchor (str): The point ``(x, y)`` that moves: ``'center'`` (the paper's box centre)
            or ``'top_left'`` (the official code: ``x1 += r1 w``, then ``x2 = x1 + w'``).
    """
    if anchor not in ('center', 'top_left'):
        raise ValueError(f"anchor must be 'center' or 'top_left', got {anchor!r}")
    if prob <= 0 or ratio <= 0 or not len(boxes):
        return boxes
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    r = rng.uniform(-ratio, ratio, size=(len(boxes), 4)) * (rng.rand(len(boxes), 1) < prob)
    nw, nh = w * (1 + r[:, 2]), h * (1 + r[:, 3])
    if anchor == 'center':
        cx = boxes[:, 0] + w / 2 + r[:, 0] * w
        cy = boxes[:, 1] + h / 2 + r[:, 1] * h
        out = [cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2]
    else:
        x1, y1 = boxes[:, 0] + r[:, 0] * w, boxes[:, 1] + r[:, 1] * h
        out = [x1, y1, x1 + nw, y1 + nh]
    return np.stack(out, 1).astype(np.float32)


@TRANSFORMS.register_module()
class InBoxCutout(BaseTransform):
    """Cutout inside the boxes of a view: the official SoCo's ``RandomCutoutInBbox``
    (``transform_ops.py:322-366``), used on V2 / V3 by the 100-epoch FPN and the C4 recipes.

    For every box of the view (``gt_bboxes``, ``(K, 4)`` in the view's pixels, as
    :class:`SoCoViews` passes them to its view pipelines) with probability ``prob``: a square of
    area ``U(ratio) * box area`` (side rounded), centred on a random whole pixel of the box, is
    filled with ``fill`` (clipped to the image). The official code fills the normalised tensor
    with 0, i.e. the mean colour; ``fill`` is that mean in the image's channel order (BGR
    ``(104, 116, 124)`` for the ImageNet mean of the data preprocessor). It is the only
    pixel-hiding transform :class:`SoCoViews` accepts in a view pipeline: it knows the boxes.

    Required keys: ``img``, ``gt_bboxes``. Added: ``cutout_boxes`` (``(K, 4)`` float32 cut
    regions, NaN where a box was not cut).

    Args:
        prob (float): Probability per box. Defaults to 0.5.
        ratio (tuple): Range of the cut area over the box area. Defaults to (0.1, 0.3) (the
            official ``--cutout_ratio_min 0.1 --cutout_ratio_max 0.3``).
        fill (Sequence[int]): Fill colour. Defaults to (104, 116, 124).
    """

    def __init__(self, prob: float = 0.5, ratio: Tuple[float, float] = (0.1, 0.3),
                 fill: Sequence[int] = (104, 116, 124)) -> None:
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f'ratio must satisfy 0 < min <= max, got {ratio}')
        self.prob, self.ratio, self.fill = prob, tuple(ratio), tuple(fill)

    def transform(self, results: Dict) -> Dict:
        if 'gt_bboxes' not in results:
            raise KeyError('InBoxCutout needs the view boxes (gt_bboxes): use it inside a '
                           'SoCoViews view pipeline')
        img = results['img'].copy()
        h, w = img.shape[:2]
        boxes = np.asarray(results['gt_bboxes'], np.float32).reshape(-1, 4)
        cuts = np.full_like(boxes, np.nan)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            if np.random.rand() >= self.prob:
                continue
            area = max(x2 - x1, 0) * max(y2 - y1, 0)
            half = int(round(math.sqrt(np.random.uniform(*self.ratio) * area))) // 2
            cx = np.random.randint(int(x1), max(int(math.ceil(x2)) - 1, int(x1)) + 1)
            cy = np.random.randint(int(y1), max(int(math.ceil(y2)) - 1, int(y1)) + 1)
            c = (max(cx - half, 0), max(cy - half, 0), min(cx + half + 1, w),
                 min(cy + half + 1, h))
            img[c[1]:c[3], c[0]:c[2]] = self.fill[:img.shape[2]] if img.ndim == 3 else \
                self.fill[0]
            cuts[i] = c
        results['img'] = img
        results['cutout_boxes'] = cuts
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, ratio={self.ratio}, fill={self.fill})'
