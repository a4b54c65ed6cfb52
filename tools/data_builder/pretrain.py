"""The train/val split of the sources and the ``pretrain/`` dataset (unlabeled photos: full views
plus random crops of the large ones, short side <= 256 px, and ``meta/train.txt``)."""
import math
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from .catalog import PRETRAIN_SHORT_SIDE, VAL_FRACTION
from .records import Photo, _save_jpeg


def split_by_group(items: Sequence, group_of: Callable[[object], str], key_of: Callable,
                   rng: np.random.Generator) -> Tuple[list, list]:
    """Splits items into disjoint train/val parts, ``VAL_FRACTION`` of every group to val.

    Groups with a single item go to train. The order inside each part is sorted by key.

    Args:
        items (Sequence): Items to split.
        group_of (Callable): Item -> group name (class, photo source...).
        key_of (Callable): Item -> unique sortable key.
        rng (np.random.Generator): Randomness.

    Returns:
        tuple[list, list]: Train items, val items.
    """
    groups: Dict[str, list] = defaultdict(list)
    for item in sorted(items, key=key_of):
        groups[group_of(item)].append(item)
    train, val = [], []
    for name in sorted(groups):
        members = groups[name]
        order = rng.permutation(len(members))
        n_val = max(1, round(len(members) * VAL_FRACTION)) if len(members) > 1 else 0
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return sorted(train, key=key_of), sorted(val, key=key_of)


def _fit_short_side(img: Image.Image, short: int) -> Image.Image:
    """Downscales so the short side is at most ``short`` (never upscales)."""
    scale = short / min(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def plan_pretrain(photos: List[Photo], num: int, rng: np.random.Generator) -> Dict[str, int]:
    """Decides how many random crops each photo adds on top of its full view.

    Every photo gives one full view; if that is not enough, the large photos (short side at
    least twice the output's) give extra crops, round-robin, until ``num`` images are planned.

    Args:
        photos (list[Photo]): Candidate photos, sorted by key.
        num (int): Number of images wanted.
        rng (np.random.Generator): Randomness.

    Returns:
        dict[str, int]: Photo key -> number of images (0 = unused).
    """
    order = [photos[i] for i in rng.permutation(len(photos))]
    plan = {p.key: 0 for p in photos}
    for photo in order[:num]:
        plan[photo.key] = 1
    extra = num - min(num, len(order))
    croppable = [p for p in order if p.crops and min(p.size()) >= 2 * PRETRAIN_SHORT_SIDE]
    if extra and not croppable:
        raise RuntimeError(f'only {len(photos)} photos and none large enough for crops: '
                           f'cannot make {num} pre-training images; lower --num-pretrain.')
    for i in range(extra):
        plan[croppable[i % len(croppable)].key] += 1
    return plan


def _random_crop_box(size: Tuple[int, int], rng: np.random.Generator,
                     min_side: int) -> Tuple[int, int, int, int]:
    """A random box covering 8-50 % of the image, aspect 3:4-4:3, short side >= min_side."""
    width, height = size
    area = rng.uniform(0.08, 0.5) * width * height
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w, h = math.sqrt(area * ratio), math.sqrt(area / ratio)
    grow = max(1.0, min_side / min(w, h))
    w, h = min(width, round(w * grow)), min(height, round(h * grow))
    x = int(rng.integers(0, width - w + 1))
    y = int(rng.integers(0, height - h + 1))
    return x, y, x + w, y + h


def build_pretrain(photos: List[Photo], num: int, seed: int, dest: Path) -> List[dict]:
    """Writes ``dest/train/<source>/*.jpg`` and ``dest/meta/train.txt``.

    Args:
        photos (list[Photo]): Photos to use (val backgrounds already removed).
        num (int): Number of images.
        seed (int): Random seed.
        dest (Path): Output folder (``pretrain``).

    Returns:
        list[dict]: Manifest records, one per written file.
    """
    photos = sorted(photos, key=lambda p: p.key)
    plan = plan_pretrain(photos, num, np.random.default_rng([seed, 1]))
    records = []
    for index, photo in enumerate(tqdm(photos, desc='pretrain', unit='photo')):
        count = plan[photo.key]
        if not count:
            continue
        img = photo.load(long_side=2048)
        rng = np.random.default_rng([seed, 2, index])
        group, name = photo.key.split('/', 1)
        for k in range(count):
            view, op = img, 'full view'
            if k:
                box = _random_crop_box(img.size, rng, PRETRAIN_SHORT_SIDE)
                view = img.crop(box)
                op = 'crop (fractions x0,y0,x1,y1) ' + ','.join(f'{v / s:.4f}'
                                                                for v, s in zip(box, img.size * 2))
            rel = f'{group}/{name}' + (f'_crop{k}' if k else '') + '.jpg'
            _save_jpeg(_fit_short_side(view, PRETRAIN_SHORT_SIDE), dest / 'train' / rel)
            note = f'{photo.note}; {op}' if photo.note else op
            records.append(
                dict(file=f'train/{rel}', operation=note, sources=[photo.source.to_json()]))
    (dest / 'meta').mkdir(parents=True, exist_ok=True)
    lines = sorted(r['file'][len('train/'):] for r in records)
    (dest / 'meta' / 'train.txt').write_text('\n'.join(lines) + '\n')
    return sorted(records, key=lambda r: r['file'])
