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
    # S also sets the FPN's levels (the S read ones, start_level = 4 - S) and their strides
    strides = {f'model.tile_pooler.featmap_strides.{i}' for i in range(max(levels, 3))}
    expected = ({'model.head.loss_mode'} if mode != 'a' else
                {'num_levels', 'model.num_levels', 'model.neck.start_level', 'model.neck.num_outs'}
                | {f'{k}.{i}' for k in _VIEWS for i in (0, 1)} | strides)
    assert changed == expected, row


def _write_probe_rows(work, name, key, rows):
    """Probe JSON files as tools/analysis/{linear,det}_probe.py write them (only the fields the
    protocol reads)."""
    folder = osp.join(work, 'probes', key)
    os.makedirs(folder, exist_ok=True)
    stem = 'linear' if key.startswith('linear') else key
    path = osp.join(folder, f'{stem}.json')
    doc = json.load(open(path)) if osp.exists(path) else dict(settings={}, results=[])
    for seed, value, variant in rows:
        row = dict(name=name, seed=seed)
        row.update(dict(top1=value, ncm_top1=variant) if stem == 'linear' else dict(
            AP=value, variant=variant))
        doc['results'].append(row)
    with open(path, 'w') as f:
        json.dump(doc, f)


def test_pair_verdict_uses_three_times_the_larger_seed_spread():
    # means 10 and 12 (difference +2), half-ranges 0.5 and 0.25: threshold 1.5 -> differs
    assert protocol.pair_verdict([9.5, 10.5], [11.75, 12.25]) == (2.0, 1.5, 'yes')
    # half-range 1.0 -> threshold 3.0 > 2.0 -> does not differ
    assert protocol.pair_verdict([9.0, 11.0], [11.75, 12.25]) == (2.0, 3.0, 'no')
    delta, threshold, verdict = protocol.pair_verdict([10.0], [12.0, 12.5])
    assert (threshold, verdict) == (None, 'n/a')  # one seed: its spread is unknown
    # top-1 over 397 crops: 89, 86, 89 vs 101, 114 correct -> a difference of 19.5 crops and a
    # threshold of 3 x 6.5 crops: a tie, which float rounding must not turn into 'yes'
    # (as the probes store them: top-1 fraction, then x 100; without the tolerance this is a
    # 'yes' by 1e-14)
    random, plrc = [100 * (c / 397) for c in (89, 86, 89)], [100 * (c / 397) for c in (101, 114)]
    delta, threshold, verdict = protocol.pair_verdict(random, plrc)
    assert delta == pytest.approx(threshold) and verdict == 'no'


def test_probe_table_rows_pairs_and_resumable_table_only(tmp_path):
    work = str(tmp_path)
    _write_probe_rows(work, 'random', 'linear', [(0, 0.30, None), (1, 0.31, None),
                                                 (2, 0.32, None)])
    _write_probe_rows(work, 'mcl', 'linear', [(0, 0.40, None), (1, 0.41, None)])
    _write_probe_rows(work, 'byol', 'linear', [(0, 0.305, None), (1, 0.325, None)])
    _write_probe_rows(work, 'random', 'det', [(0, 1.0, 'all'), (1, 1.2, 'all')])
    _write_probe_rows(work, 'mcl', 'det', [(0, 1.1, 'all')])
    for seed, iters in ((0, 300), (1, 302)):
        os.makedirs(osp.join(work, 'mcl', f'seed{seed}'))
        with open(osp.join(work, 'mcl', f'seed{seed}', 'budget.json'), 'w') as f:
            json.dump(dict(iters=iters, batch=32, views='64 px', images=iters * 32,
                           seconds=600.4), f)
    text, summary = protocol.probe_table(protocol.collect_probes(work),
                                         protocol.collect_budgets(work))
    lines = text.splitlines()
    assert lines[0] == ('| pre-training | linear top-1 (%) (seeds) | '
                        'det probe box AP (all frozen) (seeds) | pre-training budget per seed |')
    assert lines[2] == '| random init | 31.00 ± 1.00 (0,1,2) | 1.10 ± 0.10 (0,1) | none |'
    assert lines[3] == '| BYOL (mmpretrain), R18 | 31.50 ± 1.00 (0,1) | - | - |'
    assert lines[4] == ('| MCL S=3, mode a | 40.50 ± 0.50 (0,1) | 1.10 (0) | 64 px, 300-302 x 32 '
                        '= 9600-9664 images, 600 s |')
    pairs = {(p['a'], p['b'], p['probe']): p['verdict'] for p in summary['pairs']}
    assert pairs[('random', 'mcl', 'linear top-1 (%)')] == 'yes'  # +9.5 > 3 x 1.0
    assert pairs[('random', 'byol', 'linear top-1 (%)')] == 'no'  # +0.5 < 3 x 1.0
    assert pairs[('random', 'mcl', 'det probe box AP (all frozen)')] == 'n/a'
    assert ('| MCL S=3, mode a - random init | linear top-1 (%) | +9.50 | 3.00 | yes |'
            in lines)
    # --table-only rewrites probes.md from the JSON files without running anything
    assert protocol.main(['--rows', 'main', '--stages', 'linear,det', '--table-only',
                          '--work-dir', work]) == 0
    assert open(osp.join(work, 'probes.md')).read() == text + '\n'


def test_linear_and_ncm_columns_of_the_online_and_the_ema_backbone(tmp_path):
    work = str(tmp_path)
    _write_probe_rows(work, 'random', 'linear', [(0, 0.20, 0.14), (1, 0.22, 0.15)])
    _write_probe_rows(work, 'random', 'linear-ema', [(0, 0.20, 0.14), (1, 0.22, 0.15)])
    _write_probe_rows(work, 'mcl', 'linear-ema', [(0, 0.23, 0.24), (1, 0.24, 0.25)])
    found = protocol.collect_probes(work)
    assert list(found) == ['linear top-1 (%)', 'NCM top-1 (%)', 'linear top-1 (%, EMA)',
                           'NCM top-1 (%, EMA)']
    assert found['NCM top-1 (%, EMA)'] == {'random': {0: pytest.approx(14.0), 1: 15.0},
                                           'mcl': {0: 24.0, 1: 25.0}}
    _, summary = protocol.probe_table(found)
    verdicts = {(p['b'], p['probe']): p['verdict'] for p in summary['pairs']}
    assert verdicts[('mcl', 'NCM top-1 (%, EMA)')] == 'yes'  # +10 > 3 x 0.5
    assert verdicts[('mcl', 'linear top-1 (%, EMA)')] == 'no'  # +2.5 < 3 x 1.0
    with pytest.raises(SystemExit, match='choose from online, ema'):
        protocol.probe_backbones(protocol.parse_args(['--probe-backbones', 'online,target']))


def test_pooled_columns_read_from_the_linear_probe_rows(tmp_path):
    work = str(tmp_path)
    folder = osp.join(work, 'probes', 'linear')
    os.makedirs(folder)
    scores = (('random', 0, .15, .230), ('random', 1, .16, .235), ('byol', 0, .15, .250),
              ('byol', 1, .15, .255))
    rows = [dict(name=n, seed=k, top1=.2, ncm_top1=.1, cv_top1=.2, pooled_ncm_top1=p,
                 pooled_cv_top1=c) for n, k, p, c in scores]
    json.dump(dict(settings={}, results=rows), open(osp.join(folder, 'linear.json'), 'w'))
    found = protocol.collect_probes(work)
    assert list(found)[-2:] == ['pooled NCM top-1 (%)', 'pooled CV linear top-1 (%)']
    assert found['pooled CV linear top-1 (%)']['byol'] == {0: 25.0, 1: 25.5}
    _, summary = protocol.probe_table(found)
    verdicts = {(p['b'], p['probe']): p['verdict'] for p in summary['pairs']}
    assert verdicts[('byol', 'pooled CV linear top-1 (%)')] == 'yes'  # +2.0 > 3 x 0.25
    assert verdicts[('byol', 'pooled NCM top-1 (%)')] == 'no'  # -0.5


def test_view_and_batch_options_reach_the_resizable_configs(small_data):
    args = protocol.parse_args(['--data', str(small_data), '--pretrain-img', '64',
                                '--pretrain-batch', '32'])
    mcl = protocol.pretrain_cfg_options('mcl', 1, args)
    assert mcl[2:] == ['train_dataloader.dataset.pipeline.1.transforms.0.0.scale=64',
                       'train_dataloader.dataset.pipeline.1.transforms.1.0.scale=64',
                       'model.tile_pooler.out_size=2', 'train_dataloader.batch_size=32',
                       'optim_wrapper.optimizer.lr=0.5']  # 0.25 at batch 16
    byol = protocol.pretrain_cfg_options('byol', 1, args)
    assert 'model.tile_pooler.out_size=2' not in byol and 'train_dataloader.batch_size=32' in byol
    # DetCo's views are not RandomResizedCrop MultiView: its config's views and batch stay,
    # and the table says so
    assert protocol.pretrain_cfg_options('detco', 1, args) == [
        'randomness.seed=1', f'train_dataloader.dataset.data_root={small_data}/pretrain']
    assert protocol.row_views('detco', args) == 'config' and protocol.row_batch('detco', args) == 8
    assert protocol.row_views('mcl-s4', args) == '64 px'
    with pytest.raises(SystemExit, match='not a multiple of 32'):
        protocol.view_options(protocol.MCL, 48, None)


def test_probe_stages_pretrain_only_commands_and_checkpoint_reuse(tmp_path, small_data, capsys):
    args = protocol.parse_args(['--data', str(small_data), '--work-dir', str(tmp_path),
                                '--pretrain-images', '32'])
    assert protocol.main(['--data', str(small_data), '--work-dir', str(tmp_path), '--rows',
                          'random,mcl', '--seeds', '0', '--stages', 'linear', '--dry-run']) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and '--pretrain-only' in out[0] and protocol.MCL in out[0]
    # a finished full-chain run's checkpoint is reused: no new pre-training
    ckpt = tmp_path / 'mcl' / 'seed0' / 'pretrain' / 'iter_2.pth'
    os.makedirs(ckpt.parent)
    ckpt.write_bytes(b'x')
    with open(tmp_path / 'mcl' / 'seed0' / 'metrics.json', 'w') as f:
        json.dump(dict(pretrain_checkpoint=str(ckpt)), f)
    assert protocol.pretrained_checkpoint('mcl', 0, args) == str(ckpt)
    assert protocol.pretrain_one('mcl', 0, args) == ('mcl', 0, 0)
    assert protocol.pretrained_checkpoint('mcl', 1, args) is None
    with pytest.raises(SystemExit, match='unknown stage'):
        protocol.main(['--stages', 'knn', '--work-dir', str(tmp_path)])


@pytest.mark.slow
def test_pretrain_only_writes_the_checkpoint_record(tmp_path, small_data):
    """``pretrain_and_finetune.py --pretrain-only``: 2 MCL iterations, pretrain.json, no
    fine-tune."""
    import subprocess
    from test_train import tiny_demo_config
    cfg = tiny_demo_config(tmp_path, small_data / "pretrain", iters=2, img=64)
    work = tmp_path / 'chain'
    proc = subprocess.run([sys.executable, 'tools/pretrain_and_finetune.py', cfg, protocol.FT,
                           '--work-dir', str(work), '--pretrain-only'], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = json.load(open(work / 'pretrain.json'))
    assert record["pretrain_checkpoint"].endswith("iter_2.pth")
    assert osp.exists(record['pretrain_checkpoint']) and 'pretrain' in record['seconds']
    assert not (work / 'finetune').exists() and not (work / 'metrics.json').exists()


def test_probe_stages_run_random_end_to_end(tmp_path, small_data):
    """``--stages linear,det`` on the random row: both probes run through the protocol (random
    needs no pre-training), the table shows its seeds, a second call changes nothing."""
    argv = ['--data', str(small_data), '--work-dir', str(tmp_path), '--rows', 'random',
            '--seeds', '0,1', '--stages', 'linear,det', '--det-iters', '2', '--det-variants',
            'all']
    assert protocol.main(argv) == 0
    table = open(tmp_path / 'probes.md').read()
    assert table.splitlines()[2].startswith('| random init | ')
    assert '(0,1)' in table.splitlines()[2]
    linear = json.load(open(tmp_path / 'probes' / 'linear' / 'linear.json'))
    assert [(r['name'], r['seed']) for r in linear['results']] == [('random', 0), ('random', 1)]
    before = os.path.getmtime(tmp_path / 'probes' / 'det' / 'det.json')
    assert protocol.main(argv) == 0  # resumed: every row exists, nothing rewritten
    assert os.path.getmtime(tmp_path / 'probes' / 'det' / 'det.json') == before


def test_seconds_per_iteration_is_the_median_after_the_untimed_start(tmp_path):
    path = tmp_path / 'scalars.json'
    recs = [dict(step=i, time=t, loss=1.0) for i, t in enumerate([9., 7., 5., 2., 3., 4., 10.], 1)]
    path.write_text('\n'.join(json.dumps(r) for r in recs) + '\n' + json.dumps(dict(lr=0.1)))
    # steps 4..7 -> 2, 3, 4, 10: median 3.5; the slow start (9, 7, 5) is not timed
    assert protocol.seconds_per_iteration(str(path), skip=3) == 3.5
    assert protocol.seconds_per_iteration(str(path), skip=4) == 4.0
    with pytest.raises(SystemExit, match='raise --calib-iters'):
        protocol.seconds_per_iteration(str(path), skip=7)


def test_budget_iterations_come_from_the_calibration_of_the_same_thread_count(tmp_path):
    args = protocol.parse_args(['--work-dir', str(tmp_path), '--budget-s', '600'])
    with pytest.raises(SystemExit, match='no calibration in .*calibration.json'):
        protocol.pretrain_iterations('mcl', args)
    with open(tmp_path / 'calibration.json', 'w') as f:
        json.dump(dict(mcl=dict(seconds_per_iter=2.5, threads=1), byol=dict(
            seconds_per_iter=0.7, threads=2)), f)
    assert protocol.pretrain_iterations('mcl', args) == 240
    assert protocol.calibrated('byol', args) is None  # measured with 2 threads, runs use 1
    no_budget = protocol.parse_args(['--work-dir', str(tmp_path), '--pretrain-images', '640'])
    assert protocol.pretrain_iterations('mcl', no_budget) == 40  # 640 images / batch 16


@pytest.mark.slow
def test_calibration_times_a_real_run_and_sets_the_budget(tmp_path, small_data, monkeypatch):
    from test_train import tiny_demo_config
    cfg = tiny_demo_config(tmp_path, small_data / 'pretrain', iters=10)
    monkeypatch.setitem(protocol.ROWS, 'mcl', ('MCL tiny', cfg))
    work = tmp_path / 'w'
    args = protocol.parse_args(['--data', str(small_data), '--work-dir', str(work),
                                '--budget-s', '60', '--calib-iters', '5', '--rows', 'random,mcl',
                                '--jobs', '2'])
    assert protocol.calibrate_rows([('random', 0), ('mcl', 0)], args) == []
    rec = json.load(open(work / 'calibration.json'))
    assert list(rec) == ['mcl'] and rec['mcl']['iters'] == 5 and rec['mcl']['threads'] == 1
    seconds = rec['mcl']['seconds_per_iter']
    assert 0 < seconds < 60
    # --jobs 2: the row is timed next to a copy of itself, the mean of both medians recorded
    copies = rec['mcl']['side_by_side']
    assert len(copies) == 2 and seconds == pytest.approx(sum(copies) / 2, abs=1e-3)
    assert (work / 'calibration' / 'mcl-copy1.log').exists()
    cmd, _ = protocol.command('mcl', 1, args)
    assert cmd[cmd.index('--pretrain-iters') + 1] == str(int(60 // seconds))
    assert not list(work.glob('calibration/mcl/*.pth'))  # timing only, no checkpoint
    before = os.path.getmtime(work / 'calibration.json')
    assert protocol.calibrate_rows([('mcl', 1)], args) == []  # cached: not measured again
    assert os.path.getmtime(work / 'calibration.json') == before


def test_probes_start_while_other_runs_still_pre_train(tmp_path, monkeypatch):
    """A finished (row, seed) is probed before the other pre-trainings end: MCL seed 1's fake
    pre-training only ends once MCL seed 0 (and random init) have been probed, which a protocol
    that probes after all pre-training would never do (it would time out and fail)."""
    import threading
    probed, both_probed = [], threading.Event()

    def fake_pretrain(row, seed, args):
        if (row, seed) == ('mcl', 1):
            return row, seed, 0 if both_probed.wait(timeout=20) else 1
        return row, seed, 0

    def fake_probes(runs, stages, args):
        probed.extend(runs)
        if {('random', 0), ('mcl', 0)} <= set(probed):
            both_probed.set()
        return []

    monkeypatch.setattr(protocol, 'pretrain_one', fake_pretrain)
    monkeypatch.setattr(protocol, 'run_probes', fake_probes)
    args = protocol.parse_args(['--work-dir', str(tmp_path), '--jobs', '2'])
    runs = [('random', 0), ('mcl', 0), ('mcl', 1)]
    assert protocol.pretrain_and_probe(runs, ['linear'], args) == []
    assert sorted(probed) == sorted(runs) and probed[-1] == ('mcl', 1)


def test_merge_writes_one_table_over_runs_with_disjoint_seeds(tmp_path):
    """``--merge``: two runs' probes.json (seeds 0,1 and 2,3) give one table over seeds 0-3
    whose verdicts use all four seeds; a seed in both files, or a missing file, is an error."""
    col = 'pooled NCM top-1 (%, EMA)'
    budget = dict(iters=2, batch=32, views='64 px', images=64, seconds=1.0, budget_s=1.0,
                  threads=1)
    paths = []
    for name, random, mcl in (('a', {0: 16., 1: 17.}, {0: 25., 1: 26.}),
                              ('b', {2: 15., 3: 16.}, {2: 20., 3: 27.})):
        _, summary = protocol.probe_table({col: {'random': random, 'mcl': mcl}},
                                          {'mcl': [budget]})
        path = tmp_path / name / 'probes.json'
        path.parent.mkdir()
        path.write_text(json.dumps(summary))
        paths.append(str(path))
    out = tmp_path / 'both'
    assert protocol.main(['--merge', ','.join(paths), '--work-dir', str(out)]) == 0
    doc = json.load(open(out / 'probes.json'))
    assert doc['rows']['mcl'][col] == {'0': 25., '1': 26., '2': 20., '3': 27.}
    assert len(doc['budgets']['mcl']) == 2
    (pair,) = doc['pairs']
    # each run alone: +9.0 vs 1.5 and +8.0 vs 10.5; together: 24.5 - 16.0 = +8.5 vs 3 x 3.5
    assert pair['delta'] == pytest.approx(8.5) and pair['threshold'] == pytest.approx(10.5)
    assert pair['verdict'] == 'no'
    assert '| MCL S=3, mode a | 24.50 ± 3.50 (0,1,2,3) |' in open(out / 'probes.md').read()
    with pytest.raises(SystemExit, match='seed 0 .* earlier file too'):
        protocol.main(['--merge', f'{paths[0]},{paths[0]}', '--work-dir', str(out)])
    with pytest.raises(SystemExit, match='no file .*missing.json'):
        protocol.main(['--merge', str(tmp_path / 'missing.json'), '--work-dir', str(out)])
