"""Two gloo processes on CPU == one process with the same global batch (MCL).

Negatives are all-gathered with gradient, so the DDP-averaged gradient must equal the
single-process gradient of the global batch. GroupNorm everywhere makes every feature depend on
its own sample only, and ``shuffle=False`` makes the montages independent of the rank split, so
the comparison is exact up to float reduction order.
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
