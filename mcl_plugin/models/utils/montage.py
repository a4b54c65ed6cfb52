"""Montage assembly (MCL paper, Algorithm 1) and the batch component built on it."""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS

REMAINDER_RULES = ('pad', 'error')
MONTAGE_COUNTS = ('once', 'official')
#: Montages per level of the official recipe, as divisors of the batch: ``[B, B/4, B/16, B/32]``
#: (``configs/selfsup/MCL/MCL.py:43`` of GuoQiushan/MCL); level 3 shows every image twice.
OFFICIAL_DIVISORS = (1, 4, 16, 32)


def _randperm(n: int, generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    gen_device = generator.device if generator is not None else torch.device('cpu')
    return torch.randperm(n, generator=generator, device=gen_device).to(device)


def downsample(images: Tensor, level: int, mode: str = 'bilinear') -> Tensor:
    """Downsample ``(B, C, H, W)`` images by ``2**level`` (identity for level 0).

    Integer images are interpolated in float32 and rounded back to their dtype. Bilinear and
    bicubic use anti-aliasing, so a 2**s reduction averages over the covered pixels instead of
    sampling them.
    """
    if level == 0:
        return images
    ratio = 2**level
    size = (images.shape[-2] // ratio, images.shape[-1] // ratio)
    # Integer and reduced-precision images are resized in float32 (CPU kernels lack
    # anti-aliased bfloat16/half), then cast back.
    x = images if images.dtype in (torch.float32, torch.float64) else images.float()
    kwargs = dict(align_corners=False, antialias=True) if mode in ('bilinear', 'bicubic') else {}
    out = F.interpolate(x, size=size, mode=mode, **kwargs)
    if not images.is_floating_point():
        info = torch.iinfo(images.dtype)
        out = out.round().clamp(info.min, info.max)
    return out.to(images.dtype)


def assemble_montage(images: Tensor,
                     level: int,
                     generator: Optional[torch.Generator] = None,
                     remainder: str = 'pad',
                     mode: str = 'bilinear',
                     shuffle: bool = True,
                     num_montages: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Assemble ``(B, C, H, W)`` images into montages of ``2**level x 2**level`` tiles.

    Images are downsampled by ``r = 2**level``, shuffled and tiled row-major: tile ``(i, j)`` of
    montage ``m`` holds source image ``src_index[m, i, j]`` and covers pixels
    ``[i*H/r, (i+1)*H/r) x [j*W/r, (j+1)*W/r)``. Algorithm 1 of the paper, with its last reshape
    fixed to ``(B // r**2, C, H, W)``. Level 0 returns the shuffled batch.

    Batch sizes that are not a multiple of ``r**2`` (the documented remainder rule):
    ``remainder='pad'`` (default) completes the last montage with tiles of images drawn again
    from the batch (the first images of the shuffled order, cycling if the batch is smaller than
    one montage). No image is dropped: every image appears at least once, and a repeated tile
    keeps its real source index, so it is a positive of its own image. ``remainder='error'``
    raises instead.

    Args:
        images (Tensor): ``(B, C, H, W)`` batch, any device and dtype; ``H`` and ``W`` must be
            divisible by ``2**level``.
        level (int): Downsampling level ``s >= 0``.
        generator (torch.Generator, optional): Source of the shuffle.
        remainder (str): ``'pad'`` or ``'error'``, see above.
        mode (str): Interpolation mode of the downsampling. Defaults to ``'bilinear'``.
        shuffle (bool): Shuffle before tiling (the paper's recipe). ``False`` tiles images in
            batch order, which makes montages independent of how a global batch is split over
            ranks (used to test distributed equivalence). Defaults to True.
        num_montages (int, optional): Official-code rule (``random_combine_img``,
            ``openselfsup/models/mcl.py:81-101`` of GuoQiushan/MCL): exactly this many montages,
            filled from ``randperm(num_montages * 4**level) mod B`` (with 2x more tiles than
            images each image appears twice). ``remainder`` is not used. Defaults to None (the
            ``ceil(B / 4**level)`` rule above).

    Returns:
        tuple[Tensor, Tensor]: ``montages`` of shape ``(M, C, H, W)`` and ``src_index`` (long,
        same device) of shape ``(M, 2**level, 2**level)``, ``M = ceil(B / 4**level)`` or
        ``num_montages``.
    """
    if images.dim() != 4:
        raise ValueError(f'assemble_montage expects (B, C, H, W) images, got {tuple(images.shape)}')
    if level < 0:
        raise ValueError(f'level must be >= 0, got {level}')
    if remainder not in REMAINDER_RULES:
        raise ValueError(f'remainder must be one of {REMAINDER_RULES}, got {remainder!r}')
    B, C, H, W = images.shape
    r = 2**level
    if H % r or W % r:
        raise ValueError(f'image size {H}x{W} is not divisible by the level-{level} ratio {r}; '
                         'use crops whose size is a multiple of 2**(num_levels-1)')
    n = r * r
    if num_montages is not None:
        if num_montages < 1:
            raise ValueError(f'level {level} needs at least one montage, got num_montages='
                             f'{num_montages}')
        count = num_montages * n
        perm = _randperm(count, generator, images.device) if shuffle else torch.arange(
            count, device=images.device)
        perm = torch.fmod(perm, B)
    else:
        num_montages = math.ceil(B / n)
        if num_montages * n != B and remainder == 'error':
            raise ValueError(f'batch of {B} images does not fill level-{level} montages of {n} '
                             "tiles; use a batch size divisible by 4**level or remainder='pad'")
        perm = _randperm(B, generator, images.device) if shuffle else torch.arange(
            B, device=images.device)
        if num_montages * n != B:
            perm = perm.repeat(math.ceil(num_montages * n / B))[:num_montages * n]
    src_index = perm.view(num_montages, r, r)
    tiles = downsample(images, level, mode)[perm]
    h, w = H // r, W // r
    montages = tiles.view(num_montages, r, r, C, h, w).permute(0, 3, 1, 4, 2, 5)
    return montages.reshape(num_montages, C, H, W), src_index


@dataclass
class MontageBatch:
    """Montages of all levels of one view branch, with per-tile metadata.

    Tiles are enumerated level by level, montage by montage, row-major inside a montage; every
    per-tile tensor below follows that order (the order of
    :class:`~mcl_plugin.models.utils.TilePooler`'s output). A batch knows where its montages sit
    in the feature batch of a joint backbone pass (``start``, see :func:`joint_montages`), so its
    tile RoIs index those feature maps directly.

    Attributes:
        montages (list[Tensor]): ``montages[s]`` is ``(M_s, C, H, W)``.
        src_index (list[Tensor]): ``src_index[s]`` is ``(M_s, 2**s, 2**s)``.
        src (Tensor): ``(T,)`` source image of every tile (index into the input batch).
        level (Tensor): ``(T,)`` level of every tile.
        montage (Tensor): ``(T,)`` index of the montage inside its level.
        row (Tensor): ``(T,)`` tile row.
        col (Tensor): ``(T,)`` tile column.
        boxes (Tensor): ``(T, 4)`` float ``x1, y1, x2, y2`` pixel box of the tile in its montage.
        num_images (int): batch size ``B`` of the input views.
        num_padded (list[int]): tiles added by the remainder rule at each level.
        start (int): Row of the first montage in the joint feature batch. Defaults to 0.
        montage_offsets (list[int]): Row of the first montage of each level in the joint feature
            batch (derived).
        tile_offsets (list[int]): Index of the first tile of each level (derived).
        rois (Tensor): ``(T, 5)`` ``row, x1, y1, x2, y2`` tile RoIs on the joint feature batch
            (derived).
    """
    montages: List[Tensor]
    src_index: List[Tensor]
    src: Tensor
    level: Tensor
    montage: Tensor
    row: Tensor
    col: Tensor
    boxes: Tensor
    num_images: int
    num_padded: List[int] = field(default_factory=list)
    start: int = 0
    montage_offsets: List[int] = field(init=False)
    tile_offsets: List[int] = field(init=False)
    rois: Tensor = field(init=False)

    def __post_init__(self) -> None:
        counts = [m.shape[0] for m in self.montages]
        self.montage_offsets = [self.start + sum(counts[:s]) for s in range(len(counts))]
        tiles = [i.numel() for i in self.src_index]
        self.tile_offsets = [sum(tiles[:s]) for s in range(len(tiles) + 1)]
        first = torch.tensor(self.montage_offsets, device=self.level.device)[self.level]
        self.rois = torch.cat([(first + self.montage)[:, None].to(self.boxes.dtype), self.boxes],
                              dim=1)

    @property
    def num_levels(self) -> int:
        return len(self.montages)

    @property
    def num_montages(self) -> int:
        """Montages of all levels (rows this batch takes in the joint feature batch)."""
        return sum(m.shape[0] for m in self.montages)

    def first_levels(self, num_levels: int, start: int = 0) -> 'MontageBatch':
        """The batch cut to levels ``[0, num_levels)`` (a prefix of the tile order), its
        montages placed from row ``start`` of a joint feature batch."""
        n = self.tile_offsets[num_levels]
        return MontageBatch(
            montages=self.montages[:num_levels],
            src_index=self.src_index[:num_levels],
            src=self.src[:n],
            level=self.level[:n],
            montage=self.montage[:n],
            row=self.row[:n],
            col=self.col[:n],
            boxes=self.boxes[:n],
            num_images=self.num_images,
            num_padded=self.num_padded[:num_levels],
            start=start)

    def level_slice(self, level: int) -> slice:
        """Slice of the tile axis that holds the tiles of ``level``."""
        return slice(self.tile_offsets[level], self.tile_offsets[level + 1])

    def montage_rows(self, level: int) -> slice:
        """Rows of the montages of ``level`` in the joint feature batch."""
        start = self.montage_offsets[level]
        return slice(start, start + self.montages[level].shape[0])


def joint_montages(batches: Sequence[MontageBatch]) -> Tensor:
    """Montages of every level of every batch, concatenated for one backbone pass.

    Checks that each batch's ``start`` is the row its montages land on, i.e. that the batches
    were assembled with consecutive ``start`` values (:meth:`MontageAssembler.forward`).
    """
    start = 0
    for i, b in enumerate(batches):
        if b.start != start:
            raise ValueError(f'batch {i} was assembled with start={b.start} but its montages '
                             f'begin at row {start} of the joint batch')
        start += b.num_montages
    return torch.cat([m for b in batches for m in b.montages])


@MODELS.register_module()
class MontageAssembler(BaseModule):
    """Builds the montages of every level from per-level augmented views.

    Each level gets its own independently augmented full-size view of every image (the
    per-sample pipeline produces them); level ``s`` is downsampled by ``2**s``, shuffled and
    tiled by :func:`assemble_montage`.

    Args:
        remainder (str): Remainder rule of :func:`assemble_montage`. Defaults to ``'pad'``.
        mode (str): Downsampling interpolation: ``'bilinear'`` (default, anti-aliased) or the
            official code's ``'nearest'`` (``F.interpolate`` defaults, ``mcl.py:89``).
        shuffle (bool): See :func:`assemble_montage`. Defaults to True.
        montage_counts (str): ``'once'`` (default): ``ceil(B / 4**s)`` montages per level, every
            image once, level 0 shuffled too. ``'official'``: ``B / [1, 4, 16, 32][s]`` montages
            (:data:`OFFICIAL_DIVISORS`, level 3 holds every image twice), level 0 is the
            un-shuffled batch (``mcl.py:122-139``).
    """

    def __init__(self, remainder: str = 'pad', mode: str = 'bilinear',
                 shuffle: bool = True, montage_counts: str = 'once') -> None:
        super().__init__()
        if remainder not in REMAINDER_RULES:
            raise ValueError(f'remainder must be one of {REMAINDER_RULES}, got {remainder!r}')
        if montage_counts not in MONTAGE_COUNTS:
            raise ValueError(f'montage_counts must be one of {MONTAGE_COUNTS}, '
                             f'got {montage_counts!r}')
        self.remainder = remainder
        self.mode = mode
        self.shuffle = shuffle
        self.montage_counts = montage_counts

    def forward(self,
                views: Sequence[Tensor],
                generator: Optional[torch.Generator] = None,
                start: int = 0) -> MontageBatch:
        """Assemble level ``s`` from ``views[s]`` (each ``(B, C, H, W)``).

        Args:
            views (Sequence[Tensor]): One ``(B, C, H, W)`` view per level.
            generator (torch.Generator, optional): Source of the shuffles.
            start (int): Row of the batch's first montage in the joint backbone batch (the
                montage count of the batches before it, see :func:`joint_montages`).
        """
        if len(views) == 0:
            raise ValueError('MontageAssembler needs at least one view (level 0)')
        B, _, H, W = views[0].shape
        montages, src_index, meta, padded = [], [], [], []
        for s, view in enumerate(views):
            if view.shape != views[0].shape:
                raise ValueError(f'view of level {s} has shape {tuple(view.shape)}, expected '
                                 f'{tuple(views[0].shape)}: all levels need same-size views')
            if self.montage_counts == 'official':
                count = B // OFFICIAL_DIVISORS[s]
                if count < 1:
                    raise ValueError(
                        f"montage_counts='official' gives level {s} B / {OFFICIAL_DIVISORS[s]} "
                        f'montages: a batch of {B} images per process leaves it without one; '
                        f'use at least {OFFICIAL_DIVISORS[s]} images per process')
                m, idx = assemble_montage(view, s, generator, mode=self.mode,
                                          shuffle=self.shuffle and s > 0, num_montages=count)
            else:
                m, idx = assemble_montage(view, s, generator, self.remainder, self.mode,
                                          self.shuffle)
            montages.append(m)
            src_index.append(idx)
            padded.append(idx.numel() - B)
            r = 2**s
            grid_m, grid_i, grid_j = torch.meshgrid(
                torch.arange(m.shape[0]), torch.arange(r), torch.arange(r), indexing='ij')
            meta.append((torch.full((idx.numel(), ), s), grid_m.flatten(), grid_i.flatten(),
                         grid_j.flatten(), H / r, W / r))
        device = views[0].device
        level = torch.cat([x[0] for x in meta]).to(device)
        montage = torch.cat([x[1] for x in meta]).to(device)
        row = torch.cat([x[2] for x in meta]).to(device)
        col = torch.cat([x[3] for x in meta]).to(device)
        th = torch.cat([torch.full((len(x[0]), ), x[4]) for x in meta]).to(device)
        tw = torch.cat([torch.full((len(x[0]), ), x[5]) for x in meta]).to(device)
        boxes = torch.stack([col * tw, row * th, (col + 1) * tw, (row + 1) * th], dim=1)
        return MontageBatch(
            montages=montages,
            src_index=src_index,
            src=torch.cat([i.flatten() for i in src_index]),
            level=level,
            montage=montage,
            row=row,
            col=col,
            boxes=boxes.float(),
            num_images=B,
            num_padded=padded,
            start=start)
