import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample
from torch import nn

from mcl_plugin.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def sup_cfg(num_levels=3, num_classes=5):
    bn = dict(type='BN', requires_grad=True)
    return dict(
        type='MCLSupervised',
        num_levels=num_levels,
        backbone=dict(type='mmdet.ResNet', depth=18, norm_cfg=bn),
        neck=dict(type='mmdet.FPN', in_channels=[64, 128, 256, 512], out_channels=32,
                  num_outs=4, norm_cfg=bn),
        tile_pooler=dict(type='TilePooler', out_size=2),
        tile_head=dict(type='ConvTileHead', in_channels=32, conv_channels=32, norm_cfg=bn),
        head=dict(type='MultiLevelClsHead', num_classes=num_classes, in_channels=32))


def _samples(labels):
    return [DataSample().set_gt_label(int(y)) for y in labels]


def test_labels_follow_tiles_through_the_shuffle():
    """Image i is filled with the value of its label: every tile's pixels must equal the label
    the cross-entropy receives for that tile, at every level."""
    B, S = 16, 3
    model = MODELS.build(sup_cfg(S, num_classes=B))
    labels = torch.randperm(B)
    views = [labels.float().view(B, 1, 1, 1).expand(B, 3, 64, 64).contiguous()
             for _ in range(S)]
    seen = dict(labels=[])
    real_assembler, real_ce = model.assembler.forward, model.head.loss_module.forward

    def spy_assembler(*args, **kwargs):
        seen['batch'] = real_assembler(*args, **kwargs)
        return seen['batch']

    def spy_ce(logits, tile_labels, **kwargs):
        seen['labels'].append(tile_labels)  # one call per level, tiles in batch order
        return real_ce(logits, tile_labels, **kwargs)

    model.assembler.forward = spy_assembler
    model.head.loss_module.forward = spy_ce
    model.loss(views, _samples(labels))
    batch, tile_labels = seen['batch'], torch.cat(seen['labels'])
    assert tile_labels.shape == batch.src.shape
    for t in range(batch.src.numel()):
        s, m = int(batch.level[t]), int(batch.montage[t])
        x1, y1, x2, y2 = batch.boxes[t].long().tolist()
        tile = batch.montages[s][m, :, y1:y2, x1:x2]
        assert torch.allclose(tile, tile_labels[t].float().expand_as(tile), atol=1e-4)


def test_loss_and_accuracy_on_a_constructed_batch():
    head = MODELS.build(dict(type='MultiLevelClsHead', num_classes=3, in_channels=3,
                             num_levels=2))
    with torch.no_grad():
        head.fc.weight.copy_(torch.eye(3) * 4)
        head.fc.bias.zero_()
    feats = torch.eye(3)[[0, 1, 2, 0]]  # predicted classes 0, 1, 2, 0
    labels = torch.tensor([0, 1, 2])  # of the images; tiles show images 0, 1, 1, 2
    batch = SimpleNamespace(src=torch.tensor([0, 1, 1, 2]), level=torch.tensor([0, 0, 1, 1]))
    out = head.loss(feats, batch, labels)
    right = -math.log(math.exp(4) / (math.exp(4) + 2))
    wrong = -math.log(1 / (math.exp(4) + 2))
    assert out['loss_level0'].item() == pytest.approx(0.5 * right, rel=1e-5)
    assert out['loss_level1'].item() == pytest.approx(0.25 * wrong, rel=1e-5)
    assert out['acc_level0'].item() == pytest.approx(100.0)
    assert out['acc_level1'].item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match='check num_classes'):
        head.loss(feats, batch, torch.tensor([0, 1, 5]))


def test_gradients_reach_backbone_neck_head():
    model = MODELS.build(sup_cfg())
    views = [torch.rand(8, 3, 64, 64) for _ in range(3)]
    losses = model.loss(views, _samples(torch.randint(0, 5, (8, ))))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name in ('backbone.conv1.weight', 'neck.fpn_convs.3.conv.weight',
                 'tile_head.shared_convs.0.conv.weight', 'head.fc.weight'):
        assert dict(model.named_parameters())[name].grad.abs().sum() > 0, name


@pytest.mark.slow
def test_swin_t_demo_config_handoff_to_mmdet_swin(tmp_path):
    """A Swin-T MCL-sup model converts into mmdet's Mask R-CNN Swin-T with every backbone key
    matched and identical values."""
    from mcl_plugin.converters.convert import convert_checkpoint
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mcl_sup',
                                   'mcl-sup_swin-t-fpn_1xb16-adamw-coslr-300i_cpu-demo_objects.py'))
    model = MODELS.build(cfg.model)
    src = tmp_path / 'sup_swin.pth'
    torch.save(dict(state_dict=model.state_dict()), src)
    dst = tmp_path / 'converted.pth'
    target = osp.join(REPO, 'configs', 'benchmarks', 'mmdet',
                      'mask-rcnn_swin-t-p4-w7-fpn_1x_coco.py')
    report = convert_checkpoint(str(src), str(dst), target)
    backbone = report.module('backbone')
    assert backbone.complete and len(backbone.matched) == len(backbone.target_keys) > 100
    out = torch.load(dst, map_location='cpu')['state_dict']
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(out[f'backbone.{k}'], v), k
    # S = 3: the pre-trained FPN has P3-P5 (start_level=1); they land on mmdet's levels 1-3,
    # P2 keeps its initialisation
    neck = report.module('neck')
    assert neck.missing and all(k.startswith(('neck.lateral_convs.0.', 'neck.fpn_convs.0.'))
                                for k in neck.missing)
    assert not neck.shape_mismatch
    assert any('starts at a later stage' in n for n in report.notes)
    for k, v in model.neck.state_dict().items():
        level = k.split('.')[1]
        assert torch.equal(out['neck.' + k.replace(f'.{level}.', f'.{int(level) + 1}.', 1)], v), k
    assert not any(k.startswith('head.') or 'fc.weight' == k for k in out)


@pytest.mark.slow
def test_runner_trains_swin_t_demo_config(tmp_path, small_data):
    import json
    import subprocess
    import sys
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mcl_sup',
                                   'mcl-sup_swin-t-fpn_1xb16-adamw-coslr-300i_cpu-demo_objects.py'))
    with open(small_data / 'objects_coco' / 'annotations' / 'instances_train.json') as f:
        num_classes = len(json.load(f)['categories'])
    cfg.model.head.num_classes = num_classes
    cfg.model.tile_pooler.out_size = 2
    cfg.train_dataloader.dataset.pipeline[2].transforms[0][0].scale = 64
    cfg.train_dataloader.dataset.data_root = str(small_data / 'objects_coco')
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.batch_size = 8
    cfg.train_cfg.max_iters = 3
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=3)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 3
    path = tmp_path / 'swin_demo.py'
    cfg.dump(str(path))
    proc = subprocess.run([sys.executable, 'tools/train.py', str(path), '--work-dir',
                           str(tmp_path / 'work')], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / 'work' / 'iter_3.pth').exists()
    assert 'acc_level2' in proc.stdout + proc.stderr
