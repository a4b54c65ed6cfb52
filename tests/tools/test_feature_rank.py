"""Effective rank of cached probe features (tools/analysis/feature_rank.py,
tools/analysis/knn/linear.py::effective_rank): exact values on constructed features, and the tool
reading a linear-probe folder's rows and cache."""
import importlib
import json

import pytest
import torch

from tools.analysis.knn.cache import cache_path
from tools.analysis.knn.linear import effective_rank, feature_key


def test_effective_rank_exact_cases():
    # every feature on one line (plus an offset the centring removes): rank 1
    t = torch.arange(10.0)[:, None]
    assert effective_rank(t * torch.tensor([[1.0, 2.0, -1.0]]) + 5) == pytest.approx(1.0)
    # +-1 along each of 4 orthogonal axes, equal variance: rank 4 (the dimension)
    eye = torch.eye(4)
    assert effective_rank(torch.cat([eye, -eye]) * 3) == pytest.approx(4.0)
    # variances 1 : 1 : 0 -> 2; a dominant direction pulls the rank towards 1
    assert effective_rank(torch.cat([eye[:2], -eye[:2]])) == pytest.approx(2.0)
    skew = torch.cat([eye[:2], -eye[:2]]) * torch.tensor([10.0, 1.0, 1.0, 1.0])
    assert 1.0 < effective_rank(skew) < 1.2


def test_feature_rank_tool_reads_the_probe_rows_and_cache(tmp_path):
    tool = importlib.import_module('tools.analysis.feature_rank')
    settings = dict(img_size=64, use_ema=False, cv=dict(folds=5))
    rows = [dict(name='random', source='random', seed=s) for s in (0, 1)]
    rows.append(dict(name='random', source='random', seed=1))  # a second probe seed: once
    (tmp_path / 'linear.json').write_text(json.dumps(dict(settings=settings, results=rows)))
    eye = torch.eye(4)
    for seed, feats in ((0, torch.cat([eye, -eye])), (1, torch.arange(8.0)[:, None] * eye[0])):
        path = cache_path(str(tmp_path / 'cache'), 'random', feature_key(settings, 'random', seed))
        (tmp_path / 'cache').mkdir(exist_ok=True)
        torch.save(dict(train=feats[:6], val=feats[6:]), path)
    out = tool.rank_rows(str(tmp_path))
    assert [(r['seed'], r['crops']) for r in out] == [(0, 8), (1, 8)]
    assert out[0]['rank'] == pytest.approx(4.0) and out[1]['rank'] == pytest.approx(1.0)
    assert out[1]['top10'] == pytest.approx(1.0)
    md = tmp_path / 'rank.md'
    assert tool.main([str(tmp_path), '--out', str(md)]) == 0
    assert '| random | 0 | online | 8 | 4.0 | 1.00 |' in md.read_text()
    # a folder without a probe table, and a missing cache file: exit 2 with the path
    assert tool.main([str(tmp_path / 'nothing')]) == 2
    rows.append(dict(name='random', source='random', seed=2))
    (tmp_path / 'linear.json').write_text(json.dumps(dict(settings=settings, results=rows)))
    with pytest.raises(FileNotFoundError, match='features of random seed 2'):
        tool.rank_rows(str(tmp_path))
