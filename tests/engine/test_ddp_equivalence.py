"""Two gloo processes on CPU == one process with the same global batch: MCL and DetCo.

MCL: negatives are all-gathered with gradient, so the DDP-averaged gradient must equal the
single-process gradient of the global batch. GroupNorm everywhere makes every feature depend on
its own sample only, and ``shuffle=False`` makes the montages independent of the rank split, so
the comparison is exact up to float reduction order.

DetCo (queue-based, MoCo's shuffling BN): see :func:`test_detco_two_processes_match_one_process`.
"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

B, S, SIZE, WORLD = 16, 2, 32, 2
TOL = dict(rtol=1e-4, atol=1e-6)


def gn_mcl_cfg():
    gn = dict(type='GN', num_groups=4, requires_grad=True)
    return dict(
        type='MCL', num_levels=S, base_momentum=0.01,
        assembler=dict(type='MontageAssembler', shuffle=False),
        backbone=dict(type='PEResNet', depth=18, norm_cfg=gn, norm_eval=False,
                      stem_pos_embed=dict(type='spe')),
        neck=dict(type='mmdet.FPN', in_channels=[64, 128, 256, 512], out_channels=16,
                  num_outs=4, norm_cfg=gn),
        tile_pooler=dict(type='TilePooler', out_size=SIZE // 32),
        tile_head=dict(type='ConvTileHead', in_channels=16, conv_channels=16, norm_cfg=gn),
        projector=dict(type='NonLinearNeck', in_channels=16, hid_channels=32, out_channels=8,
                       with_avg_pool=False, norm_cfg=gn),
        head=dict(type='MultiLevelContrastiveHead', temperature=0.2,
                  predictor=dict(type='NonLinearNeck', in_channels=8, hid_channels=32,
                                 out_channels=8, with_last_bn=False, with_avg_pool=False,
                                 norm_cfg=gn)))


def build_and_step(views, rank=0, world=1):
    """One SGD step; returns (losses, updated online parameters)."""
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    import mcl_plugin  # noqa: F401
    from mcl_plugin.registry import MODELS
    init_default_scope('mcl_plugin')
    MessageHub.get_current_instance().update_info('max_iters', 100)
    torch.manual_seed(0)
    model = MODELS.build(gn_mcl_cfg())
    model.init_weights()
    n = B // world
    local = [v[rank * n:(rank + 1) * n] for v in views]
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    losses = net(local, [], mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    opt.zero_grad()
    total.backward()
    opt.step()
    update = {k: (v.detach() - before[k]) for k, v in model.named_parameters() if v.requires_grad}
    return {k: v.detach() for k, v in losses.items()}, update


def _worker(rank, port, views, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    try:
        losses, params = build_and_step(views, rank, WORLD)
        out[rank] = (losses, params)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_processes_match_one_process():
    g = torch.Generator().manual_seed(1)
    views = [torch.rand(B, 3, SIZE, SIZE, generator=g) for _ in range(2 * S)]
    ref_losses, ref_params = build_and_step(views)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(_free_port(), views, out), nprocs=WORLD, join=True)
    for key in ('loss_level0', 'loss_level1'):
        ddp_loss = sum(out[r][0][key] for r in range(WORLD)) / WORLD
        assert torch.allclose(ddp_loss, ref_losses[key], **TOL), key
    # The parameter update (lr * DDP-averaged gradient) equals the single-process update: relative
    # error of the whole update vector, and per tensor for every tensor that moves.
    ref = torch.cat([v.flatten() for v in ref_params.values()])
    assert ref.norm() > 1e-2
    for r in range(WORLD):
        ddp = torch.cat([out[r][1][k].flatten() for k in ref_params])
        assert (ddp - ref).norm() / ref.norm() < 1e-3, r
        for name, upd in ref_params.items():
            if upd.norm() > 1e-3:
                err = (out[r][1][name] - upd).norm() / upd.norm()
                assert err < 1e-2, (name, r, float(err))


# ---------------------------------------------------------------------------------------------
# DetCo: a queue-based method with MoCo's shuffling BN.
DET_B, DET_IMG, DET_PATCH, DET_STEPS, DET_QUEUE = 8, 32, 16, 2, 12
DET_LR = 0.1


def gn_detco_cfg() -> dict:
    """A tiny DetCo (R18 at width 8, 8-d embeddings, 12-key queues), GroupNorm backbone."""
    gn = dict(type='GN', num_groups=4, requires_grad=True)
    return dict(type='DetCo', queue_len=DET_QUEUE, feat_dim=8, momentum=0.5, shuffle_bn=True,
                backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(0, 1, 2, 3),
                              stem_channels=8, base_channels=8, norm_cfg=gn, norm_eval=False),
                neck=dict(type='DetCoNeck', in_channels=(8, 16, 32, 64), hid_channels=16,
                          out_channels=8),
                head=dict(type='DetCoHead', temperature=0.2))


def detco_views(step: int) -> list:
    """The global batch of one step: 2 global views and 2 sets of 9 patches (floats in [0, 1]);
    coarse random blocks, so images differ at the scale the pooled embeddings see."""
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(100 + step)

    def view(size: int) -> torch.Tensor:
        return F.interpolate(torch.rand(DET_B, 3, 4, 4, generator=g), size=(size, size),
                             mode='bilinear')

    return [view(DET_IMG) for _ in range(2)] + [view(DET_PATCH) for _ in range(18)]


def detco_steps(rank: int = 0, world: int = 1) -> dict:
    """``DET_STEPS`` SGD steps of DetCo on this rank's slice of the global batches.

    Returns losses per step, the queues and pointers after every step, the online update, the
    key encoder after the last step and the shuffle permutations drawn (DDP only).
    """
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    import mcl_plugin  # noqa: F401
    from mcl_plugin.models.utils import ema as ema_module
    from mcl_plugin.registry import MODELS
    init_default_scope('mcl_plugin')
    MessageHub.get_current_instance().update_info('max_iters', 100)
    perms = []
    shuffle = ema_module.batch_shuffle_ddp

    def recording_shuffle(x):
        out, idx_unshuffle = shuffle(x)
        perms.append(torch.argsort(idx_unshuffle))  # the broadcast idx_shuffle
        return out, idx_unshuffle

    ema_module.batch_shuffle_ddp = recording_shuffle
    torch.manual_seed(0)
    model = MODELS.build(gn_detco_cfg())
    model.init_weights()
    net = model if world == 1 else torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=DET_LR)
    start = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    n = DET_B // world
    out = dict(losses=[], queues=[], perms=perms)
    try:
        for step in range(DET_STEPS):
            local = [v[rank * n:(rank + 1) * n] for v in detco_views(step)]
            losses = net(local, [], mode='loss')
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
            out['losses'].append({k: v.detach() for k, v in losses.items()})
            out['queues'].append(
                {k: (q.queue.clone(), int(q.ptr)) for k, q in model.queues.items()})
    finally:
        ema_module.batch_shuffle_ddp = shuffle
    out['update'] = {k: v.detach() - start[k] for k, v in model.named_parameters()
                     if v.requires_grad}
    out['key_encoder'] = {k: v.detach().clone() for k, v in model.target_net.named_parameters()}
    return out


def _detco_worker(rank: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    try:
        out[rank] = detco_steps(rank, WORLD)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_detco_two_processes_match_one_process():
    """DetCo, 2 gloo processes x 4 images == 1 process x 8 images, over 2 SGD steps.

    What is compared and why it is exact in principle: the backbone uses GroupNorm and DetCo's
    MLP heads have no norm layer, so every embedding depends on its own image only. Then

    * MoCo's shuffling BN (on with 2 processes, a no-op in 1) shuffles the key batch across the
      ranks and restores it; with per-sample features it must give exactly the keys of the
      unshuffled batch, so this checks the shuffle/unshuffle bookkeeping (a misrouted key would
      pair a query with another image's key). The permutations drawn are recorded and must move
      images between ranks. (With BatchNorm the two runs differ by design: per-rank vs global
      batch statistics, and shuffled key statistics.)
    * the per-term losses are means over images, so the mean of the ranks' losses equals the
      single-process loss (rtol 1e-4), at step 1 (queues of random init) and step 2 (queues
      holding step 1's keys of *both* ranks);
    * DDP averages gradients, so 2 steps of lr 0.1 move the online weights as in 1 process
      (relative error of the update vector < 1e-3, per tensor < 1e-2), and the key encoder
      (EMA, momentum 0.5) follows;
    * every queue enqueues the keys of all ranks in rank order: after each step the 8 queues of
      both ranks equal the single-process queues (atol 1e-5) with the same write pointer; the
      second step wraps around the 12-key queues.
    """
    ref = detco_steps()
    assert not ref['perms']  # one process: no shuffle
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_detco_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    res = [out[r] for r in range(WORLD)]
    # the shuffle ran (global and patch keys, every step) and mixed the ranks
    for r in res:
        assert len(r['perms']) == 2 * DET_STEPS
        assert all(torch.equal(p, res[0]['perms'][i]) for i, p in enumerate(r['perms']))
    half = DET_B // WORLD
    assert any(bool((p[:half] >= half).any()) for p in res[0]['perms'])
    # the keys of different images are far apart compared with the queue tolerance, so a
    # permuted or misrouted key cannot pass the queue comparison below
    for name, (queue, _) in ref['queues'][0].items():
        dist_ = torch.cdist(queue[:DET_B], queue[:DET_B]) + 10 * torch.eye(DET_B)
        assert dist_.min() > 1e-3, name
    for step in range(DET_STEPS):
        ref_losses = ref['losses'][step]
        assert len(ref_losses) == 12
        for key, value in ref_losses.items():
            ddp = sum(r['losses'][step][key] for r in res) / WORLD
            assert torch.allclose(ddp, value, rtol=1e-4, atol=1e-6), (step, key)
        for name, (queue, ptr) in ref['queues'][step].items():
            assert ptr == (DET_B * (step + 1)) % DET_QUEUE
            for r in res:
                q, p = r['queues'][step][name]
                assert p == ptr and torch.allclose(q, queue, atol=1e-5), (step, name)
    # step 1's 8 keys sit in rows 0..7; step 2 wrote rows 8..11 and 0..3
    first = ref['queues'][0]['g_res5'][0]
    second = ref['queues'][1]['g_res5'][0]
    assert torch.equal(second[4:8], first[4:8]) and not torch.equal(second[:4], first[:4])
    upd = torch.cat([v.flatten() for v in ref['update'].values()])
    assert upd.norm() > 1e-2
    for r in res:
        ddp = torch.cat([r['update'][k].flatten() for k in ref['update']])
        assert (ddp - upd).norm() / upd.norm() < 1e-3
        for name, u in ref['update'].items():
            if u.norm() > 1e-3:
                assert (r['update'][name] - u).norm() / u.norm() < 1e-2, name
        for name, v in ref['key_encoder'].items():
            assert torch.allclose(r['key_encoder'][name], v, rtol=1e-4, atol=1e-6), name
