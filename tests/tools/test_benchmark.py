"""tools/benchmark.py end to end at toy size: every algorithm timed in its own process, ratios vs
BYOL / MoCo v2, selective-search images/s, the JSON and the Markdown table written."""
import importlib.util
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

from tools.analysis.bench import ALGOS, LABELS, markdown_table, summarize

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_cli():
    """``tools/benchmark.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location('benchmark_cli',
                                                  osp.join(REPO, 'tools', 'benchmark.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pair_maps_onto_algos():
    cli = load_cli()
    assert cli.parse_args(['--pair', 'ssl']).algo_list == ['byol', 'mcl']
    assert cli.parse_args(['--pair', 'sup']).algo_list == ['vanilla-sup', 'mcl-sup']
    args = cli.parse_args(['--depth', '18', '--img', '128', '--batch', '16'])
    assert args.algo_list == list(ALGOS)
    assert args.out == osp.join('work_dirs', 'benchmark', 'all_r18_128_b16.json')
    with pytest.raises(SystemExit):
        cli.parse_args(['--algos', 'mcl,simclr'])


def test_models_come_from_config_files():
    """Every algorithm, the mmpretrain baselines included, is read from config files (paper
    recipe, R18 CPU demo); the baselines from configs/baselines, resized to the benchmark's
    backbone."""
    from tools.analysis.bench import CONFIGS, config_root, model_cfg
    assert set(CONFIGS) == set(ALGOS)
    for paths in CONFIGS.values():
        for path in paths:
            assert osp.isfile(osp.join(config_root(), path)), path
    for name, paper_width, demo_width in (('byol', 4096, 1024), ('mocov2', 2048, 1024)):
        assert all(path.startswith('baselines/') for path in CONFIGS[name])
        for heads, width in (('paper', paper_width), ('demo', demo_width)):
            cfg = model_cfg(name, 50, 64, heads=heads)
            assert cfg['backbone']['depth'] == 50 and cfg['neck']['in_channels'] == 2048
            assert cfg['neck']['hid_channels'] == width, (name, heads)
            assert cfg['data_preprocessor']['type'].endswith('SelfSupDataPreprocessor')
    assert model_cfg('mocov2', 18, 64)['queue_len'] == 65536
    assert model_cfg('mocov2', 18, 64, heads='demo')['queue_len'] == 256


def test_summary_ratios_and_table():
    """Statistics pool the rounds; ratios use medians (and minima) of the baselines."""
    def rec(times, delta):
        return dict(times=times, peak_delta_mb=delta, peak_mb=delta + 500., rss_ready_mb=500.,
                    peak_is_lower_bound=False, params_m=1., num_levels=None)
    records = {'byol': [rec([2., 4.], 100.), rec([3.], 120.)],
               'mocov2': [rec([1., 1.], 50.)],
               'mcl': [rec([6., 9.], 300.), rec([7.5], 200.)]}
    algos = summarize(records, batch=8)
    assert algos['byol']['step_s'] == 3. and algos['byol']['step_min_s'] == 2.
    assert algos['byol']['round_medians_s'] == [3., 3.] and algos['byol']['peak_delta_mb'] == 120.
    assert algos['mcl']['images_per_s'] == pytest.approx(8 / 7.5)
    assert algos['mcl']['step_vs_byol'] == pytest.approx(2.5)
    assert algos['mcl']['step_min_vs_byol'] == pytest.approx(3.)
    assert algos['mcl']['step_vs_mocov2'] == pytest.approx(7.5)
    assert algos['mcl']['mem_vs_byol'] == pytest.approx(2.5)
    for name, a in algos.items():
        a.update(inputs='x', online_px_per_image=1.)
    results = dict(config=dict(depth=18, img=64, batch=8, heads='paper', steps=2, rounds=2,
                               warmup=1, device='cpu'),
                   threads=1, cpus=2, algorithms=algos, pair=['byol', 'mcl'], step_ratio=2.5,
                   mem_ratio=1.2, loadavg=dict(before=[1, 1, 1], after=[2, 2, 2]))
    md = markdown_table(results)
    assert '| MCL | x | 1.00 | 7.500 | 7.500 | 6.000 | 1.07 | 300 | 2.50x (3.00x) | 7.50x (6.00x)' \
        in md
    assert '| step time (s) | 3.000 | 7.500 | 2.50 |' in md  # the legacy --pair table
    assert 'before: [1, 1, 1], after: [2, 2, 2]' in md


@pytest.mark.slow
def test_benchmark_all_algorithms(tmp_path, small_data):
    out = tmp_path / 'bench.json'
    batch = 4
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark.py', '--depth', '18', '--img', '64', '--batch',
         str(batch), '--steps', '1', '--rounds', '1', '--warmup', '0', '--threads', '1',
         '--ss-images', '1', '--ss-dir', str(small_data / 'pretrain' / 'train'),
         '--ss-max-side', '320', '--assembler-reps', '2', '--out', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    algos = res['algorithms']
    assert list(algos) == list(ALGOS)
    for name, r in algos.items():
        assert len(r['steps']) == 1
        for key in ('step_s', 'step_mean_s', 'images_per_s', 'peak_delta_mb'):
            assert math.isfinite(r[key]) and r[key] > 0, (name, key, r[key])
        assert r['images_per_s'] == pytest.approx(batch / r['step_s'])
        for base in ('byol', 'mocov2'):
            assert r[f'step_vs_{base}'] == pytest.approx(r['step_s'] / algos[base]['step_s'])
            assert r[f'mem_vs_{base}'] == pytest.approx(r['peak_delta_mb'] /
                                                        algos[base]['peak_delta_mb'])
    assert algos['byol']['step_vs_byol'] == 1 and algos['mocov2']['step_vs_mocov2'] == 1
    # the montage methods see their levels; equal budget: same batch and image size for all
    assert algos['mcl']['num_levels'] == 4 and res['config']['img'] == 64
    ss = res['selective_search']
    assert len(ss) == 1 and ss[0]['max_side'] == 320 and ss[0]['images_per_s'] > 0
    assert set(res['assembler']) == {'bilinear', 'area'}
    assert len(res['loadavg']['before']) == 3 and len(res['loadavg']['after']) == 3
    md = out.with_suffix('.md').read_text()
    assert md.strip() == res['markdown'].strip() and md.strip() in proc.stdout
    for name in ALGOS:
        rows = [line for line in md.splitlines() if line.startswith(f'| {LABELS[name]} |')]
        assert len(rows) == 1, (name, md)
        assert f"{algos[name]['step_s']:.3f}" in rows[0]
