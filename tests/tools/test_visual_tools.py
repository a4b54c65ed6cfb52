"""browse_dataset.py and plot_curves.py on tiny real inputs: PNGs exist with the expected size
and colours."""
import glob
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _run(args):
    proc = subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _browse_in_process(monkeypatch, args):
    """Run ``tools/browse_dataset.py``'s entry point in this process (faster than a
    subprocess: torch and the OpenMMLab packages are already imported)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('browse_dataset',
                                                  osp.join(REPO, 'tools', 'browse_dataset.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, 'argv', ['browse_dataset.py'] + [str(a) for a in args])
    module.main()


def _demo_config(pattern):
    """The demo config matching ``configs/<pattern>`` (glob; demo configs are being renamed,
    ablation variants have longer names than the base demo)."""
    paths = glob.glob(osp.join(REPO, 'configs', pattern))
    assert paths, pattern
    return min(paths, key=lambda p: (len(osp.basename(p)), p))


def test_browse_mcl_montages(tmp_path, small_data, monkeypatch):
    _browse_in_process(monkeypatch, [
        _demo_config('mcl/*demo*.py'), '--output-dir', tmp_path, '--num', '1',
        '--cfg-options', f'train_dataloader.dataset.data_root={small_data / "pretrain"}'
    ])
    img = cv2.imread(str(tmp_path / 'MCL_0.png'))
    assert img.shape == (448 + 36, 3 * 448, 3)  # one panel per level (S = 3)


def test_browse_detection_config(tmp_path, small_data, monkeypatch, capsys):
    classes = (small_data / 'objects_coco' / 'classes.txt').read_text().split()
    _browse_in_process(monkeypatch, [
        _demo_config('benchmarks/mmdet/mask-rcnn_r18*demo*.py'), '--output-dir', tmp_path,
        '--num', '1', '--cfg-options',
        f'train_dataloader.dataset.data_root={small_data / "objects_coco"}/',
        f'train_dataloader.dataset.metainfo.classes=[{",".join(classes)}]'
    ])
    assert 'MaskRCNN_0.png' in capsys.readouterr().out
    img = cv2.imread(str(tmp_path / 'MaskRCNN_0.png'))
    assert img is not None and img.ndim == 3 and max(img.shape[:2]) >= 200


def _fake_log(path, n, offset):
    with open(path, 'w') as f:
        for i in range(1, n + 1):
            f.write(json.dumps(dict(iter=i, lr=0.1 * i / n, loss=2.0 - i * 0.01 - offset,
                                    loss_level0=1.0 - i * 0.005, pos_sim_level0=i / n,
                                    ema_momentum=0.01, time=1.0)) + '\n')
        f.write(json.dumps(dict(coco_bbox_mAP=0.1, step=n)) + '\n')


def test_plot_curves_overlays_runs(tmp_path):
    a, b = tmp_path / 'a.json', tmp_path / 'b.json'
    _fake_log(a, 30, 0.0)
    _fake_log(b, 20, 0.2)
    out = tmp_path / 'curves.png'
    stdout = _run(['tools/analysis/plot_curves.py', str(a), str(b), '--legend', 'mcl', 'byol',
                   '--out', str(out)])
    assert '5 panels' in stdout  # loss, loss_level0, lr, ema_momentum, pos_sim_level0
    img = cv2.imread(str(out))
    assert img.shape == (2 * 320, 3 * 500, 3)


def test_plot_curves_errors(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('not json\n')
    proc = subprocess.run([sys.executable, 'tools/analysis/plot_curves.py', str(bad)], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and 'is not a JSON line' in proc.stderr


PLRC_TINY = """
default_scope = 'mcl_plugin'
model = dict(
    type='PLRC', grid_size=4, resolution=8, num_regions=2, num_points=2,
    data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True))
train_dataloader = dict(
    batch_size=2,
    dataset=dict(type='UnlabeledImageDataset', data_root={root!r}, data_prefix=dict(img_path=''),
                 pipeline=[
                     dict(type='LoadImageFromFile'),
                     dict(type='GridRegionTwoView', size=32, grid_size=4, mask_size=8),
                     dict(type='PackInputs', algorithm_keys=['region_masks', 'common_regions']),
                 ]))
"""


def test_browse_plrc_keeps_red_red(tmp_path, monkeypatch):
    """A pure-red photo must come out red (not blue) from browse_dataset's PLRC picture.

    The pipeline loads BGR; the picture is RGB. Regression test of the whole-config bug: the
    PLRC renderer used to read ``to_rgb`` from the config it was given as if it were the model
    config, found nothing and left the channels in BGR order.
    """
    root = tmp_path / 'images'
    root.mkdir()
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 2] = 255  # BGR: pure red
    assert cv2.imwrite(str(root / 'red.png'), red)
    config = tmp_path / 'plrc_tiny.py'
    config.write_text(PLRC_TINY.format(root=str(root)))
    out = tmp_path / 'out'
    _browse_in_process(monkeypatch, [config, '--output-dir', out, '--num', '1'])
    img = cv2.imread(str(out / 'PLRC_0.png'))[..., ::-1].astype(int)  # RGB
    r, b = img[..., 0], img[..., 2]
    reddish, bluish = (r > b + 60).mean(), (b > r + 60).mean()
    # common regions are tinted 55% image + 45% palette colour (R - B >= 140 - 0.45 * 255);
    # only the few sampled points (palette colours) may be bluish
    assert reddish > 0.3 and bluish < 0.02, (reddish, bluish)
