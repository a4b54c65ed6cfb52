"""Linear probe (tools/analysis/knn/linear.py, tools/analysis/linear_probe.py): the classifier on
constructed features (separable -> 100 %, shuffled labels -> chance), and the tool end to end on
the --small objects set: rows per (checkpoint, seed), the feature cache, resuming."""
import importlib
import json

import pytest
import torch

from tools.analysis.knn import (LinearConfig, cv_logistic_top1, instance_keys, load_crops,
                                linear_reading, linear_top1, nearest_centroid_top1,
                                pooled_instance_top1)


def _tool():
    """The CLI module (``tools`` is a package; the script also runs standalone)."""
    return importlib.import_module('tools.analysis.linear_probe')


def _blobs(labels, dim, gen, scale=3.0):
    centres = torch.randn(int(labels.max()) + 1, dim, generator=torch.Generator().manual_seed(7))
    return scale * centres[labels] + torch.randn(len(labels), dim, generator=gen)


def _instance_only(instances, crops, dim):
    """Features that only identify an object instance (a random signature per instance) and a
    class drawn per instance: only memorising instances tells a crop's class."""
    gen = torch.Generator().manual_seed(1)
    signatures = torch.randn(instances, dim, generator=gen)
    cls = torch.randperm(instances, generator=gen) % 2
    inst = torch.arange(instances).repeat_interleave(crops)
    feats = signatures[inst] + 0.1 * torch.randn(len(inst), dim, generator=gen)
    return feats, cls[inst], inst, [f'instance{int(i)}' for i in inst]


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


def test_cv_probe_separable_blobs_and_errors():
    gen = torch.Generator().manual_seed(0)
    train_labels = torch.arange(3).repeat_interleave(30)
    test_labels = torch.arange(3).repeat_interleave(10)
    train, test = _blobs(train_labels, 16, gen), _blobs(test_labels, 16, gen)
    groups = [f'i{i // 5}' for i in range(len(train))]  # 18 instances of 5 crops
    top1, c, scores = cv_logistic_top1(train, train_labels, groups, test, test_labels)
    assert top1 == 1.0 and sorted(scores) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    assert c == min(k for k, v in scores.items() if v == max(scores.values()))
    with pytest.raises(ValueError, match='89 group keys for 90 training features'):
        cv_logistic_top1(train, train_labels, groups[1:], test, test_labels)
    with pytest.raises(ValueError, match='5 folds need at least 5 groups, got 2'):
        cv_logistic_top1(train, train_labels, ['a', 'b'] * 45, test, test_labels)


def test_cv_probe_folds_hold_out_whole_instances():
    # 100 instances of 8 crops: each instance's crops share a random signature, and the class
    # is drawn per instance, so only memorising instances tells a crop's class
    feats, labels, inst, groups = _instance_only(100, 8, 128)
    _, _, grouped = cv_logistic_top1(feats, labels, groups, feats[:8], labels[:8])
    # held-out folds hold unseen instances: no strength does better than chance (0.5) by much
    assert max(grouped.values()) < 0.6  # 0.445 with sklearn 1.9
    # folds that split instances (every crop its own group) reward memorising them
    _, c, leaky = cv_logistic_top1(feats, labels, [str(i) for i in range(len(inst))],
                                   feats[:8], labels[:8])
    assert max(leaky.values()) > 0.95  # 1.0
    assert c == min(k for k, v in leaky.items() if v == max(leaky.values()))


def test_warm_started_cv_path_matches_separate_fits():
    # the grouped CV fits the strengths of a fold in increasing C from the previous solution;
    # the scores equal those of separate pipelines through sklearn's cross_val_score
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tools.analysis.knn.linear import grouped_cv_scores
    gen = torch.Generator().manual_seed(2)
    labels = torch.arange(3).repeat_interleave(40)
    feats = _blobs(labels, 8, gen, scale=0.7).double().numpy()
    groups = [f'i{i // 4}' for i in range(len(labels))]
    warm = grouped_cv_scores(feats, labels.numpy(), groups, (1e-3, 1e-1, 10.0), 5)
    for c, score in warm.items():
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        cold = cross_val_score(pipe, feats, labels.numpy(), groups=groups,
                               cv=GroupKFold(n_splits=5)).mean()
        assert score == pytest.approx(cold, abs=1e-9)
    assert 0.4 < min(warm.values()) < max(warm.values()) < 1.0  # a case where C matters


def test_pooled_probe_scores_every_crop_once_with_its_instance_held_out():
    # 2 classes x 10 instances x 4 crops in 2-d: class 0 along +x, class 1 along +y, except one
    # class-0 instance that lies along +y. Whichever fold holds it, a model fitted on the other
    # folds has never seen it and puts its 4 crops into class 1; every other crop is right:
    # 76 / 80 for NCM and for the logistic regression.
    gen = torch.Generator().manual_seed(0)
    cls = torch.arange(2).repeat_interleave(10)
    centres = torch.stack([1.0 - cls, cls.float()], 1) * 4 + 1
    centres[3] = torch.tensor([1.0, 5.0])  # the odd class-0 instance
    inst = torch.arange(20).repeat_interleave(4)
    feats = centres[inst] + 0.05 * torch.randn(80, 2, generator=gen)
    labels, groups = cls[inst], [f'i{int(i)}' for i in inst]
    ncm, cv, cs = pooled_instance_top1(feats, labels, groups, 2)
    assert ncm == cv == 76 / 80
    assert len(cs) == 5 and set(cs) <= {1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0}
    # deterministic (one fixed partition), and the same for a permutation of the crops
    perm = torch.randperm(80, generator=gen)
    assert pooled_instance_top1(feats, labels, groups, 2)[:2] == (ncm, cv)
    assert pooled_instance_top1(feats[perm], labels[perm], [groups[i] for i in perm],
                                2)[:2] == (76 / 80, 76 / 80)


def test_pooled_probe_does_not_reward_memorising_instances_and_errors():
    # the class is drawn per instance and the features only identify the instance (as in
    # test_cv_probe_folds_hold_out_whole_instances): chance, not the 100 % memorising gives
    feats, labels, _, groups = _instance_only(200, 4, 64)
    ncm, cv, _ = pooled_instance_top1(feats, labels, groups, 2)
    assert ncm < 0.6 and cv < 0.6  # 0.545 and 0.5275 with sklearn 1.9
    with pytest.raises(ValueError, match='800 features, 800 labels and 799 group keys'):
        pooled_instance_top1(feats, labels, groups[1:], 2)
    with pytest.raises(ValueError, match='5 outer folds need at least 10 instances, got 9'):
        pooled_instance_top1(feats[:36], labels[:36], groups[:36], 2)


def test_instance_keys_of_the_generated_set(small_data, tmp_path):
    import shutil
    root = small_data / 'objects_coco'
    keys = {}
    for split in ('train', 'val'):
        crops = load_crops(str(root), split, 32)
        keys[split] = instance_keys(str(root), split, crops.ann_ids.tolist())
        assert len(keys[split]) == len(crops)
        label_of = {}
        for key, label in zip(keys[split], crops.labels.tolist()):
            assert label_of.setdefault(key, label) == label  # one class per instance
        assert len(label_of) < len(crops)  # instances recur across scenes
    assert not set(keys['train']) & set(keys['val'])  # val instances are unseen in train
    # a manifest that does not match the annotations, and a set without one: clear errors
    copy = tmp_path / 'objects_coco'
    shutil.copytree(root / 'annotations', copy / 'annotations')
    with pytest.raises(FileNotFoundError, match='manifest.json does not exist.*--cv-groups none'):
        instance_keys(str(copy), 'train', [1])
    manifest = json.load(open(root / 'manifest.json'))
    record = next(r for r in manifest['files'] if r['file'].startswith('train/'))
    record['objects'] = record['objects'][1:]
    json.dump(manifest, open(copy / 'manifest.json', 'w'))
    name = record['file'].split('/')[-1]
    with pytest.raises(ValueError, match=f'does not match .* at image {name!r}'):
        instance_keys(str(copy), 'train', [1])


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
    # NCM and the CV probe need no seed: the same features give the same score for every seed
    assert rows[('r18', 0)]['ncm_top1'] == rows[('r18', 1)]['ncm_top1']
    assert rows[('r18', 0)]['cv_top1'] == rows[('r18', 1)]['cv_top1'] is not None
    assert rows[('r18', 0)]['cv_c'] in doc['settings']['cv']['cs']
    assert doc['settings']['cv']['groups'] == 'object instance (manifest.json)'
    assert {r['cv_top1'] is not None for r in rows.values()} == {True}
    # the pooled scores count every crop of both splits, with the same features the same
    pooled = doc['num_train'] + doc['num_val']
    for r in rows.values():
        for key in ('pooled_ncm_top1', 'pooled_cv_top1'):
            hits = r[key] * pooled
            assert 0 <= r[key] <= 1 and abs(hits - round(hits)) < 1e-6
        assert len(r['pooled_cv_cs']) == doc['settings']['pooled']['folds'] == 5
    for key in ('pooled_ncm_top1', 'pooled_cv_top1', 'pooled_cv_cs'):
        assert rows[('r18', 0)][key] == rows[('r18', 1)][key]
    # resume: a new seed only adds its rows, earlier rows stay as they were
    assert tool.main(['random', f'r18={ckpt}', '--seeds', '0,1,2', *common]) == 0
    doc2 = json.load(open(out / 'linear.json'))
    assert doc2['results'][:4] == doc['results']
    assert [(r['name'], r['seed']) for r in doc2['results'][4:]] == [('random', 2), ('r18', 2)]
    # --cv-groups none: no CV score (other COCO sets have no manifest)
    assert tool.main([f'r18={ckpt}', *common[:2], '--out-dir', str(tmp_path / 'nocv'),
                      *common[4:], '--cv-groups', 'none']) == 0
    nocv = json.load(open(tmp_path / 'nocv' / 'linear.json'))
    assert 'cv' not in nocv['settings'] and nocv['results'][0]['cv_top1'] is None
    assert 'pooled' not in nocv['settings'] and nocv['results'][0]['pooled_cv_top1'] is None
    assert '| - | - |' in (tmp_path / 'nocv' / 'linear.md').read_text()
    # a broken checkpoint: exit 1, readable message
    bad = tmp_path / 'bad.pth'
    bad.write_text('not a checkpoint')
    assert tool.main([f'bad={bad}', *common[:2], '--out-dir', str(tmp_path / 'b'),
                      '--workers', '0', '--no-progress']) == 1
