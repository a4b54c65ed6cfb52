"""Selective search, SoCo's filters and fall-backs (tools/proposals), the proposals json (written by
tools/proposals, read by mcl_plugin.datasets.proposals) and ProposalImageDataset."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mcl_plugin.datasets import ProposalImageDataset
from mcl_plugin.datasets.proposals import load_proposals, parse_proposals
from tools.proposals import (ProposalFilter, SelectiveSearchConfig, build_proposals_json,
                             count_recalled, generate_proposals, opencv_selective_search,
                             partial_path, python_selective_search, summary_path)

#: three flat objects on a noisy background (xywh)
OBJECTS = np.array([[20, 30, 90, 70], [150, 20, 60, 110], [60, 130, 120, 50]], np.float32)


def scene(h=192, w=256, seed=0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    img = (100 + rng.randint(-12, 12, (h, w, 3))).astype(np.uint8)
    for (x, y, bw, bh), c in zip(OBJECTS.astype(int), [(40, 40, 220), (30, 200, 30),
                                                       (220, 160, 20)]):
        img[y:y + bh, x:x + bw] = c
    return img


def test_filters_and_fallbacks():
    f = ProposalFilter()  # aspect 1/3..3, sqrt(wh / WH) 0.3..0.8, sides >= 32
    W, H = 200, 200
    boxes = np.array([
        [0, 0, 100, 100],  # rel 0.5: kept
        [0, 0, 59, 60],  # rel 0.297: too small
        [0, 0, 161, 161],  # rel 0.805: too large
        [0, 0, 180, 59],  # aspect 3.05: too wide
        [0, 0, 150, 50],  # aspect 3.0, rel 0.433: kept
        [0, 0, 40, 31],  # side 31 < 32
    ], np.float32)
    assert f.mask(boxes, W, H).tolist() == [True, False, False, False, True, False]
    kept, fallback, n = f.apply(boxes, W, H)
    assert fallback == 'none' and n == 2 and kept.tolist() == boxes[[0, 4]].tolist()
    kept, fallback, n = f.apply(boxes[[1, 2, 3]], W, H)  # nothing passes: aspect-only
    assert fallback == 'ratio' and n == 0 and kept.tolist() == boxes[[1, 2]].tolist()
    kept, fallback, _ = f.apply(boxes[[3, 5]], W, H)  # not even that: the whole image
    assert fallback == 'whole_image' and kept.tolist() == [[0, 0, W, H]]
    assert f.apply(np.zeros((0, 4)), W, H)[1] == 'whole_image'
    # the official chain adds "sides >= 32, any aspect" before the whole image
    side = ProposalFilter(side_fallback=True)
    kept, fallback, n = side.apply(boxes[[3, 5]], W, H)
    assert fallback == 'side' and n == 0 and kept.tolist() == boxes[[3]].tolist()
    assert side.apply(boxes[[1]], W, H)[1] == 'ratio'  # earlier stages come first
    assert side.apply(boxes[[5]], W, H)[1] == 'whole_image'
    assert len(ProposalFilter(max_per_image=1).apply(boxes, W, H)[0]) == 1
    near = np.array([[0, 0, 100, 100], [2, 2, 100, 100], [50, 50, 100, 100]], np.float32)
    kept, _, n = ProposalFilter(max_overlap=0.8).apply(near, W, H)
    assert n == 3 and kept.tolist() == near[[0, 2]].tolist()  # IoU 0.92 dropped, 0.14 kept


def test_opencv_selective_search_finds_the_objects():
    img = scene()
    boxes = opencv_selective_search(img, SelectiveSearchConfig(mode='single'))
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and len(boxes) > 3
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 256).all()
    assert count_recalled(boxes, OBJECTS, 0.9) == 3
    # on a copy of at most 128 px, mapped back to the original pixels
    small = opencv_selective_search(img, SelectiveSearchConfig(mode='single', max_side=128))
    assert (small[:, 0] + small[:, 2] <= 256 + 1e-3).all() and small[:, 2:].max() > 128
    assert count_recalled(small, OBJECTS, 0.7) == 3
    with pytest.raises(ValueError, match='mode'):
        SelectiveSearchConfig(mode='slow')


def test_opencv_box_order_does_not_depend_on_earlier_images():
    """OpenCV ranks regions with C ``rand()``: the order of an image's boxes must not depend on
    what the process searched before (resumed, sharded and multi-process runs rely on it)."""
    cfg = SelectiveSearchConfig(mode='fast', max_side=96)
    first = opencv_selective_search(scene(seed=1), cfg)
    opencv_selective_search(scene(seed=2), cfg)
    np.testing.assert_array_equal(opencv_selective_search(scene(seed=1), cfg), first)


def test_python_selective_search_box_convention():
    pytest.importorskip('selectivesearch')  # benchmark-only dependency
    boxes = python_selective_search(scene(96, 128), min_size=50)
    assert len(boxes) >= 1 and (boxes[:, 2:] >= 1).all()
    # +1 makes a full-width region exactly the image width, like OpenCV's rects
    assert boxes[:, 2].max() <= 128 and boxes[:, 3].max() <= 96


def test_json_round_trip_coco_and_soco_formats():
    from pycocotools.coco import COCO
    records = [dict(file_name='a/x.jpg', width=256, height=192, boxes=OBJECTS.tolist(),
                    num_raw=50, num_filtered=3, fallback='none'),
               dict(file_name='b.jpg', width=64, height=48, boxes=[[0, 0, 64, 48]], num_raw=5,
                    num_filtered=0, fallback='whole_image')]
    data = build_proposals_json(records, dict(mode='fast'), dict(min_side=32))
    coco = COCO()
    coco.dataset = json.loads(json.dumps(data))
    coco.createIndex()  # pycocotools reads it as it is
    assert len(coco.getAnnIds(imgIds=[1])) == 3 and coco.imgs[2]['fallback'] == 'whole_image'
    table = parse_proposals(data)
    np.testing.assert_allclose(table['a/x.jpg']['boxes'], OBJECTS)
    assert table['b.jpg']['width'] == 64 and data['info']['generator'] == dict(mode='fast')
    soco = parse_proposals({'x.jpg': [[1, 2, 3, 4]], 'y.jpg': []})
    assert soco['x.jpg']['boxes'].shape == (1, 4) and soco['y.jpg']['width'] is None
    with pytest.raises(ValueError, match='not a proposals file'):
        parse_proposals([1, 2])


def write_images(root, names, size=(96, 72)):
    for i, name in enumerate(names):
        path = osp.join(root, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, cv2.resize(scene(seed=i), size))
    return [(osp.join(root, n), n) for n in names]


def test_generation_resumes_and_reports(tmp_path):
    items = write_images(str(tmp_path / 'img'), ['a.png', 'b.png', 'sub/c.png', 'd.png'])
    out = str(tmp_path / 'p.json')
    cfg = SelectiveSearchConfig(mode='single')
    filt = ProposalFilter(min_side=8)
    first = generate_proposals(items[:2], out, cfg, filt, keep_partial=True, log=lambda s: None)
    assert first['processed_now'] == 2 and osp.isfile(partial_path(out))
    logs = []
    summary = generate_proposals(items, out, cfg, filt, workers=2, log=logs.append)
    assert summary['resumed'] == 2 and summary['processed_now'] == 2 and summary['images'] == 4
    assert 'already done' in logs[0] and not osp.exists(partial_path(out))
    assert json.load(open(summary_path(out)))['images'] == 4
    table = load_proposals(out)
    assert list(table) == ['a.png', 'b.png', 'sub/c.png', 'd.png']  # input order
    for name, entry in table.items():
        assert len(entry['boxes']) >= 1 and (entry['width'], entry['height']) == (96, 72)
    assert sum(summary['fallbacks'].values()) == 4
    # a partial file made with other settings is refused
    generate_proposals(items[:1], out, cfg, filt, keep_partial=True, log=lambda s: None)
    with pytest.raises(ValueError, match='other settings'):
        generate_proposals(items, out, SelectiveSearchConfig(mode='fast'), filt,
                           log=lambda s: None)
    # unreadable images are reported, kept out of the json and retried next time
    bad = tmp_path / 'img' / 'bad.png'
    bad.write_bytes(b'not an image')
    summary = generate_proposals(items + [(str(bad), 'bad.png')], str(tmp_path / 'q.json'), cfg,
                                 filt, log=lambda s: None)
    assert summary['failed'] == 1 and summary['failed_files'] == ['bad.png']
    assert 'bad.png' not in load_proposals(str(tmp_path / 'q.json'))
    assert osp.exists(partial_path(str(tmp_path / 'q.json')))


def test_dataset_attaches_proposals_and_explains_mismatches(tmp_path):
    root = tmp_path / 'data'
    write_images(str(root / 'train'), ['a.png', 'sub/b.png', 'c.png'])
    (root / 'list.txt').write_text('a.png\nsub/b.png\nc.png\n')
    data = build_proposals_json([
        dict(file_name='a.png', width=96, height=72, boxes=[[10, 10, 30, 20], [0, 0, 50, 40]]),
        dict(file_name='sub/b.png', width=96, height=72, boxes=[]),
    ])
    (root / 'props.json').write_text(json.dumps(data))
    kw = dict(data_root=str(root), data_prefix='train', ann_file='list.txt',
              proposal_file='props.json')
    with pytest.raises(ValueError,
                       match=r"1 of the 3 images .* no entry .* not found, e\.g\. 'c\.png'"):
        ProposalImageDataset(**kw)
    ds = ProposalImageDataset(on_missing='skip', **kw)
    assert len(ds) == 2 and ds.num_missing == 1 and ds.num_empty == 1
    a, b = ds.get_data_info(0), ds.get_data_info(1)
    np.testing.assert_allclose(a['proposals'], [[10, 10, 40, 30], [0, 0, 50, 40]])  # xyxy
    assert a['proposal_img_size'] == (96, 72)
    np.testing.assert_allclose(b['proposals'], [[0, 0, 96, 72]])  # empty -> whole image
    ds = ProposalImageDataset(on_missing='whole_image', **kw)
    assert len(ds) == 3 and np.isinf(ds.get_data_info(2)['proposals'][0, 2:]).all()
    with pytest.raises(FileNotFoundError, match='generate_proposals.py'):
        ProposalImageDataset(**dict(kw, proposal_file='nope.json'))


def test_dataset_reads_the_official_json(tmp_path):
    """SoCo's json: keys are base names without extension (its filter_ss_proposals_json.py),
    no sizes, possibly empty lists (SoCo then uses the whole image)."""
    root = tmp_path / 'data'
    write_images(str(root / 'train'), ['a.png', 'sub/b.png', 'c.png'])
    official = {'a': [[1, 1, 20, 20], [0, 0, 40, 30]], 'b': [], 'c': [[2, 2, 30, 30]]}
    (root / 'soco.json').write_text(json.dumps(official))
    kw = dict(data_root=str(root), data_prefix='train', proposal_file='soco.json')
    ds = ProposalImageDataset(**kw)
    assert len(ds) == 3 and ds.proposal_format == 'soco_official' and ds.num_empty == 1
    info = {osp.basename(d['img_path']): d for d in map(ds.get_data_info, range(3))}
    np.testing.assert_allclose(info['a.png']['proposals'], [[1, 1, 21, 21], [0, 0, 40, 30]])
    assert 'proposal_img_size' not in info['a.png']
    assert np.isinf(info['b.png']['proposals'][0, 2:]).all()  # empty: the whole image


def test_dataset_refuses_mismatched_keys_with_examples(tmp_path):
    root = tmp_path / 'data'
    write_images(str(root / 'train'), ['a.png', 'sub/b.png', 'c.png'])
    kw = dict(data_root=str(root), data_prefix='train')
    # official format but keys with their extension: every image misses -> refused in every
    # mode, naming the keys looked up and the file's keys
    (root / 'ext.json').write_text(json.dumps({'a.png': [[1, 1, 20, 20]], 'b.png': [],
                                               'c.png': [[2, 2, 30, 30]]}))
    for mode in ('error', 'whole_image', 'skip'):
        with pytest.raises(ValueError) as e:
            ProposalImageDataset(proposal_file='ext.json', on_missing=mode, **kw)
        msg = str(e.value)
        assert 'not one of the 3 images' in msg and 'base name without extension' in msg
        assert "not found, e.g. 'a', 'c', 'b';" in msg  # the folder scan's order
        assert "keys in the file (3), e.g. 'a.png', 'b.png', 'c.png'" in msg
    # our format with base names instead of relative paths: 'sub/b.png' misses
    data = build_proposals_json([dict(file_name=n, width=96, height=72, boxes=[[0, 0, 9, 9]])
                                 for n in ('a.png', 'b.png', 'c.png')])
    (root / 'ours.json').write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"1 of the 3 images .*'sub/b\.png'.*'b\.png'.*"
                       'another key form'):
        ProposalImageDataset(proposal_file='ours.json', **kw)
    # the whole-image fall-back is an explicit opt-in, counted
    ds = ProposalImageDataset(proposal_file='ours.json', on_missing='whole_image', **kw)
    assert len(ds) == 3 and ds.num_missing == 1
    # base names that two images share cannot be looked up in the official format
    write_images(str(root / 'train'), ['sub/a.jpg'])
    (root / 'soco.json').write_text(json.dumps({'a': [], 'b': [], 'c': []}))
    with pytest.raises(ValueError, match=r"share a key .*'a\.png' and 'sub/a\.jpg' -> 'a'"):
        ProposalImageDataset(proposal_file='soco.json', **kw)


def test_dataset_pipeline_end_to_end(tmp_path):
    """Decoded image + SoCoViews: the proposal sizes are checked against the image."""
    root = tmp_path / 'data'
    write_images(str(root / 'train'), ['a.png'])
    data = build_proposals_json([dict(file_name='a.png', width=96, height=72,
                                      boxes=[[10, 10, 40, 30]])])
    (root / 'ok.json').write_text(json.dumps(data))
    data['images'][0]['width'] = 100
    (root / 'bad.json').write_text(json.dumps(data))
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='SoCoViews', v1_size=64, v2_size=64, v3_size=32, seed=0),
                dict(type='PackSoCoInputs')]
    ds = ProposalImageDataset(data_root=str(root), data_prefix='train', proposal_file='ok.json',
                              pipeline=pipeline)
    out = ds[0]
    assert [tuple(x.shape) for x in out['inputs']] == [(3, 64, 64), (3, 64, 64), (3, 32, 32)]
    assert out['data_samples'].view_boxes.shape == (3, 4, 4)
    bad = ProposalImageDataset(data_root=str(root), data_prefix='train',
                               proposal_file='bad.json', pipeline=pipeline)
    with pytest.raises(ValueError, match='made on a 100x72 image but the loaded image is 96x72'):
        bad[0]
