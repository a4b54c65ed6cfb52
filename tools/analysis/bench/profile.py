"""Where a training step's time goes: one step under :mod:`torch.profiler`, its operators' self
time summed by kind (convolution, matmul, batch norm, element-wise, resampling / pooling,
copies and layout, other).

The MAC count (:mod:`.macs`) says what arithmetic a step needs; this says what the step spends
its time on, so a waste factor above 1 can be named: e.g. a method whose batch-norm and
element-wise time grows faster than its convolution time pays for activation memory traffic
that MACs do not count. :func:`conv_rates` times every convolution's forward call by module,
so the same layers of two methods can be compared in GMAC/s.
"""
import re
import time
from typing import Callable, Dict, List, Sequence, Tuple

#: Operator kinds in report order, each with the pattern its ``aten::`` names match (first
#: match wins, so backward ops land with their forward kind).
KINDS: Tuple[Tuple[str, str], ...] = (
    ('conv', r'conv'),
    ('matmul', r'(^|::)(addmm|mm|bmm|baddbmm|matmul|linear|addbmm|einsum)(_backward)?$'),
    ('batch norm', r'batch_norm'),
    ('resample / pool', r'upsample|interpolat|grid_sampl|roi_align|pool|nms|affine_grid'),
    ('copy / layout', r'copy|contiguous|(^|::)(cat|stack|clone|index|index_select|gather|'
     r'scatter|scatter_add|index_put_|index_add_|_index_put_impl_|masked_select|flip|roll|'
     r'constant_pad_nd|unfold|col2im|im2col|repeat|_unsafe_view|pad|nonzero)_?$'),
    ('element-wise', r'relu|threshold|sigmoid|softmax|(^|::)(add|sub|mul|div|exp|log|sqrt|'
     r'rsqrt|pow|neg|clamp|clamp_min|where|eq|ne|gt|lt|ge|le|abs|sum|mean|norm|'
     r'linalg_vector_norm|max|min|amax|argmax|lerp|fill|zero|addcmul|addcdiv|sign|'
     r'reciprocal|square|logsumexp|nll_loss\w*|masked_fill|bitwise\w*|logical\w*|'
     r'_foreach\w*|cumsum|sort|topk)_?(_backward)?$'),
)
OTHER = 'other'


def op_kind(name: str) -> str:
    """The kind of an operator name (``aten::native_batch_norm`` -> ``'batch norm'``)."""
    for kind, pattern in KINDS:
        if re.search(pattern, name):
            return kind
    return OTHER


def summarize_ops(ops: Sequence[Tuple[str, float, int]], top: int = 12) -> dict:
    """Self seconds by kind and the most expensive operators.

    Args:
        ops (Sequence[tuple]): ``(name, self seconds, calls)`` per operator.
        top (int): How many operators to list.

    Returns:
        dict: ``kinds`` (seconds per kind, every kind present), ``total_s``, ``top_ops``
        (``[name, seconds, calls]``, most expensive first).
    """
    kinds: Dict[str, float] = {k: 0.0 for k, _ in KINDS}
    kinds[OTHER] = 0.0
    for name, seconds, _ in ops:
        kinds[op_kind(name)] += seconds
    ranked = sorted(ops, key=lambda o: -o[1])[:top]
    return dict(kinds=kinds, total_s=sum(kinds.values()),
                top_ops=[[n, round(s, 4), int(c)] for n, s, c in ranked])


def profile_step(step: Callable[[], object]) -> dict:
    """Run ``step`` once under :func:`torch.profiler.profile` (CPU activity) and summarise the
    ``aten::`` operators' self CPU time (:func:`summarize_ops`). Self times do not overlap, so
    their sum is the time the step spent inside operators."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    ops: List[Tuple[str, float, int]] = [
        (e.key, e.self_cpu_time_total / 1e6, e.count) for e in prof.key_averages()
        if e.key.startswith('aten::')
    ]
    return summarize_ops(ops)


def module_group(name: str, depth: int = 2) -> str:
    """The first ``depth`` parts of a module path, wrapper parts (``module``) left out:
    ``target_net.module.backbone.layer1.0.conv1`` -> ``target_net.backbone``."""
    parts = [p for p in name.split('.') if p != 'module']
    return '.'.join(parts[:depth])


def conv_rates(model, step: Callable[[], object], depth: int = 2) -> Dict[str, dict]:
    """Forward seconds, MACs and calls of every ``nn.Conv2d`` call in one ``step``, summed by
    :func:`module_group` (wall time between forward pre- and post-hooks: synchronous on CPU).

    Returns:
        dict: group -> ``dict(seconds, macs, calls, gmac_per_s)``.
    """
    from torch import nn
    stats: Dict[str, dict] = {}
    starts: Dict[int, float] = {}
    groups: Dict[int, str] = {}
    handles = []

    def pre(mod, args):
        starts[id(mod)] = time.perf_counter()

    def post(mod, args, out):
        seconds = time.perf_counter() - starts.pop(id(mod))
        k = mod.kernel_size[0] * mod.kernel_size[1]
        rec = stats.setdefault(groups[id(mod)], dict(seconds=0.0, macs=0, calls=0))
        rec['seconds'] += seconds
        rec['macs'] += out.numel() * (mod.in_channels // mod.groups) * k
        rec['calls'] += 1

    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            groups[id(mod)] = module_group(name, depth)
            handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        step()
    finally:
        for h in handles:
            h.remove()
    for rec in stats.values():
        rec['gmac_per_s'] = rec['macs'] / 1e9 / max(rec['seconds'], 1e-12)
    return stats
