"""The timed worker: ``model.train_step`` of one algorithm in a fresh process
(:func:`run_isolated`), its step times and peak memory (:func:`run_worker`)."""
import os
import resource
import time
from typing import Optional

from .inputs import make_batch
from .models import build_model, model_cfg


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; Linux ``ru_maxrss`` is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
               macs: bool = False) -> dict:
    """Time ``steps`` training steps of one algorithm after ``warmup`` untimed ones.

    Meant to run alone in a fresh process: the peak-memory numbers are this process's.
    ``rss_ready_mb`` is the RSS with the model, its EMA copy, queues and the batch in memory;
    ``peak_delta_mb`` is the peak during the steps above that (activations, gradients, SGD
    momentum, temporaries). On CUDA both come from the caching allocator instead.

    Returns:
        dict: ``model, times (s), rss_import_mb, rss_ready_mb, peak_mb, peak_delta_mb,
        peak_is_lower_bound, params_m, num_levels, threads`` and, with ``macs``, the MAC count
        of one step (:func:`~.macs.step_macs`, after the timed steps and the peak reading:
        ``online_macs, target_macs, step_macs, macs_counted, macs_untraced, macs_targets``).
    """
    import torch
    from mmengine.logging import MessageHub
    from mmengine.optim import OptimWrapper
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rss_import = rss_mb()
    MessageHub.get_current_instance().update_info('max_iters', 10**6)  # CosineEMA schedules
    model = build_model(model_cfg(name, depth, img, levels, heads), device)
    optim = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                         lr=1e-3, momentum=0.9))
    data = make_batch(name, model, batch, img, seed)
    cuda = device.startswith('cuda')
    if cuda:
        torch.cuda.synchronize()
        ready = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    else:
        ready, max_ready = rss_mb(), max_rss_mb()
    times = []
    for i in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.train_step(data, optim)
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else max_rss_mb()
    rec = {}
    if macs:
        from .macs import step_macs
        count = step_macs(model, data)
        rec = dict(online_macs=count['online_macs'], target_macs=count['target_macs'],
                   step_macs=count['step_macs'], macs_counted=count['counted'],
                   macs_untraced=count['untraced'], macs_targets=count['targets'])
    return dict(rec, model=name, times=times, rss_import_mb=rss_import, rss_ready_mb=ready,
                peak_mb=peak, peak_delta_mb=peak - ready,
                # the steps did not raise the process's earlier peak (import / build)
                peak_is_lower_bound=bool(not cuda and peak <= max_ready),
                params_m=sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
                num_levels=getattr(model, 'num_levels', None), threads=torch.get_num_threads())


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
