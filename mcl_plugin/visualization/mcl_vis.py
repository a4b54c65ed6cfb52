"""Renderer of MCL / MCL-sup batches: every level's montage with its tile grid, the source
image of every tile and the FPN level the tiles are read from."""
from typing import Sequence

import cv2
import numpy as np
import torch

from .base import RENDERERS, BaseRenderer
from .drawing import PALETTE, draw_grid_lines, hstack, put_label, title_bar

DISPLAY = 448  #: side of a drawn montage
BAR = 36  #: height of a montage's title bar


def draw_montage(montage: np.ndarray, src: np.ndarray, level: int, stride: int,
                 display: int = DISPLAY) -> np.ndarray:
    """One montage (HWC RGB) enlarged to ``display`` px with the ``2**level`` tile grid and, in
    every tile, ``#<source index>``; the title gives the level and the feature level (``P_k``
    with ``2**k`` = stride) its tiles are read from."""
    img = cv2.resize(montage, (display, display), interpolation=cv2.INTER_NEAREST)
    r = 2**level
    step = display / r
    draw_grid_lines(img, r, r, thickness=2)
    scale = max(0.35, 0.9 / r**0.5)
    for i in range(r):
        for j in range(r):
            sid = int(src[i, j])
            put_label(img, f'#{sid}', (int(j * step) + 4, int(i * step) + int(18 * scale / 0.6)),
                      PALETTE[sid % len(PALETTE)], scale)
    return title_bar(img, f'level {level}: {r}x{r} tiles, 1/{r} scale -> '
                     f'P{int(np.log2(stride))}', BAR, 0.7, 2)


@RENDERERS.register_module(name=['MCL', 'MCLSupervised'])
class MCLRenderer(BaseRenderer):
    """Assembles one training batch (``train_dataloader.batch_size`` samples, first view of
    every level) into montages with the model's ``assembler`` and draws the first montage of
    every level side by side (:func:`draw_montage`), the tile grid and source ids on top.

    Output: ``(BAR + DISPLAY, S * DISPLAY, 3)``, ``S`` = ``model.num_levels``.
    """

    @property
    def samples_per_image(self) -> int:
        return int(self.cfg.get('train_dataloader', {}).get('batch_size', 16))

    def render(self, samples: Sequence[dict]) -> np.ndarray:
        from ..models.utils.montage import MontageAssembler
        from ..models.utils.tile_pool import TilePooler
        model = self.model_cfg
        S = int(model.get('num_levels', 4))
        views = [torch.stack([s['inputs'][lvl] for s in samples]).float() for lvl in range(S)]
        assembler = MontageAssembler(
            **{k: v for k, v in (model.get('assembler') or {}).items() if k != 'type'})
        batch = assembler(views, torch.Generator().manual_seed(self.seed))
        pooler = TilePooler(
            **{k: v for k, v in (model.get('tile_pooler') or {}).items() if k != 'type'})
        panels = [
            draw_montage(self.display.packed(batch.montages[s][0]),
                         batch.src_index[s][0].numpy(), s,
                         pooler.featmap_strides[pooler.feature_index(s)]) for s in range(S)
        ]
        return hstack(panels, gap=0)
