"""Frozen-feature detection probe (tools/analysis/det/, tools/analysis/det_probe.py): COCO box AP
of ground truth and of shifted boxes through the probe's metric path, what each variant freezes
for an MCL checkpoint and that frozen weights stay put while the rest trains, and the tool end
to end on the --small objects set (rows per (checkpoint, seed, variant), cache, resume)."""
import importlib
import json
import os.path as osp

import pytest
import torch

from tools.analysis.det import (DetProbeConfig, coco_box_ap, load_detector, load_split,
                                read_classes, train_on_cache)
from tools.analysis.det.probe import _bind, _features

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'mcl', 'mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py')


def _tool():
    """The CLI module (``tools`` is a package; the script also runs standalone)."""
    return importlib.import_module('tools.analysis.det_probe')


@pytest.fixture(scope='module')
def mcl_checkpoint(tmp_path_factory):
    """A freshly built MCL CPU-demo model (backbone, FPN, 4-conv tile head) saved like a runner
    checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mcl_plugin.registry import MODELS
    with DefaultScope.overwrite_default_scope('mcl_plugin'):
        model = MODELS.build(Config.fromfile(DEMO).model)
    path = tmp_path_factory.mktemp('det_ckpt') / 'iter_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)), path)
    return path


def test_coco_box_ap_of_ground_truth_is_100_and_shifted_boxes_lower(small_data):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    root = str(small_data / 'objects_coco')
    classes = read_classes(root)
    # half the image size: the boxes the detector trains on must be scaled with the image
    _, samples = load_split(root, 'val', (128, 96), classes)
    ann = osp.join(root, 'annotations', 'instances_val.json')
    for s in samples:
        h, w = s['metainfo']['img_shape']
        assert s['metainfo']['scale_factor'][0] < 1
        assert (s['bboxes'][:, 2] <= w + 1e-3).all() and (s['bboxes'][:, 3] <= h + 1e-3).all()

    def preds(shift):
        out = []
        for s in samples:
            ds = DetDataSample(metainfo=s['metainfo'])
            scale = torch.tensor(s['metainfo']['scale_factor']).repeat(2)
            boxes = s['bboxes'] / scale + shift  # back to original-image pixels
            ds.pred_instances = InstanceData(bboxes=boxes, labels=s['labels'],
                                             scores=torch.ones(len(boxes)))
            out.append(ds)
        return out

    assert coco_box_ap(preds(0.0), ann, classes)['AP'] == pytest.approx(100.0, abs=0.5)
    shifted = coco_box_ap(preds(15.0), ann, classes)
    assert shifted['AP'] < 60.0 and shifted['AP50'] >= shifted['AP75']


def test_variants_freeze_what_the_checkpoint_fills_and_frozen_weights_stay(
        small_data, mcl_checkpoint):
    root = str(small_data / 'objects_coco')
    classes = read_classes(root)
    inputs, samples = load_split(root, 'train', (128, 96), classes, max_images=4)
    det = load_detector(str(mcl_checkpoint), 'all', len(classes), rois_per_image=8)
    assert det.frozen_parts == ['backbone', 'neck', 'head'] and det.cached_stage == 'neck'
    model = det.model
    assert not any(p.requires_grad for p in model.neck.parameters())
    assert not any(p.requires_grad for p in model.roi_head.bbox_head.shared_convs.parameters())
    assert all(p.requires_grad for p in model.roi_head.bbox_head.shared_fcs.parameters())
    assert all(p.requires_grad for p in model.rpn_head.parameters())
    ckpt = torch.load(mcl_checkpoint, map_location='cpu')['state_dict']
    # the frozen backbone holds the checkpoint's online weights (the EMA copy is not taken)
    assert torch.equal(model.backbone.conv1.weight, ckpt['backbone.conv1.weight'])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _bind(det)
    feats = _features(det, inputs)
    assert len(feats) == 5 and feats[0].dtype == torch.float16  # P2-P6, cached as fp16
    loss = train_on_cache(det, feats, samples, DetProbeConfig(iters=2, batch_size=2, warmup=1),
                          seed=0)
    assert loss > 0
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith(('rpn_head.', 'roi_head.bbox_head.shared_fcs.',
                                         'roi_head.bbox_head.fc_')) for n in changed), changed
    assert not model.backbone.training and not model.neck.training  # eval BN
    # variant backbone: only the backbone frozen, the FPN trains on cached C2-C5
    det_b = load_detector(str(mcl_checkpoint), 'backbone', len(classes))
    assert det_b.frozen_parts == ['backbone'] and det_b.cached_stage == 'backbone'
    assert all(p.requires_grad for p in det_b.model.neck.parameters())
    assert torch.equal(det_b.model.neck.fpn_convs[0].conv.weight,
                       model.neck.fpn_convs[0].conv.weight)


def test_det_probe_tool_rows_cache_and_resume(tmp_path, small_data, mcl_checkpoint):
    root = small_data / 'objects_coco'
    out = tmp_path / 'det'
    common = ['--data-root', str(root), '--out-dir', str(out), '--iters', '2', '--batch-size',
              '2', '--rois-per-image', '8', '--scale', '128', '96', '--max-images', '4',
              '--no-progress']
    tool = _tool()
    assert tool.main(['random', f'mcl={mcl_checkpoint}', *common]) == 0
    doc = json.load(open(out / 'det.json'))
    rows = {(r['name'], r['seed'], r['variant']): r for r in doc['results']}
    assert list(rows) == [('random', 0, 'backbone'), ('random', 0, 'all'),
                          ('mcl', 0, 'backbone'), ('mcl', 0, 'all')]
    assert rows[('mcl', 0, 'all')]['frozen'] == ['backbone', 'neck', 'head']
    assert rows[('random', 0, 'all')]['frozen'] == ['backbone', 'neck', 'head']
    assert rows[('mcl', 0, 'backbone')]['trainable_params'] > rows[('mcl', 0, 'all')][
        'trainable_params']
    for r in rows.values():
        assert 0.0 <= r['AP'] <= 100.0 and r['final_loss'] > 0
    assert len(list((out / 'cache').glob('*.pt'))) == 4  # (random, mcl) x (C2-C5, FPN)
    assert '| mcl | 0 | all | backbone+neck+head |' in (out / 'det.md').read_text()
    # resume: a second seed adds only its rows; mcl's features come from the cache
    assert tool.main(['random', f'mcl={mcl_checkpoint}', '--seeds', '0,1', *common]) == 0
    doc2 = json.load(open(out / 'det.json'))
    assert doc2['results'][:4] == doc['results'] and len(doc2['results']) == 8
    new = {(r['name'], r['variant']): r for r in doc2['results'][4:]}
    assert 'features from cache' in new[('mcl', 'all')]['notes']
    assert 'features from cache' not in new[('random', 'all')]['notes']  # seed -> new weights
