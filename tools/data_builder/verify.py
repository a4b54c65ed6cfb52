"""``--verify``: the written datasets are complete and self-consistent (every listed image
present, boxes and areas match the masks, ground truth as detections scores COCO AP 1.0)."""
import contextlib
import io
import json
from pathlib import Path
from typing import Dict

import numpy as np
from PIL import Image

from .catalog import MANIFEST, OBJECTS_DIR, PRETRAIN_DIR, VerificationError
from .manifest import read_manifest


def coco_gt_scores(ann_file: Path) -> Dict[str, float]:
    """Scores the ground truth as detections (score 1) with COCOeval.

    Args:
        ann_file (Path): COCO annotation file.

    Returns:
        dict[str, float]: ``bbox`` and ``segm`` AP (1.0 when the file is consistent).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
    scores = {}
    for iou_type in ('bbox', 'segm'):
        dets = [
            dict(image_id=a['image_id'],
                 category_id=a['category_id'],
                 score=1.0,
                 **({
                     'bbox': a['bbox']
                 } if iou_type == 'bbox' else {
                     'segmentation': a['segmentation']
                 })) for a in gt.dataset['annotations']
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(dets)
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        scores[iou_type] = float(ev.stats[0])
    return scores


def check_coco_consistency(ann_file: Path, image_dir: Path) -> int:
    """Checks boxes/areas against the masks and that every image exists with its size.

    Args:
        ann_file (Path): COCO annotation file.
        image_dir (Path): Folder of its images.

    Returns:
        int: Number of annotations checked.

    Raises:
        VerificationError: On the first inconsistency.
    """
    from pycocotools import mask as mask_util

    coco = json.loads(Path(ann_file).read_text())
    sizes = {}
    for image in coco['images']:
        path = image_dir / image['file_name']
        if not path.is_file():
            raise VerificationError(f'{ann_file}: image {path} is missing')
        with Image.open(path) as img:
            if img.size != (image['width'], image['height']):
                raise VerificationError(f'{path}: size {img.size} != annotation')
        sizes[image['id']] = (image['height'], image['width'])
    for ann in coco['annotations']:
        mask = mask_util.decode(ann['segmentation'])
        if mask.shape != sizes[ann['image_id']]:
            raise VerificationError(f'{ann_file}: annotation {ann["id"]} mask shape')
        ys, xs = np.nonzero(mask)
        tight = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        if np.abs(np.array(tight) - np.array(ann['bbox'])).max() > 1:
            raise VerificationError(f'{ann_file}: annotation {ann["id"]} bbox {ann["bbox"]} '
                                    f'!= tight mask box {tight}')
        if int(mask.sum()) != ann['area']:
            raise VerificationError(f'{ann_file}: annotation {ann["id"]} area')
    return len(coco['annotations'])


def verify(out: Path) -> Dict[str, Dict[str, float]]:
    """Checks both datasets; raises :class:`VerificationError` on any problem.

    Args:
        out (Path): The ``--out`` folder.

    Returns:
        dict: COCOeval AP per split and iou type.
    """
    pretrain = out / PRETRAIN_DIR
    for dest in (pretrain, out / OBJECTS_DIR):
        if read_manifest(dest) is None:
            raise VerificationError(f'{dest} has no {MANIFEST}: build it first (run without '
                                    '--verify, or with --force).')
    listed = (pretrain / 'meta' / 'train.txt').read_text().split()
    for rel in listed:
        if not (pretrain / 'train' / rel).is_file():
            raise VerificationError(f'{pretrain}/meta/train.txt lists missing {rel}')
    results = {}
    for split in ('train', 'val'):
        ann_file = out / OBJECTS_DIR / 'annotations' / f'instances_{split}.json'
        check_coco_consistency(ann_file, out / OBJECTS_DIR / split)
        scores = coco_gt_scores(ann_file)
        for iou_type, ap in scores.items():
            if ap != 1.0:
                raise VerificationError(f'{ann_file}: ground truth as detections gives '
                                        f'{iou_type} AP {ap}, expected 1.0')
        results[split] = scores
    print(f'[prepare_data] verify: OK ({len(listed)} pre-training images listed and present; '
          'GT-as-detections AP ' + ', '.join(f'{s} bbox={r["bbox"]:.3f} segm={r["segm"]:.3f}'
                                             for s, r in results.items()) + ')')
    return results
