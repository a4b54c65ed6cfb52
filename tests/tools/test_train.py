"""End-to-end runs of the training entry points on CPU: tools/train.py and `mim train`."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'mcl', 'mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py')
BIN = osp.dirname(sys.executable)


def tiny_demo_config(tmp_path, data_root, iters, img=64):
    """The CPU demo config at 64 px (tiles 64/32/16 px = 2x2 cells of P5/P4/P3)."""
    cfg = Config.fromfile(DEMO)
    for views in cfg.train_dataloader.dataset.pipeline[1].transforms:
        views[0].scale = img
    cfg.model.tile_pooler.out_size = img // 32
    cfg.train_dataloader.dataset.data_root = str(data_root)
    cfg.train_dataloader.num_workers = 1
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_iters = iters
    warmup = max(1, iters // 10)
    cfg.param_scheduler[0].end = warmup
    cfg.param_scheduler[1].begin = warmup
    cfg.param_scheduler[1].T_max = iters - warmup
    cfg.param_scheduler[1].end = iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = iters
    path = osp.join(tmp_path, 'mcl_tiny_demo.py')
    cfg.dump(path)
    return path


def _losses(work_dir):
    logs = [osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
            if f.endswith('.json') and f != 'scalars.json' and 'vis_data' in dp]
    assert logs, f'no json log under {work_dir}'
    with open(sorted(logs)[-1]) as f:
        return [json.loads(line)['loss'] for line in f if '"loss"' in line]


def _run(cmd, cwd=REPO, timeout=600):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_runner_trains_demo_config_20_iters_loss_goes_down(tmp_path, small_data):
    cfg = tiny_demo_config(tmp_path, small_data / 'pretrain', iters=20)
    work = tmp_path / 'work'
    _run([sys.executable, 'tools/train.py', cfg, '--work-dir', str(work)])
    assert (work / 'iter_20.pth').exists()
    losses = _losses(work)
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, losses


@pytest.mark.slow
def test_mim_train_plugin_config(tmp_path, small_data):
    if shutil.which('mim', path=BIN) is None:
        pytest.fail('mim is not installed in the environment (tools/setup.sh installs openmim)')
    cfg = tiny_demo_config(tmp_path, small_data / 'pretrain', iters=2)
    work = tmp_path / 'mim_work'
    _run([osp.join(BIN, 'mim'), 'train', 'mcl_plugin', cfg, '--work-dir', str(work)],
         cwd=tmp_path)
    assert (work / 'iter_2.pth').exists()


def test_mim_finds_the_plugin_package_layout():
    from mim.utils import get_installed_path
    root = get_installed_path('mcl_plugin')
    assert osp.isfile(osp.join(root, '.mim', 'tools', 'train.py'))
    assert osp.isfile(osp.join(root, '.mim', 'configs', 'mcl', osp.basename(DEMO)))


@pytest.mark.slow
@pytest.mark.parametrize('num_workers', [0, 2])
def test_resume_continues_exactly(tmp_path, small_data, num_workers):
    """4 iterations straight == 2 iterations, kill, --resume, 2 more: identical online weights,
    EMA target, optimizer state and schedule position. With ``num_workers=0`` the augmentations
    draw from this process's generators, which mmengine's replay of the first batches moves
    (issue 21 item 3: 330 of 412 tensors differed before RandomStateHook restored after it)."""
    import torch
    cfg_path = tiny_demo_config(tmp_path, small_data / 'pretrain', iters=4, img=32)
    cfg = Config.fromfile(cfg_path)
    cfg.model.num_levels = 2
    cfg.model.tile_pooler.out_size = 1
    cfg.train_dataloader.dataset.pipeline[1].num_views = [2, 2]
    cfg.train_dataloader.num_workers = num_workers
    cfg.default_hooks.checkpoint.interval = 2
    cfg.dump(cfg_path)
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    _run([sys.executable, 'tools/train.py', cfg_path, '--work-dir', str(straight)])
    # A run killed after its iteration-2 checkpoint: keep iter_2.pth only, then resume from it.
    # (Shortening max_iters instead would change the EMA momentum schedule, which reads it.)
    _run([sys.executable, 'tools/train.py', cfg_path, '--work-dir', str(split)])
    os.remove(split / 'iter_4.pth')
    os.remove(split / 'last_checkpoint')
    _run([sys.executable, 'tools/train.py', cfg_path, '--work-dir', str(split), '--resume',
          str(split / 'iter_2.pth')])
    a = torch.load(straight / 'iter_4.pth', map_location='cpu', weights_only=False)
    b = torch.load(split / 'iter_4.pth', map_location='cpu', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 4
    assert any(k.startswith('target_net.') for k in a['state_dict'])
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    for (ka, va), (kb, vb) in zip(a['optimizer']['state'].items(), b['optimizer']['state'].items()):
        for name in va:
            assert torch.equal(va[name], vb[name]), (ka, name)
    assert a['param_schedulers'] == b['param_schedulers']


def test_amp_on_cpu_says_it_needs_a_gpu():
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: --amp is supported')
    proc = subprocess.run([sys.executable, 'tools/train.py', DEMO, '--amp'], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert '--amp needs a GPU' in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.parametrize('option,message', [
    ('train_dataloader.batch_size=1', 'MCL needs at least 2 images per batch'),
    ('train_dataloader.dataset.pipeline.1.num_views=[2,4]', r'num_views=\[2, 4\]'),
])
def test_mcl_refuses_batches_without_negatives_and_mixed_branches(tmp_path, small_data, option,
                                                                  message):
    """Issue 21: batch 1 trained with loss 0.0000 / grad_norm 0 for ever; num_views=[2, 4] has
    the right total for S=3 but mixes the two branches' augmentations."""
    cfg_path = tiny_demo_config(tmp_path, small_data / 'pretrain', iters=2, img=32)
    proc = subprocess.run([sys.executable, 'tools/train.py', cfg_path, '--work-dir',
                           str(tmp_path / 'work'), '--cfg-options', option],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    import re
    assert re.search(message, proc.stderr), proc.stderr[-2000:]
    assert not list((tmp_path / 'work').rglob('*.pth'))


def test_resume_without_a_checkpoint_says_so(tmp_path):
    """Issue 21 item 5: `--resume` in an empty work dir logged "Auto resumed from ... None"."""
    import importlib.util

    from mmengine.logging import MMLogger
    spec = importlib.util.spec_from_file_location('train_tool', osp.join(REPO, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    logger = MMLogger.get_instance('test_resume_without_a_checkpoint', log_file=str(tmp_path / 'l'))
    assert tool._auto_resume(str(tmp_path)) is False
    logger.handlers[-1].flush()
    text = (tmp_path / 'l').read_text()
    assert 'no checkpoint found in' in text and 'starts from iteration 0' in text
    (tmp_path / 'iter_2.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert tool._auto_resume(str(tmp_path)) is True
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    with pytest.raises(SystemExit, match='gone.pth.*does not exist'):
        tool._auto_resume(str(tmp_path))
