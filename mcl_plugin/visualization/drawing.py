"""Drawing helpers shared by every renderer: image tensors to display RGB (un-normalising with
the data preprocessor's mean / std / channel order), colours, labelled boxes, grid lines, title
bars and tiling of panels into a grid. Everything works on ``HxWx3`` uint8 RGB numpy arrays.
"""
import colorsys
import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

#: Ten well separated RGB colours (index ``i % 10``).
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def as_numpy(x) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# --------------------------------------------------------------------------------------------
# Image tensors -> display RGB
# --------------------------------------------------------------------------------------------


def to_display(chw, mean: Optional[Sequence[float]] = None,
               std: Optional[Sequence[float]] = None, channel_order: str = 'bgr') -> np.ndarray:
    """A ``(C, H, W)`` image tensor as ``(H, W, 3)`` uint8 RGB.

    Args:
        chw (Tensor | np.ndarray): 3 or 1 channels (grey is repeated).
        mean, std (Sequence[float], optional): Un-normalise first (``x * std + mean``, per
            channel, in ``channel_order``); None = the values are already pixel values.
        channel_order (str): Order of the channels of ``chw``: 'bgr' or 'rgb'.
    """
    img = as_numpy(chw).astype(np.float32)
    if img.ndim != 3:
        raise ValueError(f'expected a (C, H, W) image, got shape {img.shape}')
    if std is not None:
        img = img * np.asarray(std, np.float32).reshape(-1, 1, 1)
    if mean is not None:
        img = img + np.asarray(mean, np.float32).reshape(-1, 1, 1)
    img = img.transpose(1, 2, 0)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, 2)
    if channel_order.lower() == 'bgr':
        img = img[..., ::-1]
    elif channel_order.lower() != 'rgb':
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    return np.ascontiguousarray(np.clip(np.round(img), 0, 255).astype(np.uint8))


class DisplayConverter:
    """Turns the images of a config's pipeline and model into display RGB.

    The pipeline's images (``LoadImageFromFile`` of mmcv / mmdet, OpenCV or Pillow backend)
    are BGR uint8 whatever the model wants; the data preprocessor then flips them to RGB when
    its ``to_rgb`` (mmpretrain) / ``bgr_to_rgb`` (mmdet) is set and normalises with
    ``mean`` / ``std`` (given in the model's channel order). So:

    - :meth:`packed` - a sample's ``inputs`` (pipeline output): BGR -> RGB, whatever ``to_rgb``.
    - :meth:`normalized` - a model input (data preprocessor output): ``x * std + mean``, then
      RGB as is when ``to_rgb``, else flipped from BGR.

    Args:
        mean, std (Sequence[float], optional): The data preprocessor's; None = identity.
        to_rgb (bool): Whether the data preprocessor flips BGR to RGB.
    """

    #: channel order of the images a pipeline loads (mmcv's ``LoadImageFromFile``)
    loaded_order = 'bgr'

    def __init__(self, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, to_rgb: bool = False) -> None:
        self.mean = None if mean is None else [float(m) for m in mean]
        self.std = None if std is None else [float(s) for s in std]
        self.to_rgb = bool(to_rgb)

    @classmethod
    def from_config(cls, cfg) -> 'DisplayConverter':
        """From a full config: ``model.data_preprocessor``, else the top-level
        ``data_preprocessor`` (mmengine's Runner uses it when the model has none)."""
        model = cfg.get('model') or {}
        pre = model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
        to_rgb = pre.get('to_rgb', pre.get('bgr_to_rgb', False))
        return cls(pre.get('mean'), pre.get('std'), to_rgb)

    @property
    def model_order(self) -> str:
        """Channel order of the model's inputs."""
        return 'rgb' if self.to_rgb else self.loaded_order

    def packed(self, chw) -> np.ndarray:
        """A pipeline image (``PackInputs`` / ``PackDetInputs`` ``inputs``) as display RGB."""
        return to_display(chw, channel_order=self.loaded_order)

    def normalized(self, chw) -> np.ndarray:
        """A data preprocessor output (normalised, model channel order) as display RGB."""
        return to_display(chw, self.mean, self.std, self.model_order)


# --------------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------------


def id_colour(idx: int) -> Tuple[int, int, int]:
    """RGB colour of a (possibly large) id, stable everywhere it is drawn (golden-ratio hue
    steps, so consecutive ids differ); white for a negative id."""
    if idx < 0:
        return WHITE
    r, g, b = colorsys.hsv_to_rgb((idx * 0.61803398875) % 1.0, 0.9, 1.0)
    return (int(r * 255), int(g * 255), int(b * 255))


def hue_palette(num: int, saturation: float = 0.85) -> np.ndarray:
    """``(num, 3)`` uint8 RGB colours of evenly spaced hues, assigned so that neighbouring ids
    (``i`` and ``i + 1``) are 7 hue steps apart."""
    order = [(i * 7) % num for i in range(num)] if num % 7 else range(num)
    colours = np.zeros((num, 3), np.uint8)
    for rank, i in enumerate(order):
        r, g, b = colorsys.hsv_to_rgb(rank / num, saturation, 1.0)
        colours[i] = (int(r * 255), int(g * 255), int(b * 255))
    return colours


# --------------------------------------------------------------------------------------------
# Drawing on an image (in place)
# --------------------------------------------------------------------------------------------


def put_label(img: np.ndarray, text: str, org: Tuple[int, int], colour=WHITE,
              scale: float = 0.5, outline: bool = True) -> None:
    """Text at ``org`` (bottom-left), in ``colour`` with a black outline (readable anywhere)."""
    org = (int(org[0]), int(org[1]))
    if outline:
        cv2.putText(img, text, org, FONT, scale, BLACK, 3, cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, tuple(int(c) for c in colour), 1, cv2.LINE_AA)


def draw_box(img: np.ndarray, box: Sequence[float], colour, thickness: int = 2,
             label: Optional[str] = None, label_offset: Tuple[int, int] = (4, 14),
             label_scale: float = 0.45) -> None:
    """Rectangle of ``box = (x1, y1, x2, y2)`` (pixels, ``x2``/``y2`` exclusive) and an
    optional outlined label inside its top-left corner, ``label_offset`` from it."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in box[:4])
    colour = tuple(int(c) for c in colour)
    # no anti-aliasing: axis-aligned edges stay exactly ``colour``
    cv2.rectangle(img, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, thickness)
    if label:
        put_label(img, label, (x1 + label_offset[0], max(12, y1 + label_offset[1])), colour,
                  label_scale)


def draw_grid_lines(img: np.ndarray, rows: int, cols: int, colour=WHITE, thickness: int = 1,
                    outer: bool = False, size: Optional[Tuple[int, int]] = None) -> None:
    """Lines splitting the top-left ``size = (h, w)`` of ``img`` (default all of it) into
    ``rows x cols`` equal cells; ``outer`` also draws its border."""
    h, w = size or img.shape[:2]
    colour = tuple(int(c) for c in colour)
    for k in range(0 if outer else 1, cols + 1 if outer else cols):
        x = min(int(round(k * w / cols)), w - 1)
        cv2.line(img, (x, 0), (x, h - 1), colour, thickness)
    for k in range(0 if outer else 1, rows + 1 if outer else rows):
        y = min(int(round(k * h / rows)), h - 1)
        cv2.line(img, (0, y), (w - 1, y), colour, thickness)


# --------------------------------------------------------------------------------------------
# Resizing and composing panels
# --------------------------------------------------------------------------------------------


def enlarge_factor(side: int, min_side: int) -> int:
    """Smallest integer factor that brings ``side`` to at least ``min_side`` (1 if it is)."""
    return max(1, math.ceil(min_side / max(1, int(side))))


def enlarge(img: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (pixels stay sharp squares)."""
    if factor == 1:
        return np.ascontiguousarray(img)
    return np.ascontiguousarray(np.repeat(np.repeat(img, factor, 0), factor, 1))


def title_bar(panel: np.ndarray, title: str, height: int = 30, scale: float = 0.55,
              thickness: int = 1) -> np.ndarray:
    """``panel`` below a white bar of ``height`` pixels with ``title`` in black."""
    bar = np.full((height, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (6, int(height * 0.7)), FONT, scale, BLACK, thickness, cv2.LINE_AA)
    return np.concatenate([bar, panel])


def tile(images: Sequence[np.ndarray], cols: int, gap: int = 8, fill: int = 255) -> np.ndarray:
    """Images in a grid of ``cols`` columns (row-major), ``gap`` pixels of ``fill`` between
    cells. Each column is as wide as its widest image and each row as tall as its tallest;
    smaller images sit in the top-left of their cell."""
    if not images:
        raise ValueError('nothing to tile')
    cols = max(1, min(int(cols), len(images)))
    rows = math.ceil(len(images) / cols)
    widths = [max(im.shape[1] for im in images[c::cols]) for c in range(cols)]
    heights = [max(im.shape[0] for im in images[r * cols:(r + 1) * cols]) for r in range(rows)]
    out = np.full((sum(heights) + gap * (rows - 1), sum(widths) + gap * (cols - 1), 3), fill,
                  np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = sum(heights[:r]) + gap * r, sum(widths[:c]) + gap * c
        out[y:y + im.shape[0], x:x + im.shape[1]] = im
    return out


def hstack(panels: Sequence[np.ndarray], gap: int = 8, fill: int = 255) -> np.ndarray:
    """Panels side by side (top-aligned), ``gap`` white columns between them."""
    return tile(panels, len(panels), gap, fill)


def vstack(panels: Sequence[np.ndarray], gap: int = 8, fill: int = 255) -> np.ndarray:
    """Panels one below the other (left-aligned), ``gap`` white rows between them."""
    return tile(panels, 1, gap, fill)


__all__ = [
    'PALETTE', 'WHITE', 'BLACK', 'as_numpy', 'to_display', 'DisplayConverter', 'id_colour',
    'hue_palette', 'put_label', 'draw_box', 'draw_grid_lines', 'enlarge_factor', 'enlarge',
    'title_bar', 'tile', 'hstack', 'vstack'
]
