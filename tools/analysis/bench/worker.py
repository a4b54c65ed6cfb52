"""The timed worker: ``model.train_step`` of one algorithm in a fresh process
(:func:`run_isolated`), its step times and peak memory (:func:`run_worker`), and what one step
holds in memory: the tensors autograd saves for backward, the weights, gradients and optimizer
state (:func:`step_memory`)."""
import inspect
import itertools
import os
import resource
import time
from typing import Callable, Dict, Iterable, Optional, Tuple

from .inputs import make_batch
from .models import build_model, model_cfg

#: Bytes per MiB.
MB = 2**20


def allocator() -> str:
    """The malloc this process runs on: ``jemalloc`` / ``tcmalloc`` when preloaded (e.g.
    ``LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2``), else ``glibc malloc``, with
    ``, freed memory kept`` after :func:`mcl_plugin.engine.keep_freed_memory`."""
    from mcl_plugin.engine.malloc import kept_settings
    kept = ', freed memory kept' if kept_settings() is not None else ''
    try:
        with open('/proc/self/maps') as f:
            maps = f.read()
    except OSError:
        return 'unknown'
    for lib in ('jemalloc', 'tcmalloc'):
        if f'lib{lib}' in maps:
            return lib + kept
    return 'glibc malloc' + kept


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; Linux ``ru_maxrss`` is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def storage_bytes(tensors: Iterable) -> Dict[int, int]:
    """The distinct storages under ``tensors``: ``{data_ptr: nbytes}`` (views of one storage
    count once, with the whole storage)."""
    out = {}
    for t in tensors:
        storage = t.untyped_storage()
        out[storage.data_ptr()] = storage.nbytes()
    return out


def saved_tensor_bytes(fn: Callable[[], object], exclude: Iterable = ()) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs.

    A ``torch.autograd.graph.saved_tensors_hooks`` pack hook records the storage of every saved
    tensor; each distinct storage counts once (by ``data_ptr``, its ``nbytes``), so an output
    saved by one op and the input saved by the next are one activation. Storages of ``exclude``
    (the model's parameters and buffers: weights, not activations, e.g. the transposed weight a
    linear layer saves) are left out.

    Args:
        fn (Callable): What to run, e.g. one ``train_step`` (forward and backward).
        exclude (Iterable[torch.Tensor]): Tensors whose storages are not counted.

    Returns:
        int: Saved bytes.
    """
    import torch
    skip = set(storage_bytes(exclude))
    saved: Dict[int, int] = {}

    def pack(t):
        saved.update(storage_bytes([t]))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(n for ptr, n in saved.items() if ptr not in skip)


def step_memory(step: Callable[[], object], model, optimizer) -> Dict[str, float]:
    """One training ``step`` taken apart in memory (MB): what autograd saves for backward
    (:func:`saved_tensor_bytes`, the model's parameters and buffers excluded), the weights
    (parameters + buffers of ``model``: the EMA / momentum network and queues included), the
    gradients when ``optimizer.step`` starts, and the optimizer state after the step.

    Args:
        step (Callable): One training step (forward, backward, ``optimizer.step``).
        model (torch.nn.Module): The trained model.
        optimizer (torch.optim.Optimizer): The optimizer ``step`` calls.

    Returns:
        dict: ``saved_act_mb, weights_mb, grads_mb, optim_state_mb`` and ``state_mb`` (the sum
        of the last three).
    """
    weights = list(itertools.chain(model.parameters(), model.buffers()))
    grads: Dict[int, int] = {}

    def before_step(opt, args, kwargs) -> None:
        grads.update(storage_bytes(p.grad for group in opt.param_groups
                                   for p in group['params'] if p.grad is not None))

    handle = optimizer.register_step_pre_hook(before_step)
    try:
        saved = saved_tensor_bytes(step, exclude=weights)
    finally:
        handle.remove()
    state = storage_bytes(v for s in optimizer.state.values() for v in s.values()
                          if hasattr(v, 'untyped_storage'))
    out = dict(saved_act_mb=saved / MB, weights_mb=sum(storage_bytes(weights).values()) / MB,
               grads_mb=sum(grads.values()) / MB, optim_state_mb=sum(state.values()) / MB)
    out['state_mb'] = out['weights_mb'] + out['grads_mb'] + out['optim_state_mb']
    return out


def build_optimizer(params: Iterable, foreach: bool = False,
                    optimizer_cls: Optional[type] = None) -> Tuple[object, bool]:
    """The benchmark's optimizer: SGD, lr 1e-3, momentum 0.9 (the same for every method).

    Args:
        params (Iterable): Parameters to optimize.
        foreach (bool): Ask for the multi-tensor (``foreach=True``) step where the class takes
            a ``foreach`` argument (torch's SGD / AdamW do, mmpretrain's LARS does not).
        optimizer_cls (type, optional): Defaults to ``torch.optim.SGD``.

    Returns:
        tuple: The optimizer and whether it got ``foreach=True``.
    """
    import torch
    cls = optimizer_cls or torch.optim.SGD
    use = foreach and 'foreach' in inspect.signature(cls).parameters
    return cls(params, lr=1e-3, momentum=0.9, **(dict(foreach=True) if use else {})), use


def _channels_last_inputs(module, args: tuple, output: dict) -> dict:
    """Forward hook of the data preprocessor: the images (4-D tensors) it returns in
    ``channels_last``."""
    import torch

    def convert(x):
        if isinstance(x, torch.Tensor) and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    inputs = output['inputs']
    output['inputs'] = ([convert(x) for x in inputs] if isinstance(inputs, (list, tuple))
                        else convert(inputs))
    return output


def run_worker(name: str,
               depth: int,
               img: int,
               batch: int,
               steps: int,
               warmup: int = 1,
               levels: Optional[int] = None,
               heads: str = 'paper',
               device: str = 'cpu',
               threads: Optional[int] = None,
               seed: int = 0,
               macs: bool = False,
               channels_last: bool = False,
               foreach: bool = False,
               profile: bool = False,
               keep_freed_memory: bool = False) -> dict:
    """Time ``steps`` training steps of one algorithm after ``warmup`` untimed ones.

    Meant to run alone in a fresh process: the peak-memory numbers are this process's.
    ``rss_ready_mb`` is the RSS with the model, its EMA copy, queues and the batch in memory;
    ``peak_delta_mb`` is the peak during the steps above that (activations, gradients, SGD
    momentum, temporaries). On CUDA both come from the caching allocator instead.

    What one step holds (:func:`step_memory`) is read in the first warm-up step (untimed; the
    hooks keep no tensor alive, so the peak is not raised), or with ``warmup=0`` in one extra
    step after the peak reading.

    Args:
        channels_last (bool): Model weights and the images out of the data preprocessor in
            ``torch.channels_last`` (fails naming the algorithm if it cannot run so).
        foreach (bool): ``foreach=True`` optimizer step where the optimizer takes it
            (:func:`build_optimizer`).
        profile (bool): After the timed steps, one more step under :mod:`torch.profiler`
            (its operators' self time by kind, :func:`~.profile.profile_step`) and one with
            every convolution's forward timed (:func:`~.profile.conv_rates`).
        keep_freed_memory (bool): First of all, :func:`mcl_plugin.engine.keep_freed_memory`
            (glibc malloc keeps freed memory for reuse; fails on another C library).

    Returns:
        dict: ``model, times (s), rss_import_mb, rss_ready_mb, peak_mb, peak_delta_mb,
        peak_is_lower_bound, params_m, num_levels, threads, channels_last, optimizer,
        foreach`` (whether the optimizer got ``foreach=True``), ``allocator``, the
        :func:`step_memory` keys and, with ``macs``, the MAC count of one step
        (:func:`~.macs.step_macs`, after the timed steps and the peak reading: ``online_macs,
        target_macs, step_macs, macs_counted, macs_untraced, macs_targets``) and, with
        ``profile``, ``profile``.
    """
    import torch
    from mmengine.logging import MessageHub
    from mmengine.optim import OptimWrapper
    if keep_freed_memory:
        from mcl_plugin.engine import keep_freed_memory as keep
        keep()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rss_import = rss_mb()
    MessageHub.get_current_instance().update_info('max_iters', 10**6)  # CosineEMA schedules
    model = build_model(model_cfg(name, depth, img, levels, heads), device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        model.data_preprocessor.register_forward_hook(_channels_last_inputs)
    optimizer, used_foreach = build_optimizer(
        [p for p in model.parameters() if p.requires_grad], foreach)
    optim = OptimWrapper(optimizer)
    data = make_batch(name, model, batch, img, seed)

    def step() -> None:
        try:
            model.train_step(data, optim)
        except RuntimeError as err:
            if channels_last:
                raise RuntimeError(f'{name} cannot run with --channels-last (channels_last '
                                   f'weights and images): {err}') from err
            raise

    cuda = device.startswith('cuda')
    if cuda:
        torch.cuda.synchronize()
        ready = torch.cuda.memory_allocated() / MB
        torch.cuda.reset_peak_memory_stats()
    else:
        ready, max_ready = rss_mb(), max_rss_mb()
    times, held = [], {}
    for i in range(warmup + steps):
        if i == 0 and warmup:
            held = step_memory(step, model, optimizer)
            continue
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / MB if cuda else max_rss_mb()
    if not warmup:
        held = step_memory(step, model, optimizer)
    rec = {}
    if profile:
        from .profile import conv_rates, profile_step
        rec['profile'] = dict(profile_step(step), conv_rates=conv_rates(model, step))
    if macs:
        from .macs import step_macs
        count = step_macs(model, data)
        rec = dict(online_macs=count['online_macs'], target_macs=count['target_macs'],
                   step_macs=count['step_macs'], macs_counted=count['counted'],
                   macs_untraced=count['untraced'], macs_targets=count['targets'])
    return dict(rec, **held, model=name, times=times, rss_import_mb=rss_import,
                rss_ready_mb=ready, peak_mb=peak, peak_delta_mb=peak - ready,
                # the steps did not raise the process's earlier peak (import / build)
                peak_is_lower_bound=bool(not cuda and peak <= max_ready),
                params_m=sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
                num_levels=getattr(model, 'num_levels', None), threads=torch.get_num_threads(),
                channels_last=channels_last, optimizer=type(optimizer).__name__,
                foreach=used_foreach, allocator=allocator())


def _worker_entry(conn, kwargs: dict) -> None:
    """Child side of :func:`run_isolated`: run the worker, send ``('ok', record)`` or
    ``('error', traceback)``."""
    import traceback
    try:
        conn.send(('ok', run_worker(**kwargs)))
    except BaseException:  # noqa: BLE001 - reported by the parent
        conn.send(('error', traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(kwargs: dict, context=None) -> dict:
    """:func:`run_worker` in a fresh child process (so its peak memory is its own).

    Args:
        kwargs (dict): Arguments of :func:`run_worker`.
        context: A ``multiprocessing`` context. Defaults to ``forkserver`` with this module
            preloaded, so every child starts from a process that has imported torch and the
            OpenMMLab stack but has built no model (no import cost per child, and the child's
            ``ru_maxrss`` starts at its own RSS: Linux resets the high-water mark on fork).

    Returns:
        dict: The worker's record.
    """
    import multiprocessing as mp
    if context is None:
        context = mp.get_context('forkserver')
        context.set_forkserver_preload([__name__])
    parent, child = context.Pipe(duplex=False)
    proc = context.Process(target=_worker_entry, args=(child, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        status, payload = parent.recv()
    except EOFError:
        status, payload = 'error', 'the worker died without a result'
    proc.join()
    if status != 'ok':
        raise RuntimeError(f"worker {kwargs.get('name')} failed (exit code {proc.exitcode}):\n"
                           f'{payload}')
    return payload
