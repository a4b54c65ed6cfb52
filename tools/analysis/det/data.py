"""The probe's data: un-augmented images of a COCO split resized once, and the frozen stage's
outputs on them (C2-C5 or FPN levels), cached per checkpoint as float16."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from tools.analysis.knn.features import MEAN_RGB, STD_RGB


def read_classes(data_root: str) -> Tuple[str, ...]:
    """Class names from ``<data_root>/classes.txt`` (written by ``tools/prepare_data.py``), else
    the categories of the train annotations."""
    path = osp.join(data_root, 'classes.txt')
    if osp.exists(path):
        with open(path, encoding='utf-8') as f:
            return tuple(ln.strip() for ln in f if ln.strip())
    import json
    with open(osp.join(data_root, 'annotations', 'instances_train.json')) as f:
        return tuple(c['name'] for c in json.load(f)['categories'])


def load_split(data_root: str, split: str, scale: Tuple[int, int], classes: Sequence[str],
               max_images: Optional[int] = None) -> Tuple[torch.Tensor, List[dict]]:
    """Decode and resize (keep ratio) every image of a split, normalise, pad to one shape.

    Training images without a box are dropped (as mmdet's ``filter_empty_gt``).

    Args:
        data_root (str): COCO-format set (``annotations/instances_<split>.json``, ``<split>/``).
        split (str): Split name.
        scale (tuple[int, int]): ``(W, H)`` of mmdet's ``Resize(keep_ratio=True)``.
        classes (Sequence[str]): Class names (label order).
        max_images (int, optional): Only the first N images.

    Returns:
        tuple[Tensor, list[dict]]: ``(N, 3, H, W)`` float32 normalised RGB inputs padded with 0 to
        a multiple of 32, and per image a plain dict (``metainfo``, ``bboxes`` ``(K, 4)``,
        ``labels`` ``(K,)``) from which :func:`to_data_samples` rebuilds mmdet samples.
    """
    from mmdet.datasets import CocoDataset
    pipeline = [
        dict(type='LoadImageFromFile'),
        # annotations before Resize, so that the boxes are scaled with the image
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    dataset = CocoDataset(data_root=data_root,
                          ann_file=osp.join('annotations', f'instances_{split}.json'),
                          data_prefix=dict(img=f'{split}/'),
                          metainfo=dict(classes=tuple(classes)),
                          filter_cfg=dict(filter_empty_gt=split == 'train', min_size=8)
                          if split == 'train' else None,
                          test_mode=split != 'train',
                          pipeline=pipeline)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    imgs, samples = [], []
    for i in range(n):
        item = dataset[i]
        ds = item['data_samples']
        imgs.append(item['inputs'])
        samples.append(dict(metainfo={k: _plain(v) for k, v in ds.metainfo.items()},
                             bboxes=ds.gt_instances.bboxes.tensor.float().clone(),
                             labels=ds.gt_instances.labels.long().clone()))
    if not imgs:
        raise ValueError(f'{data_root}: split {split!r} has no images')
    h = max(int(np.ceil(im.shape[1] / 32)) * 32 for im in imgs)
    w = max(int(np.ceil(im.shape[2] / 32)) * 32 for im in imgs)
    mean = torch.tensor(MEAN_RGB).view(3, 1, 1)
    std = torch.tensor(STD_RGB).view(3, 1, 1)
    batch = torch.zeros(len(imgs), 3, h, w)
    for i, im in enumerate(imgs):
        batch[i, :, :im.shape[1], :im.shape[2]] = (im.flip(0).float() - mean) / std
        samples[i]['metainfo'].update(pad_shape=(h, w), batch_input_shape=(h, w))
    return batch, samples


def _plain(v):
    if isinstance(v, np.ndarray):
        return tuple(float(x) for x in v.tolist())
    if isinstance(v, tuple):
        return tuple(float(x) if isinstance(x, (np.floating, float)) else int(x)
                     if isinstance(x, (np.integer, int)) else x for x in v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def to_data_samples(samples: Sequence[dict]) -> list:
    """mmdet ``DetDataSample`` objects (ground-truth boxes and metainfo) from plain dicts."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    out = []
    for s in samples:
        ds = DetDataSample(metainfo=dict(s['metainfo']))
        ds.gt_instances = InstanceData(bboxes=s['bboxes'], labels=s['labels'])
        out.append(ds)
    return out


@torch.no_grad()
def frozen_features(model: nn.Module, stage: str, inputs: torch.Tensor,
                    batch_size: int = 8) -> List[torch.Tensor]:
    """Outputs of the frozen stage on all inputs, one float16 ``(N, C, h, w)`` tensor per level.

    Args:
        model (nn.Module): The detector (its frozen parts in eval mode).
        stage (str): ``backbone`` (C2-C5) or ``neck`` (backbone + FPN levels).
        inputs (Tensor): ``(N, 3, H, W)`` normalised inputs.
        batch_size (int): Forward batch size.
    """
    levels: Dict[int, List[torch.Tensor]] = {}
    for start in range(0, len(inputs), batch_size):
        feats = model.backbone(inputs[start:start + batch_size])
        if stage == 'neck':
            feats = model.neck(feats)
        for i, f in enumerate(feats):
            levels.setdefault(i, []).append(f.half())
    return [torch.cat(levels[i]) for i in sorted(levels)]
