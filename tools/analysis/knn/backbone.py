"""Backbones for the k-NN probe: the architecture read from a checkpoint (ResNets), built in the
plugin's registry scope and filled with the online or EMA weights of any checkpoint
:func:`mcl_plugin.converters.convert.load_source_checkpoint` reads, or randomly initialised."""
import copy
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from mcl_plugin.converters.convert import (ConversionError, convert_state_dict,
                                           load_source_checkpoint)

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



def parse_specs(specs: Sequence[str]) -> List[Tuple[str, str]]:
    """:func:`parse_spec` of every spec; names must be unique (they key the result rows)."""
    parsed = [parse_spec(s) for s in specs]
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f'checkpoint names must be unique, got {names}')
    return parsed

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
                  seed: int = 0,
                  trust: bool = False) -> LoadedBackbone:
    """Build a backbone and fill it from a checkpoint (or initialise it randomly).

    Args:
        source (str): ``'random'`` or a checkpoint path.
        backbone_cfg (Mapping, optional): Backbone config. Default: inferred from the
            checkpoint (ResNets), :data:`DEFAULT_BACKBONE` for ``random``.
        use_ema (bool): Take the EMA / momentum target's backbone instead of the online one.
        seed (int): Seed of the random initialisation.
        trust (bool): Unpickle a checkpoint outside the allow-list in full
            (``--trust-checkpoint``; runs code stored in the file).

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
    state, _, notes = load_source_checkpoint(source, trust)
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
