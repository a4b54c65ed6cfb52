"""tools/generate_proposals.py and tools/analysis/compare_proposals.py on real photos, then the
SoCo CPU demo config trained for 3 iterations on those proposals by tools/train.py."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'soco', 'soco_r18-fpn_1xb8-lars-coslr-300i_cpu-demo_pretrain.py')


def _run(args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS='1')  # tiny CPU work on a shared machine
    return subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope='module')
def proposals(small_data, tmp_path_factory):
    """Proposals of the first 8 pre-training photos, made by the CLI with 2 workers."""
    out = tmp_path_factory.mktemp('soco_props') / 'train_proposals.json'
    root = small_data / 'pretrain'
    proc = _run(['tools/generate_proposals.py', str(root / 'train'), '--ann-file',
                 str(root / 'meta' / 'train.txt'), '--out', str(out), '--workers', '2',
                 '--limit', '8', '--max-side', '128', '--log-every', '4'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def test_cli_writes_documented_json_and_summary(proposals, small_data):
    from pycocotools.coco import COCO
    out, stdout = proposals
    coco = COCO(str(out))
    assert coco.dataset['info']['format'] == 'mcl_plugin.proposals'
    assert coco.dataset['info']['generator']['max_side'] == 128
    assert len(coco.imgs) == 8
    listed = (small_data / 'pretrain' / 'meta' / 'train.txt').read_text().split()[:8]
    assert [im['file_name'] for im in coco.dataset['images']] == listed
    for img in coco.dataset['images']:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img['id']]))
        assert anns, img['file_name']  # fall-backs guarantee >= 1 box
        boxes = np.array([a['bbox'] for a in anns])
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= img['width'] + .1).all()
        if img['fallback'] == 'none':
            rel = np.sqrt(boxes[:, 2] * boxes[:, 3] / (img['width'] * img['height']))
            assert ((rel >= 0.3 - 1e-3) & (rel <= 0.8 + 1e-3)).all()
            ratio = boxes[:, 2] / boxes[:, 3]
            assert ((ratio >= 1 / 3 - 1e-3) & (ratio <= 3 + 1e-3)).all()
    summary = json.loads(stdout[stdout.index('{'):])
    assert summary['images'] == 8 and summary['failed'] == 0
    assert summary['boxes_per_image_raw']['mean'] >= summary['boxes_per_image_final']['mean']
    assert json.load(open(str(out)[:-5] + '.summary.json'))['images_per_second'] > 0
    proc = _run(['tools/generate_proposals.py', str(small_data), '--out', str(out), '--mode',
                 'nope'])
    assert proc.returncode == 2


def test_cli_official_method_writes_the_documented_format_and_resumes(tmp_path):
    """``--method official`` on 2 tiny photos: SoCo's selective search + its fall-back chain,
    our json format, resumable (the first run is cut to 1 image and keeps its partial file)."""
    import cv2
    from skimage import data

    from mcl_plugin.datasets.proposals import FALLBACKS, load_proposals
    from tools.proposals import (OfficialSearchConfig, ProposalFilter,
                                 official_selective_search, read_rgb)
    img_dir = tmp_path / 'imgs'
    (img_dir / 'sub').mkdir(parents=True)
    photo = data.astronaut()[:, :, ::-1]
    cv2.imwrite(str(img_dir / 'a.png'), cv2.resize(photo, (64, 48)))
    cv2.imwrite(str(img_dir / 'sub' / 'b.jpg'), cv2.resize(photo[100:400, 50:450], (56, 48)))
    out = tmp_path / 'p.json'
    base = ['tools/generate_proposals.py', str(img_dir), '--method', 'official', '--out',
            str(out), '--no-progress']
    first = _run(base + ['--limit', '1', '--keep-partial'])
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run(base + ['--workers', '2'])
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout[second.stdout.index('{'):])
    assert (summary['images'], summary['resumed'], summary['processed_now']) == (2, 1, 1)
    assert 'already done' in second.stdout and not osp.exists(f'{out}.partial.jsonl')
    info = json.load(open(out))['info']
    assert info['format'] == 'mcl_plugin.proposals' and info['generator'] == dict(
        scale=300, sigma=0.9, min_size=100, max_side=None, method='official')
    assert info['filter']['side_fallback'] is True
    table = load_proposals(str(out))
    assert table.format == 'mcl_plugin' and list(table) == ['a.png', 'sub/b.jpg']
    filt = ProposalFilter(side_fallback=True)
    for name, entry in table.items():
        rgb = read_rgb(str(img_dir / name))
        assert (entry['width'], entry['height']) == (rgb.shape[1], rgb.shape[0])
        assert entry['fallback'] in FALLBACKS and len(entry['boxes']) >= 1
        expected, fallback, _ = filt.apply(
            official_selective_search(rgb, OfficialSearchConfig()), rgb.shape[1], rgb.shape[0])
        assert entry['fallback'] == fallback
        np.testing.assert_allclose(entry['boxes'], expected)
    # options of the other generator are refused, not ignored
    proc = _run(base + ['--mode', 'fast'])
    assert proc.returncode == 2 and '--mode do(es) not apply' in proc.stderr


def _shard_mtimes(folder):
    return {n: os.stat(osp.join(folder, n)).st_mtime_ns for n in sorted(os.listdir(folder))
            if n.startswith('shard-')}


def _summary(stdout):
    return json.loads(stdout[stdout.index('\n{') + 1:])


def test_cli_shards_hold_the_json_boxes_and_resume_per_shard(proposals, small_data, tmp_path):
    """--shard-size 3 over the fixture's 8 photos: 3 shards with the json's boxes; cut after one
    shard (--max-shards 1), resumed; a deleted shard is the only one redone."""
    from mcl_plugin.datasets.proposals import load_proposals
    out_json, _ = proposals
    root = small_data / 'pretrain'
    shards = tmp_path / 'shards'
    base = ['tools/generate_proposals.py', str(root / 'train'), '--ann-file',
            str(root / 'meta' / 'train.txt'), '--out', str(shards), '--limit', '8',
            '--max-side', '128', '--shard-size', '3', '--no-progress', '--calibrate', '2']
    first = _run(base + ['--max-shards', '1'])
    assert first.returncode == 0, first.stderr[-3000:]
    summary = _summary(first.stdout)
    assert (summary['shards'], summary['shards_written_now'], summary['complete']) == (3, 1, False)
    assert 'calibration on 2 image(s)' in first.stdout
    assert 'for ImageNet (1,281,167 images)' in first.stdout
    assert summary['calibration']['imagenet_seconds'] > 0
    shard0 = _shard_mtimes(shards)['shard-00000.npz']
    second = _run(base + ['--workers', '2'])
    assert second.returncode == 0, second.stderr[-3000:]
    summary = _summary(second.stdout)
    assert (summary['shards_written_now'], summary['complete'], summary['resumed']) == (2, True, 3)
    assert _shard_mtimes(shards)['shard-00000.npz'] == shard0
    table, ref = load_proposals(str(shards)), load_proposals(str(out_json))
    assert list(table) == sorted(ref) and len(table) == 8
    for key, entry in ref.items():
        np.testing.assert_array_equal(table[key]['boxes'], entry['boxes'])
        assert (table[key]['width'], table[key]['fallback']) == (entry['width'],
                                                                 entry['fallback'])
    before = _shard_mtimes(shards)
    os.remove(shards / 'shard-00001.npz')
    third = _run(base)
    assert third.returncode == 0, third.stderr[-3000:]
    assert 'shard-00001.npz: missing; redoing it' in third.stdout
    assert _summary(third.stdout)['shards_written_now'] == 1
    after = _shard_mtimes(shards)
    assert [after[f] for f in ('shard-00000.npz', 'shard-00002.npz')] == [
        before[f] for f in ('shard-00000.npz', 'shard-00002.npz')]
    redone = load_proposals(str(shards))
    for key, entry in ref.items():
        np.testing.assert_array_equal(redone[key]['boxes'], entry['boxes'])
    # other settings on the same folder: refused, naming the change and the ways out
    proc = _run(base + ['--mode', 'single'])
    assert proc.returncode == 2 and "generator.mode: 'fast' -> 'single'" in proc.stderr
    assert '--out NEW_DIR' in proc.stderr and '--overwrite' in proc.stderr
    proc = _run(base[:2] + ['--out', str(tmp_path / 'p.json'), '--shard-size', '3'])
    assert proc.returncode == 2 and '--shard-size writes a directory' in proc.stderr


def test_cli_from_annotations_writes_the_annotated_boxes(small_data, tmp_path):
    """Ground-truth boxes as proposals: exact values, sides >= 32, crowd boxes dropped, an
    image without boxes gets the whole image, an image the COCO file lacks gets no entry."""
    from mcl_plugin.datasets import ProposalImageDataset
    from mcl_plugin.datasets.proposals import load_proposals
    coco_dir = small_data / 'objects_coco'
    data = json.load(open(coco_dir / 'annotations' / 'instances_val.json'))
    names = [im['file_name'] for im in data['images']]
    last = data['images'][-1]
    for ann in data['annotations']:
        if ann['image_id'] == last['id']:
            ann['iscrowd'] = 1  # its only box: a crowd box
    gone = next(im for im in data['images'] if im['file_name'] == 'val_000006.jpg')
    data['images'].remove(gone)
    data['annotations'] = [a for a in data['annotations'] if a['image_id'] != gone['id']]
    gt = tmp_path / 'gt.json'
    gt.write_text(json.dumps(data))
    (tmp_path / 'list.txt').write_text('\n'.join(names) + '\n')
    base = ['tools/generate_proposals.py', str(coco_dir / 'val'), '--from-annotations', str(gt),
            '--ann-file', str(tmp_path / 'list.txt'), '--no-progress']
    proc = _run(base + ['--out', str(tmp_path / 'gt'), '--shard-size', '3'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = _summary(proc.stdout)
    assert summary['not_in_annotations_files'] == ['val_000006.jpg'] and summary['shards'] == 3
    assert 'val_000006.jpg' in proc.stderr  # reported
    table = load_proposals(str(tmp_path / 'gt'))
    assert sorted(table) == sorted(set(names) - {'val_000006.jpg'})
    # val_000001.jpg: [125, 53, 37, 61], [149, 15, 70, 28] (h 28 < 32: dropped), [156, 0, 96, 106]
    assert table['val_000001.jpg']['boxes'].tolist() == [[125, 53, 37, 61], [156, 0, 96, 106]]
    assert table['val_000001.jpg']['fallback'] == 'none'
    assert table[last['file_name']]['boxes'].tolist() == [[0, 0, last['width'], last['height']]]
    assert table[last['file_name']]['fallback'] == 'whole_image'
    by_id = {im['id']: im['file_name'] for im in data['images']}
    for im in data['images']:
        want = [a['bbox'] for a in data['annotations'] if a['image_id'] == im['id']
                and not a['iscrowd'] and min(a['bbox'][2:]) >= 32]
        if want:
            assert table[by_id[im['id']]]['boxes'].tolist() == want
    # one json, no side filter: every non-crowd box, the same values
    proc = _run(base + ['--out', str(tmp_path / 'gt_all.json'), '--min-side', '0'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    every = load_proposals(str(tmp_path / 'gt_all.json'))
    assert every['val_000001.jpg']['boxes'].tolist() == [[125, 53, 37, 61], [149, 15, 70, 28],
                                                         [156, 0, 96, 106]]
    # the dataset over the shards: xyxy proposals; the image without an entry is skipped
    ds = ProposalImageDataset(data_prefix=str(coco_dir / 'val'),
                              ann_file=str(tmp_path / 'list.txt'),
                              proposal_file=str(tmp_path / 'gt'), on_missing='skip')
    assert len(ds) == 7 and ds.num_missing == 1
    np.testing.assert_array_equal(ds.get_data_info(0)['proposals'],
                                  [[125, 53, 162, 114], [156, 0, 252, 106]])
    proc = _run(base + ['--out', str(tmp_path / 'x'), '--mode', 'fast'])
    assert proc.returncode == 2 and '--mode do(es) not apply to --from-annotations' in proc.stderr


def test_compare_table(small_data, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'compare_proposals', osp.join(REPO, 'tools', 'analysis', 'compare_proposals.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    pytest.importorskip('selectivesearch')
    coco = small_data / 'objects_coco'
    out = tmp_path / 'cmp.json'
    assert tool.main([str(coco / 'annotations' / 'instances_val.json'), str(coco / 'val'),
                      '--num-images', '2', '--out', str(out), '--methods',
                      'official:max_side=128', 'python:scale=300,sigma=0.9,min_size=100',
                      'opencv:mode=single,max_side=128']) == 0
    rows = json.load(open(out))['rows']
    assert [r['generator'] for r in rows] == ['official:max_side=128',
                                              'python:scale=300,sigma=0.9,min_size=100',
                                              'opencv:mode=single,max_side=128']
    for r in rows:
        assert r['gt_boxes'] > 0 and 0 <= r['recall_filtered'] <= r['recall_raw'] <= 1
        assert r['boxes_filtered'] <= r['boxes_raw'] and r['seconds_per_image'] > 0
        assert r['boxes_filtered_unique'] <= r['boxes_filtered']
    assert '| generator | s/image |' in capsys.readouterr().out


def test_runner_trains_demo_config_3_iters(proposals, small_data, tmp_path):
    """The CPU demo at 64 px (thresholds scaled accordingly), batch 4, 3 iterations."""
    out, _ = proposals
    cfg = Config.fromfile(DEMO)
    views = cfg.train_dataloader.dataset.pipeline[1]
    views.v1_size, views.v2_size, views.v3_size = 64, 64, 32
    cfg.model.roi_pooler.scale_thresholds = [t * 64 / 224 for t in (48, 96, 192)]
    ds = cfg.train_dataloader.dataset
    ds.data_root = str(small_data / 'pretrain')
    ds.proposal_file = str(out)
    ds.on_missing = 'skip'  # proposals exist for the first 8 images only
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_iters = 3
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=3)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 3
    path = str(tmp_path / 'soco_tiny_demo.py')
    cfg.dump(path)
    work = tmp_path / 'work'
    proc = _run(['tools/train.py', path, '--work-dir', str(work)], timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / 'iter_3.pth').exists()
    logs = [osp.join(d, f) for d, _, fs in os.walk(work) for f in fs
            if f.endswith('.json') and f != 'scalars.json' and 'vis_data' in d]
    rows = [json.loads(line) for line in open(sorted(logs)[-1]) if '"loss"' in line]
    assert len(rows) == 3
    for row in rows:
        assert np.isfinite(row['loss']) and -8.0 <= row['loss'] <= 8.0
        assert {'loss_v1_v2', 'loss_v1_v3', 'cos_v1_v2', 'ema_momentum'} <= set(row)
        assert abs(row['loss'] - row['loss_v1_v2'] - row['loss_v1_v3']) < 1e-3


def test_a_truncated_jpeg_gets_no_proposals_like_it_gets_no_training(tmp_path):
    """Issue 21 item 6: cv2.imread decodes a truncated JPEG (libjpeg: "Premature end of JPEG
    file"), so it got proposals, while training (mmcv's imfrombytes) rejects it."""
    from PIL import Image

    from mcl_plugin.datasets import UnlabeledImageDataset
    from tools.proposals import ProposalFilter, SelectiveSearchConfig
    from tools.proposals.generate import process_image
    rng = np.random.default_rng(0)
    img = tmp_path / 'imgs' / 'cut.jpg'
    img.parent.mkdir()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), np.uint8)).save(img, quality=90)
    data = img.read_bytes()
    img.write_bytes(data[:len(data) * 2 // 3])
    import cv2
    assert cv2.imread(str(img)) is not None  # OpenCV alone accepts it
    rec = process_image(str(img), 'cut.jpg', SelectiveSearchConfig(), ProposalFilter())
    reason = UnlabeledImageDataset(data_prefix=str(img.parent)).image_decode_error(str(img))
    assert reason is not None and 'boxes' not in rec
    assert rec['error'] == f'image {str(img)!r} {reason}'
