"""MomentumEncoder: checkpoint key names, exact momentum schedules (the same numbers as
mmpretrain's CosineEMA / mmengine's ExponentialMovingAverage), the key-encoder pass."""
import copy
import math

import pytest
import torch
from mmengine.model import BaseAveragedModel, ExponentialMovingAverage
from mmpretrain.models.utils import CosineEMA
from torch import nn

from mcl_plugin.models.utils import MomentumEncoder
from mcl_plugin.models.utils import ema as ema_module

MAX_ITERS = 10


def online_modules(seed: int = 0) -> nn.ModuleDict:
    torch.manual_seed(seed)
    return nn.ModuleDict(
        dict(backbone=nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)), neck=nn.Linear(6, 3)))


def perturb(modules: nn.Module, step: int) -> None:
    """Move every online weight, differently at every step."""
    g = torch.Generator().manual_seed(100 + step)
    with torch.no_grad():
        for p in modules.parameters():
            p.add_(torch.randn(p.shape, generator=g))


class Algo(nn.Module):
    """An algorithm's attribute layout: online modules and their ``target_net``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        self.neck = nn.Linear(2, 2)
        self.target_net = MomentumEncoder(dict(backbone=self.backbone, neck=self.neck), 0.1)


def test_checkpoint_keys_name_the_modules():
    keys = [k for k in Algo().state_dict() if 'running' not in k and 'num_batches' not in k]
    assert keys == [
        'backbone.0.weight', 'backbone.0.bias', 'backbone.1.weight', 'backbone.1.bias',
        'neck.weight', 'neck.bias', 'target_net.steps', 'target_net.module.backbone.0.weight',
        'target_net.module.backbone.0.bias', 'target_net.module.backbone.1.weight',
        'target_net.module.backbone.1.bias', 'target_net.module.neck.weight',
        'target_net.module.neck.bias'
    ]
    enc = Algo().target_net
    assert isinstance(enc, BaseAveragedModel)  # EMAAccumulationHook finds it
    assert not any(p.requires_grad for p in enc.parameters())


def test_checkpoints_with_the_old_positional_keys_still_load():
    """``target_net.module.<K>`` (before the copies were named) -> the K-th named module, with
    torch's and mmengine's (resume) loaders, strictly: nothing missing, nothing unexpected."""
    from mmengine.runner.checkpoint import load_state_dict
    src = Algo()
    with torch.no_grad():
        for i, p in enumerate(src.target_net.parameters()):
            p.copy_(torch.full_like(p, float(i + 3)))
        src.target_net.module['backbone'][1].running_var.fill_(5.)
        src.target_net.steps.fill_(7)
    state = src.state_dict()
    old = {k.replace('target_net.module.backbone.', 'target_net.module.0.').replace(
        'target_net.module.neck.', 'target_net.module.1.'): v for k, v in state.items()}
    assert 'target_net.module.0.1.running_var' in old and 'target_net.module.1.bias' in old
    for load in (lambda m, sd: m.load_state_dict(sd, strict=True),
                 lambda m, sd: load_state_dict(m, sd, strict=True)):
        dst = Algo()
        load(dst, dict(old))
        got = dst.state_dict()
        assert list(got) == list(state) and all(torch.equal(got[k], state[k]) for k in state)


@pytest.mark.parametrize('interval', [1, 3])
def test_cosine_schedule_is_mmpretrain_cosine_ema_bit_for_bit(message_hub, interval):
    message_hub.update_info('max_iters', MAX_ITERS)
    online = online_modules()
    ours = MomentumEncoder(dict(online.items()), 0.3, end_momentum=0.05, interval=interval)
    ref = CosineEMA(copy.deepcopy(online), momentum=0.3, end_momentum=0.05, interval=interval)
    for step in range(MAX_ITERS):
        if step:
            perturb(online, step)
        # the logged momentum is the one the next update applies (at the counter's step)
        k = int(ours.steps)
        m = 0.05 - (0.05 - 0.3) * (math.cos(math.pi * k / MAX_ITERS) + 1) / 2
        assert ours.current_momentum == pytest.approx(m, rel=1e-6)
        ours.update_parameters(dict(online.items()))
        ref.update_parameters(online)
        for (name, a), (_, b) in zip(ours.module.state_dict().items(),
                                     ref.module.state_dict().items()):
            assert torch.equal(a, b), (step, name)
    assert int(ours.steps) == MAX_ITERS


def test_constant_momentum_is_mmengine_ema_bit_for_bit_and_k_steps_by_hand():
    online = online_modules()
    ours = MomentumEncoder(dict(online.items()), 0.25)
    ref = ExponentialMovingAverage(copy.deepcopy(online), momentum=0.25)
    start = online['neck'].weight.detach().clone()
    ours.update_parameters(online)  # step 0 copies the online weights
    ref.update_parameters(online)
    assert torch.equal(ours.module['neck'].weight, start)
    with torch.no_grad():
        online['neck'].weight.add_(1.0)
    for step in range(1, 5):
        assert ours.current_momentum == 0.25
        ours.update_parameters(online)
        ref.update_parameters(online)
        # k steps towards a fixed online weight: target = online - (1 - m)^k * gap
        expected = start + 1.0 - 0.75**step
        assert torch.allclose(ours.module['neck'].weight, expected, atol=1e-6)
        for a, b in zip(ours.module.parameters(), ref.module.parameters()):
            assert torch.equal(a, b)
    # buffers (BN running statistics) are copied from the online modules, not averaged
    online['backbone'][1].running_mean.fill_(7.)
    ours.update_parameters(online)
    assert torch.equal(ours.module['backbone'][1].running_mean, torch.full((6, ), 7.))


def test_current_momentum_without_a_runner_is_the_start_momentum(message_hub):
    enc = MomentumEncoder(dict(online_modules().items()), 0.01, end_momentum=0.)
    message_hub.update_info('max_iters', None)
    assert enc.current_momentum == 0.01


def _encode(modules, x, scale=1.0):
    """Two outputs (a tensor and a list), as DetCo's stage lists and PLRC's pair."""
    h = modules['backbone'](x)
    return h * scale, [modules['neck'](h)]


def test_key_pass_without_gradient_and_shuffle_bn_is_plain_on_one_process(monkeypatch):
    online = online_modules()
    enc = MomentumEncoder(dict(online.items()), 0.1)
    enc.train()  # BN with batch statistics: a permuted batch would change the float sums
    x = torch.randn(8, 4, requires_grad=True)

    def no_shuffle(_):
        raise AssertionError('batch_shuffle_ddp called in a single process')

    monkeypatch.setattr(ema_module, 'batch_shuffle_ddp', no_shuffle)
    plain = enc(_encode, x, 2.0)
    shuffled = enc(_encode, x, 2.0, shuffle_bn=True)
    assert torch.equal(plain[0], shuffled[0]) and torch.equal(plain[1][0], shuffled[1][0])
    assert not plain[0].requires_grad and not plain[1][0].requires_grad
    expected = _encode(enc.module, x.detach(), 2.0)
    assert torch.equal(plain[0], expected[0])


def test_shuffle_bn_restores_every_output_to_this_rank_order(monkeypatch):
    """With several processes: the batch is shuffled before the key encoder and every output
    (nested lists and tuples included) is restored, so row i is still image i's key."""
    enc = MomentumEncoder(dict(online_modules().items()), 0.1)
    enc.eval()  # per-sample function: a misrouted row would show
    perm = torch.tensor([3, 0, 2, 1])
    monkeypatch.setattr(ema_module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(ema_module, 'batch_shuffle_ddp', lambda x: (x[perm], perm.argsort()))
    monkeypatch.setattr(ema_module, 'batch_unshuffle_ddp', lambda x, idx: x[idx])
    x = torch.randn(4, 4)
    got = enc(lambda m, x: (_encode(m, x), x), x, shuffle_bn=True)
    want = (_encode(enc.module, x), x)
    assert torch.allclose(got[0][0], want[0][0]) and torch.allclose(got[0][1][0], want[0][1][0])
    assert torch.equal(got[1], x)
    with pytest.raises(TypeError, match='unshuffle a dict'):
        enc(lambda m, x: dict(x=x), x, shuffle_bn=True)
