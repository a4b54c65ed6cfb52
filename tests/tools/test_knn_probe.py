"""k-NN probe (tools/analysis/knn/, tools/analysis/knn_probe.py): the weighted k-NN rule on
constructed features, the t-SNE on separated clusters, backbone loading from a freshly built MCL
demo checkpoint (online and EMA), and the tool end to end on the --small objects set."""
import importlib
import json
import math
import os.path as osp
import sys

import cv2
import pytest
import torch

from tools.analysis.knn import (infer_resnet_cfg, knn_predict, knn_top1, load_backbone,
                                parse_spec, tsne)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'mcl', 'mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py')


def _tool():
    """The CLI module (``tools`` is a package; the script also runs standalone)."""
    return importlib.import_module('tools.analysis.knn_probe')


def _unit(deg: float) -> torch.Tensor:
    return torch.tensor(
        [math.cos(math.radians(deg)), math.sin(math.radians(deg))], dtype=torch.float64)


def test_knn_separable_features_score_100_percent():
    """Each class lives on its own axis (plus small noise): every neighbour has the right class."""
    gen = torch.Generator().manual_seed(0)
    num_classes, dim = 5, 16
    train_labels = torch.arange(num_classes).repeat_interleave(30)
    test_labels = torch.arange(num_classes).repeat_interleave(10)

    def feats(labels):
        x = torch.nn.functional.one_hot(labels, dim).double() * 3
        return x + 0.1 * torch.randn(len(labels), dim, generator=gen, dtype=torch.float64)

    assert knn_top1(feats(train_labels), train_labels, feats(test_labels), test_labels,
                    num_classes) == 1.0
    # shuffled memory labels break it (far from 100 %)
    shuffled = train_labels[torch.randperm(len(train_labels), generator=gen)]
    assert knn_top1(feats(train_labels), shuffled, feats(test_labels), test_labels,
                    num_classes) < 0.6


def test_knn_votes_are_exp_cos_over_t_of_the_k_nearest():
    """Two class-0 neighbours at cos 0.5 against one class-1 neighbour at cos 0.9: a sharp
    temperature lets the closer class-1 sample win, a flat one the majority; the far sample
    (cos -1) is not among the k = 3 and never votes."""
    test = _unit(0).unsqueeze(0)
    a, b = math.degrees(math.acos(0.5)), math.degrees(math.acos(0.9))
    train = torch.stack([_unit(a), _unit(-a), _unit(b), _unit(180)]) * torch.tensor(
        [[2.0], [0.5], [3.0], [1.0]], dtype=torch.float64)  # norms must not matter (cosine)
    labels = torch.tensor([0, 0, 1, 2])
    pred, votes = knn_predict(train, labels, test, num_classes=3, k=3, temperature=0.07)
    assert pred.tolist() == [1]
    expected = torch.tensor(
        [[2 * math.exp(0.5 / 0.07), math.exp(0.9 / 0.07), 0.0]], dtype=torch.float64)
    assert torch.allclose(votes, expected, rtol=1e-9)
    pred, votes = knn_predict(train, labels, test, num_classes=3, k=3, temperature=10.0)
    assert pred.tolist() == [0]
    assert votes[0, 0] == pytest.approx(2 * math.exp(0.05)) and votes[0, 2] == 0
    # k larger than the memory: clamped, the far sample now votes with exp(-1 / T)
    _, votes = knn_predict(train, labels, test, num_classes=3, k=50, temperature=1.0)
    assert votes[0, 2].item() == pytest.approx(math.exp(-1.0))
    with pytest.raises(ValueError, match='labels'):
        knn_predict(train, torch.tensor([0, 0, 1, 3]), test, num_classes=3)


def test_tsne_keeps_separated_clusters_apart():
    gen = torch.Generator().manual_seed(1)
    centres = torch.randn(3, 32, generator=gen) * 4
    labels = torch.arange(3).repeat_interleave(20)
    x = centres[labels] + 0.3 * torch.randn(60, 32, generator=gen)
    emb = tsne(x, perplexity=10, num_iters=500, seed=0)
    assert emb.shape == (60, 2) and torch.isfinite(emb).all()
    dist = torch.cdist(emb, emb).fill_diagonal_(float('inf'))
    assert (labels[dist.argmin(1)] == labels).all()  # leave-one-out 1-NN in 2-D: 100 %
    assert torch.equal(emb, tsne(x, perplexity=10, num_iters=500, seed=0))  # deterministic


def test_infer_resnet_cfg_from_keys():
    from mmdet.models.backbones import ResNet
    for depth, stages in ((18, 4), (50, 4), (50, 3)):
        net = ResNet(depth=depth,
                     num_stages=stages,
                     strides=(1, 2, 2, 2)[:stages],
                     dilations=(1, ) * stages,
                     out_indices=(stages - 1, ))
        state = {f'backbone.{k}': v for k, v in net.state_dict().items()}
        cfg = infer_resnet_cfg(state)
        assert (cfg['depth'], cfg['num_stages']) == (depth, stages)
        assert infer_resnet_cfg(net.state_dict())['depth'] == depth  # backbone-only file
    assert infer_resnet_cfg({'backbone.patch_embed.projection.weight': torch.zeros(1)}) is None
    assert parse_spec('random') == ('random', 'random')
    assert parse_spec('mcl=a/b.pth') == ('mcl', 'a/b.pth')
    assert parse_spec('work/pretrain/iter_100.pth') == ('pretrain/iter_100',
                                                        'work/pretrain/iter_100.pth')


@pytest.fixture(scope='module')
def mcl_checkpoint(tmp_path_factory):
    """A freshly built MCL CPU-demo model saved like a runner checkpoint; the online backbone is
    shifted after building, so online and EMA weights differ."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mcl_plugin.registry import MODELS
    with DefaultScope.overwrite_default_scope('mcl_plugin'):
        model = MODELS.build(Config.fromfile(DEMO).model)
    ema = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.01)
    path = tmp_path_factory.mktemp('knn_ckpt') / 'iter_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)), path)
    online = {k: v for k, v in model.backbone.state_dict().items() if 'stem_pe' not in k}
    return path, online, ema


def test_load_backbone_takes_online_or_ema_weights(mcl_checkpoint):
    path, online, ema = mcl_checkpoint
    for use_ema, expected in ((False, online), (True, ema)):
        loaded = load_backbone(str(path), use_ema=use_ema)
        assert loaded.cfg['depth'] == 18 and loaded.coverage == '120/120'
        state = loaded.module.state_dict()
        for k, v in state.items():
            if not k.endswith('num_batches_tracked'):
                assert torch.equal(v, expected[k]), (use_ema, k)
        assert not loaded.module.training


def test_probe_tool_on_small_data(tmp_path, small_data, mcl_checkpoint):
    """random vs the MCL checkpoint on the --small object crops: JSON, Markdown, PNGs."""
    path, _, _ = mcl_checkpoint
    root = small_data / 'objects_coco'
    out = tmp_path / 'probe'
    tool = _tool()
    assert tool.main([
        'random', f'mcl={path}', '--data-root',
        str(root), '--out-dir',
        str(out), '--tsne', '--tsne-size', '400', '300', '--workers', '0'
    ]) == 0
    doc = json.load(open(out / 'knn.json'))
    val = json.load(open(root / 'annotations' / 'instances_val.json'))
    assert doc['num_val'] == sum(min(a['bbox'][2:]) >= 16 for a in val['annotations'])
    assert (doc['k'], doc['temperature']) == (20, 0.07)
    rows = {r['name']: r for r in doc['results']}
    assert list(rows) == ['random', 'mcl']
    assert rows['random']['backbone'] == rows['mcl']['backbone'] == 'ResNet-18'
    assert rows['mcl']['coverage'] == '120/120' and rows['random']['coverage'] == '-'
    for r in rows.values():
        assert 0.0 <= r['top1'] <= 1.0 and r['feature_dim'] == 512
        hits = r['top1'] * doc['num_val']
        assert abs(hits - round(hits)) < 1e-6  # a fraction of the val crops
        img = cv2.imread(r['tsne'])
        assert img is not None and img.shape == (300, 400, 3)
    table = (out / 'knn.md').read_text()
    assert '| random | ResNet-18 | - | 512 |' in table and '| mcl | ResNet-18 | 120/120 |' in table
    # a file that is not a checkpoint: exit 1 with a readable message, nothing crashes
    bad = tmp_path / 'bad.pth'
    bad.write_text('not a checkpoint')
    assert tool.main([
        f'bad={bad}', '--data-root',
        str(root), '--out-dir',
        str(out / 'bad'), '--workers', '0', '--max-items', '4'
    ]) == 1


def test_probe_refuses_a_crafted_pickle_without_trust(tmp_path, small_data, capsys):
    """Issue 21 item 4: the probe reads checkpoints like the converter, never running code."""
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'utils'))
    from test_checkpoint import _Payload
    marker = tmp_path / 'payload_ran'
    crafted = tmp_path / 'crafted.pth'
    from mmdet.models.backbones import ResNet
    state = {f'backbone.{k}': v for k, v in ResNet(depth=18).state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(x=_Payload(str(marker)))), crafted)
    assert _tool().main([
        f'x={crafted}', '--data-root',
        str(small_data / 'objects_coco'), '--out-dir',
        str(tmp_path / 'out'), '--workers', '0', '--max-items', '4'
    ]) == 1
    assert '--trust-checkpoint' in capsys.readouterr().err and not marker.exists()
