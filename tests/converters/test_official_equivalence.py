"""Issue 18 item 5 (SoCo): an official SoCo checkpoint, read by the importer into the plugin's
official-recipe model (``pool_all_levels=True``), gives the same per-level RoI embeddings as a
reference forward written from the official code with the official key names (eval mode)."""
import argparse
import os.path as osp
import sys
from collections import OrderedDict

import torch
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'models', 'selfsup'))
from test_soco_official_parity import RefHead, RefMLP, RefSoCoFPN, model_cfg  # noqa: E402

from mcl_plugin.converters.official import to_plugin_state_dict  # noqa: E402
from mcl_plugin.registry import MODELS  # noqa: E402


def _official_modules():
    """The official SoCo_FPN parts at the test's size: torchvision-named ResNet-18 (mmdet's
    ResNet has the same names), an FPN from C3 (``start_level=1``), FastRCNNConvFCHead, MLPs."""
    from mmdet.models.backbones import ResNet
    from mmdet.models.necks import FPN
    torch.manual_seed(0)
    encoder = ResNet(depth=18, base_channels=16, out_indices=(0, 1, 2, 3))
    neck = FPN(in_channels=[16, 32, 64, 128], out_channels=16, num_outs=3, start_level=1)
    head, projector = RefHead(16, 32), RefMLP(32, 48, 24)
    for m in (encoder, neck, head, projector):
        for name, buf in m.named_buffers():  # eval mode reads running statistics
            if name.endswith('running_mean'):
                buf.copy_(torch.randn_like(buf) * 0.1)
            elif name.endswith('running_var'):
                buf.copy_(torch.rand_like(buf) + 0.5)
    return encoder, neck, head, projector


def _official_state(encoder, neck, head, projector) -> OrderedDict:
    """Keys as SoCo's ``SoCo_FPN`` names them (``head.conv{j}`` / ``bn{j}`` / ``fc1``)."""
    state = OrderedDict()
    state.update((f'encoder.{k}', v) for k, v in encoder.state_dict().items())
    state.update((f'neck.{k}', v) for k, v in neck.state_dict().items())
    for j in range(4):
        state.update((f'head.conv{j + 1}.{k}', v) for k, v in head.convs[j].state_dict().items())
        state.update((f'head.bn{j + 1}.{k}', v) for k, v in head.bns[j].state_dict().items())
    state.update((f'head.fc1.{k}', v) for k, v in head.fc1.state_dict().items())
    state.update((f'projector.{k}', v) for k, v in projector.state_dict().items())
    return state


def test_official_soco_checkpoint_gives_the_reference_embeddings(tmp_path):
    init_default_scope('mcl_plugin')
    parts = _official_modules()
    src = str(tmp_path / 'ckpt_epoch_100.pth')
    torch.save(dict(opt=argparse.Namespace(start_level=1), epoch=100,
                    model=OrderedDict(('module.' + k, v) for k, v in _official_state(*parts)
                                      .items())), src)
    cfg = model_cfg(pool_all_levels=True)
    cfg['neck'].pop('norm_cfg')  # the official FPN has no norm layers
    model = MODELS.build(cfg)
    state, _ = to_plugin_state_dict(src)
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith(('neck.lateral_convs.0.', 'neck.fpn_convs.0.', 'head.predictor.',
                             'target_net.')) for k in result.missing_keys), result.missing_keys
    model.eval()
    ref = RefSoCoFPN(*parts, RefMLP(24, 48, 24))
    ref.eval()  # (mmdet's ResNet.train() returns None: no chaining)

    g = torch.Generator().manual_seed(1)
    image = torch.randn(2, 3, 112, 112, generator=g)
    side = torch.rand(2, 3, 2, generator=g) * 70 + 8
    x1y1 = torch.rand(2, 3, 2, generator=g) * (112 - side)
    boxes = torch.cat([x1y1, x1y1 + side], -1)  # (N, K, 4) pixels
    rois = torch.cat([torch.arange(2.).repeat_interleave(3)[:, None], boxes.reshape(6, 4)], 1)
    with torch.no_grad():
        ours = model.embed(model.online_modules(), image, rois)  # (P2..P5, R, D)
        feats = ref.neck(ref.encoder(image))  # P3..P5
        expected = [ref.projector(ref.head(ref.roi_align(f, boxes / 112))) for f in feats]
    assert ours.shape[0] == 4 and len(expected) == 3
    for level, want in enumerate(expected, start=1):  # our P2 has no official counterpart
        torch.testing.assert_close(ours[level], want, rtol=1e-5, atol=1e-5)


def test_official_mcl_checkpoint_gives_the_reference_tile_features(tmp_path):
    """MCL (OpenSelfSup 0.x layout ``encoder_q.0/1/2.cls_convs``): the importer's model and
    ``DetConvGpNonLinearHead`` run on the official montages give the same pooled tile features
    of every level (eval mode)."""
    from types import SimpleNamespace

    from mmcv.cnn import ConvModule
    from mmdet.models.backbones import ResNet
    from mmdet.models.necks import FPN
    from test_mcl_official_parity import SIZE, official_cfg, official_encoder, official_pyramid
    init_default_scope('mcl_plugin')
    torch.manual_seed(0)
    bn = dict(type='BN', requires_grad=True)
    ref = SimpleNamespace(
        backbone=ResNet(depth=18, norm_cfg=bn),
        neck=FPN(in_channels=[64, 128, 256, 512], out_channels=32, num_outs=4, norm_cfg=bn),
        tile_head=SimpleNamespace(shared_convs=torch.nn.ModuleList(
            ConvModule(32, 32, 3, padding=1, norm_cfg=bn) for _ in range(4))),
        projector=lambda xs: xs)  # MCL's projection MLP is pre-training only (not imported)
    official = OrderedDict()
    for prefix, module in (('encoder_q.0.', ref.backbone), ('encoder_q.1.', ref.neck),
                           ('encoder_q.2.cls_convs.', ref.tile_head.shared_convs)):
        for name, buf in module.named_buffers():
            if name.endswith('running_mean'):
                buf.copy_(torch.randn_like(buf) * 0.1)
            elif name.endswith('running_var'):
                buf.copy_(torch.rand_like(buf) + 0.5)
        module.eval()
        official.update((prefix + k, v) for k, v in module.state_dict().items())
    src = str(tmp_path / 'mcl_epoch_100.pth')
    torch.save(dict(meta=dict(epoch=100, mmcv_version='1.3.0'), state_dict=official,
                    optimizer=dict(state={}, param_groups=[])), src)

    S, B = 3, 16
    model = MODELS.build(official_cfg(S))
    state, _ = to_plugin_state_dict(src)
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith(('projector.', 'head.', 'target_net.')) for k in result.missing_keys)
    model.eval()
    views = [torch.randn(B, 3, SIZE, SIZE) for _ in range(2 * S)]
    r = torch.randn(32)
    with torch.no_grad():
        batches = model.assemble(views)
        ours = model.pooled_tiles(model.backbone, model.neck, model.tile_head, batches)
        for b, (batch, got) in enumerate(zip(batches, ours)):
            draws = [batch.src_index[s].flatten() for s in range(S)]
            imgs, _, counts = official_pyramid(views[b * S:(b + 1) * S], draws)
            feats = official_encoder(ref, imgs)
            bounds = torch.tensor([0] + counts).cumsum(0).tolist()
            want = torch.cat([feats[-(s + 1)][bounds[s]:bounds[s + 1]].flatten(0, 1)
                              for s in range(S)])
            assert got.shape == want.shape
            # same tiles; compare in a fixed order (rows sorted by a random projection)
            torch.testing.assert_close(got[(got @ r).argsort()], want[(want @ r).argsort()],
                                       rtol=1e-5, atol=1e-5)
