"""PLRC end to end: a Runner run of the CPU demo config, then its checkpoint handed to mmdet."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'plrc', 'plrc_r18_1xb8-coslr-300i_cpu-demo_pretrain.py')
TINY_DET = osp.join(REPO, 'configs', 'benchmarks', 'mmdet',
                    'mask-rcnn_r18-fpn_bn-4conv1fc_tiny-test_objects-coco.py')
ITERS = 3


def tiny_plrc_config(tmp_path, data_root):
    """The demo config at 64 px (R = 16), batch 4, 4 x 4 points, distillation from iter 2."""
    cfg = Config.fromfile(DEMO)
    cfg.model.resolution = 16
    cfg.model.num_regions = cfg.model.num_points = 4
    cfg.model.queue_len = 64
    two_view = cfg.train_dataloader.dataset.pipeline[1]
    two_view.size, two_view.mask_size = 64, 16
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = str(data_root)
    cfg.train_cfg.max_iters = ITERS
    cfg.param_scheduler[0].update(T_max=ITERS, end=ITERS)
    next(h for h in cfg.custom_hooks if h.type == 'PLRCDistillWarmupHook').warmup = 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = ITERS
    path = osp.join(tmp_path, 'plrc_tiny_demo.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def trained(tmp_path_factory, small_data):
    tmp = tmp_path_factory.mktemp('plrc_run')
    work = tmp / 'work'
    proc = subprocess.run([
        sys.executable, 'tools/train.py',
        tiny_plrc_config(str(tmp), small_data / 'pretrain'), '--work-dir',
        str(work)
    ],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


def test_runner_trains_the_demo_config_with_the_distillation_warmup(trained):
    assert (trained / f'iter_{ITERS}.pth').exists()
    logs = [
        osp.join(d, f) for d, _, fs in os.walk(trained) for f in fs
        if f.endswith('.json') and 'vis_data' in d and f != 'scalars.json'
    ]
    with open(sorted(logs)[-1]) as f:
        rows = [json.loads(line) for line in f if '"loss"' in line]
    assert len(rows) == ITERS
    for row in rows:
        assert all(k in row for k in ('loss_point_contrast', 'loss_distill', 'loss_moco'))
        total = row['loss_point_contrast'] + row['loss_distill'] + row['loss_moco']
        assert row['loss'] == pytest.approx(total, rel=1e-3)
    # warmup=1 iteration: iteration 1 without L_a, iterations 2 and 3 with it
    assert [r['distill_on'] for r in rows] == [0.0, 1.0, 1.0]
    assert rows[0]['loss_distill'] == 0.0 and rows[1]['loss_distill'] > 0.0


def test_converter_hands_the_backbone_to_mmdet(trained, tmp_path):
    from mcl_plugin.converters.convert import convert_checkpoint
    src = str(trained / f'iter_{ITERS}.pth')
    state = torch.load(src, map_location='cpu', weights_only=False)['state_dict']
    for use_ema, prefix in ((False, 'backbone.'), (True, 'target_net.module.backbone.')):
        dst = str(tmp_path / f'det_ema{int(use_ema)}.pth')
        report = convert_checkpoint(src, dst, TINY_DET, use_ema=use_ema)
        assert report.ok, report.format()
        backbone = report.module('backbone')
        assert backbone.target_keys and backbone.matched == backbone.target_keys  # 100 %
        assert not backbone.shape_mismatch and not backbone.unexpected
        assert not any(m.unexpected for m in report.modules), report.format()
        out = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
        assert set(out) == set(backbone.target_keys)  # neck/head of PLRC are not detector parts
        for k in backbone.target_keys:
            assert torch.equal(out[k], state[prefix + k[len('backbone.'):]]), k
        reasons = ' | '.join(report.dropped)
        assert 'projector' in reasons and 'queue' not in str(report.modules)
    assert not torch.equal(state['backbone.conv1.weight'],
                           state['target_net.module.backbone.conv1.weight'])
