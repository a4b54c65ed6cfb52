"""DetCo end to end: a Runner run of the CPU demo config (tools/train.py), the checkpoint's
backbone handed to mmdet detectors by the converter (tiny R18 Mask R-CNN; R50 C4 and FPN), and
the renderer of a real packed sample."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'detco', 'detco_r18_1xb8-coslr-300i_cpu-demo_pretrain.py')
PAPER = osp.join(REPO, 'configs', 'detco', 'detco_r50_8xb32-coslr-200e_in1k.py')
BENCH = osp.join(REPO, 'configs', 'benchmarks', 'mmdet')
TINY_DET = osp.join(BENCH, 'mask-rcnn_r18-fpn_bn-4conv1fc_tiny-test_objects-coco.py')
ITERS = 3
TERMS = [f'loss_{t}_res{i}' for i in range(2, 6) for t in ('gg', 'll', 'gl')]


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: much faster than two on a loaded shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def demo_config(tmp_path, data_root) -> str:
    """The CPU demo config unchanged except for the data, 3 iterations and in-process loading."""
    cfg = Config.fromfile(DEMO)
    cfg.train_dataloader.dataset.data_root = str(data_root)
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_iters = ITERS
    cfg.param_scheduler[0].T_max = ITERS
    cfg.param_scheduler[0].end = ITERS
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = ITERS
    path = osp.join(tmp_path, 'detco_demo.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory, small_data):
    tmp = tmp_path_factory.mktemp('detco_run')
    work = tmp / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/train.py',
        demo_config(str(tmp), small_data / 'pretrain'), '--work-dir',
        str(work)
    ],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logs = [
        osp.join(dp, f) for dp, _, fs in os.walk(work) for f in fs
        if f.endswith('.json') and f != 'scalars.json' and 'vis_data' in dp
    ]
    with open(sorted(logs)[-1]) as f:
        records = [json.loads(line) for line in f if '"loss"' in line]
    return work, records


@pytest.mark.slow
def test_runner_trains_the_demo_config(demo_run):
    work, records = demo_run
    assert len(records) == ITERS
    for r in records:
        for k in TERMS:  # each of the 12 terms is logged on its own
            assert np.isfinite(r[k]) and r[k] >= 0, (k, r)
        assert r['loss'] == pytest.approx(sum(r[k] for k in TERMS), rel=1e-3)
    print(f"DetCo demo step time (s): {[round(r['time'], 3) for r in records]}")
    ckpt = torch.load(work / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    state = ckpt['state_dict']
    assert int(state['target_net.steps']) == ITERS
    queues = sorted({k.split('.')[1] for k in state if k.startswith('queues.')})
    assert queues == sorted(f'{k}_res{i}' for k in 'gl' for i in range(2, 6))
    for q in queues:
        assert int(state[f'queues.{q}.ptr']) == ITERS * 8  # batch 8, queue 256
        assert state[f'queues.{q}.queue'].shape == (256, 128)
    # the key encoder moved towards the (trained) query encoder, but is not equal to it
    k, o = state['target_net.module.backbone.layer1.0.conv1.weight'], state[
        'backbone.layer1.0.conv1.weight']
    assert not torch.equal(k, o) and (k - o).abs().max() < 1e-2


def _assert_full_backbone(report, out_path, source, prefix):
    row = report.module('backbone')
    assert report.ok, report.format()
    assert row.target_keys and row.matched == row.target_keys, report.format()
    assert not row.missing and not row.shape_mismatch and not row.unexpected
    out = torch.load(out_path, map_location='cpu', weights_only=True)['state_dict']
    for key in row.target_keys:
        assert torch.equal(out[key], source[prefix + key[len('backbone.'):]]), key
    return out


@pytest.mark.slow
def test_demo_checkpoint_backbone_into_tiny_mask_rcnn(demo_run, tmp_path):
    from mcl_plugin.converters.convert import convert_checkpoint
    work, _ = demo_run
    src = str(work / f'iter_{ITERS}.pth')
    state = torch.load(src, map_location='cpu', weights_only=False)['state_dict']
    dst = str(tmp_path / 'online.pth')
    report = convert_checkpoint(src, dst, TINY_DET)
    out = _assert_full_backbone(report, dst, state, 'backbone.')
    assert not any(k.startswith(('neck.', 'queues', 'target_net')) for k in out)
    # the MLP heads are not mistaken for an FPN, the queues are dropped
    dropped = ' | '.join(report.dropped)
    assert 'not an FPN' in dropped and 'queue' in dropped
    report = convert_checkpoint(src, str(tmp_path / 'ema.pth'), TINY_DET, use_ema=True)
    _assert_full_backbone(report, str(tmp_path / 'ema.pth'), state,
                          'target_net.module.backbone.')


@pytest.mark.slow
def test_r50_backbone_into_c4_and_fpn_detectors(tmp_path):
    """The paper model (R50, small MLPs and queues to keep the test light) into Mask R-CNN
    R50-C4 (3-stage backbone + res5 shared head) and R50-FPN."""
    from mcl_plugin.registry import MODELS
    from mcl_plugin.converters.convert import convert_checkpoint
    cfg = Config.fromfile(PAPER).model
    cfg.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.neck.hid_channels = 8
    cfg.queue_len = 4
    state = MODELS.build(cfg).state_dict()
    src = str(tmp_path / 'detco_r50.pth')
    torch.save(dict(state_dict=state, meta=dict()), src)
    fpn = convert_checkpoint(src, str(tmp_path / 'fpn.pth'),
                             osp.join(BENCH, 'mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py'))
    _assert_full_backbone(fpn, str(tmp_path / 'fpn.pth'), state, 'backbone.')
    assert len(fpn.module('backbone').matched) == 318
    c4 = convert_checkpoint(src, str(tmp_path / 'c4.pth'),
                            osp.join(BENCH, 'mask-rcnn_r50-c4_syncbn_1x_coco.py'))
    out = _assert_full_backbone(c4, str(tmp_path / 'c4.pth'), state, 'backbone.')
    res5 = [k for k in out if k.startswith('roi_head.shared_head.layer4.')]
    assert len(res5) == 60
    for k in res5:
        assert torch.equal(out[k], state['backbone.layer4.' + k.split('layer4.', 1)[1]])
