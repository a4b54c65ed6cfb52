"""Source checkpoints for the hand-off tests, assembled from real OpenMMLab modules.

The pre-training model is a plain container with the plugin's attribute names (``backbone``,
``neck``, ``tile_head``, ``projector``, ``head``, ``target_net``) around real mmdet / mmcv /
mmpretrain modules, so the key names and shapes are exactly what those libraries produce.
Test modules import it after ``sys.path.insert(0, <tests>/helpers)``.
"""
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdet')
DEMO = osp.join(CFG, 'mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py')
R50_FPN = osp.join(CFG, 'mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py')
RETINA = osp.join(CFG, 'retinanet_r50-fpn_syncbn_1x_coco.py')
C4 = osp.join(CFG, 'mask-rcnn_r50-c4_syncbn_1x_coco.py')
SWIN = osp.join(CFG, 'mask-rcnn_swin-t-p4-w7-fpn_1x_coco.py')
BN = dict(type='BN', requires_grad=True)
SWIN_T = dict(embed_dims=96,
              depths=[2, 2, 6, 2],
              num_heads=[3, 6, 12, 24],
              window_size=7,
              out_indices=(0, 1, 2, 3))


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Fill every float parameter/buffer with distinct random values (init values would make
    a wrong copy look right, e.g. BN weights are 1 everywhere)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen))
            else:
                tensor.fill_(seed)
    return module


def resnet(depth: int = 18, num_stages: int = 4) -> nn.Module:
    from mmdet.models.backbones import ResNet
    return ResNet(depth=depth,
                  num_stages=num_stages,
                  strides=(1, 2, 2, 2)[:num_stages],
                  dilations=(1, ) * num_stages,
                  out_indices=tuple(range(num_stages)),
                  norm_cfg=BN)


def swin() -> nn.Module:
    from mmdet.models.backbones import SwinTransformer
    return SwinTransformer(**SWIN_T)


def fpn(in_channels: Sequence[int], norm: bool = True) -> nn.Module:
    from mmdet.models.necks import FPN
    return FPN(list(in_channels), 256, num_outs=5, norm_cfg=BN if norm else None)


class TileHead(nn.Module):
    """Four mmcv ConvModules named like ``Shared4Conv1FCBBoxHead.shared_convs``."""

    def __init__(self) -> None:
        super().__init__()
        from mmcv.cnn import ConvModule
        self.shared_convs = nn.ModuleList(
            ConvModule(256, 256, 3, padding=1, norm_cfg=BN) for _ in range(4))


def res5_head() -> nn.Module:
    """The C4 variant's tile head: an mmdet ``ResLayer`` (res5) -> ``tile_head.layer4.*``."""
    from mmdet.models.roi_heads.shared_heads import ResLayer
    return ResLayer(depth=50, stage=3, norm_cfg=BN)


class PosEmbed(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.x_embed = nn.Parameter(torch.zeros(1, 64, 8, 8))


class PretrainModel(nn.Module):
    """Container with the plugin's attribute names; ``target_net`` is the plugin's
    ``MomentumEncoder`` over ``backbone``, ``neck``, ``tile_head``, ``projector`` (keys
    ``target_net.module.<name>.*``) with different values."""

    def __init__(self,
                 backbone: nn.Module,
                 neck: Optional[nn.Module],
                 tile_head: nn.Module,
                 seed: int = 1,
                 with_ema: bool = True) -> None:
        super().__init__()
        from mcl_plugin.models.utils import MomentumEncoder
        backbone.stem_pe = PosEmbed()
        self.backbone = backbone
        if neck is not None:
            self.neck = neck
        self.tile_head = tile_head
        self.projector = nn.Sequential(nn.Linear(256, 64), nn.BatchNorm1d(64), nn.Linear(64, 32))
        self.head = nn.Module()
        self.head.predictor = nn.Linear(32, 32)
        randomize(self, seed)
        if with_ema:
            online = dict(backbone=backbone, neck=neck, tile_head=tile_head,
                          projector=self.projector)
            online = {k: m for k, m in online.items() if m is not None}
            self.target_net = MomentumEncoder(online, momentum=0.01, end_momentum=0.)
            randomize(self.target_net.module, seed + 100)


def save(state: Dict[str, torch.Tensor], path: str, prefix: str = '') -> str:
    """Write ``state`` like mmengine does (``dict(state_dict=..., meta=...)``)."""
    torch.save(
        dict(state_dict={
            prefix + k: v
            for k, v in state.items()
        }, meta=dict(epoch=1, note='test')), path)
    return path


def expected_mapping(state: Dict[str, torch.Tensor]) -> Dict[str, str]:
    """Target key -> source key the converter must produce for an FPN Mask R-CNN target."""
    out = {}
    for k in state:
        if k.startswith(('backbone.', 'neck.')) and '.stem_pe.' not in k:
            out[k] = k
        elif k.startswith('tile_head.shared_convs.'):
            out['roi_head.bbox_head.shared_convs.' + k[len('tile_head.shared_convs.'):]] = k
    return out


def run_tools(*calls: Sequence[str], timeout: int = 240) -> List[subprocess.CompletedProcess]:
    """Run ``tools/<script> args...`` with this interpreter from the repository root, all
    calls at once (each start-up imports mmdet/mmpretrain for several seconds)."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    procs = [(call,
              subprocess.Popen(
                  [sys.executable, osp.join(ROOT, 'tools', call[0]), *call[1:]],
                  cwd=ROOT,
                  env=env,
                  text=True,
                  stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)) for call in calls]
    done = []
    for call, proc in procs:
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(call, proc.returncode, out, err))
    return done


def tool_main(script: str):
    """The ``main(argv)`` of ``tools/<script>``, for in-process CLI runs."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(script[:-3], osp.join(ROOT, 'tools', script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def keys_under(state: Dict[str, torch.Tensor], prefix: str) -> List[str]:
    return [k for k in state if k.startswith(prefix)]
