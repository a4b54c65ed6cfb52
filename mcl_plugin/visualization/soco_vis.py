"""Renderer of a SoCo training sample: every view with its matched proposals."""
import colorsys
import math
from typing import Dict, List, Sequence

import cv2
import numpy as np
import torch

from . import register_renderer

GAP = 8  #: white columns between views
MIN_SIDE = 224  #: views are enlarged by an integer factor to at least this side
TITLE = 20  #: height of the caption band


def proposal_colour(pid: int) -> tuple:
    """RGB colour of proposal ``pid`` (stable across views and samples); white for ``-1``."""
    if pid < 0:
        return (255, 255, 255)
    r, g, b = colorsys.hsv_to_rgb((pid * 0.61803398875) % 1.0, 0.9, 1.0)
    return (int(r * 255), int(g * 255), int(b * 255))


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _levels(boxes: np.ndarray, thresholds: Sequence[float]) -> List[int]:
    from mcl_plugin.models.utils.roi_pool import assign_levels_by_scale
    return assign_levels_by_scale(torch.as_tensor(boxes, dtype=torch.float32),
                                  thresholds).tolist()


@register_renderer('SoCo')
def render_soco(cfg, sample: Dict) -> np.ndarray:
    """Views of a packed SoCo sample side by side with their matched proposal boxes.

    Box ``k`` has the colour of its proposal id in every view (padded repeats are drawn thin and
    marked ``*``; the whole-view fall-back, id -1, is white); its label is ``#id P<level>``, the
    FPN level the model pools it from in that view (from the config's ``roi_pooler``). All views
    are enlarged by the same integer factor, so their relative sizes are kept.

    Args:
        cfg: The config or its ``model`` part (reads ``roi_pooler`` and
            ``data_preprocessor.to_rgb``).
        sample (dict): ``PackSoCoInputs`` output: ``inputs`` (V ``(3, h, w)`` uint8 tensors,
            BGR as loaded) and ``data_samples`` (``view_boxes``, ``proposal_ids``, ``is_pad``).

    Returns:
        np.ndarray: ``(TITLE + D, sum of view widths + gaps, 3)`` uint8 RGB, ``D`` the tallest
        enlarged view.
    """
    model_cfg = cfg.get('model', cfg) if hasattr(cfg, 'get') else {}
    pooler = dict(model_cfg.get('roi_pooler') or {})
    strides = list(pooler.get('featmap_strides', (4, 8, 16, 32)))
    thresholds = list(pooler.get('scale_thresholds', (48, 96, 192)))
    first_level = int(round(math.log2(strides[0]))) if strides else 2
    inputs, ds = sample['inputs'], sample['data_samples']
    if 'view_boxes' not in ds:
        raise ValueError('render_soco needs a sample packed by PackSoCoInputs (view_boxes)')
    boxes = _numpy(ds.view_boxes).astype(np.float32)
    ids = _numpy(ds.proposal_ids).astype(np.int64)
    pads = _numpy(ds.is_pad).astype(bool) if 'is_pad' in ds else np.zeros(len(ids), bool)
    scale = max(1, math.ceil(MIN_SIDE / max(int(v.shape[-1]) for v in inputs)))
    flips = list(ds.metainfo.get('view_flips', [False] * len(inputs)))
    panels = []
    for v, img in enumerate(inputs):
        img = _numpy(img).transpose(1, 2, 0)[..., ::-1]  # BGR -> RGB
        factor = scale  # one factor for all views: V3 stays smaller than V2, as trained
        img = np.ascontiguousarray(np.repeat(np.repeat(img, factor, 0), factor, 1))
        levels = _levels(boxes[v], thresholds)
        for k in range(len(ids)):
            x1, y1, x2, y2 = (boxes[v, k] * factor).round().astype(int).tolist()
            colour = proposal_colour(int(ids[k]))
            cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), colour, 1 if pads[k] else 2,
                          cv2.LINE_AA)
            label = f'#{ids[k]} P{first_level + levels[k]}' + ('*' if pads[k] else '')
            org = (x1 + 3, y1 + 13 + 12 * (k % 2))
            cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3,
                        cv2.LINE_AA)
            cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
        h, w = img.shape[:2]
        band = np.full((TITLE, w, 3), 255, np.uint8)
        cv2.putText(band, f'V{v + 1} {int(inputs[v].shape[-1])}px' +
                    (' flipped' if v < len(flips) and flips[v] else ''), (4, 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.concatenate([band, img]))
    height = max(p.shape[0] for p in panels)
    row = []
    for i, p in enumerate(panels):
        if p.shape[0] < height:
            p = np.concatenate([p, np.full((height - p.shape[0], p.shape[1], 3), 255, np.uint8)])
        row.append(p)
        if i < len(panels) - 1:
            row.append(np.full((height, GAP, 3), 255, np.uint8))
    return np.concatenate(row, axis=1)


__all__ = ['render_soco', 'proposal_colour']
