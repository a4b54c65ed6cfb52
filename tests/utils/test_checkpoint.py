"""Checkpoint loading never runs pickled code without --trust-checkpoint (issue 21, item 4).

A crafted ``.pth`` whose unpickling writes a marker file is fed to the library loader, the
converter, the pre-trained-weights checker and the loading context of the entry points; the marker
must only appear when the file is explicitly trusted. Runner-style checkpoints (message hub
``HistoryBuffer`` s, NumPy RNG states and scalars) must load without trust.
"""
import os.path as osp
import random
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import DEMO, PretrainModel, TileHead, fpn, resnet, tool_main  # noqa: E402

from mcl_plugin.utils.checkpoint import (UnsafeCheckpointError, checkpoint_loading,  # noqa: E402
                                         load_checkpoint_file)


class _Payload:
    """Unpickling this object calls ``exec`` (it could as well delete files)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("ran")', )


@pytest.fixture
def crafted(tmp_path):
    """An mmengine-shaped checkpoint with real weights and one malicious object in ``meta``."""
    marker = str(tmp_path / 'payload_ran')
    model = PretrainModel(resnet(18), fpn([64, 128, 256, 512]), TileHead())
    path = str(tmp_path / 'crafted.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note=_Payload(marker))), path)
    return path, marker


def runner_like_checkpoint(path: str) -> str:
    """What mmengine's Runner + RandomStateHook put into a checkpoint besides tensors."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_checkpoint_runner_like')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/lr', np.float64(0.1))
    hub.update_info('iter', 3)
    torch.save(
        dict(meta=dict(seed=np.int64(0), iter=3, epoch=0, cfg='x = 1', time='20261130'),
             state_dict=dict(w=torch.ones(2)),
             message_hub=hub.state_dict(),
             optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0])]),
             mcl_plugin_rng_states=dict(python=random.getstate(),
                                        numpy=np.random.get_state(),
                                        torch=torch.get_rng_state())), path)
    return path


def test_runner_checkpoints_load_without_trust(tmp_path):
    path = runner_like_checkpoint(str(tmp_path / 'iter_3.pth'))
    ckpt = load_checkpoint_file(path)
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert ckpt['meta']['seed'] == 0 and ckpt['mcl_plugin_rng_states']['numpy'][0] == 'MT19937'
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 1.5
    # The allow-list is scoped: outside the loader torch's default still refuses the file.
    with pytest.raises(Exception, match='[Ww]eights only'):
        torch.load(path, weights_only=True)


def test_crafted_pickle_is_refused_by_the_loader(crafted):
    path, marker = crafted
    with pytest.raises(UnsafeCheckpointError, match='--trust-checkpoint') as info:
        load_checkpoint_file(path)
    assert 'exec' in str(info.value) and 'crafted.pth' in str(info.value)
    assert not osp.exists(marker)
    with pytest.warns(UserWarning, match='trusted'):
        load_checkpoint_file(path, trust=True)
    assert osp.exists(marker)  # the flag is the one way to run it


def test_crafted_pickle_is_refused_by_the_converter(crafted, tmp_path, capsys):
    path, marker = crafted
    dst = str(tmp_path / 'out.pth')
    main = tool_main('convert_to_mmdet.py')
    assert main([path, dst, '--config', DEMO]) == 2
    err = capsys.readouterr().err
    assert '--trust-checkpoint' in err and 'exec' in err
    assert not osp.exists(marker) and not osp.exists(dst)
    with pytest.warns(UserWarning, match='trusted'):
        assert main([path, dst, '--config', DEMO, '--trust-checkpoint']) == 0
    assert osp.exists(marker) and osp.exists(dst)


def test_crafted_pickle_is_refused_by_check_pretrained(crafted, capsys):
    path, marker = crafted
    assert tool_main('check_pretrained.py')([DEMO, path]) == 1
    err = capsys.readouterr().err
    assert '--trust-checkpoint' in err and 'tools/train.py' in err
    assert not osp.exists(marker)


def test_entry_point_loading_context(crafted, tmp_path):
    """What tools/train.py and tools/test.py wrap around the Runner's loads."""
    from mmengine.runner.checkpoint import _load_checkpoint
    path, marker = crafted
    with pytest.raises(UnsafeCheckpointError, match='--trust-checkpoint'):
        with checkpoint_loading(False, '--resume'):
            _load_checkpoint(path, map_location='cpu')
    assert not osp.exists(marker)
    runner_ckpt = runner_like_checkpoint(str(tmp_path / 'iter_3.pth'))
    with checkpoint_loading(False):
        assert _load_checkpoint(runner_ckpt, map_location='cpu')['meta']['iter'] == 3
    with checkpoint_loading(True):
        _load_checkpoint(path, map_location='cpu')
    assert osp.exists(marker)
