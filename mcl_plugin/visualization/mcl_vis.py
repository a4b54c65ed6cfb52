"""Draw MCL montages: every level's montage with its tile grid, source ids and FPN level."""
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..models.utils.montage import MontageAssembler
from ..models.utils.tile_pool import TilePooler
from . import register_renderer

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _to_rgb(chw: torch.Tensor) -> np.ndarray:
    """Packed inputs are BGR uint8 CHW (mmpretrain ``PackInputs``): HWC RGB for drawing."""
    return np.ascontiguousarray(chw.permute(1, 2, 0).numpy()[..., ::-1]).astype(np.uint8)


def _label(img: np.ndarray, text: str, org: Tuple[int, int], color, scale: float) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def draw_montage(montage: np.ndarray, src: np.ndarray, level: int, stride: int,
                 display: int = 448) -> np.ndarray:
    """One montage (HWC RGB) enlarged to ``display`` px with the ``2**level`` tile grid and, in
    every tile, ``#<source index>``; the title gives the level and the feature level (``P_k``
    with ``2**k`` = stride) its tiles are read from."""
    img = cv2.resize(montage, (display, display), interpolation=cv2.INTER_NEAREST)
    r = 2**level
    step = display / r
    for k in range(1, r):
        p = int(round(k * step))
        cv2.line(img, (p, 0), (p, display - 1), (255, 255, 255), 2)
        cv2.line(img, (0, p), (display - 1, p), (255, 255, 255), 2)
    scale = max(0.35, 0.9 / r**0.5)
    for i in range(r):
        for j in range(r):
            sid = int(src[i, j])
            _label(img, f'#{sid}', (int(j * step) + 4, int(i * step) + int(18 * scale / 0.6)),
                   PALETTE[sid % len(PALETTE)], scale)
    bar = np.full((36, display, 3), 255, np.uint8)
    cv2.putText(bar, f'level {level}: {r}x{r} tiles, 1/{r} scale -> P{int(np.log2(stride))}', (6, 25),
                cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    return np.concatenate([bar, img])


@register_renderer('MCL', 'MCLSupervised')
def render_mcl(cfg, samples: Sequence[dict]) -> List[Tuple[str, np.ndarray]]:
    """Assemble the first branch of ``samples`` into montages of every level.

    Returns one panel per level (the first montage of the level) side by side, plus the level-0
    views of the batch for reference.
    """
    S = int(cfg.model.get('num_levels', 4))
    views = [torch.stack([s['inputs'][lvl] for s in samples]).float() for lvl in range(S)]
    batch = MontageAssembler(**{k: v for k, v in cfg.model.get('assembler', {}).items()
                                if k != 'type'})(views, torch.Generator().manual_seed(0))
    pooler_cfg = dict(cfg.model.get('tile_pooler', {}))
    pooler_cfg.pop('type', None)
    pooler = TilePooler(**pooler_cfg)
    panels = [
        draw_montage(_to_rgb(batch.montages[s][0].round().clamp(0, 255).byte()),
                     batch.src_index[s][0].numpy(), s,
                     pooler.featmap_strides[pooler.feature_index(s)]) for s in range(S)
    ]
    return [('montages', np.concatenate(panels, axis=1))]


render_mcl.batched = True
