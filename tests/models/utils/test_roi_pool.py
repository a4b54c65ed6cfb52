"""Scale-aware level assignment and multi-level RoIAlign (mmcv ops)."""
import pytest
import torch

from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

from mcl_plugin.models.utils.roi_pool import (MultiLevelRoIPooler, assign_levels_by_scale,
                                              boxes_to_rois, roi_align_cfg)


def square(side_w, side_h=None):
    side_h = side_w if side_h is None else side_h
    return [10., 10., 10. + side_w, 10. + side_h]


def test_levels_follow_socos_ranges():
    cases = [((1, ), 0), ((48, ), 0), ((48, 49), 1), ((49, ), 1), ((96, ), 1), ((97, 96), 2),
             ((192, ), 2), ((193, 192), 3), ((224, ), 3), ((300, ), 3), ((0, ), 0)]
    boxes = torch.tensor([square(*s) for s, _ in cases])
    expected = [lvl for _, lvl in cases]
    assert assign_levels_by_scale(boxes).tolist() == expected
    rois = torch.cat([torch.zeros(len(cases), 1), boxes], 1)
    assert assign_levels_by_scale(rois).tolist() == expected  # (R, 5) rois too
    # the area decides, not the longer side: 30 x 150 (sqrt area 67) is P3
    assert assign_levels_by_scale(torch.tensor([square(30, 150)])).tolist() == [1]
    assert assign_levels_by_scale(boxes, num_levels=2).max() == 1
    assert assign_levels_by_scale(boxes, thresholds=()).eq(0).all()
    with pytest.raises(ValueError, match='increase'):
        assign_levels_by_scale(boxes, thresholds=(96, 48))


def test_pooler_is_mmdets_extractor_with_socos_level_mapping():
    """Pooling is mmdet's ``SingleRoIExtractor``; only the level mapping is SoCo's, because
    mmdet's ``floor(log2(sqrt(area) / 56))`` puts SoCo's P3 boxes (48 < side <= 96) on P2."""
    pooler = MultiLevelRoIPooler()
    assert isinstance(pooler, SingleRoIExtractor)
    rois = torch.cat([torch.zeros(4, 1), torch.tensor([square(s) for s in (40, 80, 150, 220)])],
                     1)
    assert pooler.map_roi_levels(rois, 4).tolist() == [0, 1, 2, 3]
    mmdet = SingleRoIExtractor(roi_align_cfg(), 3, [4, 8, 16, 32])
    assert mmdet.map_roi_levels(rois, 4).tolist() == [0, 0, 1, 1]
    # with the same assignment the two give the same numbers
    feats = [torch.randn(1, 3, 256 // s, 256 // s) for s in (4, 8, 16, 32)]
    mmdet.map_roi_levels = pooler.map_roi_levels
    assert torch.equal(pooler(feats, rois), mmdet(tuple(feats), rois))


def test_each_roi_is_pooled_from_its_level_in_roi_order():
    strides = (4, 8, 16, 32)
    # level l is constant l + 1 on image 0 and -(l + 1) on image 1
    n = 320  # input side: every box lies inside
    feats = [torch.stack([torch.full((3, n // s, n // s), l + 1.),
                          torch.full((3, n // s, n // s), -(l + 1.))])
             for l, s in enumerate(strides)]
    boxes = torch.tensor([square(20), square(50), square(150), square(60), square(40),
                          square(250)])
    rois = torch.cat([torch.tensor([[0.], [1.], [0.], [1.], [1.], [0.]]), boxes], 1)
    pooler = MultiLevelRoIPooler(featmap_strides=strides, out_size=3)
    out = pooler(feats, rois)
    assert out.shape == (6, 3, 3, 3)
    levels = [0, 1, 2, 1, 0, 3]
    signs = [1, -1, 1, -1, -1, 1]
    for i in range(6):
        assert torch.allclose(out[i], torch.tensor(signs[i] * (levels[i] + 1.)))


def test_roi_align_samples_the_right_place():
    """A horizontal ramp (value = x in input pixels at cell centres): the pooled bins of an
    aligned RoIAlign read the x of their own centre."""
    stride = 8
    xs = (torch.arange(16) + 0.5) * stride
    feat = xs.view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous()
    rois = torch.tensor([[0., 16., 8., 72., 64.]])
    pooler = MultiLevelRoIPooler((stride, ), out_size=7, scale_thresholds=(), sampling_ratio=2)
    out = pooler([feat], rois)
    bin_w = (72 - 16) / 7
    centres = 16 + (torch.arange(7) + 0.5) * bin_w
    assert torch.allclose(out[0, 0, 3], centres, atol=1e-4)


def test_single_map_c4_and_gradients():
    feat = torch.randn(2, 4, 8, 8, requires_grad=True)
    pooler = MultiLevelRoIPooler(featmap_strides=(16, ), out_size=14, scale_thresholds=())
    rois = boxes_to_rois(torch.tensor([[square(60), square(100)], [square(30), square(90)]]))
    assert rois[:, 0].tolist() == [0, 0, 1, 1]
    out = pooler([feat], rois)
    assert out.shape == (4, 4, 14, 14)
    out.sum().backward()
    assert feat.grad.abs().sum() > 0
    # an unused pyramid level stays in the graph (DDP without find_unused_parameters)
    feats = [torch.randn(1, 2, 16, 16, requires_grad=True), torch.randn(1, 2, 8, 8,
                                                                        requires_grad=True)]
    out = MultiLevelRoIPooler((4, 8), 2, (48, ))(feats, boxes_to_rois([torch.tensor([square(20)
                                                                                     ])]))
    out.sum().backward()
    assert feats[1].grad is not None and feats[0].grad.abs().sum() > 0


def test_configuration_errors():
    with pytest.raises(ValueError, match='need 3 scale_thresholds'):
        MultiLevelRoIPooler((4, 8, 16, 32), scale_thresholds=(48, 96))
    with pytest.raises(ValueError, match='got 2 feature maps'):
        MultiLevelRoIPooler()([torch.zeros(1, 1, 4, 4)] * 2, torch.zeros(0, 5))
