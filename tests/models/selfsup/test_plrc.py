"""PLRC: point sampling, the image queue, momentum encoder, old checkpoints. The loss terms:
tests/models/heads/test_plrc_head.py; the dense projector: tests/models/necks/test_plrc_neck.py;
the warm-up hook: tests/engine/hooks/test_plrc_hook.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mcl_plugin.models.heads import PLRCHead
from mcl_plugin.models.selfsup.plrc import (colocated_grid, gather_points, resize_region_maps,
                                            sample_region_points)
from mcl_plugin.registry import MODELS


def grid_map(r=16, n=4):
    y, x = torch.meshgrid(torch.arange(r), torch.arange(r), indexing='ij')
    return (y * n // r) * n + x * n // r


def test_points_stay_inside_their_region_and_regions_are_common():
    full = grid_map()  # all 16 regions
    zoom = resize_region_maps(full[4:12, 4:12], 16)  # central crop: regions 5, 6, 9, 10
    other = torch.full((16, 16), 15)  # view 2 shows region 15 only
    no_15 = full.clone()
    no_15[no_15 == 15] = 0  # view 1 without region 15: no common region
    map_q = torch.stack([full, zoom.flip(-1), no_15])
    map_k = torch.stack([zoom, full, other])
    gen = torch.Generator().manual_seed(0)
    pts = sample_region_points(map_q, map_k, 16, num_regions=16, num_points=16, generator=gen)
    assert pts.index_q.shape == pts.index_k.shape == pts.regions.shape == (3, 256)
    assert pts.valid.tolist() == [True, True, False]
    assert np.nonzero(pts.common[0].numpy())[0].tolist() == [5, 6, 9, 10]
    for b in range(2):
        # every point lies inside its region, in both views
        assert torch.equal(map_q[b].flatten()[pts.index_q[b]], pts.regions[b])
        assert torch.equal(map_k[b].flatten()[pts.index_k[b]], pts.regions[b])
        assert set(pts.regions[b].tolist()) <= {5, 6, 9, 10}
        # N regions x P points: each block of P points shares one region
        assert (pts.regions[b].view(16, 16) == pts.regions[b].view(16, 16)[:, :1]).all()
        # points are spread over the region, not one cell
        assert len(set(pts.index_q[b].tolist())) > 32
    many = sample_region_points(map_q[:1],
                                map_k[:1],
                                16,
                                num_regions=400,
                                num_points=1,
                                generator=gen)
    counts = torch.bincount(many.regions[0], minlength=16)[[5, 6, 9, 10]]
    assert (counts > 60).all()  # uniform over the common regions (with repetition)
    with pytest.raises(ValueError, match='region ids'):
        sample_region_points(map_q, map_k, 4)


def test_gather_and_resize_helpers():
    feat = torch.arange(2 * 3 * 4 * 4, dtype=torch.float).view(2, 3, 4, 4)
    idx = torch.tensor([[0, 5, 15], [3, 3, 12]])
    out = gather_points(feat, idx)
    assert out.shape == (2, 3, 3)
    assert torch.equal(out[0, 1], feat[0, :, 1, 1]) and torch.equal(out[1, 2], feat[1, :, 3, 0])
    m = torch.arange(16).view(4, 4)
    assert torch.equal(resize_region_maps(m, 8), m.repeat_interleave(2, 0).repeat_interleave(2, 1))
    assert torch.equal(resize_region_maps(m, 2), m[1::2, 1::2])


def test_the_algorithm_owns_the_image_queue():
    head = PLRCHead(image_temperature=0.2)
    # the algorithm owns the queue: the loss uses it as it was, then this step's normalised
    # keys of all ranks are enqueued
    model = tiny_plrc()
    queue = model.queues['image']
    queue.queue.copy_(F.normalize(torch.randn(32, 16), dim=1))
    old = queue.queue.clone()
    inputs, samples = tiny_batch()
    losses = model.loss(inputs, samples)
    with torch.no_grad():
        z = model.encode(model.online_modules(), inputs[0])[0]
        z_k = model.encode(model.target_net.module, inputs[1])[0]
    assert float(losses['image_nce']) == pytest.approx(
        float(head.loss_image(z, z_k, old)), rel=1e-4)
    assert int(queue.ptr) == 4 and torch.equal(queue.queue[4:], old[4:])
    assert torch.allclose(queue.queue[:4], F.normalize(z_k, dim=1), atol=1e-5)


def tiny_plrc(momentum=0.001, **kwargs):
    return MODELS.build(
        dict(type='PLRC',
             **kwargs,
             resolution=8,
             num_regions=4,
             num_points=4,
             momentum=momentum,
             queue_len=32,
             feat_dim=16,
             backbone=dict(type='mmdet.ResNet',
                           depth=18,
                           out_indices=(3, ),
                           norm_cfg=dict(type='BN')),
             neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=64, out_channels=16),
             projector=dict(type='PLRCDenseNeck', in_channels=512, hid_channels=64,
                            out_channels=16),
             head=dict(type='PLRCHead')))


def tiny_batch(b=4, size=64):
    samples = []
    for i in range(b):
        ds = DataSample()
        maps = np.stack([grid_map(16).numpy(), np.roll(grid_map(16).numpy(), 3 * i, axis=1)])
        ds.set_field(maps.astype(np.uint8), 'region_masks')
        samples.append(ds)
    return [torch.randn(b, 3, size, size), torch.randn(b, 3, size, size)], samples


def test_no_gradient_into_the_momentum_encoder_and_ema_convention():
    model = tiny_plrc(momentum=0.5)
    model.train()
    inputs, samples = tiny_batch()
    losses = model.loss(inputs, samples)
    for key in ('loss_point_contrast', 'loss_distill', 'loss_moco', 'common_regions'):
        assert key in losses and torch.isfinite(losses[key])
    assert float(losses['valid_images']) == 1.0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    target = model.target_net.module
    assert list(target) == ['backbone', 'neck', 'projector']
    assert all(not p.requires_grad and p.grad is None for p in model.target_net.parameters())
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.projector.mlp[0].weight.grad.abs().sum() > 0
    assert model.neck.mlp[0].weight.grad.abs().sum() > 0
    # mmengine convention: target = (1 - m) * target + m * online, here m = 0.5
    before = target['backbone'].conv1.weight.detach().clone()
    with torch.no_grad():
        model.backbone.conv1.weight.add_(1.0)
    model.loss(inputs, samples)
    assert torch.allclose(target['backbone'].conv1.weight,
                          0.5 * before + 0.5 * model.backbone.conv1.weight,
                          atol=1e-6)


def test_images_without_common_region_are_skipped():
    model = tiny_plrc()
    inputs, samples = tiny_batch(b=2)
    samples[1].region_masks = np.stack([np.zeros((16, 16)), np.ones((16, 16))]).astype(np.uint8)
    losses = model.loss(inputs, samples)
    assert float(losses['valid_images']) == 0.5 and torch.isfinite(losses['loss_point_contrast'])
    samples[0].region_masks = samples[1].region_masks
    losses = model.loss(inputs, samples)
    assert float(losses['loss_point_contrast']) == 0.0
    sum(v for k, v in losses.items() if 'loss' in k).backward()  # graph still intact
    with pytest.raises(KeyError, match='region_masks'):
        model.loss(inputs, [DataSample(), DataSample()])


def test_checkpoints_written_before_the_queue_and_ema_moved_still_load():
    """``head.queue.*`` (the head held the queue) and ``target_net.module.<K>.*`` (positional
    EMA) load strictly into ``queues.image.*`` and ``target_net.module.<name>.*``."""
    from mmengine.runner.checkpoint import load_state_dict
    src = tiny_plrc()
    src.queues['image'].ptr.fill_(5)
    with torch.no_grad():
        for i, p in enumerate(src.target_net.parameters()):
            p.fill_(float(i))
    state = src.state_dict()
    old = {}
    for k, v in state.items():
        k = k.replace('queues.image.', 'head.queue.')
        for i, name in enumerate(('backbone', 'neck', 'projector')):
            k = k.replace(f'target_net.module.{name}.', f'target_net.module.{i}.')
        old[k] = v
    assert 'head.queue.ptr' in old and 'target_net.module.2.mlp.0.weight' in old
    dst = tiny_plrc()
    load_state_dict(dst, old, strict=True)
    got = dst.state_dict()
    assert list(got) == list(state) and all(torch.equal(got[k], state[k]) for k in state)


def test_colocated_grid_maps_the_same_image_position():
    r = 8
    index = torch.arange(r * r)[None]
    grid, inside = colocated_grid(index, r)  # no geometry: the cell centres of view v itself
    centres = (torch.arange(r) + 0.5) / r * 2 - 1
    assert inside.all() and torch.allclose(grid[0, :, 0], centres.repeat(r))
    assert torch.allclose(grid[0, :, 1], centres.repeat_interleave(r))
    # view v: box (10, 5, 70, 65) not flipped; other view: box (30, 20, 90, 80) flipped. A map of
    # the other view holding the image (x, y) of each cell centre, sampled at the grid, gives
    # back the image position of view v's cells.
    boxes = torch.tensor([[[10., 5., 70., 65.], [30., 20., 90., 80.]]])
    flips = torch.tensor([[False, True]])
    u = (torch.arange(r) + 0.5) / r
    xy = torch.stack([(30 + (1 - u) * 60)[None].expand(r, r), (20 + u * 60)[:, None].expand(r, r)])
    grid, inside = colocated_grid(index, r, boxes, flips)
    got = F.grid_sample(xy[None], grid[:, :, None], align_corners=False)[0, :, :, 0]
    want = torch.stack([(10 + u * 60).repeat(r), (5 + u * 60).repeat_interleave(r)])
    interior = ((grid.abs() <= 1 - 1 / r).all(-1))[0]  # away from the zero padding
    assert interior.sum() > 10 and torch.allclose(got[:, interior], want[:, interior], atol=1e-4)
    assert torch.equal(inside[0], ((want[0] >= 30) & (want[0] <= 90) & (want[1] >= 20)))


def capture(model):
    """Record the head's inputs and the sampled points of the next ``model.loss``."""
    seen = {}
    loss, sample = model.head.loss, model.sample_points

    def spy_loss(*args, **kwargs):
        seen.update(keys=args[4], **kwargs)
        return loss(*args, **kwargs)

    def spy_sample(*args, **kwargs):
        seen['points'] = sample(*args, **kwargs)
        return seen['points']

    model.head.loss, model.sample_points = spy_loss, spy_sample
    return seen


def test_colocated_teacher_is_never_one_of_the_keys():
    """The co-located teacher is the momentum map of the teacher view, sampled bilinearly at
    the student points' image positions; unlike the sampled-point teacher it is not a key, so
    its row never piles its mass on a trivially identical key."""
    torch.manual_seed(0)
    model = tiny_plrc()
    inputs, samples = tiny_batch()
    inputs.append(torch.randn_like(inputs[0]))
    boxes = np.array([[0, 0, 64, 64], [0, 0, 64, 64], [8, 4, 72, 68]], np.float32)
    for ds in samples:
        ds.set_field(boxes, 'crop_boxes')
        ds.set_field(np.array([False, False, True]), 'flips')
    seen = capture(model)
    losses = model.loss(inputs, samples)
    assert 0 < float(losses['teacher_visible']) < 1
    teacher, visible, keys = seen['teacher_query'], seen['teacher_valid'], seen['keys']
    with torch.no_grad():
        dense = model.encode(model.target_net.module, inputs[2])[1]
    grid, inside = colocated_grid(seen['points'].index_q, 8,
                                  torch.as_tensor(boxes[[0, 2]]).expand(4, 2, 4),
                                  torch.tensor([[False, True]]).expand(4, 2))
    want = F.grid_sample(dense, grid[:, :, None], align_corners=False)[..., 0].transpose(1, 2)
    assert torch.allclose(teacher, want.flatten(0, 1), atol=1e-5)
    assert torch.equal(visible, inside.flatten())
    keys = F.normalize(keys, dim=1)
    cos = F.normalize(teacher, dim=1) @ keys.t()
    assert cos[visible].max() < 0.99  # no key is (nearly) the teacher itself
    own = (cos / 0.07).softmax(1).diagonal()[visible].mean()
    old = (keys @ keys.t() / 0.07).softmax(1).diagonal().mean()  # the sampled-point teacher
    assert own < old / 2


def test_teacher_on_view_v_without_a_teacher_view_and_the_sampled_point_option():
    model = tiny_plrc()
    inputs, samples = tiny_batch()
    seen = capture(model)
    model.loss(inputs, samples)
    with torch.no_grad():
        dense = model.encode(model.target_net.module, inputs[0])[1]
    # two views: the momentum encoder on view v itself, at the student points' cells
    assert torch.allclose(seen['teacher_query'],
                          gather_points(dense, seen['points'].index_q).flatten(0, 1), atol=1e-5)
    assert bool(seen['teacher_valid'].all())
    old = tiny_plrc(teacher='sampled_point')
    seen = capture(old)
    old.loss(inputs, samples)
    assert torch.equal(seen['teacher_query'], seen['keys']) and seen['teacher_valid'] is None
    with pytest.raises(ValueError, match='teacher'):
        MODELS.build(dict(type='PLRC', backbone={}, neck={}, projector={}, head={},
                          teacher='same_index'))
