"""Multi-process training on CPU-only machines (gloo) through mmengine's Runner, opt-in.

mmengine 0.10 assumes one GPU per process under ``--launcher pytorch``:

* ``Runner.setup_env`` calls ``mmengine.dist.init_dist``, whose ``_init_dist_pytorch`` calls
  ``torch.cuda.set_device(LOCAL_RANK)`` before ``init_process_group`` ("Found no NVIDIA driver
  on your system"), with the config's backend (``nccl`` in most configs);
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to ``MMDistributedDataParallel``,
  which torch refuses for a CPU module ("device_ids and output_device arguments only work
  with single-device/multiple-device GPU modules").

The entry points (``tools/train.py``, ``tools/test.py``, hence ``mim train mcl_plugin`` too)
call :func:`setup_cpu_distributed` on the merged config before they build the Runner. Under
``launcher='pytorch'`` on a machine without CUDA, NPU, MLU or MUSA device it only uses inputs
the Runner already reads; nothing of mmengine is patched:

1. the config (:func:`cpu_distributed_cfg`): ``env_cfg.dist_cfg.backend`` ``nccl`` becomes
   ``gloo`` (with a log line; the logged config shows the backend in use), and the DDP wrapper
   is configured with ``device_ids=None`` (a key of ``model_wrapper_cfg`` wins over the
   ``device_ids=[LOCAL_RANK]`` the Runner passes as a default argument);
2. the process group: created here from torchrun's environment, as ``_init_dist_pytorch`` does
   but without ``set_device``. ``Runner.setup_env`` then finds ``is_distributed()`` true and
   skips ``init_dist``.

Anywhere else (an accelerator, another launcher, a non-torch ``init_backend``) both functions
change nothing. ``import mcl_plugin`` does not call them: entry points of other projects
(mmdet's / mmpretrain's ``tools/train.py`` with ``custom_imports``) keep mmengine's behaviour.
"""
import datetime
import logging

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log


def _accelerator_available() -> bool:
    from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
    return (torch.cuda.is_available() or is_mlu_available() or is_npu_available()
            or is_musa_available())


def _is_ddp(wrapper_cfg: dict, scope) -> bool:
    """Whether the Runner would pass ``device_ids`` to this wrapper (a DDP subclass)."""
    from mmengine.registry import MODEL_WRAPPERS, DefaultScope
    from torch.nn.parallel import DistributedDataParallel
    wrapper_type = wrapper_cfg.get('type', 'MMDistributedDataParallel')
    if isinstance(wrapper_type, str):
        with DefaultScope.overwrite_default_scope(scope):
            wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    return isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel)


def cpu_distributed_cfg(cfg: Config) -> bool:
    """Edit ``cfg`` (in place) for ``launcher='pytorch'`` without an accelerator.

    Returns whether it applies (``cfg.launcher == 'pytorch'``, no accelerator, mmengine's own
    ``init_backend``); when it does not, ``cfg`` is left as it is.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or _accelerator_available():
        return False
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if dist_cfg.get('init_backend', 'torch') != 'torch':
        return False  # deepspeed / colossalai initialise the processes themselves
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print_log('CUDA is not available: using the gloo backend instead of nccl',
                  logger='current', level=logging.WARNING)
        dist_cfg['backend'] = 'gloo'
    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        # what Runner.wrap_model builds when there is no model_wrapper_cfg, without device_ids
        cfg.model_wrapper_cfg = ConfigDict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False), device_ids=None)
    elif _is_ddp(wrapper_cfg, cfg.get('default_scope', None)):
        wrapper_cfg.setdefault('device_ids', None)
    return True


def setup_cpu_distributed(cfg: Config) -> bool:
    """:func:`cpu_distributed_cfg`, then create the process group from torchrun's environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) with the config's
    ``env_cfg.dist_cfg``. Call it before building the Runner; returns whether it applied."""
    if not cpu_distributed_cfg(cfg):
        return False
    if not torch_dist.is_initialized():
        kwargs = dict(cfg.env_cfg.dist_cfg)
        kwargs.pop('init_backend', None)
        backend = kwargs.pop('backend')
        if isinstance(kwargs.get('timeout'), (int, float)):  # seconds, as init_dist reads it
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        torch_dist.init_process_group(backend=backend, **kwargs)
    return True
