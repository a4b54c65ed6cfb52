# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Per-module key coverage of a checkpoint against a detector, and backbone diagnosis.

:class:`CoverageReport` is what ``tools/convert_to_mmdet.py`` and ``tools/check_pretrained.py``
print: one row per top-level module of the target detector (``backbone``, ``neck``,
``rpn_head``, ``roi_head.bbox_head``, ``roi_head.mask_head``, ``bbox_head`` ...) with the number
of target keys, how many receive a tensor (*matched*), stay at their initialisation
(*missing*), have a source tensor of another shape (*shape mismatch*), and how many source keys
were aimed at the module but have no counterpart there (*unexpected*: a ``strict=False`` load
drops them silently). Source keys left out on purpose (projector, predictor, positional
embedding, EMA copy ...) are listed by reason below the table.
"""
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

Shape = Tuple[int, ...]

#: Target modules whose rows are split one level deeper in the coverage table.
NESTED_MODULES = ('roi_head', )


def module_of(key: str) -> str:
    """Row of the coverage table a target key belongs to (``roi_head.bbox_head`` etc.)."""
    parts = key.split('.')
    if parts[0] in NESTED_MODULES and len(parts) > 2:
        return '.'.join(parts[:2])
    return parts[0]


def summarize_prefixes(keys: Iterable[str], depth: int = 3, limit: int = 8) -> str:
    """Collapse keys to their first ``depth`` components: ``'backbone.layer1.0 (x6), ...'``."""
    counts: Dict[str, int] = OrderedDict()
    for key in keys:
        prefix = '.'.join(key.split('.')[:depth])
        counts[prefix] = counts.get(prefix, 0) + 1
    items = [f'{p} (x{n})' if n > 1 else p for p, n in counts.items()]
    more = f', ... {len(items) - limit} more' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


@dataclass
class ModuleCoverage:
    """Coverage of one top-level target module.

    Attributes:
        name (str): Module name (``backbone``, ``neck``, ``roi_head.bbox_head``, ...).
        target_keys (list[str]): Keys of this module in the target state dict.
        matched (list[str]): Target keys that receive a source tensor of the same shape.
        missing (list[str]): Target keys left at their initialisation.
        unexpected (list[str]): Source keys mapped into this module whose target key does not
            exist (they would be dropped silently by a ``strict=False`` load).
        shape_mismatch (list[tuple]): ``(target_key, source_key, source_shape, target_shape)``.
    """

    name: str
    target_keys: List[str] = field(default_factory=list)
    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    shape_mismatch: List[Tuple[str, str, Shape, Shape]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every target key of the module is matched."""
        return not self.missing and not self.shape_mismatch


@dataclass
class CoverageReport:
    """Key coverage of a checkpoint against a target detector.

    Attributes:
        title (str): Headline (source and target).
        modules (list[ModuleCoverage]): One row per target module, in state-dict order, plus an
            ``(unmapped)`` row for source keys no rule or drop rule covers.
        dropped (dict[str, list[str]]): Source keys left out on purpose, by reason.
        notes (list[str]): What the mapping did (layout, EMA assignment, FPN re-alignment...).
        allowed_missing (list[str]): Patterns of backbone keys allowed to stay at init.
        errors (list[str]): Set by :meth:`check_backbone`.
    """

    title: str
    modules: List[ModuleCoverage]
    dropped: Dict[str, List[str]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    allowed_missing: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @classmethod
    def build(cls,
              title: str,
              target_shapes: Mapping[str, Shape],
              matched: Iterable[str],
              mismatched: Mapping[str, Tuple[str, Shape]],
              unexpected: Mapping[str, Optional[str]],
              dropped: Optional[Mapping[str, List[str]]] = None,
              notes: Optional[List[str]] = None,
              module_fn: Callable[[str], str] = module_of) -> 'CoverageReport':
        """Assemble a report from the outcome of a mapping.

        Args:
            title (str): Headline.
            target_shapes (Mapping[str, tuple]): Target state-dict keys and shapes.
            matched (Iterable[str]): Target keys that receive a tensor.
            mismatched (Mapping[str, tuple]): Target key -> (source key, source shape).
            unexpected (Mapping[str, str | None]): Source key -> the target key it was mapped
                to (None when no rule covered it).
            dropped (Mapping[str, list[str]], optional): Reason -> source keys.
            notes (list[str], optional): Free-form notes.
            module_fn (Callable[[str], str]): Row of a target key; defaults to
                :func:`module_of` (mmdet names). The detectron2 export passes its own.

        Returns:
            CoverageReport: The report.
        """
        rows: Dict[str, ModuleCoverage] = OrderedDict()
        matched = set(matched)
        for key, shape in target_shapes.items():
            row = rows.setdefault(module_fn(key), ModuleCoverage(module_fn(key)))
            row.target_keys.append(key)
            if key in matched:
                row.matched.append(key)
            elif key in mismatched:
                src_key, src_shape = mismatched[key]
                row.shape_mismatch.append((key, src_key, tuple(src_shape), tuple(shape)))
            else:
                row.missing.append(key)
        for src_key, tgt_key in unexpected.items():
            name = module_fn(tgt_key) if tgt_key is not None else '(unmapped)'
            rows.setdefault(name, ModuleCoverage(name)).unexpected.append(src_key)
        return cls(title, list(rows.values()), dict(dropped or {}), list(notes or []))

    def module(self, name: str) -> Optional[ModuleCoverage]:
        """The row called ``name``, or None."""
        return next((m for m in self.modules if m.name == name), None)

    def totals(self) -> Dict[str, int]:
        """Counts summed over all rows (plain ints, safe for checkpoint ``meta``)."""
        keys = ('target_keys', 'matched', 'missing', 'unexpected', 'shape_mismatch')
        return {k: sum(len(getattr(m, k)) for m in self.modules) for k in keys}

    def counts(self) -> Dict[str, Dict[str, int]]:
        """Per-module counts (plain ints)."""
        keys = ('target_keys', 'matched', 'missing', 'unexpected', 'shape_mismatch')
        return {m.name: {k: len(getattr(m, k)) for k in keys} for m in self.modules}

    def backbone_problems(self) -> Tuple[List[str], List[Tuple[str, str, Shape, Shape]]]:
        """Backbone keys that are missing (not allowed by a pattern) or shape-mismatched."""
        row = self.module('backbone')
        if row is None:
            return [], []
        patterns = [re.compile(p) for p in self.allowed_missing]
        missing = [k for k in row.missing if not any(p.search(k) for p in patterns)]
        return missing, list(row.shape_mismatch)

    @property
    def ok(self) -> bool:
        """Whether every backbone key of the target is covered with the right shape."""
        missing, mismatch = self.backbone_problems()
        return not missing and not mismatch and not self.errors

    def _rows(self) -> List[List[str]]:
        rows = []
        for m in self.modules:
            n = len(m.target_keys)
            cover = f'{100.0 * len(m.matched) / n:.0f}%' if n else '-'
            rows.append([
                m.name,
                str(n),
                str(len(m.matched)),
                str(len(m.missing)),
                str(len(m.unexpected)),
                str(len(m.shape_mismatch)), cover
            ])
        return rows

    _HEADER = [
        'module', 'target keys', 'matched', 'missing', 'unexpected', 'shape mismatch', 'coverage'
    ]

    def _details(self) -> List[str]:
        lines = []
        for m in self.modules:
            if m.missing and m.matched:
                lines.append(f'missing in {m.name} (left at init): '
                             f'{summarize_prefixes(m.missing, depth=4)}')
            for tgt, src, s_shape, t_shape in m.shape_mismatch[:5]:
                lines.append(f'shape mismatch {src} {list(s_shape)} -> {tgt} {list(t_shape)}')
            if len(m.shape_mismatch) > 5:
                lines.append(f'... {len(m.shape_mismatch) - 5} more shape mismatches in {m.name}')
            if m.unexpected:
                lines.append(f'unexpected for {m.name} (would be dropped silently): '
                             f'{summarize_prefixes(m.unexpected, depth=4)}')
        for reason, keys in self.dropped.items():
            lines.append(f'dropped on purpose - {reason}: {len(keys)} key'
                         f'{"s" if len(keys) != 1 else ""} '
                         f'({summarize_prefixes(keys, depth=2, limit=4)})')
        lines.extend(f'note: {n}' for n in self.notes)
        lines.extend(f'ERROR: {e}' for e in self.errors)
        return lines

    def to_markdown(self) -> str:
        """Markdown table plus bullet lists of details."""
        lines = [
            f'**{self.title}**', '', '| ' + ' | '.join(self._HEADER) + ' |',
            '|' + '---|' * len(self._HEADER)
        ]
        lines += ['| ' + ' | '.join(r) + ' |' for r in self._rows()]
        details = self._details()
        if details:
            lines.append('')
            lines += [f'- {d}' for d in details]
        return '\n'.join(lines)

    def format(self) -> str:
        """Plain-text table with aligned columns plus details (for terminals and logs)."""
        table = [self._HEADER] + self._rows()
        widths = [max(len(r[i]) for r in table) for i in range(len(self._HEADER))]
        fmt = '  '.join('{:<%d}' % w if i == 0 else '{:>%d}' % w for i, w in enumerate(widths))
        lines = [self.title, fmt.format(*self._HEADER), fmt.format(*['-' * w for w in widths])]
        lines += [fmt.format(*r) for r in table[1:]]
        lines += ['  ' + d for d in self._details()]
        return '\n'.join(lines)

    def check_backbone(self,
                       source_shapes: Optional[Mapping[str, Shape]] = None,
                       target_shapes: Optional[Mapping[str, Shape]] = None,
                       source_name: str = 'the checkpoint') -> bool:
        """Fill :attr:`errors` with a readable diagnosis of backbone problems.

        Args:
            source_shapes (Mapping[str, tuple], optional): Source keys (in target naming, e.g.
                ``backbone.*``) and shapes, used to name the likely cause.
            target_shapes (Mapping[str, tuple], optional): Target keys and shapes.
            source_name (str): How to call the source in messages.

        Returns:
            bool: Whether the backbone is fully covered.
        """
        missing, mismatch = self.backbone_problems()
        if not missing and not mismatch:
            return not self.errors
        row = self.module('backbone')
        total = len(row.target_keys) if row else 0
        msg = (f'{len(missing)} of {total} backbone keys of the target are missing from '
               f'{source_name}' +
               (f' and {len(mismatch)} have a different shape' if mismatch else '') + '.')
        if missing:
            msg += f' Missing: {summarize_prefixes(missing)}.'
        if mismatch:
            msg += ' Shape mismatch: ' + ', '.join(f'{t} {list(s)} vs {list(ts)}'
                                                   for t, _, s, ts in mismatch[:3]) + '.'
        target_bb = {k: (target_shapes or {}).get(k, ()) for k in (row.target_keys if row else [])}
        hints = diagnose_backbone(source_shapes or {}, target_bb, missing, {
            t: ts
            for t, _, _, ts in mismatch
        })
        self.errors.append(msg + (' Likely cause: ' + ' '.join(hints) if hints else ''))
        return False


# --------------------------------------------------------------------------------------------
# Backbone diagnosis
# --------------------------------------------------------------------------------------------
_RESNET_DEPTHS = {
    ('basic', (2, 2, 2, 2)): 18,
    ('basic', (3, 4, 6, 3)): 34,
    ('bottleneck', (3, 4, 6, 3)): 50,
    ('bottleneck', (3, 4, 23, 3)): 101,
    ('bottleneck', (3, 8, 36, 3)): 152,
}


def describe_backbone(keys: Iterable[str],
                      prefix: str = 'backbone.',
                      shapes: Optional[Mapping[str, Shape]] = None) -> Optional[str]:
    """Name the backbone a set of keys belongs to (``'ResNet-50'``, ``'Swin (embed_dims=96,
    depths=[2, 2, 6, 2])'``), or None if it is not recognised."""
    names = [k[len(prefix):] for k in keys if k.startswith(prefix)]
    blocks: Dict[int, Set[int]] = defaultdict(set)
    for k in names:
        m = re.match(r'^(?:layer(\d+)|stages)\.(\d+)\.(?:blocks\.(\d+)\.)?', k)
        if m and m.group(1):
            blocks[int(m.group(1)) - 1].add(int(m.group(2)))
        elif m and m.group(3) is not None:
            blocks[int(m.group(2))].add(int(m.group(3)))
    if not blocks:
        return None
    depths = tuple(len(blocks[i]) for i in sorted(blocks))
    if any(k.startswith('layer') for k in names):
        kind = 'bottleneck' if any('.conv3.' in k for k in names) else 'basic'
        depth = next((d for (b, arch), d in _RESNET_DEPTHS.items()
                      if b == kind and arch[:len(depths)] == depths), None)
        name = f'ResNet-{depth}' if depth else f'ResNet ({kind} blocks {list(depths)})'
        return name + (f' with {len(depths)} stages (C4)' if len(depths) == 3 else '')
    dims = ''
    shape = (shapes or {}).get(f'{prefix}patch_embed.projection.weight')
    if shape:
        dims = f'embed_dims={shape[0]}, '
    return f'Swin ({dims}depths={list(depths)})'


def diagnose_backbone(source: Mapping[str, Shape], target: Mapping[str, Shape],
                      missing: Sequence[str], mismatch: Mapping[str, Shape]) -> List[str]:
    """Guess why backbone keys are missing and how to fix it.

    Args:
        source (Mapping[str, tuple]): Source keys in target naming (``backbone.*``) and shapes.
        target (Mapping[str, tuple]): Target backbone keys.
        missing (Sequence[str]): Missing target backbone keys.
        mismatch (Mapping[str, tuple]): Shape-mismatched target backbone keys.

    Returns:
        list[str]: Hints, most specific first.
    """
    src_bb = [k for k in source if k.startswith('backbone.')]
    if not src_bb:
        tops = sorted({k.split('.')[0] for k in source})
        return [
            f'the checkpoint holds no backbone weights (top-level key prefixes: '
            f'{tops[:10]}); expected backbone.* keys (plugin / mmpretrain / mmselfsup '
            f'checkpoints) or a bare backbone state dict (conv1.*, layer1.* / patch_embed.*, '
            f'stages.*). Is the file the right one, or truncated to its head/meta?'
        ]
    src_name = describe_backbone(src_bb, shapes=source)
    tgt_name = describe_backbone(target, shapes=target)
    hints = []
    src_swin, tgt_swin = 'Swin' in (src_name or ''), 'Swin' in (tgt_name or '')
    if src_name and tgt_name and src_swin != tgt_swin:
        pick = 'a Swin config (configs/benchmarks/mmdet/*swin-t*)' if src_swin else \
            'a ResNet config (configs/benchmarks/mmdet/*r50*)'
        hints.append(f'the checkpoint holds a {src_name} backbone but the config builds a '
                     f'{tgt_name}: fine-tune with {pick}.')
    elif src_name and tgt_name and src_name != tgt_name:
        if 'C4' in src_name and 'C4' not in tgt_name:
            hints.append(f'the checkpoint is a {src_name} backbone (res5 lives in '
                         'tile_head.layer4): fine-tune with '
                         'configs/benchmarks/mmdet/mask-rcnn_r50-c4_syncbn_1x_coco.py.')
        else:
            fix = ''
            m = re.match(r'ResNet-(\d+)', src_name)
            if m and not src_swin:
                chans = [64, 128, 256, 512] if int(m.group(1)) < 50 else [256, 512, 1024, 2048]
                fix = (f' Set model.backbone.depth={m.group(1)} and model.neck.in_channels='
                       f'{chans}, or use a checkpoint pre-trained with the config\'s backbone.')
            hints.append(f'the checkpoint holds a {src_name} backbone but the config builds a '
                         f'{tgt_name}.{fix}')
    norms = [k for k in missing if re.match(r'^backbone\.norm\d+\.', k)]
    if norms and len(norms) == len(missing) and not mismatch:
        hints.append('only the Swin output norms are missing (the checkpoint was trained with '
                     "fewer out_indices, e.g. mmpretrain's out_indices=(3,)): pass "
                     "--allow-missing 'backbone\\.norm[0-2]\\.' to start them from scratch.")
    if not hints and missing:
        hints.append('compare the missing key names above with the checkpoint; a wrong prefix '
                     '(keys not under backbone.*) or a different architecture is the usual '
                     'cause.')
    return hints
