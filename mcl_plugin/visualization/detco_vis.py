"""Renderer of a DetCo training sample: the global views and every jigsaw patch set, each patch
drawn at its position in the 3x3 grid of the crop and in the order it is concatenated."""
import math
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch

from . import register_renderer

GAP = 8  #: white pixels between panels
BAR = 30  #: height of a title bar
MIN_SIDE = 384  #: views and crops are enlarged by an integer factor to at least this side
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _to_rgb(chw: torch.Tensor) -> np.ndarray:
    """Packed inputs are BGR uint8 CHW (mmpretrain ``PackInputs``): HWC RGB for drawing."""
    return np.ascontiguousarray(chw.permute(1, 2, 0).cpu().numpy()[..., ::-1]).astype(np.uint8)


def _factor(side: int) -> int:
    return max(1, math.ceil(MIN_SIDE / side))


def _enlarge(img: np.ndarray, factor: int) -> np.ndarray:
    return cv2.resize(img, (img.shape[1] * factor, img.shape[0] * factor),
                      interpolation=cv2.INTER_NEAREST)


def _label(img: np.ndarray, text: str, org: Tuple[int, int], color, scale: float = 0.6) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((BAR, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel])


def _hstack(panels: Sequence[np.ndarray]) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    out: List[np.ndarray] = []
    for i, p in enumerate(panels):
        if i:
            out.append(np.full((h, GAP, 3), 255, np.uint8))
        out.append(np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(out, axis=1)


def _vstack(rows: Sequence[np.ndarray]) -> np.ndarray:
    w = max(r.shape[1] for r in rows)
    out: List[np.ndarray] = []
    for i, r in enumerate(rows):
        if i:
            out.append(np.full((GAP, w, 3), 255, np.uint8))
        out.append(np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(out)


def draw_patch_set(patches: Sequence[np.ndarray], order: np.ndarray, boxes: np.ndarray,
                   crop_size: int, grid: int) -> np.ndarray:
    """Two panels of one patch set (RGB HWC patches in concatenation order).

    Left: the ``crop_size`` crop's grid (cell borders grey), every patch pasted at its box, with
    ``#i`` = its index in the concatenation. Right: the patches in concatenation order (row-major
    ``grid x grid`` tiles), each labelled ``#i`` and its source cell ``(row, col)``.
    """
    f = _factor(crop_size)
    canvas = np.full((crop_size * f, crop_size * f, 3), 40, np.uint8)
    cell = crop_size // grid
    for k in range(grid + 1):
        p = min(k * cell * f, crop_size * f - 1)
        cv2.line(canvas, (p, 0), (p, crop_size * f - 1), (160, 160, 160), 1)
        cv2.line(canvas, (0, p), (crop_size * f - 1, p), (160, 160, 160), 1)
    s = patches[0].shape[0] * f
    ordered = np.full((grid * s + (grid - 1) * 4, grid * s + (grid - 1) * 4, 3), 255, np.uint8)
    for i, (patch, box) in enumerate(zip(patches, boxes)):
        x1, y1 = int(box[0]) * f, int(box[1]) * f
        big = _enlarge(patch, f)
        color = PALETTE[i % len(PALETTE)]
        canvas[y1:y1 + big.shape[0], x1:x1 + big.shape[1]] = big
        cv2.rectangle(canvas, (x1, y1), (x1 + big.shape[1] - 1, y1 + big.shape[0] - 1), color, 2)
        _label(canvas, f'#{i}', (x1 + 4, y1 + 20), color)
        r, c = divmod(i, grid)
        oy, ox = r * (s + 4), c * (s + 4)
        ordered[oy:oy + s, ox:ox + s] = big
        row, col = divmod(int(order[i]), grid)
        _label(ordered, f'#{i} ({row},{col})', (ox + 4, oy + 20), color)
    return _hstack([
        _titled(canvas, f'patches at their grid cells ({crop_size}px crop, {grid}x{grid})'),
        _titled(ordered, 'concatenation order: #index (row,col)'),
    ])


@register_renderer('DetCo')
def render_detco(cfg, sample: dict) -> np.ndarray:
    """One packed DetCo sample (``GlobalLocalViews`` + ``PackInputs``) as an RGB image.

    Row 1: the global views (query, key). Then one row per patch set (query, key):
    :func:`draw_patch_set`. Counts and geometry come from the sample's metainfo
    (``PackInputs(meta_keys=JIGSAW_META_KEYS)``); ``cfg`` is not needed.
    """
    meta = sample['data_samples'].metainfo
    inputs = sample['inputs']
    G = int(meta.get('num_global_views', 2))
    S = int(meta.get('num_patch_sets', 0))
    grid = int(meta.get('jigsaw_grid', 3))
    P = grid * grid
    if len(inputs) != G + S * P:
        raise ValueError(f'DetCo sample has {len(inputs)} inputs, expected {G} global views + '
                         f'{S} sets x {P} patches')
    globals_ = []
    for g in range(G):
        view = _to_rgb(inputs[g])
        name = ('query' if g == 0 else 'key') if G == 2 else f'{g}'
        globals_.append(
            _titled(_enlarge(view, _factor(max(view.shape[:2]))),
                    f'global view {name} ({view.shape[1]}x{view.shape[0]})'))
    rows = [_hstack(globals_)] if globals_ else []
    for s in range(S):
        patches = [_to_rgb(x) for x in inputs[G + s * P:G + (s + 1) * P]]
        panel = draw_patch_set(patches,
                               np.asarray(meta['patch_order'])[s],
                               np.asarray(meta['patch_boxes'])[s], int(meta['jigsaw_crop_size']),
                               grid)
        name = ('query' if s == 0 else 'key') if S == 2 else f'{s}'
        rows.append(_titled(panel, f'patch set {name}: {P} patches of {patches[0].shape[0]}px'))
    return _vstack(rows)
