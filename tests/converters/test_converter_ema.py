"""Tests of mcl_plugin.converters.ema (``test_ema.py`` is taken by tests/models/utils).

--use-ema is a prefix rename: named EMA keys (``target_net.module.<name>``) and checkpoints
written before the EMA was named (``target_net.module.<K>``) convert to the same output."""
import os.path as osp
import sys
from collections import OrderedDict

import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import (DEMO, PretrainModel, TileHead, fpn, randomize,  # noqa: E402
                              resnet, save)

from mcl_plugin.converters.convert import (MAPPING_RULES, ConversionError,  # noqa: E402
                                           convert_checkpoint)
from mcl_plugin.converters.ema import LEGACY_EMA_ORDERS, select_ema  # noqa: E402
from mcl_plugin.registry import MODELS  # noqa: E402

BN = dict(type='BN')
#: The online modules the converter maps (as convert_state_dict passes them to select_ema).
MAPPED = {r.source.split('.')[0] for r in MAPPING_RULES}
R18 = dict(type='mmdet.ResNet', depth=18, base_channels=8, stem_channels=8, norm_cfg=BN)


def old_layout(state, order):
    """The state dict as written before the EMA was named: ``target_net.module.<K>``."""
    index = {name: str(i) for i, name in enumerate(order)}
    out = OrderedDict()
    for k, v in state.items():
        if k.startswith('target_net.module.'):
            name, rest = k[len('target_net.module.'):].split('.', 1)
            k = f'target_net.module.{index[name]}.{rest}'
        out[k] = v
    return out


def tiny(algo):
    """Tiny plugin models of the three EMA layouts: SoCo C4 (no neck), PLRC, DetCo."""
    if algo == 'soco_c4':
        cfg = dict(type='SoCo',
                   backbone=dict(R18, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
                                 out_indices=(2, )),
                   neck=None,
                   roi_pooler=dict(type='MultiLevelRoIPooler', featmap_strides=(16, ),
                                   out_size=14, scale_thresholds=()),
                   tile_head=dict(type='mmdet.ResLayer', depth=18, stage=3, stride=2,
                                  norm_cfg=BN),
                   projector=dict(type='NonLinearNeck', in_channels=512, hid_channels=16,
                                  out_channels=8, with_avg_pool=False),
                   head=dict(type='SoCoHead', loss=dict(type='CosineSimilarityLoss'),
                             predictor=dict(type='NonLinearNeck', in_channels=8, hid_channels=16,
                                            out_channels=8, with_avg_pool=False)))
    elif algo == 'plrc':
        cfg = dict(type='PLRC', queue_len=8, feat_dim=8, backbone=dict(R18, out_indices=(3, )),
                   neck=dict(type='MoCoV2Neck', in_channels=64, hid_channels=16, out_channels=8),
                   projector=dict(type='PLRCDenseNeck', in_channels=64, hid_channels=16,
                                  out_channels=8),
                   head=dict(type='PLRCHead'))
    else:
        cfg = dict(type='DetCo', queue_len=8, feat_dim=8, backbone=dict(R18, out_indices=(0, 1,
                                                                                        2, 3)),
                   neck=dict(type='DetCoNeck', in_channels=(8, 16, 32, 64), hid_channels=16,
                             out_channels=8),
                   head=dict(type='DetCoHead'))
    model = MODELS.build(cfg)
    randomize(model.target_net.module, 5)  # EMA values differ from the online ones
    return model


@pytest.mark.parametrize('algo,modules',
                         [('soco_c4', ['backbone', 'neck', 'tile_head', 'projector']),
                          ('plrc', ['backbone', 'neck', 'projector']),
                          ('detco', ['backbone', 'neck'])])
def test_old_positional_keys_map_by_the_algorithm_module_order(algo, modules):
    model = tiny(algo)
    assert list(model.target_net.module) == modules
    state = model.state_dict()
    order = next(o for m, o in LEGACY_EMA_ORDERS if not m or m in {k.split('.')[0] for k in state})
    old = old_layout(state, order)
    assert any(k.startswith('target_net.module.0.') for k in old)
    if algo == 'soco_c4':  # the old SoCo C4 target had an empty nn.Identity at position 1
        assert {k.split('.')[2] for k in old if k.startswith('target_net.module.')} == {'0', '2',
                                                                                          '3'}
    new_dropped, old_dropped = {}, {}
    new_out, new_notes = select_ema(state, True, new_dropped, MAPPED)
    old_out, old_notes = select_ema(old, True, old_dropped, MAPPED)
    assert list(new_out) == list(old_out)
    assert all(torch.equal(new_out[k], old_out[k]) for k in new_out)
    assert {r: sorted(v) for r, v in new_dropped.items()} == {
        r: sorted(v) for r, v in old_dropped.items()}
    # the EMA copies replaced the online modules they mirror, nothing else
    for name in modules:
        ema = model.target_net.module[name].state_dict()
        assert ema or (algo, name) == ('soco_c4', 'neck')  # C4: an empty nn.Identity
        for k, v in ema.items():
            assert torch.equal(new_out[f'{name}.{k}'], v), (name, k)
    assert not any(k.startswith('target_net') for k in new_out)
    assert [n for n in new_notes if n.startswith('EMA ')] == [
        f'EMA target_net.module.{m}.* -> {m}.*' for m in modules
        if (algo, m) != ('soco_c4', 'neck')]
    assert 'target_net.steps' in new_dropped['EMA bookkeeping (update counter)']


def test_old_mcl_checkpoint_converts_to_the_same_output(tmp_path):
    """A factory MCL checkpoint end to end through a Mask R-CNN target, in both layouts."""
    model = PretrainModel(resnet(18), fpn([64, 128, 256, 512]), TileHead())
    state = model.state_dict()
    old = old_layout(state, ('backbone', 'neck', 'tile_head', 'projector'))
    outs = []
    for name, s in (('new', state), ('old', old)):
        src = save(s, str(tmp_path / f'{name}.pth'))
        report = convert_checkpoint(src, str(tmp_path / f'{name}_out.pth'), DEMO, use_ema=True)
        assert report.ok, report.format()
        outs.append(torch.load(str(tmp_path / f'{name}_out.pth'), weights_only=True)['state_dict'])
    new, old_out = outs
    assert list(new) == list(old_out) and all(torch.equal(new[k], old_out[k]) for k in new)
    ema = model.target_net.module
    assert torch.equal(new['backbone.layer2.0.conv1.weight'],
                       ema['backbone'].layer2[0].conv1.weight)
    assert torch.equal(new['roi_head.bbox_head.shared_convs.1.conv.weight'],
                       ema['tile_head'].shared_convs[1].conv.weight)


def test_positional_index_beyond_the_module_order_is_an_error():
    state = {'backbone.w': torch.zeros(1), 'neck.w': torch.zeros(1),
             'target_net.module.2.w': torch.zeros(1)}
    with pytest.raises(ConversionError, match='sub-module 2'):
        select_ema(state, True, {}, MAPPED)
