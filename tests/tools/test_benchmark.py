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
import torch
from torch import nn

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
    assert cli.parse_args(['--algos', 'byol,byol:keep']).algo_list == ['byol', 'byol:keep']
    with pytest.raises(SystemExit):
        cli.parse_args(['--algos', 'byol:fast'])


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
        # one step's MACs (first round only), the EMA / momentum side counted apart
        r = algos[name]
        assert r['online_macs'] > 0 and r['step_macs'] == 3 * r['online_macs'] + \
            r['target_macs'] and not r['macs_untraced'], (name, r.get('macs_untraced'))
        assert (r['target_macs'] > 0) == (name != 'mcl-sup'), name
        assert r['waste_vs_byol'] == pytest.approx(r['step_vs_byol'] / r['macs_vs_byol'])


class _Identity(nn.Module):
    """The tiny model's data preprocessor."""

    def forward(self, data, training=False):
        return data


class _ListHead(nn.Module):
    """A head called with a list of feature maps and a keyword, returning a dict."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4, bias=False)

    def forward(self, feats, scale=1.0):
        return {'out': [self.fc(f.mean((2, 3))) * scale for f in feats]}


class _TinyStep(nn.Module):
    """A stand-in for a self-supervised model: an online conv + head and a momentum copy of the
    conv under ``target_net``."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = _Identity()
        self.backbone = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.head = _ListHead()
        self.target_net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))

    def _run_forward(self, data, mode):
        x = self.backbone(data)
        self.head([x, x], scale=2.0)
        with torch.no_grad():
            self.target_net(data)
        return {}


def test_step_macs_of_known_modules():
    """mmengine's FlopAnalyzer through the accounting: a 3x3 conv 3 -> 8 on 2 x 3 x 16 x 16 is
    2 * 16 * 16 * 8 * 3 * 9 MACs; a linear 8 -> 4 on 2 rows is 2 * 8 * 4 (called twice through
    a list input and a keyword); step = 3 x online + target."""
    import torch

    from tools.analysis.bench import counted_parts, module_macs, step_macs
    conv = 2 * 16 * 16 * 8 * 3 * 9
    lin = 2 * 8 * 4
    x = torch.rand(2, 3, 16, 16)
    model = _TinyStep()
    assert module_macs(model.backbone, (x, )) == conv
    res = step_macs(model, x)
    assert res['counted']['backbone'] == conv
    assert res['counted']['head'] == 2 * lin  # the global mean is not a MAC
    assert res['counted']['target_net'] == conv and res['targets'] == ['target_net']
    assert res['online_macs'] == conv + 2 * lin and res['target_macs'] == conv
    assert res['step_macs'] == 3 * (conv + 2 * lin) + conv
    assert res['untraced'] == {}
    assert counted_parts(res['counted'], res['untraced'], ('target_net', )) == \
        'backbone+head+target'


class _LossHead(nn.Module):
    """A head whose ``loss`` calls a predictor and multiplies by a key matrix (InfoNCE logits)."""

    def __init__(self):
        super().__init__()
        self.predictor = nn.Linear(8, 6, bias=False)

    def loss(self, q, keys):
        logits = self.predictor(q) @ keys.t()
        return dict(loss=logits.logsumexp(1).mean())


class _LossStep(nn.Module):

    def __init__(self):
        super().__init__()
        self.data_preprocessor = _Identity()
        self.neck = nn.Linear(5, 8, bias=False)
        self.head = _LossHead()

    def _run_forward(self, data, mode):
        return self.head.loss(self.neck(data), torch.ones(10, 6))


def test_head_loss_is_traced_as_one_call_with_its_matmuls():
    """``head.loss`` is recorded like a module call: its predictor (4 x 8 x 6) and the logits'
    matmul (4 x 6 x 10) count once, under ``head.loss``; the method is restored afterwards."""
    from tools.analysis.bench import step_macs
    model = _LossStep()
    res = step_macs(model, torch.rand(4, 5))
    assert res['counted'] == {'neck': 4 * 5 * 8, 'head.loss': 4 * 8 * 6 + 4 * 6 * 10}
    assert res['untraced'] == {} and 'loss' not in vars(model.head)


def test_table_mac_columns():
    """MAC ratio vs the baselines, and waste = step ratio / MAC ratio, in the JSON and the
    table."""
    def rec(t, macs):
        return dict(times=[t], peak_delta_mb=100., peak_mb=600., rss_ready_mb=500.,
                    peak_is_lower_bound=False, params_m=1., num_levels=None,
                    online_macs=macs, target_macs=macs, step_macs=4 * macs,
                    macs_counted={'backbone': macs, 'target_net.module': macs},
                    macs_untraced={}, macs_targets=['target_net'])
    algos = summarize({'byol': [rec(2., 1e9)], 'mcl': [rec(8., 2.5e9)]}, batch=8)
    mcl = algos['mcl']
    assert mcl['macs_vs_byol'] == pytest.approx(2.5)
    assert mcl['waste_vs_byol'] == pytest.approx(mcl['step_vs_byol'] / mcl['macs_vs_byol'])
    assert mcl['waste_vs_byol'] == pytest.approx(1.6)
    for a in algos.values():
        a.update(inputs='x', online_px_per_image=1.)
    md = markdown_table(dict(config=dict(depth=18, img=64, batch=8, heads='paper', steps=1,
                                         rounds=1, warmup=1, device='cpu'),
                             threads=1, cpus=2, algorithms=algos))
    header = md.splitlines()[2]
    for col in ('online fwd GMAC', 'target fwd GMAC', 'step GMAC (3x online + target)',
                'MACs vs BYOL', 'waste vs BYOL (step / MAC ratio)', 'MACs counted'):
        assert col in header
    row = next(line for line in md.splitlines() if line.startswith('| MCL |'))
    assert '| 2.500 | 2.500 | 10.000 | 2.50x | 1.60 | backbone+target |' in row


def _mlp() -> nn.Module:
    """Linear 4 -> 8, ReLU, Linear 8 -> 2: 58 float32 parameters (232 bytes)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_saved_activations_of_known_layers():
    """On a batch of B rows without grad autograd saves the input (B x 4 floats, for the first
    weight's gradient) and the ReLU output (B x 8: saved by the ReLU and by the second linear,
    one storage, counted once); the second layer also saves its transposed weight (for the
    input gradient): a parameter, not an activation."""
    from tools.analysis.bench import saved_tensor_bytes
    model = _mlp()

    def saved(rows: int, exclude) -> int:
        x = torch.rand(rows, 4)
        return saved_tensor_bytes(lambda: model(x).sum().backward(), exclude)

    params = list(model.parameters())
    assert saved(3, params) == 3 * (4 + 8) * 4
    assert saved(3, ()) == 3 * (4 + 8) * 4 + 8 * 2 * 4
    assert saved(7, params) == 7 * (4 + 8) * 4 > saved(3, params)
    with torch.no_grad():  # nothing is saved without a graph
        assert saved_tensor_bytes(lambda: model(torch.rand(3, 4)), params) == 0


def test_step_memory_and_foreach_optimizer():
    """Weights, gradients and SGD momentum of the MLP are 232 bytes each; the optimizer gets
    ``foreach=True`` only when asked and only where its class takes it (not mmpretrain's
    LARS)."""
    from mmpretrain.engine.optimizers import LARS

    from tools.analysis.bench import build_optimizer, step_memory
    from tools.analysis.bench.worker import MB
    model = _mlp()
    x = torch.rand(5, 4)
    opt, used = build_optimizer(model.parameters(), foreach=True)
    assert used and isinstance(opt, torch.optim.SGD) and opt.defaults['foreach'] is True

    def step() -> None:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    held = step_memory(step, model, opt)
    assert held['saved_act_mb'] * MB == 5 * (4 + 8) * 4
    for key in ('weights_mb', 'grads_mb', 'optim_state_mb'):
        assert held[key] * MB == 232, key
    assert held['state_mb'] * MB == 3 * 232
    assert opt.state[model[0].weight]['momentum_buffer'] is not None
    opt, used = build_optimizer(model.parameters())
    assert not used and opt.defaults['foreach'] is None
    opt, used = build_optimizer(model.parameters(), foreach=True, optimizer_cls=LARS)
    assert not used and 'foreach' not in opt.defaults


def test_table_memory_columns_and_levers():
    """Saved-activation MB and its ratio vs the baselines, weights + grads + optimizer state and
    the speed levers in the table; results without these fields (older JSON files) still
    render, without the memory columns."""
    def rec(t, act):
        return dict(times=[t], peak_delta_mb=100., peak_mb=600., rss_ready_mb=500.,
                    peak_is_lower_bound=False, params_m=1., num_levels=None, saved_act_mb=act,
                    weights_mb=10., grads_mb=5., optim_state_mb=5., state_mb=20.,
                    channels_last=True, optimizer='SGD', foreach=True)
    algos = summarize({'byol': [rec(2., 40.)], 'mocov2': [rec(1., 20.)],
                       'mcl': [rec(8., 70.), rec(9., 1.)]}, batch=8)
    mcl = algos['mcl']
    assert mcl['saved_act_mb'] == 70. and mcl['foreach'] and mcl['optimizer'] == 'SGD'
    assert mcl['act_vs_byol'] == pytest.approx(1.75) and mcl['act_vs_mocov2'] == 3.5
    for a in algos.values():
        a.update(inputs='x', online_px_per_image=1.)
    cfg = dict(depth=18, img=64, batch=8, heads='paper', steps=1, rounds=1, warmup=1,
               device='cpu', channels_last=True, foreach=True)
    md = markdown_table(dict(config=cfg, threads=1, cpus=2, algorithms=algos))
    assert 'channels_last on, foreach optimizer step requested: SGD with foreach: BYOL, MoCo ' \
        'v2, MCL.' in md.splitlines()[0]
    header = md.splitlines()[2]
    for col in ('saved activations (MB)', 'act vs BYOL', 'act vs MoCo v2',
                'weights+grads+optim state (MB)'):
        assert col in header
    row = next(line for line in md.splitlines() if line.startswith('| MCL |'))
    assert '| 1.00x | 70.0 | 1.75x | 3.50x | 20.0 |' in row
    assert 'saved activations' in md.split('\n\n')[2]  # the footnote
    algos['mcl'].update(foreach=False, optimizer='LARS')
    md = markdown_table(dict(config=cfg, threads=1, cpus=2, algorithms=algos))
    assert 'SGD with foreach: BYOL, MoCo v2; LARS without (not supported) foreach: MCL.' in md
    old = {name: {k: v for k, v in a.items() if k not in
                  ('saved_act_mb', 'act_vs_byol', 'act_vs_mocov2', 'state_mb', 'foreach')}
           for name, a in algos.items()}
    cfg = {k: v for k, v in cfg.items() if k not in ('channels_last', 'foreach')}
    md = markdown_table(dict(config=cfg, threads=1, cpus=2, algorithms=old))
    assert 'saved activations' not in md and 'act vs' not in md
    assert 'channels_last off, foreach optimizer step not requested' in md


@pytest.mark.slow
def test_operator_kinds_and_their_sums():
    from tools.analysis.bench.profile import op_kind, profile_step, summarize_ops
    kinds = {n: op_kind(n) for n in (
        'aten::mkldnn_convolution', 'aten::convolution_backward', 'aten::addmm', 'aten::mm',
        'aten::native_batch_norm', 'aten::native_batch_norm_backward', 'aten::relu_',
        'aten::threshold_backward', 'aten::add_', 'aten::_foreach_mul_', 'aten::copy_',
        'aten::cat', 'aten::upsample_nearest2d', 'aten::max_pool2d_with_indices',
        'aten::_log_softmax', 'aten::empty', 'aten::index')}
    assert kinds == {
        'aten::mkldnn_convolution': 'conv', 'aten::convolution_backward': 'conv',
        'aten::addmm': 'matmul', 'aten::mm': 'matmul', 'aten::native_batch_norm': 'batch norm',
        'aten::native_batch_norm_backward': 'batch norm', 'aten::relu_': 'element-wise',
        'aten::threshold_backward': 'element-wise', 'aten::add_': 'element-wise',
        'aten::_foreach_mul_': 'element-wise', 'aten::copy_': 'copy / layout',
        'aten::cat': 'copy / layout', 'aten::upsample_nearest2d': 'resample / pool',
        'aten::max_pool2d_with_indices': 'resample / pool', 'aten::_log_softmax': 'element-wise',
        'aten::empty': 'other', 'aten::index': 'copy / layout'}
    summary = summarize_ops([('aten::mm', 2.0, 3), ('aten::relu', 0.5, 1),
                             ('aten::mkldnn_convolution', 1.0, 2), ('aten::empty', 0.25, 9)],
                            top=2)
    assert summary['kinds']['matmul'] == 2.0 and summary['kinds']['conv'] == 1.0
    assert summary['kinds']['other'] == 0.25 and summary['total_s'] == 3.75
    assert summary['top_ops'] == [['aten::mm', 2.0, 3], ['aten::mkldnn_convolution', 1.0, 2]]
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    x = torch.randn(2, 3, 16, 16)
    prof = profile_step(lambda: net(x).sum().backward())
    assert prof['kinds']['conv'] > 0 and prof['kinds']['batch norm'] > 0
    assert prof['kinds']['element-wise'] > 0 and prof['kinds']['matmul'] == 0


def test_conv_rates_by_module_group():
    from tools.analysis.bench.profile import conv_rates, module_group
    assert module_group('target_net.module.backbone.layer1.0.conv1') == 'target_net.backbone'
    assert module_group('backbone.layer1.0.conv1') == 'backbone.layer1'
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 1, stride=2))
    model.head = nn.Sequential(nn.Conv2d(8, 4, 3, groups=4))
    x = torch.randn(2, 3, 16, 16)

    def step():
        model.head(model.backbone(x)).sum().backward()
        model.head(model.backbone(x))  # a second call of every conv

    rates = conv_rates(model, step)
    # 3x3 conv: 2 x 8 x 16 x 16 outputs x 3 x 9; 1x1 stride 2: 2 x 8 x 8 x 8 outputs x 8;
    # grouped 3x3 (2 input channels per group): 2 x 4 x 6 x 6 outputs x 2 x 9
    assert rates['backbone.0']['macs'] == 2 * (2 * 8 * 16 * 16 * 27)
    assert rates['backbone.1']['macs'] == 2 * (2 * 8 * 8 * 8 * 8)
    assert rates['head.0']['macs'] == 2 * (2 * 4 * 6 * 6 * 18)
    assert {r['calls'] for r in rates.values()} == {2}
    assert all(r['seconds'] > 0 and r['gmac_per_s'] > 0 for r in rates.values())
    # the hooks are gone afterwards
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_benchmark_speed_levers(tmp_path):
    """--channels-last and --foreach run BYOL and MCL at toy size, are recorded in the JSON and
    the table header, and the saved activations of one step are measured; a ``:keep`` entry
    times BYOL again with freed memory kept, in the same run; --render still works on a result
    without the new fields."""
    out = tmp_path / 'levers.json'
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark.py', '--algos', 'byol,mcl,byol:keep', '--depth', '18',
         '--img', '64', '--batch', '2', '--steps', '1', '--rounds', '1', '--warmup', '1', '--threads',
         '1', '--heads', 'demo', '--ss-images', '0', '--assembler-reps', '0', '--no-macs',
         '--channels-last', '--foreach', '--profile', '--out', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict({k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res['config']['channels_last'] and res['config']['foreach']
    algos = res['algorithms']
    for name in ('byol', 'mcl'):
        r = algos[name]
        assert r['channels_last'] and r['foreach'] and r['optimizer'] == 'SGD', name
        assert r['saved_act_mb'] > 0 and r['weights_mb'] > 0 and r['optim_state_mb'] > 0, name
        assert r['grads_mb'] == pytest.approx(r['params_m'] * 4e6 / 2**20), name
        assert r['act_vs_byol'] == pytest.approx(r['saved_act_mb'] /
                                                 algos['byol']['saved_act_mb'])
    # MCL: 2 x S montage sets of 64 px per step against BYOL's two views of each image
    assert algos['mcl']['act_vs_byol'] > 1
    # --profile: one more step's operator time by kind, convolutions and BN present
    for name in ('byol', 'mcl'):
        prof = algos[name]['profile']
        assert prof['kinds']['conv'] > 0 and prof['kinds']['batch norm'] > 0, name
        assert prof['total_s'] == pytest.approx(sum(prof['kinds'].values()))
    conv = algos['mcl']['profile']['kinds']['conv'] / algos['byol']['profile']['kinds']['conv']
    assert f'| MCL | {algos["mcl"]["profile"]["kinds"]["conv"]:.2f} ({conv:.2f}x) |' \
        in res['markdown']
    assert 'profiled step: self s by operator kind (x BYOL)' in res['markdown']
    rates = algos['mcl']['profile']['conv_rates']
    assert rates['backbone.layer1']['macs'] > 0 and rates['tile_head.shared_convs']['calls'] > 0
    assert 'Convolution forward rate by module' in res['markdown']
    # the malloc is recorded (jemalloc / tcmalloc when preloaded), and whether freed memory was
    # kept (the :keep entry: same model, same MACs, its own row)
    assert algos['byol']['allocator'] == algos['mcl']['allocator'] == 'glibc malloc'
    assert algos['byol:keep']['allocator'] == 'glibc malloc, freed memory kept'
    assert algos['byol:keep']['params_m'] == algos['byol']['params_m']
    assert '| BYOL, freed memory kept (mmpretrain) | 2 views 64 px |' in res['markdown']
    assert 'channels_last on, allocator glibc malloc / glibc malloc, freed memory kept, foreach ' \
        'optimizer step requested: SGD with foreach: BYOL, MCL, BYOL, freed memory kept.' \
        in res['markdown']
    for a in algos.values():  # an older result file
        for key in ('saved_act_mb', 'weights_mb', 'grads_mb', 'optim_state_mb', 'state_mb',
                    'act_vs_byol', 'channels_last', 'optimizer', 'foreach', 'allocator'):
            a.pop(key)
    for key in ('channels_last', 'foreach'):
        res['config'].pop(key)
    out.write_text(json.dumps(res))
    assert load_cli().render(str(out)) == 0
    md = json.loads(out.read_text())['markdown']
    assert 'channels_last off' in md and 'saved activations' not in md
    # --recount-macs: the MACs of the stored settings are added (BYOL's head.loss traced), the
    # measured times stay
    times = {n: a['steps'] for n, a in json.loads(out.read_text())['algorithms'].items()}
    proc = subprocess.run([sys.executable, 'tools/benchmark.py', '--recount-macs', str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    for name, a in res['algorithms'].items():
        assert a['steps'] == times[name] and a['step_macs'] > 1e8
    assert 'head.loss' in res['algorithms']['byol']['macs_counted']
    assert res['algorithms']['mcl']['macs_vs_byol'] > 1 and 'counted again' in res['markdown']
