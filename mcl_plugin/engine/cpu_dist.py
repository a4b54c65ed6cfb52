"""Multi-process training on CPU-only machines (gloo) through mmengine's Runner.

mmengine 0.10 assumes one GPU per process under ``--launcher pytorch``:

* ``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device(LOCAL_RANK)``
  before ``init_process_group`` ("Found no NVIDIA driver on your system");
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to ``MMDistributedDataParallel``,
  which torch refuses for a CPU module ("device_ids and output_device arguments only work
  with single-device/multiple-device GPU modules").

So ``torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch`` cannot run on a
CPU-only machine, whatever the backend. :func:`enable_cpu_distributed` (called on
``import mcl_plugin``, so every entry point that imports the plugin gets it, ``mim train``
included) changes both **only when CUDA is unavailable**: the process group is created
without selecting a GPU (``nccl`` is replaced by ``gloo`` with a log line), and a CPU module
is wrapped without ``device_ids``. Machines with CUDA, NPU, MLU or MUSA devices keep mmengine's
code path unchanged.
"""
import functools
import logging

import torch
import torch.distributed as torch_dist
from mmengine.logging import print_log

_PATCHED = '_mcl_plugin_cpu_safe'


def _accelerator_available() -> bool:
    from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
    return (torch.cuda.is_available() or is_mlu_available() or is_npu_available()
            or is_musa_available())


def _cpu_safe_init_dist_pytorch(original):
    """Wrap ``mmengine.dist.utils._init_dist_pytorch``: no ``cuda.set_device`` without CUDA."""

    @functools.wraps(original)
    def init(backend, init_backend: str = 'torch', **kwargs) -> None:
        if _accelerator_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            print_log('CUDA is not available: using the gloo backend instead of nccl',
                      logger='current', level=logging.WARNING)
            backend = 'gloo'
        torch_dist.init_process_group(backend=backend, **kwargs)

    setattr(init, _PATCHED, True)
    return init


def _cpu_safe_ddp_init(original):
    """Wrap ``MMDistributedDataParallel.__init__``: no ``device_ids`` for a CPU module."""

    @functools.wraps(original)
    def __init__(self, module, *args, **kwargs) -> None:
        if (kwargs.get('device_ids') is not None and not torch.cuda.is_available()
                and all(p.device.type == 'cpu' for p in module.parameters())):
            kwargs['device_ids'] = None
        original(self, module, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    return __init__


def enable_cpu_distributed() -> None:
    """Make mmengine's ``pytorch`` launcher and DDP wrapper work without a GPU (idempotent).

    See the module docstring for what changes; nothing changes where CUDA is available.
    """
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel

    if not getattr(dist_utils._init_dist_pytorch, _PATCHED, False):
        dist_utils._init_dist_pytorch = _cpu_safe_init_dist_pytorch(
            dist_utils._init_dist_pytorch)
    if not getattr(MMDistributedDataParallel.__init__, _PATCHED, False):
        MMDistributedDataParallel.__init__ = _cpu_safe_ddp_init(
            MMDistributedDataParallel.__init__)
