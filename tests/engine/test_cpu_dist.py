"""mcl_plugin.engine.cpu_dist: mmengine's ``pytorch`` launcher and DDP wrapper without a GPU."""
import multiprocessing
import socket

import pytest
import torch
import torch.distributed as dist

from mcl_plugin.engine import cpu_dist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def one_process_env(monkeypatch):
    """The variables torchrun sets, for a world of one process. ``init_dist`` also sets the
    multiprocessing start method when none is set: restored afterwards."""
    if torch.cuda.is_available():
        pytest.skip('CUDA is available: mmengine keeps its own code path')
    start_method = multiprocessing.get_start_method(allow_none=True)
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(key, value)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()
    multiprocessing.set_start_method(start_method, force=True)


def test_patches_are_installed_once_on_import():
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel
    init, ddp_init = dist_utils._init_dist_pytorch, MMDistributedDataParallel.__init__
    assert getattr(init, cpu_dist._PATCHED) and getattr(ddp_init, cpu_dist._PATCHED)
    cpu_dist.enable_cpu_distributed()  # idempotent: no wrapper around the wrapper
    assert dist_utils._init_dist_pytorch is init
    assert MMDistributedDataParallel.__init__ is ddp_init


def test_pytorch_launcher_and_ddp_wrapper_work_on_cpu(one_process_env):
    """What ``Runner`` does under ``--launcher pytorch``: ``init_dist`` (here even with the
    default ``nccl`` backend, replaced by gloo) and DDP with ``device_ids=[LOCAL_RANK]``."""
    from mmengine.dist import init_dist
    from mmengine.model import MMDistributedDataParallel
    init_dist('pytorch', backend='nccl')
    assert dist.is_initialized() and dist.get_backend() == 'gloo'
    assert dist.get_world_size() == 1
    model = torch.nn.Linear(3, 2)
    ddp = MMDistributedDataParallel(module=model, device_ids=[0], broadcast_buffers=False)
    assert ddp.device_ids is None
    out = ddp(torch.ones(4, 3))
    out.sum().backward()
    assert torch.allclose(model.weight.grad, torch.full((2, 3), 4.0))
