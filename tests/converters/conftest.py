"""Shared fixture of the converter tests: a small MCL pre-training checkpoint."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'helpers'))
from mcl_ckpt_factory import PretrainModel, TileHead, fpn, resnet, save  # noqa: E402


@pytest.fixture(scope='module')
def r18(tmp_path_factory):
    model = PretrainModel(resnet(18), fpn([64, 128, 256, 512]), TileHead())
    path = save(model.state_dict(), str(tmp_path_factory.mktemp('r18') / 'mcl_r18.pth'))
    return model, path
