"""Proposal shard directories (issue 22 item 4): tools/proposals/shards.py writes them
(deterministic, atomic, resumable per shard), mcl_plugin.datasets.proposals.ShardedProposals and
ProposalImageDataset read them lazily, one shard at a time. On the real photos of
``prepare_data.py --small`` (5 of them, selective search at <= 64 px)."""
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest

from mcl_plugin.datasets import ProposalImageDataset
from mcl_plugin.datasets.proposals import (ShardedProposals, load_proposals, read_shard,
                                           shard_entry)
from tools.proposals import (ProposalFilter, SelectiveSearchConfig, calibrate, compact_boxes,
                             generate_proposals, generate_sharded, shard_bytes)

CFG = SelectiveSearchConfig(mode='single', max_side=64)
FILT = ProposalFilter()
NAMES = 5


@pytest.fixture(scope='module')
def photos(small_data, tmp_path_factory):
    """The first 5 pre-training photos, their list file, and their proposals as one json."""
    root = small_data / 'pretrain'
    names = (root / 'meta' / 'train.txt').read_text().split()[:NAMES]
    items = [(str(root / 'train' / n), n) for n in names]
    tmp = tmp_path_factory.mktemp('shards')
    (tmp / 'list.txt').write_text('\n'.join(names) + '\n')
    out = str(tmp / 'props.json')
    generate_proposals(items, out, CFG, FILT, log=lambda s: None, progress=False)
    return dict(items=items, names=names, img_dir=str(root / 'train'), json=out,
                list=str(tmp / 'list.txt'))


def _mtimes(folder):
    return {n: os.stat(osp.join(folder, n)).st_mtime_ns for n in sorted(os.listdir(folder))
            if n.startswith('shard-')}


def _run(photos, out, **kw):
    logs = []
    summary = generate_sharded(photos['items'], str(out), CFG, FILT, shard_size=2,
                               log=logs.append, progress=False, **kw)
    return summary, logs


def test_shards_hold_the_json_boxes_and_resume_only_what_is_missing(photos, tmp_path):
    out = tmp_path / 'shards'
    summary, logs = _run(photos, out, max_shards=1, calibrate_images=2)
    assert (summary['shards'], summary['shards_written_now'], summary['complete']) == (3, 1, False)
    assert any('calibration on 2 image(s)' in line and 'ImageNet' in line for line in logs)
    assert summary['calibration']['images'] == 2
    with pytest.raises(ValueError, match=r'unfinished: 2 of 3 shards not written'):
        ShardedProposals(str(out))
    first = _mtimes(out)
    summary, logs = _run(photos, out)
    assert (summary['shards_written_now'], summary['complete'], summary['resumed']) == (2, True, 2)
    assert _mtimes(out)['shard-00000.npz'] == first['shard-00000.npz']  # not rewritten
    # same boxes, sizes and fall-backs as the single json (keys sorted in the shards)
    shards, ref = load_proposals(str(out)), load_proposals(photos['json'])
    assert list(shards) == sorted(photos['names']) and set(ref) == set(shards)
    for key, entry in ref.items():
        got = shards[key]
        np.testing.assert_array_equal(got['boxes'], entry['boxes'])
        assert (got['width'], got['height'], got['fallback']) == (
            entry['width'], entry['height'], entry['fallback'])
    # interrupted run: one shard gone, one truncated -> exactly those two are redone
    before = _mtimes(out)
    os.remove(out / 'shard-00001.npz')
    data = (out / 'shard-00002.npz').read_bytes()
    (out / 'shard-00002.npz').write_bytes(data[:len(data) // 2])
    truncated = _mtimes(out)['shard-00002.npz']
    summary, logs = _run(photos, out)
    assert summary['shards_written_now'] == 2 and summary['processed_now'] == 3
    assert any('shard-00001.npz: missing' in line for line in logs)
    assert any('shard-00002.npz: damaged' in line for line in logs)
    after = _mtimes(out)
    assert after['shard-00000.npz'] == before['shard-00000.npz']
    assert after['shard-00002.npz'] != truncated
    again = load_proposals(str(out))
    for key in ref:
        np.testing.assert_array_equal(again[key]['boxes'], ref[key]['boxes'])
    # nothing left to do: nothing rewritten
    summary, _ = _run(photos, out)
    assert summary['shards_written_now'] == 0 and _mtimes(out) == after


def test_another_image_list_or_setting_is_refused_naming_it(photos, tmp_path):
    out = tmp_path / 'shards'
    _run(photos, out)
    with pytest.raises(ValueError, match=r"(?s)generator\.mode: 'single' -> 'fast'.*--overwrite"):
        generate_sharded(photos['items'], str(out), SelectiveSearchConfig(max_side=64), FILT,
                         shard_size=2, log=lambda s: None, progress=False)
    with pytest.raises(ValueError, match=r'shard_size: 2 -> 3'):
        generate_sharded(photos['items'], str(out), CFG, FILT, shard_size=3,
                         log=lambda s: None, progress=False)
    dropped = photos['items'][1][1]
    with pytest.raises(ValueError, match=rf"(?s)image list: 5 -> 4 images \(0 added.*1 removed, "
                       rf"e\.g\. \['{dropped}'\]"):
        generate_sharded(photos['items'][:1] + photos['items'][2:], str(out), CFG, FILT,
                         shard_size=2, log=lambda s: None, progress=False)
    summary = generate_sharded(photos['items'][:3], str(out), CFG, FILT, shard_size=2,
                               overwrite=True, log=lambda s: None, progress=False,
                               calibrate_images=0)
    assert summary['images'] == 3 and sorted(os.listdir(out)) == [
        'keys.txt', 'manifest.json', 'shard-00000.npz', 'shard-00001.npz', 'summary.json']


def _dataset(photos, proposal_file, **kw):
    return ProposalImageDataset(data_prefix=photos['img_dir'], ann_file=photos['list'],
                                proposal_file=str(proposal_file), **kw)


def test_dataset_over_shards_gives_the_json_items_loading_one_shard_at_a_time(photos, tmp_path):
    out = tmp_path / 'shards'
    _run(photos, out)
    ref = _dataset(photos, photos['json'])
    ds = _dataset(photos, out)
    assert ds.proposal_shards.num_loads == 0 and ds.proposal_shards.loaded_shards == []
    order = photos['names']  # the list file's order
    shard_of = {k: i // 2 for i, k in enumerate(sorted(photos['names']))}
    loads = []
    for i in range(len(ds)):
        a, b = ref.get_data_info(i), ds.get_data_info(i)
        assert a['img_path'] == b['img_path'] == osp.join(photos['img_dir'], order[i])
        assert a['proposal_img_size'] == b['proposal_img_size']
        np.testing.assert_array_equal(a['proposals'], b['proposals'])
        assert 'proposal_shard' not in b and 'proposal_row' not in b
        loads.append(ds.proposal_shards.num_loads)
    # each item loaded its own shard only, the first time that shard was needed
    seen = []
    for key, n in zip(order, loads):
        seen += [] if shard_of[key] in seen else [shard_of[key]]
        assert n == len(seen)
    assert ds.proposal_shards.loaded_shards[-1] == shard_of[order[-1]]
    # a cache of one shard: every change of shard reloads it
    small = _dataset(photos, out / 'manifest.json', proposal_cache_shards=1)
    for i in (0, 0, 4, 0):
        small.get_data_info(i)
    assert small.proposal_shards.num_loads == (3 if shard_of[order[0]] != shard_of[order[4]]
                                               else 1)
    assert small.proposal_shards.loaded_shards == [shard_of[order[0]]]
    # workers get the dataset pickled: without its loaded shards
    clone = pickle.loads(pickle.dumps(small))
    assert clone.proposal_shards.loaded_shards == []
    np.testing.assert_array_equal(clone.get_data_info(2)['proposals'],
                                  ref.get_data_info(2)['proposals'])


def test_bad_shard_directories_are_clear_errors(photos, tmp_path):
    out = tmp_path / 'shards'
    _run(photos, out)
    ds = _dataset(photos, out)
    key_of_0 = osp.relpath(ds.get_data_info(0)['img_path'], photos['img_dir'])
    shard0 = sorted(photos['names']).index(key_of_0) // 2
    ds = _dataset(photos, out)  # fresh cache
    os.remove(out / f'shard-{shard0:05d}.npz')
    with pytest.raises(FileNotFoundError,
                       match=rf"shard-{shard0:05d}\.npz' is missing.*generate_proposals\.py"):
        ds.get_data_info(0)
    other = (shard0 + 1) % 3
    (out / f'shard-{shard0:05d}.npz').write_bytes((out / f'shard-{other:05d}.npz').read_bytes())
    with pytest.raises(ValueError, match='holds other images than its manifest lists'):
        _dataset(photos, out).get_data_info(0)
    (out / f'shard-{shard0:05d}.npz').write_bytes(b'PK\x03\x04 cut')
    with pytest.raises(ValueError, match='damaged or truncated'):
        _dataset(photos, out).get_data_info(0)
    keys = (out / 'keys.txt').read_text()
    (out / 'keys.txt').write_text(keys.replace('a', 'b', 1))
    with pytest.raises(ValueError, match=r"keys\.txt' does not match manifest\.json"):
        _dataset(photos, out)
    (out / 'keys.txt').write_text(keys)
    manifest = json.loads((out / 'manifest.json').read_text())
    (out / 'manifest.json').write_text(json.dumps(dict(manifest, version=99)))
    with pytest.raises(ValueError, match='shard format version 99'):
        _dataset(photos, out)
    os.remove(out / 'manifest.json')
    with pytest.raises(FileNotFoundError, match='not a proposal shard directory'):
        _dataset(photos, out)


def test_failed_images_are_missing_and_retried_alone(photos, tmp_path):
    bad = tmp_path / 'img' / 'zz_bad.jpg'
    bad.parent.mkdir()
    bad.write_bytes(b'not an image')
    items = photos['items'] + [(str(bad), 'zz_bad.jpg')]
    out = str(tmp_path / 'shards')
    summary = generate_sharded(items, out, CFG, FILT, shard_size=2, log=lambda s: None,
                               progress=False, calibrate_images=0)
    assert summary['failed'] == 1 and not summary['complete']
    manifest = json.load(open(osp.join(out, 'manifest.json')))
    assert manifest['shards'][2]['failed'] == ['zz_bad.jpg']
    table = ShardedProposals(out)
    assert 'zz_bad.jpg' not in set(table.keys()) and len(table) == NAMES
    before = _mtimes(out)
    kept = dict(table.items())
    summary = generate_sharded(items, out, CFG, FILT, shard_size=2, log=lambda s: None,
                               progress=False, calibrate_images=0)
    assert (summary['processed_now'], summary['shards_written_now']) == (0, 1)  # only zz_bad
    for key, entry in ShardedProposals(out).items():  # the shard's other image kept as it was
        np.testing.assert_array_equal(entry['boxes'], kept[key]['boxes'])
    assert {k: v for k, v in _mtimes(out).items() if k != 'shard-00002.npz'} == {
        k: v for k, v in before.items() if k != 'shard-00002.npz'}
    assert len(ShardedProposals(out)) == NAMES


def test_compact_boxes_and_calibration(tmp_path):
    whole = np.array([[0, 0, 640, 480], [3, 4, 5, 6]], np.float64)
    for boxes, dtype, divisor in ((whole, np.int16, 1), (whole + 0.1, np.int16, 10),
                                  (whole + 0.05, np.float32, 1),
                                  (whole * 60, np.float32, 1),  # 38400 does not fit int16
                                  (whole * 6 + 0.5, np.float32, 1)):  # 38405 tenths
        stored, div = compact_boxes(boxes)
        assert (stored.dtype, div) == (dtype, divisor)
        np.testing.assert_array_equal(stored.astype(np.float64) / div,
                                      boxes.astype(dtype if dtype == np.float32 else np.float64))
    # tenths read back exactly as a json parser reads them
    tenths = np.round(np.random.default_rng(0).uniform(0, 3000, (500, 4)), 1)
    rec = dict(file_name='a.jpg', width=3000, height=3000, boxes=tenths.tolist())
    stored, div = compact_boxes(tenths)
    assert div == 10
    path = tmp_path / 'shard.npz'
    path.write_bytes(shard_bytes([rec]))
    np.testing.assert_array_equal(shard_entry(read_shard(str(path), ['a.jpg']), 0)['boxes'],
                                  np.asarray(json.loads(json.dumps(tenths.tolist())),
                                             np.float32))
    recs = [dict(file_name=f'{i}.jpg', width=64, height=48, boxes=[[0, 0, 32, 32]] * 10)
            for i in range(4)]
    c = calibrate(recs, seconds=2.0, todo=100, workers=1)
    assert c['seconds_per_image'] == 0.5 and c['images_per_second'] == 2.0
    assert c['projected_seconds'] == 50.0 and c['imagenet_seconds'] == 1_281_167 / 2
    per = (len(shard_bytes(recs)) - len(shard_bytes([]))) / 4
    assert c['bytes_per_image'] == round(per, 1) and 80 <= per < 400  # 10 int16 boxes + key
