"""DetCo's jigsaw patch sets and the global + local multi-view wrapper.

:class:`JigsawPatches` turns one image into a set of ``grid x grid`` small patches (DetCo §6.5,
following PIRL): a random crop of at least 60% of the image resized to 255x255, a 3x3 grid of
85x85 cells, one random 64x64 crop inside every cell ("to avoid continuity between patches"),
the augmentation either once on the 255-px crop before it is cut (the paper's order and the
public code: ``crop_pipeline`` and ``flip_prob``) or on every patch independently
(``patch_pipeline``). :class:`GlobalLocalViews` runs the MoCo v2 global pipeline
and the jigsaw pipeline several times on one image and flattens everything into ``img`` so that
mmpretrain's ``PackInputs`` and ``default_collate`` stack every view position into one batch
tensor: ``inputs = [global_0, .., global_{G-1}, set0_patch0, .., set0_patch8, set1_patch0, ..]``.
The model stacks the 9 patch tensors of a set into one ``(9N, C, 64, 64)`` backbone pass.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mcl_plugin.registry import TRANSFORMS
from .geometry import build_photometric, check_photometric, check_ranges, crop_resize, sample_crop

#: Meta keys :class:`GlobalLocalViews` adds; pass them to ``PackInputs(meta_keys=...)``.
JIGSAW_META_KEYS = ('num_global_views', 'num_patch_sets', 'jigsaw_grid', 'jigsaw_crop_size',
                    'patch_order', 'patch_boxes', 'jigsaw_crop_box')


@TRANSFORMS.register_module()
class JigsawPatches(BaseTransform):
    """Cut one randomly cropped image into a set of jittered grid patches.

    Steps (all randomness is drawn per call, i.e. per sample and per patch set):

    1. a random resized crop of ``crop_ratio_range`` of the image area (aspect ratio in
       ``aspect_ratio_range``) resized to ``crop_size x crop_size``;
    2. the optional ``crop_pipeline`` on the whole crop (the paper's "random flip, colour jitter
       and blur" read as once per crop), then a horizontal flip of the whole crop with
       probability ``flip_prob`` (the crop is augmented once, then cut);
    3. a ``grid x grid`` grid of ``crop_size // grid`` cells (85 for 255 / 3; with a size not
       divisible by ``grid`` the last pixels of the crop are unused);
    4. one ``patch_size`` crop at a uniformly random position inside every cell;
    5. the optional ``patch_pipeline`` on every patch independently (its own augmentation);
    6. patch order: row-major grid order, or a random permutation when ``shuffle=True`` (PIRL's
       jigsaw permutation; DetCo concatenates the patch features in this order, so shuffling
       makes the local embedding depend on the permutation).

    **Required keys:** ``img``.
    **Modified keys:** ``img`` (list of ``grid**2`` ``patch_size x patch_size`` arrays in patch
    order), ``img_shape``.
    **Added keys:** ``patch_order`` (``(grid**2,)`` int64, the row-major cell index of every
    patch), ``patch_boxes`` (``(grid**2, 4)`` float32 ``x1, y1, x2, y2`` of every patch in the
    ``crop_size`` crop, patch order; a flipped crop's cells and boxes are given in the un-flipped
    crop, and its patches are mirrored, as a flipped patch keeps its box), ``jigsaw_crop_box`` (``(4,)`` float32 ``x1, y1, x2, y2`` of
    the crop in the input image), ``jigsaw_grid``, ``jigsaw_crop_size``, and ``jigsaw_crop`` (the
    crop after ``crop_pipeline``) when ``keep_crop=True``.

    Args:
        crop_size (int): Side of the resized crop. Defaults to 255 (DetCo).
        crop_ratio_range (tuple[float, float]): Crop area relative to the image. Defaults to
            ``(0.6, 1.0)`` (DetCo: "at least 60%").
        aspect_ratio_range (tuple[float, float]): Crop aspect ratio range; not stated by DetCo,
            torchvision's ``(3/4, 4/3)`` by default.
        grid (int): Cells per side. Defaults to 3.
        patch_size (int): Side of every patch, at most ``crop_size // grid``. Defaults to 64.
        shuffle (bool): Randomly permute the patch order. Defaults to False.
        crop_pipeline (list[dict], optional): Photometric transforms applied once to the crop
            (a geometric one, also inside a wrapper, is rejected: the patch boxes would no
            longer locate the patches in the crop; flip the crop with ``flip_prob``).
        flip_prob (float): Probability of flipping the whole crop horizontally before it is
            cut. Defaults to 0.
        patch_pipeline (list[dict], optional): Transforms applied to every patch independently:
            photometric ones and flips (a flipped patch keeps its box); other geometric
            transforms are rejected.
        keep_crop (bool): Also return the crop (for tests and visualisation). Defaults to False.
        interpolation (str): Resize interpolation. Defaults to 'bicubic'.
        backend (str): Resize backend, 'cv2' or 'pillow'. Defaults to 'pillow'.
    """

    def __init__(self,
                 crop_size: int = 255,
                 crop_ratio_range: Tuple[float, float] = (0.6, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 grid: int = 3,
                 patch_size: int = 64,
                 shuffle: bool = False,
                 crop_pipeline: Optional[Sequence[dict]] = None,
                 patch_pipeline: Optional[Sequence[dict]] = None,
                 flip_prob: float = 0.,
                 keep_crop: bool = False,
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> None:
        if grid < 1 or patch_size < 1 or patch_size > crop_size // grid:
            raise ValueError(f'JigsawPatches needs 1 <= patch_size <= crop_size // grid, got '
                             f'patch_size={patch_size}, crop_size={crop_size}, grid={grid}')
        self.crop_size, self.grid, self.patch_size = crop_size, grid, patch_size
        self.cell = crop_size // grid
        if not 0. <= flip_prob <= 1.:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}')
        self.shuffle, self.keep_crop, self.flip_prob = shuffle, keep_crop, flip_prob
        self.interpolation, self.backend = interpolation, backend
        check_ranges(crop_ratio_range, aspect_ratio_range)
        self.crop_ratio_range = tuple(crop_ratio_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        hint = ('JigsawPatches crops itself (crop_size, crop_ratio_range, aspect_ratio_range); '
                'flip the crop with flip_prob, or every patch in patch_pipeline, where a flipped '
                'patch keeps its box.')
        self.crop_pipeline = build_photometric(
            crop_pipeline, 'JigsawPatches crop_pipeline', 'patch boxes',
            hint) if crop_pipeline else None
        self.patch_pipeline = build_photometric(
            patch_pipeline, 'JigsawPatches patch_pipeline', 'patch boxes', hint,
            allow=('Flip', )) if patch_pipeline else None

    def _crop(self, img: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        box = sample_crop(*img.shape[:2], self.crop_ratio_range, self.aspect_ratio_range,
                          y_first=True)
        crop = crop_resize(img, box, self.crop_size, interpolation=self.interpolation,
                           backend=self.backend)
        return crop, np.array(box, dtype=np.float32)

    @staticmethod
    def _run(pipeline: Compose, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        out = pipeline(dict(img=img, img_shape=(h, w), ori_shape=(h, w)))
        if out is None:
            raise RuntimeError('a JigsawPatches sub-pipeline returned None (dropped the sample)')
        return out['img']

    def transform(self, results: Dict) -> Dict:
        crop, crop_box = self._crop(results['img'])
        if self.crop_pipeline is not None:
            crop = self._run(self.crop_pipeline, crop)
        flip = self.flip_prob > 0 and np.random.rand() < self.flip_prob
        if flip:
            crop = np.ascontiguousarray(crop[:, ::-1])
        n, s, c = self.grid * self.grid, self.patch_size, self.cell
        order = np.random.permutation(n) if self.shuffle else np.arange(n)
        patches: List[np.ndarray] = []
        boxes = np.zeros((n, 4), dtype=np.float32)
        cells = order.copy()
        for i, cell in enumerate(order):
            row, col = divmod(int(cell), self.grid)
            y = row * c + np.random.randint(0, c - s + 1)
            x = col * c + np.random.randint(0, c - s + 1)
            patch = np.ascontiguousarray(crop[y:y + s, x:x + s])
            if self.patch_pipeline is not None:
                patch = self._run(self.patch_pipeline, patch)
            patches.append(patch)
            boxes[i] = (x, y, x + s, y + s)
            if flip:  # the cell and the box in the un-flipped crop
                cells[i] = row * self.grid + self.grid - 1 - col
                boxes[i] = (self.crop_size - x - s, y, self.crop_size - x, y + s)
        results['img'] = patches
        results['img_shape'] = (s, s)
        results['patch_order'] = cells.astype(np.int64)
        results['patch_boxes'] = boxes
        results['jigsaw_crop_box'] = crop_box
        results['jigsaw_grid'] = self.grid
        results['jigsaw_crop_size'] = self.crop_size
        if self.keep_crop:
            results['jigsaw_crop'] = crop
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, grid={self.grid}, '
                f'patch_size={self.patch_size}, shuffle={self.shuffle}, '
                f'flip_prob={self.flip_prob}, '
                f'crop_ratio_range={self.crop_ratio_range}, '
                f'crop_pipeline={self.crop_pipeline}, patch_pipeline={self.patch_pipeline})')


@TRANSFORMS.register_module()
class GlobalLocalViews(BaseTransform):
    """``num_global`` global views and ``num_local`` jigsaw patch sets of one image.

    Every view is an independent run of its pipeline on a copy of ``results``. Unlike
    mmpretrain's ``MultiView`` (which keeps only ``img``), the patch metadata of every set is
    kept (stacked along a leading set axis) for the visualiser and for checks.

    **Modified keys:** ``img``: ``[global_0 .. global_{G-1}]`` followed by the patches of every
    set, set after set, each set in its patch order (``G + num_local * grid**2`` arrays).
    **Added keys:** ``num_global_views``, ``num_patch_sets``, ``jigsaw_grid``,
    ``jigsaw_crop_size``, ``patch_order`` ``(S, grid**2)``, ``patch_boxes``
    ``(S, grid**2, 4)``, ``jigsaw_crop_box`` ``(S, 4)``; see :data:`JIGSAW_META_KEYS`.

    Args:
        global_pipeline (list[dict]): Global view transforms (MoCo v2 recipe, 224x224).
        local_pipeline (list[dict]): Patch-set transforms, ending with :class:`JigsawPatches`;
            the ones before it must be photometric (checked, also inside wrappers).
        num_global (int): Number of global views. Defaults to 2 (query and key).
        num_local (int): Number of patch sets. Defaults to 2 (query and key).
    """

    def __init__(self,
                 global_pipeline: Sequence[dict],
                 local_pipeline: Sequence[dict],
                 num_global: int = 2,
                 num_local: int = 2) -> None:
        if num_global < 0 or num_local < 0 or num_global + num_local == 0:
            raise ValueError(f'GlobalLocalViews needs views, got num_global={num_global}, '
                             f'num_local={num_local}')
        local_pipeline = list(local_pipeline)
        # JigsawPatches records its crop in the input image: what runs before it must keep the
        # image where it is (JigsawPatches checks its own sub-pipelines).
        check_photometric(local_pipeline[:-1], 'GlobalLocalViews local_pipeline', 'patch boxes',
                          'Crop and resize with JigsawPatches itself (the last transform); '
                          'geometric transforms of the global views belong in global_pipeline.')
        self.global_pipeline = Compose(list(global_pipeline))
        self.local_pipeline = Compose(local_pipeline)
        self.num_global, self.num_local = num_global, num_local

    def transform(self, results: Dict) -> Dict:
        imgs: List[np.ndarray] = []
        for _ in range(self.num_global):
            imgs.append(self.global_pipeline(copy.deepcopy(results))['img'])
        sets = [self.local_pipeline(copy.deepcopy(results)) for _ in range(self.num_local)]
        for out in sets:
            if 'patch_order' not in out or not isinstance(out['img'], list):
                raise ValueError('GlobalLocalViews: local_pipeline must end with JigsawPatches')
            imgs.extend(out['img'])
        results['img'] = imgs
        results['num_global_views'] = self.num_global
        results['num_patch_sets'] = self.num_local
        if sets:
            results['jigsaw_grid'] = sets[0]['jigsaw_grid']
            results['jigsaw_crop_size'] = sets[0]['jigsaw_crop_size']
            for key in ('patch_order', 'patch_boxes', 'jigsaw_crop_box'):
                results[key] = np.stack([out[key] for out in sets])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_global={self.num_global}, '
                f'num_local={self.num_local}, global_pipeline={self.global_pipeline}, '
                f'local_pipeline={self.local_pipeline})')
