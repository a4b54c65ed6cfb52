"""Labelled object crops from a COCO instances file (small supervised sets from real photos)."""
import json
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset

from mcl_plugin.registry import DATASETS


@DATASETS.register_module()
class CocoObjectCropDataset(BaseDataset):
    """One sample per COCO instance: the image, the instance box (with context) and its class.

    Used for the CPU demos of supervised montage pre-training on ``data/objects_coco``. The crop
    itself happens in the pipeline (:class:`~mcl_plugin.datasets.transforms.CropToBox`), so the
    usual ``LoadImageFromFile`` decodes the image.

    Args:
        ann_file (str): COCO instances json (relative to ``data_root``).
        data_prefix (dict): ``dict(img_path=...)``, folder of the images.
        min_size (float): Instances whose box is smaller (either side, px) are skipped.
        context (float): The crop is the box grown by this fraction on every side.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: dict = dict(img_path=''),
                 pipeline: Sequence = (),
                 min_size: float = 16,
                 context: float = 0.2,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        self.min_size = min_size
        self.context = context
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         pipeline=pipeline, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'COCO annotation file {self.ann_file!r} does not exist; '
                                    'build it with `python tools/prepare_data.py`')
        with open(self.ann_file) as f:
            coco = json.load(f)
        for key in ('images', 'annotations', 'categories'):
            if key not in coco:
                raise ValueError(f'{self.ann_file!r} has no {key!r}: not a COCO instances file')
        cats = sorted(coco['categories'], key=lambda c: c['id'])
        cat_to_label = {c['id']: i for i, c in enumerate(cats)}
        self._metainfo['classes'] = tuple(c['name'] for c in cats)
        images = {im['id']: im for im in coco['images']}
        out = []
        for ann in sorted(coco['annotations'], key=lambda a: a['id']):
            x, y, w, h = ann['bbox']
            if w < self.min_size or h < self.min_size or ann.get('iscrowd', 0):
                continue
            im = images[ann['image_id']]
            dx, dy = w * self.context, h * self.context
            box = [max(0., x - dx), max(0., y - dy), min(float(im['width']), x + w + dx),
                   min(float(im['height']), y + h + dy)]
            out.append(dict(img_path=osp.join(self.data_prefix['img_path'], im['file_name']),
                            crop_box=box, gt_label=cat_to_label[ann['category_id']],
                            ann_id=ann['id']))
        if not out:
            raise ValueError(f'{self.ann_file!r} has no instance of at least {self.min_size} px')
        return out
