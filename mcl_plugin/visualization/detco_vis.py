"""Renderer of a DetCo training sample: the global views and every jigsaw patch set, each patch
drawn at its position in the 3x3 grid of the crop and in the order it is concatenated."""
from typing import Sequence

import numpy as np

from .base import RENDERERS, BaseRenderer
from .drawing import (PALETTE, draw_box, draw_grid_lines, enlarge, enlarge_factor, hstack,
                      put_label, tile, title_bar, vstack)

GAP = 8  #: white pixels between panels
BAR = 30  #: height of a title bar
MIN_SIDE = 384  #: views and crops are enlarged by an integer factor to at least this side
PATCH_GAP = 4  #: white pixels between the patches of the concatenation-order panel


def draw_patch_set(patches: Sequence[np.ndarray], order: np.ndarray, boxes: np.ndarray,
                   crop_size: int, grid: int) -> np.ndarray:
    """Two panels of one patch set (RGB HWC patches in concatenation order).

    Left: the ``crop_size`` crop's grid (cell borders grey), every patch pasted at its box, with
    ``#i`` = its index in the concatenation. Right: the patches in concatenation order (row-major
    ``grid x grid`` tiles), each labelled ``#i`` and its source cell ``(row, col)``.
    """
    f = enlarge_factor(crop_size, MIN_SIDE)
    side = crop_size * f
    canvas = np.full((side, side, 3), 40, np.uint8)
    draw_grid_lines(canvas, grid, grid, (160, 160, 160), 1, outer=True,
                    size=(grid * (crop_size // grid) * f, ) * 2)
    bigs = [enlarge(p, f) for p in patches]
    for i, (big, box) in enumerate(zip(bigs, boxes)):
        x1, y1 = int(box[0]) * f, int(box[1]) * f
        canvas[y1:y1 + big.shape[0], x1:x1 + big.shape[1]] = big
        draw_box(canvas, (x1, y1, x1 + big.shape[1], y1 + big.shape[0]),
                 PALETTE[i % len(PALETTE)], 2, f'#{i}', label_offset=(4, 20), label_scale=0.6)
    ordered = tile(bigs, grid, PATCH_GAP)
    step = bigs[0].shape[0] + PATCH_GAP
    for i in range(len(bigs)):
        r, c = divmod(i, grid)
        row, col = divmod(int(order[i]), grid)
        put_label(ordered, f'#{i} ({row},{col})', (c * step + 4, r * step + 20),
                  PALETTE[i % len(PALETTE)], 0.6)
    return hstack([
        title_bar(canvas, f'patches at their grid cells ({crop_size}px crop, {grid}x{grid})', BAR),
        title_bar(ordered, 'concatenation order: #index (row,col)', BAR),
    ], GAP)


@RENDERERS.register_module(name='DetCo')
class DetCoRenderer(BaseRenderer):
    """One packed DetCo sample (``GlobalLocalViews`` + ``PackInputs``).

    Row 1: the global views (query, key). Then one row per patch set (query, key):
    :func:`draw_patch_set`. Counts and geometry come from the sample's metainfo
    (``PackInputs(meta_keys=JIGSAW_META_KEYS)``).
    """

    def render(self, samples: Sequence[dict]) -> np.ndarray:
        sample = self._one(samples)
        meta = sample['data_samples'].metainfo
        inputs = sample['inputs']
        G = int(meta.get('num_global_views', 2))
        S = int(meta.get('num_patch_sets', 0))
        grid = int(meta.get('jigsaw_grid', 3))
        P = grid * grid
        if len(inputs) != G + S * P:
            raise ValueError(f'DetCo sample has {len(inputs)} inputs, expected {G} global views '
                             f'+ {S} sets x {P} patches')
        globals_ = []
        for g in range(G):
            view = self.display.packed(inputs[g])
            name = ('query' if g == 0 else 'key') if G == 2 else f'{g}'
            globals_.append(
                title_bar(enlarge(view, enlarge_factor(max(view.shape[:2]), MIN_SIDE)),
                          f'global view {name} ({view.shape[1]}x{view.shape[0]})', BAR))
        rows = [hstack(globals_, GAP)] if globals_ else []
        for s in range(S):
            patches = [self.display.packed(x) for x in inputs[G + s * P:G + (s + 1) * P]]
            panel = draw_patch_set(patches,
                                   np.asarray(meta['patch_order'])[s],
                                   np.asarray(meta['patch_boxes'])[s],
                                   int(meta['jigsaw_crop_size']), grid)
            name = ('query' if s == 0 else 'key') if S == 2 else f'{s}'
            rows.append(title_bar(panel, f'patch set {name}: {P} patches of '
                                  f'{patches[0].shape[0]}px', BAR))
        return vstack(rows, GAP)
