"""Renderer of a PLRC training sample: both views, their grid regions and sampled points."""
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch

from .base import RENDERERS, BaseRenderer
from .drawing import BLACK, WHITE, as_numpy, enlarge, enlarge_factor, hstack, hue_palette

GAP = 8  #: white columns between the two views
MIN_SIDE = 256  #: views are enlarged by an integer factor to at least this side

#: ``(num_ids, 3)`` uint8 RGB region colours (evenly spaced hues, neighbour ids differ most).
region_palette = hue_palette


def _nearest(ids: np.ndarray, size: int) -> np.ndarray:
    """Centre-aligned nearest resize of a square id map (same rule as the model)."""
    h = ids.shape[0]
    idx = np.minimum(((np.arange(size) + 0.5) * h / size).astype(np.int64), h - 1)
    return ids[idx[:, None], idx[None, :]]


def draw_view(img: np.ndarray, ids: np.ndarray, common: np.ndarray, palette: np.ndarray,
              points: List[Tuple[float, float, int]], title: str) -> np.ndarray:
    """One enlarged view with its region map and points.

    Common regions are tinted with their colour and labelled with their id; regions visible in
    this view only are greyed out; region borders are white; points are filled circles of their
    region's colour with a black rim.

    Args:
        img (np.ndarray): ``(D, D, 3)`` RGB view, already enlarged.
        ids (np.ndarray): ``(D, D)`` region ids at display resolution.
        common (np.ndarray): ``(G,)`` bool.
        palette (np.ndarray): ``(G, 3)`` colours.
        points (list): ``(x, y, region)`` in display pixels.
        title (str): Caption written in the top-left corner.
    """
    out = img.astype(np.float32)
    is_common = common[ids]
    tint = palette[ids].astype(np.float32)
    grey = out.mean(2, keepdims=True).repeat(3, 2)
    out = np.where(is_common[..., None], 0.55 * out + 0.45 * tint, 0.35 * grey + 0.15 * tint)
    border = np.zeros(ids.shape, bool)
    border[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    border[1:, :] |= ids[1:, :] != ids[:-1, :]
    out[border] = 255.
    out = np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))
    side = ids.shape[0]
    for rid in np.unique(ids):
        ys, xs = np.nonzero(ids == rid)
        label = f'{rid}' + ('' if common[rid] else ' x')
        cv2.putText(out, label, (int(xs.mean()) - 6, int(ys.mean()) + 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, WHITE, 1, cv2.LINE_AA)
    radius = max(2, side // 128)
    for x, y, rid in points:
        centre = (int(round(x)), int(round(y)))
        cv2.circle(out, centre, radius + 1, BLACK, -1, cv2.LINE_AA)
        cv2.circle(out, centre, radius, tuple(int(c) for c in palette[rid]), -1, cv2.LINE_AA)
    cv2.rectangle(out, (0, 0), (min(side - 1, 8 + 7 * len(title)), 16), BLACK, -1)
    cv2.putText(out, title, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1, cv2.LINE_AA)
    return out


@RENDERERS.register_module(name='PLRC')
class PLRCRenderer(BaseRenderer):
    """Both views of a packed PLRC sample side by side with regions and sampled points.

    The points are drawn with the model's own sampler
    (:func:`~mcl_plugin.models.selfsup.plrc.sample_region_points`, seeded by ``seed``) on the
    region maps resampled to the model's ``resolution`` R, so they are exactly what one
    training step could use: ``N`` common regions, ``P`` points per region and view, each inside
    its region; same region, same colour in both views. Reads ``model.grid_size``,
    ``num_regions``, ``num_points`` and ``resolution``.

    Sample: ``PackInputs`` output: ``inputs`` (two ``(3, S, S)`` uint8 tensors, BGR as loaded)
    and ``data_samples`` with ``region_masks`` ``(2, M, M)`` and ``common_regions``.

    Output: ``(D, 2 * D + GAP, 3)``, ``D = S * ceil(256 / S)`` (at least S).
    """

    def render(self, samples: Sequence[dict]) -> np.ndarray:
        from ..models.selfsup.plrc import resize_region_maps, sample_region_points
        sample = self._one(samples)
        model = self.model_cfg
        inputs, ds = sample['inputs'], sample['data_samples']
        if len(inputs) not in (2, 3) or 'region_masks' not in ds:
            raise ValueError('PLRCRenderer needs a GridRegionTwoView sample packed with '
                             "PackInputs(algorithm_keys=['region_masks', 'common_regions'])")
        inputs = inputs[:2]  # the contrasted views (a third one is the teacher crop)
        grid = int(model.get('grid_size', 4))
        num_ids = grid * grid
        resolution = int(model.get('resolution', 56))
        masks = as_numpy(ds.region_masks).astype(np.int64)
        common = (as_numpy(ds.common_regions).astype(bool) if 'common_regions' in ds else
                  np.logical_and.reduce(
                      [np.bincount(m.ravel(), minlength=num_ids) > 0 for m in masks]))
        factor = enlarge_factor(int(inputs[0].shape[-1]), MIN_SIDE)
        disp = int(inputs[0].shape[-1]) * factor

        maps = resize_region_maps(torch.as_tensor(masks)[None], resolution)
        pts = sample_region_points(maps[:, 0],
                                   maps[:, 1],
                                   num_ids,
                                   int(model.get('num_regions', 16)),
                                   int(model.get('num_points', 16)),
                                   generator=torch.Generator().manual_seed(self.seed))
        regions = pts.regions[0].tolist() if bool(pts.valid[0]) else []
        panels = []
        for v, (view, index) in enumerate(zip(inputs, (pts.index_q, pts.index_k))):
            img = enlarge(self.display.packed(view), factor)
            points = [((c % resolution + 0.5) * disp / resolution,
                       (c // resolution + 0.5) * disp / resolution, r)
                      for c, r in zip(index[0].tolist(), regions)]
            title = (f"view {v + 1} ({'online' if v == 0 else 'momentum'}) "
                     f'{int(common.sum())}/{num_ids} common')
            panels.append(
                draw_view(img, _nearest(masks[v], disp), common, region_palette(num_ids),
                          points, title))
        return hstack(panels, GAP)
