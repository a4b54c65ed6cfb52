"""browse_dataset.py and plot_curves.py on tiny real inputs: PNGs exist with the expected size."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _run(args):
    proc = subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_browse_mcl_montages(tmp_path, small_data):
    out = _run(['tools/browse_dataset.py', 'configs/mcl/mcl_r18-fpn_1xb16-lars-cpu-demo_pretrain.py',
                '--output-dir', str(tmp_path), '--num', '1', '--cfg-options',
                f'train_dataloader.dataset.data_root={small_data / "pretrain"}'])
    img = cv2.imread(str(tmp_path / 'MCL_0_montages.png'))
    assert 'MCL_0_montages.png' in out
    assert img.shape == (448 + 36, 3 * 448, 3)  # one panel per level (S = 3)


def test_browse_detection_config(tmp_path, small_data):
    classes = (small_data / 'objects_coco' / 'classes.txt').read_text().split()
    _run(['tools/browse_dataset.py',
          'configs/benchmarks/mmdet/mask-rcnn_r18-fpn_bn-4conv1fc_demo_objects-coco.py',
          '--output-dir', str(tmp_path), '--num', '1', '--cfg-options',
          f'train_dataloader.dataset.data_root={small_data / "objects_coco"}/',
          f'train_dataloader.dataset.metainfo.classes=[{",".join(classes)}]'])
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
