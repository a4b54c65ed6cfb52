"""DetCo: the key encoder (no gradient, momentum update), the 8 queues (old negatives used, then
this step's keys enqueued), view handling. The loss terms: tests/models/heads/test_detco_head.py;
the MLP heads: tests/models/necks/test_detco_neck.py."""
import pytest
import torch
import torch.nn.functional as F

from mcl_plugin.registry import MODELS

T = 0.2
CHANNELS = (8, 16, 32, 64)  # ResNet-18 with base_channels=8 (fast on CPU)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is ~20x faster than two on a loaded shared CPU (OpenMP
    barriers of batch_norm / conv2d spin while the other thread waits for a core)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_cfg(**kw):
    cfg = dict(type='DetCo',
               queue_len=12,
               feat_dim=8,
               momentum=0.001,
               data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                      mean=[123.675, 116.28, 103.53],
                                      std=[58.395, 57.12, 57.375],
                                      to_rgb=True),
               backbone=dict(type='mmdet.ResNet',
                             depth=18,
                             out_indices=(0, 1, 2, 3),
                             stem_channels=8,
                             base_channels=8,
                             norm_cfg=dict(type='BN')),
               neck=dict(type='DetCoNeck', in_channels=CHANNELS, hid_channels=16, out_channels=8),
               head=dict(type='DetCoHead', temperature=T))
    cfg.update(kw)
    return cfg


def views(n=3, img=32, patch=16, sets=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 3, img, img, generator=g) * 255 for _ in range(2)] + \
        [torch.rand(n, 3, patch, patch, generator=g) * 255 for _ in range(9 * sets)]


def _loss(model, inputs):
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=[None] * len(inputs[0])), True)
    return model(**data, mode='loss'), data['inputs']


def test_key_encoder_gets_no_gradient_and_follows_the_momentum_rule():
    model = MODELS.build(tiny_cfg(momentum=0.25))
    assert list(model.target_net.module) == ['backbone', 'neck']
    assert isinstance(model.target_net.module['backbone'], type(model.backbone))
    assert not any(p.requires_grad for p in model.target_net.parameters())
    losses, _ = _loss(model, views())
    assert sorted(losses) == sorted(f'loss_{t}_res{i}' for t in ('gg', 'll', 'gl')
                                    for i in range(2, 6))
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.target_net.parameters())
    # every online stage and every one of the 8 heads receives gradient
    for name, p in model.named_parameters():
        if not name.startswith('target_net'):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    # step 1 copies the online weights; step 2: key = (1 - m) * key + m * online
    online = model.neck.local_heads[3].mlp[0].weight
    key = model.target_net.module['neck'].local_heads[3].mlp[0].weight
    assert torch.equal(key, online)
    before = key.detach().clone()
    with torch.no_grad():
        online.add_(1.0)
    model.zero_grad()
    _loss(model, views(seed=1))
    assert torch.allclose(key, 0.75 * before + 0.25 * online.detach(), atol=1e-6)


def test_queues_hold_normalised_keys_and_loss_uses_the_old_queue():
    model = MODELS.build(tiny_cfg())
    assert sorted(model.queues) == sorted(f'{k}_res{i}' for k in 'gl' for i in range(2, 6))
    old = {name: q.queue.clone() for name, q in model.queues.items()}
    losses, inputs = _loss(model, views(n=3))
    # Recompute the step with the returned state: the same losses with the OLD negatives.
    with torch.no_grad():
        views_ = model.split_views(inputs)
        q_g = model.neck.forward_global(model.backbone(views_['img_q']))
        q_l = model.encode(model.online_modules(), views_['patch_q'])
        bk, nk = model.target_net.module['backbone'], model.target_net.module['neck']
        k_g = [F.normalize(k, dim=1) for k in nk.forward_global(bk(views_['img_k']))]
        k_l = [F.normalize(k, dim=1) for k in model.encode(model.target_net.module,
                                                           views_['patch_k'])]
    names = model.stage_names
    expect = model.head.loss(q_g, k_g, [old[f'g_{n}'] for n in names], q_l, k_l,
                             [old[f'l_{n}'] for n in names], names)
    for k, v in expect.items():
        assert losses[k].item() == pytest.approx(v.item(), rel=1e-4), k
    # ... then the keys of this step were written at rows 0..2 of every queue.
    for i, n in enumerate(names):
        for kind, keys in (('g', k_g), ('l', k_l)):
            q = model.queues[f'{kind}_{n}']
            assert q.ptr.item() == 3
            assert torch.allclose(q.queue[:3], keys[i], atol=1e-5), (kind, n)
            assert torch.equal(q.queue[3:], old[f'{kind}_{n}'][3:])
    # 5 more steps of 3 keys wrap around the 12-key queues
    for s in range(5):
        _loss(model, views(n=3, seed=s + 2))
    assert model.queues['l_res5'].ptr.item() == (3 * 6) % 12


def test_hic_only_variant_and_view_checks():
    model = MODELS.build(
        tiny_cfg(neck=dict(type='DetCoNeck',
                           in_channels=CHANNELS,
                           hid_channels=16,
                           out_channels=8,
                           with_local=False),
                 head=dict(type='DetCoHead', loss_terms=('gg', ))))
    assert sorted(model.queues) == [f'g_res{i}' for i in range(2, 6)]
    losses, _ = _loss(model, views(sets=0))
    assert len(losses) == 4
    full = MODELS.build(tiny_cfg())
    with pytest.raises(ValueError, match='20 views'):
        _loss(full, views(sets=1))
    with pytest.raises(ValueError, match='with_local'):
        MODELS.build(
            tiny_cfg(neck=dict(
                type='DetCoNeck', in_channels=CHANNELS, with_local=False, out_channels=8)))
    with pytest.raises(ValueError, match='feat_dim'):
        MODELS.build(tiny_cfg(feat_dim=16))


@pytest.mark.parametrize('name', ['detco_r50_8xb32-coslr-200e_in1k.py',
                                  'detco_r50_1xb64-bn-coslr-200e_in1k.py'])
def test_paper_size_configs_follow_the_public_code(name):
    """README "Fidelity": MLP hidden = input width for every head, the jigsaw crop augmented
    once (colour, flip) and then cut, shuffled patch order (checked on the config only: the
    R50 model with 9C-wide local heads holds 970 M parameters)."""
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'detco', name))
    assert cfg.model.neck.hid_channels == 'in' and cfg.model.neck.get('local_hid_channels') is None
    views = [s for s in cfg.train_dataloader.dataset.pipeline if s.type == 'GlobalLocalViews'][0]
    jigsaw = views.local_pipeline[-1]
    assert jigsaw.type == 'JigsawPatches' and jigsaw.shuffle and jigsaw.flip_prob == 0.5
    assert jigsaw.crop_pipeline and not jigsaw.get('patch_pipeline')
