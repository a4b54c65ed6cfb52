"""Ground-truth boxes of a COCO file as proposals (``tools/generate_proposals.py
--from-annotations``), in the same output formats as selective search.

AlignDet (issue #1 of its repository) reports that pre-training on annotated boxes beats
selective search where annotations exist. What is kept of SoCo's filters: the side test
(``min_side``; the aspect and relative-size tests select *object-like* selective-search regions
and would drop real objects), and optionally ``max_overlap`` and ``max_per_image``. Crowd
annotations (``iscrowd: 1``) are dropped: they box groups, not objects. An image with no box
left gets the whole image (``fallback="whole_image"``), as every proposals file guarantees at
least one box per image and as the dataset treats an empty list; an image of the list that the
COCO file does not have is left out, so the dataset's ``on_missing`` decides for it.
"""
import hashlib
import json
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .filters import ProposalFilter, overlap_keep


def load_coco(path: str) -> dict:
    """Read a COCO instances json, with clear errors."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--from-annotations {path!r} does not exist')
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'--from-annotations {path!r} is not valid json ({e})') from None
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise ValueError(f'--from-annotations {path!r} is not a COCO instances file: it needs '
                         '"images" (and "annotations").')
    return data


def annotation_settings(path: str, filt: ProposalFilter) -> Tuple[dict, dict]:
    """``(generator, filter)`` records for the output: the file and its sha256, the filters."""
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (dict(method='annotations', annotations=osp.basename(path), sha256=digest),
            dict(min_side=filt.min_side, max_overlap=filt.max_overlap,
                 max_per_image=filt.max_per_image, crowd='dropped'))


def annotation_records(coco: dict, keys: Sequence[str], filt: ProposalFilter,
                       source: str = '<annotations>') -> Tuple[Dict[str, dict], List[str]]:
    """Per image of ``keys``, its COCO boxes as a proposals record.

    Args:
        coco (dict): A COCO instances file.
        keys (Sequence[str]): Image keys (paths relative to the image folder, ``/``-separated),
            matched to ``images[].file_name``.
        filt (ProposalFilter): ``min_side``, ``max_overlap`` and ``max_per_image`` apply.
        source (str): The file, for messages.

    Returns:
        tuple: ``({key: record}, keys absent from the file)``; a record is ``file_name, width,
        height, boxes (xywh, file order), num_raw (non-crowd boxes), num_filtered, fallback``.

    Raises:
        ValueError: An image of the file lacks ``width``/``height``, or a bbox is malformed.
    """
    by_name: Dict[str, dict] = {}
    for img in coco['images']:
        name = str(img.get('file_name', '')).replace('\\', '/')
        by_name[name[2:] if name.startswith('./') else name] = img
    boxes_of: Dict[object, List[list]] = {}
    for ann in coco.get('annotations', []):
        if not ann.get('iscrowd', 0):
            boxes_of.setdefault(ann['image_id'], []).append(ann.get('bbox'))
    out: Dict[str, dict] = {}
    absent: List[str] = []
    for key in keys:
        img = by_name.get(key)
        if img is None:
            absent.append(key)
            continue
        if not img.get('width') or not img.get('height'):
            raise ValueError(f'{source}: image {key!r} has no width/height; COCO files record '
                             'them (re-export the annotations with the image sizes).')
        width, height = int(img['width']), int(img['height'])
        try:
            raw = np.asarray(boxes_of.get(img['id'], []), np.float64).reshape(-1, 4)
        except (TypeError, ValueError) as e:
            raise ValueError(f'{source}: a bbox of image {key!r} is not [x, y, w, h] '
                             f'({e}).') from None
        keep = raw[filt.side_mask(raw)]
        num_filtered, fallback = len(keep), 'none'
        if not len(keep):
            keep, fallback = np.array([[0, 0, width, height]], np.float64), 'whole_image'
        if filt.max_overlap is not None and len(keep) > 1:
            keep = keep[overlap_keep(keep, filt.max_overlap)]
        if filt.max_per_image is not None:
            keep = keep[:filt.max_per_image]
        out[key] = dict(file_name=key, width=width, height=height, boxes=keep.tolist(),
                        num_raw=len(raw), num_filtered=num_filtered, fallback=fallback)
    return out, absent
