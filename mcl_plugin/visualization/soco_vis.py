"""Renderer of a SoCo training sample: every view with its matched proposals."""
import math
from typing import List, Sequence

import numpy as np
import torch

from .base import RENDERERS, BaseRenderer
from .drawing import as_numpy, draw_box, enlarge, enlarge_factor, hstack, id_colour, title_bar

GAP = 8  #: white columns between views
MIN_SIDE = 224  #: views are enlarged by an integer factor to at least this side
TITLE = 20  #: height of the caption band

#: RGB colour of proposal ``pid`` (stable across views and samples); white for ``-1``.
proposal_colour = id_colour


def _levels(boxes: np.ndarray, thresholds: Sequence[float]) -> List[int]:
    from ..models.utils.roi_pool import assign_levels_by_scale
    return assign_levels_by_scale(torch.as_tensor(boxes, dtype=torch.float32),
                                  thresholds).tolist()


@RENDERERS.register_module(name='SoCo')
class SoCoRenderer(BaseRenderer):
    """Views of a packed SoCo sample side by side with their matched proposal boxes.

    Box ``k`` has the colour of its proposal id in every view (padded repeats are drawn thin and
    marked ``*``; the whole-view fall-back, id -1, is white); its label is ``#id P<level>``, the
    FPN level the model pools it from in that view (``model.roi_pooler``). All views are
    enlarged by the same integer factor, so their relative sizes are kept.

    Sample: ``PackSoCoInputs`` output: ``inputs`` (V ``(3, h, w)`` uint8 tensors, BGR as
    loaded) and ``data_samples`` (``view_boxes``, ``proposal_ids``, ``is_pad``).

    Output: ``(TITLE + D, sum of view widths + gaps, 3)``, ``D`` the tallest enlarged view.
    """

    def render(self, samples: Sequence[dict]) -> np.ndarray:
        sample = self._one(samples)
        pooler = dict(self.model_cfg.get('roi_pooler') or {})
        strides = list(pooler.get('featmap_strides', (4, 8, 16, 32)))
        thresholds = list(pooler.get('scale_thresholds', (48, 96, 192)))
        first_level = int(round(math.log2(strides[0]))) if strides else 2
        inputs, ds = sample['inputs'], sample['data_samples']
        if 'view_boxes' not in ds:
            raise ValueError('SoCoRenderer needs a sample packed by PackSoCoInputs (view_boxes)')
        boxes = as_numpy(ds.view_boxes).astype(np.float32)
        ids = as_numpy(ds.proposal_ids).astype(np.int64)
        pads = as_numpy(ds.is_pad).astype(bool) if 'is_pad' in ds else np.zeros(len(ids), bool)
        # one factor for all views: V3 stays smaller than V2, as trained
        factor = enlarge_factor(max(int(v.shape[-1]) for v in inputs), MIN_SIDE)
        flips = list(ds.metainfo.get('view_flips', [False] * len(inputs)))
        panels = []
        for v, view in enumerate(inputs):
            img = enlarge(self.display.packed(view), factor)
            levels = _levels(boxes[v], thresholds)
            for k in range(len(ids)):
                draw_box(img, boxes[v, k] * factor, proposal_colour(int(ids[k])),
                         1 if pads[k] else 2,
                         f'#{ids[k]} P{first_level + levels[k]}' + ('*' if pads[k] else ''),
                         label_offset=(3, 13 + 12 * (k % 2)), label_scale=0.4)
            caption = f'V{v + 1} {int(view.shape[-1])}px' + (' flipped' if v < len(flips)
                                                             and flips[v] else '')
            panels.append(title_bar(img, caption, TITLE, 0.45))
        return hstack(panels, GAP)


__all__ = ['SoCoRenderer', 'proposal_colour']
