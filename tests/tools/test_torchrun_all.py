"""``torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch`` on CPU (gloo) for
every algorithm's CPU demo config: MCL, MCL-sup, SoCo, DetCo, PLRC.

Each run uses the demo config file itself, shrunk from the command line only
(``--cfg-options``): the ``--small`` photos, tiny views, batch 2 per process, no loader
workers, 2 iterations. It must exit 0, log a finite loss for both iterations from a run that
really was distributed (world size 2), and write the iteration-2 checkpoint (rank 0 only),
whose weights are finite. The processes see no GPU (``CUDA_VISIBLE_DEVICES=''``), so this
also exercises the entry point's opt-in CPU set-up,
:func:`mcl_plugin.engine.setup_cpu_distributed` (gloo process group created by
``tools/train.py``, DDP without ``device_ids``; nothing of mmengine is patched).
"""
import json
import math
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
from typing import Dict, List

import pytest
import torch
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
BIN = osp.dirname(sys.executable)
ITERS = 2
COMMON = [
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', f'train_cfg.max_iters={ITERS}',
    'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={ITERS}',
    'log_processor.window_size=1'
]
# DDP without find_unused_parameters stops at iteration 2 ("Expected to have finished reduction
# in the prior iteration") when a parameter gets no gradient. The S = 3 demos (MCL, MCL-sup) read
# P3-P5 only and build an FPN without P2 (start_level=1), so every config here runs with
# find_unused_parameters=False; nothing extra is passed, so the configs are what is tested.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _soco_proposals(root, out: str, n: int = 8) -> str:
    """SoCo's json format for the first ``n`` listed photos: 3 boxes per image (whole image,
    left half, centre quarter); the run does not depend on how good the proposals are."""
    names = (root / 'meta' / 'train.txt').read_text().split()[:n]
    table = {}
    for name in names:
        w, h = Image.open(root / 'train' / name).size
        # official format: keyed by base name without extension
        table[osp.splitext(osp.basename(name))[0]] = [[0, 0, w, h], [0, 0, w // 2, h],
                                                      [w // 4, h // 4, w // 2, h // 2]]
    with open(out, 'w') as f:
        json.dump(table, f)
    return out


def overrides(name: str, data, tmp_path) -> List[str]:
    """``--cfg-options`` that shrink each demo config for a 2-iteration CPU run."""
    pretrain = str(data / 'pretrain')
    if name == 'mcl':  # 32-px views: tiles of 32/16/8 px = one cell of P5/P4/P3
        return [f'train_dataloader.dataset.data_root={pretrain}',
                'train_dataloader.dataset.pipeline.1.transforms.0.0.scale=32',
                'train_dataloader.dataset.pipeline.1.transforms.1.0.scale=32',
                'model.tile_pooler.out_size=1']
    if name == 'mcl_sup':  # the --small object set has more classes than the full one (9)
        ann = data / 'objects_coco' / 'annotations' / 'instances_train.json'
        num_classes = len(json.loads(ann.read_text())['categories'])
        return [f'train_dataloader.dataset.data_root={data / "objects_coco"}',
                f'model.head.num_classes={num_classes}',
                'train_dataloader.dataset.pipeline.2.transforms.0.0.scale=32',
                'model.tile_pooler.out_size=1']
    if name == 'soco':  # 64/64/32-px views, scale thresholds scaled with them
        props = _soco_proposals(data / 'pretrain', str(tmp_path / 'proposals.json'))
        return [f'train_dataloader.dataset.data_root={pretrain}',
                f'train_dataloader.dataset.proposal_file={props}',
                'train_dataloader.dataset.on_missing=skip',
                'train_dataloader.dataset.pipeline.1.v1_size=64',
                'train_dataloader.dataset.pipeline.1.v2_size=64',
                'train_dataloader.dataset.pipeline.1.v3_size=32',
                'model.roi_pooler.scale_thresholds=[' +
                ','.join(f'{t * 64 / 224:.4f}' for t in (48, 96, 192)) + ']']
    if name == 'detco':  # 64-px global views, 48-px jigsaw crop -> 16-px patches, 64 keys
        return [f'train_dataloader.dataset.data_root={pretrain}',
                'train_dataloader.dataset.pipeline.1.global_pipeline.0.scale=64',
                'train_dataloader.dataset.pipeline.1.local_pipeline.0.crop_size=48',
                'train_dataloader.dataset.pipeline.1.local_pipeline.0.patch_size=16',
                'model.queue_len=64']
    if name == 'plrc':  # 64-px views, R = 16, 4 regions x 4 points, 64 keys
        return [f'train_dataloader.dataset.data_root={pretrain}',
                'train_dataloader.dataset.pipeline.1.size=64',
                'train_dataloader.dataset.pipeline.1.mask_size=16',
                'model.resolution=16', 'model.num_regions=4', 'model.num_points=4',
                'model.queue_len=64']
    raise KeyError(name)


DEMOS: Dict[str, str] = {
    'mcl': 'mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py',
    'mcl_sup': 'mcl_sup/mcl-sup_r18-fpn_1xb16-sgd-coslr-300i_cpu-demo_objects.py',
    'soco': 'soco/soco_r18-fpn_1xb8-lars-coslr-300i_cpu-demo_pretrain.py',
    'detco': 'detco/detco_r18_1xb8-coslr-300i_cpu-demo_pretrain.py',
    'plrc': 'plrc/plrc_r18_1xb8-coslr-300i_cpu-demo_pretrain.py',
}


def _torchrun() -> List[str]:
    exe = shutil.which('torchrun', path=BIN)
    return [exe] if exe else [sys.executable, '-m', 'torch.distributed.run']


def _json_rows(work) -> List[dict]:
    logs = [osp.join(d, f) for d, _, fs in os.walk(work) for f in fs
            if f.endswith('.json') and f != 'scalars.json' and 'vis_data' in d]
    assert len(logs) == 1, logs  # rank 0 writes the only log
    with open(logs[0]) as f:
        return [json.loads(line) for line in f if '"loss"' in line]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize('name', sorted(DEMOS))
def test_torchrun_two_cpu_processes(name, small_data, tmp_path):
    work = tmp_path / 'work'
    port = _free_port()
    cmd = _torchrun() + [
        '--nnodes', '1', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
        '--master_port', str(port), 'tools/train.py', osp.join(CONFIGS, DEMOS[name]),
        '--launcher', 'pytorch', '--work-dir', str(work), '--cfg-options'
    ] + COMMON + overrides(name, small_data, tmp_path)
    # CPU processes even where a GPU exists (2 processes cannot share 1 GPU under nccl)
    env = dict(os.environ, OMP_NUM_THREADS='1', MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES='',
               PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    # mmengine's environment report: 2 processes ("GPU number" is the world size), gloo
    assert 'Distributed training: True' in out and 'GPU number: 2' in out
    assert "backend='gloo'" in out
    assert 'using the gloo backend instead of nccl' in out  # the configs say nccl
    rows = _json_rows(work)
    assert [r['iter'] for r in rows] == list(range(1, ITERS + 1))
    for row in rows:
        assert math.isfinite(row['loss']), row
    ckpt = torch.load(work / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == ITERS
    state = ckpt['state_dict']
    assert not any(k.startswith('module.') for k in state)  # the DDP wrapper is not saved
    for key, value in state.items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), key
