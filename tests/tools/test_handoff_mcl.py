"""Freshly built MCL models handed to mmdet: every intended key matched with identical values,
and a short fine-tune from the converted checkpoint through `mim train mmdet`."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mcl_plugin.registry import MODELS
from mcl_plugin.converters.convert import convert_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMDET = osp.join(REPO, 'configs', 'benchmarks', 'mmdet')
MCL = osp.join(REPO, 'configs', 'mcl')


def _built(cfg_name, tmp_path, randomize=True):
    cfg = Config.fromfile(osp.join(MCL, cfg_name))
    model = MODELS.build(cfg.model)
    model.init_weights()
    if randomize:  # distinct values, so that a wrong copy cannot look right
        with torch.no_grad():
            for i, t in enumerate(model.state_dict().values()):
                if t.is_floating_point():
                    t.copy_(torch.randn_like(t) + i)
    path = tmp_path / f'{osp.splitext(cfg_name)[0]}.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return model, str(path)


def _assert_copied(model, out, prefix_map):
    n = 0
    for src_prefix, dst_prefix in prefix_map.items():
        for k, v in getattr(model, src_prefix).state_dict().items():
            if k.startswith('stem_pe.'):
                continue
            assert torch.equal(out[dst_prefix + k], v), dst_prefix + k
            n += 1
    return n


@pytest.mark.slow
def test_r50_fpn_mcl_into_mask_rcnn_and_retinanet(tmp_path):
    model, src = _built('mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py', tmp_path)
    dst = tmp_path / 'mask_rcnn.pth'
    report = convert_checkpoint(src, str(dst), osp.join(MMDET,
                                                        'mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py'))
    out = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    for name in ('backbone', 'neck'):
        assert report.module(name).complete, report.format()
    head = report.module('roi_head.bbox_head')
    assert len([k for k in head.matched if 'shared_convs' in k]) == len(
        [k for k in head.target_keys if 'shared_convs' in k]) == 4 * 6
    n = _assert_copied(model, out, {'backbone': 'backbone.', 'neck': 'neck.'})
    n += _assert_copied(model, out, {'tile_head': 'roi_head.bbox_head.'})
    assert n == len(out)  # nothing else: projector, predictor, PE, EMA target all left out
    assert not any('stem_pe' in k or 'projector' in k or 'target_net' in k for k in out)

    retina = tmp_path / 'retina.pth'
    report = convert_checkpoint(src, str(retina), osp.join(MMDET,
                                                           'retinanet_r50-fpn_syncbn_1x_coco.py'))
    assert report.module('backbone').complete and report.ok


@pytest.mark.slow
def test_c4_mcl_into_mask_rcnn_c4(tmp_path):
    model, src = _built('mcl_r50-c4_16xb256-lars-coslr-100e_in1k.py', tmp_path)
    dst = tmp_path / 'c4.pth'
    report = convert_checkpoint(src, str(dst), osp.join(MMDET, 'mask-rcnn_r50-c4_syncbn_1x_coco.py'))
    assert report.module('backbone').complete, report.format()
    out = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    for k, v in model.tile_head.state_dict().items():
        assert torch.equal(out['roi_head.shared_head.' + k], v), k


@pytest.mark.slow
def test_wrong_checkpoint_fails_both_tools(tmp_path):
    """An R18 demo MCL checkpoint into the R50 config: non-zero exit and a readable message."""
    _, src = _built('mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py', tmp_path)
    target = osp.join(MMDET, 'mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py')
    proc = subprocess.run([sys.executable, 'tools/convert_to_mmdet.py', src,
                           str(tmp_path / 'x.pth'), '--config', target], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert 'backbone' in proc.stderr and 'depth' in (proc.stdout + proc.stderr).lower()
    proc = subprocess.run([sys.executable, 'tools/check_pretrained.py', target, src], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_mim_train_mmdet_from_converted_mcl_prints_coco_ap(tmp_path, small_data):
    _, src = _built('mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py', tmp_path,
                    randomize=False)
    tiny = osp.join(MMDET, 'mask-rcnn_r18-fpn_bn-4conv1fc_tiny-test_objects-coco.py')
    converted = tmp_path / 'converted.pth'
    report = convert_checkpoint(src, str(converted), tiny)
    assert report.ok
    coco = small_data / 'objects_coco'
    classes = (coco / 'classes.txt').read_text().split()
    n = len(classes)
    opts = [f'load_from={converted}', f'model.roi_head.bbox_head.num_classes={n}',
            f'model.roi_head.mask_head.num_classes={n}',
            # 2 iterations detect little: keep every box so that COCO AP is really computed
            'model.test_cfg.rcnn.score_thr=0.0', 'train_cfg.val_interval=1']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={coco}/',
                 f'{split}_dataloader.dataset.metainfo.classes=[{",".join(classes)}]']
    opts += [f'val_evaluator.ann_file={coco}/annotations/instances_val.json',
             f'test_evaluator.ann_file={coco}/annotations/instances_val.json']
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    proc = subprocess.run([mim, 'train', 'mmdet', tiny, '--work-dir', str(tmp_path / 'ft'),
                           '--cfg-options', *opts], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert f'Load checkpoint from {converted}' in log
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
