# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Report what a fine-tune config really loads from its pre-trained weights.

mmengine loads ``load_from`` (after ``init_weights``) with ``strict=False`` and ``PretrainedInit``
(``init_cfg=dict(type='Pretrained', ...)``) with ``strict=False`` too: wrong prefixes, depths or
layouts only produce warnings and the detector silently starts from scratch.
:func:`check_pretrained` reproduces both paths on the model built from the config and reports
the key coverage per module:

* ``load_from``: ``mmengine.runner.checkpoint._load_checkpoint`` (the same ``torch.load`` call the
  runner makes, with the allow-list ``tools/train.py`` uses, so a file it refuses fails here too), ``state_dict`` (or the bare
  dict), ``revise_keys=[(r'^module\\.', '')]``, ``strict=False``. The tensors are then really
  loaded into the model and compared.
* ``init_cfg`` of ``Pretrained`` type on any sub-module (backbone, C4 shared head ...):
  ``prefix=None`` -> whole state dict with ``module.`` stripped; ``prefix='backbone.'`` -> only keys
  under the prefix, stripped (mmengine asserts that there are some). mmdet's
  ``SwinTransformer`` has its own ``init_weights``: it ignores ``prefix``, keeps only
  ``backbone.*`` keys (crashing with ``IndexError`` when there are none), applies
  ``swin_converter`` when ``convert_weights=True`` (``KeyError`` on OpenMMLab-format keys) and
  resizes ``absolute_pos_embed`` / ``relative_position_bias_table``.

Remote checkpoints (``torchvision://``, ``https://`` ...) are never downloaded: they are reported
as unverified.
"""
import os.path as osp
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ..utils.checkpoint import (TRUST_FLAG, allow_runner_checkpoints, is_weights_only_refusal,
                                load_checkpoint_file, refusal_message)
from .convert import build_target_model
from .coverage import CoverageReport, Shape, diagnose_backbone, summarize_prefixes
from .io import ConversionError
from .io import state_shapes as _shapes

_REVISE_KEYS = [(r'^module\.', '')]


@dataclass
class CheckResult:
    """Outcome of :func:`check_pretrained`.

    Attributes:
        reports (list[CoverageReport]): One per weight source (init_cfg entries, load_from).
        backbone_keys (int): Number of backbone keys of the model.
        backbone_covered (int): Backbone keys that receive a pre-trained tensor of the right shape
            from at least one source (remote sources count as unverified, not covered).
        unverified (list[str]): Remote checkpoints that were not checked.
        errors (list[str]): Readable errors (unreadable files, uncovered backbone keys ...).
    """

    reports: List[CoverageReport] = field(default_factory=list)
    backbone_keys: int = 0
    backbone_covered: int = 0
    unverified: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every backbone key receives verified pre-trained weights (or comes from an
        unverified remote checkpoint) and no source failed."""
        return not self.errors

    def format(self, markdown: bool = False) -> str:
        """All reports followed by the verdict."""
        parts = [r.to_markdown() if markdown else r.format() for r in self.reports]
        verdict = (f'backbone: {self.backbone_covered}/{self.backbone_keys} keys receive verified '
                   'pre-trained weights')
        if self.unverified:
            verdict += f'; unverified remote checkpoints: {self.unverified}'
        parts.append(verdict)
        parts.extend(f'ERROR: {e}' for e in self.errors)
        return '\n\n'.join(parts)


def _is_remote(path: str) -> bool:
    return '://' in path and not osp.isfile(path)


def find_pretrained_init_cfgs(model_cfg: Mapping, path: str = '') -> List[Tuple[str, dict]]:
    """Sub-module paths of a model config with ``init_cfg`` of type ``Pretrained``.

    Args:
        model_cfg (Mapping): ``cfg.model``.
        path (str): Path of ``model_cfg`` inside the model (recursion).

    Returns:
        list[tuple[str, dict]]: ``(module path, init_cfg)``; the path is ``''`` for the model.
    """
    found = []
    init = model_cfg.get('init_cfg')
    for item in (init if isinstance(init, (list, tuple)) else [init]):
        if isinstance(item, Mapping) and item.get('type') == 'Pretrained':
            found.append((path, dict(item)))
    for key, value in model_cfg.items():
        if key in ('init_cfg', 'train_cfg', 'test_cfg') or not isinstance(value, Mapping):
            continue
        found += find_pretrained_init_cfgs(value, f'{path}.{key}' if path else key)
    return found


def _load_like_runner(filename: str, trust: bool = False) -> Dict[str, Any]:
    """``_load_checkpoint`` as ``tools/train.py`` / ``tools/test.py`` call it, failures explained.

    Those entry points run the Runner inside :func:`allow_runner_checkpoints` (runner
    checkpoints load, nothing else is unpickled) unless ``--trust-checkpoint`` is given.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    if not osp.isfile(filename):
        raise ConversionError(f'checkpoint file {filename!r} does not exist.')
    try:
        with allow_runner_checkpoints():
            return _load_checkpoint(filename, map_location='cpu')
    except Exception as exc:  # noqa: BLE001
        if is_weights_only_refusal(exc):
            if trust:
                return load_checkpoint_file(filename, trust=True)
            raise ConversionError(
                refusal_message(filename, exc) + ' tools/train.py and tools/test.py refuse it '
                f'the same way (they take {TRUST_FLAG} too); tools/convert_to_mmdet.py writes a '
                'tensors-only copy.') from None
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
        raise ConversionError(
            f'cannot read checkpoint {filename!r} ({osp.getsize(filename)} bytes): '
            f'{type(exc).__name__}: {text[:200]}. The file looks truncated or corrupted: '
            're-copy / re-download it.') from None


def _coverage(title: str,
              target: Mapping[str, Shape],
              source: Mapping[str, torch.Tensor],
              notes: Optional[List[str]] = None,
              tolerated: Optional[Mapping[str, str]] = None) -> CoverageReport:
    """Name-based coverage of ``source`` against ``target`` (what ``load_state_dict`` does).

    Args:
        tolerated (Mapping[str, str], optional): Target keys whose shape may differ because the
            loader resizes them (Swin), with the reason.
    """
    matched, mismatched, unexpected = [], {}, OrderedDict()
    for key, value in source.items():
        if key not in target:
            unexpected[key] = key
        elif tuple(value.shape) == tuple(target[key]) or key in (tolerated or {}):
            matched.append(key)
        else:
            mismatched[key] = (key, tuple(value.shape))
    report = CoverageReport.build(title, target, matched, mismatched, unexpected, notes=notes)
    for key, why in (tolerated or {}).items():
        report.notes.append(f'{key}: {why}')
    return report


def _swin_state(module: nn.Module, init_cfg: dict, ckpt: Mapping,
                notes: List[str]) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The state dict mmdet's ``SwinTransformer.init_weights`` would load."""
    if init_cfg.get('prefix'):
        notes.append(f"prefix={init_cfg['prefix']!r} is ignored by mmdet's SwinTransformer")
    state = ckpt.get('state_dict', ckpt.get('model', ckpt))
    convert = bool(getattr(module, 'convert_weights', False))
    if convert:
        from mmdet.models.backbones.swin import swin_converter
        state = swin_converter(state)
    kept = OrderedDict((k[9:], v) for k, v in state.items() if k.startswith('backbone.'))
    if not kept:
        raise ConversionError(
            "mmdet's SwinTransformer.init_weights keeps only keys starting with 'backbone.' "
            '(it ignores prefix) and this checkpoint has none: training would crash with '
            'IndexError. Convert it with tools/convert_to_mmdet.py, which writes backbone.* keys '
            f'(top-level prefixes found: {sorted({k.split(".")[0] for k in state})[:8]}).')
    if next(iter(kept)).startswith('module.'):
        kept = OrderedDict((k[7:], v) for k, v in kept.items())
    own = module.state_dict()
    tables = [k for k in kept if 'relative_position_bias_table' in k and k not in own]
    if tables:
        hint = (' convert_weights=True expects the official Microsoft Swin layout and renamed '
                'OpenMMLab-format keys (backbone.backbone.*): set '
                'model.backbone.convert_weights=False.' if convert else '')
        raise ConversionError(
            f"mmdet's SwinTransformer.init_weights would crash with KeyError: {tables[0]!r} (the "
            f'checkpoint has position-bias tables the model does not have).{hint}')
    tolerated = {}
    for key, value in kept.items():
        if key not in own or tuple(value.shape) == tuple(own[key].shape):
            continue
        if key == 'absolute_pos_embed' and value.numel() == own[key].numel():
            tolerated[key] = 'reshaped to (N, C, H, W) by SwinTransformer.init_weights'
        elif 'relative_position_bias_table' in key and value.shape[1] == own[key].shape[1]:
            tolerated[key] = 'bicubically resized by SwinTransformer.init_weights'
    return kept, tolerated


def check_init_cfg(model: nn.Module, path: str, init_cfg: dict,
                   trust: bool = False) -> Optional[CoverageReport]:
    """Report what one ``Pretrained`` ``init_cfg`` loads into ``model.<path>``.

    Returns:
        CoverageReport | None: None for a remote checkpoint (not downloaded).

    Raises:
        ConversionError: If the file cannot be read or the loader would fail.
    """
    checkpoint = str(init_cfg.get('checkpoint'))
    if _is_remote(checkpoint):
        return None
    module = model.get_submodule(path) if path else model
    prefix = f'{path}.' if path else ''
    where = f'model.{path}' if path else 'model'
    title = f'init_cfg of {where}: Pretrained({osp.basename(checkpoint)!r}' + (
        f", prefix={init_cfg['prefix']!r})" if init_cfg.get('prefix') else ')')
    ckpt = _load_like_runner(checkpoint, trust)
    notes: List[str] = []
    tolerated: Dict[str, str] = {}
    is_swin = type(module).__name__ == 'SwinTransformer' and type(module).__module__.startswith(
        'mmdet')
    if is_swin:
        state, tolerated = _swin_state(module, init_cfg, ckpt, notes)
    elif init_cfg.get('prefix'):
        pre = init_cfg['prefix'] if init_cfg['prefix'].endswith('.') else init_cfg['prefix'] + '.'
        source = ckpt.get('state_dict', ckpt)
        state = OrderedDict((k[len(pre):], v) for k, v in source.items() if k.startswith(pre))
        if not state:
            raise ConversionError(
                f'{where}.init_cfg prefix {pre!r} is not in {checkpoint!r} (mmengine raises '
                f'"AssertionError: {pre} is not in the pretrained model"); its top-level prefixes '
                f'are {sorted({k.split(".")[0] for k in source})[:8]}. Use prefix=None for a '
                'backbone-only file.')
    else:
        source = ckpt.get('state_dict', ckpt)
        state = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in source.items())
    state = OrderedDict((prefix + k, v) for k, v in state.items() if isinstance(v, torch.Tensor))
    target = OrderedDict((prefix + k, v) for k, v in _shapes(module.state_dict()).items())
    tolerated = {prefix + k: v for k, v in tolerated.items()}
    return _coverage(title, target, state, notes, tolerated)


def check_load_from(model: nn.Module, filename: str, trust: bool = False) -> CoverageReport:
    """Load ``filename`` into ``model`` exactly like the runner's ``load_from`` and report.

    Raises:
        ConversionError: If the file cannot be read the way the runner reads it.
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    ckpt = _load_like_runner(filename, trust)
    state = ckpt['state_dict'] if 'state_dict' in ckpt else ckpt
    for pattern, repl in _REVISE_KEYS:
        state = OrderedDict((re.sub(pattern, repl, k), v) for k, v in state.items())
    state = OrderedDict((k, v) for k, v in state.items() if isinstance(v, torch.Tensor))
    report = _coverage(f'load_from = {osp.basename(filename)!r} (strict=False)',
                       _shapes(model.state_dict()), state)
    _load_checkpoint_to_model(model, ckpt, strict=False, logger='silent', revise_keys=_REVISE_KEYS)
    current = model.state_dict()
    differ = [k for m in report.modules for k in m.matched if not torch.equal(current[k], state[k])]
    if differ:
        report.errors.append(f'{len(differ)} matched tensors differ after loading: '
                             f'{summarize_prefixes(differ)}')
    else:
        report.notes.append('loaded into the model and compared: every matched tensor arrived')
    report.notes.extend(_unconverted_parts(state, current))
    return report


def _unconverted_parts(source: Mapping[str, torch.Tensor],
                       target: Mapping[str, torch.Tensor]) -> List[str]:
    """What a raw pre-training checkpoint given as ``load_from`` leaves behind.

    mmengine loads it (``strict=False``): the run starts, backbone and FPN arrive, but parts the
    converter would rename (the pre-trained 4-conv head ``tile_head.*`` ->
    ``roi_head.bbox_head.shared_convs.*``, ...) stay at their initialisation, with only a warning
    about unexpected keys in the log.
    """
    from .convert import MAPPING_RULES
    notes = []
    for rule in MAPPING_RULES:
        if rule.source == rule.target:
            continue
        held = [k for k in source if k.startswith(rule.source)]
        free = [k for k in target if k.startswith(rule.target) and k not in source]
        if held and free:
            notes.append(
                f'the checkpoint holds {len(held)} {rule.source}* tensors that the detector '
                f'names {rule.target}*: given as load_from, the fine-tune run starts but these '
                f'{len(free)} keys stay at their initialisation (mmengine only warns about '
                'unexpected keys). Convert first to hand them over: tools/convert_to_mmdet.py '
                'CHECKPOINT OUT.pth --config CONFIG, then load_from=OUT.pth.')
    return notes


def check_pretrained(config: Union[str, Any],
                     checkpoint: Optional[str] = None,
                     cfg_options: Optional[dict] = None,
                     trust: bool = False) -> CheckResult:
    """Check which pre-trained weights a fine-tune config would load.

    Args:
        config (str | Config): Fine-tune config.
        checkpoint (str, optional): Checkpoint given as ``load_from``; defaults to the config's
            ``load_from``.
        cfg_options (dict, optional): Config overrides.
        trust (bool): Unpickle checkpoints outside the allow-list in full (``--trust-checkpoint``).

    Returns:
        CheckResult: Reports and verdict (``ok`` is False when a backbone key gets no verified
        weights or a source cannot be loaded).
    """
    model, cfg = build_target_model(config, cfg_options)
    result = CheckResult()
    target = _shapes(model.state_dict())
    backbone = [k for k in target if k.startswith('backbone.')]
    result.backbone_keys = len(backbone)
    covered, assumed = set(), set()
    sources: Dict[str, Shape] = {}
    for path, init_cfg in find_pretrained_init_cfgs(cfg.model):
        try:
            report = check_init_cfg(model, path, init_cfg, trust)
        except ConversionError as exc:
            result.errors.append(str(exc))
            continue
        if report is None:
            result.unverified.append(f"{path or 'model'}: {init_cfg.get('checkpoint')}")
            assumed.update(k for k in backbone if k.startswith(f'{path}.') or not path)
            continue
        result.reports.append(report)
        covered.update(k for m in report.modules for k in m.matched)
    load_from = checkpoint or cfg.get('load_from')
    if load_from:
        try:
            report = check_load_from(model, load_from, trust)
            result.reports.append(report)
            covered.update(k for m in report.modules for k in m.matched)
            result.errors.extend(report.errors)
            sources = {k: () for m in report.modules for k in m.matched + m.unexpected}
            sources.update(
                (s, shape) for m in report.modules for _, s, shape, _ in m.shape_mismatch)
        except ConversionError as exc:
            result.errors.append(str(exc))
    result.backbone_covered = len([k for k in backbone if k in covered])
    uncovered = [k for k in backbone if k not in covered and k not in assumed]
    if uncovered and not result.errors:
        if not result.reports and not result.unverified:
            result.errors.append(
                'no pre-trained weights reach the model: the config has no load_from and no '
                'Pretrained init_cfg, so the detector trains from scratch (intended only for the '
                "*_random-init twins). Pass the converted checkpoint: --cfg-options "
                'load_from=PATH, or as CHECKPOINT here.')
        else:
            hints = diagnose_backbone(sources, {k: target[k] for k in backbone}, uncovered, {})
            result.errors.append(
                f'{len(uncovered)} of {len(backbone)} backbone keys receive no pre-trained '
                f'weights: {summarize_prefixes(uncovered)}.' +
                (' Likely cause: ' + ' '.join(hints) if hints else ''))
    return result
