"""The configs: every file under configs/ loads, every pre-training config builds its model in the
plugin scope, and the CPU demo configs follow one naming scheme and inherit the shared demo
bases instead of copying them."""
import ast
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from mcl_plugin.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ALL = sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))
# Building needs neither data nor a GPU for the pre-training configs; the mmdet benchmark configs
# (fine-tuning) are built by the hand-off tests.
CONFIGS = sorted(p for p in ALL
                 if osp.relpath(p, REPO).split(osp.sep)[1] not in ('_base_', 'benchmarks'))
DEMOS = [p for p in ALL if 'demo' in osp.basename(p) and '_base_' not in p]

#: ``<algo>_<backbone>[-<neck>][_<component>]_<N>xb<B>[-<tricks>]-<schedule>_cpu-demo_<data>.py``
#: (mmpretrain's scheme; mmdet's component segment for the benchmark configs), the demo marker
#: always right before the data; the benchmarks' random-init twin adds ``_random-init``.
SEG = r'[a-z0-9]+(?:[-.][a-z0-9]+)*'
DEMO_NAME = re.compile(rf'^(?P<algo>{SEG})_(?P<model>{SEG})(?:_{SEG})?_(?P<gpus>\d+)xb(?P<batch>\d+)'
                       rf'(?:-{SEG})?-(?P<sched>\d+)(?P<unit>i|e|x)_cpu-demo_(?P<data>{SEG})'
                       r'(?:_random-init)?\.py$')


def _rel(paths):
    return [osp.relpath(p, REPO) for p in paths]


@pytest.mark.parametrize('path', ALL, ids=_rel(ALL))
def test_config_loads(path):
    """Every config, _base_ files and mmdet benchmarks included, loads (imports included)."""
    cfg = Config.fromfile(path)
    assert cfg.filename == path


@pytest.mark.parametrize('path', CONFIGS, ids=_rel(CONFIGS))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mcl_plugin'
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_there_are_demo_configs_for_every_method():
    methods = {osp.relpath(p, REPO).split(osp.sep)[1] for p in DEMOS}
    assert {'mcl', 'soco', 'detco', 'plrc', 'mcl_sup', 'baselines', 'benchmarks'} <= methods


@pytest.mark.parametrize('path', DEMOS, ids=_rel(DEMOS))
def test_demo_config_name_follows_the_scheme(path):
    """One scheme, the marker once and in one place; batch and schedule in the name are the
    config's."""
    name = osp.basename(path)
    match = DEMO_NAME.match(name)
    assert match, f'{name} does not follow <algo>_<model>_<N>xb<B>-...-<sched>_cpu-demo_<data>.py'
    assert name.count('demo') == 1, name
    cfg = Config.fromfile(path)
    assert int(match['batch']) == cfg.train_dataloader.batch_size, name
    sched, unit = int(match['sched']), match['unit']
    if unit == 'i':
        assert cfg.train_cfg.max_iters == sched, name
    else:  # epochs; mmdet's '1x' = 12 epochs
        assert cfg.train_cfg.max_epochs == (sched * 12 if unit == 'x' else sched), name


def _assigned(path):
    """Top-level names assigned in a config file."""
    tree = ast.parse(open(path, encoding='utf-8').read())
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}


def _bases(path):
    """Every local file ``path`` inherits from, recursively (``mmdet::`` bases are skipped)."""
    tree = ast.parse(open(path, encoding='utf-8').read())
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            for base in [value] if isinstance(value, str) else value:
                if '::' in base:
                    continue
                base = osp.normpath(osp.join(osp.dirname(path), base))
                found += [base] + _bases(base)
    return found


PRETRAIN_DEMOS = [p for p in DEMOS if '/benchmarks/' not in p.replace(osp.sep, '/')]


@pytest.mark.parametrize('path', PRETRAIN_DEMOS, ids=_rel(PRETRAIN_DEMOS))
def test_demo_config_inherits_the_shared_demo_bases(path):
    """The short schedule and the iteration-based runtime come from the shared demo bases, the
    small local data from a demo dataset base: a demo config does not copy them."""
    bases = [osp.relpath(b, osp.join(REPO, 'configs')).replace(osp.sep, '/') for b in _bases(path)]
    assert '_base_/schedules/coslr-300i_cpu-demo.py' in bases, path
    assert '_base_/default_runtime_cpu-demo.py' in bases, path
    assert any(re.match(r'_base_/datasets/.*_cpu-demo\.py$', b) for b in bases), path
    # neither the demo nor a demo it builds on sets the loop, the hooks or the log again
    for f in [path] + [osp.join(REPO, 'configs', b) for b in bases if not b.startswith('_base_/')]:
        copied = _assigned(f) & {'train_cfg', 'default_hooks', 'log_processor', 'max_iters'}
        assert not copied, (osp.relpath(f, REPO), copied)
    # KeepFreedMemoryHook where the runtime's comment says: --cfg-options
    # custom_hooks.4.enabled=False switches it off in every demo
    cfg = Config.fromfile(path)
    assert cfg.custom_hooks[4] == dict(type='KeepFreedMemoryHook'), path
    cfg.merge_from_dict({'custom_hooks.4.enabled': False}, allow_list_keys=True)
    assert cfg.custom_hooks[4] == dict(type='KeepFreedMemoryHook', enabled=False), path


def test_demo_bases_are_named_with_the_same_marker():
    demo_bases = [p for p in ALL if '_base_' in p and 'demo' in osp.basename(p)]
    assert len(demo_bases) >= 7  # 5 datasets, the schedule, the runtime
    for p in demo_bases:
        assert osp.basename(p).endswith('_cpu-demo.py') and osp.basename(p).count('demo') == 1, p
