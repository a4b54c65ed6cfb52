"""Tests of mcl_plugin.converters.io: reading sources, refusing outputs that would overwrite
the source (through convert_checkpoint and tools/convert_to_mmdet.py), writing."""
import hashlib
import os.path as osp
import sys
from collections import OrderedDict

import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import DEMO, tool_main  # noqa: E402

from mcl_plugin.converters.convert import convert_checkpoint  # noqa: E402
from mcl_plugin.converters.io import (ConversionError, extract_state_dict,  # noqa: E402
                                      load_source_checkpoint, sha256sum, state_shapes,
                                      write_checkpoint)


def test_load_source_reports_unreadable_files(tmp_path):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(ConversionError, match='empty'):
        load_source_checkpoint(str(empty))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ConversionError, match='truncated or corrupted'):
        load_source_checkpoint(str(junk))
    with pytest.raises(ConversionError, match='does not exist'):
        load_source_checkpoint(str(tmp_path / 'missing.pth'))


def _digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_output_that_is_the_source_is_refused_before_writing(r18, tmp_path, monkeypatch, capsys):
    """Issue 21 item 1: `convert_to_mmdet.py x.pth x.pth` replaced the pre-training checkpoint."""
    import os
    import shutil
    _, original = r18
    src = tmp_path / 'x.pth'
    shutil.copy(original, src)
    before = (_digest(src), os.stat(src).st_mtime_ns)
    link = tmp_path / 'link.pth'
    link.symlink_to(src)
    hard = tmp_path / 'hard.pth'
    os.link(src, hard)
    monkeypatch.chdir(tmp_path)
    main = tool_main('convert_to_mmdet.py')
    for dst in ('x.pth', './x.pth', str(src), str(link), str(hard), 'sub/../x.pth'):
        with pytest.raises(ConversionError, match='source checkpoint .* itself'):
            convert_checkpoint('x.pth', dst, DEMO)
        assert main(['x.pth', dst, '--config', DEMO]) == 2
        assert 'same file' in capsys.readouterr().err
    # the source given through the link, the output the real file
    with pytest.raises(ConversionError, match='itself'):
        convert_checkpoint(str(link), str(src), DEMO)
    assert (_digest(src), os.stat(src).st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['hard.pth', 'link.pth', 'x.pth']


def test_output_that_is_a_directory_is_refused(r18, tmp_path):
    _, src = r18
    with pytest.raises(ConversionError, match='is a directory.*give a file path'):
        convert_checkpoint(src, str(tmp_path), DEMO)
    assert list(tmp_path.iterdir()) == []


def test_extract_state_dict_layouts_module_prefix_and_meta():
    """Runner (``state_dict`` + ``meta``), official SoCo / Swin (``model``) and bare state dicts;
    ``module.`` is stripped at the start of a key only, non-tensors are skipped."""
    w, b = torch.arange(6.).view(2, 3), torch.tensor([1.5])
    bare = OrderedDict([('module.backbone.w', w), ('neck.module.b', b), ('steps', 3)])
    expected = [('backbone.w', w), ('neck.module.b', b)]
    for obj, meta in ((dict(state_dict=bare, meta=dict(epoch=2)), dict(epoch=2)),
                      (dict(model=bare, meta='not a mapping'), {}), (bare, {})):
        state, got_meta = extract_state_dict(obj)
        assert [(k, v) for k, v in state.items()] == expected
        assert got_meta == meta
    assert state_shapes(state) == OrderedDict([('backbone.w', (2, 3)), ('neck.module.b', (1, ))])
    with pytest.raises(ConversionError, match="'x.pth' holds a list"):
        extract_state_dict([w], 'x.pth')
    with pytest.raises(ConversionError, match=r"no tensors .*\['epoch'\]"):
        extract_state_dict(dict(epoch=1), 'x.pth')


def test_write_checkpoint_is_atomic_and_loadable(tmp_path):
    src = tmp_path / 'src.pth'
    src.write_bytes(b'source')
    dst = tmp_path / 'new' / 'dir' / 'out.pth'
    ckpt = dict(state_dict=OrderedDict(w=torch.ones(2)), meta=dict(k=1))
    write_checkpoint(ckpt, str(src), str(dst))
    assert sorted(p.name for p in dst.parent.iterdir()) == ['out.pth']  # no temporary left
    loaded = torch.load(str(dst), weights_only=True)
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2)) and loaded['meta'] == dict(k=1)
    assert sha256sum(str(dst)) == hashlib.sha256(dst.read_bytes()).hexdigest()
    assert sha256sum(str(src), chunk=2) == hashlib.sha256(b'source').hexdigest()
    with pytest.raises(ConversionError, match='itself'):
        write_checkpoint(ckpt, str(src), str(src))
    assert src.read_bytes() == b'source'
