"""The benchmarked models: every algorithm's model config read from its config file at one backbone
depth and image size (:func:`model_cfg`) and built as the Runner would on one process
(:func:`build_model`)."""
import os.path as osp
from typing import Optional, Tuple

ALGOS = ('mcl', 'mcl-sup', 'soco', 'detco', 'plrc', 'byol', 'mocov2')
EXTRA_ALGOS = ('vanilla-sup', 'mcl-official', 'mcl-target-all', 'mcl-target-montages',
               'mcl-rows')
#: MCL with the official code's BatchNorm grouping and recipe (configs/mcl/README.md): one
#: backbone pass per branch, the tile head + projector per FPN level over every montage.
MCL_LIKE = ('mcl', 'mcl-official', 'mcl-target-all', 'mcl-target-montages', 'mcl-rows')
BASELINES = ('byol', 'mocov2')
FPN_IN = {18: [64, 128, 256, 512], 34: [64, 128, 256, 512], 50: [256, 512, 1024, 2048],
          101: [256, 512, 1024, 2048]}
NUM_CLASSES = 1000
LABELS = {'mcl': 'MCL', 'mcl-sup': 'MCL-sup', 'soco': 'SoCo', 'detco': 'DetCo', 'plrc': 'PLRC',
          'byol': 'BYOL (mmpretrain)', 'mocov2': 'MoCo v2 (mmpretrain)',
          'vanilla-sup': 'supervised (mmpretrain ImageClassifier)',
          'mcl-official': 'MCL (official recipe)',
          'mcl-target-all': "MCL (target_scope='all': every level, as before the lean target)",
          'mcl-target-montages': "MCL (target_scope='read-montages')",
          'mcl-rows': "MCL (pyramid_rows='read')"}
#: Suffixes an ``--algos`` entry may carry: ``byol:keep`` is BYOL with
#: :func:`mcl_plugin.engine.keep_freed_memory` in its worker, so one run times both allocator
#: settings side by side.
NAME_SUFFIXES = {'keep': 'freed memory kept'}


def split_name(name: str) -> Tuple[str, str]:
    """``'byol:keep'`` -> ``('byol', 'keep')``; ``'byol'`` -> ``('byol', '')``."""
    base, _, variant = name.partition(':')
    return base, variant


def label(name: str) -> str:
    """The table's name of an ``--algos`` entry: its :data:`LABELS` entry with the variant
    before the parenthesis (``'BYOL, freed memory kept (mmpretrain)'``)."""
    base, variant = split_name(name)
    text = LABELS.get(base, base)
    if not variant:
        return text
    head, sep, tail = text.partition(' (')
    return f'{head}, {NAME_SUFFIXES.get(variant, variant)}{sep}{tail}'


# (paper recipe, R18 CPU demo config), relative to configs/. The plugin's algorithms: the model
# base every leaf config inherits; the baselines: mmpretrain's published configs, inherited by
# configs/baselines.
CONFIGS = {
    'mcl': ('_base_/models/mcl_r50-fpn.py',
            'mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'),
    'mcl-sup': ('_base_/models/mcl-sup_r50-fpn.py',
                'mcl_sup/mcl-sup_r18-fpn_1xb16-sgd-coslr-300i_cpu-demo_objects.py'),
    'soco': ('_base_/models/soco_r50-fpn.py',
             'soco/soco_r18-fpn_1xb8-lars-coslr-300i_cpu-demo_pretrain.py'),
    'detco': ('_base_/models/detco_r50.py', 'detco/detco_r18_1xb8-coslr-300i_cpu-demo_pretrain.py'),
    'plrc': ('_base_/models/plrc_r50.py', 'plrc/plrc_r18_1xb8-coslr-300i_cpu-demo_pretrain.py'),
    'byol': ('baselines/byol_r50_16xb256-lars-coslr-200e_in1k.py',
             'baselines/byol_r18_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'),
    'mocov2': ('baselines/mocov2_r50_8xb32-coslr-200e_in1k.py',
               'baselines/mocov2_r18_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'),
}
#: Extra algorithms that are a config variant of one in :data:`CONFIGS` (paper heads only).
VARIANTS = {'mcl-official': '_base_/models/mcl_r50-fpn_official.py'}
#: Extra algorithms that are MCL's model config with some arguments changed (``target_scope``:
#: the lean target against the full one, side by side in one run).
OVERRIDES = {'mcl-target-all': ('mcl', dict(target_scope='all')),
             'mcl-target-montages': ('mcl', dict(target_scope='read-montages')),
             'mcl-rows': ('mcl', dict(pyramid_rows='read'))}
PREPROCESSOR = dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375], to_rgb=True)


def config_root() -> str:
    """The plugin's ``configs/`` folder (``mcl_plugin/.mim/configs`` links to it)."""
    import mcl_plugin
    pkg = osp.dirname(osp.abspath(mcl_plugin.__file__))
    for root in (osp.join(pkg, '.mim', 'configs'), osp.join(osp.dirname(pkg), 'configs')):
        if osp.isdir(root):
            return root
    raise FileNotFoundError(f'no configs folder next to {pkg}')


def classifier_cfg(depth: int) -> dict:
    """The ``vanilla-sup`` reference of ``--pair sup``: a plain supervised classifier (backbone +
    GAP + linear) on ResNet-``depth`` with BN."""
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmdet.ResNet', depth=depth, out_indices=(3, ),
                      norm_cfg=dict(type='BN', requires_grad=True), zero_init_residual=False),
        data_preprocessor=dict(PREPROCESSOR, type='mmpretrain.ClsDataPreprocessor'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=FPN_IN[depth][-1],
                  loss=dict(type='CrossEntropyLoss')))


def model_cfg(name: str, depth: int, img: int, levels: Optional[int] = None,
              heads: str = 'paper') -> dict:
    """Model config of one algorithm at ResNet-``depth`` for ``img``-px inputs.

    Every algorithm comes from its config files (:data:`CONFIGS`): ``heads='paper'`` reads the
    paper recipe (the plugin's ``configs/_base_/models``; for BYOL and MoCo v2 mmpretrain's
    published configs through ``configs/baselines``: projector / queue sizes as published),
    ``heads='demo'`` the R18 CPU demo config (smaller MLPs and queues). Either way the backbone
    depth and everything tied to the backbone width or to the image size is set from the
    arguments, with the rules the demo configs use (``TilePooler.out_size = img // 32``, SoCo's
    scale thresholds ``* img / 224``, PLRC's ``R = img // 4``), a data preprocessor kept at the
    top level of a config is moved into the model (as the Runner does), and SyncBN is left to
    :func:`build_model` (reverted to BN, as mmengine's Runner does on one process).

    Args:
        name (str): One of :data:`ALGOS` or :data:`EXTRA_ALGOS`.
        depth (int): ResNet depth.
        img (int): Image size (see :mod:`tools.analysis.bench`).
        levels (int, optional): MCL / MCL-sup ``num_levels``; None keeps the config's.
        heads (str): ``paper`` or ``demo``.

    Returns:
        dict: The model config.
    """
    if name == 'vanilla-sup':
        return classifier_cfg(depth)
    if name in OVERRIDES:
        base, changes = OVERRIDES[name]
        return dict(model_cfg(base, depth, img, levels, heads), **changes)
    if name not in CONFIGS and name not in VARIANTS:
        raise KeyError(f'unknown algorithm {name!r}')
    from mmengine.config import Config
    if heads not in ('paper', 'demo'):
        raise ValueError(f"heads must be 'paper' or 'demo', got {heads!r}")
    if name in VARIANTS and heads == 'demo':
        raise ValueError(f"{name} has no CPU demo config; use heads='paper'")
    path = VARIANTS[name] if name in VARIANTS else CONFIGS[name][heads == 'demo']
    full = Config.fromfile(osp.join(config_root(), path))
    cfg = full.model.to_dict()
    if 'data_preprocessor' not in cfg and full.get('data_preprocessor'):
        cfg['data_preprocessor'] = full.data_preprocessor.to_dict()
    chans = FPN_IN[depth]
    cfg['backbone']['depth'] = depth
    if name in MCL_LIKE + ('mcl-sup', 'soco'):
        cfg['neck']['in_channels'] = list(chans)
    if name in MCL_LIKE + ('mcl-sup', ):
        cfg['tile_pooler']['out_size'] = max(1, img // 32)
        if levels is not None:
            cfg['num_levels'] = levels
    elif name == 'soco':
        cfg['roi_pooler']['scale_thresholds'] = [t * img / 224 for t in (48, 96, 192)]
    elif name == 'detco':
        cfg['neck']['in_channels'] = tuple(chans)
    elif name == 'plrc':
        cfg['neck']['in_channels'] = chans[-1]
        cfg['projector']['in_channels'] = chans[-1]
        cfg['resolution'] = max(1, img // 4)
    elif name in BASELINES:
        cfg['neck']['in_channels'] = chans[-1]
    return cfg


def build_model(cfg: dict, device: str = 'cpu'):
    """Build in the plugin's scope; SyncBN reverted to BN (one process, as the Runner does)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    from mcl_plugin.registry import MODELS
    init_default_scope('mcl_plugin')
    model = revert_sync_batchnorm(MODELS.build(cfg)).to(device)
    model.train()
    return model
