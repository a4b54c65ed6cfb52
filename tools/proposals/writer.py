"""The proposals file writer (format: :mod:`mcl_plugin.datasets.proposals`, which reads it) and
the statistics of a generation run."""
import datetime
from typing import Iterable, List, Mapping, Optional, Sequence

import numpy as np

from mcl_plugin.datasets.proposals import BOX_FORMAT, FALLBACKS, FORMAT_NAME, FORMAT_VERSION


def build_proposals_json(records: Iterable[Mapping],
                         generator: Optional[Mapping] = None,
                         filter_cfg: Optional[Mapping] = None,
                         decimals: int = 1) -> dict:
    """Assemble the COCO-style proposals dict (format: :mod:`mcl_plugin.datasets.proposals`).

    Args:
        records (Iterable[Mapping]): Per image ``file_name, width, height, boxes`` (xywh), and
            optionally ``num_raw, num_filtered, fallback``.
        generator (Mapping, optional): Generator settings for ``info``.
        filter_cfg (Mapping, optional): Filter settings for ``info``.
        decimals (int): Decimals kept in the box coordinates.
    """
    images, annotations = [], []
    for image_id, rec in enumerate(records, start=1):
        boxes = np.asarray(rec['boxes'], dtype=np.float64).reshape(-1, 4)
        images.append(
            dict(id=image_id,
                 file_name=rec['file_name'],
                 width=int(rec['width']),
                 height=int(rec['height']),
                 num_raw=int(rec.get('num_raw', len(boxes))),
                 num_filtered=int(rec.get('num_filtered', len(boxes))),
                 fallback=rec.get('fallback', 'none')))
        for box in np.round(boxes, decimals).tolist():
            annotations.append(
                dict(id=len(annotations) + 1,
                     image_id=image_id,
                     bbox=box,
                     area=round(box[2] * box[3], decimals),
                     category_id=1,
                     iscrowd=0))
    info = dict(description='selective-search object proposals for SoCo pre-training',
                format=FORMAT_NAME,
                version=FORMAT_VERSION,
                box_format=BOX_FORMAT,
                generator=dict(generator or {}),
                filter=dict(filter_cfg or {}),
                date_created=datetime.datetime.now().isoformat(timespec='seconds'))
    return dict(info=info,
                images=images,
                annotations=annotations,
                categories=[dict(id=1, name='proposal', supercategory='proposal')])


def summarize(records: Sequence[Mapping], wall_seconds: float,
              num_skipped: int = 0, failed: Sequence[Mapping] = ()) -> dict:
    """Statistics of a generation run (printed and written next to the proposals file)."""

    def stats(values: List[float]) -> dict:
        if not values:
            return dict(mean=0.0, median=0.0, min=0, max=0)
        arr = np.asarray(values, dtype=np.float64)
        return dict(mean=round(float(arr.mean()), 2), median=float(np.median(arr)),
                    min=float(arr.min()), max=float(arr.max()))

    fallbacks = {k: 0 for k in FALLBACKS}
    for r in records:
        fallbacks[r.get('fallback', 'none')] += 1
    new = [r for r in records if not r.get('resumed')]
    seconds = [r['seconds'] for r in new if 'seconds' in r]
    return dict(images=len(records),
                processed_now=len(new),
                resumed=num_skipped,
                failed=len(failed),
                failed_files=[f['file_name'] for f in failed][:20],
                boxes_per_image_raw=stats([r['num_raw'] for r in records]),
                boxes_per_image_filtered=stats([r['num_filtered'] for r in records]),
                boxes_per_image_final=stats([len(r['boxes']) for r in records]),
                fallbacks=fallbacks,
                seconds_per_image_worker=round(float(np.mean(seconds)), 4) if seconds else None,
                wall_seconds=round(wall_seconds, 2),
                images_per_second=round(len(new) / wall_seconds, 3) if wall_seconds > 0 else None)
