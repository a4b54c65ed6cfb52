"""What each method gets per step at equal budget: synthetic batches with the structure its data
pipeline produces (:func:`make_batch`) and the table's description of them
(:func:`describe_inputs`, :func:`online_pixels`)."""
import math
from typing import List

from .models import MCL_LIKE, NUM_CLASSES

SOCO_PROPOSALS = 4
DETCO_PATCHES = 9


def detco_patch_size(img: int) -> int:
    """DetCo's jigsaw patch side for global views of ``img`` px (64 px at 224)."""
    return max(8, round(64 * img / 224))


def montage_counts(batch: int, levels: int, name: str = 'mcl') -> List[int]:
    """Montages per level and branch: ``ceil(batch / 4^s)``; ``batch / [1, 4, 16, 32][s]``
    for ``mcl-official``."""
    if name == 'mcl-official':
        return [batch // d for d in (1, 4, 16, 32)[:levels]]
    return [math.ceil(batch / 4**s) for s in range(levels)]


def describe_inputs(name: str, img: int, batch: int, levels: int) -> str:
    """What one source image contributes to a step (the table's ``inputs`` column)."""
    if name in MCL_LIKE:
        return (f'2x{levels} views {img} px -> {2 * sum(montage_counts(batch, levels, name))} '
                f'montages {img} px / {batch} img (S={levels})')
    if name == 'mcl-sup':
        return (f'{levels} views {img} px -> {sum(montage_counts(batch, levels))} montages '
                f'{img} px / {batch} img (S={levels})')
    if name == 'soco':
        return f'views {img}/{img}/{img // 2} px, {SOCO_PROPOSALS} boxes each'
    if name == 'detco':
        p = detco_patch_size(img)
        return f'2 views {img} px + 2x{DETCO_PATCHES} patches {p} px'
    if name == 'plrc':
        return f'2 views {img} px + region maps {img // 4}x{img // 4}'
    if name == 'vanilla-sup':
        return f'1 view {img} px'
    return f'2 views {img} px'


def online_pixels(name: str, img: int, batch: int, levels: int) -> float:
    """Pixels per source image through the online backbone, in units of ``img^2``."""
    if name in MCL_LIKE:
        return 2 * sum(montage_counts(batch, levels, name)) / batch
    if name == 'mcl-sup':
        return sum(montage_counts(batch, levels)) / batch
    if name == 'soco':
        return 1 + 1 + (img // 2)**2 / img**2  # every view is an online (and a target) view
    if name == 'detco':
        return 1 + DETCO_PATCHES * detco_patch_size(img)**2 / img**2
    if name in ('plrc', 'mocov2', 'vanilla-sup'):
        return 1.
    return 2.  # byol: both views through the online network


def make_batch(name: str, model, batch: int, img: int, seed: int = 0) -> dict:
    """A ``train_step`` data dict with the structure the method's pipeline + collate give.

    Images are random uint8 (BGR, like ``LoadImageFromFile``), one stacked ``(B, 3, H, W)``
    tensor per view; data samples carry what the model reads (labels, SoCo's ``view_boxes``,
    PLRC's ``region_masks``).
    """
    import torch
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)

    def views(*sizes: int) -> List:
        return [torch.randint(0, 256, (batch, 3, s, s), generator=g, dtype=torch.uint8)
                for s in sizes]

    samples = [DataSample() for _ in range(batch)]
    if name in MCL_LIKE:
        inputs = views(*[img] * (2 * model.num_levels))
    elif name == 'mcl-sup':
        inputs = views(*[img] * model.num_levels)
        samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(batch)]
    elif name == 'vanilla-sup':
        inputs = views(img)[0]
        samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(batch)]
    elif name == 'soco':
        sizes = (img, img, img // 2)
        inputs = views(*sizes)
        for ds in samples:
            boxes = []
            for s in sizes:  # xyxy in the view's pixels, sides 30-90 % of the view
                wh = (0.3 + 0.6 * torch.rand(SOCO_PROPOSALS, 2, generator=g)) * s
                xy = torch.rand(SOCO_PROPOSALS, 2, generator=g) * (s - wh)
                boxes.append(torch.cat([xy, xy + wh], 1))
            ds.set_field(torch.stack(boxes), 'view_boxes')
    elif name == 'detco':
        p = detco_patch_size(img)
        inputs = views(img, img, *[p] * (2 * DETCO_PATCHES))
    elif name == 'plrc':
        inputs = views(img, img)
        n, r = model.grid_size, model.resolution
        cells = (torch.arange(r) + 0.5) / r
        for ds in samples:
            masks = []
            for _ in range(2):  # a crop of 50-100 % of the image side, like GridRegionTwoView
                side = 0.5 + 0.5 * torch.rand(1, generator=g)
                x0, y0 = (torch.rand(2, generator=g) * (1 - side)).tolist()
                rows = ((y0 + cells * side) * n).long().clamp(max=n - 1)
                cols = ((x0 + cells * side) * n).long().clamp(max=n - 1)
                masks.append((rows[:, None] * n + cols[None, :]).to(torch.uint8))
            ds.set_field(torch.stack(masks), 'region_masks')
    else:  # byol, mocov2
        inputs = views(img, img)
    return dict(inputs=inputs, data_samples=samples)
