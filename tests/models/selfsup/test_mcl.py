import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mcl_plugin.registry import MODELS


def mcl_cfg(num_levels=3, depth=18, pe='spe', mode='a'):
    bn = dict(type='BN', requires_grad=True)
    return dict(
        type='MCL',
        num_levels=num_levels,
        base_momentum=0.01,
        backbone=dict(type='PEResNet', depth=depth, norm_cfg=bn, zero_init_residual=False,
                      stem_pos_embed=dict(type=pe)),
        neck=dict(type='mmdet.FPN', in_channels=[64, 128, 256, 512], out_channels=32,
                  num_outs=4, norm_cfg=bn),
        tile_pooler=dict(type='TilePooler', featmap_strides=(4, 8, 16, 32), out_size=2),
        tile_head=dict(type='ConvTileHead', in_channels=32, conv_channels=32, norm_cfg=bn),
        projector=dict(type='NonLinearNeck', in_channels=32, hid_channels=64, out_channels=16,
                       with_avg_pool=False, norm_cfg=dict(type='BN1d')),
        head=dict(type='MultiLevelContrastiveHead', loss_mode=mode, temperature=0.2,
                  predictor=dict(type='NonLinearNeck', in_channels=16, hid_channels=64,
                                 out_channels=16, with_last_bn=False, with_avg_pool=False,
                                 norm_cfg=dict(type='BN1d'))))


def _views(S, B=16, size=64):
    return [torch.rand(B, 3, size, size) for _ in range(2 * S)]


def test_loss_keys_gradients_and_frozen_target(message_hub):
    model = MODELS.build(mcl_cfg())
    model.init_weights()
    losses = model.loss(_views(3), [])
    assert {f'loss_level{s}' for s in range(3)} <= set(losses)
    assert {f'pos_sim_level{s}' for s in range(3)} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    for name in ('backbone.layer1.0.conv1.weight', 'backbone.conv1.weight',
                 'neck.lateral_convs.1.conv.weight', 'neck.fpn_convs.3.conv.weight',
                 'tile_head.shared_convs.0.conv.weight', 'tile_head.shared_convs.3.conv.weight',
                 'projector.fc0.weight', 'head.predictor.fc0.weight'):
        p = dict(model.named_parameters())[name]
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # S = 3 reads P5, P4, P3 only: P2's lateral conv gets no gradient
    assert model.neck.lateral_convs[0].conv.weight.grad is None
    for p in model.target_net.parameters():
        assert not p.requires_grad and p.grad is None


def test_target_starts_as_online_copy_then_moves_by_ema(message_hub):
    model = MODELS.build(mcl_cfg())
    model.init_weights()
    model.loss(_views(3), [])
    online = dict(model.backbone.named_parameters())
    target = dict(model.target_net.module['backbone'].named_parameters())
    assert all(torch.equal(online[k], target[k]) for k in online)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = copy.deepcopy(target['conv1.weight'])
    model.loss(_views(3), [])
    m = 0.01 * (math.cos(math.pi * 1 / 10) + 1) / 2  # cosine schedule, step 1 of 10
    expected = (1 - m) * before + m * online['conv1.weight']
    assert torch.allclose(target['conv1.weight'], expected, atol=1e-6)


def test_single_level_is_an_image_level_moco_v3(message_hub):
    model = MODELS.build(mcl_cfg(num_levels=1))
    model.init_weights()
    model.train()
    views = _views(1, B=8)
    torch.manual_seed(5)
    losses = model.loss(views, [])
    assert set(k for k in losses if 'loss' in k) == {'loss_level0'}

    # the same loss computed by hand: image-level InfoNCE, symmetric, in-batch negatives
    def embed(modules, x):
        backbone, neck, head, proj = modules
        p5 = neck(backbone(x))[3]
        return proj([F.adaptive_avg_pool2d(head(p5), 1).flatten(1)])[0]

    online = list(model.online_modules().values())
    target = list(model.target_net.module.values())
    x = torch.cat(views)
    with torch.no_grad():
        z = embed(online, x)
        k = embed(target, x)
        # the predictor (BN1d) sees one branch at a time, as in the model
        q1, q2 = model.head.predictor([z[:8]])[0], model.head.predictor([z[8:]])[0]
    k1, k2 = k[:8], k[8:]
    labels = torch.arange(8)
    T = 0.2

    def nce(a, b):
        logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).t() / T
        return F.cross_entropy(logits, labels)

    expected = (nce(q1, k2) + nce(q2, k1)) * 0.5 * 2 * T
    assert losses['loss_level0'].item() == pytest.approx(expected.item(), rel=1e-4)


def test_wrong_number_of_views_is_explained(message_hub):
    model = MODELS.build(mcl_cfg())
    with pytest.raises(ValueError, match=r'needs 6 views per image \(MultiView'):
        model.loss(_views(1), [])


# online level -> target levels of each loss mode at S = 2 (Fig. 3), written out
MODE_PAIRS = dict(a={0: [0], 1: [0]}, b={0: [0], 1: [1]}, c={0: [0], 1: [0]},
                  d={0: [0, 1], 1: [0, 1]})


# target levels the loss reads at S = 2: mode a and c read level 0 only
READ_LEVELS = dict(a=1, b=2, c=1, d=2)


@pytest.mark.parametrize('target_scope', ['read-levels', 'all'])
@pytest.mark.parametrize('mode', ['a', 'b', 'c', 'd'])
def test_each_loss_mode_matches_a_reference_computation(message_hub, mode, target_scope):
    """S = 2, montages in batch order: every level's loss recomputed without the plugin's
    montage, pooling and head code: montages tiled by hand, FPN cells cropped by slicing,
    InfoNCE written out, both directions summed. The joint tile-head pass (train-mode BN) of
    the target covers the tiles of the levels the loss reads (``'read-levels'``) or all."""
    B, S, T, k = 8, 2, 0.2, 2
    cfg = mcl_cfg(num_levels=S, mode=mode, pe='lpe')
    cfg['assembler'] = dict(type='MontageAssembler', shuffle=False)
    cfg['target_scope'] = target_scope
    model = MODELS.build(cfg)
    views = _views(S, B=B)
    losses = model.loss(views, [])

    def montages(v0, v1):
        """Level 0: the views; level 1: 2x2 grids of half-size views, images 4m..4m+3."""
        h = F.interpolate(v1, size=(32, 32), mode='bilinear', align_corners=False,
                          antialias=True)
        grids = [torch.cat([torch.cat([h[4 * m], h[4 * m + 1]], 2),
                            torch.cat([h[4 * m + 2], h[4 * m + 3]], 2)], 1)
                 for m in range(B // 4)]
        return [v0, torch.stack(grids)]

    with torch.no_grad():
        # one pass over both branches' montages: rows 0-7, 8-9 branch 1; 10-17, 18-19 branch 2
        feats = model.neck(model.backbone(torch.cat(montages(*views[:2]) +
                                                    montages(*views[2:]))))
        p5, p4 = feats[3], feats[2]  # level 0 reads P5, level 1 reads P4
        cells = []
        for r0 in (0, 10):
            cells.append(p5[r0:r0 + B])  # a 64-px montage is 2x2 cells of P5
            cells += [p4[r0 + B + m, :, i * k:(i + 1) * k, j * k:(j + 1) * k][None]
                      for m in range(B // 4) for i in range(2) for j in range(2)]
        pooled = model.tile_head(torch.cat(cells)).mean((2, 3))
        online = model.projector([pooled])[0].view(2, S, B, -1)  # branch, level, image
        # the target is an exact copy of the online network at the first step
        q = [model.head.predictor([online[a].flatten(0, 1)])[0].view(S, B, -1)
             for a in range(2)]
        L = READ_LEVELS[mode] if target_scope == 'read-levels' else S
        per_branch = len(cells) // 2  # [P5 of the level-0 montages] + one entry per P4 cell
        read = torch.cat([torch.cat(cells[i:i + (1 if L == 1 else per_branch)])
                          for i in (0, per_branch)])
        z = model.projector([model.tile_head(read).mean((2, 3))])[0].view(2, L, B, -1)

    def nce(query, keys):
        logits = F.normalize(query, dim=1) @ F.normalize(keys, dim=1).t() / T
        return F.cross_entropy(logits, torch.arange(B))

    for s in range(S):
        both = sum(
            sum(nce(q[a][s], z[b][t]) for t in MODE_PAIRS[mode][s]) / len(MODE_PAIRS[mode][s])
            for a, b in ((0, 1), (1, 0)))
        expected = both * 2 * T / 2**(s + 1)
        assert losses[f'loss_level{s}'].item() == pytest.approx(expected.item(), rel=1e-5), s


def test_c4_variant_with_res5_head(message_hub):
    bn = dict(type='BN', requires_grad=True)
    cfg = mcl_cfg(num_levels=2)
    cfg.update(
        backbone=dict(type='PEResNet', depth=18, num_stages=3, strides=(1, 2, 2),
                      dilations=(1, 1, 1), out_indices=(2, ), norm_cfg=bn,
                      stem_pos_embed=dict(type='csg')),
        neck=dict(type='InterpolatedPyramid', scale_factors=(1, 2)),
        tile_pooler=dict(type='TilePooler', featmap_strides=(16, 8), out_size=4,
                         level_to_feat=(0, 1)),
        tile_head=dict(type='mmdet.ResLayer', depth=18, stage=3, stride=2, norm_cfg=bn,
                       norm_eval=False),
        projector=dict(type='NonLinearNeck', in_channels=512, hid_channels=64, out_channels=16,
                       with_avg_pool=False, norm_cfg=dict(type='BN1d')))
    model = MODELS.build(cfg)
    losses = model.loss(_views(2, B=8), [])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert model.tile_head.layer4[0].conv1.weight.grad is not None
    assert 'tile_head.layer4.0.conv1.weight' in model.state_dict()


def _loss_and_grads(model, views, seed=3):
    torch.manual_seed(seed)
    model.zero_grad()
    losses = model.loss(views, [])
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    return total.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                            if p.grad is not None}


def _calls(module):
    """Count the forward calls of ``module``."""
    counter = [0]
    module.register_forward_hook(lambda *_: counter.__setitem__(0, counter[0] + 1))
    return counter


@pytest.mark.parametrize('bn_scope', ['joint', 'per_branch'])
def test_lean_target_is_exact_with_the_official_tile_bn_scope(message_hub, bn_scope):
    """Mode a reads the target's level 0 only: with per-level tile-head passes (the official
    grouping) the lean target computes the same loss and gradients as the full one, while its
    FPN skips the P2-P4 output convs and its tile head runs on one level instead of four."""
    S, views = 4, _views(4, B=16, size=64)
    cfg = dict(mcl_cfg(num_levels=S), bn_scope=bn_scope, tile_bn_scope='per_level')
    runs = {}
    for scope in ('all', 'read-levels'):
        torch.manual_seed(0)
        model = MODELS.build(dict(cfg, target_scope=scope))
        model.init_weights()
        target = model.target_net.module
        p2 = _calls(target['neck'].fpn_convs[0])
        p5 = _calls(target['neck'].fpn_convs[3])
        head = _calls(target['tile_head'])
        runs[scope] = _loss_and_grads(model, views)
        runs[scope] += (p2[0], p5[0], head[0])
    (l_all, g_all, p2_all, p5_all, h_all), (l_lean, g_lean, p2_lean, p5_lean, h_lean) = (
        runs['all'], runs['read-levels'])
    assert torch.allclose(l_all, l_lean, rtol=1e-6), (l_all, l_lean)
    assert g_all.keys() == g_lean.keys() and len(g_all) > 60
    for name in g_all:
        assert torch.allclose(g_all[name], g_lean[name], rtol=1e-4, atol=1e-6), name
    passes = 1 if bn_scope == 'joint' else 2
    assert (p2_all, p5_all, h_all) == (passes, passes, 2 * S)  # per_level: per branch and level
    assert (p2_lean, p5_lean, h_lean) == (0, passes, 2)


def test_target_scope_read_montages_runs_the_target_backbone_on_level_0_only(message_hub):
    S, B = 3, 16
    model = MODELS.build(dict(mcl_cfg(num_levels=S), target_scope='read-montages'))
    model.init_weights()
    seen = []
    model.target_net.module['backbone'].register_forward_hook(
        lambda m, args, out: seen.append(args[0].shape[0]))
    online = []
    model.backbone.register_forward_hook(lambda m, args, out: online.append(args[0].shape[0]))
    loss, grads = _loss_and_grads(model, _views(S, B=B))
    assert torch.isfinite(loss) and grads
    assert seen == [2 * B]  # the level-0 montages (one image each) of both branches
    assert online == [2 * (B + B // 4 + 1)]  # levels 0-2: 16 + 4 + 1 montages per branch
    # it changes the target's BatchNorm statistics, hence the loss
    views = _views(S, B=B)
    totals = []
    for scope in ('read-levels', 'read-montages'):
        torch.manual_seed(0)
        m = MODELS.build(dict(mcl_cfg(num_levels=S), target_scope=scope))
        m.init_weights()
        totals.append(_loss_and_grads(m, views)[0])
    assert not torch.allclose(totals[0], totals[1], rtol=1e-4), totals
    with pytest.raises(ValueError, match='target_scope must be one of'):
        MODELS.build(dict(mcl_cfg(), target_scope='lean'))


@pytest.mark.parametrize('fpn_norm', [None, dict(type='BN', requires_grad=True)])
def test_pyramid_rows_read_runs_each_output_conv_on_its_levels_montages(message_hub, fpn_norm):
    """``pyramid_rows='read'``: P2's 3x3 conv on the level-3 montages only (1 of 22 per branch at
    batch 16). Without BN in the FPN the loss and gradients are those of ``'all'``; with BN the
    output convs normalise over the montages they serve, so the numbers change."""
    S, B = 4, 16
    views = _views(S, B=B)
    runs = {}
    for rows in ('all', 'read'):
        torch.manual_seed(0)
        cfg = mcl_cfg(num_levels=S)
        cfg['neck'] = dict(cfg['neck'], norm_cfg=fpn_norm)
        model = MODELS.build(dict(cfg, pyramid_rows=rows))
        model.init_weights()
        seen = []
        model.neck.fpn_convs[0].register_forward_hook(
            lambda m, args, out: seen.append(args[0].shape[0]))
        runs[rows] = _loss_and_grads(model, views) + (seen, )
    (l_all, g_all, seen_all), (l_read, g_read, seen_read) = runs['all'], runs['read']
    assert seen_all == [2 * (B + 4 + 1 + 1)] and seen_read == [2]  # online pass only (mode a)
    same = torch.allclose(l_all, l_read, rtol=1e-6) and all(
        torch.allclose(g_all[n], g_read[n], rtol=1e-4, atol=1e-6) for n in g_all)
    assert same == (fpn_norm is None)
    with pytest.raises(ValueError, match="needs tile_bn_scope='joint'"):
        MODELS.build(dict(mcl_cfg(), pyramid_rows='read', tile_bn_scope='per_level'))


def test_pyramid_rows_read_needs_an_fpn(message_hub):
    cfg = mcl_cfg(num_levels=2)
    cfg.update(neck=dict(type='InterpolatedPyramid', scale_factors=(1, 2), in_index=-1),
               pyramid_rows='read')
    with pytest.raises(ValueError, match="pyramid_rows='read' needs an mmdet FPN"):
        MODELS.build(cfg)
