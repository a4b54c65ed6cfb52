"""CheckedCocoDataset: a class list that does not match the annotation file is named at once
(issue 21: the tiny-test fine-tune config on --small data died with "need at least one array to
concatenate")."""
import os.path as osp

import pytest
from mmengine.config import Config

import mcl_plugin  # noqa: F401  registers CheckedCocoDataset in mmdet's registry

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'benchmarks', 'mmdet',
                'mask-rcnn_r18-fpn_bn-4conv1fc_tiny-test_objects-coco.py')


def _build(dataset_cfg):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    return DATASETS.build(dataset_cfg)


def test_the_fine_tune_config_on_other_classes_says_which(small_data):
    cfg = Config.fromfile(TINY).train_dataloader.dataset
    assert cfg.type == 'CheckedCocoDataset'
    cfg.data_root = str(small_data / 'objects_coco') + '/'
    classes = (small_data / 'objects_coco' / 'classes.txt').read_text().split()
    with pytest.raises(ValueError, match=r"has no category named \['bird'.*categories in the "
                       r"file: \['bottle'.*metainfo.classes=\"\[bottle,"):
        _build(cfg.copy())
    cfg.metainfo = dict(classes=tuple(classes))
    assert len(_build(cfg)) > 0
