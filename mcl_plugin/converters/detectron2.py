# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Export pre-training checkpoints as detectron2 weights (``.pkl``) for the papers' protocols.

MCL, SoCo and DetCo report detectron2 transfer numbers. This module writes the file detectron2's
``DetectionCheckpointer._load_file`` reads for a ``.pkl`` path: a pickle of ``{'model': {name:
numpy array}, '__author__': ..., 'matching_heuristics': True}`` (the format of MoCo's /
mmselfsup's ``convert-pretrain-to-detectron2.py`` and SoCo's ``converter_detectron2``; SoCo,
MIT licence, (c) 2021 Microsoft, guided the FPN / box-head naming), plus a provenance record
under ``mcl_plugin_convert``. Names are written in full (``backbone.bottom_up.res2.0...``), so
detectron2's suffix-matching heuristics find exactly one model key for each.

The export reuses the mmdet hand-off: the source is read by :func:`.official.load_source`
(safe loading, ``--trust-checkpoint``, official layouts, ``--src-format``), mapped by
:func:`.convert.convert_state_dict` (EMA selection, drop rules, FPN level alignment) onto an
mmdet-named image of the detectron2 model, then renamed with :data:`D2_RENAMES`. Targets:

* ``backbone``: the ResNet. ``arch='fpn'``: ``backbone.bottom_up.{stem,res2..res5}``;
  ``arch='c4'``: ``backbone.{stem,res2..res4}`` and ``roi_heads.res5`` (the backbone's res5,
  as MoCo's C4 protocol);
* ``fpn-head``: ``backbone`` (FPN naming) + ``backbone.fpn_lateral{2..5}`` /
  ``backbone.fpn_output{2..5}`` + the box head's ``roi_heads.box_head.conv{1..4}`` (and
  ``fc1`` when the checkpoint has one, e.g. SoCo's 4conv1fc head);
* ``res5-head``: the C4 model with ``roi_heads.res5`` from the pre-trained res5 head
  (``tile_head.layer4`` of the C4 variants; the backbone's res5 otherwise).

detectron2 is not a dependency; the names and shapes were read from its source and are checked
against ``tests/fixtures/detectron2_r50_names.json``.
"""
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .convert import _NOT_IN_PARTS, _is_plugin_layout, convert_state_dict
from .coverage import CoverageReport, Shape, describe_backbone, summarize_prefixes
from .io import ConversionError, StateDict, check_output_path, sha256sum, write_checkpoint

__all__ = [
    'ARCHS', 'D2_RENAMES', 'TARGETS', 'config_snippet', 'convert_to_detectron2', 'd2_module_of',
    'detectron2_target', 'export_state_dict', 'mmdet_to_detectron2'
]

#: ``--target`` choices.
TARGETS = ('backbone', 'fpn-head', 'res5-head')
#: ``--arch`` choices (``auto``: C4 for a 3-stage backbone or a res5 tile head).
ARCHS = ('auto', 'fpn', 'c4')
AUTHOR = 'mcl_plugin'
META_KEY = 'mcl_plugin_convert'
_SUFFIX = '_detectron2.pkl'

#: mmdet detector name -> detectron2 name: (regular expression, replacement; ``{bb}`` is the
#: backbone prefix: ``backbone.bottom_up.`` for FPN models, ``backbone.`` for C4 models).
D2_RENAMES: Tuple[Tuple[str, str], ...] = (
    (r'^backbone\.conv1\.', '{bb}stem.conv1.'),
    (r'^backbone\.(?:bn|gn)1\.', '{bb}stem.conv1.norm.'),
    (r'^backbone\.layer([1-3])\.', '{bb}res<\\1+1>.'),
    (r'^backbone\.layer4\.', '{res5}'),
    (r'^roi_head\.shared_head\.layer4\.', 'roi_heads.res5.'),
    (r'^neck\.lateral_convs\.(\d)\.conv\.', 'backbone.fpn_lateral<\\1+2>.'),
    (r'^neck\.lateral_convs\.(\d)\.(?:bn|gn)\.', 'backbone.fpn_lateral<\\1+2>.norm.'),
    (r'^neck\.fpn_convs\.(\d)\.conv\.', 'backbone.fpn_output<\\1+2>.'),
    (r'^neck\.fpn_convs\.(\d)\.(?:bn|gn)\.', 'backbone.fpn_output<\\1+2>.norm.'),
    (r'^roi_head\.bbox_head\.shared_convs\.(\d)\.conv\.', 'roi_heads.box_head.conv<\\1+1>.'),
    (r'^roi_head\.bbox_head\.shared_convs\.(\d)\.(?:bn|gn)\.',
     'roi_heads.box_head.conv<\\1+1>.norm.'),
    (r'^roi_head\.bbox_head\.shared_fcs\.(\d)\.', 'roi_heads.box_head.fc<\\1+1>.'),
)
#: Inside ResNet blocks: mmdet ``bn{k}`` / ``downsample.{0,1}`` -> detectron2 names.
_BLOCK_RENAMES: Tuple[Tuple[str, str], ...] = (
    (r'\.(?:bn|gn)([1-3])\.', r'.conv\1.norm.'),
    (r'\.downsample\.0\.', '.shortcut.'),
    (r'\.downsample\.1\.', '.shortcut.norm.'),
)
#: Targets -> (mmdet parts handed to :func:`.convert.convert_state_dict`, architecture).
_TARGET_SPEC = {
    'backbone': (('backbone', ), None),
    'fpn-head': (('backbone', 'neck', 'head'), 'fpn'),
    'res5-head': (('backbone', 'head'), 'c4'),
}
_NORMS = {'bn': 'SyncBN', 'gn': 'GN', '': ''}


def _add(match: 're.Match') -> str:
    """``<3+1>`` -> ``4``: the index arithmetic of :data:`D2_RENAMES`."""
    return str(int(match.group(1)) + int(match.group(2)))


def mmdet_to_detectron2(key: str, arch: str = 'fpn') -> Optional[str]:
    """The detectron2 name of an mmdet detector key, or None if it has none here.

    Args:
        key (str): mmdet name, e.g. ``backbone.layer1.0.bn1.weight``.
        arch (str): ``fpn`` (ResNet under ``backbone.bottom_up``) or ``c4`` (``backbone`` and,
            for ``backbone.layer4``, ``roi_heads.res5``).

    Returns:
        str | None: e.g. ``backbone.bottom_up.res2.0.conv1.norm.weight``.
    """
    bb = 'backbone.bottom_up.' if arch == 'fpn' else 'backbone.'
    res5 = f'{bb}res5.' if arch == 'fpn' else 'roi_heads.res5.'
    for pattern, repl in D2_RENAMES:
        if re.match(pattern, key):
            new = re.sub(pattern, repl.format(bb=bb, res5=res5), key, count=1)
            new = re.sub(r'<(\d+)\+(\d+)>', _add, new)
            if re.search(r'(res\d|roi_heads\.res5)\.\d+\.', new):
                for block, block_repl in _BLOCK_RENAMES:
                    new = re.sub(block, block_repl, new)
            return new
    return None


def d2_module_of(key: str) -> str:
    """Row of the coverage table a detectron2 key belongs to."""
    parts = key.split('.')
    if parts[0] == 'backbone' and len(parts) > 2:
        if parts[1] == 'bottom_up':
            return 'backbone.bottom_up'
        if parts[1].startswith('fpn_'):
            return 'backbone.fpn'
    if parts[0] == 'roi_heads' and len(parts) > 2:
        return '.'.join(parts[:2])
    return parts[0]


# --------------------------------------------------------------------------------------------
# What the source holds (depth, stages, norms) and the target it implies
# --------------------------------------------------------------------------------------------
_BACKBONE_KEY = re.compile(
    r'^(?:(?:.+\.)?backbone\.)?((?:conv1|bn1|gn1|layer[1-4]|patch_embed|stages)\..+)$')


def _norm_of(state: Mapping[str, torch.Tensor], pattern: str) -> Optional[str]:
    """``SyncBN`` / ``GN`` / ``''`` for the first key matching ``pattern`` + norm or conv bias."""
    for key in state:
        m = re.match(pattern + r'\.(bn|gn)\.weight$', key)
        if m:
            return _NORMS[m.group(1)]
    if any(re.match(pattern + r'\.conv\.bias$', k) for k in state):
        return ''
    return None


def inspect_source(state: Mapping[str, torch.Tensor]) -> Dict[str, object]:
    """Depth, stage count, norms and head layout of a plugin-layout state dict.

    Returns:
        dict: ``depth`` (int), ``stages`` (3 or 4), ``res5_head`` (bool: a ``tile_head.layer4``
        res5 head), ``fc`` (bool: the box head has ``shared_fcs.0``), ``resnet_norm``,
        ``fpn_norm``, ``head_norm`` (detectron2 norm names; FPN / head default ``SyncBN``).

    Raises:
        ConversionError: If the backbone is no ResNet (detectron2 export supports ResNets).
    """
    shapes = OrderedDict()
    for key, value in state.items():
        m = _BACKBONE_KEY.match(key)
        if m and not key.startswith('tile_head.'):
            shapes.setdefault('backbone.' + m.group(1), tuple(value.shape))
    name = describe_backbone(shapes, shapes=shapes) or ''
    depth = re.match(r'ResNet-(\d+)', name)
    if depth is None:
        found = name or f'no ResNet keys ({summarize_prefixes(state, depth=2, limit=6)})'
        raise ConversionError(f'the detectron2 export supports ResNet backbones; the checkpoint '
                              f'holds {found}.')
    stages = 3 if 'C4' in name else 4
    fpn_norm = _norm_of(state, r'^(?:.+\.)?neck\.lateral_convs\.\d+')
    head_norm = _norm_of(state, r'^(?:.+\.)?shared_convs\.\d+')
    return dict(depth=int(depth.group(1)),
                stages=stages,
                res5_head=any(re.match(r'^(?:.+\.)?tile_head\.layer4\.', k) for k in state),
                fc=any(
                    re.match(r'^(?:.+\.)?(?:tile_head|bbox_head)\.shared_fcs\.0\.weight$', k)
                    for k in state),
                resnet_norm='GN' if 'backbone.gn1.weight' in shapes else 'SyncBN',
                fpn_norm='SyncBN' if fpn_norm is None else fpn_norm,
                head_norm='SyncBN' if head_norm is None else head_norm)


def resolve_arch(target: str, arch: str, info: Mapping[str, object]) -> str:
    """The detectron2 architecture (``fpn`` / ``c4``) of a request.

    Raises:
        ConversionError: On an unknown target / arch or a contradicting pair.
    """
    if target not in TARGETS:
        raise ConversionError(f'unknown --target {target!r}; choose from {list(TARGETS)}.')
    if arch not in ARCHS:
        raise ConversionError(f'unknown --arch {arch!r}; choose from {list(ARCHS)}.')
    implied = _TARGET_SPEC[target][1]
    if implied and arch not in ('auto', implied):
        raise ConversionError(f'--target {target} exports a detectron2 {implied.upper()} model; '
                              f'it cannot be combined with --arch {arch}.')
    if implied:
        return implied
    if arch != 'auto':
        return arch
    return 'c4' if info['stages'] == 3 or info['res5_head'] else 'fpn'


def detectron2_target(target: str, arch: str, info: Mapping[str, object]) -> Dict[str, Shape]:
    """Keys and shapes of the exported part of the detectron2 model, in mmdet names.

    Built from mmdet modules (``ResNet``, ``FPN``, mmcv ``ConvModule``, ``ResLayer``) whose
    state dicts :func:`mmdet_to_detectron2` renames one to one into detectron2's.

    Args:
        target (str): One of :data:`TARGETS`.
        arch (str): ``fpn`` or ``c4`` (see :func:`resolve_arch`).
        info (Mapping): :func:`inspect_source` output.

    Returns:
        dict[str, tuple]: mmdet key -> shape.
    """
    from mmcv.cnn import ConvModule
    from mmdet.models.backbones import ResNet
    from mmdet.models.necks import FPN
    from mmdet.models.roi_heads.shared_heads import ResLayer
    depth = int(info['depth'])
    if arch == 'c4' and depth < 50:
        raise ConversionError(f'detectron2 C4 models build a bottleneck res5 head '
                              f'(Res5ROIHeads); a ResNet-{depth} has none. Use --arch fpn.')

    def norm(name: object) -> Optional[dict]:
        return {'SyncBN': dict(type='BN'), 'GN': dict(type='GN', num_groups=32)}.get(str(name))

    stages = 3 if target == 'res5-head' else 4
    modules: List[Tuple[str, torch.nn.Module]] = []
    with torch.device('meta'):
        modules.append(('backbone.',
                        ResNet(depth,
                               num_stages=stages,
                               strides=(1, 2, 2, 2)[:stages],
                               dilations=(1, ) * stages,
                               out_indices=tuple(range(stages)),
                               norm_cfg=norm(info['resnet_norm']))))
        if target == 'res5-head':
            modules.append(('roi_head.shared_head.',
                            ResLayer(depth, stage=3, norm_cfg=norm(info['resnet_norm']))))
        if target == 'fpn-head':
            base = 64 if depth < 50 else 256
            modules.append(('neck.',
                            FPN([base, base * 2, base * 4, base * 8],
                                256,
                                num_outs=5,
                                norm_cfg=norm(info['fpn_norm']))))
            for i in range(4):
                modules.append((f'roi_head.bbox_head.shared_convs.{i}.',
                                ConvModule(256, 256, 3, padding=1,
                                           norm_cfg=norm(info['head_norm']))))
            if info['fc']:
                modules.append(
                    ('roi_head.bbox_head.shared_fcs.0.', torch.nn.Linear(256 * 7 * 7, 1024)))
    return OrderedDict((prefix + k, tuple(v.shape)) for prefix, module in modules
                       for k, v in module.state_dict().items())


# --------------------------------------------------------------------------------------------
# The export
# --------------------------------------------------------------------------------------------


def _relabel(dropped: Mapping[str, List[str]], target: str) -> Dict[str, List[str]]:
    """Drop reasons of the mmdet mapping in the words of the detectron2 export."""
    out: Dict[str, List[str]] = OrderedDict()
    for reason, keys in dropped.items():
        if reason == _NOT_IN_PARTS or reason.startswith('the target has no '):
            reason = f'not part of --target {target}'
        out.setdefault(reason, []).extend(keys)
    return out


def export_state_dict(
    state: StateDict,
    target: str = 'backbone',
    arch: str = 'auto',
    use_ema: bool = False,
    allow_missing: Sequence[str] = (),
    title: str = 'detectron2 export',
    info: Optional[Mapping[str, object]] = None
) -> Tuple['OrderedDict[str, torch.Tensor]', CoverageReport, str]:
    """Map a plugin-layout state dict onto detectron2 names.

    Args:
        state (dict[str, Tensor]): Source state dict (plugin / mmpretrain layout or a bare
            backbone; official layouts already imported by :func:`.official.load_source`).
        target (str): One of :data:`TARGETS`.
        arch (str): One of :data:`ARCHS`.
        use_ema (bool): Export the EMA target instead of the online weights.
        allow_missing (Sequence[str]): Regexes of detectron2 names that may stay at init.
        title (str): Headline of the report.
        info (Mapping, optional): :func:`inspect_source` output (computed when None).

    Returns:
        tuple: The detectron2 state dict (source tensors, detectron2 order), the coverage
        report (``ok`` only when every expected name is present with the right shape, less
        ``allow_missing``) and the architecture (``fpn`` / ``c4``).

    Raises:
        ConversionError: Invalid request or a non-ResNet backbone.
    """
    info = inspect_source(state) if info is None else info
    arch = resolve_arch(target, arch, info)
    mm_target = detectron2_target(target, arch, info)
    parts = _TARGET_SPEC[target][0]
    converted, mm_report = convert_state_dict(state, mm_target, parts, use_ema, title)
    names = OrderedDict((k, mmdet_to_detectron2(k, arch)) for k in mm_target)
    missing_name = [k for k, v in names.items() if v is None]
    assert not missing_name, f'no detectron2 name for {missing_name[:3]}'  # a table bug
    d2_shapes = OrderedDict((names[k], s) for k, s in mm_target.items())
    mismatched, unexpected = {}, OrderedDict()
    for row in mm_report.modules:
        for tgt, src, s_shape, _ in row.shape_mismatch:
            mismatched[names[tgt]] = (src, s_shape)
        row_key = names[row.target_keys[0]] if row.target_keys else None
        unexpected.update((k, row_key) for k in row.unexpected)
    exported = OrderedDict((names[k], v) for k, v in converted.items())
    report = CoverageReport.build(title,
                                  d2_shapes,
                                  exported,
                                  mismatched,
                                  unexpected,
                                  _relabel(mm_report.dropped, target),
                                  mm_report.notes,
                                  module_fn=d2_module_of)
    report.allowed_missing = list(allow_missing)
    report.errors.extend(_coverage_errors(report, target, arch, info))
    return OrderedDict((k, exported[k]) for k in d2_shapes if k in exported), report, arch


def _coverage_errors(report: CoverageReport, target: str, arch: str,
                     info: Mapping[str, object]) -> List[str]:
    """An error naming the expected detectron2 keys that are missing or mis-shaped."""
    allowed = [re.compile(p) for p in report.allowed_missing]
    missing = [
        k for m in report.modules for k in m.missing if not any(p.search(k) for p in allowed)
    ]
    mismatch = [t for m in report.modules for t in m.shape_mismatch]
    if not missing and not mismatch:
        return []
    total = sum(len(m.target_keys) for m in report.modules)
    msg = (f'{len(missing)} of {total} detectron2 keys of --target {target} ({arch.upper()}, '
           f'ResNet-{info["depth"]}) are missing from the checkpoint')
    msg += f' and {len(mismatch)} have another shape.' if mismatch else '.'
    if missing:
        rows: Dict[str, List[str]] = OrderedDict()
        for key in missing:
            rows.setdefault(d2_module_of(key), []).append(key)
        msg += ' Missing: ' + '; '.join(
            f'{row} {len(keys)} keys ({summarize_prefixes(keys, row.count(".") + 2, 4)})'
            for row, keys in rows.items()) + '.'
    if mismatch:
        msg += ' Shape mismatch: ' + ', '.join(f'{t} {list(s)} vs {list(ts)}'
                                               for t, _, s, ts in mismatch[:3]) + '.'
    hints = []
    if any(k.startswith(('backbone.fpn_', 'roi_heads.box_head.')) for k in missing):
        hints.append('the checkpoint has no (complete) FPN / 4-conv box head: export '
                     '--target backbone, or pass --allow-missing REGEX for the parts that may '
                     'start from detectron2\'s initialisation')
    if any('res5' in k for k in missing) and info['res5_head'] and target == 'backbone':
        hints.append('res5 of this C4 checkpoint is its pre-trained head (tile_head.layer4): '
                     'use --target res5-head')
    elif any('res5' in k for k in missing) and info['stages'] == 3:
        hints.append('the checkpoint is a 3-stage (C4) ResNet without res5')
    return [msg + (' Hint: ' + '; '.join(hints) + '.' if hints else '')]


def config_snippet(arch: str, info: Mapping[str, object], weights: str = 'model.pkl') -> str:
    """The detectron2 yaml settings that match an export (see ``docs/detectron2.md``)."""
    lines = [
        'MODEL:', f'  WEIGHTS: "{weights}"', '  PIXEL_MEAN: [123.675, 116.280, 103.530]',
        '  PIXEL_STD: [58.395, 57.120, 57.375]', '  BACKBONE:', '    FREEZE_AT: 0', '  RESNETS:',
        f'    DEPTH: {info["depth"]}', '    STRIDE_IN_1X1: False',
        f'    NORM: "{info["resnet_norm"]}"'
    ]
    if int(info['depth']) < 50:
        lines.append('    RES2_OUT_CHANNELS: 64')
    if arch == 'fpn':
        lines += [
            '  FPN:', f'    NORM: "{info["fpn_norm"]}"', '  ROI_BOX_HEAD:',
            '    NAME: "FastRCNNConvFCHead"', '    NUM_CONV: 4', '    NUM_FC: 1',
            f'    NORM: "{info["head_norm"]}"', '  ROI_MASK_HEAD:',
            f'    NORM: "{info["head_norm"]}"'
        ]
    lines += ['INPUT:', '  FORMAT: "RGB"']
    return '\n'.join(lines)


class _PortablePickler(pickle.Pickler):
    """Pickles arrays as ``numpy.ndarray`` + ``__setstate__`` instead of NumPy 2's
    ``numpy._core.multiarray._reconstruct``, which NumPy 1.x (common in detectron2
    environments) cannot import; the loaded arrays are the same (writable, same dtype/order)."""

    def reducer_override(self, obj: object) -> object:
        if type(obj) is np.ndarray:
            return np.ndarray, ((0, ), np.dtype('b')), obj.__reduce__()[2]
        return NotImplemented


def _dump_pickle(obj: Dict, path: str) -> None:
    with open(path, 'wb') as f:
        _PortablePickler(f, protocol=4).dump(obj)


def convert_to_detectron2(src: str,
                          dst: Optional[str],
                          target: str = 'backbone',
                          arch: str = 'auto',
                          use_ema: bool = False,
                          allow_missing: Sequence[str] = (),
                          trust: bool = False,
                          src_format: str = 'auto') -> Tuple[CoverageReport, str]:
    """Export ``src`` as a detectron2 ``.pkl`` and report the key coverage.

    ``dst`` is written only when every expected detectron2 name of ``target`` is covered with
    the right shape (less ``allow_missing``), because detectron2 drops missing or mis-shaped
    weights with a log line only.

    Args:
        src (str): Source checkpoint (plugin, mmpretrain / mmselfsup, backbone-only, or an
            official SoCo / MCL / PLRC / DetCo file).
        dst (str, optional): Output ``.pkl``; None only reports.
        target (str): One of :data:`TARGETS`.
        arch (str): One of :data:`ARCHS`.
        use_ema (bool): Export the EMA / momentum target.
        allow_missing (Sequence[str]): Regexes of detectron2 names that may stay at init.
        trust (bool): Unpickle a source outside the allow-list (``--trust-checkpoint``).
        src_format (str): Source layout (``--src-format``, see :mod:`.official`).

    Returns:
        tuple[CoverageReport, str]: The report (``ok``: written) and the matching detectron2
        config snippet (:func:`config_snippet`).

    Raises:
        ConversionError: Unreadable source, ``dst`` is the source / a directory / not a
            ``.pkl``, or an invalid request. Nothing is written then.
    """
    from .official import load_source, unknown_layout_error
    if dst is not None:
        check_output_path(src, dst, _SUFFIX)
        if not dst.endswith('.pkl'):
            raise ConversionError(
                f'the output {dst!r} must end with .pkl: detectron2 reads a checkpoint as this '
                f'pickle format only for .pkl paths (e.g. {osp.splitext(dst)[0] + ".pkl"!r}). '
                'Nothing was written.')
    if not osp.isfile(src):  # before load_source, whose .pkl fallback would open it
        raise ConversionError(f'checkpoint file {src!r} does not exist.')
    state, _, load_notes, imported = load_source(src, trust, src_format, use_ema)
    if imported is None and src_format == 'auto' and not _is_plugin_layout(state, {}):
        raise unknown_layout_error(src, state)
    info = inspect_source(state)
    title = (f'{osp.basename(src)} -> detectron2 (--target {target}; weights: '
             f'{"EMA target" if use_ema else "online"})')
    state_d2, report, arch = export_state_dict(state, target, arch, use_ema and imported is None,
                                               allow_missing, title, info)
    report.notes[:0] = load_notes
    if imported is not None:
        report.notes[:0] = imported.notes
        for reason, keys in imported.dropped.items():
            report.dropped.setdefault(reason, []).extend(keys)
    report.notes.append(f'detectron2 {arch.upper()} model, ResNet-{info["depth"]}: set '
                        'MODEL.RESNETS.STRIDE_IN_1X1=False, RGB input and the ImageNet '
                        'PIXEL_MEAN/STD (weights are torchvision-style, stride in the 3x3 conv)')
    snippet = config_snippet(arch, info, dst or 'model.pkl')
    if dst is None or not report.ok:
        return report, snippet
    record = dict(source=osp.abspath(src),
                  source_sha256=sha256sum(src),
                  target=target,
                  arch=arch,
                  depth=int(info['depth']),
                  use_ema=bool(use_ema),
                  src_format=imported.layout if imported is not None else 'plugin',
                  totals=report.totals(),
                  notes=list(report.notes))
    payload = {
        'model': OrderedDict((k, v.detach().cpu().numpy().copy()) for k, v in state_d2.items()),
        '__author__': AUTHOR,
        'matching_heuristics': True,
        META_KEY: record,
    }
    write_checkpoint(payload, src, dst, save=_dump_pickle, suffix=_SUFFIX)
    return report, snippet
