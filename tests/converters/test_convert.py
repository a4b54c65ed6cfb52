"""Tests of mcl_plugin.converters.convert and tools/convert_to_mmdet.py against real mmdet models.

The ``r18`` fixture (an R18 MCL checkpoint) is in this folder's conftest.py."""
import hashlib
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import (C4, DEMO, R50_FPN, RETINA, SWIN, PretrainModel,  # noqa: E402
                              TileHead, expected_mapping, fpn, res5_head, resnet, run_tools,
                              save, swin, tool_main)

from mcl_plugin.converters.convert import ConversionError, convert_checkpoint  # noqa: E402


def load_out(path):
    # The converted file must be readable the way torch>=2.6 / mmengine read it by default.
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_copied(out_state, source_state, mapping):
    assert set(out_state) == set(mapping)
    for tgt, src in mapping.items():
        assert out_state[tgt].dtype == source_state[src].dtype, tgt
        assert torch.equal(out_state[tgt], source_state[src]), tgt


def test_r18_mcl_into_demo_mask_rcnn(r18, tmp_path):
    model, src = r18
    dst = str(tmp_path / 'out.pth')
    report = convert_checkpoint(src, dst, DEMO)
    assert report.ok, report.format()
    out = load_out(dst)
    state = model.state_dict()
    mapping = expected_mapping(state)
    assert_copied(out['state_dict'], state, mapping)
    for name in ('backbone', 'neck'):
        row = report.module(name)
        assert row.matched == row.target_keys and not row.unexpected and not row.shape_mismatch
    head = report.module('roi_head.bbox_head')
    assert len(head.matched) == 4 * 6  # conv.weight + bn.{weight,bias,mean,var,num_batches}
    assert any('shared_fcs' in k for k in head.missing) and not head.unexpected
    assert report.module('rpn_head').missing and not report.module('rpn_head').matched
    reasons = ' | '.join(report.dropped)
    for word in ('projector', 'predictor', 'positional embedding', 'EMA'):
        assert word in reasons
    dropped = [k for keys in report.dropped.values() for k in keys]
    assert 'backbone.stem_pe.x_embed' in dropped and 'target_net.steps' in dropped
    meta = out['meta']['mcl_plugin_convert']
    assert meta['source_sha256'] == hashlib.sha256(open(src, 'rb').read()).hexdigest()
    assert meta['use_ema'] is False and meta['parts'] == ['backbone', 'neck', 'head']
    assert meta['counts']['backbone']['matched'] == len(report.module('backbone').target_keys)
    text = report.format()
    assert 'target keys' in text and 'roi_head.bbox_head' in text
    assert report.to_markdown().count('\n|') >= len(report.modules) + 1


def test_progress_bar_counts_the_four_stages(r18, tmp_path, capsys):
    _, src = r18
    assert convert_checkpoint(src, str(tmp_path / 'a.pth'), DEMO, progress=True).ok
    err = capsys.readouterr().err
    assert 'convert mcl_r18.pth' in err and '4/4' in err
    # off (not a terminal, the default under pytest): nothing on stderr
    assert convert_checkpoint(src, str(tmp_path / 'b.pth'), DEMO).ok
    assert capsys.readouterr().err == ''


def test_use_ema_takes_the_target_network(r18, tmp_path):
    model, src = r18
    dst = str(tmp_path / 'ema.pth')
    report = convert_checkpoint(src, dst, DEMO, use_ema=True)
    assert report.ok, report.format()
    out = load_out(dst)['state_dict']
    ema = model.target_net.module
    assert torch.equal(out['backbone.conv1.weight'], ema['backbone'].conv1.weight)
    assert not torch.equal(out['backbone.conv1.weight'], model.backbone.conv1.weight)
    assert torch.equal(out['neck.fpn_convs.3.conv.weight'],
                       ema['neck'].fpn_convs[3].conv.weight)
    assert torch.equal(out['roi_head.bbox_head.shared_convs.2.bn.running_var'],
                       ema['tile_head'].shared_convs[2].bn.running_var)
    assert load_out(dst)['meta']['mcl_plugin_convert']['use_ema'] is True
    assert any('backbone.*' in n for n in report.notes)


def test_same_input_same_bytes_and_reconversion(r18, tmp_path):
    _, src = r18
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    # torch.save names the archive after the file: same name in two folders
    first, second, again = (str(tmp_path / n) for n in ('a/x.pth', 'b/x.pth', 'c.pth'))
    convert_checkpoint(src, first, DEMO)
    convert_checkpoint(src, second, DEMO)
    assert open(first, 'rb').read() == open(second, 'rb').read()
    report = convert_checkpoint(first, again, DEMO)
    assert report.ok and any('re-conversion' in n for n in report.notes)
    a, c = load_out(first)['state_dict'], load_out(again)['state_dict']
    assert list(a) == list(c) and all(torch.equal(a[k], c[k]) for k in a)


def test_parts_and_backbone_only_files(r18, tmp_path):
    model, _ = r18
    state = model.state_dict()
    bare = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    src = save(bare, str(tmp_path / 'bare.pth'))
    report = convert_checkpoint(src, str(tmp_path / 'o.pth'), DEMO)
    assert report.ok and any('backbone-only' in n for n in report.notes)
    out = load_out(str(tmp_path / 'o.pth'))['state_dict']
    assert torch.equal(out['backbone.layer4.1.bn2.weight'], state['backbone.layer4.1.bn2.weight'])
    assert not any(k.startswith('neck.') for k in out)

    full = save(state, str(tmp_path / 'full.pth'))
    report = convert_checkpoint(full, str(tmp_path / 'p.pth'), DEMO, parts=['backbone'])
    assert report.ok and not report.module('neck').matched
    assert len(report.dropped['part excluded by --parts']) > 0
    with pytest.raises(ConversionError, match='no EMA'):
        convert_checkpoint(src, None, DEMO, use_ema=True)


def test_cli_module_prefix_works(r18, tmp_path, capsys):
    model, _ = r18
    ddp = save(model.state_dict(), str(tmp_path / 'ddp.pth'), prefix='module.')
    out = str(tmp_path / 'ddp_out.pth')
    assert tool_main('convert_to_mmdet.py')([ddp, out, '--config', DEMO, '--markdown']) == 0
    stdout = capsys.readouterr().out
    assert '| backbone | 120 | 120 |' in stdout and 'saved' in stdout
    assert torch.equal(load_out(out)['state_dict']['neck.lateral_convs.0.conv.weight'],
                       model.neck.lateral_convs[0].conv.weight)


@pytest.mark.slow
def test_cli_exit_codes_and_messages(r18, tmp_path):
    """In a subprocess, as users run it: R18 into an R50 config -> 1; truncated file -> 2."""
    _, src = r18
    truncated = str(tmp_path / 'truncated.pth')
    with open(src, 'rb') as f, open(truncated, 'wb') as g:
        g.write(f.read()[:100_000])
    never = str(tmp_path / 'never.pth')
    wrong, cut = run_tools(('convert_to_mmdet.py', src, never, '--config', R50_FPN),
                           ('convert_to_mmdet.py', truncated, never, '--config', DEMO))

    assert wrong.returncode == 1, wrong.stderr[-3000:]
    assert 'ResNet-18' in wrong.stderr and 'depth=18' in wrong.stderr
    assert 'backbone.layer1.0' in wrong.stderr and 'nothing was written' in wrong.stderr
    assert '| backbone' not in wrong.stdout and 'backbone ' in wrong.stdout  # the table

    assert cut.returncode == 2, cut.stderr[-3000:]
    assert 'truncated' in cut.stderr and 'truncated.pth' in cut.stderr
    for proc in (wrong, cut):
        assert 'Traceback' not in proc.stderr
    assert not osp.exists(never)


@pytest.mark.slow
def test_r50_mask_rcnn_retinanet_and_swin_mismatch(tmp_path):
    model = PretrainModel(resnet(50), fpn([256, 512, 1024, 2048]), TileHead(), with_ema=False)
    state = model.state_dict()
    src = save(state, str(tmp_path / 'r50.pth'))

    report = convert_checkpoint(src, str(tmp_path / 'mrcnn.pth'), R50_FPN)
    assert report.ok, report.format()
    assert_copied(
        load_out(str(tmp_path / 'mrcnn.pth'))['state_dict'], state, expected_mapping(state))

    report = convert_checkpoint(src, str(tmp_path / 'retina.pth'), RETINA)
    assert report.ok, report.format()
    out = load_out(str(tmp_path / 'retina.pth'))['state_dict']
    for i in range(3):  # RetinaNet FPN starts at C3: source level i+1 -> target level i
        assert torch.equal(out[f'neck.lateral_convs.{i}.conv.weight'],
                           state[f'neck.lateral_convs.{i + 1}.conv.weight'])
        assert torch.equal(out[f'neck.fpn_convs.{i}.bn.running_mean'],
                           state[f'neck.fpn_convs.{i + 1}.bn.running_mean'])
    neck = report.module('neck')
    assert {k.split('.')[2] for k in neck.missing} == {'3', '4'}  # P6/P7 extra convs
    assert not neck.shape_mismatch and not neck.unexpected
    assert any('re-aligned' in n for n in report.notes)
    assert any('roi_head.bbox_head.shared_convs' in r for r in report.dropped)
    assert report.module('bbox_head').missing and not report.module('bbox_head').matched

    swin_src = save(
        PretrainModel(swin(), fpn([96, 192, 384, 768]), TileHead(), with_ema=False).state_dict(),
        str(tmp_path / 'swin.pth'))
    report = convert_checkpoint(swin_src, str(tmp_path / 'x.pth'), R50_FPN)
    assert not report.ok and not osp.exists(str(tmp_path / 'x.pth'))
    assert 'Swin' in report.errors[0] and 'ResNet-50' in report.errors[0]


@pytest.mark.slow
def test_swin_t_mask_rcnn(tmp_path):
    # The Swin config follows the plugin protocol (SyncBN FPN, 4conv1fc head): pre-train the
    # neck with a norm too, and the tile head lands in shared_convs.
    model = PretrainModel(swin(), fpn([96, 192, 384, 768]), TileHead())
    state = model.state_dict()
    src = save(state, str(tmp_path / 'swin.pth'))
    report = convert_checkpoint(src, str(tmp_path / 'out.pth'), SWIN, use_ema=True)
    assert report.ok, report.format()
    out = load_out(str(tmp_path / 'out.pth'))['state_dict']
    ema = model.target_net.module['backbone'].state_dict()
    backbone = report.module('backbone')
    assert backbone.matched == backbone.target_keys
    for k in backbone.target_keys:
        assert torch.equal(out[k], ema[k[len('backbone.'):]]), k
    assert report.module('neck').matched == report.module('neck').target_keys
    head = report.module('roi_head.bbox_head')
    assert len([k for k in head.matched if 'shared_convs' in k]) == 4 * 6


@pytest.mark.slow
def test_c4_from_res5_tile_head_and_from_four_stage_backbone(tmp_path):
    c4 = PretrainModel(resnet(50, num_stages=3), None, res5_head(), with_ema=False)
    state = c4.state_dict()
    src = save(state, str(tmp_path / 'c4.pth'))
    report = convert_checkpoint(src, str(tmp_path / 'c4_out.pth'), C4)
    assert report.ok, report.format()
    out = load_out(str(tmp_path / 'c4_out.pth'))['state_dict']
    head = report.module('roi_head.shared_head')
    assert {k for k in head.missing} == {k for k in head.target_keys if '.norm.' in k}
    for k in head.matched:
        assert torch.equal(out[k], state['tile_head.' + k[len('roi_head.shared_head.'):]])

    four = PretrainModel(resnet(50), fpn([256, 512, 1024, 2048]), TileHead(), with_ema=False)
    state = four.state_dict()
    src = save(state, str(tmp_path / 'r50.pth'))
    report = convert_checkpoint(src, str(tmp_path / 'r50_c4.pth'), C4)
    assert report.ok, report.format()
    out = load_out(str(tmp_path / 'r50_c4.pth'))['state_dict']
    assert torch.equal(out['roi_head.shared_head.layer4.2.conv3.weight'],
                       state['backbone.layer4.2.conv3.weight'])
    assert any('res5' in n for n in report.notes)
    # the C4 checkpoint into an FPN config: res5 is missing from the backbone
    report = convert_checkpoint(str(tmp_path / 'c4.pth'), None, R50_FPN)
    assert not report.ok and 'C4' in report.errors[0] and 'c4' in report.errors[0]


@pytest.mark.slow
@pytest.mark.parametrize('algo', ['BYOL', 'MoCo'])
def test_mmpretrain_baselines(algo, tmp_path):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    neck = dict(type='NonLinearNeck', in_channels=512, hid_channels=64, out_channels=32)
    if algo == 'BYOL':
        head = dict(type='LatentPredictHead',
                    loss=dict(type='CosineSimilarityLoss'),
                    predictor=dict(type='NonLinearNeck',
                                   in_channels=32,
                                   hid_channels=64,
                                   out_channels=32,
                                   with_avg_pool=False))
        extra, ema_name = dict(), 'target_net'
    else:
        neck = dict(type='MoCoV2Neck', in_channels=512, hid_channels=64, out_channels=32)
        head = dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2)
        extra, ema_name = dict(queue_len=64, feat_dim=32), 'encoder_k'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(type=algo, backbone=dict(type='ResNet', depth=18), neck=neck, head=head, **extra))
    from mcl_ckpt_factory import randomize
    randomize(model, 3)
    randomize(getattr(model, ema_name).module, 4)
    state = model.state_dict()
    assert any(k.startswith(f'{ema_name}.module.0.') for k in state)
    src = save(state, str(tmp_path / f'{algo}.pth'))
    report = convert_checkpoint(src, str(tmp_path / 'out.pth'), DEMO)
    assert report.ok, report.format()
    assert any('not an FPN' in r for r in report.dropped)
    assert not report.module('neck').matched and not report.module('neck').unexpected
    report = convert_checkpoint(src, str(tmp_path / 'ema.pth'), DEMO, use_ema=True)
    assert report.ok, report.format()
    out = load_out(str(tmp_path / 'ema.pth'))['state_dict']
    ema_backbone = getattr(model, ema_name).module[0]
    assert torch.equal(out['backbone.layer3.0.downsample.1.weight'],
                       ema_backbone.layer3[0].downsample[1].weight)
    assert set(out) == {k for k in report.module('backbone').target_keys}


@pytest.mark.slow
def test_mmpretrain_swin_needs_allow_missing_for_norms(tmp_path):
    from mmpretrain.models.backbones import SwinTransformer
    backbone = SwinTransformer(arch='tiny', img_size=224, out_indices=(3, ))
    state = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
    src = save(state, str(tmp_path / 'mmpretrain_swin.pth'))
    report = convert_checkpoint(src, str(tmp_path / 'a.pth'), SWIN)
    assert not report.ok and '--allow-missing' in report.errors[0]
    report = convert_checkpoint(src,
                                str(tmp_path / 'b.pth'),
                                SWIN,
                                allow_missing=[r'backbone\.norm[0-2]\.'])
    assert report.ok, report.format()
    row = report.module('backbone')
    assert len(row.matched) == len(state) and not row.shape_mismatch
    out = load_out(str(tmp_path / 'b.pth'))['state_dict']
    assert all(torch.equal(out[k], v) for k, v in state.items())


def test_unprefixed_resnet50_is_recognised_as_a_backbone(tmp_path):
    """Issue 21 item 5: a torchvision-layout R50 (conv1, layer1..4, fc) was reported as holding
    'no backbone weights'; it is a bare backbone of the wrong depth for the R18 demo."""
    src = save(resnet(50).state_dict(), str(tmp_path / 'r50_bare.pth'))
    report = convert_checkpoint(src, str(tmp_path / 'out.pth'), DEMO)
    assert not report.ok and not osp.exists(tmp_path / 'out.pth')
    text = ' '.join(report.errors)
    assert 'ResNet-50' in text and 'depth=50' in text and 'no backbone weights' not in text


def test_missing_source_is_named_not_a_traceback(tmp_path):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(ConversionError, match=r"nope\.pth' does not exist"):
        convert_checkpoint(str(missing), str(tmp_path / 'out.pth'), DEMO)
