# Copyright (c) mcl_plugin contributors. All rights reserved.
"""k-NN probe: compare the backbones of several checkpoints without fine-tuning.

For every checkpoint the backbone is rebuilt and loaded, the crops of the object instances of a
COCO-format set (:class:`~mcl_plugin.datasets.CocoObjectCropDataset` +
:class:`~mcl_plugin.datasets.transforms.CropToBox`) are resized to a square, and the
global-average-pooled output of the **last backbone stage** is the crop's feature. A weighted
k-nearest-neighbour classifier (cosine similarity, the ``k`` most similar training crops vote
with weight ``exp(similarity / T)``; InstDisc, Wu et al. 2018) labels every validation crop;
its top-1 accuracy is the probe's score. Nothing is trained, so the numbers compare
representations, not fine-tuning recipes.

Accepted checkpoints (everything :func:`mcl_plugin.converters.convert.load_source_checkpoint`
reads): pre-training checkpoints of the plugin's algorithms (MCL, MCL-sup, SoCo, DetCo, PLRC;
online weights, or the EMA / momentum target with ``use_ema``), mmpretrain / mmselfsup BYOL,
MoCo and DenseCL checkpoints, files written by ``tools/convert_to_mmdet.py``, fine-tuned mmdet
detectors and backbone-only files; plus ``random`` (a freshly initialised backbone, seeded).
The ResNet depth is read from the checkpoint; other backbones need ``backbone_cfg``.

The command-line front-end is ``tools/analysis/knn_probe.py``.
"""
import copy
import json
import math
import os
import os.path as osp
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .convert import ConversionError, convert_state_dict, load_source_checkpoint

__all__ = [
    'CropSet', 'ProbeResult', 'LoadedBackbone', 'parse_spec', 'infer_resnet_cfg', 'build_backbone',
    'load_backbone', 'load_crops', 'extract_features', 'knn_predict', 'knn_top1', 'tsne',
    'plot_tsne', 'run_probe', 'results_to_markdown'
]

#: ImageNet statistics in RGB order, as in the plugin's and mmdet's data preprocessors.
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)
#: Name of the randomly initialised backbone in a probe specification.
RANDOM = 'random'
#: Backbone of ``random`` when no checkpoint tells the architecture (the CPU demos' R18).
DEFAULT_BACKBONE = dict(type='mmdet.ResNet', depth=18, norm_cfg=dict(type='BN'))
#: mmdet ResNet depth by (bottleneck?, blocks per stage).
_RESNET_DEPTHS = {
    (False, (2, 2, 2, 2)): 18,
    (False, (3, 4, 6, 3)): 34,
    (True, (3, 4, 6, 3)): 50,
    (True, (3, 4, 23, 3)): 101,
    (True, (3, 8, 36, 3)): 152,
}
_BLOCK_KEY = re.compile(r'^(?:backbone\.)?layer(\d)\.(\d+)\.conv(\d)\.weight$')
#: Pre-training backbones with a stem positional embedding -> the plain mmdet backbone (the
#: embedding never reaches the detector, so the probe leaves it out as well).
_PE_TYPES = {'PEResNet': 'mmdet.ResNet', 'PESwinTransformer': 'mmdet.SwinTransformer'}


# ------------------------------------------------------------------------------ backbones
@dataclass
class LoadedBackbone:
    """A backbone ready for feature extraction.

    Attributes:
        module (nn.Module): The backbone in eval mode.
        cfg (dict): Its config.
        coverage (str): ``matched/total`` backbone state-dict entries taken from the
            checkpoint (``'-'`` for ``random``).
        notes (list[str]): Loading notes (EMA selection, backbone-only file, ...).
    """

    module: nn.Module
    cfg: dict
    coverage: str = '-'
    notes: List[str] = field(default_factory=list)


def parse_spec(spec: str) -> Tuple[str, str]:
    """Split a probe specification into ``(name, source)``.

    ``NAME=PATH`` names a checkpoint; a bare ``PATH`` is named after its parent folder and file
    (``pretrain/iter_100``); ``random`` (or ``NAME=random``) is a randomly initialised backbone.

    Args:
        spec (str): The specification.

    Returns:
        tuple[str, str]: Display name and source (``'random'`` or a path).
    """
    if '=' in spec and not osp.exists(spec):
        name, source = spec.split('=', 1)
        if not name or not source:
            raise ValueError(f'bad checkpoint specification {spec!r}: use NAME=PATH, PATH or '
                             'random')
        return name, source
    if spec == RANDOM:
        return RANDOM, RANDOM
    stem = osp.splitext(osp.basename(spec))[0]
    parent = osp.basename(osp.dirname(osp.abspath(spec)))
    return f'{parent}/{stem}' if parent else stem, spec


def infer_resnet_cfg(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    """The mmdet ``ResNet`` config of the backbone in a state dict, or None if it holds none.

    Looks at ``[backbone.]layer<i>.<j>.conv<n>.weight`` keys: the number of blocks per stage
    and whether blocks have a third conv (bottleneck) give the depth; the number of stages
    (3 for the C4 pre-training variants, whose res5 is a head) is kept.

    Raises:
        ValueError: If the block layout matches no ResNet depth.
    """
    blocks: Dict[int, set] = {}
    bottleneck = False
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
            bottleneck |= m.group(3) == '3'
    if not blocks:
        return None
    stages = sorted(blocks)
    if stages != list(range(1, len(stages) + 1)):
        raise ValueError(f'ResNet stages {stages} are not consecutive from layer1')
    counts = tuple(max(blocks[s]) + 1 for s in stages)
    for (bneck, layout), depth in _RESNET_DEPTHS.items():
        if bneck == bottleneck and layout[:len(counts)] == counts:
            n = len(counts)
            return dict(type='mmdet.ResNet',
                        depth=depth,
                        num_stages=n,
                        strides=(1, 2, 2, 2)[:n],
                        dilations=(1, ) * n,
                        out_indices=(n - 1, ),
                        norm_cfg=dict(type='BN'))
    raise ValueError(f'no ResNet depth has {"bottleneck" if bottleneck else "basic"} blocks '
                     f'{counts} per stage; pass a backbone config')


def _plain_backbone_cfg(cfg: Mapping) -> dict:
    """A copy of a backbone config fit for probing: no PE, no pre-trained init, BN not SyncBN,
    only the last stage returned."""
    cfg = copy.deepcopy(dict(cfg))
    kind = cfg.get('type', '')
    if kind.split('.')[-1] in _PE_TYPES:
        cfg['type'] = _PE_TYPES[kind.split('.')[-1]]
        cfg.pop('stem_pos_embed', None)
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    if isinstance(cfg.get('norm_cfg'), dict) and cfg['norm_cfg'].get('type') == 'SyncBN':
        cfg['norm_cfg'] = dict(cfg['norm_cfg'], type='BN')
    return cfg


def build_backbone(cfg: Mapping) -> nn.Module:
    """Build a backbone config in the plugin's registry scope (``mmdet.`` types resolve)."""
    import mcl_plugin  # noqa: F401  (registers the plugin's modules)
    from mmengine.registry import DefaultScope

    from mcl_plugin.registry import MODELS
    with DefaultScope.overwrite_default_scope('mcl_plugin'):
        return MODELS.build(_plain_backbone_cfg(cfg))


def _quiet_init_weights(module: nn.Module) -> None:
    """``module.init_weights()`` without mmengine's per-parameter INFO lines."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)


def load_backbone(source: str,
                  backbone_cfg: Optional[Mapping] = None,
                  use_ema: bool = False,
                  seed: int = 0) -> LoadedBackbone:
    """Build a backbone and fill it from a checkpoint (or initialise it randomly).

    Args:
        source (str): ``'random'`` or a checkpoint path.
        backbone_cfg (Mapping, optional): Backbone config. Default: inferred from the
            checkpoint (ResNets), :data:`DEFAULT_BACKBONE` for ``random``.
        use_ema (bool): Take the EMA / momentum target's backbone instead of the online one.
        seed (int): Seed of the random initialisation.

    Returns:
        LoadedBackbone: The backbone in eval mode and how it was loaded.

    Raises:
        ConversionError: If the checkpoint is unreadable or does not fill every backbone key
            (the message holds the coverage table).
        ValueError: If the architecture cannot be inferred.
    """
    if source == RANDOM:
        cfg = _plain_backbone_cfg(backbone_cfg or DEFAULT_BACKBONE)
        torch.manual_seed(seed)
        module = build_backbone(cfg)
        _quiet_init_weights(module)
        module.eval()  # (mmdet's ResNet.train() returns None, so no chaining)
        return LoadedBackbone(module, cfg, '-', [f'random initialisation (seed {seed})'])
    state, _, notes = load_source_checkpoint(source)
    if backbone_cfg is None:
        backbone_cfg = infer_resnet_cfg(state)
        if backbone_cfg is None:
            raise ValueError(f'{source!r}: no ResNet backbone keys found; pass the backbone '
                             'config (e.g. --backbone-config of a fine-tune config)')
    cfg = _plain_backbone_cfg(backbone_cfg)
    module = build_backbone(cfg)
    target = {f'backbone.{k}': tuple(v.shape) for k, v in module.state_dict().items()}
    converted, report = convert_state_dict(state,
                                           target,
                                           parts=('backbone', ),
                                           use_ema=use_ema,
                                           title=f'{osp.basename(source)} -> backbone')
    if not report.ok:
        raise ConversionError(f'{source!r} does not fill the {cfg["type"]} backbone:\n'
                              f'{report.format()}')
    weights = {k[len('backbone.'):]: v for k, v in converted.items()}
    missing, unexpected = module.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        raise ConversionError(f'{source!r}: backbone keys left at init {missing[:5]}, '
                              f'unexpected {unexpected[:5]}')
    totals = report.totals()
    module.eval()
    return LoadedBackbone(module, cfg, f'{totals["matched"]}/{totals["target_keys"]}',
                          notes + list(report.notes) + (['EMA target'] if use_ema else []))


# ---------------------------------------------------------------------------------- data
@dataclass
class CropSet:
    """Resized object crops of one split.

    Attributes:
        images (Tensor): ``(N, 3, S, S)`` uint8, BGR (as decoded by OpenCV).
        labels (Tensor): ``(N,)`` int64 class indices.
        classes (tuple[str]): Class names, index order.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: Tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def _collate(batch: Sequence[dict]) -> Tuple[torch.Tensor, torch.Tensor]:
    imgs = np.stack([np.ascontiguousarray(r['img']) for r in batch])
    labels = torch.tensor([int(r['gt_label']) for r in batch], dtype=torch.long)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), labels


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
    images, labels = [], []
    for imgs, lbls in loader:
        images.append(imgs)
        labels.append(lbls)
    return CropSet(torch.cat(images), torch.cat(labels), classes)


# ------------------------------------------------------------------------------ features
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


# ---------------------------------------------------------------------------------- k-NN
@torch.no_grad()
def knn_predict(train_feats: torch.Tensor,
                train_labels: torch.Tensor,
                test_feats: torch.Tensor,
                num_classes: int,
                k: int = 20,
                temperature: float = 0.07,
                chunk: int = 1024) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weighted k-NN classification with cosine similarity (InstDisc's rule).

    Every test sample takes the ``k`` training samples with the highest cosine similarity
    ``s``; each votes for its class with weight ``exp(s / temperature)``; the class with the
    largest total wins (ties: the lower class index).

    Args:
        train_feats (Tensor): ``(N, C)`` training features.
        train_labels (Tensor): ``(N,)`` class indices in ``[0, num_classes)``.
        test_feats (Tensor): ``(M, C)`` features to classify.
        num_classes (int): Number of classes.
        k (int): Neighbours (clamped to ``N``).
        temperature (float): Vote temperature.
        chunk (int): Test samples per similarity block (memory bound).

    Returns:
        tuple[Tensor, Tensor]: ``(M,)`` predicted classes and ``(M, num_classes)`` votes.
    """
    if len(train_feats) == 0:
        raise ValueError('k-NN needs at least one training sample')
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes:
        raise ValueError(f'train labels must lie in [0, {num_classes})')
    k = min(k, len(train_feats))
    train = nn.functional.normalize(train_feats.double(), dim=1)
    test = nn.functional.normalize(test_feats.double(), dim=1)
    preds, votes = [], []
    for start in range(0, len(test), chunk):
        sim = test[start:start + chunk] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / temperature).exp()
        vote = torch.zeros(len(sim), num_classes, dtype=torch.float64)
        vote.scatter_add_(1, train_labels[top_idx], weights)
        preds.append(vote.argmax(dim=1))
        votes.append(vote)
    return torch.cat(preds), torch.cat(votes)


def knn_top1(train_feats: torch.Tensor,
             train_labels: torch.Tensor,
             test_feats: torch.Tensor,
             test_labels: torch.Tensor,
             num_classes: int,
             k: int = 20,
             temperature: float = 0.07) -> float:
    """Top-1 accuracy (fraction in ``[0, 1]``) of :func:`knn_predict` on labelled test data."""
    pred, _ = knn_predict(train_feats, train_labels, test_feats, num_classes, k, temperature)
    return float((pred == test_labels).double().mean())


# --------------------------------------------------------------------------------- t-SNE
def _conditional_probabilities(sq_dist: torch.Tensor,
                               perplexity: float,
                               steps: int = 100) -> torch.Tensor:
    """Row-wise Gaussian affinities whose entropy is ``log(perplexity)`` (bisection on the
    precision, all rows at once)."""
    n = len(sq_dist)
    target = math.log(perplexity)
    d = sq_dist / sq_dist[sq_dist > 0].median().clamp_min(1e-12)  # scale-free bisection range
    lo = torch.full((n, 1), -30.0, dtype=d.dtype)
    hi = torch.full((n, 1), 30.0, dtype=d.dtype)
    eye = torch.eye(n, dtype=torch.bool)
    for _ in range(steps):
        log_beta = (lo + hi) / 2
        logits = (-d * log_beta.exp()).masked_fill(eye, -math.inf)
        p = logits.softmax(dim=1)
        entropy = -(p * logits.log_softmax(dim=1).masked_fill(eye, 0)).sum(1, keepdim=True)
        too_flat = entropy > target  # entropy too high -> sharpen (larger precision)
        lo = torch.where(too_flat, log_beta, lo)
        hi = torch.where(too_flat, hi, log_beta)
    logits = (-d * ((lo + hi) / 2).exp()).masked_fill(eye, -math.inf)
    return logits.softmax(dim=1)


def tsne(features: torch.Tensor,
         perplexity: float = 30.0,
         num_iters: int = 750,
         seed: int = 0,
         early_exaggeration: float = 12.0,
         exaggeration_iters: int = 250) -> torch.Tensor:
    """Exact t-SNE (van der Maaten & Hinton, 2008) to 2-D, in torch.

    O(N^2) memory and time per iteration: meant for the few thousand crops of a probe set
    (no scikit-learn dependency). Features are L2-normalised first, so distances follow the
    cosine similarity the k-NN uses. Deterministic for a given seed.

    Args:
        features (Tensor): ``(N, C)`` features, ``N >= 4``.
        perplexity (float): Effective number of neighbours (clamped to ``(N - 1) / 3``).
        num_iters (int): Gradient steps.
        seed (int): Seed of the initial layout.
        early_exaggeration (float): Factor on P during the first ``exaggeration_iters`` steps.
        exaggeration_iters (int): Steps with exaggeration and momentum 0.5 (then 0.8).

    Returns:
        Tensor: ``(N, 2)`` float32 embedding.
    """
    x = nn.functional.normalize(features.double(), dim=1)
    n = len(x)
    if n < 4:
        raise ValueError(f't-SNE needs at least 4 points, got {n}')
    perplexity = min(perplexity, (n - 1) / 3)
    p = _conditional_probabilities(torch.cdist(x, x).pow(2), perplexity)
    p = ((p + p.T) / (2 * n)).clamp_min(1e-12)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, generator=gen, dtype=torch.float64) * 1e-4
    update = torch.zeros_like(y)
    gains = torch.ones_like(y)
    lr = max(n / early_exaggeration / 4, 50.0)  # scikit-learn's learning_rate='auto'
    eye = torch.eye(n, dtype=torch.bool)
    for it in range(num_iters):
        exaggerate = it < exaggeration_iters
        num = (1.0 / (1.0 + torch.cdist(y, y).pow(2))).masked_fill(eye, 0.0)
        q = (num / num.sum()).clamp_min(1e-12)
        pq = ((p * early_exaggeration if exaggerate else p) - q) * num
        grad = 4.0 * (pq.sum(1, keepdim=True) * y - pq @ y)
        same_sign = (grad > 0) == (update > 0)
        gains = torch.where(same_sign, gains * 0.8, gains + 0.2).clamp_min(0.01)
        update = (0.5 if exaggerate else 0.8) * update - lr * gains * grad
        y = y + update
        y = y - y.mean(0)
    return y.float()


def plot_tsne(embedding: torch.Tensor,
              labels: torch.Tensor,
              classes: Sequence[str],
              path: str,
              title: str = '',
              size: Tuple[int, int] = (800, 800),
              dpi: int = 100) -> str:
    """Scatter plot of a 2-D embedding coloured by class, written as a PNG of exactly
    ``size`` pixels (width, height)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax = fig.add_axes((0.06, 0.06, 0.7, 0.86))
    cmap = plt.get_cmap('tab10' if len(classes) <= 10 else 'tab20')
    emb = embedding.numpy()
    lab = labels.numpy()
    for c, name in enumerate(classes):
        sel = lab == c
        if sel.any():
            ax.scatter(emb[sel, 0], emb[sel, 1], s=10, color=cmap(c % cmap.N), label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------- probe
@dataclass
class ProbeResult:
    """One row of the probe table."""

    name: str
    source: str
    backbone: str
    coverage: str
    feature_dim: int
    top1: float
    seconds: float
    tsne: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def _describe(cfg: Mapping) -> str:
    kind = str(cfg.get('type', '?')).split('.')[-1]
    return f'{kind}-{cfg["depth"]}' if 'depth' in cfg else kind


def _safe(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'checkpoint'


def run_probe(specs: Sequence[str],
              data_root: str,
              out_dir: Optional[str] = None,
              train_split: str = 'train',
              val_split: str = 'val',
              img_size: int = 128,
              k: int = 20,
              temperature: float = 0.07,
              backbone_cfg: Optional[Mapping] = None,
              use_ema: bool = False,
              with_tsne: bool = False,
              tsne_size: Tuple[int, int] = (800, 800),
              batch_size: int = 64,
              num_workers: int = 0,
              max_items: Optional[int] = None,
              seed: int = 0,
              log=print) -> Tuple[List[ProbeResult], dict]:
    """k-NN probe of several checkpoints on the object crops of a COCO set.

    Writes ``knn.json`` and ``knn.md`` (and ``tsne_<name>.png`` per checkpoint with
    ``with_tsne``) into ``out_dir`` when given.

    Args:
        specs (Sequence[str]): Checkpoints, see :func:`parse_spec`.
        data_root (str): COCO-format set (``data/objects_coco`` layout).
        out_dir (str, optional): Output folder.
        train_split (str): Split whose crops are the k-NN memory.
        val_split (str): Split whose crops are classified.
        img_size (int): Crop side in pixels.
        k (int): Neighbours.
        temperature (float): Vote temperature.
        backbone_cfg (Mapping, optional): Backbone config for every checkpoint. Default: each
            checkpoint's ResNet depth; ``random`` takes the first checkpoint's architecture
            (R18 if there is none).
        use_ema (bool): Probe the EMA / momentum target instead of the online backbone.
        with_tsne (bool): Write a t-SNE plot of the validation features per checkpoint.
        tsne_size (tuple[int, int]): PNG size in pixels.
        batch_size (int): Forward batch size.
        num_workers (int): Decoding processes.
        max_items (int, optional): Use only the first N instances of each split.
        seed (int): Seed of ``random`` and of t-SNE.
        log (Callable): Progress printer.

    Returns:
        tuple[list[ProbeResult], dict]: The rows and the JSON document.
    """
    parsed = [parse_spec(s) for s in specs]
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f'checkpoint names must be unique, got {names}')
    start = time.perf_counter()
    train = load_crops(data_root,
                       train_split,
                       img_size,
                       max_items=max_items,
                       num_workers=num_workers,
                       batch_size=batch_size)
    val = load_crops(data_root,
                     val_split,
                     img_size,
                     max_items=max_items,
                     num_workers=num_workers,
                     batch_size=batch_size)
    if train.classes != val.classes:
        raise ValueError(f'{train_split} and {val_split} have different classes')
    log(f'[knn_probe] {len(train)} {train_split} / {len(val)} {val_split} crops of '
        f'{len(train.classes)} classes at {img_size} px ({time.perf_counter() - start:.1f} s)')
    random_cfg = backbone_cfg
    if random_cfg is None:
        for _, source in parsed:
            if source != RANDOM:
                random_cfg = infer_resnet_cfg(load_source_checkpoint(source)[0])
                if random_cfg is not None:
                    break
    results = []
    for name, source in parsed:
        t0 = time.perf_counter()
        loaded = load_backbone(source,
                               random_cfg if source == RANDOM else backbone_cfg,
                               use_ema=use_ema,
                               seed=seed)
        f_train = extract_features(loaded.module, train.images, batch_size)
        f_val = extract_features(loaded.module, val.images, batch_size)
        top1 = knn_top1(f_train, train.labels, f_val, val.labels, len(train.classes), k,
                        temperature)
        row = ProbeResult(name=name,
                          source=source,
                          backbone=_describe(loaded.cfg),
                          coverage=loaded.coverage,
                          feature_dim=int(f_val.shape[1]),
                          top1=top1,
                          seconds=0.0,
                          notes=loaded.notes)
        if with_tsne and out_dir:
            emb = tsne(f_val, seed=seed)
            row.tsne = plot_tsne(emb,
                                 val.labels,
                                 train.classes,
                                 osp.join(out_dir, f'tsne_{_safe(name)}.png'),
                                 f'{name}: val crops, k-NN top-1 {100 * top1:.1f} %',
                                 size=tsne_size)
        row.seconds = round(time.perf_counter() - t0, 2)
        log(f'[knn_probe] {name}: top-1 {100 * top1:.2f} % ({row.seconds:.1f} s)')
        results.append(row)
    doc = dict(data_root=data_root,
               train_split=train_split,
               val_split=val_split,
               num_train=len(train),
               num_val=len(val),
               classes=list(train.classes),
               img_size=img_size,
               k=k,
               temperature=temperature,
               use_ema=use_ema,
               feature='global average pool of the last backbone stage',
               results=[asdict(r) for r in results])
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, 'knn.json'), 'w', encoding='utf-8') as f:
            json.dump(doc, f, indent=2)
        with open(osp.join(out_dir, 'knn.md'), 'w', encoding='utf-8') as f:
            f.write(results_to_markdown(results, doc) + '\n')
    return results, doc


def results_to_markdown(results: Sequence[ProbeResult], doc: Optional[Mapping] = None) -> str:
    """The probe table in Markdown (top-1 in percent), with a one-line protocol header."""
    lines = []
    if doc:
        lines += [
            f'k-NN probe on {doc["data_root"]}: {doc["num_train"]} {doc["train_split"]} / '
            f'{doc["num_val"]} {doc["val_split"]} object crops, {len(doc["classes"])} classes, '
            f'{doc["img_size"]} px, k = {doc["k"]}, T = {doc["temperature"]}, cosine, '
            f'GAP of the last stage{", EMA target" if doc.get("use_ema") else ""}.', ''
        ]
    lines += [
        '| checkpoint | backbone | keys loaded | feature dim | k-NN top-1 (%) | s |',
        '|---|---|---|---|---|---|',
    ]
    for r in results:
        lines.append(f'| {r.name} | {r.backbone} | {r.coverage} | {r.feature_dim} | '
                     f'{100 * r.top1:.2f} | {r.seconds:.1f} |')
    return '\n'.join(lines)
