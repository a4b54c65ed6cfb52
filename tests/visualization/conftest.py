import glob
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def demo_config():
    """``demo_config('plrc')``: path of the method's CPU demo config, found by glob (the demo
    configs are being renamed; ablation variants have longer names than the base demo)."""

    def find(method: str) -> str:
        paths = glob.glob(osp.join(REPO, 'configs', method, '*demo*.py'))
        assert paths, f'no demo config in configs/{method}'
        return min(paths, key=lambda p: (len(osp.basename(p)), p))

    return find
