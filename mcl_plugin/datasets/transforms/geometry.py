"""View geometry shared by the multi-view transforms: SoCo, PLRC and DetCo.

Everything that moves boxes, region masks or patch coordinates together with the image lives
here, so the view builders (:class:`SoCoViews`, :class:`GridRegionTwoView`,
:class:`JigsawPatches` / :class:`GlobalLocalViews`) share one definition of

* the random resized crop sampler (:func:`sample_crop`),
* the image operations of a view (:func:`resize`, :func:`crop_resize`, :func:`flip`) and of its
  integer label maps (:func:`crop_resize_flip_nearest`),
* box geometry on mmdet's :class:`~mmdet.structures.bbox.HorizontalBoxes` (:func:`to_view`,
  :func:`clip_to_region`, :func:`intersect`, :func:`overlap_of_smaller`),
* the check that refuses geometric transforms in a view's photometric pipeline, also inside
  wrappers (``RandomApply``, ``RandomChoice``, ``RandomOrder`` ... any transform that holds
  transforms): :func:`build_photometric`.

Coordinates are continuous pixels (pixel ``i`` spans ``[i, i + 1)``); boxes and regions are
``(x1, y1, x2, y2)`` with ``x2`` / ``y2`` exclusive, the convention of mmdet and of mmcv's
``roi_align(aligned=True)``.
"""
import math
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmdet.structures.bbox import HorizontalBoxes

from mcl_plugin.registry import TRANSFORMS

Region = Sequence[float]  # (x1, y1, x2, y2)
Box = Tuple[int, int, int, int]  # (x1, y1, x2, y2) in whole pixels, x2 / y2 exclusive

#: Words of transform names that move (or hide) pixels: a transform whose name holds one of them
#: cannot be followed by the boxes / masks of a view and is refused in its photometric pipeline.
GEOMETRIC_WORDS = ('Flip', 'Crop', 'Resize', 'Rotat', 'Affine', 'Pad', 'Shear', 'Translate',
                   'Expand', 'Mosaic', 'Mix', 'Cutout', 'Erasing', 'Perspective', 'Elastic', 'Zoom',
                   'RandomShift', 'Albu', 'View', 'Jigsaw')

#: Pixel-hiding transforms that know the view's boxes (they read them as ``gt_bboxes``): a view
#: builder that hands its boxes to its pipelines allows them (SoCoViews: SoCo's in-box Cutout).
BOX_AWARE_TRANSFORMS = ('InBoxCutout', )


# ------------------------------------------------------------------ the photometric-only check
def transform_name(t: Any) -> str:
    """Class name of a transform given as a config dict, a class or an instance."""
    if isinstance(t, dict):
        t = t.get('type', '')
    elif hasattr(t, 't') and type(t).__name__ == 'TorchVisonTransformWrapper':
        t = type(t.t)  # mmpretrain's 'torchvision/...' wrapper: name the wrapped transform
    name = t if isinstance(t, str) else getattr(t, '__name__', type(t).__name__)
    return name.replace('/', '.').split('.')[-1]


def _nodes(value: Any, seen: set) -> Iterator[Any]:
    """The transforms (config dicts or objects) directly held by ``value``."""
    if isinstance(value, dict):
        if 'type' in value:
            yield value
        else:
            for v in value.values():
                yield from _nodes(v, seen)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _nodes(v, seen)
    elif (isinstance(value, (BaseTransform, type)) or callable(value)) and id(value) not in seen:
        seen.add(id(value))
        yield value


def _held(t: Any) -> List[Any]:
    """What a transform holds that may be transforms (``transforms`` of ``RandomApply``, the
    lists of ``RandomChoice``, mmdet's ``RandomOrder``, RandAugment ``policies`` ...)."""
    if isinstance(t, dict):
        return [v for k, v in t.items() if k != 'type']
    if isinstance(t, BaseTransform) or type(t).__name__ == 'TorchVisonTransformWrapper':
        return [v for v in vars(t).values() if isinstance(v, (dict, list, tuple, BaseTransform))]
    return []


def find_geometric(pipeline: Any,
                   allow: Sequence[str] = (),
                   _path: Tuple[str, ...] = (),
                   _seen: Optional[set] = None) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """The first geometric transform in ``pipeline``, looking inside every wrapper.

    Args:
        pipeline: A transform (config dict, class or instance), a list of them, or a ``Compose``.
        allow: Words of :data:`GEOMETRIC_WORDS` that are fine here (e.g. ``('Flip',)``).

    Returns:
        ``(name, wrappers)`` of the first geometric transform (``wrappers``: the names of the
        transforms it is nested in, outermost first), or None.
    """
    seen = set() if _seen is None else _seen
    for t in _nodes(pipeline, seen):
        name = transform_name(t)
        if any(w in name for w in GEOMETRIC_WORDS) and not any(a in name for a in allow):
            return name, _path
        path = _path + (name, ) if name != 'Compose' else _path
        found = find_geometric(_held(t), allow, path, seen)
        if found:
            return found
    return None


def check_photometric(pipeline: Any, where: str, carried: str, hint: str,
                      allow: Sequence[str] = ()) -> None:
    """Raise a ``ValueError`` naming the first geometric transform of ``pipeline``.

    Args:
        pipeline: The view pipeline (configs and / or built transforms).
        where: Which pipeline, for the message (e.g. ``'SoCoViews view_pipelines[1] (V2)'``).
        carried: What the view carries (``'proposals'``, ``'region masks'``, ...).
        hint: What to do instead (the builder's own geometric arguments).
        allow: Words of :data:`GEOMETRIC_WORDS` that this pipeline may hold.
    """
    found = find_geometric(pipeline, allow)
    if found is None:
        return
    name, wrappers = found
    inside = f' (inside {" > ".join(wrappers)})' if wrappers else ''
    also = f' and {"/".join(allow)} transforms' if allow else ''
    raise ValueError(
        f'{where}: {name!r}{inside} moves pixels without moving the {carried}: it is a geometric '
        f'transform the view builder cannot follow. {hint} Keep only photometric transforms '
        f'(colour jitter, grayscale, blur, solarize ...){also} there.')


def build_photometric(pipeline: Sequence[Union[dict, Any]],
                      where: str,
                      carried: str,
                      hint: str,
                      allow: Sequence[str] = ()) -> Compose:
    """:func:`check_photometric` on the configs, build them, check the built transforms too
    (a wrapper may expand its arguments, e.g. RandAugment's named policies)."""
    check_photometric(pipeline, where, carried, hint, allow)
    built = Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline])
    check_photometric(built, where, carried, hint, allow)
    return built


# ------------------------------------------------------------------------------ crop sampling
def sample_crop(height: int,
                width: int,
                scale: Tuple[float, float],
                ratio: Tuple[float, float],
                rng: Any = np.random,
                max_attempts: int = 10,
                y_first: bool = False) -> Box:
    """A random resized crop ``(x1, y1, x2, y2)`` of an ``height x width`` image.

    The torchvision / mmpretrain ``RandomResizedCrop`` algorithm: area fraction uniform in
    ``scale``, aspect ``w / h`` log-uniform in ``ratio``, up to ``max_attempts`` draws, then a
    central crop of the closest valid shape.

    Args:
        rng: ``np.random`` (mmengine seeds it per worker) or a ``RandomState``.
        y_first: Draw the row offset before the column offset, as mmpretrain's
            ``RandomResizedCrop.rand_crop_params`` does (same random stream as that class).
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(max_attempts):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            if y_first:
                y = int(rng.randint(0, height - h + 1))
                x = int(rng.randint(0, width - w + 1))
            else:
                x = int(rng.randint(0, width - w + 1))
                y = int(rng.randint(0, height - h + 1))
            return x, y, x + w, y + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    x, y = (width - w) // 2, (height - h) // 2
    return x, y, x + w, y + h


def check_ranges(scale: Tuple[float, float], ratio: Tuple[float, float]) -> None:
    """The ``(min, max)`` check of mmpretrain's ``RandomResizedCrop``."""
    if scale[0] > scale[1] or ratio[0] > ratio[1]:
        raise ValueError('range should be of kind (min, max). But received crop_ratio_range '
                         f'{scale} and aspect_ratio_range {ratio}.')


# ---------------------------------------------------------------------------- image operations
def resize(img: np.ndarray,
           size: int,
           interpolation: str = 'bilinear',
           backend: Optional[str] = None,
           area_when_shrinking: bool = False) -> np.ndarray:
    """``img`` resized to ``size x size`` (``'area'`` interpolation when both sides shrink and
    ``area_when_shrinking``)."""
    h, w = img.shape[:2]
    if area_when_shrinking and size < h and size < w:
        interpolation = 'area'
    return mmcv.imresize(img, (size, size), interpolation=interpolation, backend=backend)


def crop_resize(img: np.ndarray, box: Box, size: int, **kwargs) -> np.ndarray:
    """The pixels of ``box`` (whole pixels) resized to ``size x size`` (:func:`resize`)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return resize(img[y1:y2, x1:x2], size, **kwargs)


def flip(img: np.ndarray) -> np.ndarray:
    """Horizontal flip of an image or label map."""
    return mmcv.imflip(img, 'horizontal')


def crop_resize_flip_nearest(id_map: np.ndarray, box: Box, size: int, flipped: bool) -> np.ndarray:
    """Nearest-neighbour version of crop -> resize to ``size x size`` -> horizontal flip.

    Output pixel ``(u, v)`` takes the source pixel under its centre,
    ``x = x1 + (v + 0.5) * w / size`` (``w = x2 - x1``), which is the centre-aligned sampling
    rule of the bilinear/bicubic image resize, so the map stays registered with the image at
    any ``size`` (also at a lower resolution than the image, e.g. the PLRC feature size R).
    """
    x1, y1, x2, y2 = box
    ys = np.floor(y1 + (np.arange(size) + 0.5) * (y2 - y1) / size).astype(np.int64)
    xs = np.floor(x1 + (np.arange(size) + 0.5) * (x2 - x1) / size).astype(np.int64)
    out = id_map[np.clip(ys, y1, y2 - 1)[:, None], np.clip(xs, x1, x2 - 1)[None, :]]
    return np.ascontiguousarray(flip(out)) if flipped else out


# ---------------------------------------------------------------------------- box geometry
def to_boxes(data: Any) -> HorizontalBoxes:
    """``(N, 4)`` float32 xyxy boxes as mmdet's :class:`HorizontalBoxes` (a copy)."""
    return HorizontalBoxes(np.asarray(data, np.float32).reshape(-1, 4))


def clip_to_region(boxes: HorizontalBoxes, region: Region) -> HorizontalBoxes:
    """Clip ``boxes`` in place to ``region`` (same frame; ``clip_`` for a region at the origin)."""
    if region[0] == 0 and region[1] == 0:
        boxes.clip_((region[3], region[2]))
    else:
        t = boxes.tensor
        t[..., 0::2] = t[..., 0::2].clamp(region[0], region[2])
        t[..., 1::2] = t[..., 1::2].clamp(region[1], region[3])
    return boxes


def to_view(boxes: HorizontalBoxes, region: Region, size: Tuple[float, float]) -> HorizontalBoxes:
    """``boxes`` in the frame of a view that shows ``region`` at ``size = (w, h)`` pixels."""
    out = boxes.clone()
    out.translate_((-region[0], -region[1]))
    out.rescale_((size[0] / (region[2] - region[0]), size[1] / (region[3] - region[1])))
    return out


def intersect(a: Region, b: Region) -> Optional[Tuple[float, ...]]:
    """The intersection of two regions, None when it is empty."""
    r = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return r if r[2] > r[0] and r[3] > r[1] else None


def overlap_of_smaller(a: Region, b: Region) -> float:
    """Intersection area of two regions divided by the area of the smaller one (0..1)."""
    r = intersect(a, b)
    if r is None:
        return 0.
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float((r[2] - r[0]) * (r[3] - r[1])) / float(smaller)


__all__: List[str] = [
    'GEOMETRIC_WORDS', 'BOX_AWARE_TRANSFORMS', 'transform_name', 'find_geometric',
    'check_photometric', 'build_photometric',
    'sample_crop', 'check_ranges', 'resize', 'crop_resize', 'flip', 'crop_resize_flip_nearest',
    'to_boxes', 'clip_to_region', 'to_view', 'intersect', 'overlap_of_smaller'
]
