"""Gradient accumulation (``optim_wrapper.accumulative_counts=2``) for MCL.

What is checked, through ``model.train_step(data, optim_wrapper)`` exactly as the Runner calls
it (mmengine ``OptimWrapper`` with ``accumulative_counts=2`` and ``initialize_count_status``):

* the optimizer steps once per 2 iterations (the weights do not move after the first
  micro-batch of a window and move after the second);
* the step equals the one computed by hand: plain SGD, ``theta <- theta - lr * (g1 + g2) / 2``
  where ``g_i`` is the gradient of micro-batch ``i``'s loss at the window's starting weights
  and target (mmengine scales each loss by ``1/2``);
* the EMA target. MCL (like mmpretrain's BYOL) updates its ``CosineEMA`` inside ``loss()``,
  i.e. once per *iteration*. Without help that means twice per optimizer step, towards the
  same online weights (``test_without_the_hook_the_target_is_averaged_per_micro_batch``
  pins this down). ``EMAAccumulationHook`` makes it one update per optimizer step, at the first
  micro-batch of each window: the target after window ``w`` is
  ``(1 - m_k) * target + m_k * theta_w`` with ``k`` the iteration that opens the window, and
  both micro-batches of a window are computed against that same target.

Note what accumulation cannot reproduce: MCL's InfoNCE draws its negatives from the
micro-batch, and BatchNorm normalises with micro-batch statistics, so 2 x B accumulated is not
one batch of 2B. The hand computation runs each micro-batch through a copy of the model in
train mode, so it uses the same micro-batch BN statistics (running statistics do not enter
train-mode outputs).
"""
import copy
import os.path as osp
import uuid
from math import cos, pi
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from mcl_plugin.engine.hooks import EMAAccumulationHook
from mcl_plugin.registry import MODELS

B, S, SIZE, ITERS, LR, M0 = 4, 2, 32, 4, 0.1, 0.25
DEMO = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'mcl',
                'mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py')


def tiny_mcl() -> torch.nn.Module:
    """A tiny MCL (R18 at width 8, S=2, 32-px views) with BatchNorm, as the demo config."""
    bn, bn1d = dict(type='BN', requires_grad=True), dict(type='BN1d')
    cfg = dict(
        type='MCL', num_levels=S, base_momentum=M0, end_momentum=0.,
        assembler=dict(type='MontageAssembler', shuffle=False),
        backbone=dict(type='PEResNet', depth=18, base_channels=8, stem_channels=8,
                      norm_cfg=bn, norm_eval=False, stem_pos_embed=dict(type='spe')),
        neck=dict(type='mmdet.FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=4,
                  norm_cfg=bn),
        tile_pooler=dict(type='TilePooler', out_size=SIZE // 32),
        tile_head=dict(type='ConvTileHead', in_channels=16, conv_channels=16, norm_cfg=bn),
        projector=dict(type='NonLinearNeck', in_channels=16, hid_channels=32, out_channels=8,
                       with_avg_pool=False, norm_cfg=bn1d),
        head=dict(type='MultiLevelContrastiveHead', temperature=0.2,
                  predictor=dict(type='NonLinearNeck', in_channels=8, hid_channels=32,
                                 out_channels=8, with_last_bn=False, with_avg_pool=False,
                                 norm_cfg=bn1d)))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def micro_batches() -> List[dict]:
    """``ITERS`` data batches as the data loader yields them: ``2S`` uint8 views per image,
    coarse random colour blocks (i.i.d. pixel noise would make every image's pooled embedding
    nearly the same, and the contrastive gradient vanish)."""
    g = torch.Generator().manual_seed(1)

    def view() -> torch.Tensor:
        blocks = torch.randint(0, 256, (B, 3, 4, 4), generator=g).float()
        return F.interpolate(blocks, size=(SIZE, SIZE), mode='bilinear').to(torch.uint8)

    return [dict(inputs=[view() for _ in range(2 * S)], data_samples=[None] * B)
            for _ in range(ITERS)]


def momentum(k: int) -> float:
    """CosineEMA's momentum at step ``k`` of ``ITERS`` (end momentum 0)."""
    return M0 * (cos(pi * k / ITERS) + 1) / 2


def online(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def target(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.target_net.module.named_parameters()}


def as_target_keys(model: torch.nn.Module,
                   theta: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Online weights ``theta`` (model parameter names) under the target's key names
    (``target_net.module`` = ``ModuleDict(online_modules())``)."""
    full_name = {id(p): n for n, p in model.named_parameters()}
    mods = torch.nn.ModuleDict(model.online_modules())
    return {k: theta[full_name[id(p)]].clone() for k, p in mods.named_parameters()}


def hand_loss_and_grads(model: torch.nn.Module, theta: Dict[str, torch.Tensor],
                        tgt: Dict[str, torch.Tensor],
                        data: dict) -> Tuple[float, Dict[str, torch.Tensor]]:
    """Loss and gradient of one micro-batch at online weights ``theta`` and target ``tgt``,
    with the model's own EMA update switched off."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for k, p in ref.named_parameters():
            if k in theta:
                p.copy_(theta[k])
        for k, p in ref.target_net.module.named_parameters():
            p.copy_(tgt[k])
    ref.target_net.update_parameters = lambda _online: None
    ref.zero_grad()
    inputs = ref.data_preprocessor(copy.deepcopy(data), True)
    losses = ref(**inputs, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    # parameters the loss does not reach (e.g. FPN outputs no tile is read from) get no grad
    grads = {k: torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
             for k, p in ref.named_parameters() if k in theta}
    return float(loss.detach()), grads


def _fresh_hub() -> MessageHub:
    hub = MessageHub.get_instance(f'grad_accum_{uuid.uuid4().hex}')
    hub.update_info('max_iters', ITERS)
    return hub


def _run(model: torch.nn.Module, data: List[dict], with_hook: bool,
         on_iter: Optional[Callable] = None) -> None:
    """Runs the micro-batches like the Runner; ``on_iter(i, weights_before, log_vars)``."""
    hub = _fresh_hub()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR), accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, ITERS)
    if with_hook:
        EMAAccumulationHook().before_train(SimpleNamespace(model=model, optim_wrapper=wrapper,
                                                           iter=0))
    for i, batch in enumerate(data):
        hub.update_info('iter', i)
        before = online(model)
        log_vars = model.train_step(copy.deepcopy(batch), wrapper)
        if on_iter is not None:
            on_iter(i, before, log_vars)


def _rel(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    x = torch.cat([v.flatten() for v in a.values()])
    y = torch.cat([b[k].flatten() for k in a])
    return float((x - y).norm() / y.norm())


def test_accumulation_steps_every_second_iteration_with_the_hand_computed_update():
    model = tiny_mcl()
    data = micro_batches()
    start = {'theta': online(model), 'target': None}
    seen = []

    def on_iter(i, before, log_vars):
        after = online(model)
        if i % 2 == 0:  # first micro-batch of a window: gradient accumulated, no step
            assert all(torch.equal(before[k], after[k]) for k in after), i
            assert any(p.grad is not None and p.grad.abs().sum() > 0
                       for p in model.parameters()), i
            seen.append(float(log_vars['loss']))
            return
        seen.append(float(log_vars['loss']))
        # End of a window: compute the window by hand from its starting state.
        theta_w = start['theta']
        k = i - 1  # the iteration (= EMA step) that opened the window
        if k == 0:
            tgt = as_target_keys(model, theta_w)  # step 0 copies the online net
        else:
            m = momentum(k)
            on = as_target_keys(model, theta_w)
            tgt = {n: (1 - m) * start['target'][n] + m * on[n] for n in on}
        # the EMA target after the window is the one-update-per-step target
        got = target(model)
        for n in tgt:
            assert torch.allclose(got[n], tgt[n], rtol=1e-5, atol=1e-7), (i, n)
        l1, g1 = hand_loss_and_grads(model, theta_w, tgt, data[i - 1])
        l2, g2 = hand_loss_and_grads(model, theta_w, tgt, data[i])
        assert abs(seen[-2] - l1) < 1e-4 * abs(l1) and abs(seen[-1] - l2) < 1e-4 * abs(l2)
        moved = {n: after[n] - theta_w[n] for n in after}
        ref_move = {n: -LR * (g1[n] + g2[n]) / 2 for n in after}
        assert torch.cat([v.flatten() for v in ref_move.values()]).norm() > 0.1
        assert _rel(moved, ref_move) < 1e-4, (i, _rel(moved, ref_move))
        # (g1 + g2) / 2, not g1 + g2 nor one micro-batch alone: the cases are far apart
        for wrong in ({n: -LR * (g1[n] + g2[n]) for n in after}, {n: -LR * g2[n] for n in after}):
            assert _rel(moved, wrong) > 0.2
        start['theta'], start['target'] = after, got

    _run(model, data, with_hook=True, on_iter=on_iter)
    assert len(seen) == ITERS and all(torch.isfinite(torch.tensor(seen)))
    assert int(model.target_net.steps) == ITERS and model.target_net.interval == 2


def test_without_the_hook_the_target_is_averaged_per_micro_batch():
    """What mmpretrain-style EMA does under accumulation (why the hook exists): in window 2 the
    target moves towards the same online weights twice, at iterations 2 and 3."""
    model = tiny_mcl()
    data = micro_batches()
    states = {}

    def on_iter(i, before, log_vars):
        states[i] = (online(model), target(model))

    _run(model, data, with_hook=False, on_iter=on_iter)
    theta1 = as_target_keys(model, states[1][0])
    t1 = states[1][1]
    once = {n: (1 - momentum(2)) * t1[n] + momentum(2) * theta1[n] for n in t1}
    twice = {n: (1 - momentum(3)) * once[n] + momentum(3) * theta1[n] for n in t1}
    got = states[3][1]
    assert _rel(got, twice) < 1e-5
    assert _rel(got, once) > 1e-3  # distinguishable from the one-update-per-step target
    assert model.target_net.interval == 1


def test_hook_is_a_no_op_without_accumulation_and_idempotent(monkeypatch):
    from mcl_plugin.engine.hooks import ema_accumulation_hook
    logged = []
    monkeypatch.setattr(ema_accumulation_hook, 'print_log',
                        lambda msg, logger=None, level=None: logged.append(msg))
    model = tiny_mcl()
    hook = EMAAccumulationHook()
    runner = SimpleNamespace(model=model, iter=0,
                             optim_wrapper=OptimWrapper(torch.optim.SGD(model.parameters(), 0.1)))
    hook.before_train(runner)
    assert model.target_net.interval == 1
    runner.optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), 0.1),
                                        accumulative_counts=4)
    hook.before_train(runner)
    hook.before_train(runner)  # a second train() call does not multiply again
    assert model.target_net.interval == 4
    assert not any('not in the same position' in m for m in logged)
    # a resumed iteration that is not where the EMA counter (0) stands in the window: warned
    runner.iter = 3
    hook.before_train(runner)
    assert any('EMA step counter (0)' in m and 'iteration (3)' in m for m in logged)


def test_runner_steps_every_second_iteration_and_the_hook_updates_the_target_once(tmp_path):
    """The CPU demo config through mmengine's Runner (in process, 32-px views, batch 4) with
    ``optim_wrapper.accumulative_counts=2`` and ``EMAAccumulationHook`` in ``custom_hooks``:
    the online weights move after iterations 2 and 4 only; the EMA target in iteration 1 (its
    first update copies the online weights, initialised by the Runner after the target was
    built) and 3 (after the first optimizer step), not in 2 and 4 (second micro-batches;
    without the hook iteration 4 would average the target again)."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from PIL import Image
    cfg = Config.fromfile(DEMO)
    rng = torch.Generator().manual_seed(0)
    for i in range(8):
        blocks = torch.randint(0, 256, (1, 3, 4, 4), generator=rng).float()
        img = F.interpolate(blocks, size=(48, 48), mode='bilinear')[0].permute(1, 2, 0)
        Image.fromarray(img.to(torch.uint8).numpy()).save(tmp_path / f'{i}.png')
    for views in cfg.train_dataloader.dataset.pipeline[1].transforms:
        views[0].scale = SIZE
    cfg.model.tile_pooler.out_size = SIZE // 32
    cfg.train_dataloader.update(batch_size=B, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root='', ann_file='', data_prefix=str(tmp_path))
    cfg.train_cfg.max_iters = ITERS
    cfg.optim_wrapper.accumulative_counts = 2
    cfg.custom_hooks = [dict(type='EMAAccumulationHook')]
    cfg.default_hooks.checkpoint.interval = 100
    cfg.work_dir = str(tmp_path / 'work')

    class Record(Hook):
        """Which of a few online / target weights changed in each iteration."""

        def __init__(self) -> None:
            self.online_moved: List[bool] = []
            self.target_moved: List[bool] = []

        @staticmethod
        def _weights(runner):
            model = runner.model
            return (model.backbone.conv1.weight.detach().clone(),
                    model.target_net.module['backbone'].conv1.weight.detach().clone())

        def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
            self._before = self._weights(runner)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            online_, target_ = self._weights(runner)
            self.online_moved.append(not torch.equal(online_, self._before[0]))
            self.target_moved.append(not torch.equal(target_, self._before[1]))

    runner = Runner.from_cfg(cfg)
    record = Record()
    runner.register_hook(record, priority='LOWEST')
    runner.train()
    assert record.online_moved == [False, True, False, True]
    assert record.target_moved == [True, False, True, False]
    assert runner.model.target_net.interval == 2 and int(runner.model.target_net.steps) == ITERS
