"""Scenes of ``objects_coco/``: cut-outs scaled, flipped and pasted on a random view of a background
photo, occlusion resolved (each instance annotated as its visible part; tiny or mostly hidden
instances removed from the picture)."""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .catalog import MIN_INSTANCE_SIZE, MIN_VISIBLE_FRACTION
from .records import Cutout


@dataclass
class Layer:
    """A cut-out placed on the canvas.

    Attributes:
        cutout (Cutout): The object.
        alpha (np.ndarray): ``(H, W)`` uint8 alpha on the canvas.
        rgb (np.ndarray): ``(H, W, 3)`` uint8 colours on the canvas.
        full_area (int): Mask pixels of the whole scaled object, inside the canvas or not.
        box (tuple[int, int, int, int]): ``(x0, y0, x1, y1)`` of the part on the canvas.
    """

    cutout: Cutout
    alpha: np.ndarray
    rgb: np.ndarray
    full_area: int
    box: Tuple[int, int, int, int]

    @property
    def mask(self) -> np.ndarray:
        """Binary mask (alpha >= 128) on the canvas."""
        return self.alpha >= 128


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn.

    Attributes:
        size (tuple[int, int]): Output ``(width, height)``.
        objects (tuple[int, int]): Min/max objects tried per image.
        area (tuple[float, float]): Min/max box area of an object, as image fraction.
        max_upscale (float): Largest enlargement of a cut-out.
    """

    size: Tuple[int, int]
    objects: Tuple[int, int]
    area: Tuple[float, float]
    max_upscale: float = 2.0


def place_cutout(cutout: Cutout, rng: np.random.Generator, cfg: SceneConfig) -> Optional[Layer]:
    """Scales, flips and positions a cut-out; up to a quarter of it may leave the canvas.

    Args:
        cutout (Cutout): The object.
        rng (np.random.Generator): Randomness.
        cfg (SceneConfig): Scene settings.

    Returns:
        Layer | None: The placed layer, or None if nothing of it lands on the canvas.
    """
    width, height = cfg.size
    h, w = cutout.rgba.shape[:2]
    frac = math.exp(rng.uniform(math.log(cfg.area[0]), math.log(cfg.area[1])))
    scale = min(math.sqrt(frac * width * height / (w * h)), 0.9 * min(width / w, height / h),
                cfg.max_upscale)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = Image.fromarray(cutout.rgba, 'RGBA').convert('RGBa')
    arr = np.asarray(img.resize((nw, nh), Image.Resampling.LANCZOS).convert('RGBA'))
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    full_area = int((arr[..., 3] >= 128).sum())
    x0 = int(rng.integers(-(nw // 4), width - nw + nw // 4 + 1))
    y0 = int(rng.integers(-(nh // 4), height - nh + nh // 4 + 1))
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + nw), min(height, y0 + nh)
    if full_area == 0 or cx1 <= cx0 or cy1 <= cy0:
        return None
    alpha = np.zeros((height, width), np.uint8)
    rgb = np.zeros((height, width, 3), np.uint8)
    part = arr[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    alpha[cy0:cy1, cx0:cx1] = part[..., 3]
    rgb[cy0:cy1, cx0:cx1] = part[..., :3]
    return Layer(cutout, alpha, rgb, full_area, (cx0, cy0, cx1, cy1))


def visible_masks(layers: Sequence[Layer]) -> List[np.ndarray]:
    """Visible part of each layer: its mask minus the masks of the layers pasted later."""
    covered = np.zeros_like(layers[0].alpha, dtype=bool) if layers else None
    out: List[np.ndarray] = [None] * len(layers)  # type: ignore[list-item]
    for i in range(len(layers) - 1, -1, -1):
        mask = layers[i].mask
        out[i] = mask & ~covered
        covered |= mask
    return out


def prune_hidden(layers: List[Layer]) -> Tuple[List[Layer], List[np.ndarray]]:
    """Removes, one at a time, the worst instance that is tiny or mostly hidden.

    Removing a layer only uncovers the others, so the loop ends with every remaining instance
    at least ``MIN_VISIBLE_FRACTION`` visible and ``MIN_INSTANCE_SIZE`` px (sqrt of area).

    Args:
        layers (list[Layer]): Layers in paste order.

    Returns:
        tuple[list[Layer], list[np.ndarray]]: Kept layers and their visible masks.
    """
    layers = list(layers)
    while layers:
        masks = visible_masks(layers)
        areas = [int(m.sum()) for m in masks]
        ratios = [a / layer.full_area for a, layer in zip(areas, layers)]
        bad = [
            i for i, (a, r) in enumerate(zip(areas, ratios))
            if r < MIN_VISIBLE_FRACTION or math.sqrt(a) < MIN_INSTANCE_SIZE
        ]
        if not bad:
            return layers, masks
        layers.pop(min(bad, key=lambda i: (ratios[i], i)))
    return [], []


def composite(background: np.ndarray, layers: Sequence[Layer]) -> np.ndarray:
    """Alpha-blends the layers, in order, over the background."""
    out = background.astype(np.float32)
    for layer in layers:
        x0, y0, x1, y1 = layer.box
        a = layer.alpha[y0:y1, x0:x1, None].astype(np.float32) / 255.0
        region = out[y0:y1, x0:x1]
        region *= 1.0 - a
        region += layer.rgb[y0:y1, x0:x1].astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def background_view(img: Image.Image, rng: np.random.Generator,
                    size: Tuple[int, int]) -> Tuple[np.ndarray, str]:
    """A random crop (50-100 % of the largest one with the output's aspect), maybe flipped."""
    width, height = size
    iw, ih = img.size
    cw_max = min(iw, ih * width / height)
    cw = cw_max * rng.uniform(0.5, 1.0)
    ch = cw * height / width
    x, y = rng.uniform(0, iw - cw), rng.uniform(0, ih - ch)
    view = img.resize(size, Image.Resampling.LANCZOS, box=(x, y, x + cw, y + ch))
    flip = rng.random() < 0.5
    if flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    box = ','.join(f'{v:.4f}' for v in (x / iw, y / ih, (x + cw) / iw, (y + ch) / ih))
    return np.asarray(view), f'crop (fractions x0,y0,x1,y1) {box}' + (', flipped' if flip else '')


def compose_scene(background: np.ndarray, pool: Dict[str, List[Cutout]], rng: np.random.Generator,
                  cfg: SceneConfig) -> Tuple[np.ndarray, List[Layer], List[np.ndarray]]:
    """Pastes class-balanced random cut-outs on a background and resolves occlusion.

    Args:
        background (np.ndarray): ``(H, W, 3)`` uint8 background.
        pool (dict[str, list[Cutout]]): Cut-outs by class.
        rng (np.random.Generator): Randomness.
        cfg (SceneConfig): Scene settings.

    Returns:
        tuple: Image ``(H, W, 3)`` uint8, kept layers, and their visible masks.

    Raises:
        RuntimeError: No object could be placed visibly in 20 attempts.
    """
    classes = sorted(c for c, items in pool.items() if items)
    for _ in range(20):
        wanted = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
        layers: List[Layer] = []
        used = set()
        for _ in range(3 * wanted):
            if len(layers) == wanted:
                break
            items = pool[classes[int(rng.integers(len(classes)))]]
            cutout = items[int(rng.integers(len(items)))]
            if cutout.key in used:
                continue
            layer = place_cutout(cutout, rng, cfg)
            if layer is not None:
                used.add(cutout.key)
                layers.append(layer)
        kept, masks = prune_hidden(layers)
        if kept:
            return composite(background, kept), kept, masks
    raise RuntimeError('could not place any visible object in 20 attempts; the cut-outs are '
                       'too small for the image size')
