#!/usr/bin/env python
"""Side-by-side measurement of proposal generators against ground-truth boxes.

For every generator, on the same images of a COCO instances file, one process, one OpenCV
thread, generators interleaved image by image (a change of machine load hits all alike):
seconds per image (selective search only, image decoding excluded), images/s, boxes per
image before and after SoCo's filters (official chain: aspect + size, then aspect only, then
sides >= 32 only, then the whole image; ``--no-side-fallback`` drops the third stage), how many
of the filtered boxes are distinct, and object recall at IoU >= 0.5 of the ground-truth boxes,
by all raw boxes and by the filtered boxes. ``recall filt. (in range)`` restricts the ground
truth to objects whose own size passes the filters (the only objects a filtered proposal can
match). ``ann_file`` may also be an image list (``.txt``, one path per line relative to
``img_dir``): boxes and time only, recall ``n/a``.

Generators are written ``KIND:key=value,...``:

* ``official:scale=300,sigma=0.9,min_size=100`` -- SoCo's own selective search
  (``tools/proposals/official.py``, the boxes of hologerry/SoCo's ``selective_search/``),
  full resolution (``max_side`` for a smaller copy); given the RGB of the decoded image;
* ``python:scale=300,sigma=0.9,min_size=100`` -- the PyPI ``selectivesearch`` 0.4 that SoCo's
  copy modifies (texture histograms binned on 0-1 instead of 0-255), with SoCo's settings;
* ``opencv:mode=fast,max_side=320`` -- OpenCV contrib ``ximgproc`` (modes fast / quality /
  single; ``base_k``, ``inc_k``, ``sigma``, ``max_side``).

Example (the table of configs/soco/README.md, "Proposals")::

    python tools/analysis/compare_proposals.py data/objects_coco/annotations/instances_val.json \\
        data/objects_coco/val --num-images 50 --out work_dirs/proposals_compare.json
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

DEFAULT_METHODS = (
    'official:scale=300,sigma=0.9,min_size=100',
    'python:scale=300,sigma=0.9,min_size=100',
    'opencv:mode=fast',
    'opencv:mode=fast,max_side=320',
    'opencv:mode=fast,max_side=256',
    'opencv:mode=single',
    'opencv:mode=single,base_k=100',
)


def parse_method(spec: str) -> Tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """``KIND:key=value,...`` -> (label, function(BGR image) -> xywh boxes)."""
    from tools.proposals import (OfficialSearchConfig, SelectiveSearchConfig,
                                 official_selective_search, opencv_selective_search,
                                 python_selective_search)
    kind, _, rest = spec.partition(':')
    kwargs: Dict[str, object] = {}
    for item in filter(None, rest.split(',')):
        key, _, value = item.partition('=')
        try:
            kwargs[key] = int(value)
        except ValueError:
            try:
                kwargs[key] = float(value)
            except ValueError:
                kwargs[key] = value
    if kind == 'official':
        ocfg = OfficialSearchConfig(**kwargs)
        return spec, lambda img: official_selective_search(
            np.ascontiguousarray(img[:, :, ::-1]), ocfg)
    if kind == 'python':
        return spec, lambda img: python_selective_search(img, **kwargs)
    if kind == 'opencv':
        cfg = SelectiveSearchConfig(**kwargs)
        return spec, lambda img: opencv_selective_search(img, cfg)
    raise ValueError(f'unknown generator kind {kind!r} in {spec!r} (official | python | opencv)')


def load_gt(ann_file: str, num_images: int) -> List[Tuple[str, np.ndarray]]:
    """``(file_name, gt xywh)`` of the first ``num_images`` images by name; an image list
    (``.txt``) gives no ground truth."""
    if ann_file.endswith('.txt'):
        with open(ann_file, encoding='utf-8') as f:
            names = sorted(line.split()[0] for line in f if line.strip())
        return [(n, np.zeros((0, 4), np.float32)) for n in names[:num_images]]
    with open(ann_file, encoding='utf-8') as f:
        coco = json.load(f)
    boxes: Dict[int, list] = {}
    for ann in coco['annotations']:
        if not ann.get('iscrowd', 0):
            boxes.setdefault(ann['image_id'], []).append(ann['bbox'])
    images = sorted(coco['images'], key=lambda im: im['file_name'])[:num_images]
    return [(im['file_name'], np.asarray(boxes.get(im['id'], []), np.float32).reshape(-1, 4))
            for im in images]


class Tally:
    """Running totals of one generator."""

    def __init__(self) -> None:
        self.seconds, self.raw_n, self.fin_n, self.uniq_n = [], [], [], []
        self.fallbacks = self.gt_n = self.rec_raw = self.rec_fin = 0
        self.gt_in_range = self.rec_in_range = 0

    def add(self, seconds: float, raw: np.ndarray, gt: np.ndarray, size: Tuple[int, int],
            filt) -> None:
        from tools.proposals import count_recalled
        w, h = size
        boxes, fallback, _ = filt.apply(raw, w, h)
        in_range = gt[filt.mask(gt, w, h)]
        self.seconds.append(seconds)
        self.raw_n.append(len(raw))
        self.fin_n.append(len(boxes))
        self.uniq_n.append(len(np.unique(np.round(boxes, 1), axis=0)))
        self.fallbacks += fallback != 'none'
        self.gt_n += len(gt)
        self.gt_in_range += len(in_range)
        self.rec_raw += count_recalled(raw, gt)
        self.rec_fin += count_recalled(boxes, gt)
        self.rec_in_range += count_recalled(boxes, in_range)

    def row(self) -> dict:
        s = float(np.mean(self.seconds))
        return dict(seconds_per_image=round(s, 4),
                    images_per_second=round(1 / s, 2),
                    boxes_raw=round(float(np.mean(self.raw_n)), 1),
                    boxes_filtered=round(float(np.mean(self.fin_n)), 1),
                boxes_filtered_unique=round(float(np.mean(self.uniq_n)), 1),
                    fallback_images=self.fallbacks,
                    recall_raw=round(self.rec_raw / max(self.gt_n, 1), 4),
                    recall_filtered=round(self.rec_fin / max(self.gt_n, 1), 4),
                    recall_filtered_in_range=round(self.rec_in_range / max(self.gt_in_range, 1),
                                                   4),
                    gt_boxes=self.gt_n,
                    gt_in_filter_range=self.gt_in_range)


def measure(methods: List[Tuple[str, Callable]], images: List[Tuple[np.ndarray, np.ndarray]],
            filt) -> List[dict]:
    """Run every generator on every image, interleaved image by image so that a change of
    machine load affects all generators alike."""
    tallies = [Tally() for _ in methods]
    for i, (img, gt) in enumerate(images):
        h, w = img.shape[:2]
        for (_, fn), tally in zip(methods, tallies):
            t = time.perf_counter()
            raw = fn(img)
            tally.add(time.perf_counter() - t, raw, gt, (w, h), filt)
        if (i + 1) % 10 == 0:
            print(f'{i + 1}/{len(images)} images', flush=True)
    return [dict(generator=label, **t.row()) for (label, _), t in zip(methods, tallies)]


def to_markdown(rows: List[dict]) -> str:
    head = ('| generator | s/image | images/s | boxes/img raw | boxes/img filtered (distinct) | '
            'fall-back images | recall@0.5 raw | recall@0.5 filtered | recall filt. (in range) |')
    lines = [head, '|' + '---|' * 9]
    for r in rows:
        def rec(key: str, n: str) -> str:
            return f'{r[key]:.3f}' if r[n] else 'n/a'

        lines.append(f"| `{r['generator']}` | {r['seconds_per_image']:.3f} | "
                     f"{r['images_per_second']:.2f} | {r['boxes_raw']:.1f} | "
                     f"{r['boxes_filtered']:.1f} ({r['boxes_filtered_unique']:.1f}) | "
                     f"{r['fallback_images']} | {rec('recall_raw', 'gt_boxes')} | "
                     f"{rec('recall_filtered', 'gt_boxes')} | "
                     f"{rec('recall_filtered_in_range', 'gt_in_filter_range')} |")
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('ann_file', help='COCO instances json with the ground-truth boxes')
    p.add_argument('img_dir', help='folder of its images')
    p.add_argument('--num-images', type=int, default=50)
    p.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS))
    p.add_argument('--min-side', type=float, default=32.0, help='filter: smallest box side')
    p.add_argument('--side-fallback', action=argparse.BooleanOptionalAction, default=True,
                   help='the official sides-only fall-back stage (default on)')
    p.add_argument('--out', default='', help='also write the rows as json here')
    args = p.parse_args(argv)

    import cv2
    from tools.proposals import ProposalFilter, require_ximgproc
    require_ximgproc()
    cv2.setNumThreads(1)
    filt = ProposalFilter(min_side=args.min_side, side_fallback=args.side_fallback)
    images = []
    for name, gt in load_gt(args.ann_file, args.num_images):
        img = cv2.imread(osp.join(args.img_dir, name), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f'cannot read {osp.join(args.img_dir, name)}')
        images.append((img, gt))
    shapes = sorted({im.shape[:2] for im, _ in images})
    print(f'{len(images)} images, sizes (h, w) {shapes[:5]}, '
          f'{sum(len(g) for _, g in images)} ground-truth boxes', flush=True)
    rows = measure([parse_method(spec) for spec in args.methods], images, filt)
    for row in rows:
        print(json.dumps(row), flush=True)
    print(to_markdown(rows))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(dict(ann_file=args.ann_file, num_images=len(images),
                           side_fallback=args.side_fallback, rows=rows), f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
