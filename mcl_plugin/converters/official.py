# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Importers for the official checkpoints of SoCo, MCL, PLRC and DetCo.

Each official layout is renamed into the plugin's pre-training keys (``backbone.*``, ``neck.*``,
``tile_head.shared_convs.*``, ``tile_head.shared_fcs.*``), which :mod:`.convert` then maps onto
the detector with its usual rules and coverage report. The layouts, read from the official code:

* **SoCo** (hologerry/SoCo ``main_pretrain.save_checkpoint``): ``{opt: argparse.Namespace, model,
  optimizer, scheduler, epoch[, amp, sampler]}``; ``model`` keys carry ``module.``:
  ``encoder.*`` (torchvision-named ResNet), ``neck.*`` (mmcv-``ConvModule`` FPN with BN,
  ``start_level=1``: ``lateral_convs.0`` reads C3), ``head.conv{j}`` / ``head.bn{j}`` / ``head.fc1``
  (``FastRCNNConvFCHead``), ``projector`` / ``predictor`` MLPs, momentum copies
  ``encoder_k`` / ``neck_k`` / ``head_k`` / ``projector_k``, and ``queue`` (C4 variant);
* **MCL** (GuoQiushan/MCL, OpenSelfSup 0.x / mmcv runner): ``{meta, state_dict, optimizer}`` with
  ``encoder_q.0`` (ResNet, aliased as ``backbone``), ``encoder_q.1`` (mmdet-named FPN with BN),
  ``encoder_q.2`` (``DetConvGpNonLinearHead``: ``cls_convs.{i}`` ConvModules + ``mlp``),
  ``encoder_k.{0,1,2}`` (momentum) and ``head.predictor``;
* **PLRC** (facebookresearch/PLRC ``main_plrc``): ``{epoch, arch, state_dict, optimizer}`` with
  ``module.encoder_q.enc.*`` (torchvision-named ResNet plus ``fcs`` / ``fcs_2`` projectors),
  ``module.encoder_k.enc.*`` and the loss buffers ``plrc_loss*``;
* **DetCo**: the released backbone (OpenSelfSup ``extract_backbone_weights``: a bare ResNet state
  dict under ``state_dict``), its detectron2 pickle (``{model: {stem.*, res2..5.*: ndarray},
  __author__, matching_heuristics}``), or a MoCo-style ``encoder_q.*`` file (DetCo.pytorch).

The detectron2 pickle is read with an unpickler that only builds NumPy arrays.
"""
import argparse
import os.path as osp
import pickle
import re
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .coverage import summarize_prefixes
from .io import ConversionError, StateDict, extract_state_dict, torch_load

__all__ = [
    'FORMATS', 'LAYOUTS', 'PLUGIN_RULES', 'OfficialLayout', 'Imported', 'detect_layout',
    'load_source', 'to_plugin_state_dict'
]

#: Rename rule: (regular expression on the source key, ``re.sub`` replacement).
Rule = Tuple[str, str]
_MOMENTUM = 'momentum encoder (pass --use-ema to convert it instead of the online weights)'
_ONLINE = 'online weights (--use-ema converts the momentum encoder instead)'
_RESNET = r'(conv1|bn1|layer[1-4])'


@dataclass(frozen=True)
class OfficialLayout:
    """An official checkpoint layout.

    Attributes:
        name (str): ``--src-format`` value.
        marker (str): Regular expression; the layout is detected when a key matches it.
        seen_as (str): What the layout's keys look like (error messages).
        online (tuple[Rule]): Online weights -> plugin keys (first matching rule wins).
        momentum (tuple[Rule]): Momentum copies -> plugin keys (``--use-ema``).
        drop (tuple[tuple[str, str]]): (regex, reason) of keys left out on purpose.
        pretrains (tuple[str]): Detector parts the method pre-trains.
    """

    name: str
    marker: str
    seen_as: str
    online: Tuple[Rule, ...]
    momentum: Tuple[Rule, ...]
    drop: Tuple[Tuple[str, str], ...]
    pretrains: Tuple[str, ...]


def _soco_rules(suffix: str) -> Tuple[Rule, ...]:
    """SoCo ``encoder{suffix}`` / ``neck{suffix}`` / ``head{suffix}`` -> plugin keys."""
    head = tuple(rule for j in range(1, 5) for rule in (
        (rf'^head{suffix}\.conv{j}\.', f'tile_head.shared_convs.{j - 1}.conv.'),
        (rf'^head{suffix}\.bn{j}\.', f'tile_head.shared_convs.{j - 1}.bn.')))
    return ((rf'^encoder{suffix}\.', 'backbone.'), (rf'^neck{suffix}\.', 'neck.')) + head + (
        (rf'^head{suffix}\.fc1\.', 'tile_head.shared_fcs.0.'), )


def _mcl_rules(wrapper: str) -> Tuple[Rule, ...]:
    return ((rf'^{wrapper}\.0\.', 'backbone.'), (rf'^{wrapper}\.1\.', 'neck.'),
            (rf'^{wrapper}\.2\.cls_convs\.', 'tile_head.shared_convs.'))


_QUEUES = (r'^queue', 'contrastive queue (pre-training only)')
LAYOUTS: Dict[str, OfficialLayout] = OrderedDict(
    soco=OfficialLayout(
        'soco', r'^encoder\.(conv1|layer1)\.',
        'encoder.* / neck.* / head.conv{j} (SoCo main_pretrain.py)', _soco_rules(''),
        _soco_rules('_k'),
        ((r'^(projector|projector_k|predictor)\.', 'projector / predictor MLPs (pre-training '
          'only)'), _QUEUES), ('backbone', 'neck', 'head')),
    mcl=OfficialLayout(
        'mcl', r'^encoder_q\.0\.', 'encoder_q.0 / encoder_q.1 / encoder_q.2.cls_convs (MCL, '
        'OpenSelfSup)', _mcl_rules('encoder_q'), _mcl_rules('encoder_k'),
        ((r'^backbone\.', 'alias of encoder_q.0 (MCL.backbone is the same module)'),
         (r'^encoder_[qk]\.2\.', 'projection MLP of DetConvGpNonLinearHead (pre-training only)'),
         (r'^head\.', 'predictor (pre-training only)')), ('backbone', 'neck', 'head')),
    plrc=OfficialLayout(
        'plrc', r'^encoder_q\.enc\.', 'encoder_q.enc.* (PLRC main_plrc.py)',
        ((rf'^encoder_q\.enc\.{_RESNET}\.', r'backbone.\1.'), ),
        ((rf'^encoder_k\.enc\.{_RESNET}\.', r'backbone.\1.'), ),
        ((r'^encoder_[qk]\.enc\.', 'projection heads fcs / fcs_2 (pre-training only)'),
         (r'^plrc_loss', 'loss buffers (pre-training only)'), _QUEUES), ('backbone', )),
    detco=OfficialLayout(
        'detco', rf'^(encoder_q\.)?{_RESNET}\.', 'a bare ResNet state dict, a detectron2 pickle '
        'or encoder_q.* (MoCo style)',
        ((rf'^encoder_q\.{_RESNET}\.', r'backbone.\1.'), (rf'^{_RESNET}\.', r'backbone.\1.')),
        ((rf'^encoder_k\.{_RESNET}\.', r'backbone.\1.'), ),
        ((r'^encoder_[qk]\.', 'fc / projection MLPs (pre-training only)'), _QUEUES),
        ('backbone', )),
)
#: Extra renames onto the plugin's own pre-training models (:func:`to_plugin_state_dict`):
#: layout -> (online rules, momentum rules). SoCo's ``Proj_Head`` / ``Pred_Head``
#: (``linear1, bn1, linear2``) are the plugin SoCo's ``NonLinearNeck`` ``fc0, bn0, fc1``.
_MLP = (('linear1', 'fc0'), ('bn1', 'bn0'), ('linear2', 'fc1'))
PLUGIN_RULES: Dict[str, Tuple[Tuple[Rule, ...], Tuple[Rule, ...]]] = dict(
    soco=(tuple((rf'^{src}\.{a}\.', f'{dst}.{b}.') for src, dst in (
        ('projector', 'projector'), ('predictor', 'head.predictor')) for a, b in _MLP),
          tuple((rf'^projector_k\.{a}\.', f'projector.{b}.') for a, b in _MLP)))
#: ``--src-format`` choices.
FORMATS = ('auto', 'plugin') + tuple(LAYOUTS)

#: detectron2 ResNet names -> torchvision / mmdet names (applied in sequence, as MoCo's and
#: OpenSelfSup's ``convert-pretrain-to-detectron2.py`` in reverse).
D2_RULES: Tuple[Tuple[str, Any], ...] = (
    (r'^backbone\.bottom_up\.', ''),
    (r'^stem\.conv1\.norm\.', 'bn1.'),
    (r'^stem\.conv1\.', 'conv1.'),
    (r'^res([2-5])\.', lambda m: f'layer{int(m.group(1)) - 1}.'),
    (r'\.shortcut\.norm\.', '.downsample.1.'),
    (r'\.shortcut\.', '.downsample.0.'),
    (r'\.conv([1-3])\.norm\.', r'.bn\1.'),
)


@dataclass
class Imported:
    """An official checkpoint renamed into plugin keys.

    Attributes:
        layout (str): The layout's name.
        dropped (dict[str, list[str]]): Reason -> source keys left out.
        notes (list[str]): What the import did.
    """

    layout: str
    dropped: Dict[str, List[str]]
    notes: List[str]


# --------------------------------------------------------------------------------------------
# Reading (detectron2 pickles) and detection
# --------------------------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and NumPy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        multiarray = getattr(np, '_core', np.core).multiarray
        allowed = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
                   ('collections', 'OrderedDict'): OrderedDict}
        for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            allowed[(mod, '_reconstruct')] = multiarray._reconstruct
            allowed[(mod, 'scalar')] = multiarray.scalar
        found = allowed.get((module, name))
        if found is None and module == 'numpy.dtypes':
            found = getattr(np.dtypes, name, None)
            found = found if isinstance(found, type) and issubclass(found, np.dtype) else None
        if found is None:
            raise pickle.UnpicklingError(f'{module}.{name} is not allowed in a weights pickle')
        return found


def _d2_to_tensors(obj: Mapping) -> Dict:
    """A detectron2 pickle's ``model`` (NumPy arrays, detectron2 names) as a bare ResNet
    state dict of tensors with torchvision / mmdet names."""
    state = OrderedDict()
    for key, value in obj['model'].items():
        new = key
        for pattern, repl in D2_RULES:
            new = re.sub(pattern, repl, new)
        state[new] = torch.from_numpy(np.array(value)) if isinstance(
            value, np.ndarray) else torch.as_tensor(value)
    return dict(state_dict=state)


def _is_d2(obj: Any) -> bool:
    return isinstance(obj, Mapping) and isinstance(obj.get('model'), Mapping) and any(
        isinstance(v, np.ndarray) for v in obj['model'].values())


def _read(path: str, trust: bool) -> Tuple[Any, List[str]]:
    """``torch_load``, falling back to the array-only unpickler for plain pickles (``.pkl``)."""
    try:
        with warnings.catch_warnings():  # torch's note on the protocol of a plain pickle
            warnings.filterwarnings('ignore', message='Detected pickle protocol')
            return torch_load(path, trust)
    except ConversionError as exc:
        if not osp.isfile(path):
            raise  # the torch_load error names the missing file
        with open(path, 'rb') as f:
            head = f.read(1)
        if zipfile.is_zipfile(path) or head != b'\x80':
            raise
        try:
            with open(path, 'rb') as f:
                return _ArrayUnpickler(f, encoding='latin1').load(), []
        except Exception:  # noqa: BLE001  (not an array pickle either: the torch error stands)
            raise exc from None


def detect_layout(state: Mapping[str, torch.Tensor], obj: Any = None) -> Optional[str]:
    """The official layout of a state dict (``module.`` stripped), or None (plugin layout).

    A bare ResNet state dict is left to the plugin path (backbone-only files), which handles
    DetCo's released backbone the same way.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get('opt'), argparse.Namespace):
        return 'soco'
    for name, layout in LAYOUTS.items():
        if name != 'detco' and any(re.match(layout.marker, k) for k in state):
            return name
    if any(re.match(rf'^encoder_q\.{_RESNET}\.', k) for k in state):
        return 'detco'
    return None


# --------------------------------------------------------------------------------------------
# Renaming
# --------------------------------------------------------------------------------------------


def _rename(key: str, rules: Sequence[Rule]) -> Optional[str]:
    return next((re.sub(p, r, key, count=1) for p, r in rules if re.match(p, key)), None)


def _shift_fpn_levels(state: StateDict, obj: Any) -> Tuple[StateDict, List[str]]:
    """SoCo's FPN starts at C3 (``start_level=1``): its ``lateral_convs.i`` is mmdet's
    ``lateral_convs.{i + start_level}`` (the same for ``fpn_convs``, extra convs included)."""
    stages = {m.group(1) for k in state for m in [re.match(r'^backbone\.layer(\d)\.', k)] if m}
    laterals = {m.group(1) for k in state for m in [re.match(r'^neck\.lateral_convs\.(\d+)\.', k)]
                if m}
    opt = obj.get('opt') if isinstance(obj, Mapping) else None
    shift = getattr(opt, 'start_level', None)
    if shift is None:
        shift = len(stages) - len(laterals) if laterals else 0
    if not shift:
        return state, []

    def move(key: str) -> str:
        return re.sub(r'^neck\.(lateral_convs|fpn_convs)\.(\d+)\.',
                      lambda m: f'neck.{m.group(1)}.{int(m.group(2)) + shift}.', key)

    how = 'opt.start_level' if getattr(opt, 'start_level', None) is not None else \
        f'{len(stages)} backbone stages, {len(laterals)} laterals'
    note = (f'SoCo FPN starts at backbone stage {shift} ({how}): neck lateral/fpn convs i -> '
            f'i+{shift}; the target FPN levels below it keep their initialisation')
    return OrderedDict((move(k), v) for k, v in state.items()), [note]


def import_official(state: StateDict, layout: str, use_ema: bool = False, obj: Any = None,
                    extra: Tuple[Tuple[Rule, ...], Tuple[Rule, ...]] = ((), ()),
                    keep_unknown: bool = True) -> Tuple[StateDict, Imported]:
    """Rename an official state dict into plugin pre-training keys.

    Args:
        state (dict[str, Tensor]): Source state dict, ``module.`` stripped.
        layout (str): A key of :data:`LAYOUTS`.
        use_ema (bool): Take the momentum encoder instead of the online weights.
        obj (Any): The loaded checkpoint container (SoCo's ``opt``).
        extra (tuple): More (online, momentum) rules, tried first (:data:`PLUGIN_RULES`).
        keep_unknown (bool): Keep keys no rule covers under their own name.

    Returns:
        tuple[dict, Imported]: The renamed state dict and what was dropped / done. Keys no
        rule covers are kept under their name (the report lists them as unmapped).

    Raises:
        ConversionError: If no key matches the layout's weights rules.
    """
    spec = LAYOUTS[layout]
    online, momentum = extra[0] + spec.online, extra[1] + spec.momentum
    take, other = (momentum, online) if use_ema else (online, momentum)
    other_reason = _ONLINE if use_ema else _MOMENTUM
    out: StateDict = OrderedDict()
    dropped: Dict[str, List[str]] = OrderedDict()
    for key, value in state.items():
        new = _rename(key, take)
        if new is not None:
            out[new] = value
            continue
        reason = other_reason if _rename(key, other) is not None else next(
            (r for p, r in spec.drop if re.match(p, key)), None)
        if reason is None:
            if keep_unknown:
                out[key] = value
        else:
            dropped.setdefault(reason, []).append(key)
    if not any(_rename(k, take) for k in state):
        what = 'momentum encoder' if use_ema else 'weights'
        raise ConversionError(
            f'--src-format {layout}: no {what} key matches the {layout} layout '
            f'({spec.seen_as}); the checkpoint holds {summarize_prefixes(state)}.')
    notes = [f'official {layout} checkpoint ({spec.seen_as}): '
             f'{"momentum encoder" if use_ema else "online weights"} renamed to plugin keys; the '
             f'method pre-trains {", ".join(spec.pretrains)}']
    if layout == 'soco':
        out, shift_notes = _shift_fpn_levels(out, obj)
        notes += shift_notes
    if isinstance(obj, Mapping):
        extra = [k for k in obj if k not in ('state_dict', 'model', 'meta')]
        if extra:
            notes.append(f'checkpoint entries not converted: {", ".join(map(str, extra))}')
    return out, Imported(layout, dropped, notes)


def load_source(path: str, trust: bool = False, src_format: str = 'auto',
                use_ema: bool = False) -> Tuple[StateDict, Dict, List[str], Optional[Imported]]:
    """Read ``path`` and import it when it is an official layout.

    Args:
        path (str): Source checkpoint (``.pth`` / ``.pth.tar`` / detectron2 ``.pkl``).
        trust (bool): See :func:`.io.torch_load`.
        src_format (str): One of :data:`FORMATS`; ``auto`` detects the layout.
        use_ema (bool): Take the momentum encoder of an official layout.

    Returns:
        tuple: ``(state_dict, meta, notes, imported)``; ``imported`` is None for the plugin
        layout (then the caller does the EMA selection).

    Raises:
        ConversionError: Unreadable file, unknown ``src_format``, or a file that does not have
            the requested layout.
    """
    if src_format not in FORMATS:
        raise ConversionError(f'unknown --src-format {src_format!r}; choose from {FORMATS}.')
    obj, notes = _read(path, trust)
    d2 = _is_d2(obj)
    if d2:
        if src_format not in ('auto', 'detco'):
            raise ConversionError(f'{path!r} is a detectron2 pickle (NumPy arrays under model), '
                                  f'not the {src_format} layout; use --src-format detco.')
        obj, src_format = _d2_to_tensors(obj), 'detco'
        notes.append('detectron2 pickle (stem/res2..res5 names) renamed to ResNet names')
    state, meta = extract_state_dict(obj, path)
    layout = detect_layout(state, obj) if src_format == 'auto' else (
        None if src_format == 'plugin' else src_format)
    if layout is None:
        return state, meta, notes, None
    state, imported = import_official(state, layout, use_ema, obj)
    imported.notes[:0] = notes
    return state, meta, [], imported


def to_plugin_state_dict(path: str, src_format: str = 'auto',
                         trust: bool = False) -> Tuple[StateDict, Imported]:
    """An official checkpoint under the keys of the plugin's own pre-training model.

    Online weights keep the plugin names (``backbone``, ``neck``, ``tile_head``, and for SoCo
    ``projector`` / ``head.predictor``), the momentum copies go to ``target_net.module.<name>``
    (:class:`~mcl_plugin.models.utils.MomentumEncoder`). Load with
    ``model.load_state_dict(state, strict=False)`` and read its missing keys: the parts the
    official model does not have (e.g. SoCo's C2 FPN level) keep their initialisation.

    Raises:
        ConversionError: If the file is no official layout (see :func:`load_source`).
    """
    obj, notes = _read(path, trust)
    if _is_d2(obj):
        obj = _d2_to_tensors(obj)
    state, _ = extract_state_dict(obj, path)
    layout = detect_layout(state, obj) if src_format == 'auto' else src_format
    if layout not in LAYOUTS:
        raise unknown_layout_error(path, state)
    extra = PLUGIN_RULES.get(layout, ((), ()))
    online, imported = import_official(state, layout, False, obj, extra)
    out = OrderedDict(online)
    if any(_rename(k, extra[1] + LAYOUTS[layout].momentum) for k in state):
        ema, _ = import_official(state, layout, True, obj, extra, keep_unknown=False)
        out.update(('target_net.module.' + k, v) for k, v in ema.items())
        momentum = imported.dropped.pop(_MOMENTUM, [])
        imported.notes.append(f'{len(momentum)} momentum-encoder tensors -> target_net.module.*')
    imported.notes[:0] = notes
    return out, imported


def unknown_layout_error(path: str, state: Mapping[str, torch.Tensor]) -> ConversionError:
    """The error for a file none of the known layouts (plugin or official) describes."""
    seen = '; '.join(f'{n}: {s.seen_as}' for n, s in LAYOUTS.items())
    return ConversionError(
        f'unknown checkpoint layout in {path!r}: it holds {summarize_prefixes(state)}. Known: '
        f'plugin / mmpretrain (backbone.*, neck.*, tile_head.*) and the official layouts ({seen}). '
        'Pass --src-format to force one.')
