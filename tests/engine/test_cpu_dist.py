"""mcl_plugin.engine.cpu_dist: mmengine's ``pytorch`` launcher and DDP wrapper without a GPU,
opt-in from the entry points (``tools/train.py``, ``tools/test.py``), nothing patched."""
import multiprocessing
import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from mcl_plugin.engine import cpu_dist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(cpu_dist, '_accelerator_available', lambda: False)


@pytest.fixture
def one_process_env(monkeypatch):
    """The variables torchrun sets, for a world of one process. The Runner sets the
    multiprocessing start method: restored afterwards."""
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


def _cfg(**kwargs) -> Config:
    return Config(dict(dict(launcher='pytorch',
                            env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=1800))), **kwargs))


def test_config_for_pytorch_launcher_without_accelerator(no_accelerator):
    cfg = _cfg(find_unused_parameters=True)
    assert cpu_dist.cpu_distributed_cfg(cfg)
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=1800)
    # what Runner.wrap_model builds by default, without device_ids
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False, find_unused_parameters=True)
    # a backend other than nccl, and a wrapper the config names, are kept
    cfg = _cfg(model_wrapper_cfg=dict(type='MMDistributedDataParallel', broadcast_buffers=True))
    cfg.env_cfg.dist_cfg.backend = 'mpi'
    assert cpu_dist.cpu_distributed_cfg(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'mpi'
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel',
                                         broadcast_buffers=True, device_ids=None)
    # every DDP subclass gets device_ids from the Runner (the separate wrapper passes them on
    # to one DDP per submodule); FSDP, no DDP subclass, gets none: left alone
    cfg = _cfg(model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel'))
    assert cpu_dist.cpu_distributed_cfg(cfg)
    assert cfg.model_wrapper_cfg == dict(type='MMSeparateDistributedDataParallel',
                                         device_ids=None)
    cfg = _cfg(model_wrapper_cfg=dict(type='MMFullyShardedDataParallel'))
    assert cpu_dist.cpu_distributed_cfg(cfg)
    assert cfg.model_wrapper_cfg == dict(type='MMFullyShardedDataParallel')


@pytest.mark.parametrize('case', ['accelerator', 'launcher none', 'launcher slurm', 'deepspeed'])
def test_nothing_changes_elsewhere(case, monkeypatch):
    monkeypatch.setattr(cpu_dist, '_accelerator_available', lambda: case == 'accelerator')
    cfg = _cfg()
    if case.startswith('launcher'):
        cfg.launcher = case.split()[1]
    if case == 'deepspeed':
        cfg.env_cfg.dist_cfg.init_backend = 'deepspeed'
    before = cfg.to_dict()
    assert not cpu_dist.setup_cpu_distributed(cfg)
    assert cfg.to_dict() == before and not dist.is_initialized()


def test_runner_trains_with_pytorch_launcher_on_cpu(one_process_env, tmp_path):
    """``Runner`` under ``--launcher pytorch`` with the default ``nccl`` config, as the entry
    points build it: the process group is gloo, the Runner does not call ``init_dist`` (which
    would call ``cuda.set_device``), and DDP wraps the CPU model without ``device_ids``."""
    from mmengine.model import BaseModel, MMDistributedDataParallel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.linear(torch.stack(inputs))
            return dict(loss=out.sum()) if mode == 'loss' else out

    cfg = _cfg(find_unused_parameters=False)
    assert cpu_dist.setup_cpu_distributed(cfg)
    assert dist.is_initialized() and dist.get_backend() == 'gloo'
    # the Runner reads model_wrapper_cfg from its config, as Runner.from_cfg(cfg) does
    runner = Runner(model=Toy(), work_dir=str(tmp_path), launcher='pytorch',
                    env_cfg=cfg.env_cfg, default_scope='mmengine', cfg=cfg)
    assert runner.distributed and runner.world_size == 1
    ddp = runner.model
    assert isinstance(ddp, MMDistributedDataParallel) and ddp.device_ids is None
    ddp(torch.ones(4, 3).unbind(0), mode='loss')['loss'].backward()
    assert torch.allclose(ddp.module.linear.weight.grad, torch.full((2, 3), 4.0))
