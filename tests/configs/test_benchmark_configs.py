"""The downstream-task configs of the papers (configs/benchmarks/, docs/downstream.md): every one
loads and builds its model on CPU in its own package's registry without loading weights, the
twins differ from their protocol config in the initialisation only, and the recipe numbers
(schedules, learning rates, data splits, frozen stages) are pinned, so that a drifting config
fails here. The VOC and low-data COCO datasets are built from tiny real files."""
import copy
import json
import os.path as osp
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(REPO, 'configs', 'benchmarks', 'mmdet')
CLS = osp.join(REPO, 'configs', 'benchmarks', 'mmpretrain')

VOC = 'faster-rcnn_r50-c4_syncbn_24k_voc0712'
LOW = {p: f'retinanet_r50-fpn_syncbn_12k_coco-{p}pct' for p in (1, 5, 10)}
LVIS = 'mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_lvis-v1'
CITY = 'mask-rcnn_r50-fpn_syncbn-4conv1fc_24k_cityscapes'
PROTOCOLS = [VOC, *LOW.values(), LVIS, CITY]
DET_CONFIGS = [f'{p}{t}' for p in PROTOCOLS for t in ('', '_random-init', '_supervised')]
LINEAR = 'resnet50_8xb32-linear-lr10-steplr-100e_in1k'
ALL = [osp.join(DET, f'{n}.py') for n in DET_CONFIGS] + [osp.join(CLS, f'{LINEAR}.py')]
TORCHVISION = dict(type='Pretrained', checkpoint='torchvision://resnet50')


def _cfg(name, folder=DET):
    return Config.fromfile(osp.join(folder, f'{name}.py'))


def _registry(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    return MODELS


def _build(cfg):
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return _registry(cfg.default_scope).build(copy.deepcopy(cfg.model))


def _init_cfgs(node, path='model'):
    """Every ``init_cfg`` in a config tree, by path."""
    found = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'init_cfg':
                found[f'{path}.init_cfg'] = value
            else:
                found.update(_init_cfgs(value, f'{path}.{key}'))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found.update(_init_cfgs(value, f'{path}[{i}]'))
    return found


def _pretrained(node):
    """The ``Pretrained`` init_cfgs of a config tree, by path."""
    out = {}
    for path, init in _init_cfgs(node).items():
        for one in init if isinstance(init, list) else [init]:
            if isinstance(one, dict) and one.get('type') == 'Pretrained':
                out[path] = {k: v for k, v in one.items() if k != '_delete_'}
    return out


def _strip_init(node):
    if isinstance(node, dict):
        return {k: _strip_init(v) for k, v in node.items() if k != 'init_cfg'}
    if isinstance(node, (list, tuple)):
        return [_strip_init(v) for v in node]
    return node


def _plain(cfg):
    return json.loads(json.dumps(cfg.to_dict() if isinstance(cfg, Config) else cfg,
                                 default=str))


@pytest.mark.parametrize('path', ALL, ids=[osp.relpath(p, REPO) for p in ALL])
def test_config_loads_and_builds_without_weights(path):
    cfg = Config.fromfile(path)
    assert 'mcl_plugin' in cfg.custom_imports['imports']
    assert cfg.get('load_from') is None  # weights are passed on the command line
    model = _build(cfg)  # built, never init_weights(): no download, no checkpoint read
    assert sum(p.numel() for p in model.parameters()) > 20e6  # ResNet-50 based
    pretrained = _pretrained(cfg.model)
    name = osp.basename(path)
    if name.endswith('_supervised.py'):
        assert pretrained and all(v == TORCHVISION for v in pretrained.values()), pretrained
    elif '/mmpretrain/' in path.replace(osp.sep, '/'):
        assert pretrained == {'model.backbone.init_cfg': dict(
            type='Pretrained', checkpoint='', prefix='backbone.')}
    else:  # protocol configs and random-init twins: nothing pre-trained at init
        assert not pretrained, pretrained


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_twins_differ_only_in_the_initialisation(protocol):
    base = _plain(_cfg(protocol))
    for twin in ('_random-init', '_supervised'):
        other = _plain(_cfg(protocol + twin))
        base.pop('filename', None), other.pop('filename', None)
        assert _strip_init(other) == _strip_init(base), twin


def _two_stage_common(cfg):
    """SyncBN everywhere, all stages trainable, nothing in eval mode."""
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'
    assert cfg.model.backbone.frozen_stages == -1
    assert cfg.model.backbone.norm_eval is False


def test_voc_recipe():
    cfg = _cfg(VOC)
    _two_stage_common(cfg)
    m = cfg.model
    assert m.type == 'FasterRCNN' and m.backbone.style == 'pytorch'
    assert m.data_preprocessor.bgr_to_rgb and m.data_preprocessor.std != [1.0, 1.0, 1.0]
    sh = m.roi_head.shared_head
    assert (sh.type, sh.norm_cfg.type, sh.norm_eval, sh.style) == \
        ('ResLayerExtraNorm', 'SyncBN', False, 'pytorch')
    assert m.roi_head.bbox_head.num_classes == 20
    assert 'mask_head' not in m.roi_head
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 24000
    warm, steps = cfg.param_scheduler
    assert (warm.type, warm.end, warm.start_factor) == ('LinearLR', 100, 0.001)
    assert (steps.type, steps.milestones, steps.end) == ('MultiStepLR', [18000, 22000], 24000)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.02, 0.9, 1e-4)
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0
    assert cfg.train_dataloader.batch_size * 8 == 16 == cfg.auto_scale_lr.base_batch_size
    resize = [t for t in cfg.train_dataloader.dataset.datasets[0].pipeline
              if t.type == 'RandomChoiceResize'][0]
    assert [s for _, s in resize.scales] == list(range(480, 801, 32))
    assert all(lng == 1333 for lng, _ in resize.scales)
    test_resize = [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize'][0]
    assert tuple(test_resize.scale) == (1333, 800)
    assert [d.ann_file for d in cfg.train_dataloader.dataset.datasets] == \
        ['VOC2007/ImageSets/Main/trainval.txt', 'VOC2012/ImageSets/Main/trainval.txt']
    assert cfg.test_dataloader.dataset.ann_file == 'VOC2007/ImageSets/Main/test.txt'
    ev = cfg.test_evaluator
    assert (ev.type, ev.eval_mode) == ('VOCMetric', '11points')
    assert [round(t, 2) for t in ev.iou_thrs] == [round(0.5 + 0.05 * i, 2) for i in range(10)]


def _write_voc(root, year, names):
    """A VOCdevkit/VOC<year> with real-format XML annotations and JPEG images."""
    from PIL import Image
    base = root / f'VOC{year}'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / 'ImageSets/Main/trainval.txt').write_text(''.join(f'{n}\n' for n in names))
    for i, n in enumerate(names):
        Image.new('RGB', (200, 150), (i * 40, 90, 160)).save(base / 'JPEGImages' / f'{n}.jpg')
        ann = ET.Element('annotation')
        size = ET.SubElement(ann, 'size')
        for k, v in (('width', 200), ('height', 150), ('depth', 3)):
            ET.SubElement(size, k).text = str(v)
        obj = ET.SubElement(ann, 'object')
        ET.SubElement(obj, 'name').text = 'dog'
        ET.SubElement(obj, 'difficult').text = '0'
        box = ET.SubElement(obj, 'bndbox')
        for k, v in (('xmin', 20), ('ymin', 30), ('xmax', 150), ('ymax', 140)):
            ET.SubElement(box, k).text = str(v)
        ET.ElementTree(ann).write(base / 'Annotations' / f'{n}.xml')


def test_voc_train_set_concatenates_2007_and_2012(tmp_path):
    """The VOC07+12 training set builds from VOCdevkit files, has one metainfo with the 20 VOC
    classes (mmdet's own 18k config, without ignore_keys, gets a list of two), and the
    pipeline gives a multi-scale image."""
    import mmdet
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    _write_voc(tmp_path, 2007, ['000005', '000007'])
    _write_voc(tmp_path, 2012, ['2008_000008'])
    mmdet_base = Config.fromfile(
        osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'pascal_voc',
                 'faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py'))
    built = {}
    for key, cfg in (('ours', _cfg(VOC)), ('mmdet', mmdet_base)):
        ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
        for d in ds_cfg.datasets:
            d.data_root = str(tmp_path)
        with DefaultScope.overwrite_default_scope('mmdet'):
            built[key] = DATASETS.build(ds_cfg)
    ds = built['ours']
    assert len(ds) == 3
    assert isinstance(ds.metainfo, dict) and len(ds.metainfo['classes']) == 20
    assert isinstance(built['mmdet'].metainfo, list)
    with DefaultScope.overwrite_default_scope('mmdet'):
        sample = ds[2]
    assert sample['data_samples'].gt_instances.bboxes.shape[0] == 1
    assert min(sample['inputs'].shape[1:]) in range(480, 801, 32)


@pytest.mark.parametrize('pct', sorted(LOW))
def test_low_data_retinanet_recipe(pct):
    cfg = _cfg(LOW[pct])
    one_x = _cfg('retinanet_r50-fpn_syncbn_1x_coco')
    assert _plain(cfg.model) == _plain(one_x.model)  # the RetinaNet protocol, unchanged
    from tools.data_builder.split_coco import split_name
    assert cfg.train_dataloader.dataset.ann_file == \
        'annotations/' + split_name('instances_train2017.json', pct, 0)
    assert cfg.val_dataloader.dataset.ann_file == 'annotations/instances_val2017.json'
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 12000
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    warm, steps = cfg.param_scheduler
    assert (warm.type, warm.by_epoch, warm.end) == ('LinearLR', False, 500)
    assert (steps.milestones, steps.end, steps.by_epoch) == ([8000, 11000], 12000, False)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.lr, opt.momentum, opt.weight_decay) == (0.01, 0.9, 1e-4)
    assert cfg.train_dataloader.batch_size * 8 == 16
    for twin in ('_random-init', '_supervised'):
        assert _cfg(LOW[pct] + twin).train_dataloader.dataset.ann_file == \
            cfg.train_dataloader.dataset.ann_file


def test_low_data_config_trains_on_a_split_of_real_data(small_data, tmp_path):
    """split_coco.py output, read through the 1 % config's own dataset settings."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    from tools.data_builder.split_coco import write_splits
    register_all_modules(init_default_scope=False)
    root = Path(small_data) / 'objects_coco'
    src = tmp_path / 'annotations' / 'instances_train2017.json'
    src.parent.mkdir()
    src.write_text((root / 'annotations' / 'instances_train.json').read_text())
    write_splits(str(src), [1, 5, 10], 2, seed=1)
    coco = json.loads(src.read_text())
    classes = tuple(c['name'] for c in coco['categories'])
    sizes = {}
    for pct in (1, 10):
        ds_cfg = copy.deepcopy(_cfg(LOW[pct]).train_dataloader.dataset)
        ds_cfg.update(data_root=str(tmp_path), data_prefix=dict(img=str(root / 'train') + '/'),
                      metainfo=dict(classes=classes))
        with DefaultScope.overwrite_default_scope('mmdet'):
            ds = DATASETS.build(ds_cfg)
            sizes[pct] = len(ds)
            sample = ds[0]
        assert sample['data_samples'].gt_instances.bboxes.shape[0] > 0
        assert max(sample['inputs'].shape[1:]) <= 1333 and min(sample['inputs'].shape[1:]) <= 800
    n = len(coco['images'])
    assert sizes == {1: 1, 10: max(1, round(n * 0.1))}


def test_lvis_recipe():
    cfg = _cfg(LVIS)
    _two_stage_common(cfg)
    head = cfg.model.roi_head
    assert head.bbox_head.type == 'Shared4Conv1FCBBoxHead' and head.bbox_head.num_classes == 1203
    assert head.mask_head.num_classes == 1203
    assert cfg.model.test_cfg.rcnn.max_per_img == 300
    ds = cfg.train_dataloader.dataset
    assert (ds.type, ds.oversample_thr) == ('ClassBalancedDataset', 1e-3)
    assert ds.dataset.ann_file == 'annotations/lvis_v1_train.json'
    assert cfg.val_evaluator.type == 'LVISMetric'
    assert cfg.train_cfg.max_epochs == 12 and cfg.train_dataloader.batch_size * 8 == 16
    model = _build(cfg)
    assert model.roi_head.bbox_head.fc_cls.out_features == 1204  # 1203 + background


def test_cityscapes_recipe():
    cfg = _cfg(CITY)
    _two_stage_common(cfg)
    head = cfg.model.roi_head
    assert head.bbox_head.type == 'Shared4Conv1FCBBoxHead' and head.bbox_head.num_classes == 8
    assert cfg.load_from is None  # mmdet's base starts from a COCO detector: not here
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 24000
    warm, steps = cfg.param_scheduler
    assert (warm.end, steps.milestones, steps.by_epoch) == (1000, [18000], False)
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.train_dataloader.batch_size * 8 == 8 == cfg.auto_scale_lr.base_batch_size
    resize = [t for t in cfg.train_dataloader.dataset.dataset.pipeline
              if t.type == 'RandomChoiceResize'][0]
    assert [s for _, s in resize.scales] == list(range(800, 1025, 32))
    test_resize = [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize'][0]
    assert tuple(test_resize.scale) == (2048, 1024)
    assert {e.type for e in cfg.test_evaluator} == {'CocoMetric', 'CityScapesMetric'}


def test_linear_eval_recipe(tmp_path):
    cfg = _cfg(LINEAR, CLS)
    assert cfg.default_scope == 'mmpretrain'
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 10., 0.9, 0.)
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size * 8 == 256
    assert cfg.model.backbone.frozen_stages == 4 and cfg.model.backbone.norm_eval
    assert cfg.model.head.num_classes == 1000

    model = _build(cfg)
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)  # pre-trained statistics, never updated

    # the documented hand-over: init_cfg.checkpoint=PRETRAIN.pth takes its backbone.* keys
    src = _build(cfg)
    with torch.no_grad():
        for i, t in enumerate(src.backbone.state_dict().values()):
            if t.is_floating_point():
                t.copy_(torch.randn_like(t) + i)
    state = {f'backbone.{k}': v for k, v in src.backbone.state_dict().items()}
    state['projector.fc0.weight'] = torch.zeros(2, 2)  # pre-training-only keys are ignored
    ckpt = tmp_path / 'pretrain.pth'
    torch.save(dict(state_dict=state), ckpt)
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = _build(cfg)
    model.init_weights()
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k


def test_every_new_benchmark_config_is_covered():
    """A config added to these families without being listed here fails (so it gets its recipe
    test)."""
    import glob
    families = ('_voc0712', '_12k_coco-', '_lvis-v1', '_cityscapes')
    on_disk = sorted(osp.basename(p)[:-3] for p in glob.glob(osp.join(DET, '*.py'))
                     if any(f in osp.basename(p) for f in families))
    assert on_disk == sorted(DET_CONFIGS)
    assert sorted(osp.basename(p)[:-3] for p in glob.glob(osp.join(CLS, '*.py'))) == [LINEAR]


@pytest.mark.slow
def test_converter_fills_the_new_detectors(tmp_path):
    """tools/convert_to_mmdet.py's mapping onto these detectors: a C4 pre-training checkpoint
    fills the VOC Faster R-CNN's backbone and res5 head (the extra norm stays at init); an FPN one
    fills LVIS / Cityscapes Mask R-CNN backbone, FPN and the 4 shared convs, and the low-data
    RetinaNet's backbone."""
    import sys
    sys.path.insert(0, osp.join(REPO, 'tests', 'helpers'))
    from mcl_ckpt_factory import PretrainModel, TileHead, fpn, res5_head, resnet, save

    from mcl_plugin.converters.convert import convert_checkpoint

    c4 = PretrainModel(resnet(50, num_stages=3), None, res5_head(), with_ema=False)
    src = save(c4.state_dict(), str(tmp_path / 'c4.pth'))
    report = convert_checkpoint(src, None, osp.join(DET, f'{VOC}.py'))
    assert report.ok, report.format()
    assert report.module('backbone').complete
    head = report.module('roi_head.shared_head')
    assert head.matched and set(head.missing) == {k for k in head.target_keys if '.norm.' in k}

    r50 = PretrainModel(resnet(50), fpn([256, 512, 1024, 2048]), TileHead(), with_ema=False)
    src = save(r50.state_dict(), str(tmp_path / 'fpn.pth'))
    for name in (LVIS, CITY):
        report = convert_checkpoint(src, None, osp.join(DET, f'{name}.py'))
        assert report.ok, report.format()
        assert report.module('backbone').complete and report.module('neck').complete, name
        convs = [k for k in report.module('roi_head.bbox_head').matched if 'shared_convs' in k]
        assert len(convs) == 4 * 6, name
    report = convert_checkpoint(src, None, osp.join(DET, f'{LOW[1]}.py'))
    assert report.ok and report.module('backbone').complete, report.format()
