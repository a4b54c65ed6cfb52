"""tools/analysis/plrc_teacher_mass.py: the sampled-point teacher sits on its own key while
same-region keys differ; the co-located teacher does not (synthetic setting, seconds)."""
import pytest
import torch

from tools.analysis.plrc_teacher_mass import synthetic, teacher_mass


def test_teacher_mass_on_constructed_embeddings():
    low = synthetic(0.01)
    assert low['key_cos']['same_region'] == pytest.approx(0.01, abs=0.02)
    assert low['sampled_point']['own'] > 0.99 and low['sampled_point']['own_cos'] > 0.999
    assert low['co_located']['own'] < 0.01 and low['co_located']['max'] < 0.1
    high = synthetic(0.9)
    assert high['sampled_point']['own'] < low['sampled_point']['own']
    assert high['co_located']['own'] < high['sampled_point']['own']
    keys = torch.eye(4)
    assert teacher_mass(keys, keys, tau=0.01)['own'] == pytest.approx(1.0)
