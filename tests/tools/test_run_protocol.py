"""tools/run_protocol.py (the one-protocol table) and the schedule rescaling of
tools/pretrain_and_finetune.py --pretrain-iters."""
import json
import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import pretrain_and_finetune as chain  # noqa: E402
import run_protocol as protocol  # noqa: E402

MCL = 'configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'


def test_pretrain_iters_rescale_warmup_and_cosine():
    opts = chain.pretrain_options(osp.join(ROOT, MCL), 40, ['param_scheduler.1.eta_min=0.1'])
    # 300 iterations with a 30-iteration warm-up -> 40 with 4; cosine spans the rest; the
    # user's own options come last so they win.
    assert opts == [
        '--cfg-options', 'train_cfg.max_iters=40', 'param_scheduler.0.end=4',
        'param_scheduler.1.begin=4', 'param_scheduler.1.end=40', 'param_scheduler.1.T_max=36',
        'param_scheduler.1.eta_min=0.1'
    ]


def test_rescaled_schedule_single_dict_milestones_and_epoch_based():
    scheds = [
        dict(type='MultiStepLR', by_epoch=False, begin=0, end=1000, milestones=[600, 900]),
        dict(type='LinearLR', by_epoch=True, begin=0, end=5),  # epoch-based: untouched
    ]
    assert chain.rescaled_schedule(scheds, 1000, 100) == [
        'param_scheduler.0.end=100', 'param_scheduler.0.milestones=[60,90]'
    ]
    single = dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=300, T_max=300)
    assert chain.rescaled_schedule(single, 300, 30) == [
        'param_scheduler.end=30', 'param_scheduler.T_max=30'
    ]
    assert chain.rescaled_schedule(None, 300, 30) == []


def test_plan_runs_main_rows_with_every_seed_first():
    runs = protocol.plan(['random', 'mcl', 'soco', 'mcl-s1'], [0, 1], all_seeds=False)
    assert runs == [('random', 0), ('mcl', 0), ('random', 1), ('mcl', 1), ('soco', 0),
                    ('mcl-s1', 0)]
    assert ('soco', 1) in protocol.plan(['soco'], [0, 1], all_seeds=True)
    assert protocol.select_rows('main') == ['random', 'byol', 'mcl']
    with pytest.raises(SystemExit, match='unknown row'):
        protocol.select_rows('mcl,moco')


def test_commands_share_one_finetune_protocol_and_budget(small_data):
    args = protocol.parse_args(['--data', str(small_data), '--pretrain-images', '64'])
    cmds = {row: protocol.command(row, 3, args)[0] for row in ('random', 'mcl', 'detco', 'mcl-s2')}
    ft = {row: cmd[cmd.index('--finetune-cfg-options') + 1:] for row, cmd in cmds.items()}
    assert ft['random'] == ft['mcl'] == ft['detco'] == ft['mcl-s2']
    assert 'randomness.seed=3' in ft['mcl']
    classes = open(osp.join(small_data, 'objects_coco', 'classes.txt')).read().split()
    assert f'model.roi_head.bbox_head.num_classes={len(classes)}' in ft['mcl']
    assert '--no-pretrain' in cmds['random']
    # Equal images seen: batch 16 -> 4 iterations, batch 8 -> 8 iterations.
    assert cmds['mcl'][cmds['mcl'].index('--pretrain-iters') + 1] == '4'
    assert cmds['detco'][cmds['detco'].index('--pretrain-iters') + 1] == '8'
    # an ablation row is its own config file, not options on top of the S = 3 demo
    pre = cmds['mcl-s2'][cmds['mcl-s2'].index('--pretrain-cfg-options') + 1:]
    assert cmds['mcl-s2'][2] == protocol.ROWS['mcl-s2'][1] != protocol.MCL
    assert not [o for o in pre[:pre.index('--work-dir')] if o.startswith('model.')]


def test_soco_without_proposals_names_the_file_and_the_fix(tmp_path, small_data):
    data = tmp_path / 'data'
    os.makedirs(data / 'pretrain')
    args = protocol.parse_args(['--data', str(data)])
    with pytest.raises(SystemExit, match='train_proposals_ss-fast.json.*generate_proposals.py'):
        protocol.command('soco', 0, args)
    with pytest.raises(SystemExit, match='objects_coco/classes.txt not found.*prepare_data.py'):
        protocol.command('random', 0, args)


def _write_run(work, row, seed, box_ap, mask_ap, pretrain=True):
    folder = osp.join(work, row, f'seed{seed}')
    os.makedirs(folder)
    metrics = dict(bbox=dict(AP=box_ap, AP50=2 * box_ap), segm=dict(AP=mask_ap),
                   seconds=dict(pretrain=100.0, finetune=50.0, test=10.0))
    if pretrain:
        metrics.update(pretrain_config=MCL, pretrain_checkpoint='x/iter_40.pth')
    with open(osp.join(folder, 'metrics.json'), 'w') as f:
        json.dump(metrics, f)


def test_table_and_reading_from_finished_runs(tmp_path):
    work = str(tmp_path)
    _write_run(work, 'random', 0, 1.0, 1.0, pretrain=False)
    _write_run(work, 'random', 1, 2.0, 1.0, pretrain=False)
    _write_run(work, 'mcl', 0, 5.0, 1.2)
    _write_run(work, 'mcl', 1, 6.0, 1.4)
    _write_run(work, 'byol', 0, 2.4, 1.0)
    text, summary = protocol.table(protocol.collect(work, protocol.select_rows('all')))
    lines = text.splitlines()
    assert len(lines) == 5 and lines[0].count('|') == lines[1].count('|') == 15
    random_row, byol_row, mcl_row = lines[2:]
    assert random_row.startswith('| random init | 0,1 | 1.5 ± 0.5 | 3.0 ± 1.0 |')
    assert byol_row.startswith('| BYOL (mmpretrain), R18 | 0 | 2.4 |')
    assert mcl_row.startswith('| MCL S=3, mode a | 0,1 | 5.5 ± 0.5 |')
    assert '| 40 x 16 | 100 | 60 |' in mcl_row
    notes = protocol.reading(summary)
    # MCL: +4.0 > 0.5 + 0.5; BYOL (one seed): +0.9 < 0.5 + 2 * 0.5.
    assert 'MCL S=3, mode a: box AP +4.0 vs random init (exceeds the seed spread 1.0)' in notes
    assert 'BYOL (mmpretrain), R18: box AP +0.9 vs random init (within the seed spread 1.5)' in notes
    assert 'MCL S=3, mode a: mask AP +0.3 vs random init (exceeds the seed spread 0.1)' in notes


def test_subset_call_keeps_every_finished_row_in_the_table(tmp_path):
    """``--rows soco`` must not drop the rows of earlier calls from results.md."""
    work = str(tmp_path)
    _write_run(work, 'random', 0, 1.0, 1.0, pretrain=False)
    _write_run(work, 'mcl', 0, 5.0, 1.2)
    assert protocol.main(['--rows', 'soco', '--table-only', '--work-dir', work]) == 0
    with open(osp.join(work, 'results.md')) as f:
        text = f.read()
    assert '| random init | 0 | 1.0 |' in text and '| MCL S=3, mode a | 0 | 5.0 |' in text
    assert 'MCL S=3, mode a: box AP +4.0 vs random init' in text


def _merged(config: str, options):
    """``config`` with ``--cfg-options`` applied the way tools/train.py and mmdet do."""
    import argparse

    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    return cfg


def test_protocol_options_hit_the_intended_config_keys(small_data):
    """Every option lands on the key it means (a shifted pipeline index would silently set a
    new key on the wrong transform)."""
    args = protocol.parse_args(['--data', str(small_data), '--pretrain-images', '64'])
    cmd = protocol.command('mcl-s2', 1, args)[0]
    ft_opts = cmd[cmd.index('--finetune-cfg-options') + 1:]
    ft = _merged(protocol.FT, ft_opts)
    assert ft.train_dataloader.dataset.pipeline[2].type == 'RandomResize'
    assert ft.train_dataloader.dataset.pipeline[2].scale == (160, 120)
    assert ft.test_dataloader.dataset.pipeline[1].type == 'Resize'
    assert ft.test_dataloader.dataset.pipeline[1].scale == (160, 120)
    assert ft.param_scheduler[0].type == 'LinearLR' and ft.param_scheduler[0].end == 50
    assert ft.param_scheduler[1].type == 'MultiStepLR' and ft.param_scheduler[1].milestones == [1]
    assert ft.model.train_cfg.rcnn.sampler.num == 32 and ft.randomness.seed == 1
    classes = open(osp.join(small_data, 'objects_coco', 'classes.txt')).read().split()
    assert list(ft.train_dataloader.dataset.metainfo.classes) == classes
    assert ft.train_dataloader.dataset.data_root == osp.join(str(small_data), 'objects_coco/')
    pre_opts = cmd[cmd.index('--pretrain-cfg-options') + 1:cmd.index('--work-dir')]
    pre = _merged(protocol.ROWS['mcl-s2'][1], pre_opts)
    assert pre.model.num_levels == 2
    assert pre.train_dataloader.dataset.pipeline[1].type == 'MultiView'
    assert pre.train_dataloader.dataset.pipeline[1].num_views == [2, 2]
    assert pre.train_dataloader.dataset.data_root == osp.join(str(small_data), 'pretrain')
    assert pre.randomness.seed == 1


def _flat(value, prefix=''):
    """``{dotted key: leaf value}`` of a resolved config (list items by index)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for key, item in items:
        out.update(_flat(item, f'{prefix}.{key}' if prefix else str(key)))
    return out or {prefix: value}


#: The MultiView step's view counts (index 1 of the pipeline: checked by type below).
_VIEWS = ('train_pipeline.1.num_views', 'train_dataloader.dataset.pipeline.1.num_views')
#: ablation row -> (S, loss mode) of its config
ABLATIONS = {
    'mcl-s1': (1, 'a'),
    'mcl-s2': (2, 'a'),
    'mcl-s4': (4, 'a'),
    'mcl-b': (3, 'b'),
    'mcl-c': (3, 'c'),
    'mcl-d': (3, 'd'),
}


@pytest.mark.parametrize('row', sorted(ABLATIONS))
def test_each_ablation_config_changes_only_its_setting(row):
    """Each MCL ablation row runs its own config (configs/mcl/ablations/), which resolves to the
    S = 3, mode (a) demo with only the intended keys changed: S in the model and in both view
    branches (2S views per image), or the head's loss mode."""
    from mmengine.config import Config
    levels, mode = ABLATIONS[row]
    config = protocol.ROWS[row][1]
    assert config.startswith('configs/mcl/ablations/') and osp.isfile(osp.join(ROOT, config))
    cfg = Config.fromfile(osp.join(ROOT, config))
    demo = Config.fromfile(osp.join(ROOT, protocol.MCL))
    assert cfg.model.num_levels == levels and cfg.model.head.get('loss_mode', 'a') == mode
    assert demo.model.num_levels == 3 and demo.model.head.get('loss_mode', 'a') == 'a'
    views = cfg.train_dataloader.dataset.pipeline[1]
    assert views.type == 'MultiView' and views.num_views == [levels, levels]
    assert cfg.train_pipeline[1].num_views == [levels, levels] and cfg.num_levels == levels
    # the two branches keep the demo's asymmetric view pipelines
    assert views.transforms == demo.train_dataloader.dataset.pipeline[1].transforms
    new, old = _flat(cfg.to_dict()), _flat(demo.to_dict())
    changed = {k for k in set(new) | set(old) if new.get(k, '<unset>') != old.get(k, '<unset>')}
    expected = ({'model.head.loss_mode'} if mode != 'a' else
                {'num_levels', 'model.num_levels'} | {f'{k}.{i}' for k in _VIEWS for i in (0, 1)})
    assert changed == expected, row
