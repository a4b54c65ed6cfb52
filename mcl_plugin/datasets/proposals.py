"""The object proposals file of SoCo: its format and its reader (what the dataset needs).

The proposals are generated offline by ``tools/generate_proposals.py`` (selective search,
filters, fall-backs and the writer live in the ``tools/proposals`` package); training only
reads them.

Box convention everywhere in this module: ``(x, y, w, h)`` in pixels of the *original* image,
``(x, y)`` the top-left corner, the box covering ``[x, x + w) x [y, y + h)`` -- COCO's ``bbox``.
(The SoCo paper writes boxes by their centre; that is only notation.)

The proposals file (written by ``tools/generate_proposals.py``, read by :func:`load_proposals`
and :class:`~mcl_plugin.datasets.ProposalImageDataset`) is a COCO instances file with one
category, so ``pycocotools.coco.COCO`` reads it as it is::

    {
      "info": {"format": "mcl_plugin.proposals", "version": 1,
               "box_format": "xywh, top-left corner, pixels of the original image",
               "generator": {...selective-search settings...},
               "filter": {...filter settings...}, "date_created": "..."},
      "images": [{"id": 1, "file_name": "n01440764/x.JPEG",   # relative to the image folder
                  "width": 500, "height": 375,
                  "num_raw": 912,           # boxes selective search returned
                  "num_filtered": 37,       # boxes that passed every filter
                  "fallback": "none"}],     # none | ratio | side | whole_image (below)
      "annotations": [{"id": 1, "image_id": 1, "bbox": [x, y, w, h], "area": w * h,
                       "category_id": 1, "iscrowd": 0}],
      "categories": [{"id": 1, "name": "proposal", "supercategory": "proposal"}]
    }

Filters and fall-backs, applied by the generator (SoCo §3.1 and its official filter scripts): a
box is kept when ``min_side <= w, h``, ``min_ratio <= w / h <= max_ratio`` and
``min_rel_size <= sqrt(w * h) / sqrt(W * H) <= max_rel_size`` (optionally also: no IoU
``>= max_overlap`` with an earlier kept box, and at most ``max_per_image`` boxes). An image
where no box passes keeps the boxes that pass the side and aspect tests only
(``fallback="ratio"``); with ``side_fallback`` (on for ``--method official``, as SoCo's
``filter_ss_proposals_json_post_no_prop.py:25-32``) an image still without boxes keeps those that
pass the side test alone (``fallback="side"``); an image where none of those exists gets one box,
the whole image (``fallback="whole_image"``). Every image in the file therefore has at least one
proposal.

SoCo's official json (``selective_search/filter_ss_proposals_json.py:34, 55, 67`` of
hologerry/SoCo) is read too: ``{"<base name without extension>": [[x, y, w, h], ...]}``, e.g.
``{"n01440764_10026": [[12, 40, 200, 150], ...]}`` for ``train/n01440764/n01440764_10026.JPEG``.
Its ``w`` is ``max_x - min_x`` of the region, which SoCo's loader reads as ``x2 = x + w - 1``
inclusive (``contrast/data/props_utils.py:41-42``): the same pixels as this module's half-open
convention, so the boxes are used as they are. No image sizes are stored, and a list may be empty
(an image no fall-back gave a box): SoCo then uses the whole image
(``contrast/data/dataset.py:442-443``), and so does :class:`ProposalImageDataset`.
:func:`proposal_key` gives the key each format files an image under.
"""
import json
import posixpath
from typing import Dict, List

import numpy as np

FORMAT_NAME = 'mcl_plugin.proposals'
FORMAT_VERSION = 1
BOX_FORMAT = 'xywh, top-left corner, pixels of the original image (COCO bbox)'
FALLBACKS = ('none', 'ratio', 'side', 'whole_image')
#: ``ProposalTable.format`` of this plugin's file and of SoCo's official json
FORMATS = ('mcl_plugin', 'soco_official')


class ProposalTable(dict):
    """``{key: dict(boxes, width, height, fallback)}`` read from a proposals file, with the
    file's ``format`` (one of :data:`FORMATS`) and its ``source`` (for messages)."""

    def __init__(self, entries: Dict[str, dict], format: str, source: str = '<proposals>'):
        super().__init__(entries)
        if format not in FORMATS:
            raise ValueError(f'format must be one of {FORMATS}, got {format!r}')
        self.format = format
        self.source = source

    def key_of(self, rel_path: str) -> str:
        """The key this file lists an image under; see :func:`proposal_key`."""
        return proposal_key(rel_path, self.format)


def proposal_key(rel_path: str, format: str = 'mcl_plugin') -> str:
    """The key of an image in a proposals file of ``format``.

    ``mcl_plugin``: the path relative to the image folder, ``/``-separated (``a/b.jpg``).
    ``soco_official``: the base name without its extension (``b``), as SoCo's writer keys it
    (``os.path.splitext(filename)[0]``, ``generate_imagenet_ss_proposals.py:43`` and
    ``filter_ss_proposals_json.py:34``; its loader's ``basename.split('.')[0]``,
    ``contrast/data/dataset.py:86``, is the same for names with one dot).
    """
    rel_path = rel_path.replace('\\', '/')
    if format == 'mcl_plugin':
        return rel_path
    if format == 'soco_official':
        return posixpath.splitext(posixpath.basename(rel_path))[0]
    raise ValueError(f'format must be one of {FORMATS}, got {format!r}')


def parse_proposals(data: object, source: str = '<proposals>') -> ProposalTable:
    """Turn a loaded proposals json into ``{key: dict(boxes, width, height, fallback)}``.

    ``boxes`` is a ``(N, 4)`` float32 xywh array; ``width``/``height`` are None for SoCo's
    official format (which does not store them) and ``fallback`` is ``'none'`` there. The
    keys are the file's own (see :func:`proposal_key`); the table's ``format`` says which.

    Raises:
        ValueError: If the structure is neither format, with the expected layout in the message.
    """
    if isinstance(data, dict) and isinstance(data.get('images'), list):
        out: Dict[str, dict] = {}
        by_id: Dict[int, List[list]] = {}
        for ann in data.get('annotations', []):
            by_id.setdefault(ann['image_id'], []).append(ann['bbox'])
        for i, img in enumerate(data['images']):
            if not isinstance(img, dict) or 'file_name' not in img or 'id' not in img:
                raise ValueError(f'{source}: images[{i}] needs "id" and "file_name".')
            if img['file_name'] in out:
                raise ValueError(f'{source}: file_name {img["file_name"]!r} appears twice.')
            out[img['file_name']] = dict(
                boxes=np.asarray(by_id.get(img['id'], []), dtype=np.float32).reshape(-1, 4),
                width=img.get('width'),
                height=img.get('height'),
                fallback=img.get('fallback', 'none'))
        return ProposalTable(out, 'mcl_plugin', source)
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        out = {}
        for name, boxes in data.items():
            try:
                arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            except ValueError as e:
                raise ValueError(f'{source}: the boxes of {name!r} are not [[x, y, w, h], ...] '
                                 f'({e}).') from None
            out[name] = dict(boxes=arr, width=None, height=None, fallback='none')
        return ProposalTable(out, 'soco_official', source)
    raise ValueError(f'{source} is not a proposals file: expected the COCO-style layout '
                     '{"images": [...], "annotations": [...]} written by '
                     'tools/generate_proposals.py, or SoCo\'s {"<base name without extension>": '
                     '[[x, y, w, h], ...]}.')


def load_proposals(path: str) -> ProposalTable:
    """Read a proposals json (either format); see :func:`parse_proposals`."""
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'proposals file {path!r} is not valid json ({e}); was its '
                             'generation interrupted? Re-run tools/generate_proposals.py (it '
                             'resumes).') from None
    return parse_proposals(data, repr(path))


__all__ = [
    'parse_proposals', 'load_proposals', 'proposal_key', 'ProposalTable', 'FORMAT_NAME',
    'FORMAT_VERSION', 'BOX_FORMAT', 'FALLBACKS', 'FORMATS'
]
