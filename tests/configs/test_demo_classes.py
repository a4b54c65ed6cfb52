"""The demo fine-tune config names the classes of ``data/objects_coco`` as
``tools/prepare_data.py`` writes them (the config cannot read ``classes.txt``)."""
import os.path as osp
import sys

import numpy as np
import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import DEMO  # noqa: E402


@pytest.fixture(scope='module')
def objects_coco(tmp_path_factory):
    """``objects_coco/`` as the full build of ``tools/prepare_data.py`` writes it, in about a
    second and without the Debian packages: the builder's own Tux Paint stamp collection (class
    from the stamp folder, photographic-stamp test) and its full-mode orchestration
    (:func:`tools.data_builder.build_all`) run on stand-ins: two noise "photos" cut out by an
    ellipse in the first folder of every class, and two noise backgrounds."""
    from PIL import Image

    from tools.data_builder import (STAMP_CLASSES, CopyrightIndex, DebPackage, Photo, Source,
                                    Sources, build_all, build_key, collect_stamps)
    tmp = tmp_path_factory.mktemp('objects_coco')
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    alpha = np.where((yy - 23.5)**2 + (xx - 23.5)**2 <= 23**2, 255, 0).astype(np.uint8)
    stamps = tmp / 'deb' / 'usr' / 'share' / 'tuxpaint' / 'stamps'
    for name, folders in STAMP_CLASSES.items():
        for i in range(2):  # one instance for each split
            rgb = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            path = stamps / folders[0] / f'{name}_{i}.png'
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.dstack([rgb, alpha]), 'RGBA').save(path)
    cutouts, _ = collect_stamps(
        DebPackage('tuxpaint-stamps-default', '0', tmp / 'deb', CopyrightIndex('')))
    assert len(cutouts) == 2 * len(STAMP_CLASSES)

    def photo(i):
        img = Image.fromarray(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8))
        return Photo(f'noise/bg{i}', Source('test', '0', f'bg{i}', 'CC0'), lambda: img,
                     background=True)

    settings = dict(seed=0, num_pretrain=1, num_train=2, num_val=1, obj_size=(160, 120))
    build_all(Sources('full', [photo(0), photo(1)], cutouts, {}), settings,
              build_key(settings, small=False), tmp / 'data')
    return tmp / 'data' / 'objects_coco'


def test_demo_classes_match_the_prepared_data(objects_coco):
    """The demo config cannot read data/objects_coco/classes.txt: keep the two in sync."""
    from mmengine.config import Config
    path = objects_coco / 'classes.txt'
    with open(path) as f:
        classes = tuple(line.strip() for line in f if line.strip())
    cfg = Config.fromfile(DEMO)
    assert tuple(cfg.classes) == classes
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == classes
    assert cfg.model.roi_head.bbox_head.num_classes == len(classes)
    assert cfg.model.roi_head.mask_head.num_classes == len(classes)
