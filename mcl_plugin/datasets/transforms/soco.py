"""Box-aware multi-view transforms of SoCo: views V1/V2/V3 (+V4) that carry their proposals.

Boxes are ``(x1, y1, x2, y2)`` float32 in continuous pixel coordinates (pixel ``i`` spans
``[i, i + 1)``), the convention of mmdet and of mmcv's ``roi_align(aligned=True)``. Every
geometric operation on a view (crop, resize, flip) is applied to that view's boxes with the
shared view geometry of :mod:`.geometry` (mmdet's ``HorizontalBoxes``), so box ``k`` of every
view covers the same image content (up to the deliberate box jitter).

mmpretrain's ``MultiView`` only copies ``img`` out of each view, hence this module.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.structures.bbox import HorizontalBoxes
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.structures import DataSample

from mcl_plugin.registry import TRANSFORMS
from .geometry import (build_photometric, clip_to_region, crop_resize, flip, intersect, resize,
                       sample_crop, to_boxes, to_view)


def jitter_boxes(boxes: np.ndarray, prob: float, ratio: float,
                 rng: np.random.RandomState) -> np.ndarray:
    """SoCo's box jitter: with probability ``prob`` per box, ``cx += r1 w, cy += r2 h,
    w += r3 w, h += r4 h`` with independent ``r_i ~ U(-ratio, ratio)`` (the paper writes one
    ``r``; independent draws are the usual reading of "jitter")."""
    if prob <= 0 or ratio <= 0 or not len(boxes):
        return boxes
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    r = rng.uniform(-ratio, ratio, size=(len(boxes), 4)) * (rng.rand(len(boxes), 1) < prob)
    cx, cy = cx + r[:, 0] * w, cy + r[:, 1] * h
    w, h = w * (1 + r[:, 2]), h * (1 + r[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


@TRANSFORMS.register_module()
class SoCoViews(BaseTransform):
    """Build SoCo's views of an image and carry its proposals into each of them.

    * V1: the whole image resized to ``v1_size`` (a plain resize, as in SoCo).
    * V2: a random crop of V1 (area fraction ``crop_scale``, aspect ``crop_ratio``) resized to
      ``v2_size``. The crop is cut from the original image at the same place, its borders
      snapped to whole original pixels (the geometry is that of cropping V1; the pixels are
      sharper).
    * V3: V2 resized to ``v3_size`` (None: no V3, e.g. the C4 variant).
    * V4 (SoCo*): another random crop of V1 resized to ``v4_size`` (None: no V4).

    Proposals: a proposal is *visible* when at least ``min_visible`` of its V1 area lies in the
    region every crop view shows (V2, or V2 ∩ V4) and its clipped sides are at least
    ``min_box_size`` V1 pixels. Visible proposals are clipped to that region **in every view**
    (V1 too), so all views of proposal ``k`` show the same content. Crops are redrawn up to
    ``max_tries`` times until ``min(num_proposals, #proposals)`` are visible (the best draw is
    kept otherwise). ``num_proposals`` of the visible ones are sampled without replacement; if
    fewer are visible, randomly chosen ones are repeated (``is_pad=True``); if none is, the
    whole shared region is the single proposal (id ``-1``). Then, independently per view: box
    jitter (``jitter_prob``, ``jitter_ratio``, see :func:`jitter_boxes`) clipped to the view,
    horizontal flip of image and boxes (``flip_prob``), and the view's photometric pipeline.

    Required keys: ``img`` (HxWx3), ``proposals`` ((N, 4) xyxy in image pixels, N >= 1).
    Optional: ``proposal_img_size`` ((w, h) the proposals were made on; checked),
    ``img_path``. Modified: ``img`` becomes the list of views. Added: ``view_boxes``
    ((V, K, 4) float32, per-view pixels), ``proposal_ids`` ((K,) int64, row in ``proposals``),
    ``is_pad`` ((K,) bool), ``view_flips`` ((V,) bool), ``view_regions`` ((V, 4) float32, the
    part of the original image each view shows, before its flip), ``view_sizes``.

    Args:
        num_proposals (int): ``K`` proposals per image. Defaults to 4.
        v1_size (int): Side of V1. Defaults to 224.
        v2_size (int): Side of V2. Defaults to 224.
        v3_size (int, optional): Side of V3. Defaults to 112.
        v4_size (int, optional): Side of V4 (SoCo*: 192). Defaults to None.
        crop_scale (tuple): Area fraction of V1 the crops keep. Defaults to (0.5, 1.0).
        crop_ratio (tuple): Aspect range of the crops. Defaults to (3/4, 4/3).
        min_visible (float): Visible fraction for a proposal to be kept. Defaults to 0.5.
        min_box_size (float): Smallest side, in V1 pixels, of a kept (clipped) proposal.
            Defaults to 8.
        max_tries (int): Crop draws. Defaults to 10.
        jitter_prob (float): Probability to jitter a box. Defaults to 0.5.
        jitter_ratio (float): Jitter amplitude ``r``. Defaults to 0.1.
        flip_prob (float): Horizontal flip probability per view. Defaults to 0.5.
        view_pipelines (Sequence[Sequence[dict]]): Photometric transforms per view, in view
            order; a single list is used for every view. Geometric transforms, also inside a
            wrapper such as ``RandomApply``, are rejected. Defaults to none.
        interpolation (str): Resize interpolation. Defaults to 'bilinear'.
        seed (int, optional): Seed of a private generator (tests). Default: numpy's global
            state, which mmengine seeds per worker.
    """

    def __init__(self,
                 num_proposals: int = 4,
                 v1_size: int = 224,
                 v2_size: int = 224,
                 v3_size: Optional[int] = 112,
                 v4_size: Optional[int] = None,
                 crop_scale: Tuple[float, float] = (0.5, 1.0),
                 crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 min_visible: float = 0.5,
                 min_box_size: float = 8.0,
                 max_tries: int = 10,
                 jitter_prob: float = 0.5,
                 jitter_ratio: float = 0.1,
                 flip_prob: float = 0.5,
                 view_pipelines: Sequence[Sequence[dict]] = (),
                 interpolation: str = 'bilinear',
                 seed: Optional[int] = None) -> None:
        if num_proposals < 1:
            raise ValueError(f'num_proposals must be >= 1, got {num_proposals}')
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f'crop_scale must satisfy 0 < min <= max <= 1, got {crop_scale}')
        if not 0 <= min_visible <= 1:
            raise ValueError(f'min_visible must be in [0, 1], got {min_visible}')
        self.num_proposals = num_proposals
        self.v1_size, self.v2_size, self.v3_size, self.v4_size = (v1_size, v2_size, v3_size,
                                                                  v4_size)
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.min_visible = min_visible
        self.min_box_size = min_box_size
        self.max_tries = max(1, max_tries)
        self.jitter_prob = jitter_prob
        self.jitter_ratio = jitter_ratio
        self.flip_prob = flip_prob
        self.interpolation = interpolation
        self.rng = np.random.RandomState(seed) if seed is not None else np.random
        names = self.view_names
        if view_pipelines and isinstance(view_pipelines[0], dict):
            view_pipelines = [view_pipelines]
        view_pipelines = list(view_pipelines)
        if len(view_pipelines) == 1:
            view_pipelines = view_pipelines * len(names)
        if view_pipelines and len(view_pipelines) != len(names):
            raise ValueError(f'SoCoViews makes {len(names)} views ({", ".join(names)}) but got '
                             f'{len(view_pipelines)} view_pipelines')
        hint = ('Crops, resizes and flips belong to SoCoViews itself (crop_scale, crop_ratio, '
                'v*_size, flip_prob).')
        self.pipelines = [
            build_photometric(p, f'SoCoViews view_pipelines[{i}] ({names[i]})', 'proposals', hint)
            for i, p in enumerate(view_pipelines)
        ] if view_pipelines else [None] * len(names)

    @property
    def view_names(self) -> List[str]:
        names = ['V1', 'V2']
        if self.v3_size:
            names.append('V3')
        if self.v4_size:
            names.append('V4')
        return names

    # ------------------------------------------------------------------ steps
    def _choose_crops(self, boxes: HorizontalBoxes, snap) -> Tuple[tuple, Optional[tuple], tuple,
                                                                    np.ndarray]:
        """Crop regions (V1 frame, snapped to whole pixels of the original image by ``snap``)
        and the visible-proposal mask."""
        s = self.v1_size
        want = min(self.num_proposals, len(boxes))
        areas = boxes.areas.clamp(min=1e-6)
        best = None
        for _ in range(self.max_tries):
            c2 = snap(sample_crop(s, s, self.crop_scale, self.crop_ratio, self.rng))
            c4 = snap(sample_crop(s, s, self.crop_scale, self.crop_ratio, self.rng)) \
                if self.v4_size else None
            shared = intersect(c2, c4) if c4 is not None else c2
            if shared is None:
                continue
            clipped = clip_to_region(boxes.clone(), shared)
            keep = ((clipped.areas / areas >= self.min_visible)
                    & (clipped.widths >= self.min_box_size)
                    & (clipped.heights >= self.min_box_size)).numpy()
            if best is None or keep.sum() > best[3].sum():
                best = (c2, c4, shared, keep)
            if keep.sum() >= want:
                break
        if best is None:  # V2 and V4 never overlapped: show V2's region in V4 as well
            c2 = snap(sample_crop(s, s, self.crop_scale, self.crop_ratio, self.rng))
            best = (c2, c2, c2, np.zeros(len(boxes), bool))
        return best

    def _sample(self, keep: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``num_proposals`` indices of visible proposals (padded) and the pad mask."""
        visible = np.flatnonzero(keep)
        k = self.num_proposals
        chosen = self.rng.permutation(visible)[:k]
        is_pad = np.zeros(k, bool)
        if len(chosen) < k:
            extra = self.rng.choice(chosen, k - len(chosen), replace=True)
            is_pad[len(chosen):] = True
            chosen = np.concatenate([chosen, extra])
        return chosen.astype(np.int64), is_pad

    def _resize(self, img: np.ndarray, size: int) -> np.ndarray:
        return resize(img, size, self.interpolation, area_when_shrinking=True)

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        H, W = img.shape[:2]
        props = to_boxes(results.get('proposals', np.zeros((0, 4))))
        expected = results.get('proposal_img_size')
        if expected is not None and tuple(expected) != (W, H):
            raise ValueError(
                f'the proposals of {results.get("img_path", "this image")} were made on a '
                f'{expected[0]}x{expected[1]} image but the loaded image is {W}x{H}: the '
                'proposals json does not belong to these image files (regenerate it with '
                'tools/generate_proposals.py on the same folder).')
        if not len(props):
            raise ValueError(f'{results.get("img_path", "image")} has no proposals; '
                             'ProposalImageDataset gives every image at least one.')
        props.clip_((H, W))
        s1 = self.v1_size
        sx, sy = s1 / W, s1 / H

        def snap(r):  # V1-frame region -> whole original pixels -> V1 frame
            x1, y1 = math.floor(r[0] / sx + 1e-6), math.floor(r[1] / sy + 1e-6)
            x2 = min(max(math.ceil(r[2] / sx - 1e-6), x1 + 1), W)
            y2 = min(max(math.ceil(r[3] / sy - 1e-6), y1 + 1), H)
            return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)

        def cut(r, size):  # the pixels of a snapped region, resized to size x size
            box = (round(r[0] / sx), round(r[1] / sy), round(r[2] / sx), round(r[3] / sy))
            return crop_resize(img, box, size, interpolation=self.interpolation,
                               area_when_shrinking=True)

        b1 = props.clone()
        b1.rescale_((sx, sy))
        c2, c4, shared, keep = self._choose_crops(b1, snap)
        if keep.any():
            ids, is_pad = self._sample(keep)
            common = clip_to_region(b1[ids], shared)
        else:  # nothing visible: the whole shared region is the proposal
            ids = np.full(self.num_proposals, -1, np.int64)
            is_pad = np.arange(self.num_proposals) > 0
            common = to_boxes(np.tile(np.asarray(shared, np.float32), (self.num_proposals, 1)))

        full = (0., 0., float(s1), float(s1))
        views, boxes, regions = [self._resize(img, s1)], [common], [full]
        v2 = cut(c2, self.v2_size)
        b2 = to_view(common, c2, (self.v2_size, self.v2_size))
        views.append(v2)
        boxes.append(b2)
        regions.append(c2)
        if self.v3_size:
            views.append(self._resize(v2, self.v3_size))
            boxes.append(to_view(b2, (0, 0, self.v2_size, self.v2_size),
                                 (self.v3_size, self.v3_size)))
            regions.append(c2)
        if self.v4_size:
            views.append(cut(c4, self.v4_size))
            boxes.append(to_view(common, c4, (self.v4_size, self.v4_size)))
            regions.append(c4)

        flips = []
        for i, pipeline in enumerate(self.pipelines):
            h, w = views[i].shape[:2]
            b = to_boxes(jitter_boxes(boxes[i].numpy(), self.jitter_prob, self.jitter_ratio,
                                      self.rng))
            b.clip_((h, w))
            flipped = bool(self.rng.rand() < self.flip_prob)
            if flipped:
                views[i] = flip(views[i])
                b.flip_((h, w))
            if pipeline is not None:
                views[i] = pipeline(dict(img=views[i]))['img']
            boxes[i] = b.numpy()
            flips.append(flipped)
        results['img'] = views
        results['view_boxes'] = np.stack(boxes).astype(np.float32)
        results['proposal_ids'] = ids
        results['is_pad'] = is_pad
        results['view_flips'] = np.array(flips, bool)
        results['view_regions'] = np.array([(r[0] / sx, r[1] / sy, r[2] / sx, r[3] / sy)
                                            for r in regions], np.float32)
        results['view_sizes'] = [v.shape[:2] for v in views]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(views={self.view_names}, sizes={self.v1_size}/'
                f'{self.v2_size}/{self.v3_size}/{self.v4_size}, K={self.num_proposals}, '
                f'crop_scale={self.crop_scale}, jitter={self.jitter_prob}/{self.jitter_ratio}, '
                f'flip_prob={self.flip_prob})')


@TRANSFORMS.register_module()
class PackSoCoInputs(BaseTransform):
    """Pack the views and their boxes.

    ``inputs``: list of ``(3, h_v, w_v)`` uint8 tensors, one per view. ``data_samples``: a
    :class:`DataSample` with data fields ``view_boxes`` ((V, K, 4) float32 xyxy in each view's
    pixels), ``proposal_ids`` ((K,) int64) and ``is_pad`` ((K,) bool) -- tensors, so the data
    preprocessor moves them to the device -- and meta ``view_flips``, ``view_regions`` plus
    ``meta_keys``.

    Args:
        meta_keys (Sequence[str]): Keys copied into the meta information when present.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('sample_idx', 'img_path', 'ori_shape',
                                             'view_flips', 'view_regions', 'view_sizes')
                 ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        for key in ('img', 'view_boxes', 'proposal_ids', 'is_pad'):
            if key not in results:
                raise KeyError(f'PackSoCoInputs needs {key!r}: put SoCoViews before it')
        sample = DataSample()
        sample.set_field(torch.from_numpy(np.asarray(results['view_boxes'], np.float32)),
                         'view_boxes')
        sample.set_field(torch.from_numpy(np.asarray(results['proposal_ids'], np.int64)),
                         'proposal_ids')
        sample.set_field(torch.from_numpy(np.asarray(results['is_pad'], bool)), 'is_pad')
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        return dict(inputs=PackInputs.format_input(list(results['img'])), data_samples=sample)


__all__ = ['SoCoViews', 'PackSoCoInputs', 'jitter_boxes']
