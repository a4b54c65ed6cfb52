"""Tests of mcl_plugin.datasets.UnlabeledImageDataset."""
import json
import logging
import os.path as osp

import numpy as np
import pytest
from PIL import Image

import mcl_plugin.datasets  # noqa: F401  (registers the dataset)
from mcl_plugin.datasets import UnlabeledImageDataset
from mcl_plugin.datasets import unlabeled as unlabeled_module


def _image(path, size=(24, 16), fmt=None, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@pytest.fixture
def class_tree(tmp_path):
    """ImageNet-style folders with mixed extensions, a non-image and hidden files."""
    root = tmp_path / 'train'
    _image(root / 'n02' / 'b.JPEG', fmt='JPEG')
    _image(root / 'n02' / 'a.png')
    _image(root / 'n01' / 'deep' / 'c.webp', fmt='WEBP')
    _image(root / 'n01' / 'd.bmp')
    (root / 'n01' / 'notes.txt').write_text('not an image')
    _image(root / '.hidden' / 'e.jpg')
    _image(root / 'n01' / '.f.jpg')
    return root


def _rel(ds, root):
    return [osp.relpath(ds.get_data_info(i)['img_path'], root) for i in range(len(ds))]


def test_recursive_folder_scan_sorted(class_tree):
    ds = UnlabeledImageDataset(data_prefix=str(class_tree))
    assert _rel(ds, class_tree) == ['n01/d.bmp', 'n01/deep/c.webp', 'n02/a.png', 'n02/b.JPEG']
    assert [ds.get_data_info(i)['sample_idx'] for i in range(len(ds))] == [0, 1, 2, 3]
    assert set(ds.get_data_info(0)) == {'img_path', 'sample_idx'}


def test_data_root_joins_prefix_and_extensions_filter(class_tree):
    ds = UnlabeledImageDataset(data_root=str(class_tree.parent),
                               data_prefix=dict(img_path='train'),
                               extensions=('.png', '.bmp'))
    assert _rel(ds, class_tree) == ['n01/d.bmp', 'n02/a.png']
    assert ds.img_prefix == osp.join(str(class_tree.parent), 'train')


def test_flat_coco_folder(tmp_path):
    for name in ('000002.jpg', '000001.jpg'):
        _image(tmp_path / 'val2017' / name, fmt='JPEG')
    ds = UnlabeledImageDataset(data_root=str(tmp_path), data_prefix='val2017')
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(2)] == \
        ['000001.jpg', '000002.jpg']


def test_image_list_ignores_labels_comments_blank_lines(class_tree, tmp_path):
    ann = tmp_path / 'meta' / 'train.txt'
    ann.parent.mkdir()
    ann.write_text('# header\nn02/b.JPEG 1\n\nn01/d.bmp\n  n02/a.png 0  \n')
    ds = UnlabeledImageDataset(data_root=str(tmp_path),
                               ann_file='meta/train.txt',
                               data_prefix='train')
    assert _rel(ds, class_tree) == ['n02/b.JPEG', 'n01/d.bmp', 'n02/a.png']


def test_image_list_path_with_spaces(tmp_path):
    _image(tmp_path / 'img' / 'my photo.png')
    (tmp_path / 'list.txt').write_text('my photo.png 3\n')
    ds = UnlabeledImageDataset(ann_file=str(tmp_path / 'list.txt'),
                               data_prefix=str(tmp_path / 'img'))
    assert osp.basename(ds.get_data_info(0)['img_path']) == 'my photo.png'


def test_coco_json_ann_file(tmp_path):
    for name in ('x.jpg', 'y.jpg'):
        _image(tmp_path / 'train' / name, fmt='JPEG')
    coco = dict(images=[dict(id=1, file_name='y.jpg'),
                        dict(id=2, file_name='x.jpg')],
                annotations=[],
                categories=[])
    (tmp_path / 'instances_train.json').write_text(json.dumps(coco))
    ds = UnlabeledImageDataset(data_root=str(tmp_path),
                               ann_file='instances_train.json',
                               data_prefix=dict(img_path='train'))
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(2)] == ['y.jpg', 'x.jpg']


def test_coco_json_without_images_is_explained(tmp_path):
    (tmp_path / 'bad.json').write_text(json.dumps(dict(annotations=[])))
    with pytest.raises(ValueError, match=r'bad\.json.*"images"'):
        UnlabeledImageDataset(ann_file=str(tmp_path / 'bad.json'), data_prefix=str(tmp_path))


def test_empty_folder_error_names_folder_and_fix(tmp_path):
    (tmp_path / 'empty' / 'sub').mkdir(parents=True)
    (tmp_path / 'empty' / 'readme.txt').write_text('no images here')
    with pytest.raises(ValueError) as err:
        UnlabeledImageDataset(data_prefix=str(tmp_path / 'empty'))
    assert str(tmp_path / 'empty') in str(err.value)
    assert 'tools/prepare_data.py' in str(err.value)


def test_missing_folder_and_empty_list(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist.*prepare_data'):
        UnlabeledImageDataset(data_prefix=str(tmp_path / 'nope'))
    (tmp_path / 'list.txt').write_text('# nothing\n\n')
    with pytest.raises(ValueError, match=r'list\.txt.*lists no image'):
        UnlabeledImageDataset(ann_file=str(tmp_path / 'list.txt'), data_prefix=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r'ann_file .*missing\.txt'):
        UnlabeledImageDataset(ann_file=str(tmp_path / 'missing.txt'), data_prefix=str(tmp_path))


def test_missing_listed_file_names_file_and_list(class_tree, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('n02/a.png\nn02/gone.jpg\n')
    with pytest.raises(FileNotFoundError) as err:
        UnlabeledImageDataset(ann_file=str(ann), data_prefix=str(class_tree))
    assert 'gone.jpg' in str(err.value) and str(ann) in str(err.value)


def test_check_images_skips_counts_and_logs_unreadable(class_tree, monkeypatch):
    (class_tree / 'n01' / 'zero.jpg').write_bytes(b'')
    (class_tree / 'n02' / 'garbage.png').write_bytes(b'\x89PNG not really')
    good = _image(class_tree / 'n02' / 'trunc.jpg', size=(64, 64), fmt='JPEG')
    good.write_bytes(good.read_bytes()[:200])  # truncated JPEG: opens, fails to decode
    logged = []
    monkeypatch.setattr(unlabeled_module,
                        'print_log',
                        lambda msg, logger=None, level=logging.INFO: logged.append((msg, level)))

    lazy = UnlabeledImageDataset(data_prefix=str(class_tree))
    assert len(lazy) == 7 and lazy.num_unreadable == 0 and not logged  # no decoding by default

    ds = UnlabeledImageDataset(data_prefix=str(class_tree), check_images=True)
    assert len(ds) == 4
    assert ds.num_unreadable == 3
    assert sorted(osp.basename(p) for p in ds.unreadable_files) == \
        ['garbage.png', 'trunc.jpg', 'zero.jpg']
    assert len(logged) == 1
    msg, level = logged[0]
    assert level == logging.WARNING
    assert 'skipped 3 of 7' in msg and 'zero.jpg' in msg and 'garbage.png' in msg


def test_check_images_lists_at_most_ten_names(tmp_path, monkeypatch):
    _image(tmp_path / 'ok.png')
    for i in range(12):
        (tmp_path / f'bad{i:02d}.jpg').write_bytes(b'')
    logged = []
    monkeypatch.setattr(unlabeled_module,
                        'print_log',
                        lambda msg, logger=None, level=logging.INFO: logged.append(msg))
    ds = UnlabeledImageDataset(data_prefix=str(tmp_path), check_images=True)
    assert len(ds) == 1 and ds.num_unreadable == 12
    assert 'bad09.jpg' in logged[0] and 'bad10.jpg' not in logged[0]
    assert 'and 2 more' in logged[0]


def test_all_unreadable_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(unlabeled_module, 'print_log', lambda *a, **k: None)
    for name in ('a.jpg', 'b.png'):
        (tmp_path / name).write_bytes(b'')
    with pytest.raises(ValueError, match='None of the 2 images'):
        UnlabeledImageDataset(data_prefix=str(tmp_path), check_images=True)


def test_bad_data_prefix_type():
    with pytest.raises(TypeError, match='data_prefix'):
        UnlabeledImageDataset(data_prefix=dict(img='x'))


def test_build_from_registry_with_pipeline(class_tree):
    from mmengine.registry import init_default_scope

    from mcl_plugin.registry import DATASETS

    init_default_scope('mcl_plugin')
    ds = DATASETS.build(
        dict(type='UnlabeledImageDataset',
             data_root=str(class_tree.parent),
             data_prefix='train',
             pipeline=[dict(type='LoadImageFromFile')],
             metainfo=dict(note='unlabeled')))
    assert isinstance(ds, UnlabeledImageDataset)
    assert ds.metainfo['note'] == 'unlabeled'
    item = ds[0]
    assert item['img'].shape == (16, 24, 3) and item['sample_idx'] == 0


def test_symlink_loop_and_second_link_list_each_image_once(tmp_path, monkeypatch):
    """Issue 21 item 6: a link back to a parent listed 2 images as 82."""
    import os
    root = tmp_path / 'imgs'
    _image(root / 'a.jpg', fmt='JPEG')
    _image(root / 'sub' / 'b.jpg', fmt='JPEG')
    os.symlink(root, root / 'sub' / 'loop')  # sub/loop -> imgs (a cycle)
    os.symlink(root / 'sub', root / 'again')  # a second way into sub
    logged = []
    monkeypatch.setattr(unlabeled_module,
                        'print_log',
                        lambda msg, logger=None, level=logging.INFO: logged.append((msg, level)))
    ds = UnlabeledImageDataset(data_prefix=str(root))
    assert _rel(ds, root) == ['a.jpg', 'sub/b.jpg']
    assert len(logged) == 1 and 'symlink loop' in logged[0][0]
    assert logged[0][1] == logging.WARNING


def test_relative_paths_say_what_they_are_relative_to(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"'data/pretrain/train.txt' \(a relative path, "
                       r"looked up from the current folder .*data_root to an absolute path"):
        UnlabeledImageDataset(ann_file='data/pretrain/train.txt')
    with pytest.raises(FileNotFoundError, match='relative path, looked up from the current'):
        UnlabeledImageDataset(data_prefix='data/pretrain')


def test_check_images_drops_jpegs_that_decode_only_with_libjpeg_warnings(tmp_path, monkeypatch):
    """Issue 21 item 6: libjpeg decodes a corrupt JPEG, prints one stderr line, training goes on."""
    good = _image(tmp_path / 'imgs' / 'good.jpg', size=(128, 96), fmt='JPEG')
    data = good.read_bytes()
    # cut inside the entropy-coded data, then the end-of-image marker: libjpeg fills the rest
    (tmp_path / 'imgs' / 'bad.jpg').write_bytes(data[:len(data) // 2] + b'\xff\xd9')
    import mmcv
    assert mmcv.imfrombytes((tmp_path / 'imgs' / 'bad.jpg').read_bytes()) is not None  # decodes
    logged = []
    monkeypatch.setattr(unlabeled_module,
                        'print_log',
                        lambda msg, logger=None, level=logging.INFO: logged.append((msg, level)))
    ds = UnlabeledImageDataset(data_prefix=str(tmp_path / 'imgs'), check_images=True)
    assert _rel(ds, tmp_path / 'imgs') == ['good.jpg']
    assert ds.num_unreadable == 1 and 'bad.jpg' in logged[0][0]
    assert 'libjpeg warnings (1: Corrupt JPEG data: premature end of data segment)' in logged[0][0]
