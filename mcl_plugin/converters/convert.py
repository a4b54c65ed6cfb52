# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Convert pre-training checkpoints into checkpoints an MMDetection detector loads.

The converter builds the *target* detector from a fine-tune config, maps the source keys onto the
target's state dict with the data-driven tables :data:`MAPPING_RULES` and :data:`DROP_RULES`,
and reports the coverage per module (:class:`CoverageReport`). Missing or shape-mismatched
backbone keys are an error, because mmengine loads ``load_from`` / ``init_cfg`` with
``strict=False`` and would otherwise fine-tune a randomly initialised backbone without a word.

Recognised source layouts (a leading ``module.`` is stripped from every key):

* plugin pre-training models (MCL, and SoCo/DetCo/PLRC with the same names): ``backbone.*``
  (mmdet ``ResNet`` or ``SwinTransformer`` keys), ``neck.*`` (mmdet ``FPN`` keys),
  ``tile_head.shared_convs.*`` (four mmcv ``ConvModule`` = mmdet ``Shared4Conv1FCBBoxHead``'s
  ``shared_convs``), ``tile_head.layer4.*`` (C4 variant: an mmdet ``ResLayer``), and an EMA target
  ``target_net.module.<name>.*`` (``--use-ema`` renames the prefix to ``<name>.*``; older
  positional ``target_net.module.<K>.*`` keys too, see :mod:`.ema`);
* mmpretrain BYOL / MoCo v2 / MoCo v3 / DenseCL checkpoints and mmselfsup 1.x checkpoints (same
  layout): ``backbone.*`` is kept; their ``neck.*`` is a projector MLP, not an FPN, and is dropped;
  ``target_net.*`` / ``momentum_encoder.*`` / ``encoder_k.*`` are their momentum encoders.
  mmselfsup writes momenta as ``0.996`` and mmpretrain as ``0.004`` (``avg = m*avg + (1-m)*x``
  against mmengine's ``avg = (1-m)*avg + m*x``); the stored *weights* have the same meaning, so
  the convention is irrelevant here;
* backbone-only files (``extract_backbone_weights`` outputs, torchvision state dicts);
* checkpoints written by this converter (converting twice gives identical tensors).

Reading the source and writing the output live in :mod:`.io`, the EMA selection in :mod:`.ema`;
their names are re-exported here.
"""
import os.path as osp
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union)

import torch
from torch import nn

from .coverage import CoverageReport, ModuleCoverage, Shape
from .ema import EMA_WRAPPERS, LEGACY_EMA_ORDERS, select_ema
from .io import (ConversionError, StateDict, check_output_path, extract_state_dict,
                 load_source_checkpoint, sha256sum, torch_load, write_checkpoint)
from .io import state_shapes as _shapes

if TYPE_CHECKING:
    from mmengine.config import Config

__all__ = [
    'MAPPING_RULES', 'DROP_RULES', 'KEY_TRANSFORMS', 'ConversionError', 'CoverageReport',
    'MappingRule', 'ModuleCoverage', 'build_target_model', 'convert_checkpoint',
    'convert_state_dict', 'load_source_checkpoint', 'EMA_WRAPPERS', 'LEGACY_EMA_ORDERS',
    'check_output_path', 'extract_state_dict', 'sha256sum', 'torch_load'
]

#: Parts of the detector a checkpoint can initialise (``--parts``).
PARTS = ('backbone', 'neck', 'head')
#: Key of the provenance record in the ``meta`` of converted checkpoints.
META_KEY = 'mcl_plugin_convert'
#: First key components that identify a bare (prefix-less) backbone state dict.
BACKBONE_ROOTS = ('conv1', 'bn1', 'stem', 'layer1', 'layer2', 'layer3', 'layer4', 'patch_embed',
                  'stages', 'absolute_pos_embed')


@dataclass(frozen=True)
class MappingRule:
    """Maps source keys starting with ``source`` to target keys starting with ``target``.

    Rules are tried in the order of :data:`MAPPING_RULES`; a source key is taken by the first
    rule whose target key exists in the detector and is still free, so an earlier rule wins over
    a later fallback.

    Attributes:
        source (str): Source key prefix (after ``module.`` stripping and EMA selection).
        target (str): Target key prefix in the detector's state dict.
        part (str): One of :data:`PARTS`; ``--parts`` filters on it.
        transform (str, optional): Name of a key transform in :data:`KEY_TRANSFORMS` applied to
            the renamed key. Defaults to None.
        note (str): Why the rule exists (printed when it is used). Defaults to ''.
    """

    source: str
    target: str
    part: str
    transform: Optional[str] = None
    note: str = ''


_SHARED_CONVS = 'roi_head.bbox_head.shared_convs.'
_SHARED_FCS = 'roi_head.bbox_head.shared_fcs.'
_RES5_HEAD = 'roi_head.shared_head.layer4.'

#: The mapping table. Future algorithms that pre-train other detector parts add rows here.
MAPPING_RULES: Tuple[MappingRule, ...] = (
    MappingRule('backbone.', 'backbone.', 'backbone'),
    MappingRule('neck.', 'neck.', 'neck', transform='fpn_levels'),
    # Pre-training RoI/tile heads built from mmcv ConvModules with mmdet's names.
    MappingRule('tile_head.shared_convs.', _SHARED_CONVS, 'head'),
    MappingRule('tile_head.shared_fcs.', _SHARED_FCS, 'head'),
    MappingRule('tile_head.layer4.', _RES5_HEAD, 'head'),
    MappingRule('roi_head_pretrain.bbox_head.shared_convs.', _SHARED_CONVS, 'head'),
    MappingRule('roi_head_pretrain.bbox_head.shared_fcs.', _SHARED_FCS, 'head'),
    MappingRule('roi_head_pretrain.shared_head.layer4.', _RES5_HEAD, 'head'),
    # Checkpoints that already carry detector names (e.g. written by this converter).
    MappingRule(_SHARED_CONVS, _SHARED_CONVS, 'head'),
    MappingRule(_SHARED_FCS, _SHARED_FCS, 'head'),
    MappingRule(_RES5_HEAD, _RES5_HEAD, 'head'),
    # Fallback for R50-C4: res5 of a 4-stage backbone initialises the shared res5 head.
    MappingRule(
        'backbone.layer4.',
        _RES5_HEAD,
        'head',
        note='res5 (backbone.layer4) of the 4-stage backbone initialises the C4 shared head '
        "roi_head.shared_head.layer4, as mmselfsup's C4 benchmark script does (shared_head "
        "init_cfg with prefix='backbone.')"),
)

#: Source keys never written to the detector: (regular expression, reason).
DROP_RULES: Tuple[Tuple[str, str], ...] = (
    (r'^backbone\.stem_pe\.', 'positional embedding (pre-training only)'),
    (r'^projector\.', 'projector (pre-training only)'),
    (r'^head\.', 'predictor / loss head (pre-training only)'),
    (r'^data_preprocessor\.', 'data preprocessor buffers'),
    (r'^queue', 'contrastive queues (MoCo / DenseCL / DetCo)'),
    (r'^(%s)\.' % '|'.join(EMA_WRAPPERS),
     'EMA / momentum target (pass --use-ema to convert it instead of the online weights)'),
)
_NON_FPN_NECK = 'neck is not an FPN (projection MLPs, e.g. BYOL/MoCo NonLinearNeck, DetCoNeck)'
_NOT_IN_PARTS = 'part excluded by --parts'
_SUPERSEDED = 'target key already filled by a higher-priority rule'
_FPN_LEVEL_ABSENT = 'FPN level absent from the target FPN (start_level)'

# --------------------------------------------------------------------------------------------
# Key transforms
# --------------------------------------------------------------------------------------------
KeyFn = Callable[[str], Optional[str]]


def _lateral_in_channels(shapes: Mapping[str, Shape], prefix: str) -> List[int]:
    """Input channels of ``{prefix}lateral_convs.{i}.conv.weight``, ordered by ``i``."""
    channels = []
    while True:
        shape = shapes.get(f'{prefix}lateral_convs.{len(channels)}.conv.weight')
        if shape is None or len(shape) != 4:
            return channels
        channels.append(int(shape[1]))


def _level_pattern(rule: MappingRule) -> 're.Pattern[str]':
    """``{target}lateral_convs.{i}.*`` / ``fpn_convs.{i}.*`` keys, level in group 2."""
    return re.compile(r'^%s(lateral_convs|fpn_convs)\.(\d+)\.(.+)$' % re.escape(rule.target))


def _fpn_levels(rule: MappingRule, source: Mapping[str, Shape],
                target: Mapping[str, Shape]) -> Optional[Tuple[KeyFn, str]]:
    """Re-index FPN levels when the target FPN starts at a later backbone stage.

    A RetinaNet FPN has ``start_level=1`` (C3..C5), a Mask R-CNN FPN ``start_level=0``
    (C2..C5): the pre-trained ``lateral_convs.1`` / ``fpn_convs.1`` (C3) are the target's
    ``.0``. The shift is found by matching the laterals' input channels.

    Returns:
        tuple[Callable, str] | None: The key function (None output = level absent from the
        target) and a note, or None when no re-indexing is needed or possible.
    """
    src_in = _lateral_in_channels(source, rule.source)
    tgt_in = _lateral_in_channels(target, rule.target)
    if not src_in or not tgt_in or src_in == tgt_in:
        return None
    offsets = [
        o for o in range(1,
                         len(src_in) - len(tgt_in) + 1) if src_in[o:o + len(tgt_in)] == tgt_in
    ]
    if not offsets:
        return _fpn_starts_later(rule, src_in, tgt_in)
    offset, n_src, n_tgt = offsets[0], len(src_in), len(tgt_in)
    pattern = _level_pattern(rule)

    def key_fn(key: str) -> Optional[str]:
        match = pattern.match(key)
        if match is None:
            return key
        index = int(match.group(2))
        if index >= n_src or not 0 <= index - offset < n_tgt:
            return None
        return f'{rule.target}{match.group(1)}.{index - offset}.{match.group(3)}'

    note = (f'FPN levels re-aligned: source lateral/fpn convs {offset}..{offset + n_tgt - 1} '
            f'-> target 0..{n_tgt - 1} (the target FPN starts at a later stage, in_channels '
            f'{tgt_in}; the source has {src_in})')
    return key_fn, note


def _fpn_starts_later(rule: MappingRule, src_in: List[int],
                      tgt_in: List[int]) -> Optional[Tuple[KeyFn, str]]:
    """The reverse case: the pre-trained FPN starts at a later stage than the target's (an MCL
    run with S <= 3 levels builds P3-P5 only, ``start_level=1``): source level ``i`` is target
    level ``i + shift``; the target's first ``shift`` levels keep their initialisation."""
    shift = len(tgt_in) - len(src_in)
    if shift <= 0 or tgt_in[shift:] != src_in:
        return None
    pattern = _level_pattern(rule)

    def key_fn(key: str) -> Optional[str]:
        match = pattern.match(key)
        if match is None:
            return key
        return f'{rule.target}{match.group(1)}.{int(match.group(2)) + shift}.{match.group(3)}'

    note = (f'FPN levels re-aligned: source lateral/fpn convs 0..{len(src_in) - 1} -> target '
            f'{shift}..{len(tgt_in) - 1} (the pre-trained FPN starts at a later stage, in_channels '
            f'{src_in}; the target has {tgt_in}); target levels 0..{shift - 1} keep their '
            'initialisation (no pre-training level read them)')
    return key_fn, note


#: Key transforms referenced by :attr:`MappingRule.transform`.
KEY_TRANSFORMS: Dict[str, Callable[..., Optional[Tuple[KeyFn, str]]]] = {
    'fpn_levels': _fpn_levels,
}

# --------------------------------------------------------------------------------------------
# The mapping
# --------------------------------------------------------------------------------------------


def _is_backbone_only(state: Mapping[str, torch.Tensor], target: Mapping[str, Shape]) -> bool:
    """Whether ``state`` is a bare backbone state dict (no ``backbone.`` prefix)."""
    if any(k.startswith('backbone.') for k in state):
        return False
    known = {r.source.split('.')[0] for r in MAPPING_RULES} | set(EMA_WRAPPERS)
    if any(k.split('.')[0] in known for k in state):
        return False
    hits = sum(f'backbone.{k}' in target for k in state)
    roots = sum(k.split('.')[0] in BACKBONE_ROOTS for k in state)
    return hits >= len(state) / 2 or roots >= len(state) / 2


@dataclass
class _Outcome:
    """Mapping state shared by the helper functions of :func:`convert_state_dict`."""

    target: Dict[str, Shape]
    converted: 'OrderedDict[str, torch.Tensor]' = field(default_factory=OrderedDict)
    mismatched: Dict[str, Tuple[str, Shape]] = field(default_factory=dict)
    dropped: Dict[str, List[str]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def drop(self, reason: str, key: str) -> None:
        self.dropped.setdefault(reason, []).append(key)


def _apply_rules(state: StateDict, parts: Sequence[str], out: _Outcome) -> Dict[str, Optional[str]]:
    """Run :data:`MAPPING_RULES` over ``state``; returns the unexpected source keys."""
    source_shapes = _shapes(state)
    pending = OrderedDict((k, v) for k, v in state.items())
    attempts: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
    for rule in MAPPING_RULES:
        keys = [k for k in pending if k.startswith(rule.source)]
        if not keys:
            continue
        if rule.part not in parts:
            for k in keys:
                attempts[k].append(('parts', rule.target))
            continue
        key_fn = None
        if rule.transform:
            built = KEY_TRANSFORMS[rule.transform](rule, source_shapes, out.target)
            if built is not None:
                key_fn, note = built
                out.notes.append(note)
        used = False
        for k in keys:
            tgt = rule.target + k[len(rule.source):]
            if key_fn is not None:
                tgt = key_fn(tgt)
                if tgt is None:
                    attempts[k].append(('level', rule.target))
                    continue
            if tgt not in out.target:
                has_prefix = any(t.startswith(rule.target) for t in out.target)
                attempts[k].append(('unexpected' if has_prefix else 'absent', tgt))
                continue
            if tgt in out.converted:
                attempts[k].append(('superseded', tgt))
                continue
            value = pending.pop(k)
            if tuple(value.shape) != out.target[tgt]:
                out.mismatched.setdefault(tgt, (k, tuple(value.shape)))
            else:
                out.converted[tgt] = value
                out.mismatched.pop(tgt, None)
                used = True
        if used and rule.note:
            out.notes.append(rule.note)
    return _classify_leftovers(pending, attempts, out)


def _rule_target(target_key: str) -> str:
    """The :attr:`MappingRule.target` prefix that produced ``target_key``."""
    rules = [r.target for r in MAPPING_RULES if target_key.startswith(r.target)]
    return max(rules, key=len) if rules else target_key


def _classify_leftovers(pending: Mapping[str, torch.Tensor],
                        attempts: Mapping[str, List[Tuple[str, str]]],
                        out: _Outcome) -> Dict[str, Optional[str]]:
    """Sort source keys no rule consumed into dropped-on-purpose and unexpected."""
    unexpected: Dict[str, Optional[str]] = OrderedDict()
    for k in pending:
        kinds = [a[0] for a in attempts.get(k, [])]
        if not kinds:
            unexpected[k] = None
        elif 'superseded' in kinds:
            out.drop(_SUPERSEDED, k)
        elif 'parts' in kinds:
            out.drop(_NOT_IN_PARTS, k)
        elif 'unexpected' in kinds:
            unexpected[k] = next(t for kind, t in attempts[k] if kind == 'unexpected')
        elif 'level' in kinds:
            out.drop(_FPN_LEVEL_ABSENT, k)
        else:
            prefix = next(_rule_target(t) for kind, t in attempts[k] if kind == 'absent')
            out.drop(f'the target has no {prefix}* (e.g. RetinaNet, or a 2fc box head)', k)
    return unexpected


def convert_state_dict(
    state: StateDict,
    target: Mapping[str, Shape],
    parts: Sequence[str] = PARTS,
    use_ema: bool = False,
    title: str = 'coverage',
    allow_missing: Sequence[str] = ()
) -> Tuple['OrderedDict[str, torch.Tensor]', CoverageReport]:
    """Map a source state dict onto target keys.

    Args:
        state (dict[str, Tensor]): Source state dict (``module.`` already stripped).
        target (Mapping[str, tuple]): Target state-dict keys and shapes.
        parts (Sequence[str]): Parts to transfer, a subset of :data:`PARTS`.
        use_ema (bool): Use the EMA target instead of the online weights.
        title (str): Headline of the report.
        allow_missing (Sequence[str]): Regular expressions of backbone keys that may stay at
            their initialisation.

    Returns:
        tuple[OrderedDict, CoverageReport]: The converted state dict (target order, the source
        tensors themselves) and the coverage report (already checked, see
        :meth:`CoverageReport.check_backbone`).

    Raises:
        ConversionError: On unknown parts or an unusable EMA request.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ConversionError(f'unknown parts {sorted(unknown)}; choose from {list(PARTS)}.')
    out = _Outcome(target=dict(target))
    if _is_backbone_only(state, target):
        state = OrderedDict((f'backbone.{k}', v) for k, v in state.items())
        out.notes.append('backbone-only checkpoint (no backbone. prefix, e.g. an '
                         'extract_backbone_weights output): keys prefixed with backbone.')
    state, ema_notes = select_ema(state, use_ema, out.dropped,
                                  {r.source.split('.')[0] for r in MAPPING_RULES})
    out.notes.extend(ema_notes)
    selected = _shapes(state)
    kept = OrderedDict()
    for k, v in state.items():
        reason = next((r for p, r in DROP_RULES if re.search(p, k)), None)
        if reason is None and k.startswith('neck.') and not any(
                re.match(r'^neck\.(lateral_convs|fpn_convs)\.', n) for n in state):
            reason = _NON_FPN_NECK
        if reason is not None:
            out.drop(reason, k)
        else:
            kept[k] = v
    unexpected = _apply_rules(kept, parts, out)
    converted = OrderedDict((k, out.converted[k]) for k in target if k in out.converted)
    report = CoverageReport.build(title, target, converted, out.mismatched, unexpected, out.dropped,
                                  out.notes)
    report.allowed_missing = list(allow_missing)
    report.check_backbone(selected, target)
    return converted, report


# --------------------------------------------------------------------------------------------
# Target model and the end-to-end conversion
# --------------------------------------------------------------------------------------------


def load_config(config: Union[str, 'Config'], cfg_options: Optional[dict] = None) -> 'Config':
    """Read a fine-tune config (its ``custom_imports`` are imported) and apply overrides."""
    from mmengine.config import Config
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_target_model(config: Union[str, 'Config'],
                       cfg_options: Optional[dict] = None) -> Tuple[nn.Module, 'Config']:
    """Build the detector of a fine-tune config (weights are *not* initialised/downloaded).

    Args:
        config (str | Config): Fine-tune config (``mmdet::`` bases, ``custom_imports``).
        cfg_options (dict, optional): Overrides in ``--cfg-options`` form.

    Returns:
        tuple[nn.Module, Config]: The model (SyncBN layers are built, never run) and the config.
    """
    import mcl_plugin  # noqa: F401  (registers the plugin; configs may name its modules)
    from mmengine.registry import MODELS, init_default_scope
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    return model, cfg


def target_shapes(model: nn.Module) -> Dict[str, Shape]:
    """Keys and shapes of a model's state dict, in order."""
    return _shapes(model.state_dict())


def convert_checkpoint(src: str,
                       dst: Optional[str],
                       config: Union[str, 'Config'],
                       use_ema: bool = False,
                       parts: Sequence[str] = PARTS,
                       cfg_options: Optional[dict] = None,
                       allow_missing: Sequence[str] = (),
                       progress: Optional[bool] = None,
                       trust: bool = False,
                       src_format: str = 'auto') -> CoverageReport:
    """Convert ``src`` for the detector of ``config`` and write ``dst``.

    ``dst`` is written (``dict(state_dict=..., meta=dict(mcl_plugin_convert=...))``, loadable
    with ``torch.load(weights_only=True)`` and therefore by mmengine's runner through
    ``load_from``) only when the backbone is fully covered.

    Args:
        src (str): Source checkpoint.
        dst (str, optional): Output path; None only reports.
        config (str | Config): Fine-tune config.
        use_ema (bool): Convert the EMA target instead of the online weights.
        parts (Sequence[str]): Parts to transfer (``backbone``, ``neck``, ``head``).
        cfg_options (dict, optional): Config overrides.
        allow_missing (Sequence[str]): Regexes of backbone keys that may stay at init.
        progress (bool, optional): A progress bar over the stages (read, build the detector,
            map the keys, write) on stderr; default: only when stderr is a terminal.
        trust (bool): Unpickle a source outside the checkpoint allow-list in full (runs its
            code; ``--trust-checkpoint``).
        src_format (str): Source layout, one of :data:`.official.FORMATS` (``auto`` detects
            the official SoCo / MCL / PLRC / DetCo layouts, see :mod:`.official`).

    Returns:
        CoverageReport: The report; ``report.ok`` tells whether ``dst`` was written.

    Raises:
        ConversionError: If the source cannot be read, ``dst`` is the source itself (by any
            path) or a directory, or the request is invalid. Nothing is written then.
    """
    import sys
    if dst is not None:
        check_output_path(src, dst)

    from tqdm import tqdm
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=4, desc=f'convert {osp.basename(src)}', unit='stage', disable=not show,
              file=sys.stderr) as bar:
        return _convert(src, dst, config, use_ema, parts, cfg_options, allow_missing, bar, trust,
                        src_format)


def _is_plugin_layout(state: Mapping[str, torch.Tensor], target: Mapping[str, Shape]) -> bool:
    """Whether some key has a root the plugin path knows (or the file is backbone-only)."""
    roots = {r.source.split('.')[0] for r in MAPPING_RULES} | set(EMA_WRAPPERS)
    return any(k.split('.')[0] in roots for k in state) or _is_backbone_only(state, target)


def _convert(src: str, dst: Optional[str], config: Union[str, 'Config'], use_ema: bool,
             parts: Sequence[str], cfg_options: Optional[dict], allow_missing: Sequence[str],
             bar, trust: bool = False, src_format: str = 'auto') -> CoverageReport:
    """The stages of :func:`convert_checkpoint`, each advancing ``bar``."""
    from .official import load_source, unknown_layout_error
    bar.set_postfix_str('reading', refresh=False)
    state, meta, load_notes, imported = load_source(src, trust, src_format, use_ema)
    bar.update(1)
    bar.set_postfix_str('building the detector', refresh=False)
    model, cfg = build_target_model(config, cfg_options)
    bar.update(1)
    if imported is None and src_format == 'auto' and not _is_plugin_layout(
            state, target_shapes(model)):
        raise unknown_layout_error(src, state)
    bar.set_postfix_str('mapping keys', refresh=False)
    cfg_name = config if isinstance(config, str) else cfg.filename
    title = (f'{osp.basename(src)} -> {osp.basename(str(cfg_name))} '
             f'(parts: {",".join(parts)}; weights: {"EMA target" if use_ema else "online"})')
    converted, report = convert_state_dict(state, target_shapes(model), parts,
                                           use_ema and imported is None, title, allow_missing)
    report.notes[:0] = load_notes
    if imported is not None:  # an official layout: its renaming already selected the weights
        report.notes[:0] = imported.notes
        for reason, keys in imported.dropped.items():
            report.dropped.setdefault(reason, []).extend(keys)
    if isinstance(meta.get(META_KEY), Mapping):
        report.notes.insert(0, 'the source was written by this converter (re-conversion)')
    bar.update(1)
    if dst is None or not report.ok:
        return report
    bar.set_postfix_str(f'writing {len(converted)} tensors', refresh=False)
    record = dict(source=osp.abspath(src),
                  source_sha256=sha256sum(src),
                  config=str(cfg_name),
                  parts=list(parts),
                  use_ema=bool(use_ema),
                  src_format=imported.layout if imported is not None else 'plugin',
                  totals=report.totals(),
                  counts=report.counts(),
                  dropped={
                      reason: len(keys)
                      for reason, keys in report.dropped.items()
                  },
                  notes=list(report.notes))
    checkpoint = dict(state_dict=OrderedDict((k, v.detach().clone()) for k, v in converted.items()),
                      meta={META_KEY: record})
    write_checkpoint(checkpoint, src, dst)
    bar.update(1)
    return report
