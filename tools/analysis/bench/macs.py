"""Multiply-accumulates of one training step, counted with mmengine's FLOP analysis
(:class:`mmengine.analysis.FlopAnalyzer`: one fused multiply-add = one "flop", i.e. a MAC;
convolutions, linear layers, matmuls / einsums, BN and the other ops it has handles for).

A whole ``train_step`` cannot be traced (losses with Python control flow, the montage assembly,
data samples), so :func:`step_macs` hooks every submodule of the model, runs one forward of the
step (data preprocessor + ``loss`` mode) on the real batch and records the *outermost* module
calls with the tensors they received (e.g. ``backbone``, ``neck``, ``tile_head``, ``projector``,
the loss modules, and the EMA / momentum network's calls) and the calls of the heads' ``loss``
methods (:data:`LOSS_METHODS`: the contrastive logits' matmuls, and the predictors called inside
them). Each recorded call is then traced alone by :func:`module_macs` on those inputs. Calls
under ``target_net`` (or under any :class:`~mmengine.model.BaseAveragedModel`) are the target
forward; the rest is the online forward. Work done outside these calls (the montage assembler,
RoIAlign / pooling called as functions) and element-wise work (softmax, exp, masks: memory
traffic, not MACs) is not counted.

Convention: step MACs = 3 x online forward (forward + backward ~ 2 x forward) + target forward
(no backward through the EMA network).
"""
from collections import defaultdict
from typing import Any, Dict, List, Tuple

#: Top-level children holding the EMA / momentum network.
TARGET_NAMES = ('target_net', )


def _flatten(obj):
    from torch.utils._pytree import tree_flatten
    return tree_flatten(obj)


def module_macs(module, args: tuple = (), kwargs: dict = None) -> int:
    """MACs of one call ``module(*args, **kwargs)``, by :class:`mmengine.analysis.FlopAnalyzer`
    (``module``: a module or any callable of tensors, e.g. a head's bound ``loss`` method).

    Tensors anywhere in ``args`` / ``kwargs`` (nested lists / tuples / dicts) are the traced
    inputs; everything else is held constant; the outputs' tensors are returned as a flat tuple
    (so modules returning dicts or lists can be traced).
    """
    import torch
    from mmengine.analysis import FlopAnalyzer
    from torch.utils._pytree import tree_unflatten
    kwargs = kwargs or {}
    leaves, spec = _flatten((tuple(args), dict(kwargs)))
    pos = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]

    class Call(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.m = module
            owner = getattr(module, '__self__', None)
            if isinstance(owner, torch.nn.Module):  # a method: its module's weights are ours
                self.owner = owner

        def forward(self, *tensors):
            full = list(leaves)
            for i, t in zip(pos, tensors):
                full[i] = t
            a, kw = tree_unflatten(full, spec)
            out = _flatten(self.m(*a, **kw))[0]
            return tuple(o for o in out if isinstance(o, torch.Tensor))

    inputs = tuple(leaves[i] for i in pos)
    analyzer = FlopAnalyzer(Call(), inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        return int(analyzer.total())


#: Methods recorded and traced like module calls: the heads' loss (matmuls of the contrastive
#: logits, predictors called inside it).
LOSS_METHODS = ('head.loss', )


def record_calls(model, run,
                 methods: Tuple[str, ...] = LOSS_METHODS) -> List[Tuple[str, Any, tuple, dict]]:
    """Run ``run()`` with hooks on every submodule of ``model`` and on the ``methods`` (dotted
    ``submodule.method`` paths; missing ones are skipped); return the outermost calls as
    ``(path, callable, args, kwargs)`` (tensors detached). Module calls inside a recorded method
    call (e.g. a predictor inside ``head.loss``) belong to it."""
    import torch
    from mmengine.model import BaseAveragedModel
    from torch.utils._pytree import tree_unflatten
    depth, calls, handles, patched = [0], [], [], []

    def record(path, fn, args, kwargs):
        det = [x.detach() if isinstance(x, torch.Tensor) else x
               for x in _flatten((args, kwargs))[0]]
        a, kw = tree_unflatten(det, _flatten((args, kwargs))[1])
        calls.append((path, fn, a, kw))

    def pre(path):

        def hook(mod, args, kwargs):
            if depth[0] == 0:
                record(path, mod, args, kwargs)
            depth[0] += 1

        return hook

    def wrap(path, fn):

        def method(*args, **kwargs):
            if depth[0] == 0:
                record(path, fn, args, kwargs)
            depth[0] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1

        return method

    for dotted in methods:
        owner_path, name = dotted.rsplit('.', 1)
        try:
            owner = model.get_submodule(owner_path)
        except AttributeError:
            continue
        if callable(getattr(owner, name, None)):
            setattr(owner, name, wrap(dotted, getattr(owner, name)))  # shadows the method
            patched.append((owner, name))

    def post(mod, args, kwargs, out):
        depth[0] -= 1

    for path, mod in model.named_modules():
        if not path or path == 'data_preprocessor' or isinstance(mod, BaseAveragedModel):
            continue  # the root, and the EMA wrapper (its inner modules are hooked)
        handles.append(mod.register_forward_pre_hook(pre(path), with_kwargs=True))
        handles.append(mod.register_forward_hook(post, with_kwargs=True))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
        for owner, name in patched:
            delattr(owner, name)
    return calls


def target_names(model) -> Tuple[str, ...]:
    """Top-level children of ``model`` that are the EMA / momentum (target) network: any
    :class:`~mmengine.model.BaseAveragedModel` (mmpretrain's ``target_net``, MoCo's
    ``encoder_k``, the plugin's ``MomentumEncoder``) and :data:`TARGET_NAMES`."""
    from mmengine.model import BaseAveragedModel
    return tuple(n for n, m in model.named_children()
                 if n in TARGET_NAMES or isinstance(m, BaseAveragedModel))


def is_target(path: str, targets: Tuple[str, ...] = TARGET_NAMES) -> bool:
    """Whether a module path belongs to the EMA / momentum (target) network."""
    return path.split('.')[0] in targets


def step_macs(model, data) -> dict:
    """MACs of one training step of ``model`` on ``data`` (a ``train_step`` batch).

    Returns:
        dict: ``online_macs``, ``target_macs`` (forward MACs), ``step_macs`` (``3 x online +
        target``), ``counted`` (module path -> MACs summed over its calls, online and target
        paths as recorded), ``untraced`` (paths whose call could not be traced, with the error).
    """
    import torch

    def run():
        with torch.no_grad():
            batch = model.data_preprocessor(data, True)
            model._run_forward(batch, mode='loss')

    calls = record_calls(model, run)
    targets = target_names(model)
    counted: Dict[str, int] = defaultdict(int)
    untraced: Dict[str, str] = {}
    cache: Dict[tuple, int] = {}
    online = target = 0
    for path, mod, args, kwargs in calls:
        leaves = _flatten((args, kwargs))[0]
        key = (id(mod), tuple(tuple(x.shape) if isinstance(x, torch.Tensor) else repr(x)
                              for x in leaves))
        if key not in cache:
            try:
                cache[key] = module_macs(mod, args, kwargs)
            except Exception as e:  # noqa: BLE001 - reported in the result
                untraced[path] = f'{type(e).__name__}: {str(e)[:200]}'
                cache[key] = 0
        n = cache[key]
        counted[path] += n
        if is_target(path, targets):
            target += n
        else:
            online += n
    return dict(online_macs=online, target_macs=target, step_macs=3 * online + target,
                counted=dict(counted), untraced=untraced, targets=list(targets))


def counted_parts(counted: Dict[str, int], untraced: Dict[str, str],
                  targets=TARGET_NAMES) -> str:
    """Short description of what was counted: the module paths with MACs > 0, grouped by their
    first component (``targets``, the EMA / momentum network, as ``target``)."""
    parts = []
    for path, n in counted.items():
        if n <= 0:
            continue
        head = path.split('.')[0]
        name = 'target' if head in targets else head
        if name not in parts:
            parts.append(name)
    text = '+'.join(parts) or '-'
    if untraced:
        text += ' (untraced: ' + ', '.join(sorted(untraced)) + ')'
    return text
