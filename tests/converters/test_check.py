"""Tests of mcl_plugin.converters.check and tools/check_pretrained.py against real mmdet models."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import (CFG, DEMO, SWIN, PretrainModel, TileHead, fpn,  # noqa: E402
                              resnet, run_tools, save, swin, tool_main)

from mcl_plugin.converters.check import check_pretrained  # noqa: E402
from mcl_plugin.converters.convert import convert_checkpoint  # noqa: E402


@pytest.fixture(scope='module')
def r18(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('check_r18')
    model = PretrainModel(resnet(18), fpn([64, 128, 256, 512]), TileHead())
    raw = save(model.state_dict(), str(tmp / 'mcl_r18.pth'))
    converted = str(tmp / 'converted.pth')
    assert convert_checkpoint(raw, converted, DEMO).ok
    return model, raw, converted


def test_converted_checkpoint_loads_fully(r18):
    model, _, converted = r18
    result = check_pretrained(DEMO, converted)
    assert result.ok, result.format()
    assert result.backbone_covered == result.backbone_keys > 0
    report = result.reports[-1]
    assert report.module('roi_head.bbox_head').matched  # the 4 pre-trained convs arrive
    assert any('every matched tensor arrived' in n for n in report.notes)
    assert 'receive verified' in result.format()


def test_raw_checkpoint_as_load_from_misses_the_head(r18):
    _, raw, _ = r18
    result = check_pretrained(DEMO, raw)
    assert result.ok  # backbone.* / neck.* names already match
    report = result.reports[-1]
    assert not report.module('roi_head.bbox_head').matched
    unmapped = report.module('tile_head')
    assert unmapped is not None and len(unmapped.unexpected) == 24


def test_init_cfg_prefix_paths(r18):
    _, raw, _ = r18
    good = {
        'model.backbone.init_cfg':
        dict(_delete_=True, type='Pretrained', checkpoint=raw, prefix='backbone.')
    }
    result = check_pretrained(DEMO, cfg_options=good)
    assert result.ok, result.format()
    assert result.reports[0].title.startswith('init_cfg of model.backbone')
    assert result.backbone_covered == result.backbone_keys

    wrong = {
        'model.backbone.init_cfg':
        dict(_delete_=True, type='Pretrained', checkpoint=raw, prefix='encoder.')
    }
    result = check_pretrained(DEMO, cfg_options=wrong)
    assert not result.ok and 'encoder.' in result.errors[0] and 'not in' in result.errors[0]

    # prefix=None on a full checkpoint: nothing matches the backbone's own key names
    none = {'model.backbone.init_cfg': dict(_delete_=True, type='Pretrained', checkpoint=raw)}
    result = check_pretrained(DEMO, cfg_options=none)
    assert not result.ok and result.backbone_covered == 0


def test_runner_pickles_load_like_the_entry_points(r18, tmp_path):
    """tools/train.py loads runner checkpoints (NumPy values in meta) through the allow-list of
    mcl_plugin.utils.checkpoint, so the check does too; crafted pickles: tests/utils."""
    model, _, _ = r18
    path = str(tmp_path / 'runner_style.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(seed=np.int64(0))), path)
    result = check_pretrained(DEMO, path)
    assert result.ok, result.format()
    assert result.backbone_covered == result.backbone_keys
    # Issue 21 item 5: a raw pre-training checkpoint as load_from does not crash the run; the
    # check says that the pre-trained 4-conv head stays at init and how to hand it over.
    notes = ' '.join(n for r in result.reports for n in r.notes)
    assert 'crash' not in result.format()
    assert ('24 tile_head.shared_convs.* tensors that the detector names '
            'roi_head.bbox_head.shared_convs.*' in notes)
    assert 'stay at their initialisation' in notes and 'tools/convert_to_mmdet.py' in notes


def test_random_init_and_remote_supervised_twins():
    result = check_pretrained(DEMO.replace('.py', '_random-init.py'))
    assert not result.ok and 'from scratch' in result.errors[0]
    result = check_pretrained(osp.join(CFG, 'mask-rcnn_r50-c4_syncbn_1x_coco_supervised.py'))
    assert result.ok and len(result.unverified) == 2  # backbone + res5 shared head
    assert 'torchvision://resnet50' in result.unverified[0]


@pytest.mark.slow
def test_swin_init_cfg_quirks(tmp_path):
    model = PretrainModel(swin(), fpn([96, 192, 384, 768]), TileHead(), with_ema=False)
    state = model.state_dict()
    bare = save({
        k[9:]: v
        for k, v in state.items() if k.startswith('backbone.')
    }, str(tmp_path / 'bare.pth'))
    full = save(state, str(tmp_path / 'full.pth'))

    def opts(ckpt, **kw):
        init = dict(_delete_=True, type='Pretrained', checkpoint=ckpt, **kw)
        return {'model.backbone.init_cfg': init}

    result = check_pretrained(SWIN, cfg_options=opts(bare))
    assert not result.ok and 'IndexError' in result.errors[0]
    result = check_pretrained(SWIN, cfg_options=opts(full, prefix='backbone.'))
    assert result.ok, result.format()
    assert any('ignored' in n for n in result.reports[0].notes)
    converted = {
        'model.backbone.init_cfg': dict(_delete_=True, type='Pretrained', checkpoint=full),
        'model.backbone.convert_weights': True
    }
    result = check_pretrained(SWIN, cfg_options=converted)
    assert not result.ok and 'convert_weights=False' in result.errors[0]


@pytest.mark.slow
def test_cli_exit_codes(r18, tmp_path, capsys):
    _, _, converted = r18
    assert tool_main('check_pretrained.py')([DEMO, converted]) == 0
    assert '120/120' in capsys.readouterr().out
    r50 = save(PretrainModel(resnet(50), None, TileHead(), with_ema=False).state_dict(),
               str(tmp_path / 'r50.pth'))
    bad, = run_tools(('check_pretrained.py', DEMO, r50))
    assert bad.returncode == 1
    assert 'ResNet-50' in bad.stderr and 'ResNet-18' in bad.stderr, bad.stderr[-3000:]
    assert 'load_from' in bad.stdout and 'Traceback' not in bad.stderr


def _benchmark_configs():
    import glob
    return sorted(osp.basename(p) for p in glob.glob(osp.join(CFG, '*.py')))


@pytest.mark.slow
@pytest.mark.parametrize('name', _benchmark_configs())
def test_every_benchmark_config_builds_and_reports(name):
    """Each config parses, builds its detector and says where its backbone weights come from:
    supervised twins from a remote checkpoint (never downloaded), every other config from
    nothing until load_from is given."""
    result = check_pretrained(osp.join(CFG, name))
    assert result.backbone_keys > 0
    if name.endswith('_supervised.py'):
        assert result.ok and result.unverified, result.format()
    else:
        assert not result.ok and 'from scratch' in result.errors[0], result.format()
