"""The TensorBoard backend of configs/_base_/default_runtime.py: off by default, switched on with

    --cfg-options visualizer.vis_backends.1.enabled=True

(the second ``vis_backends`` entry is a ``SwitchableTensorboardVisBackend``; enabled, it writes
event files to the run's ``vis_data/`` folder, and the local JSON logs stay).
"""
import copy
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import uuid

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
DEMO = osp.join(REPO, 'configs', 'mcl', 'mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py')
SWITCH = 'visualizer.vis_backends.1.enabled=True'


def _tiny_demo(tmp_path, data_root) -> str:
    """The MCL CPU demo at 64 px, 2 iterations, a log line per iteration, no worker processes."""
    cfg = Config.fromfile(DEMO)
    for views in cfg.train_dataloader.dataset.pipeline[1].transforms:
        views[0].scale = 64
    cfg.model.tile_pooler.out_size = 2
    cfg.train_dataloader.dataset.data_root = str(data_root)
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_iters = 2
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    path = str(tmp_path / 'mcl_tiny_tb.py')
    cfg.dump(path)
    return path


def _visualizer_backends(cfg: Config, save_dir: str) -> dict:
    from mmengine.registry import VISUALIZERS
    # deep copy: mmengine's Visualizer writes save_dir into the backend dicts it is given
    vis = dict(copy.deepcopy(cfg.visualizer), name=f'tb_test_{uuid.uuid4().hex}',
               save_dir=save_dir)
    return VISUALIZERS.build(vis)._vis_backends


def test_tensorboard_is_off_by_default(tmp_path):
    cfg = Config.fromfile(DEMO)
    assert [b['type'] for b in cfg.visualizer.vis_backends
            ] == ['LocalVisBackend', 'SwitchableTensorboardVisBackend']
    backends = _visualizer_backends(cfg, str(tmp_path / 'off'))
    tb = backends['SwitchableTensorboardVisBackend']
    assert not tb.enabled
    tb.add_scalar('loss', 1.0, step=1)
    tb.close()
    assert not glob.glob(str(tmp_path / 'off' / '**' / 'events.out.tfevents.*'), recursive=True)
    key, value = SWITCH.split('=')
    cfg.merge_from_dict({key: value})
    tb = _visualizer_backends(cfg, str(tmp_path / 'on'))['SwitchableTensorboardVisBackend']
    tb.add_scalar('loss', 1.0, step=1)
    tb.close()
    assert len(glob.glob(str(tmp_path / 'on' / 'vis_data' / 'events.out.tfevents.*'))) == 1


def test_train_with_the_switch_writes_tensorboard_events(tmp_path, small_data):
    """tools/train.py with the documented --cfg-options: an event file with the training
    scalars, next to the usual JSON log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    work = tmp_path / 'work'
    cfg = _tiny_demo(tmp_path, small_data / 'pretrain')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/train.py', cfg, '--work-dir',
        str(work), '--cfg-options',
        SWITCH
    ],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = glob.glob(str(work / '*' / 'vis_data' / 'events.out.tfevents.*'))
    assert len(events) == 1
    acc = EventAccumulator(events[0])
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert {'loss', 'lr', 'loss_level0'} <= set(tags), tags
    assert [e.step for e in acc.Scalars('loss')] == [1, 2]
    # the local backend is still on: the JSON log holds the same losses
    logs = [
        p for p in glob.glob(str(work / '*' / 'vis_data' / '*.json'))
        if not p.endswith('scalars.json')
    ]
    with open(logs[0]) as f:
        losses = [json.loads(line)['loss'] for line in f if '"loss"' in line]
    assert [round(e.value, 4) for e in acc.Scalars('loss')] == [round(v, 4) for v in losses]
