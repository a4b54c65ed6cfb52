"""``import mcl_plugin`` registers components and changes nothing else (issue 16, item 4).

A plugin listed in ``custom_imports`` is imported into every run of the user's mmdet /
mmpretrain configs, so an import that patches OpenMMLab changes runs that never use the plugin
(mmdet #8762). The check runs in fresh interpreters, because the test process itself has long
imported the plugin:

1. a first interpreter imports ``mcl_plugin`` and lists the OpenMMLab modules that import
   loads (mmengine, mmcv, mmdet, mmpretrain and their submodules);
2. a second one imports exactly those modules first, so that their own import-time work is
   not blamed on the plugin, then takes a snapshot of every attribute of every one of those
   modules and of every class they define (the objects themselves, compared by identity:
   a registry that gains entries is the same object), imports ``mcl_plugin`` and compares.

Attributes that appear on a package because one of its submodules was imported are expected;
anything else that was rebound, removed or added is reported. So are a changed default scope,
a created process group, a changed multiprocessing start method and changed environment
variables.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGES = ('mmengine', 'mmcv', 'mmdet', 'mmpretrain')

LIST_MODULES = r'''
import json, sys
import mcl_plugin  # noqa: F401
packages = tuple(sys.argv[1].split(','))
print(json.dumps([name for name in list(sys.modules)
                  if name.split('.')[0] in packages and sys.modules[name] is not None]))
'''

COMPARE = r'''
import importlib, json, multiprocessing, os, sys, types

packages = tuple(sys.argv[1].split(','))
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)

# Bookkeeping Python itself writes into modules and classes.
IGNORED = {'__warningregistry__', '__slotnames__'}


def openmmlab_modules():
    return {name: module for name, module in list(sys.modules.items())
            if isinstance(module, types.ModuleType) and name.split('.')[0] in packages}


def snapshot():
    found = {}
    for name, module in openmmlab_modules().items():
        for attr, value in list(vars(module).items()):
            if attr in IGNORED:
                continue
            found[(name, attr)] = value
            if isinstance(value, type) and value.__module__ == name:
                for cls_attr, cls_value in list(vars(value).items()):
                    if cls_attr not in IGNORED:
                        found[(name, f'{value.__qualname__}.{cls_attr}')] = cls_value
    return found


def state():
    from mmengine.registry import DefaultScope
    import torch.distributed as dist
    scope = DefaultScope.get_current_instance()
    return dict(default_scope=scope and scope.scope_name,
                dist_initialized=dist.is_available() and dist.is_initialized(),
                start_method=multiprocessing.get_start_method(allow_none=True),
                environ=dict(os.environ))


before_modules = set(openmmlab_modules())
before = snapshot()
before_state = state()

import mcl_plugin  # noqa: E402,F401

after = snapshot()
after_state = state()
problems = []
for key, value in before.items():
    if key not in after:
        problems.append(f'removed: {key[0]}.{key[1]}')
    elif after[key] is not value:
        problems.append(f'changed: {key[0]}.{key[1]} = {after[key]!r}')
for key, value in after.items():
    name, attr = key
    if key in before or name not in before_modules:
        continue
    if isinstance(value, types.ModuleType) and value.__name__ == f'{name}.{attr}':
        continue  # a submodule imported for the first time is bound on its package
    problems.append(f'added: {name}.{attr} = {value!r}')
for key in before_state:
    if before_state[key] != after_state[key]:
        if key == 'environ':
            changed = sorted(k for k in set(before_state[key]) | set(after_state[key])
                             if before_state[key].get(k) != after_state[key].get(k))
            problems.append(f'environment variables changed: {changed}')
        else:
            problems.append(f'{key}: {before_state[key]!r} -> {after_state[key]!r}')
print(json.dumps(dict(checked=len(before), modules=len(before_modules), problems=problems)))
'''


def _run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', script, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_import_mcl_plugin_changes_no_openmmlab_attribute():
    modules = _run(LIST_MODULES, ','.join(PACKAGES))
    assert any(m.startswith('mmengine.') for m in modules)
    report = _run(COMPARE, ','.join(PACKAGES), json.dumps(modules))
    # the snapshot really covers the OpenMMLab stack (thousands of attributes)
    assert report['modules'] == len(modules) and report['checked'] > 10000, report
    assert report['problems'] == [], '\n'.join(report['problems'])


def test_mmengine_dist_entry_points_are_mmengine_s_own():
    """The two functions the old import-time patch replaced are mmengine's, unwrapped."""
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel

    import mcl_plugin  # noqa: F401
    for fn in (dist_utils._init_dist_pytorch, MMDistributedDataParallel.__init__):
        assert not hasattr(fn, '__wrapped__'), fn
        assert osp.join('mmengine', '') in fn.__code__.co_filename, fn.__code__.co_filename


def test_register_all_modules_sets_the_scope_only_when_asked():
    from mmengine.registry import DefaultScope

    from mcl_plugin.utils import register_all_modules
    from mcl_plugin.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):  # the scope of an mmdet config
        register_all_modules(init_default_scope=False)
        assert DefaultScope.get_current_instance().scope_name == 'mmdet'
        register_all_modules()
        assert DefaultScope.get_current_instance().scope_name == 'mcl_plugin'
        for name in ('MCL', 'MCLSupervised', 'SoCo', 'DetCo', 'PLRC'):
            assert MODELS.get(name) is not None, name
