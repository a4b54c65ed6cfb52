"""Bad input through ``UnlabeledImageDataset`` and the real CPU-demo pipelines.

Every case either works, with the output asserted, or raises an error that names the file (or
folder) and the fix; files skipped by ``check_images=True`` are counted and logged.

* image modes (grayscale, RGBA, LA, palette, 1-bit, 16-bit gray and RGB PNGs): decoded by the
  demo's ``LoadImageFromFile`` (OpenCV, ``color``) to ``H x W x 3`` uint8 BGR: gray
  replicated, alpha dropped (not composited), palette looked up, 16-bit reduced to the high
  byte. The whole MCL pipeline then gives its ``2 x S`` uint8 views.
* images smaller than the crop and than the montage tile (1x1, 2x3, 7x5 px): every demo
  pipeline (MCL, DetCo, PLRC, SoCo) up-samples them to its view sizes.
* empty, truncated (JPEG and PNG), corrupt and non-image files: loading raises
  ``UnreadableImageError`` with the path and ``check_images=True`` as the fix (also through a
  data-loader worker); with ``check_images=True`` they are dropped, counted and logged. The
  check decodes like the pipeline: a PNG without its final chunk opens in PIL but not in
  OpenCV and must be dropped (PIL-based checking kept it, and training crashed later).
* an empty folder, a folder without images, a folder of only unreadable images: errors naming
  the folder / list and ``tools/prepare_data.py``.
* a batch smaller than a montage needs (1 or 2 images for the demo's 16-tile level-2
  montage): padded with repeats of the batch's images, every image present at every level,
  finite loss; ``remainder='error'`` refuses with the rule in the message.
"""
import io
import json
import logging
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mcl_plugin.datasets import ProposalImageDataset, UnlabeledImageDataset, UnreadableImageError
from mcl_plugin.datasets import unlabeled as unlabeled_module

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMOS = dict(
    mcl='configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py',
    detco='configs/detco/detco_r18_1xb8-coslr-300i_cpu-demo_pretrain.py',
    plrc='configs/plrc/plrc_r18_1xb8-coslr-300i_cpu-demo_pretrain.py',
    soco='configs/soco/soco_r18-fpn_1xb8-lars-coslr-300i_cpu-demo_pretrain.py',
)


@pytest.fixture(scope='module')
def demo_cfgs() -> Dict[str, Config]:
    return {name: Config.fromfile(osp.join(REPO, path)) for name, path in DEMOS.items()}


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def _dataset(folder, cfg: Config, **kwargs) -> UnlabeledImageDataset:
    """The demo's pipeline on ``folder`` (SoCo: whole-image and half-image proposals)."""
    pipeline = cfg.train_dataloader.dataset.pipeline
    if cfg.model.type != 'SoCo':
        return UnlabeledImageDataset(data_prefix=str(folder), pipeline=pipeline, **kwargs)
    table = {}
    for path in sorted(folder.iterdir()):
        w, h = Image.open(path).size
        table[path.stem] = [[0, 0, w, h], [0, 0, max(1, w // 2), h]]  # official keys
    props = folder.parent / 'proposals.json'
    props.write_text(json.dumps(table))
    return ProposalImageDataset(data_prefix=str(folder), proposal_file=str(props),
                                pipeline=pipeline, **kwargs)


# ---------------------------------------------------------------------------------- image modes
def _mode_case(kind: str, path) -> np.ndarray:
    """Writes a 40x50 image of ``kind`` to ``path``; returns the expected decoded BGR array."""
    rgb = _rgb(40, 50)
    if kind == 'gray':
        Image.fromarray(rgb[..., 0]).save(path)
        return np.repeat(rgb[..., :1], 3, axis=2)
    if kind == 'rgba':  # alpha varies over the image and is ignored
        Image.fromarray(np.dstack([rgb, rgb[..., 1:2]])).save(path)
        return rgb[..., ::-1]
    if kind == 'gray_alpha':
        Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), mode='LA').save(path)
        return np.repeat(rgb[..., :1], 3, axis=2)
    if kind == 'palette':
        img = Image.fromarray(rgb).quantize(colors=16)
        img.save(path)
        return np.asarray(img.convert('RGB'))[..., ::-1]
    if kind == 'bilevel':
        Image.fromarray(rgb[..., 0] > 127).save(path)
        return np.repeat(np.where(rgb[..., :1] > 127, 255, 0).astype(np.uint8), 3, axis=2)
    if kind == 'gray16':
        values = rgb[..., 0].astype(np.uint16) * 257 + rgb[..., 1] % 2
        Image.fromarray(values).save(path)
        assert Image.open(path).mode == 'I;16'
        return np.repeat((values >> 8).astype(np.uint8)[..., None], 3, axis=2)
    if kind == 'rgb16':
        values = rgb.astype(np.uint16) * 256 + 255
        assert cv2.imwrite(str(path), values[..., ::-1])  # cv2 writes BGR
        return (values >> 8).astype(np.uint8)[..., ::-1]
    raise KeyError(kind)


@pytest.mark.parametrize('kind', ['gray', 'rgba', 'gray_alpha', 'palette', 'bilevel', 'gray16',
                                  'rgb16'])
def test_image_modes_decode_to_three_channel_uint8(kind, tmp_path, demo_cfgs):
    folder = tmp_path / 'img'
    folder.mkdir()
    expected = _mode_case(kind, folder / f'{kind}.png')
    cfg = demo_cfgs['mcl']
    load = UnlabeledImageDataset(data_prefix=str(folder),
                                 pipeline=cfg.train_dataloader.dataset.pipeline[:1])
    img = load[0]['img']
    assert img.shape == (40, 50, 3) and img.dtype == np.uint8
    assert np.array_equal(img, expected)
    views = _dataset(folder, cfg)[0]['inputs']
    assert len(views) == 2 * cfg.model.num_levels
    for v in views:
        assert v.shape == (3, 128, 128) and v.dtype == torch.uint8


# ---------------------------------------------------------------------------------- tiny images
TINY = [(1, 1), (2, 3), (7, 5)]  # (h, w): smaller than every crop and every montage tile


def _expect_views(name: str, out: dict) -> None:
    shapes = [tuple(v.shape) for v in out['inputs']]
    assert all(v.dtype == torch.uint8 for v in out['inputs'])
    if name == 'mcl':  # S = 3 levels x 2 branches of 128-px views (level-2 tiles are 32 px)
        assert shapes == [(3, 128, 128)] * 6
    elif name == 'detco':  # 2 global 112-px views, 2 sets of 9 jigsaw patches of 24 px
        assert shapes == [(3, 112, 112)] * 2 + [(3, 24, 24)] * 18
    elif name == 'plrc':  # 2 views + the teacher crop of 96 px; 24x24 region maps of the 2 views
        sample = out['data_samples']
        assert shapes == [(3, 96, 96)] * 3
        assert tuple(sample.region_masks.shape) == (2, 24, 24)
        assert np.asarray(sample.common_regions).any()
    elif name == 'soco':  # V1, V2 128 px, V3 64 px; boxes inside their views
        sample = out['data_samples']
        assert shapes == [(3, 128, 128), (3, 128, 128), (3, 64, 64)]
        boxes = sample.view_boxes
        assert torch.isfinite(boxes).all()
        for view, size in enumerate((128, 128, 64)):
            b = boxes[view]
            assert (b >= -1e-3).all() and (b <= size + 1e-3).all()
            assert ((b[:, 2] - b[:, 0]) > 0).all() and ((b[:, 3] - b[:, 1]) > 0).all()


@pytest.mark.parametrize('name', sorted(DEMOS))
def test_images_smaller_than_crop_and_tile_go_through_every_pipeline(name, tmp_path, demo_cfgs):
    folder = tmp_path / 'img'
    folder.mkdir()
    for i, (h, w) in enumerate(TINY):
        Image.fromarray(_rgb(h, w, seed=i)).save(folder / f'tiny_{h}x{w}.png')
    ds = _dataset(folder, demo_cfgs[name])
    assert len(ds) == len(TINY)
    np.random.seed(0)
    for i in range(len(ds)):
        for _ in range(3):  # random crops, flips and jitters differ per draw
            _expect_views(name, ds[i])


# ---------------------------------------------------------------------------------- unreadable
def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, format='JPEG')
    return buf.getvalue()


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, format='PNG')
    return buf.getvalue()


BAD = {
    'zero.jpg': (lambda: b'', 'is empty (0 bytes)'),
    'truncated.jpg': (lambda: _jpeg_bytes()[:len(_jpeg_bytes()) // 2], 'cannot be decoded'),
    # no IEND chunk: PIL decodes it, OpenCV (the pipeline's decoder) does not
    'no_end.png': (lambda: _png_bytes()[:-12], 'cannot be decoded'),
    'garbage.png': (lambda: b'\x89PNG\r\n\x1a\n' + bytes(range(256)) * 2, 'cannot be decoded'),
    'text.jpg': (lambda: b'<html>not an image</html>', 'cannot be decoded'),
}


@pytest.fixture
def logged(monkeypatch) -> List[tuple]:
    records: List[tuple] = []
    monkeypatch.setattr(unlabeled_module, 'print_log',
                        lambda msg, logger=None, level=logging.INFO: records.append((msg, level)))
    return records


@pytest.mark.parametrize('bad', sorted(BAD))
def test_unreadable_file_raises_with_name_and_fix_or_is_skipped_and_logged(
        bad, tmp_path, demo_cfgs, logged):
    folder = tmp_path / 'img'
    folder.mkdir()
    Image.fromarray(_rgb(30, 40)).save(folder / 'good.png')
    make, reason = BAD[bad]
    (folder / bad).write_bytes(make())
    if bad == 'no_end.png':
        with Image.open(folder / bad) as img:
            img.load()  # PIL accepts it: a PIL-based check would have kept it
    pipeline = demo_cfgs['mcl'].train_dataloader.dataset.pipeline

    lazy = UnlabeledImageDataset(data_prefix=str(folder), pipeline=pipeline)
    names = [osp.basename(lazy.get_data_info(i)['img_path']) for i in range(len(lazy))]
    with pytest.raises(UnreadableImageError) as err:
        lazy[names.index(bad)]
    msg = str(err.value)
    assert str(folder / bad) in msg and reason in msg and 'check_images=True' in msg
    assert len(lazy[names.index('good.png')]['inputs']) == 6

    checked = UnlabeledImageDataset(data_prefix=str(folder), pipeline=pipeline,
                                    check_images=True)
    assert len(checked) == 1 and checked.num_unreadable == 1
    assert checked.unreadable_files == [str(folder / bad)]
    assert len(checked[0]['inputs']) == 6
    assert len(logged) == 1
    msg, level = logged[0]
    assert level == logging.WARNING and 'skipped 1 of 2' in msg
    assert str(folder / bad) in msg and reason in msg


def test_unreadable_file_error_survives_a_loader_worker(tmp_path, demo_cfgs):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    (tmp_path / 'zero.jpg').write_bytes(b'')
    ds = UnlabeledImageDataset(data_prefix=str(tmp_path),
                               pipeline=demo_cfgs['mcl'].train_dataloader.dataset.pipeline)
    loader = DataLoader(ds, batch_size=1, num_workers=1, collate_fn=pseudo_collate)
    batches = iter(loader)
    try:
        with pytest.raises(UnreadableImageError, match=r'zero\.jpg.*is empty.*check_images=True'):
            next(batches)
    finally:
        batches._shutdown_workers()  # now, not when the iterator is garbage-collected


def test_a_pipeline_error_on_a_good_image_is_not_blamed_on_the_file(tmp_path):
    Image.fromarray(_rgb(8, 8)).save(tmp_path / 'ok.png')

    def broken(results):
        raise KeyError('a transform bug')

    ds = UnlabeledImageDataset(data_prefix=str(tmp_path),
                               pipeline=[dict(type='LoadImageFromFile'), broken])
    with pytest.raises(KeyError, match='a transform bug'):
        ds[0]


# ---------------------------------------------------------------------------------- empty input
def test_empty_folder_with_the_demo_dataset_config(tmp_path, demo_cfgs):
    from mmengine.registry import init_default_scope

    from mcl_plugin.registry import DATASETS
    init_default_scope('mcl_plugin')
    empty = tmp_path / 'pretrain'
    (empty / 'train').mkdir(parents=True)
    ds_cfg = demo_cfgs['mcl'].train_dataloader.dataset.copy()
    ds_cfg.data_root = str(empty)
    # the demo reads meta/train.txt, which an empty data folder lacks
    with pytest.raises(FileNotFoundError) as err:
        DATASETS.build(ds_cfg)
    assert str(empty / 'meta' / 'train.txt') in str(err.value)
    assert 'tools/prepare_data.py' in str(err.value)
    # scanning the folder instead: nothing but a note
    (empty / 'train' / 'README.txt').write_text('images go here')
    ds_cfg.ann_file = ''
    with pytest.raises(ValueError) as err:
        DATASETS.build(ds_cfg)
    assert str(empty / 'train') in str(err.value) and 'tools/prepare_data.py' in str(err.value)
    # only unreadable images, found by check_images
    (empty / 'train' / 'a.jpg').write_bytes(b'')
    (empty / 'train' / 'b.png').write_bytes(b'GIF89a')
    ds_cfg.check_images = True
    with pytest.raises(ValueError, match=r'None of the 2 images.*prepare_data'):
        DATASETS.build(ds_cfg)


# ---------------------------------------------------------------------------------- small batch
@pytest.mark.parametrize('batch', [1, 2])
def test_batch_smaller_than_a_montage(batch, tmp_path, demo_cfgs, message_hub):
    """The demo (S = 3) needs 16 images to fill a level-2 montage; 1 or 2 are padded."""
    from mmengine.dataset import default_collate

    from mcl_plugin.registry import MODELS
    cfg = demo_cfgs['mcl']
    for i in range(batch):
        Image.fromarray(_rgb(60 + 10 * i, 80, seed=i)).save(tmp_path / f'{i}.png')
    ds = UnlabeledImageDataset(data_prefix=str(tmp_path),
                               pipeline=cfg.train_dataloader.dataset.pipeline)
    data = default_collate([ds[i] for i in range(batch)])
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(data, True)
    for branch in model.assemble(data['inputs']):
        assert branch.num_padded == [0, 4 - batch, 16 - batch]
        for s in range(3):
            assert set(branch.src[branch.level_slice(s)].tolist()) == set(range(batch)), s
    losses = model(**data, mode='loss')
    for key in ('loss_level0', 'loss_level1', 'loss_level2'):
        assert torch.isfinite(losses[key]), key
    model.assembler.remainder = 'error'
    with pytest.raises(ValueError, match=r'not fill level-1 montages.*divisible by 4\*\*level'):
        model(**data, mode='loss')
