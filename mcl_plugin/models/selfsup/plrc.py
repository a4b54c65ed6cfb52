"""PLRC: Point-Level Region Contrast for object detection pre-training (Bai et al., CVPR 2022).

Written from the paper; the distillation teacher follows the behaviour of the official code
(facebookresearch/PLRC, CC-BY-NC: read, not copied). See ``configs/plrc/README.md``.
"""
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..utils.ema import MomentumEncoder
from ..utils.queue import NegativeQueue


class RegionPoints(NamedTuple):
    """Points sampled by :func:`sample_region_points` (``M = N * P`` per image).

    Attributes:
        index_q (Tensor): ``(B, M)`` flat cell index ``y * R + x`` in view v's ``R x R`` map.
        index_k (Tensor): ``(B, M)`` the same in view v'.
        regions (Tensor): ``(B, M)`` region indicator ``a_i`` (shared by both views).
        valid (Tensor): ``(B,)`` bool, the views share at least one region.
        common (Tensor): ``(B, G)`` bool, regions present in both views.
    """

    index_q: Tensor
    index_k: Tensor
    regions: Tensor
    valid: Tensor
    common: Tensor


def sample_region_points(map_q: Tensor,
                         map_k: Tensor,
                         num_ids: int,
                         num_regions: int = 16,
                         num_points: int = 16,
                         generator: Optional[torch.Generator] = None) -> RegionPoints:
    """Sample ``N`` common regions (with repetition) and ``P`` points in each, in both views.

    A region is *valid* when it covers at least one cell of both ``R x R`` region maps. Regions
    are drawn uniformly among the valid ones with replacement (Sec. 3.2); points are drawn
    uniformly, with replacement, among the cells of their region, independently in each view, so
    every point lies inside its region. Images without a common region get placeholder points
    and ``valid=False`` (their points are skipped, Sec. 4.1).

    Args:
        map_q (Tensor): ``(B, R, R)`` integer region ids of view v at the feature resolution.
        map_k (Tensor): ``(B, R, R)`` the same for view v'.
        num_ids (int): Number of region ids ``G`` (``n * n``).
        num_regions (int): ``N``.
        num_points (int): ``P``.
        generator (torch.Generator, optional): Random generator (tests).
    """
    b = map_q.shape[0]
    flat_q, flat_k = map_q.flatten(1).long(), map_k.flatten(1).long()
    if flat_q.numel() and (max(int(flat_q.max()), int(flat_k.max())) >= num_ids
                           or min(int(flat_q.min()), int(flat_k.min())) < 0):
        raise ValueError(f'region ids must be in [0, {num_ids}); check grid_size of the model '
                         'against the data pipeline')
    ones = torch.ones_like(flat_q, dtype=torch.float)
    count_q = ones.new_zeros(b, num_ids).scatter_add_(1, flat_q, ones)
    count_k = ones.new_zeros(b, num_ids).scatter_add_(1, flat_k, ones)
    common = (count_q > 0) & (count_k > 0)
    valid = common.any(1)
    weights = torch.where(valid[:, None], common.float(), torch.ones_like(count_q))
    regions = torch.multinomial(weights, num_regions, replacement=True, generator=generator)

    def points_in(flat: Tensor) -> Tensor:
        inside = (flat[:, None, :] == regions[:, :, None]).float().flatten(0, 1)
        inside[inside.sum(1) == 0] = 1.  # only for invalid images (placeholders)
        idx = torch.multinomial(inside, num_points, replacement=True, generator=generator)
        return idx.view(b, num_regions * num_points)

    return RegionPoints(points_in(flat_q), points_in(flat_k),
                        regions.repeat_interleave(num_points, dim=1), valid, common)


def gather_points(feat: Tensor, index: Tensor) -> Tensor:
    """``(B, D, R, R)`` map, ``(B, M)`` flat cell indices -> ``(B, M, D)`` point features."""
    flat = feat.flatten(2)
    return flat.gather(2, index[:, None, :].expand(-1, flat.shape[1], -1)).transpose(1, 2)


def colocated_grid(index: Tensor, size: int, boxes: Optional[Tensor] = None,
                   flips: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Where the centres of cells of view v lie in another view of the same image.

    Cell ``(y, x)`` of view v's ``R x R`` map has view coordinates ``u = (x + 0.5) / R``,
    ``w = (y + 0.5) / R`` (``u -> 1 - u`` when v is flipped), i.e. image pixel
    ``(x1 + u (x2 - x1), y1 + w (y2 - y1))`` of v's crop box (the centre-aligned convention of
    :func:`~mcl_plugin.datasets.transforms.geometry.crop_resize_flip_nearest`); the inverse
    map of the other view's box and flip gives its view coordinates.

    Args:
        index (Tensor): ``(B, M)`` flat cell indices ``y * R + x`` in view v.
        size (int): ``R``.
        boxes (Tensor, optional): ``(B, 2, 4)`` crop boxes ``x1, y1, x2, y2`` of view v and of
            the other view; None = the other view is view v itself.
        flips (Tensor, optional): ``(B, 2)`` horizontal flips of the two views.

    Returns:
        tuple[Tensor, Tensor]: ``(B, M, 2)`` ``(x, y)`` in ``[-1, 1]`` for
        ``grid_sample(align_corners=False)``, and ``(B, M)`` bool, inside the other view.
    """
    uv = torch.stack([index % size, index // size], -1).float().add_(0.5).div_(size)
    if boxes is not None:
        boxes, flips = boxes.float(), flips.bool()
        u = torch.where(flips[:, :1], 1 - uv[..., 0], uv[..., 0])
        lo, hi = boxes[:, None, 0, :2], boxes[:, None, 0, 2:]
        pix = lo + torch.stack([u, uv[..., 1]], -1) * (hi - lo)
        lo, hi = boxes[:, None, 1, :2], boxes[:, None, 1, 2:]
        uv = (pix - lo) / (hi - lo)
        uv[..., 0] = torch.where(flips[:, 1:], 1 - uv[..., 0], uv[..., 0])
    inside = ((uv >= 0) & (uv <= 1)).all(-1)
    return uv * 2 - 1, inside


def resize_region_maps(maps: Tensor, size: int) -> Tensor:
    """Centre-aligned nearest resampling of ``(..., H, W)`` integer maps to ``size x size``."""
    h, w = maps.shape[-2:]
    if (h, w) == (size, size):
        return maps
    ys = ((torch.arange(size, device=maps.device) + 0.5) * h / size).long().clamp_(max=h - 1)
    xs = ((torch.arange(size, device=maps.device) + 0.5) * w / size).long().clamp_(max=w - 1)
    return maps[..., ys[:, None], xs[None, :]]


@MODELS.register_module()
class PLRC(BaseSelfSupervisor):
    """Point-level region contrast on asymmetric MoCo v2.

    View v (``inputs[0]``) goes through the online encoder f^E (``backbone``), view v'
    (``inputs[1]``) through the momentum encoder f^M (``target_net``, a
    :class:`MomentumEncoder` of ``backbone``, ``neck`` and ``projector``); there is no
    symmetrized second term. From the last
    backbone stage:

    - ``neck`` (MoCo v2's ``MoCoV2Neck``: average pool + MLP) gives the image embeddings
      ``z``/``z'`` of the MoCo loss ``L_m``;
    - ``projector`` (:class:`~mcl_plugin.models.necks.PLRCDenseNeck`, the same MLP as 1x1
      convolutions, separate weights) gives a dense embedding map, bilinearly up-sampled
      (``align_corners=False``) to ``resolution x resolution`` (R);
    - ``N`` regions common to both views and ``P`` points per region and view are drawn on the
      region maps of the data pipeline (:class:`~mcl_plugin.datasets.transforms.
      GridRegionTwoView`, packed as ``data_samples[i].region_masks``, resampled to R x R with
      centre-aligned nearest sampling when needed); the point embeddings are read from the
      cells, and the losses are computed by the head
      (:class:`~mcl_plugin.models.heads.PLRCHead`: ``L_c``, ``L_a``, ``L_m``).

    The MoCo queue of image keys is ``queues['image']`` (a :class:`NegativeQueue`); as in
    DetCo, the head reads it as it was before the step, then the step's normalised keys of all
    ranks are enqueued.

    The distillation student is ``A_{ik'}`` (online query points vs momentum key points) and
    the teacher ``A_{i'k'}`` (a momentum point vs the same keys); the reasoning for this reading
    of the paper's Eqs. 3-4 is in
    :func:`~mcl_plugin.models.heads.plrc_head.point_affinity_distillation`. The teacher's
    point ``p'_i`` (``teacher``):

    - ``'co_located'`` (default, the official code): the momentum encoder at the **same image
      position** as the student point, on a third view of the image (``inputs[2]``, the
      ``teacher_view`` of the pipeline; the point's position is mapped with the packed
      ``crop_boxes`` / ``flips``, :func:`colocated_grid`, and the dense map is sampled
      bilinearly; rows whose position falls outside that view are left out of ``L_a``), or,
      with two views, on view v itself (the paper's strategy 3; an extra momentum pass). It is
      never one of the keys.
    - ``'sampled_point'``: the momentum key point with the same index (same region, sampled
      independently in view v'). It *is* one of the keys, so the teacher is nearly one-hot on
      it until same-region keys become similar (numbers in ``configs/plrc/README.md``).

    The distillation ``L_a`` is switched by :meth:`set_distillation`, normally from
    :class:`~mcl_plugin.engine.hooks.PLRCDistillWarmupHook` (paper: off for 30 epochs). Without
    that hook it is on from the first iteration.

    Args:
        backbone (dict): e.g. ``mmdet.ResNet`` with ``out_indices=(3,)``.
        neck (dict): Image-level projector, ``MoCoV2Neck``.
        projector (dict): Dense projector, ``PLRCDenseNeck``.
        head (dict): ``PLRCHead``.
        grid_size (int): ``n`` of the region grid; must match the pipeline. Defaults to 4.
        num_regions (int): ``N`` regions per image. Defaults to 16.
        num_points (int): ``P`` points per region. Defaults to 16.
        resolution (int): ``R``; 56 (the Table 3f default; Sec. 4.1 says 64).
        queue_len (int): MoCo queue length (MoCo v2: 65536).
        feat_dim (int): Image embedding width (the neck's output, 128).
        momentum (float): EMA momentum in mmengine's convention
            ``target = (1 - m) * target + m * online``; MoCo v2's 0.999 is ``0.001``.
        shuffle_bn (bool): MoCo's batch shuffle across GPUs for the momentum forward (a no-op
            on a single process). Defaults to True.
        teacher (str): ``'co_located'`` (default) or ``'sampled_point'``, see above.
        pretrained (str, optional): Checkpoint of the backbone.
        data_preprocessor (dict, optional): ``SelfSupDataPreprocessor`` config.
        init_cfg (dict, optional): Initialization config.
    """

    TEACHERS = ('co_located', 'sampled_point')

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 projector: dict,
                 head: dict,
                 grid_size: int = 4,
                 num_regions: int = 16,
                 num_points: int = 16,
                 resolution: int = 56,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 shuffle_bn: bool = True,
                 teacher: str = 'co_located',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if teacher not in self.TEACHERS:
            raise ValueError(f'teacher must be one of {self.TEACHERS}, got {teacher!r}')
        super().__init__(backbone=backbone,
                         neck=neck,
                         head=head,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.projector = MODELS.build(projector)
        self.teacher = teacher
        self.grid_size = grid_size
        self.num_regions = num_regions
        self.num_points = num_points
        self.resolution = resolution
        self.shuffle_bn = shuffle_bn
        self.distill_active = True
        self.target_net = MomentumEncoder(self.online_modules(), momentum)
        self.queues = nn.ModuleDict(dict(image=NegativeQueue(queue_len, feat_dim)))

    def online_modules(self) -> Dict[str, nn.Module]:
        """Modules mirrored by the momentum encoder (``target_net.module.<name>``)."""
        return dict(backbone=self.backbone, neck=self.neck, projector=self.projector)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Also read checkpoints written while the head held the queue (``head.queue.*``)."""
        for key in [k for k in state_dict if k.startswith(prefix + 'head.queue.')]:
            new = prefix + 'queues.image.' + key[len(prefix + 'head.queue.'):]
            state_dict[new] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def set_distillation(self, active: bool) -> None:
        """Enable or disable the affinity distillation ``L_a`` (warm-up)."""
        self.distill_active = bool(active)

    def encode(self, modules: Mapping[str, nn.Module], images: Tensor) -> Tuple[Tensor, Tensor]:
        """``(image embeddings (B, D), dense map (B, D, R, R))`` of one encoder."""
        feats = modules['backbone'](images)
        dense = modules['projector'](feats)[0]
        dense = F.interpolate(dense,
                              size=(self.resolution, self.resolution),
                              mode='bilinear',
                              align_corners=False)
        return modules['neck'](feats)[0], dense

    def encode_momentum(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """Momentum encoder on view v' (after the EMA update), with MoCo's shuffle BN."""
        self.target_net.update_parameters(self.online_modules())
        return self.target_net(self.encode, images, shuffle_bn=self.shuffle_bn)

    def colocated_teacher(self, inputs: List[Tensor], data_samples: List[DataSample],
                          index_q: Tensor) -> Tuple[Tensor, Tensor]:
        """Momentum embeddings at the image positions of view v's points (``'co_located'``).

        Returns:
            tuple[Tensor, Tensor]: ``(B, M, D)`` teacher points and ``(B, M)`` bool, visible
            in the teacher view.
        """
        boxes = flips = None
        if len(inputs) == 3:
            if 'crop_boxes' not in data_samples[0] or 'flips' not in data_samples[0]:
                raise KeyError('a teacher view needs data_samples[i].crop_boxes and .flips: '
                               "PackInputs(algorithm_keys=[..., 'crop_boxes', 'flips'])")
            boxes = torch.stack([torch.as_tensor(ds.crop_boxes)[[0, 2]] for ds in data_samples])
            flips = torch.stack([torch.as_tensor(ds.flips)[[0, 2]] for ds in data_samples])
            boxes, flips = boxes.to(index_q.device), flips.to(index_q.device)
        grid, seen = colocated_grid(index_q, self.resolution, boxes, flips)
        dense = self.target_net(self.encode, inputs[-1 if boxes is not None else 0],
                                shuffle_bn=self.shuffle_bn)[1]
        feat = F.grid_sample(dense, grid[:, :, None].to(dense.dtype), mode='bilinear',
                             align_corners=False)
        return feat[..., 0].transpose(1, 2), seen

    def region_maps(self, data_samples: List[DataSample], device: torch.device) -> Tensor:
        """``(B, 2, R, R)`` region ids of both views from ``data_samples[i].region_masks``."""
        if not data_samples or 'region_masks' not in data_samples[0]:
            raise KeyError('PLRC needs data_samples[i].region_masks: use GridRegionTwoView and '
                           "PackInputs(algorithm_keys=['region_masks', ...]) in the pipeline")
        maps = torch.stack([torch.as_tensor(ds.region_masks) for ds in data_samples])
        return resize_region_maps(maps.to(device=device, dtype=torch.long), self.resolution)

    def sample_points(self,
                      maps: Tensor,
                      generator: Optional[torch.Generator] = None) -> RegionPoints:
        """:func:`sample_region_points` with this model's ``N``, ``P`` and grid."""
        return sample_region_points(maps[:, 0], maps[:, 1], self.grid_size**2, self.num_regions,
                                    self.num_points, generator)

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """PLRC losses; see the class docstring and :class:`PLRCHead`."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError('PLRC needs two views per image, optionally a teacher view '
                             '(GridRegionTwoView)')
        maps = self.region_maps(data_samples, inputs[0].device)
        z, dense = self.encode(self.online_modules(), inputs[0])
        z_k, dense_k = self.encode_momentum(inputs[1])
        pts = self.sample_points(maps)
        valid = pts.valid
        query = gather_points(dense, pts.index_q)[valid]  # (B_v, M, D)
        key = gather_points(dense_k, pts.index_k)[valid]
        if self.teacher == 'co_located':
            teacher, seen = self.colocated_teacher(inputs, data_samples, pts.index_q)
            teacher, seen = teacher[valid].flatten(0, 1), seen[valid].flatten()
        else:
            teacher, seen = key.flatten(0, 1), None
        image_ids = torch.arange(query.shape[0],
                                 device=query.device)[:, None].expand(-1, query.shape[1])
        losses = self.head.loss(z,
                                z_k,
                                self.queues['image'].negatives(),
                                query.flatten(0, 1),
                                key.flatten(0, 1),
                                image_ids.flatten(),
                                pts.regions[valid].flatten(),
                                distill=self.distill_active,
                                teacher_query=teacher,
                                teacher_valid=seen)
        self.queues['image'].enqueue(F.normalize(z_k, dim=1))
        losses['common_regions'] = pts.common.sum(1).float().mean()
        losses['valid_images'] = valid.float().mean()
        if seen is not None and seen.numel():
            losses['teacher_visible'] = seen.float().mean()
        return losses
