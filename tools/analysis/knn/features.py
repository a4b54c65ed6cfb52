"""The probe's inputs and features: object crops of a COCO split decoded once (uint8, shared by
every checkpoint) and the global-average-pooled last backbone stage."""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

#: ImageNet statistics in RGB order, as in the plugin's and mmdet's data preprocessors.
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)


@dataclass
class CropSet:
    """Resized object crops of one split.

    Attributes:
        images (Tensor): ``(N, 3, S, S)`` uint8, BGR (as decoded by OpenCV).
        labels (Tensor): ``(N,)`` int64 class indices.
        classes (tuple[str]): Class names, index order.
        ann_ids (Tensor, optional): ``(N,)`` COCO annotation id of every crop.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: Tuple[str, ...]
    ann_ids: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return len(self.labels)


def _collate(batch: Sequence[dict]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    imgs = np.stack([np.ascontiguousarray(r['img']) for r in batch])
    labels = torch.tensor([int(r['gt_label']) for r in batch], dtype=torch.long)
    ann_ids = torch.tensor([int(r['ann_id']) for r in batch], dtype=torch.long)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), labels, ann_ids


def load_crops(data_root: str,
               split: str,
               img_size: int = 128,
               ann_file: Optional[str] = None,
               img_dir: Optional[str] = None,
               min_size: float = 16,
               context: float = 0.2,
               max_items: Optional[int] = None,
               num_workers: int = 0,
               batch_size: int = 64) -> CropSet:
    """Decode, crop and resize every object instance of a COCO split once.

    The crops are cached in memory as uint8 so that every checkpoint sees identical inputs.

    Args:
        data_root (str): Dataset folder (``data/objects_coco`` layout).
        split (str): Split name: ``annotations/instances_<split>.json`` and ``<split>/``.
        img_size (int): Side of the square the crops are resized to (aspect not kept).
        ann_file (str, optional): Annotation file relative to ``data_root``.
        img_dir (str, optional): Image folder relative to ``data_root``.
        min_size (float): Instances smaller than this (either side, px) are skipped.
        context (float): The crop is the box grown by this fraction on every side.
        max_items (int, optional): Keep only the first N instances.
        num_workers (int): DataLoader processes for decoding.
        batch_size (int): Decoding batch size.

    Returns:
        CropSet: The crops, labels and class names.
    """
    from mmengine.registry import DefaultScope
    from torch.utils.data import DataLoader, Subset

    from mcl_plugin.datasets import CocoObjectCropDataset
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='CropToBox'),
        dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    ]
    with DefaultScope.overwrite_default_scope('mcl_plugin'):
        dataset = CocoObjectCropDataset(ann_file=ann_file
                                        or osp.join('annotations', f'instances_{split}.json'),
                                        data_root=data_root,
                                        data_prefix=dict(img_path=(img_dir or split) + '/'),
                                        pipeline=pipeline,
                                        min_size=min_size,
                                        context=context,
                                        serialize_data=False)
    classes = tuple(dataset.metainfo['classes'])
    indices = list(range(len(dataset) if max_items is None else min(max_items, len(dataset))))
    loader = DataLoader(Subset(dataset, indices),
                        batch_size=batch_size,
                        shuffle=False,
                        num_workers=num_workers,
                        collate_fn=_collate)
    images, labels, ann_ids = [], [], []
    for imgs, lbls, ids in loader:
        images.append(imgs)
        labels.append(lbls)
        ann_ids.append(ids)
    return CropSet(torch.cat(images), torch.cat(labels), classes, torch.cat(ann_ids))


def instance_keys(data_root: str,
                  split: str,
                  ann_ids: Sequence[int],
                  ann_file: Optional[str] = None) -> List[str]:
    """The pasted cut-out (object instance) behind every annotation of a generated set.

    ``tools/prepare_data.py`` pastes each Tux Paint cut-out into many scenes, so crops of one
    split share instances; a cross-validation that must measure generalisation to unseen
    instances (as the val split, whose instances are disjoint) groups its folds by these keys.
    The builder's ``manifest.json`` lists every image's pasted objects in annotation order.

    Args:
        data_root (str): Dataset folder with ``manifest.json``.
        split (str): Split name (``annotations/instances_<split>.json``, ``<split>/``).
        ann_ids (Sequence[int]): Annotation ids, e.g. :attr:`CropSet.ann_ids`.
        ann_file (str, optional): Annotation file relative to ``data_root``.

    Returns:
        list[str]: One instance key per annotation id, in the given order.
    """
    import json
    manifest = osp.join(data_root, 'manifest.json')
    if not osp.isfile(manifest):
        raise FileNotFoundError(
            f'{manifest} does not exist: instance groups need the manifest that '
            'tools/prepare_data.py writes; for another COCO set pass --cv-groups none')
    with open(manifest, encoding='utf-8') as f:
        records = {r['file']: r for r in json.load(f).get('files', []) if 'objects' in r}
    ann_path = osp.join(data_root, ann_file or osp.join('annotations', f'instances_{split}.json'))
    with open(ann_path, encoding='utf-8') as f:
        coco = json.load(f)
    per_image: dict = {}
    for ann in sorted(coco['annotations'], key=lambda a: a['id']):
        per_image.setdefault(ann['image_id'], []).append(ann['id'])
    key_of = {}
    for im in coco['images']:
        record = records.get(f'{split}/{im["file_name"]}')
        ids = per_image.get(im['id'], [])
        if record is None or len(record['objects']) != len(ids):
            raise ValueError(
                f'{manifest} does not match {ann_path} at image {im["file_name"]!r} (no record, '
                'or a different number of objects than annotations); rebuild the set with '
                'tools/prepare_data.py or pass --cv-groups none')
        key_of.update((i, obj['key']) for i, obj in zip(ids, record['objects']))
    missing = [int(i) for i in ann_ids if int(i) not in key_of]
    if missing:
        raise ValueError(f'annotation ids {missing[:5]} are not in {ann_path}')
    return [key_of[int(i)] for i in ann_ids]


@torch.no_grad()
def extract_features(backbone: nn.Module,
                     images: torch.Tensor,
                     batch_size: int = 64,
                     mean: Sequence[float] = MEAN_RGB,
                     std: Sequence[float] = STD_RGB) -> torch.Tensor:
    """Global-average-pooled last-stage features.

    Args:
        backbone (nn.Module): Returns a tuple of feature maps (mmdet convention); the last one
            is pooled.
        images (Tensor): ``(N, 3, H, W)`` uint8 BGR images.
        batch_size (int): Forward batch size.
        mean (Sequence[float]): RGB mean subtracted after the BGR -> RGB flip.
        std (Sequence[float]): RGB standard deviation.

    Returns:
        Tensor: ``(N, C)`` float32 features (not normalised).
    """
    backbone.eval()
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    feats = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].flip(1).float()
        out = backbone((x - mean_t) / std_t)
        last = out[-1] if isinstance(out, (tuple, list)) else out
        feats.append(last.float().mean(dim=(2, 3)) if last.dim() == 4 else last.float())
    return torch.cat(feats)
