"""tools/data_builder/split_coco.py: seeded low-data COCO subsets (MCL's 1 / 5 / 10 % RetinaNet
regimes). Determinism, fractions, disjoint folds, image / annotation consistency, kept
categories, the two pools, the command line, and the subset loading in mmdet's CocoDataset from
the real photos of ``prepare_data.py --small``."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.data_builder import split_coco as sc

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'data_builder' / 'split_coco.py'


def _synthetic(num_images=1000, num_empty=37, num_cats=12):
    """A COCO dict: ``num_images`` images in shuffled id order, the last ``num_empty`` ids
    without annotations, 1-3 annotations per other image, one category never used."""
    images = [dict(id=i, file_name=f'{i:06d}.jpg', width=64, height=48)
              for i in range(1, num_images + 1)]
    images = images[::2] + images[1::2]  # file order != id order
    anns, ann_id = [], 1
    for img in sorted(images, key=lambda x: x['id'])[:num_images - num_empty]:
        for j in range(1 + img['id'] % 3):
            anns.append(dict(id=ann_id, image_id=img['id'], category_id=1 + (img['id'] + j) %
                             (num_cats - 1), bbox=[1, 2, 10, 12], area=120, iscrowd=0,
                             segmentation=[[1, 2, 11, 2, 11, 14, 1, 14]]))
            ann_id += 1
    cats = [dict(id=c, name=f'c{c}', supercategory='x') for c in range(1, num_cats + 1)]
    return dict(info=dict(description='synthetic'), licenses=[dict(id=1, name='l')],
                images=images, annotations=anns, categories=cats)


def _ids(subset):
    return {img['id'] for img in subset['images']}


def _assert_consistent(subset, source):
    ids = _ids(subset)
    assert len(ids) == len(subset['images'])
    by_id = {img['id']: img for img in source['images']}
    for img in subset['images']:  # the same records as in the source
        assert img == by_id[img['id']]
    expected = [a for a in source['annotations'] if a['image_id'] in ids]
    assert subset['annotations'] == expected  # all of them, in the source order, unchanged
    assert subset['categories'] == source['categories']
    assert subset['licenses'] == source['licenses']


def test_same_seed_same_subset_other_seed_other_subset():
    coco = _synthetic()
    a = sc.make_subset(coco, 10, 2, seed=1)
    b = sc.make_subset(copy.deepcopy(coco), 10, 2, seed=1)
    assert json.dumps(a) == json.dumps(b)
    assert _ids(sc.make_subset(coco, 10, 2, seed=2)) != _ids(a)


def test_input_order_does_not_change_the_selection():
    coco = _synthetic()
    shuffled = copy.deepcopy(coco)
    shuffled['images'].reverse()
    shuffled['annotations'].reverse()
    for fold in range(3):
        assert _ids(sc.make_subset(coco, 5, fold, 7)) == _ids(sc.make_subset(shuffled, 5, fold, 7))


@pytest.mark.parametrize('percent,expected', [(1, 10), (5, 48), (10, 96), (0.5, 5), (100, 963)])
def test_fraction_of_the_annotated_pool(percent, expected):
    coco = _synthetic()  # 1000 images, 963 annotated
    subset = sc.make_subset(coco, percent, 0, seed=0)
    assert len(subset['images']) == expected == round(963 * percent / 100)
    assert all(any(a['image_id'] == i for a in subset['annotations']) for i in _ids(subset))
    _assert_consistent(subset, coco)
    rec = subset['info']['mcl_plugin_split']
    assert (rec['percent'], rec['fold'], rec['seed'], rec['pool']) == (percent, 0, 0, 'annotated')
    assert rec['num_pool_images'] == 963 and rec['num_images'] == expected
    assert subset['info']['description'] == 'synthetic'
    assert 'mcl_plugin_split' not in coco['info']  # the source is not modified


def test_pool_all_keeps_unannotated_images():
    coco = _synthetic()
    empty = set(range(964, 1001))
    subset = sc.make_subset(coco, 50, 0, seed=3, pool='all')
    assert len(subset['images']) == 500
    ids = _ids(subset)
    assert ids & empty  # some unannotated images were drawn ...
    assert not {a['image_id'] for a in subset['annotations']} & empty  # ... without annotations
    _assert_consistent(subset, coco)
    assert not _ids(sc.make_subset(coco, 50, 0, seed=3)) & empty  # never in the default pool


def test_folds_are_disjoint_and_exhaust_the_pool():
    coco = _synthetic()
    pool = set(sc.image_pool(coco))
    folds = [_ids(sc.make_subset(coco, 10, k, seed=5)) for k in range(10)]
    assert all(len(f) == 96 for f in folds)
    union = set().union(*folds)
    assert len(union) == 960 and union <= pool
    with pytest.raises(ValueError, match='10 disjoint folds'):
        sc.make_subset(coco, 10, 10, seed=5)


def test_fold_zero_is_nested_across_percentages():
    coco = _synthetic()
    one, five, ten = (_ids(sc.make_subset(coco, p, 0, seed=1)) for p in (1, 5, 10))
    assert one < five < ten


def test_invalid_input_is_rejected():
    coco = _synthetic(num_images=20, num_empty=0)
    with pytest.raises(ValueError, match='percent'):
        sc.make_subset(coco, 0, 0, 1)
    with pytest.raises(ValueError, match='percent'):
        sc.make_subset(coco, 120, 0, 1)
    with pytest.raises(ValueError, match='pool'):
        sc.make_subset(coco, 10, 0, 1, pool='labelled')
    bad = copy.deepcopy(coco)
    bad['annotations'][0]['image_id'] = 999
    with pytest.raises(ValueError, match='not in "images"'):
        sc.make_subset(bad, 10, 0, 1)
    dup = copy.deepcopy(coco)
    dup['images'].append(dict(dup['images'][0]))
    with pytest.raises(ValueError, match='duplicate'):
        sc.make_subset(dup, 10, 0, 1)


def test_names():
    assert sc.split_name('a/instances_train2017.json', 1, 0) == \
        'instances_train2017_1pct_fold0.json'
    assert sc.split_name('instances_train2017.json', 0.5, 3) == \
        'instances_train2017_0.5pct_fold3.json'


@pytest.fixture(scope='module')
def real_coco(small_data, tmp_path_factory):
    """The real photos' COCO set (train + val merged, so that there are 32 images), with the
    annotations of 4 images removed (unannotated images, as COCO train2017 has)."""
    root = Path(small_data) / 'objects_coco'
    train = json.loads((root / 'annotations' / 'instances_train.json').read_text())
    val = json.loads((root / 'annotations' / 'instances_val.json').read_text())
    offset = max(i['id'] for i in train['images'])
    aoff = max(a['id'] for a in train['annotations'])
    merged = copy.deepcopy(train)
    for img in val['images']:
        merged['images'].append(dict(img, id=img['id'] + offset, file_name='../val/' +
                                     img['file_name']))
    for ann in val['annotations']:
        merged['annotations'].append(dict(ann, id=ann['id'] + aoff,
                                          image_id=ann['image_id'] + offset))
    empty = {img['id'] for img in merged['images'][:4]}
    merged['annotations'] = [a for a in merged['annotations'] if a['image_id'] not in empty]
    out = tmp_path_factory.mktemp('split_src')
    path = out / 'instances_train2017.json'
    path.write_text(json.dumps(merged))
    return root, path, merged, empty


def test_cli_on_real_data_is_deterministic_and_consistent(real_coco, tmp_path):
    _, src, merged, empty = real_coco
    outs = []
    for run in ('a', 'b'):
        out = tmp_path / run
        out.mkdir()
        res = subprocess.run([sys.executable, str(TOOL), str(src), '--percents', '10', '25',
                              '--folds', '3', '--seed', '4', '--out-dir', str(out)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(f'instances_train2017_{p}pct_fold{k}.json' for p in (10, 25)
                           for k in range(3))
    for name in names:  # byte-identical for the same seed
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    pool = 32 - len(empty)
    for p in (10, 25):
        folds = [json.loads((outs[0] / f'instances_train2017_{p}pct_fold{k}.json').read_text())
                 for k in range(3)]
        for f in folds:
            assert len(f['images']) == round(pool * p / 100)
            assert not _ids(f) & empty
            _assert_consistent(f, merged)
            assert f['info']['mcl_plugin_split']['source']['name'] == 'instances_train2017.json'
        for i in range(3):
            for j in range(i + 1, 3):
                assert not _ids(folds[i]) & _ids(folds[j])


def test_cli_fails_before_writing_when_folds_do_not_fit(real_coco, tmp_path):
    _, src, _, _ = real_coco
    res = subprocess.run([sys.executable, str(TOOL), str(src), '--percents', '10', '50',
                          '--folds', '3', '--out-dir', str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and 'disjoint folds' in res.stderr
    assert not list(tmp_path.iterdir())


def test_subset_loads_in_mmdet_coco_dataset(real_coco, tmp_path):
    """What the low-data RetinaNet configs read: mmdet's CocoDataset over a written subset keeps
    exactly its images (all annotated) and instances."""
    from mmdet.datasets import CocoDataset
    root, src, merged, _ = real_coco
    (path, ) = sc.write_splits(str(src), [25], 1, seed=0, out_dir=str(tmp_path))
    subset = json.loads(Path(path).read_text())
    classes = tuple(c['name'] for c in merged['categories'])
    ds = CocoDataset(data_root=str(root), ann_file=path, data_prefix=dict(img='train/'),
                     metainfo=dict(classes=classes), filter_cfg=dict(filter_empty_gt=True),
                     pipeline=[])
    assert len(ds) == len(subset['images']) == 7
    assert {ds.get_data_info(i)['img_id'] for i in range(len(ds))} == _ids(subset)
    n_inst = sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds)))
    assert n_inst == len(subset['annotations'])
