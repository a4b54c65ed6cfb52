"""SoCo: loss on constructed cases, gradients, EMA target, C4 variant, configs, mmdet hand-off."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample
from torch import nn

from mcl_plugin.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
SOCO = osp.join(REPO, 'configs', 'soco')
DEMO = osp.join(SOCO, 'soco_r18-fpn_1xb8-lars-coslr-300i_cpu-demo_pretrain.py')
TINY_MASK_RCNN = osp.join(REPO, 'configs', 'benchmarks', 'mmdet',
                          'mask-rcnn_r18-fpn_bn-4conv1fc_tiny-test_objects-coco.py')
BN = dict(type='BN', requires_grad=True)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny convolutions on a shared 2-core machine: OpenMP with 2 threads is ~8x slower than
    with 1 when the other core is busy."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_fpn_cfg(**kwargs):
    """A narrow ResNet-18-FPN SoCo (16 base channels) for fast CPU tests."""
    cfg = dict(
        type='SoCo',
        base_momentum=0.01,
        backbone=dict(type='mmdet.ResNet', depth=18, base_channels=16, out_indices=(0, 1, 2, 3),
                      norm_cfg=BN, norm_eval=False),
        neck=dict(type='mmdet.FPN', in_channels=[16, 32, 64, 128], out_channels=32, num_outs=4,
                  norm_cfg=BN),
        roi_pooler=dict(type='MultiLevelRoIPooler', scale_thresholds=(16, 32, 48)),
        tile_head=dict(type='ConvFCRoIHead', in_channels=32, conv_channels=32,
                       fc_out_channels=64, norm_cfg=BN),
        projector=dict(type='NonLinearNeck', in_channels=64, hid_channels=64, out_channels=32,
                       num_layers=2, with_avg_pool=False, norm_cfg=dict(type='BN1d')),
        head=dict(type='SoCoHead',
                  loss=dict(type='CosineSimilarityLoss', shift_factor=0.0, scale_factor=2.0),
                  predictor=dict(type='NonLinearNeck', in_channels=32, hid_channels=64,
                                 out_channels=32, num_layers=2, with_avg_pool=False,
                                 norm_cfg=dict(type='BN1d'))))
    cfg.update(kwargs)
    return cfg


def batch(num_views=3, sizes=(64, 64, 32), B=2, K=3, seed=0):
    """Random views and boxes; boxes of view v are those of V2 rescaled to its size."""
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(B, 3, s, s, generator=g) for s in sizes[:num_views]]
    samples = []
    for _ in range(B):
        xy = torch.rand(K, 2, generator=g) * 30
        wh = 12 + torch.rand(K, 2, generator=g) * 30
        base = torch.cat([xy, xy + wh], 1)
        base[-1] = torch.tensor([2., 2., 62., 62.])  # one P5 box per image (sqrt area > 48)
        ds = DataSample()
        ds.set_field(torch.stack([base * s / 64 for s in sizes[:num_views]]), 'view_boxes')
        ds.set_field(torch.arange(K), 'proposal_ids')
        samples.append(ds)
    return inputs, samples


def test_cosine_loss_on_constructed_vectors():
    model = MODELS.build(tiny_fpn_cfg())
    loss = model.head.loss_module
    t = torch.tensor([[1., 0.], [0., 2.]])
    assert torch.allclose(loss(3 * t, t), torch.tensor(-2.))  # aligned
    assert torch.allclose(loss(-t, t), torch.tensor(2.))  # opposite
    assert torch.allclose(loss(t.flip(1), t), torch.tensor(0.))  # orthogonal


def test_loss_is_minus_four_per_pair_for_identical_views_and_matches_proposals(message_hub):
    """Same image and boxes in every view, target == online (fresh EMA), identity predictor:
    every matched proposal has cosine 1, so each symmetrized pair gives -2 - 2 = -4. Shuffling
    the proposals of one view breaks the matching and raises that pair's loss."""
    model = MODELS.build(tiny_fpn_cfg())
    model.head.predictor = _ListIdentity()
    model.eval()  # BN with running stats: online and target see the same function
    inputs, samples = batch(sizes=(64, 64, 64))
    same = [inputs[0]] * 3
    for ds in samples:
        ds.view_boxes = ds.view_boxes[:1].repeat(3, 1, 1)
    losses = model.loss(same, samples)
    assert set(losses) == {'loss_v1_v2', 'loss_v1_v3', 'cos_v1_v2', 'cos_v1_v3', 'ema_momentum'}
    assert torch.allclose(losses['loss_v1_v2'], torch.tensor(-4.), atol=1e-5)
    assert torch.allclose(losses['loss_v1_v3'], torch.tensor(-4.), atol=1e-5)
    assert torch.allclose(losses['cos_v1_v2'], torch.tensor(1.), atol=1e-6)
    shuffled = copy.deepcopy(samples)
    for ds in shuffled:
        ds.view_boxes[2] = ds.view_boxes[2].roll(1, dims=0)
    losses = model.loss(same, shuffled)
    assert torch.allclose(losses['loss_v1_v2'], torch.tensor(-4.), atol=1e-5)
    assert losses['loss_v1_v3'] > -3.9


class _ListIdentity(nn.Module):
    """A predictor that returns its input (NonLinearNeck's list-in, tuple-out protocol)."""

    def forward(self, x):
        return (x[0], )


def test_gradients_reach_online_modules_not_the_target(message_hub):
    model = MODELS.build(tiny_fpn_cfg())
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()
    for name in ('backbone.conv1.weight', 'neck.fpn_convs.0.conv.weight',
                 'neck.fpn_convs.3.conv.weight', 'tile_head.shared_convs.3.conv.weight',
                 'tile_head.shared_fcs.0.weight', 'projector.fc0.weight',
                 'head.predictor.fc1.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.target_net.parameters())
    assert not any(p.requires_grad for p in model.target_net.parameters())
    # the target is an EMA copy of backbone/neck/tile_head/projector (no predictor)
    ema = model.target_net.module
    assert {k: type(m).__name__ for k, m in ema.items()} == dict(
        backbone='ResNet', neck='FPN', tile_head='ConvFCRoIHead', projector='NonLinearNeck')
    before = ema['backbone'].conv1.weight.clone()
    m = model.target_net.current_momentum  # 0.01 annealed by one cosine step of 10
    assert 0.009 < m < 0.01
    with torch.no_grad():
        model.backbone.conv1.weight.add_(1.0)
    model.loss(inputs, samples)  # one EMA step: target moves by m of the gap
    assert torch.allclose(ema['backbone'].conv1.weight, before + m, atol=1e-5)


def test_four_views_and_custom_pairs(message_hub):
    model = MODELS.build(tiny_fpn_cfg())
    inputs, samples = batch(num_views=4, sizes=(64, 64, 32, 48))
    losses = model.loss(inputs, samples)
    assert {'loss_v1_v2', 'loss_v1_v3', 'loss_v1_v4'} <= set(losses)
    model = MODELS.build(tiny_fpn_cfg(loss_pairs=[(1, 0)]))
    losses = model.loss(*batch())
    assert [k for k in losses if k.startswith('loss')] == ['loss_v1_v2']
    with pytest.raises(ValueError, match='view_boxes'):
        model.loss(inputs, [DataSample() for _ in range(2)])


@pytest.mark.parametrize('pool_all_levels', [False, True])
def test_c4_variant_res5_head(message_hub, pool_all_levels):
    """RoIAlign 14x14 on C4, res5 (mmdet ResLayer) as the head, no neck, V1/V2 only (the
    official C4 recipe: pool_all_levels on the single map, boxes matched by id)."""
    cfg = tiny_fpn_cfg(
        pool_all_levels=pool_all_levels,
        backbone=dict(type='mmdet.ResNet', depth=18, num_stages=3,
                      strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ), norm_cfg=BN,
                      norm_eval=False),
        neck=None,
        roi_pooler=dict(type='MultiLevelRoIPooler', featmap_strides=(16, ), out_size=14,
                        scale_thresholds=()),
        tile_head=dict(type='mmdet.ResLayer', depth=18, stage=3, stride=2, norm_cfg=BN,
                       norm_eval=False))
    cfg['projector']['in_channels'] = 512
    model = MODELS.build(cfg)
    inputs, samples = batch(num_views=2, sizes=(64, 64))
    losses = model.loss(inputs, samples)
    assert set(k for k in losses if k.startswith('loss')) == {'loss_v1_v2'}
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.tile_head.layer4[0].conv1.weight.grad.abs().sum() > 0
    assert model.backbone.layer3[0].conv1.weight.grad.abs().sum() > 0
    keys = model.state_dict()
    assert any(k.startswith('tile_head.layer4.') for k in keys)  # -> roi_head.shared_head
    assert not any(k.startswith(('neck.', 'target_net.module.neck.')) for k in keys)
    assert any(k.startswith('target_net.module.tile_head.layer4.') for k in keys)


def test_paper_configs():
    r50 = Config.fromfile(osp.join(SOCO, 'soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py'))
    assert r50.optim_wrapper.optimizer.type == 'LARS' and r50.optim_wrapper.optimizer.lr == 8.0
    assert r50.optim_wrapper.optimizer.weight_decay == 1e-5
    assert r50.train_dataloader.batch_size * 16 == 2048
    assert r50.auto_scale_lr.base_batch_size == 2048
    assert r50.param_scheduler[0].end == 10 and r50.param_scheduler[1].type == 'CosineAnnealingLR'
    assert r50.model.backbone.norm_cfg.type == 'SyncBN'
    assert tuple(r50.model.roi_pooler.scale_thresholds) == (48, 96, 192)
    views = r50.train_dataloader.dataset.pipeline[1]
    assert (views.v1_size, views.v2_size, views.v3_size, views.num_proposals) == (224, 224, 112, 4)
    assert (views.jitter_prob, views.jitter_ratio, tuple(views.crop_scale)) == (0.5, 0.1,
                                                                                (0.5, 1.0))
    assert Config.fromfile(osp.join(SOCO, 'soco_r50-fpn_16xb128-lars-coslr-400e_in1k.py')
                           ).train_cfg.max_epochs == 400
    star = Config.fromfile(osp.join(SOCO, 'soco-star_r50-fpn_16xb128-lars-coslr-400e_in1k.py'))
    sv = star.train_dataloader.dataset.pipeline[1]  # official SoCo*: V3 192 crop, V4 = V2 at 112
    assert (sv.v3_size, sv.v4_size, sv.independent_v3, sv.independent_v4) == (192, 112, True,
                                                                             False)
    c4 = Config.fromfile(osp.join(SOCO, 'soco_r50-c4_16xb128-lars-coslr-100e_in1k.py'))
    assert c4.model.neck is None and c4.model.tile_head.type == 'mmdet.ResLayer'
    c4v = c4.train_dataloader.dataset.pipeline[1]
    assert c4v.v3_size is None and tuple(c4v.crop_scale) == (0.6, 1.0) and c4v.jitter_prob == 0
    assert [p[-1].type for p in c4v.view_pipelines] == ['GaussianBlur', 'InBoxCutout']
    one = Config.fromfile(osp.join(SOCO, 'soco_r50-fpn_1xb64-bn-lars-coslr-100e_in1k.py'))
    assert one.model.neck.norm_cfg.type == 'BN' and one.optim_wrapper.optimizer.lr == 0.25
    coco = Config.fromfile(osp.join(SOCO, 'soco_r50-fpn_16xb128-lars-coslr-530e_coco.py'))
    assert [d.type for d in coco.train_dataloader.dataset.datasets] == ['ProposalImageDataset'] * 2
    model = MODELS.build(c4.model)  # SyncBN layers build without a process group
    assert model.tile_head.layer4[0].conv1.in_channels == 1024


def test_paper_size_configs_follow_the_official_recipe():
    """Official by default (hologerry/SoCo tools/SoCo_*.sh, issue 17); the paper's reading is a
    named config."""
    names = ['soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py',
             'soco_r50-fpn_16xb128-lars-coslr-400e_in1k.py',
             'soco-star_r50-fpn_16xb128-lars-coslr-400e_in1k.py',
             'soco_r50-fpn_16xb128-lars-coslr-530e_coco.py',
             'soco_r50-c4_16xb128-lars-coslr-100e_in1k.py']
    for name in names:
        cfg = Config.fromfile(osp.join(SOCO, name))
        assert cfg.model.pool_all_levels and cfg.model.backbone.zero_init_residual, name
        assert cfg.model.projector.with_last_bias and cfg.model.head.predictor.with_last_bias
        assert cfg.optim_wrapper.clip_grad is None, name
        assert cfg.param_scheduler[0].start_factor == 0.01, name
        pipeline = cfg.train_dataloader.dataset.get('pipeline') or \
            cfg.train_dataloader.dataset.datasets[0].pipeline
        views = pipeline[1]
        assert views.box_mode == 'visible_part', name
        cutout = [p[-1].type == 'InBoxCutout' for p in views.view_pipelines]
        assert cutout == {'soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py': [False, True, True],
                          'soco_r50-fpn_16xb128-lars-coslr-530e_coco.py': [False, True, True],
                          'soco_r50-c4_16xb128-lars-coslr-100e_in1k.py': [False, True]}.get(
                              name, [False] * len(cutout)), name
        if 'c4' not in name:
            assert views.independent_v3 and views.jitter_views == 'v1', name
            assert views.jitter_anchor == 'top_left', name
    paper = Config.fromfile(osp.join(SOCO, 'soco_r50-fpn_16xb128-paper-lars-coslr-100e_in1k.py'))
    views = paper.train_dataloader.dataset.pipeline[1]
    assert not paper.model.pool_all_levels and views.get('box_mode', 'shared') == 'shared'
    assert views.min_visible == 0.5 and views.v3_size == 112
    demo = Config.fromfile(DEMO)
    assert not demo.model.pool_all_levels


def test_demo_checkpoint_hands_over_to_mask_rcnn(tmp_path):
    """SoCo demo model -> tiny Mask R-CNN config: backbone, FPN, shared_convs and shared_fcs
    are 100 % matched; only the detector's new predictors stay at init."""
    from mcl_plugin.converters.convert import convert_checkpoint
    model = MODELS.build(Config.fromfile(DEMO).model)
    with torch.no_grad():  # distinct values, so a wrong copy cannot look right
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(i)))
    src, dst = str(tmp_path / 'soco.pth'), str(tmp_path / 'mmdet.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), src)
    report = convert_checkpoint(src, dst, TINY_MASK_RCNN)
    assert report.ok, report.format()
    for name in ('backbone', 'neck'):
        row = report.module(name)
        assert row.matched == row.target_keys and not row.shape_mismatch, name
    head = report.module('roi_head.bbox_head')
    shared = [k for k in head.target_keys if '.shared_' in k]
    assert len(shared) == 4 * 6 + 2 and set(shared) <= set(head.matched)
    assert all('fc_cls' in k or 'fc_reg' in k for k in head.missing)
    out = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    assert torch.equal(out['roi_head.bbox_head.shared_fcs.0.weight'],
                       model.tile_head.shared_fcs[0].weight)
    assert torch.equal(out['neck.fpn_convs.3.conv.weight'], model.neck.fpn_convs[3].conv.weight)
    assert not any(k.startswith(('projector', 'head.', 'target_net')) for k in out)


def test_target_computes_only_the_levels_of_its_boxes(message_hub):
    """The target pass reads only the FPN maps its rois are assigned to (issue 19): same
    embeddings as the whole FPN, and the output convs of the other levels do not run."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_fpn_cfg())
    model.init_weights()
    modules = model.target_net.module
    img = torch.randn(2, 3, 64, 64)
    rois = torch.tensor([[0, 2., 2., 62., 62.], [1, 4., 4., 60., 58.], [1, 0., 0., 40., 40.]])
    levels = model.roi_pooler.map_roi_levels(rois, 4).unique().tolist()
    assert levels and len(levels) < 4
    calls = [0] * 4
    for i, conv in enumerate(modules['neck'].fpn_convs):
        conv.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    with torch.no_grad():
        full = model.embed(modules, img, rois)
        assert calls == [1] * 4
        lean = model.embed(modules, img, rois, read_levels_only=True)
    assert torch.equal(full, lean)
    assert calls == [1 + (i in levels) for i in range(4)]
