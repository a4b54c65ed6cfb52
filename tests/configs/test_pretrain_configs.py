"""Every pre-training config builds its model in the plugin scope."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mcl_plugin.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    if osp.basename(osp.dirname(p)) not in ('_base_', 'benchmarks'))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mcl_plugin'
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
