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
from .geometry import (BOX_AWARE_TRANSFORMS, build_photometric, clip_to_region, crop_resize,
                       flip, intersect, resize, sample_crop, to_boxes, to_view)
from .soco_boxes import InBoxCutout, jitter_boxes  # noqa: F401  (re-exported)


@TRANSFORMS.register_module()
class SoCoViews(BaseTransform):
    """Build SoCo's views of an image and carry its proposals into each of them.

    * V1: the whole image resized to ``v1_size`` (a plain resize, as in SoCo).
    * V2: a random crop of V1 (area fraction ``crop_scale``, aspect ``crop_ratio``) resized to
      ``v2_size``. The crop is cut from the original image at the same place, its borders
      snapped to whole original pixels (the geometry is that of cropping V1; the pixels are
      sharper).
    * V3: V2 resized to ``v3_size`` (None: no V3, e.g. the C4 variant; the paper's V3), or with
      ``independent_v3`` an independent random crop resized to ``v3_size`` with its own
      proposals (the official code, ``transform.py:77-99``, ``dataset.py:697-783``).
    * V4 (SoCo*): another random crop of V1 resized to ``v4_size`` (None: no V4).

    Two box modes (``box_mode``):

    * ``'shared'`` (the class default, our easier positives; described below): every view shows
      the same visible part of a proposal.
    * ``'visible_part'`` (the official code, ``dataset.py:697-747``): a crop view's candidates
      are the proposals that overlap it at all; ``num_proposals`` of them are sampled per crop
      view (``least = max(K // 2, 1)`` candidates wanted, halved after each of ``max_tries``
      draws, the last draw kept); the crop view gets the visible part of each (clipped to the
      crop), V1 the whole proposal (jittered, clipped to the image). V1 therefore has one box
      set per crop view: ``v1_boxes[j]`` / ``v1_ids[j]`` (``bboxs1_12``, ``bboxs1_13``). Each
      set is padded to ``num_proposals`` independently by repeating random members
      (``pad_bboxs_with_common``); boxes match by proposal id (``view_ids``). A crop that
      overlaps no proposal gets the whole crop as its proposal (id -1).

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
    part of the original image each view shows, before its flip), ``view_sizes``,
    ``view_ids`` ((V, K) int64 proposal id of every box; ``proposal_ids`` and ``is_pad`` are
    V2's) and, in ``'visible_part'`` mode, ``v1_boxes`` / ``v1_ids`` ((V, K, 4) / (V, K): V1's
    box set for each view; row 0 = row 1).

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
        jitter_views (str): ``'all'`` (every view, the paper's reading) or ``'v1'`` (V1's boxes
            only, the official code). Defaults to 'all'.
        jitter_anchor (str): ``'center'`` or ``'top_left'`` (official), see
            :func:`jitter_boxes`. Defaults to 'center'.
        box_mode (str): ``'shared'`` or ``'visible_part'`` (official), see above.
            Defaults to 'shared'.
        independent_v3 (bool): V3 as an independent crop with its own proposals (official;
            needs ``box_mode='visible_part'``). Defaults to False.
        independent_v4 (bool): In ``'visible_part'`` mode, V4 as an independent crop with its
            own proposals; False: V2 resized to ``v4_size`` with V2's boxes (the official
            SoCo*, ``dataset.py:842-895``, whose independent crop is V3). Defaults to True.
        flip_prob (float): Horizontal flip probability per view. Defaults to 0.5.
        view_pipelines (Sequence[Sequence[dict]]): Photometric transforms per view, in view
            order; a single list is used for every view. Geometric transforms, also inside a
            wrapper such as ``RandomApply``, are rejected, except :class:`InBoxCutout`, which
            gets the view's boxes as ``gt_bboxes``. Defaults to none.
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
                 jitter_views: str = 'all',
                 jitter_anchor: str = 'center',
                 box_mode: str = 'shared',
                 independent_v3: bool = False,
                 independent_v4: bool = True,
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
        if jitter_views not in ('all', 'v1'):
            raise ValueError(f"jitter_views must be 'all' or 'v1', got {jitter_views!r}")
        if box_mode not in ('shared', 'visible_part'):
            raise ValueError(f"box_mode must be 'shared' or 'visible_part', got {box_mode!r}")
        if independent_v3 and box_mode != 'visible_part':
            raise ValueError("independent_v3 gives V3 its own proposals: it needs "
                             "box_mode='visible_part'")
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
        self.jitter_views, self.jitter_anchor = jitter_views, jitter_anchor
        self.box_mode, self.independent_v3 = box_mode, independent_v3
        self.independent_v4 = independent_v4
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
            build_photometric(p, f'SoCoViews view_pipelines[{i}] ({names[i]})', 'proposals', hint,
                              allow=BOX_AWARE_TRANSFORMS)
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
        full = (0., 0., float(s1), float(s1))
        if self.box_mode == 'visible_part':
            views, boxes, regions, sets = self._visible_part(img, b1, snap, cut)
            return self._finish(results, views, boxes, regions, sets, sx, sy)
        c2, c4, shared, keep = self._choose_crops(b1, snap)
        if keep.any():
            ids, is_pad = self._sample(keep)
            common = clip_to_region(b1[ids], shared)
        else:  # nothing visible: the whole shared region is the proposal
            ids = np.full(self.num_proposals, -1, np.int64)
            is_pad = np.arange(self.num_proposals) > 0
            common = to_boxes(np.tile(np.asarray(shared, np.float32), (self.num_proposals, 1)))

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
        ids_v = np.tile(ids, (len(views), 1))
        return self._finish(results, views, [b.numpy() for b in boxes], regions,
                            dict(view_ids=ids_v, is_pad=is_pad), sx, sy)

    def _pad(self, n: int) -> np.ndarray:
        """Rows of a set of ``n`` boxes padded to ``num_proposals`` by random repeats
        (``pad_bboxs_with_common``, ``bboxs_utils.py:255-259``)."""
        k = self.num_proposals
        rows = np.arange(min(n, k))
        return np.concatenate([rows, self.rng.choice(n, k - len(rows))]) if n < k else rows

    def _visible_part(self, img: np.ndarray, b1: HorizontalBoxes, snap, cut) -> tuple:
        """Views, per-view boxes, regions and the box sets of ``box_mode='visible_part'``
        (``dataset.py:697-747``); see the class docstring."""
        s, k = self.v1_size, self.num_proposals
        names = self.view_names
        sizes = dict(V2=self.v2_size, V3=self.v3_size, V4=self.v4_size)
        own = [i for i, n in enumerate(names) if n == 'V2' or (n == 'V3' and self.independent_v3)
               or (n == 'V4' and self.independent_v4)]
        t = b1.tensor
        least = max(k // 2, 1)
        for _ in range(self.max_tries):
            crops = {j: snap(sample_crop(s, s, self.crop_scale, self.crop_ratio, self.rng))
                     for j in own}
            chosen = {}
            for j, c in crops.items():
                hit = ((t[:, 0] < c[2]) & (c[0] < t[:, 2]) & (t[:, 1] < c[3])
                       & (c[1] < t[:, 3])).numpy()
                cand = np.flatnonzero(hit)
                chosen[j] = cand if len(cand) <= k else self.rng.permutation(cand)[:k]
            if all(len(c) >= least for c in chosen.values()):
                break
            least = max(least // 2, 1)
        views = [self._resize(img, s)]
        boxes = [None] * len(names)
        regions = [(0., 0., float(s), float(s))] + [None] * (len(names) - 1)
        v1_boxes, v1_ids = [None] * len(names), [None] * len(names)
        view_ids = [None] * len(names)
        pads = np.zeros(k, bool)
        for j in range(1, len(names)):
            if j not in own:  # the paper's V3 (or the official SoCo*'s V4): V2 resized
                size = sizes[names[j]]
                views.append(self._resize(views[1], size))
                boxes[j] = to_view(to_boxes(boxes[1]), (0, 0, self.v2_size, self.v2_size),
                                   (size, size)).numpy()
                regions[j] = regions[1]
                v1_boxes[j], v1_ids[j], view_ids[j] = v1_boxes[1], v1_ids[1], view_ids[1]
                continue
            c, size, ids = crops[j], sizes[names[j]], chosen[j]
            views.append(cut(c, size))
            regions[j] = c
            if len(ids):
                one = b1[ids].numpy()
                if self.jitter_prob > 0:
                    one = jitter_boxes(one, self.jitter_prob, self.jitter_ratio, self.rng,
                                       self.jitter_anchor)
                one = to_boxes(one)
                one.clip_((s, s))
                crop = to_view(clip_to_region(b1[ids].clone(), c), c, (size, size))
            else:  # no proposal overlaps the crop: the crop itself
                ids = np.array([-1])
                one, crop = to_boxes(c), to_boxes((0, 0, size, size))
            r1, rj = self._pad(len(ids)), self._pad(len(ids))
            v1_boxes[j], v1_ids[j] = one.numpy()[r1], ids[r1]
            boxes[j], view_ids[j] = crop.numpy()[rj], ids[rj]
            if j == 1:
                pads = np.arange(k) >= len(ids)
        boxes[0], v1_ids[0], v1_boxes[0] = v1_boxes[1], v1_ids[1], v1_boxes[1]
        view_ids[0] = v1_ids[1]
        sets = dict(v1_boxes=np.stack(v1_boxes), v1_ids=np.stack(v1_ids).astype(np.int64),
                    view_ids=np.stack(view_ids).astype(np.int64), is_pad=pads)
        return views, boxes, regions, sets

    def _finish(self, results: Dict, views: List[np.ndarray], boxes: List[np.ndarray],
                regions: list, sets: Dict, sx: float, sy: float) -> Dict:
        """Box jitter (``jitter_views``; V1's is drawn earlier in ``'visible_part'`` mode),
        flips (V1's also flips ``v1_boxes``), the view pipelines (with ``gt_bboxes``) and the
        outputs."""
        flips = []
        v1_sets = sets.get('v1_boxes')
        for i, pipeline in enumerate(self.pipelines):
            h, w = views[i].shape[:2]
            jitter = (self.jitter_views == 'all' or i == 0) and not (
                v1_sets is not None and i == 0)
            b = to_boxes(jitter_boxes(boxes[i], self.jitter_prob, self.jitter_ratio, self.rng,
                                      self.jitter_anchor) if jitter else boxes[i])
            b.clip_((h, w))
            flipped = bool(self.rng.rand() < self.flip_prob)
            if flipped:
                views[i] = flip(views[i])
                b.flip_((h, w))
                if i == 0 and v1_sets is not None:
                    v1 = to_boxes(v1_sets)
                    v1.flip_((h, w))
                    v1_sets = v1.numpy().reshape(v1_sets.shape)
            if pipeline is not None:
                views[i] = pipeline(dict(img=views[i], gt_bboxes=b.numpy()))['img']
            boxes[i] = b.numpy()
            flips.append(flipped)
        results['img'] = views
        results['view_boxes'] = np.stack(boxes).astype(np.float32)
        results['proposal_ids'] = np.asarray(sets['view_ids'][1], np.int64)
        results['is_pad'] = sets['is_pad']
        results['view_ids'] = sets['view_ids']
        if v1_sets is not None:
            results['v1_boxes'] = v1_sets.astype(np.float32)
            results['v1_ids'] = sets['v1_ids']
        results['view_flips'] = np.array(flips, bool)
        results['view_regions'] = np.array([(r[0] / sx, r[1] / sy, r[2] / sx, r[3] / sy)
                                            for r in regions], np.float32)
        results['view_sizes'] = [v.shape[:2] for v in views]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(views={self.view_names}, sizes={self.v1_size}/'
                f'{self.v2_size}/{self.v3_size}/{self.v4_size}, K={self.num_proposals}, '
                f'crop_scale={self.crop_scale}, jitter={self.jitter_prob}/{self.jitter_ratio}/'
                f'{self.jitter_views}/{self.jitter_anchor}, box_mode={self.box_mode}, '
                f'independent_v3={self.independent_v3}, flip_prob={self.flip_prob})')


@TRANSFORMS.register_module()
class PackSoCoInputs(BaseTransform):
    """Pack the views and their boxes.

    ``inputs``: list of ``(3, h_v, w_v)`` uint8 tensors, one per view. ``data_samples``: a
    :class:`DataSample` with data fields ``view_boxes`` ((V, K, 4) float32 xyxy in each view's
    pixels), ``proposal_ids`` ((K,) int64), ``is_pad`` ((K,) bool) and, when present,
    ``view_ids`` ((V, K)), ``v1_boxes`` ((V, K, 4)) and ``v1_ids`` ((V, K)) -- tensors, so the
    data preprocessor moves them to the device -- and meta ``view_flips``, ``view_regions`` plus
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
        for key, dtype in (('view_ids', np.int64), ('v1_boxes', np.float32),
                           ('v1_ids', np.int64)):
            if key in results:
                sample.set_field(torch.from_numpy(np.asarray(results[key], dtype)), key)
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        return dict(inputs=PackInputs.format_input(list(results['img'])), data_samples=sample)


__all__ = ['SoCoViews', 'PackSoCoInputs', 'InBoxCutout', 'jitter_boxes']
