"""The paper-size MCL configs reproduce the official recipe (GuoQiushan/MCL @ 1912aa9,
``configs/selfsup/MCL/MCL.py`` and ``openselfsup/models/mcl.py``) row by row; the paper's reading
and the CPU demo keep their documented choices (issue 17)."""
import os.path as osp

import pytest
from mmengine.config import Config

MCL = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'mcl')
PAPER_SIZE = [
    'mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py',
    'mcl_r50-fpn_16xb256-lars-coslr-530e_coco.py',
    'mcl_r50-fpn_1xb64-bn-lars-coslr-100e_in1k.py',
    'mcl_swin-t-fpn_16xb256-lars-coslr-100e_in1k.py',
    'mcl_r50-c4_16xb256-lars-coslr-100e_in1k.py',
]

#: The official recipe, one row per element (MCL.py line numbers).
OFFICIAL = {
    'levels': 4,  # downsample_ratios [1, 2, 4, 8] (:42)
    'backbone BN scope': 'per_branch',  # encoder_q(img_qs), encoder_q(img_ks) (mcl.py:177-178)
    'head BN scope': 'per_level',  # DetConvGpNonLinearHead.forward (necks.py:437-465)
    'montages per level': 'official',  # B / [1, 4, 16, 32] (:43)
    'downsampling': 'nearest',  # F.interpolate defaults (mcl.py:89)
    'level weights': [1 / 2, 1 / 4, 1 / 8, 1 / 8],  # (:44)
    'predictors': 'per level, fc-BN-ReLU-fc with biases',  # head_num=4, NonLinearNeckV2 (:30-38)
    'projector': '2048 hidden, last BN without affine',  # mlp_bn, last_bn (:19-28)
    'loss': ('a', 1.0, True),  # level-0 targets, T = 1.0, x 2T (:37, latent_pred_head.py:91)
    'positional embedding': 'none',
    'EMA start': 0.01,  # base_momentum 0.99 -> 1 (mmengine convention) (:11, :130)
    'crop': ((0.2, 1.0), 'bilinear'),  # RandomResizedCrop(224, scale=(0.2, 1.)) (:67)
    'views per branch': [4, 4],  # 8 pipelines, img_pyramid_pipe_idxs (:45-46, :104-106)
    'blur / solarize p': ((1.0, 0.0), (0.1, 0.2)),  # (blur, solarize) per branch (:89-91, :101-102)
    'optimizer': ('LARS', 0.9, 1e-5),  # (:135)
    'lr per 256 images': 1.0,  # (:133)
    'gradient clip': 500,  # (:141)
    'mixed precision': True,  # use_fp16 (:140)
    'warm-up': (1e-4, 10),  # linear, warmup_ratio 1e-4, 3127 iters = 10 epochs (:147-148)
    'cosine': ('over all iterations', 1e-4),  # CosineAnnealingInterval, min_lr (:144-145)
}


def recipe(cfg):
    """The rows of :data:`OFFICIAL` as ``cfg`` sets them."""
    m, head = cfg.model, cfg.model.head
    pred, proj = head.predictor, m.projector
    views = next(s for s in cfg.train_pipeline if s.type == 'MultiView')
    crop = cfg.byol_common_ops[0]
    tail = [{t.type: t.prob for t in p[len(cfg.byol_common_ops):]} for p in views.transforms]
    warm, cos = cfg.param_scheduler
    batch = cfg.train_dataloader.batch_size
    gpus = 1 if '1xb' in cfg.filename else 16
    return {
        'levels': m.num_levels,
        'backbone BN scope': m.get('bn_scope', 'joint'),
        'head BN scope': m.get('tile_bn_scope', 'joint'),
        'montages per level': m.assembler.get('montage_counts', 'once'),
        'downsampling': m.assembler.get('mode', 'bilinear'),
        'level weights': head.level_weights,
        'predictors': 'per level, fc-BN-ReLU-fc with biases'
        if head.get('per_level_predictor') and pred.with_bias and pred.with_last_bias
        and not pred.with_last_bn and pred.num_layers == 2 else 'other',
        'projector': '2048 hidden, last BN without affine'
        if proj.hid_channels == 2048 and proj.with_last_bn and not proj.with_last_bn_affine
        else 'other',
        'loss': (head.loss_mode, head.temperature, head.scale_by_temperature),
        'positional embedding': m.backbone.stem_pos_embed.type,
        'EMA start': m.base_momentum,
        'crop': (tuple(crop.crop_ratio_range), crop.interpolation),
        'views per branch': list(views.num_views),
        'blur / solarize p': tuple(
            (t.get('GaussianBlur', 0.), t.get('Solarize', 0.)) for t in tail),
        'optimizer': (cfg.optimizer.type, cfg.optimizer.momentum, cfg.optimizer.weight_decay),
        'lr per 256 images': cfg.optimizer.lr / (batch * gpus / 256),
        'gradient clip': cfg.optim_wrapper.clip_grad.max_norm,
        'mixed precision': cfg.optim_wrapper.type == 'AmpOptimWrapper',
        'warm-up': (warm.start_factor, warm.end) if warm.type == 'LinearLR' else None,
        'cosine': ('over all iterations' if cos.begin == 0 and cos.T_max == cos.end else
                   'after warm-up', cos.eta_min),
    }


def _diff(got, want):
    return [f'{k}: {got[k]!r} != official {v!r}' for k, v in want.items() if got[k] != v]


@pytest.mark.parametrize('name', PAPER_SIZE)
def test_paper_size_configs_follow_the_official_recipe(name):
    cfg = Config.fromfile(osp.join(MCL, name))
    want = dict(OFFICIAL)
    if 'c4' in name:  # no official C4: the res5 head runs on the loss tiles only (see header)
        want['head BN scope'] = 'joint'
    assert not _diff(recipe(cfg), want)
    assert cfg.train_cfg.max_epochs == (530 if 'coco' in name else 100)
    assert cfg.param_scheduler[1].T_max == cfg.train_cfg.max_epochs


def test_paper_reading_and_cpu_demo_keep_their_choices():
    paper = recipe(
        Config.fromfile(osp.join(MCL, 'mcl-paper_r50-fpn_16xb256-lars-coslr-100e_in1k.py')))
    assert sorted(k for k, _ in (d.split(':', 1) for d in _diff(paper, OFFICIAL))) == sorted([
        'backbone BN scope', 'head BN scope', 'montages per level', 'downsampling', 'level weights',
        'predictors', 'positional embedding', 'crop', 'mixed precision', 'cosine'])
    assert paper['positional embedding'] == 'spe' and paper['crop'] == ((0.08, 1.0), 'bicubic')
    demo = Config.fromfile(
        osp.join(MCL, 'mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py')).model
    assert demo.get('bn_scope', 'joint') == demo.get('tile_bn_scope', 'joint') == 'joint'
    assert not demo.head.get('per_level_predictor', False)


def test_benchmark_has_the_official_recipe_variant():
    """``tools/benchmark.py --algos mcl,mcl-official`` measures what the official BN grouping
    costs (configs/mcl/README.md, "Cost of the official recipe")."""
    from tools.analysis.bench import describe_inputs, model_cfg
    cfg = model_cfg('mcl-official', 18, 128)
    assert (cfg['bn_scope'], cfg['tile_bn_scope']) == ('per_branch', 'per_level')
    assert cfg['tile_pooler']['out_size'] == 4 and cfg['neck']['in_channels'][0] == 64
    assert model_cfg('mcl', 18, 128).get('bn_scope', 'joint') == 'joint'
    assert '86 montages' in describe_inputs('mcl-official', 128, 32, 4)
    with pytest.raises(ValueError, match='no CPU demo'):
        model_cfg('mcl-official', 18, 128, heads='demo')
