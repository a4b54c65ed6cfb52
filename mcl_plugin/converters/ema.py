# Copyright (c) mcl_plugin contributors. All rights reserved.
"""The EMA / momentum target of a source checkpoint (``--use-ema``): a prefix rename.

Plugin algorithms keep their EMA target in a ``MomentumEncoder`` over named online modules, so
``target_net.module.<name>.*`` renames to ``<name>.*``. Checkpoints written before the EMA was
named (and mmpretrain / mmselfsup BYOL, MoCo, DenseCL checkpoints) hold
``target_net.module.<K>.*``; *K* indexes the algorithm's module order
(:data:`LEGACY_EMA_ORDERS`), picked by the online modules the checkpoint holds.
"""
import re
from collections import OrderedDict
from typing import Collection, Dict, List, Mapping, Tuple

import torch

from .io import ConversionError, StateDict

__all__ = ['EMA_WRAPPERS', 'LEGACY_EMA_ORDERS', 'ema_prefixes', 'select_ema']

#: Wrappers of EMA / momentum copies: mmpretrain ``target_net`` (BYOL, plugin algorithms),
#: ``momentum_encoder`` (MoCo v3), ``encoder_k`` (MoCo v2, DenseCL, mmselfsup 0.x).
EMA_WRAPPERS = ('target_net', 'momentum_encoder', 'encoder_k')
#: Module order of the old positional EMA layout (``target_net.module.<K>``), picked by the
#: first marker among the checkpoint's online modules: MCL / SoCo (``tile_head``; SoCo C4 has no
#: neck, its ``1`` is empty), PLRC (``projector``), then DetCo and mmpretrain / mmselfsup BYOL,
#: MoCo and DenseCL (``nn.Sequential(backbone, neck)``).
LEGACY_EMA_ORDERS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('tile_head', ('backbone', 'neck', 'tile_head', 'projector')),
    ('projector', ('backbone', 'neck', 'projector')),
    ('', ('backbone', 'neck')),
)
#: Drop reasons of :func:`select_ema` (as reported in the coverage report).
REPLACED_BY_EMA = 'online weights replaced by the EMA target (--use-ema)'
EMA_STEPS = 'EMA bookkeeping (update counter)'


def ema_prefixes(state: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """EMA sub-module prefix -> the online prefix it replaces.

    Named layout (:class:`~mcl_plugin.models.utils.MomentumEncoder`):
    ``target_net.module.<name>`` -> ``<name>``. Old positional layout
    (``target_net.module.<K>``: plugin checkpoints written before the EMA was named, and
    mmpretrain / mmselfsup BYOL, MoCo, DenseCL): ``<K>`` is the K-th name of the
    algorithm's module order in :data:`LEGACY_EMA_ORDERS`.
    """
    pattern = re.compile(r'^((?:%s)\.(?:module\.)?)([^.]+)\.' % '|'.join(EMA_WRAPPERS))
    tops = {k.split('.', 1)[0] for k in state if not pattern.match(k)}
    order = next(o for marker, o in LEGACY_EMA_ORDERS if not marker or marker in tops)
    prefixes: Dict[str, str] = OrderedDict()
    for k in state:
        m = pattern.match(k)
        if not m or m.group(0)[:-1] in prefixes:
            continue
        name = m.group(2)
        if name.isdigit():
            if int(name) >= len(order):
                raise ConversionError(f'EMA key {k}: sub-module {name} of the old positional '
                                      f'layout, but the module order {order} has '
                                      f'{len(order)} entries.')
            name = order[int(name)]
        prefixes[m.group(0)[:-1]] = name
    return prefixes


def select_ema(state: StateDict, use_ema: bool, dropped: Dict[str, List[str]],
               mapped_roots: Collection[str] = ()) -> Tuple[StateDict, List[str]]:
    """Keep the online weights, or swap in the EMA target's copies (``use_ema``): a prefix
    rename (:func:`ema_prefixes`) that replaces every online module with an EMA copy.

    Args:
        state (dict[str, Tensor]): Source state dict (``module.`` already stripped).
        use_ema (bool): Swap in the EMA copies; False returns ``state`` unchanged.
        dropped (dict[str, list[str]]): Drop reason -> keys; the replaced online keys and the
            EMA bookkeeping are added to it.
        mapped_roots (Collection[str]): First key components the converter maps (the sources
            of its mapping rules); those without an EMA copy are named in a note.

    Returns:
        tuple[dict, list[str]]: The selected state dict and notes.

    Raises:
        ConversionError: If ``use_ema`` is set but there is no EMA target, or an old positional
            index is beyond the module order.
    """
    if not use_ema:
        return state, []
    prefixes = ema_prefixes(state)
    if not prefixes:
        raise ConversionError('--use-ema was given but the checkpoint has no EMA / momentum '
                              f'target (no key starts with {", ".join(EMA_WRAPPERS)}). Convert '
                              'without --use-ema.')
    wrappers = tuple(w + '.' for w in EMA_WRAPPERS)
    replaced = set(prefixes.values())
    result: StateDict = OrderedDict()
    ema: StateDict = OrderedDict()
    for k, v in state.items():
        src = next((p for p in prefixes if k.startswith(p + '.')), None)
        if src is not None:
            ema[prefixes[src] + k[len(src):]] = v
        elif k.startswith(wrappers):
            dropped.setdefault(EMA_STEPS, []).append(k)
        elif k.split('.', 1)[0] in replaced:
            dropped.setdefault(REPLACED_BY_EMA, []).append(k)
        else:
            result[k] = v
    result.update(ema)
    notes = [f'EMA {src}.* -> {top}.*' for src, top in prefixes.items()]
    online = {k.split('.', 1)[0] for k in state if not k.startswith(wrappers)}
    no_ema = sorted((online & set(mapped_roots)) - replaced)
    if no_ema:
        notes.append(f'{no_ema} have no EMA copy: their online weights are used')
    return result, notes

