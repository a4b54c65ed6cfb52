"""Linear probe (tools/analysis/knn/linear.py, tools/analysis/linear_probe.py): the classifier on
constructed features (separable -> 100 %, shuffled labels -> chance), and the tool end to end on
the --small objects set: rows per (checkpoint, seed), the feature cache, resuming."""
import importlib
import json

import pytest
import torch

from tools.analysis.knn import (LinearConfig, linear_reading, linear_top1,
                                nearest_centroid_top1)


def _tool():
    """The CLI module (``tools`` is a package; the script also runs standalone)."""
    return importlib.import_module('tools.analysis.linear_probe')


def _blobs(labels, dim, gen, scale=3.0):
    centres = torch.randn(int(labels.max()) + 1, dim, generator=torch.Generator().manual_seed(7))
    return scale * centres[labels] + torch.randn(len(labels), dim, generator=gen)


def test_linear_separable_features_score_100_percent_and_shuffled_labels_chance():
    gen = torch.Generator().manual_seed(0)
    num_classes, dim = 5, 32
    train_labels = torch.arange(num_classes).repeat_interleave(60)
    test_labels = torch.arange(num_classes).repeat_interleave(40)
    train, test = _blobs(train_labels, dim, gen), _blobs(test_labels, dim, gen)
    cfg = LinearConfig(epochs=30)
    assert linear_top1(train, train_labels, test, test_labels, num_classes, cfg) == 1.0
    # labels that carry no information: held-out accuracy falls to chance (1/5)
    shuffled = train_labels[torch.randperm(len(train_labels), generator=gen)]
    acc = linear_top1(train, shuffled, test, test_labels, num_classes, cfg)
    assert acc < 0.4
    # deterministic for a seed
    assert acc == linear_top1(train, shuffled, test, test_labels, num_classes, cfg)


def test_nearest_centroid_on_centred_normalised_features_exact_cases():
    # 2 classes in 2-d; the training mean is (1, 1). Centred, the class means point along +x
    # (class 0) and +y (class 1); a raw test point is assigned by its direction after centring.
    train = torch.tensor([[3., 1.], [5., 1.], [1., 3.], [1., 5.], [-4., -3.], [-3., -4.]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    # centred: (2,0), (4,0) -> class 0 along +x; (0,2), (0,4) -> class 1 along +y; class 2
    # along (-1,-1)
    test = torch.tensor([[2., 1.1], [1.1, 9.], [0., -1.], [-1., 0.2]])
    # (1, .1) -> 0; (.1, 8) -> 1; (-1, -2) -> 2; (-2, -.8) -> 2
    assert nearest_centroid_top1(train, labels, test, torch.tensor([0, 1, 2, 2]), 3) == 1.0
    assert nearest_centroid_top1(train, labels, test, torch.tensor([0, 1, 2, 0]), 3) == 0.75
    # centring removes a common offset (ReLU features share a large one): shifting every
    # feature by +100 gives the same answers
    assert nearest_centroid_top1(train + 100, labels, test + 100, torch.tensor([0, 1, 2, 2]),
                                 3) == 1.0
    # a class without training samples (class 3) is never predicted
    assert nearest_centroid_top1(train, labels, test, torch.tensor([0, 1, 2, 2]), 4) == 1.0


def test_reading_against_random_init_uses_three_times_the_larger_spread():
    rows = [dict(name='random', seed=s, top1=t, ncm_top1=n)
            for s, t, n in ((0, .20, .14), (1, .22, .15), (2, .21, .145))]
    rows += [dict(name='mcl', seed=s, top1=t, ncm_top1=.19) for s, t in ((0, .26), (1, .30))]
    lines = linear_reading(dict(results=rows))
    # linear: 28 vs 21 +- 1; the larger half-range is mcl's 2 -> threshold 6 < 7: exceeds
    assert lines[0].startswith('mcl linear top-1 28.00 vs random 21.00 ± 1.00 (3 seeds): +7.00, '
                               'exceeds 3x the seed spread (6.00)')
    # NCM: 19 vs 14.5 +- 0.5; mcl has no probe-seed spread -> threshold 1.5
    assert lines[1].startswith('mcl NCM top-1 19.00 vs random 14.50 ± 0.50 (3 seeds): +4.50, '
                               'exceeds 3x the seed spread (1.50) (one pre-training run')
    rows[4]['top1'] = .36  # mcl 31 +- 5 -> threshold 15 > 10
    assert 'does not exceed 3x the seed spread (15.00)' in linear_reading(dict(results=rows))[0]
    one = [rows[0], rows[3]]
    assert 'not judged: random has one seed' in linear_reading(dict(results=one))[0]
    with pytest.raises(ValueError, match="no 'random' rows"):
        linear_reading(dict(results=rows[3:]))


def test_linear_probe_tool_rows_cache_and_resume(tmp_path, small_data):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(3)
    ckpt = tmp_path / 'r18.pth'
    torch.save(dict(state_dict={f'backbone.{k}': v
                                for k, v in ResNet(depth=18).state_dict().items()}), ckpt)
    root = small_data / 'objects_coco'
    out = tmp_path / 'linear'
    common = ['--data-root', str(root), '--out-dir', str(out), '--workers', '0', '--epochs',
              '20', '--img-size', '64', '--no-progress']
    tool = _tool()
    assert tool.main(['random', f'r18={ckpt}', '--seeds', '0,1', *common]) == 0
    doc = json.load(open(out / 'linear.json'))
    rows = {(r['name'], r['seed']): r for r in doc['results']}
    assert list(rows) == [('random', 0), ('random', 1), ('r18', 0), ('r18', 1)]
    for r in rows.values():
        assert r['feature_dim'] == 512 and r['backbone'] == 'ResNet-18'
        for key in ('top1', 'ncm_top1'):
            hits = r[key] * doc['num_val']
            assert 0 <= r[key] <= 1 and abs(hits - round(hits)) < 1e-6
    assert rows[('r18', 0)]['coverage'] == '120/120'
    # the checkpoint's features are extracted once: its second seed reads the cache; random's
    # weights follow the seed, so each random seed has its own features
    assert 'features from cache' in rows[('r18', 1)]['notes']
    assert 'features from cache' not in rows[('random', 1)]['notes']
    assert len(list((out / 'cache').glob('*.pt'))) == 3
    assert '| r18 | 1 | ResNet-18 | 120/120 | 512 |' in (out / 'linear.md').read_text()
    # NCM needs no training: the same features give the same score for every seed
    assert rows[('r18', 0)]['ncm_top1'] == rows[('r18', 1)]['ncm_top1']
    # resume: a new seed only adds its rows, earlier rows stay as they were
    assert tool.main(['random', f'r18={ckpt}', '--seeds', '0,1,2', *common]) == 0
    doc2 = json.load(open(out / 'linear.json'))
    assert doc2['results'][:4] == doc['results']
    assert [(r['name'], r['seed']) for r in doc2['results'][4:]] == [('random', 2), ('r18', 2)]
    # a broken checkpoint: exit 1, readable message
    bad = tmp_path / 'bad.pth'
    bad.write_text('not a checkpoint')
    assert tool.main([f'bad={bad}', *common[:2], '--out-dir', str(tmp_path / 'b'),
                      '--workers', '0', '--no-progress']) == 1
