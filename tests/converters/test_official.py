"""Importers for the official SoCo / MCL / PLRC / DetCo checkpoints (converters.official).

Each source is built in the official layout (names and shapes from the official model
definitions: mmdet's ResNet and FPN carry the same names as the torchvision ResNet and the mmcv
FPN those repositories use) and saved in the official container; every source tensor holds its
own constant, so a value that lands on the wrong parameter is caught."""
import argparse
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict

import pytest
import torch
from torch import nn

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import BN, DEMO, R50_FPN, resnet, tool_main  # noqa: E402

from mcl_plugin.converters.convert import ConversionError, convert_checkpoint  # noqa: E402
from mcl_plugin.converters.official import detect_layout  # noqa: E402


def prefixed(prefix, module):
    return OrderedDict((prefix + k, v) for k, v in module.state_dict().items())


def unique(state, start=1):
    """Give every tensor its own constant (float: start+i, int: start+i)."""
    out = OrderedDict()
    for i, (k, v) in enumerate(state.items()):
        out[k] = torch.full_like(v, start + i)
    return out


def mmdet_fpn(in_channels, num_outs, start_level=0):
    from mmdet.models.necks import FPN
    return FPN(list(in_channels), 256, num_outs=num_outs, start_level=start_level, norm_cfg=BN)


class FastRCNNConvFCHead(nn.Module):
    """Parameter names and shapes of SoCo's ``contrast/models/fast_rcnn_conv_fc_head.py``."""

    def __init__(self):
        super().__init__()
        for j in range(1, 5):
            setattr(self, f'conv{j}', nn.Conv2d(256, 256, 3, padding=1, bias=False))
            setattr(self, f'bn{j}', nn.BatchNorm2d(256))
        self.fc1 = nn.Linear(12544, 1024)


def load_out(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def assert_lands(out, src, mapping):
    for tgt, key in mapping.items():
        assert torch.equal(out[tgt], src[key]), (tgt, key)


def assert_complete(report, *names):
    for name in names:
        row = report.module(name)
        assert row.matched == row.target_keys and not row.shape_mismatch, (name, row.missing)


# --------------------------------------------------------------------------------------------
# SoCo
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def soco(tmp_path_factory):
    online = OrderedDict()
    online.update(prefixed('encoder.', resnet(18)))
    online.update(prefixed('neck.', mmdet_fpn([64, 128, 256, 512], 3, start_level=1)))
    online.update(prefixed('head.', FastRCNNConvFCHead()))
    online['projector.linear1.weight'] = torch.zeros(8, 1024)
    online['predictor.linear1.weight'] = torch.zeros(8, 8)
    momentum = OrderedDict((re.sub(r'^(encoder|neck|head|projector)\.', r'\1_k.', k), v)
                           for k, v in online.items() if not k.startswith('predictor'))
    state = unique(OrderedDict(list(online.items()) + list(momentum.items())))
    opt = argparse.Namespace(start_level=1, in_channels=[256, 512, 1024, 2048], num_outs=3,
                             arch='resnet50', output_dir='./output')
    path = str(tmp_path_factory.mktemp('soco') / 'ckpt_epoch_100.pth')
    torch.save(dict(opt=opt, model=OrderedDict(('module.' + k, v) for k, v in state.items()),
                    optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0])]),
                    scheduler=dict(last_epoch=100, base_lrs=[0.1]), epoch=100,
                    amp=dict(loss_scaler0=dict(loss_scale=1.0, unskipped=0))), path)
    return state, path


def soco_expected(state, suffix=''):
    mapping = {}
    for k in state:
        m = re.match(rf'^encoder{suffix}\.(.*)', k)
        if m:
            mapping['backbone.' + m.group(1)] = k
        m = re.match(rf'^neck{suffix}\.(lateral_convs|fpn_convs)\.(\d)\.(.*)', k)
        if m:
            mapping[f'neck.{m.group(1)}.{int(m.group(2)) + 1}.{m.group(3)}'] = k
        m = re.match(rf'^head{suffix}\.(conv|bn)(\d)\.(.*)', k)
        if m:
            mapping[f'roi_head.bbox_head.shared_convs.{int(m.group(2)) - 1}.'
                    f'{m.group(1)}.{m.group(3)}'] = k
        m = re.match(rf'^head{suffix}\.fc1\.(.*)', k)
        if m:
            mapping['roi_head.bbox_head.shared_fcs.0.' + m.group(1)] = k
    return mapping


def test_soco_namespace_loads_safely_and_maps_backbone_fpn_head(soco, tmp_path):
    state, src = soco
    dst = str(tmp_path / 'out.pth')
    report = convert_checkpoint(src, dst, DEMO)  # no trust: opt is an allow-listed Namespace
    assert report.ok, report.format()
    mapping = soco_expected(state)
    assert len(mapping) == sum(1 for k in state if re.match(r'^(encoder|neck|head)\.', k))
    out = load_out(dst)
    assert_lands(out, state, mapping)
    assert_complete(report, 'backbone')
    head = report.module('roi_head.bbox_head')  # all shared layers; the classifier is new
    assert len(head.matched) == 4 * 6 + 2 and all(re.search(r'\.fc_(cls|reg)\.', k)
                                                  for k in head.missing)
    neck = report.module('neck')  # SoCo pre-trains P3-P5: the C2 level stays at init
    assert neck.missing and all(re.match(r'neck\.(lateral|fpn)_convs\.0\.', k)
                                for k in neck.missing)
    assert not any(row.unexpected for row in report.modules)
    dropped = {k for keys in report.dropped.values() for k in keys}
    assert {'projector.linear1.weight', 'predictor.linear1.weight', 'encoder_k.conv1.weight',
            'head_k.fc1.weight'} <= dropped
    assert any('opt.start_level' in n for n in report.notes)
    assert any('optimizer' in n and 'amp' in n for n in report.notes)
    meta = torch.load(dst, weights_only=True)['meta']['mcl_plugin_convert']
    assert meta['src_format'] == 'soco'


def test_soco_momentum_encoder_with_use_ema(soco, tmp_path):
    state, src = soco
    dst = str(tmp_path / 'ema.pth')
    report = convert_checkpoint(src, dst, DEMO, use_ema=True, src_format='soco')
    assert report.ok, report.format()
    assert_lands(load_out(dst), state, soco_expected(state, '_k'))
    assert 'encoder.conv1.weight' in report.dropped[next(r for r in report.dropped
                                                         if r.startswith('online'))]


# --------------------------------------------------------------------------------------------
# MCL
# --------------------------------------------------------------------------------------------


def mcl_state():
    from mmcv.cnn import ConvModule
    neck = nn.Module()
    neck.cls_convs = nn.ModuleList(ConvModule(256, 256, 3, padding=1, norm_cfg=BN)
                                   for _ in range(4))
    neck.mlp = nn.Sequential(nn.Linear(256, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 8),
                             nn.BatchNorm1d(8, affine=False))
    encoder = nn.Sequential(resnet(18), mmdet_fpn([64, 128, 256, 512], 4), neck)
    state = OrderedDict()
    for wrapper in ('encoder_q', 'encoder_k'):
        state.update(prefixed(wrapper + '.', encoder))
    state = unique(state)
    # ``MCL.backbone`` is ``encoder_q[0]``: the same tensors under a second name.
    state.update((k.replace('encoder_q.0.', 'backbone.'), v) for k, v in list(state.items())
                 if k.startswith('encoder_q.0.'))
    state['head.predictor.0.mlp.0.weight'] = torch.zeros(8, 8)
    return state


def test_mcl_openselfsup_checkpoint(tmp_path):
    state = mcl_state()
    src = str(tmp_path / 'epoch_200.pth')
    torch.save(dict(meta=dict(mmcv_version='0.6.2', time='Mon Jun  7 10:00:00 2021', epoch=200,
                              iter=500000, seed=None, env_info='sys.platform: linux'),
                    state_dict=state, optimizer=dict(state={}, param_groups=[])), src)
    dst = str(tmp_path / 'out.pth')
    report = convert_checkpoint(src, dst, DEMO)
    assert report.ok, report.format()
    mapping = {}
    for k in state:
        for pattern, repl in ((r'^encoder_q\.0\.', 'backbone.'), (r'^encoder_q\.1\.', 'neck.'),
                              (r'^encoder_q\.2\.cls_convs\.',
                               'roi_head.bbox_head.shared_convs.')):
            if re.match(pattern, k):
                mapping[re.sub(pattern, repl, k)] = k
    assert_lands(load_out(dst), state, mapping)
    assert_complete(report, 'backbone', 'neck')
    head = report.module('roi_head.bbox_head')
    assert len(head.matched) == 4 * 6 and all('shared_fcs' in k or 'fc_' in k
                                              for k in head.missing)
    assert not any(row.unexpected for row in report.modules)
    dropped = {k for keys in report.dropped.values() for k in keys}
    assert {'backbone.conv1.weight', 'encoder_q.2.mlp.0.weight', 'encoder_k.0.conv1.weight',
            'head.predictor.0.mlp.0.weight'} <= dropped
    ema = convert_checkpoint(src, str(tmp_path / 'ema.pth'), DEMO, use_ema=True)
    assert ema.ok
    out = load_out(str(tmp_path / 'ema.pth'))
    assert torch.equal(out['backbone.conv1.weight'], state['encoder_k.0.conv1.weight'])


# --------------------------------------------------------------------------------------------
# PLRC (R50 into the R50 fine-tune config)
# --------------------------------------------------------------------------------------------


def test_plrc_r50_into_r50_mask_rcnn(tmp_path):
    backbone = unique(prefixed('encoder_q.enc.', resnet(50)))
    state = OrderedDict(backbone)
    state['encoder_q.enc.fcs.0.weight'] = torch.zeros(8, 2048)
    state['encoder_q.enc.fcs_2.last_layer.weight_g'] = torch.zeros(8, 1)
    # the momentum copy shares storage here (keeps the file small); R18 cases check its values
    state.update((k.replace('encoder_q.', 'encoder_k.'), v) for k, v in list(state.items()))
    state['plrc_loss.memory'] = torch.zeros(4, 8)
    state['plrc_loss_image.center'] = torch.zeros(1, 8)
    src = str(tmp_path / 'checkpoint_0099.pth.tar')
    torch.save(dict(epoch=100, arch='resnet50', optimizer=dict(state={}, param_groups=[]),
                    state_dict=OrderedDict(('module.' + k, v) for k, v in state.items())), src)
    dst = str(tmp_path / 'out.pth')
    report = convert_checkpoint(src, dst, R50_FPN)
    assert report.ok, report.format()
    assert_lands(load_out(dst), state, {k.replace('encoder_q.enc.', 'backbone.'): k
                                        for k in backbone})
    assert_complete(report, 'backbone')
    assert not report.module('neck').matched and not any(row.unexpected
                                                         for row in report.modules)
    dropped = {k for keys in report.dropped.values() for k in keys}
    assert {'encoder_q.enc.fcs.0.weight', 'plrc_loss.memory',
            'encoder_k.enc.conv1.weight'} <= dropped


# --------------------------------------------------------------------------------------------
# DetCo: released backbone, detectron2 pickle, MoCo-style encoder_q
# --------------------------------------------------------------------------------------------


def to_d2(key):
    key = re.sub(r'^(conv1|bn1)\.', r'stem.\1.', key)
    key = re.sub(r'^layer(\d)', lambda m: f'res{int(m.group(1)) + 1}', key)
    key = re.sub(r'bn(\d)', r'conv\1.norm', key)
    return key.replace('downsample.0', 'shortcut').replace('downsample.1', 'shortcut.norm')


def test_detco_released_formats(tmp_path):
    state = unique(resnet(18).state_dict())
    expected = {'backbone.' + k: k for k in state}
    bare = str(tmp_path / 'detco_200ep.pth')
    torch.save(dict(state_dict=state), bare)
    d2 = str(tmp_path / 'detco_200ep.pkl')
    with open(d2, 'wb') as f:
        pickle.dump(dict(model={to_d2(k): v.numpy() for k, v in state.items()},
                         __author__='OpenSelfSup', matching_heuristics=True), f)
    moco = str(tmp_path / 'checkpoint_0199.pth.tar')
    mstate = OrderedDict(('module.encoder_q.' + k, v) for k, v in state.items())
    mstate.update(('module.encoder_k.' + k, v + 1000) for k, v in state.items())
    mstate['module.encoder_q.fc.0.weight'] = torch.zeros(8, 512)
    mstate['module.queue'] = torch.zeros(8, 8, 16)
    torch.save(dict(epoch=200, arch='resnet18', state_dict=mstate, optimizer={}), moco)
    for path, fmt in ((bare, 'auto'), (bare, 'detco'), (d2, 'auto'), (moco, 'auto')):
        dst = str(tmp_path / f'out_{osp.basename(path)}_{fmt}.pth')
        report = convert_checkpoint(path, dst, DEMO, src_format=fmt)
        assert report.ok, (path, fmt, report.format())
        assert_lands(load_out(dst), state, expected)
        assert_complete(report, 'backbone')
        assert not any(row.unexpected for row in report.modules), (path, fmt)
    dropped = {k for keys in report.dropped.values() for k in keys}
    assert {'encoder_q.fc.0.weight', 'queue', 'encoder_k.conv1.weight'} <= dropped


# --------------------------------------------------------------------------------------------
# Detection and loud failures
# --------------------------------------------------------------------------------------------


def test_detection_and_unknown_layout_fails_loudly(soco, tmp_path, capsys):
    assert detect_layout({'encoder.conv1.weight': 0}) == 'soco'
    assert detect_layout({'encoder_q.0.conv1.weight': 0}) == 'mcl'
    assert detect_layout({'encoder_q.enc.conv1.weight': 0}) == 'plrc'
    assert detect_layout({'encoder_q.conv1.weight': 0}) == 'detco'
    assert detect_layout({'backbone.conv1.weight': 0}) is None
    odd = str(tmp_path / 'odd.pth')
    torch.save(dict(state_dict={'student.trunk.conv.weight': torch.zeros(2, 3, 1, 1)}), odd)
    with pytest.raises(ConversionError, match=r'unknown checkpoint layout.*student'):
        convert_checkpoint(odd, None, DEMO)
    with pytest.raises(ConversionError, match=r'--src-format plrc.*encoder'):
        convert_checkpoint(soco[1], None, DEMO, src_format='plrc')
    assert tool_main('convert_to_mmdet.py')([odd, str(tmp_path / 'x.pth'), '--config', DEMO]) == 2
    assert 'unknown checkpoint layout' in capsys.readouterr().err
    dst = str(tmp_path / 'cli.pth')
    assert tool_main('convert_to_mmdet.py')(
                     [soco[1], dst, '--config', DEMO, '--src-format', 'soco']) == 0
    assert osp.isfile(dst)


# --------------------------------------------------------------------------------------------
# Onto the plugin's own SoCo model (pre-training resumption / feature extraction)
# --------------------------------------------------------------------------------------------

SOCO_DEMO = osp.join(osp.dirname(DEMO), '..', '..', 'soco',
                     'soco_r18-fpn_1xb8-lars-coslr-300i_cpu-demo_pretrain.py')


def to_official_soco(key):
    """Plugin SoCo key -> official SoCo key (None: the official model has no such tensor)."""
    suffix = ''
    if key.startswith('target_net.module.'):
        key, suffix = key[len('target_net.module.'):], '_k'
    m = re.match(r'^neck\.(lateral_convs|fpn_convs)\.(\d+)\.(.*)', key)
    if m:
        level = int(m.group(2)) - 1
        return None if level < 0 else f'neck{suffix}.{m.group(1)}.{level}.{m.group(3)}'
    rules = ((r'^backbone\.', 'encoder.'),
             (r'^tile_head\.shared_convs\.(\d)\.(conv|bn)\.',
              lambda m: f'head.{m.group(2)}{int(m.group(1)) + 1}.'),
             (r'^tile_head\.shared_fcs\.0\.', 'head.fc1.'),
             (r'^projector\.fc0\.', 'projector.linear1.'), (r'^projector\.bn0\.', 'projector.bn1.'),
             (r'^projector\.fc1\.', 'projector.linear2.'),
             (r'^head\.predictor\.fc0\.', 'predictor.linear1.'),
             (r'^head\.predictor\.bn0\.', 'predictor.bn1.'),
             (r'^head\.predictor\.fc1\.', 'predictor.linear2.'))
    for pattern, repl in rules:
        if re.match(pattern, key):
            new = re.sub(pattern, repl, key)
            return re.sub(r'^(\w+)\.', rf'\1{suffix}.', new) if suffix else new
    return None


def test_soco_onto_the_plugin_soco_model(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mcl_plugin.converters.official import to_plugin_state_dict
    from mcl_plugin.registry import MODELS
    init_default_scope('mcl_plugin')
    model = MODELS.build(Config.fromfile(SOCO_DEMO).model)
    ours = model.state_dict()
    names = {k: to_official_soco(k) for k in ours}
    official = unique(OrderedDict((names[k], v) for k, v in ours.items() if names[k]))
    src = str(tmp_path / 'soco.pth')
    torch.save(dict(opt=argparse.Namespace(start_level=1), epoch=1,
                    model=OrderedDict(('module.' + k, v) for k, v in official.items())), src)
    state, imported = to_plugin_state_dict(src)
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and not imported.dropped
    # (torch's BatchNorm fills a missing num_batches_tracked itself and does not report it)
    assert set(result.missing_keys) == {k for k, v in names.items()
                                        if v is None and 'num_batches_tracked' not in k}
    assert all(re.search(r'neck\.(lateral|fpn)_convs\.0\.|target_net\.steps', k)
               for k in result.missing_keys)
    loaded = model.state_dict()
    for key, src_key in names.items():
        if src_key:
            assert torch.equal(loaded[key], official[src_key]), key
