"""The probe's detector: the R18-FPN demo Faster R-CNN (Mask R-CNN config without the mask
branch) filled from any checkpoint the converter reads, with its pre-trained parts frozen."""
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import torch
from torch import nn

from mcl_plugin.converters.convert import (ConversionError, build_target_model,
                                           convert_state_dict, load_source_checkpoint,
                                           target_shapes)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
#: The fine-tune config whose detector the probe trains (mask branch removed).
FT_CONFIG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdet',
                     'mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py')
#: Variants: which modules are frozen.
VARIANTS = ('backbone', 'all')
#: Detector modules per converter part (``--parts`` names of ``tools/convert_to_mmdet.py``).
PART_MODULES = {'backbone': 'backbone', 'neck': 'neck', 'head': 'roi_head.bbox_head.shared_convs'}
#: Parts frozen by variant ``all`` for ``random`` (the lower bound of MCL / SoCo, which
#: pre-train all three).
RANDOM_ALL_PARTS = ('backbone', 'neck', 'head')


@dataclass
class ProbeDetector:
    """A detector ready for the probe.

    Attributes:
        model (nn.Module): The mmdet ``TwoStageDetector``.
        frozen_parts (list[str]): Converter parts frozen (subset of backbone, neck, head).
        coverage (str): ``matched/total`` detector keys taken from the checkpoint.
        notes (list[str]): Loading notes.
    """

    model: nn.Module
    frozen_parts: List[str]
    coverage: str = '-'
    notes: List[str] = field(default_factory=list)

    @property
    def cached_stage(self) -> str:
        """The deepest frozen stage whose outputs are cached: ``neck`` (FPN levels) when
        backbone and FPN are frozen, else ``backbone`` (C2-C5)."""
        return 'neck' if 'neck' in self.frozen_parts else 'backbone'


def build_detector(num_classes: int, rois_per_image: int = 32, max_per_img: int = 30,
                   test_proposals: int = 100, config: str = FT_CONFIG) -> nn.Module:
    """The fine-tune config's detector without the mask branch, for ``num_classes``.

    ``test_proposals`` RPN proposals per image at test time (mmdet's 1,000 would run the 4-conv
    box head, ~0.1 GMAC per RoI, on 1,000 RoIs per val image: minutes per evaluation on a CPU;
    the images hold ~4 objects).
    """
    opts = {
        'model.roi_head.mask_roi_extractor': None,
        'model.roi_head.mask_head': None,
        'model.roi_head.bbox_head.num_classes': num_classes,
        'model.train_cfg.rcnn.sampler.num': rois_per_image,
        'model.test_cfg.rcnn.max_per_img': max_per_img,
        'model.test_cfg.rpn.max_per_img': test_proposals,
    }
    model, _ = build_target_model(config, opts)
    return model


def _module(model: nn.Module, dotted: str) -> nn.Module:
    for name in dotted.split('.'):
        model = getattr(model, name)
    return model


def load_detector(source: str,
                  variant: str,
                  num_classes: int,
                  seed: int = 0,
                  use_ema: bool = False,
                  trust: bool = False,
                  rois_per_image: int = 32,
                  config: str = FT_CONFIG) -> ProbeDetector:
    """Build the probe detector, initialise it (seeded), fill it from a checkpoint and freeze.

    Variant ``backbone`` freezes the backbone (eval-mode BN); variant ``all`` freezes every part
    the checkpoint fills (backbone; FPN and the 4-conv box-head convs for MCL / SoCo), for
    ``random`` :data:`RANDOM_ALL_PARTS`. Frozen modules stay in eval mode.

    Raises:
        ConversionError: If the checkpoint does not fill the backbone.
        ValueError: On an unknown variant.
    """
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; choose from {VARIANTS}')
    torch.manual_seed(seed)
    model = build_detector(num_classes, rois_per_image, config=config)
    from tools.analysis.knn.backbone import _quiet_init_weights
    _quiet_init_weights(model)
    notes: List[str] = []
    coverage = '-'
    if source == 'random':
        filled = list(RANDOM_ALL_PARTS)
        notes.append(f'random initialisation (seed {seed})')
    else:
        state, _, notes = load_source_checkpoint(source, trust)
        converted, report = convert_state_dict(state, target_shapes(model), use_ema=use_ema,
                                               title=f'{osp.basename(source)} -> detector')
        if not report.ok:
            raise ConversionError(f'{source!r} does not fill the backbone:\n{report.format()}')
        missing, unexpected = model.load_state_dict(converted, strict=False)
        if unexpected:
            raise ConversionError(f'{source!r}: unexpected keys {unexpected[:5]}')
        filled = [p for p, m in PART_MODULES.items()
                  if any(k.startswith(m + '.') for k in converted)]
        coverage = f'{len(converted)}/{len(target_shapes(model))}'
        notes = list(notes) + list(report.notes) + (['EMA target'] if use_ema else [])
    frozen = ['backbone'] if variant == 'backbone' else filled
    for part in frozen:
        module = _module(model, PART_MODULES[part])
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    return ProbeDetector(model, frozen, coverage, list(notes))


def set_train_mode(det: ProbeDetector) -> None:
    """``model.train()`` with the frozen parts kept in eval mode (their BN statistics fixed)."""
    det.model.train()
    for part in det.frozen_parts:
        _module(det.model, PART_MODULES[part]).eval()


def trainable_parameters(model: nn.Module) -> Sequence[Tuple[str, nn.Parameter]]:
    """Named parameters that require gradients."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
