"""SoCo in training mode against a reference written from the official code's behaviour.

The reference (:class:`RefSoCoFPN`, own code) follows hologerry/SoCo @ 2be1229:
``contrast/models/SoCo_FPN.py:143-286`` (every box RoI-aligned on every level with
``torchvision.ops.roi_align`` on boxes normalised to ``[0, 1]`` and scaled by the feature size,
head + projector (+ predictor) once per view, box set and level, ``F.normalize``, the
correspondence loss ``regression_loss_bboxs_aware``), ``fast_rcnn_conv_fc_head.py`` (4 x conv-BN-
ReLU + fc-ReLU), ``mlps.py`` (Linear-BN-ReLU-Linear, biases) and ``data/bboxs_utils.py:378-410``
(level of a box: first ``j`` with ``sqrt(w h) <= aware_range[j]``, ``w = x2 - x1 + 1`` on
inclusive integer boxes; unassigned slots get a per-view negative id).

Same weights, same inputs, training mode (BatchNorm on batch statistics): our
``SoCo(pool_all_levels=True)`` gives the reference's loss and parameter gradients; the one-level
joint-BN mode (``pool_all_levels=False``) does not.
"""
import copy
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops as tvops
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mcl_plugin.registry import MODELS, TRANSFORMS

BN = dict(type='BN', requires_grad=True)

THRESHOLDS = (12, 24, 40)  # P2-P4 upper sides for the 64-px test views; aware_range[3] = 64
SIZES = (64, 64, 32)  # V1, V2, V3 (the official 224 / 224 / 112, scaled down)
B, K, P = 2, 4, 4


def model_cfg(pool_all_levels: bool) -> dict:
    """A narrow ResNet-18-FPN SoCo with the official head / projector / predictor layout."""
    mlp = dict(type='NonLinearNeck', num_layers=2, with_bias=True, with_last_bn=False,
               with_last_bias=True, with_avg_pool=False, norm_cfg=dict(type='BN1d'))
    return dict(
        type='SoCo',
        base_momentum=0.01,
        pool_all_levels=pool_all_levels,
        backbone=dict(type='mmdet.ResNet', depth=18, base_channels=16, out_indices=(0, 1, 2, 3),
                      norm_cfg=BN, norm_eval=False),
        neck=dict(type='mmdet.FPN', in_channels=[16, 32, 64, 128], out_channels=16, num_outs=4,
                  norm_cfg=BN),
        roi_pooler=dict(type='MultiLevelRoIPooler', scale_thresholds=THRESHOLDS),
        tile_head=dict(type='ConvFCRoIHead', in_channels=16, conv_channels=16,
                       fc_out_channels=32, norm_cfg=BN),
        projector=dict(mlp, in_channels=32, hid_channels=48, out_channels=24),
        head=dict(type='SoCoHead',
                  loss=dict(type='CosineSimilarityLoss', shift_factor=0.0, scale_factor=2.0),
                  predictor=dict(mlp, in_channels=24, hid_channels=48, out_channels=24)))


# ------------------------------------------------------------------ the reference (own code)
class RefHead(nn.Module):
    """``FastRCNNConvFCHead`` (``fast_rcnn_conv_fc_head.py:12-56``)."""

    def __init__(self, channels: int, fc: int, size: int = 7) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(4))
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(4))
        self.fc1 = nn.Linear(channels * size * size, fc)

    def forward(self, x: Tensor) -> Tensor:
        for conv, bn in zip(self.convs, self.bns):
            x = F.relu(bn(conv(x)))
        return F.relu(self.fc1(x.flatten(1)))


class RefMLP(nn.Module):
    """``Proj_Head`` / ``Pred_Head`` (``mlps.py:12-31``)."""

    def __init__(self, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_in, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.linear2 = nn.Linear(hidden, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(F.relu(self.bn1(self.linear1(x).unsqueeze(-1)).squeeze(-1)))


class RefSoCoFPN(nn.Module):
    """``SoCo_FPN.forward`` with three views; the key encoder is a copy (EMA at step 0)."""

    def __init__(self, encoder: nn.Module, neck: nn.Module, head: nn.Module,
                 projector: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.encoder, self.neck, self.head = encoder, neck, head
        self.projector, self.predictor = projector, predictor
        self.encoder_k, self.neck_k, self.head_k, self.projector_k = (
            copy.deepcopy(m) for m in (encoder, neck, head, projector))
        for m in (self.encoder_k, self.neck_k, self.head_k, self.projector_k):
            m.requires_grad_(False)

    @staticmethod
    def roi_align(feat: Tensor, boxes: Tensor) -> Tensor:
        """``roi_align_feature_map`` + ``append_batch_index_to_bboxs_and_scale``."""
        n, l, _ = boxes.shape
        h, w = feat.shape[-2:]
        coords = boxes * boxes.new_tensor([w, h, w, h])
        index = torch.arange(n, dtype=boxes.dtype).repeat_interleave(l)[:, None]
        rois = torch.cat([index, coords.reshape(n * l, 4)], 1)
        return tvops.roi_align(feat, rois, (7, 7), aligned=True)

    def levels(self, feats: List[Tensor], boxes: Tensor, key: bool, predict: bool) -> Tensor:
        n, l, _ = boxes.shape
        head, projector = (self.head_k, self.projector_k) if key else (self.head, self.projector)
        out = []
        for feat in feats:
            z = projector(head(self.roi_align(feat, boxes)))
            if predict:
                z = self.predictor(z)
            out.append(F.normalize(z, dim=1).reshape(n, l, -1))
        return torch.cat(out, 1)  # N, P * L, C

    @staticmethod
    def regression_loss(q: Tensor, k: Tensor, corr: Tensor) -> Tensor:
        sim = torch.bmm(q, k.transpose(1, 2))
        loss = (sim * corr).sum(-1).sum(-1) / (corr.sum(-1).sum(-1) + 1e-6)
        return -2 * loss.mean()

    def forward(self, im1, im2, im3, b1_12, b1_13, b2, b3, corr12, corr13) -> Tensor:
        f1 = self.neck(self.encoder(im1))
        p1_12 = self.levels(f1, b1_12, False, True)
        p1_13 = self.levels(f1, b1_13, False, True)
        p2 = self.levels(self.neck(self.encoder(im2)), b2, False, True)
        p3 = self.levels(self.neck(self.encoder(im3)), b3, False, True)
        with torch.no_grad():
            k1 = self.neck_k(self.encoder_k(im1))
            z1_12 = self.levels(k1, b1_12, True, False)
            z1_13 = self.levels(k1, b1_13, True, False)
            z2 = self.levels(self.neck_k(self.encoder_k(im2)), b2, True, False)
            z3 = self.levels(self.neck_k(self.encoder_k(im3)), b3, True, False)
        return (self.regression_loss(p1_12, z2, corr12)
                + self.regression_loss(p2, z1_12, corr12.transpose(1, 2))
                + self.regression_loss(p1_13, z3, corr13)
                + self.regression_loss(p3, z1_13, corr13.transpose(1, 2)))


def assigned_ids(boxes: Tensor, ids: Tensor, aware_range: Tuple[int, ...],
                 unused: float) -> Tensor:
    """``assign_bboxs_to_feature_map`` on integer boxes (inclusive ``x2 = x1 + w - 1``)."""
    out = torch.full((P, len(boxes)), unused)
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        size = ((x2 - 1 - x1 + 1) * (y2 - 1 - y1 + 1))**0.5
        for j in range(P):
            if size <= aware_range[j]:
                out[j, i] = float(ids[i])
                break
    return out.reshape(-1)


def correspondence(boxes_a, ids_a, boxes_b, ids_b, range_a, range_b, unused_b) -> Tensor:
    """``get_aware_correspondence_matrix`` per image -> ``(B, P * K, P * K)``."""
    return torch.stack([
        (assigned_ids(ba, ia, range_a, -1.)[:, None]
         == assigned_ids(bb, ib, range_b, unused_b)[None, :]).float()
        for ba, ia, bb, ib in zip(boxes_a, ids_a, boxes_b, ids_b)
    ])


def reference_from(model: nn.Module) -> RefSoCoFPN:
    """The reference with the model's weights (our modules' parameter names mapped)."""
    th, pj, pd = model.tile_head, model.projector, model.head.predictor
    c = th.shared_convs[0].conv.out_channels
    head = RefHead(c, th.shared_fcs[0].out_features)
    for i in range(4):
        head.convs[i].load_state_dict(th.shared_convs[i].conv.state_dict())
        head.bns[i].load_state_dict(th.shared_convs[i].bn.state_dict())
    head.fc1.load_state_dict(th.shared_fcs[0].state_dict())

    def mlp(m):
        ref = RefMLP(m.fc0.in_features, m.fc0.out_features, m.fc1.out_features)
        ref.linear1.load_state_dict(m.fc0.state_dict())
        ref.bn1.load_state_dict(m.bn0.state_dict())
        ref.linear2.load_state_dict(m.fc1.state_dict())
        return ref

    return RefSoCoFPN(copy.deepcopy(model.backbone), copy.deepcopy(model.neck), head, mlp(pj),
                      mlp(pd))


def ref_grads(ref: RefSoCoFPN) -> Dict[str, Tensor]:
    """Reference gradients under our parameter names."""
    g = {f'backbone.{k}': p.grad for k, p in ref.encoder.named_parameters()}
    g.update({f'neck.{k}': p.grad for k, p in ref.neck.named_parameters()})
    for i in range(4):
        g[f'tile_head.shared_convs.{i}.conv.weight'] = ref.head.convs[i].weight.grad
        g[f'tile_head.shared_convs.{i}.bn.weight'] = ref.head.bns[i].weight.grad
        g[f'tile_head.shared_convs.{i}.bn.bias'] = ref.head.bns[i].bias.grad
    g['tile_head.shared_fcs.0.weight'] = ref.head.fc1.weight.grad
    g['tile_head.shared_fcs.0.bias'] = ref.head.fc1.bias.grad
    for ours, m in (('projector', ref.projector), ('head.predictor', ref.predictor)):
        for a, b in (('fc0', 'linear1'), ('bn0', 'bn1'), ('fc1', 'linear2')):
            for t in ('weight', 'bias'):
                g[f'{ours}.{a}.{t}'] = getattr(getattr(m, b), t).grad
    return g


def make_case(seed: int = 0):
    """Views, integer boxes and ids with the official layout: V1 has one box set per partner
    view (``bboxs1_12``, ``bboxs1_13``: V3 has its own proposals), sets padded independently
    with repeated ids (``pad_bboxs_with_common``), boxes of every level."""
    g = torch.Generator().manual_seed(seed)
    ims = [torch.randn(B, 3, s, s, generator=g) for s in SIZES]

    def boxes(size):
        side = torch.randint(4, size, (B, K, 2), generator=g).float()
        x1y1 = (torch.rand(B, K, 2, generator=g) * (size - side)).floor()
        return torch.cat([x1y1, x1y1 + side], -1)

    b1_12, b1_13, b2, b3 = boxes(64), boxes(64), boxes(64), boxes(32)
    ids12 = torch.tensor([[1, 2, 3, 2], [4, 5, 6, 7]])
    ids2 = torch.tensor([[1, 2, 3, 3], [4, 5, 6, 7]])
    ids13 = torch.tensor([[8, 9, 8, 10], [11, 12, 13, 14]])
    ids3 = torch.tensor([[8, 9, 10, 10], [11, 12, 13, 14]])
    return ims, (b1_12, b1_13, b2, b3), (ids12, ids13, ids2, ids3)


def our_samples(boxes, ids) -> List[DataSample]:
    b1_12, b1_13, b2, b3 = boxes
    ids12, ids13, ids2, ids3 = ids
    samples = []
    for i in range(B):
        ds = DataSample()
        ds.set_field(torch.stack([b1_12[i], b2[i], b3[i]]), 'view_boxes')
        ds.set_field(torch.stack([b1_12[i], b1_12[i], b1_13[i]]), 'v1_boxes')
        ds.set_field(torch.stack([ids12[i], ids2[i], ids3[i]]), 'view_ids')
        ds.set_field(torch.stack([ids12[i], ids12[i], ids13[i]]), 'v1_ids')
        samples.append(ds)
    return samples


def run_both(pool_all_levels: bool, message_hub, seed: int = 0):
    """(our loss, our grads, reference loss, reference grads) in training mode."""
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg(True))
    for m in model.modules():  # no zero-initialised residual gammas: every gradient non-zero
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    ref = reference_from(model)
    if not pool_all_levels:
        model.pool_all_levels = False
    model.train()
    ref.train()
    ims, boxes, ids = make_case(seed)
    losses = model.loss(ims, our_samples(boxes, ids))
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    loss.backward()
    ours = {k: p.grad for k, p in model.named_parameters()
            if p.requires_grad and not k.startswith('target_net')}
    aware = THRESHOLDS + (64, )
    aware3 = THRESHOLDS + (64, )  # the official ranges do not scale with the V3 size
    b1_12, b1_13, b2, b3 = boxes
    ids12, ids13, ids2, ids3 = ids
    corr12 = correspondence(b1_12, ids12, b2, ids2, aware, aware, -2.)
    corr13 = correspondence(b1_13, ids13, b3, ids3, aware, aware3, -3.)
    norm = [b / s for b, s in zip(boxes, (64, 64, 64, 32))]
    ref_loss = ref(*ims, *norm, corr12, corr13)
    ref_loss.backward()
    return loss.detach(), ours, ref_loss.detach(), ref_grads(ref)


def parity(pool_all_levels: bool, message_hub) -> Tuple[float, float, str]:
    """Relative loss difference, minimum gradient cosine over tensors and its tensor.

    A bias right before a training-mode BatchNorm (the MLPs' first Linear; the projector's
    last Linear, which feeds the predictor's) has an exactly zero gradient: both are float
    noise (~1e-7), checked to be below 1e-5 and left out of the cosines.
    """
    loss, ours, ref_loss, ref = run_both(pool_all_levels, message_hub)
    assert set(ours) == set(ref), set(ours) ^ set(ref)
    rel = float((loss - ref_loss).abs() / ref_loss.abs())
    zero = {k for k in ours if float(ref[k].norm()) < 1e-5}
    assert zero == {'projector.fc0.bias', 'projector.fc1.bias', 'head.predictor.fc0.bias'}
    assert all(float(ours[k].norm()) < 1e-5 for k in zero)
    cosines = {k: float(F.cosine_similarity(ours[k].flatten(), ref[k].flatten(), dim=0))
               for k in ours if k not in zero}
    worst = min(cosines, key=cosines.get)
    return rel, cosines[worst], worst


def test_official_mode_matches_the_reference_in_training_mode(message_hub):
    rel, cos, worst = parity(True, message_hub)
    print(f'official mode: loss rel. diff {rel:.2e}, min grad cosine {cos:.6f} ({worst})')
    assert rel < 1e-5
    assert cos >= 0.999, worst


def test_one_level_joint_bn_mode_fails_parity(message_hub):
    rel, cos, worst = parity(False, message_hub)
    print(f'one-level mode: loss rel. diff {rel:.2e}, min grad cosine {cos:.6f} ({worst})')
    assert rel > 1e-3 or cos < 0.999


@pytest.mark.parametrize('size', [112, 48])
def test_pooled_features_of_every_level_equal_the_reference(size):
    """Every box on every level, boxes scaled by feature size / image size (a 112-px view has
    a 4x4 P5: 4/112, not 1/32), against ``torchvision.ops.roi_align`` on normalised boxes."""
    pooler = MODELS.build(dict(type='MultiLevelRoIPooler'))
    g = torch.Generator().manual_seed(size)
    sides = [size]
    for _ in range(5):
        sides.append((sides[-1] + 1) // 2)  # stride-2 convs with padding: ceil
    feats = [torch.randn(2, 8, s, s, generator=g) for s in sides[2:]]  # P2..P5
    side = torch.rand(2, 3, 2, generator=g) * size * 0.7 + 2
    x1y1 = torch.rand(2, 3, 2, generator=g) * (size - side)
    boxes = torch.cat([x1y1, x1y1 + side], -1)
    rois = torch.cat([torch.arange(2.).repeat_interleave(3)[:, None], boxes.reshape(6, 4)], 1)
    ours = pooler.pool_every_level(feats, rois, (size, size))
    assert len(ours) == 4
    for feat, x in zip(feats, ours):
        ref = RefSoCoFPN.roi_align(feat, boxes / size)
        torch.testing.assert_close(x, ref, rtol=0, atol=1e-5)


def test_official_views_train_the_official_mode(message_hub):
    """SoCoViews (visible parts, V3 with its own proposals, V1 jitter, in-box Cutout) ->
    PackSoCoInputs -> SoCo(pool_all_levels=True): V1 pooled once per partner view."""
    views = TRANSFORMS.build(dict(type='SoCoViews', num_proposals=K, v1_size=64, v2_size=64,
                                  v3_size=32, box_mode='visible_part', independent_v3=True,
                                  jitter_views='v1', jitter_anchor='top_left', seed=0,
                                  view_pipelines=[[], [dict(type='InBoxCutout')],
                                                  [dict(type='InBoxCutout')]]))
    pack = TRANSFORMS.build(dict(type='PackSoCoInputs'))
    g = torch.Generator().manual_seed(0)
    packed = []
    for _ in range(B):
        img = (torch.rand(80, 96, 3, generator=g) * 255).byte().numpy()
        props = torch.tensor([[2., 4., 40., 50.], [30., 10., 90., 70.], [10., 40., 60., 78.]])
        packed.append(pack(views(dict(img=img, proposals=props.numpy()))))
    inputs = [torch.stack([p['inputs'][v] for p in packed]).float() for v in range(3)]
    model = MODELS.build(model_cfg(True))
    model.train()
    losses = model.loss(inputs, [p['data_samples'] for p in packed])
    assert {'loss_v1_v2', 'loss_v1_v3'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
