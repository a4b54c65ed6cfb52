"""Side-by-side training-step cost of MCL, MCL-sup, SoCo, DetCo, PLRC and mmpretrain's BYOL and
MoCo v2 at equal backbone depth, batch size and image size (+ SoCo's proposal generation and the
montage assembler).

Every algorithm runs in its own fresh process per round (forked from a server process that has
imported the stack but built nothing, so the peak memory is its own), rounds are interleaved
(forward order, then reversed, ...) so that load drifts of a shared machine hit all algorithms
alike, and the statistics pool the timed steps of all rounds. A step is
``model.train_step``: data preprocessing + forward (incl. the EMA / momentum-encoder update) +
backward + SGD step. What "image size" means for each method, and which extra inputs it gets,
is documented in :mod:`tools.analysis.bench`; the JSON and the table list it per algorithm.

Memory of one step, besides the peak: the bytes of the tensors autograd saves for backward (the
activation memory the method needs) and weights + gradients + optimizer state, read in the
untimed warm-up step (:func:`tools.analysis.bench.step_memory`). Speed levers, the same for every
algorithm and recorded in the JSON and the table header: ``--channels-last``, ``--foreach`` and
``--keep-freed-memory`` (glibc malloc keeps freed memory instead of mapping every large
activation afresh at every step; :mod:`mcl_plugin.engine.malloc`).

Output: one JSON (``--out``, default ``work_dirs/benchmark/all_r{depth}_{img}_b{batch}.json``)
and the Markdown table, printed and written next to it (same name, ``.md``).

Examples:
    OMP_NUM_THREADS=1 python tools/benchmark.py --depth 18 --img 128 --batch 16 --steps 2 \\
        --rounds 2 --threads 1 --out work_dirs/benchmark/all_r18_128_b16.json
    python tools/benchmark.py --algos mcl,byol,mocov2 --depth 50 --img 224 --batch 16
    python tools/benchmark.py --device cuda --batch 64 --steps 20
    python tools/benchmark.py --algos byol,mcl --channels-last --foreach   # with the levers
    python tools/benchmark.py --algos byol,mcl --keep-freed-memory   # the allocator lever
    python tools/benchmark.py --algos byol,mcl,byol:keep,mcl:keep   # without and with, one run
    python tools/benchmark.py --pair ssl   # the former MCL vs BYOL comparison (= --algos byol,mcl)
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools.analysis.bench import (ALGOS, EXTRA_ALGOS, FPN_IN, NAME_SUFFIXES,  # noqa: E402
                                  describe_inputs, markdown_table, online_pixels, split_name)

PAIRS = {'ssl': ('byol', 'mcl'), 'sup': ('vanilla-sup', 'mcl-sup')}
WORKER_KEYS = ('depth', 'img', 'batch', 'steps', 'warmup', 'levels', 'heads', 'device',
               'threads', 'seed', 'macs', 'channels_last', 'foreach', 'profile',
               'keep_freed_memory')


def parse_args(argv=None) -> argparse.Namespace:
    """Command line; ``--pair`` maps onto ``--algos`` (backward compatibility)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--algos', default=','.join(ALGOS),
                   help=f'comma-separated, from {ALGOS + EXTRA_ALGOS} (default: all but '
                   'vanilla-sup); an entry ending in :keep runs with --keep-freed-memory, so '
                   'byol,byol:keep times both allocator settings in one run')
    p.add_argument('--pair', choices=sorted(PAIRS),
                   help='legacy: ssl = --algos byol,mcl; sup = --algos vanilla-sup,mcl-sup')
    p.add_argument('--depth', type=int, default=50, choices=sorted(FPN_IN))
    p.add_argument('--batch', type=int, default=16, help='source images per step')
    p.add_argument('--img', type=int, default=224, help='image size (see the docstring)')
    p.add_argument('--levels', type=int, default=None,
                   help="MCL / MCL-sup levels S (default: the config's)")
    p.add_argument('--heads', choices=('paper', 'demo'), default='paper',
                   help='paper: configs/_base_/models (published head / queue sizes); demo: '
                   'the R18 CPU demo configs')
    p.add_argument('--steps', type=int, default=3, help='timed steps per round')
    p.add_argument('--rounds', type=int, default=2, help='interleaved rounds per algorithm')
    p.add_argument('--warmup', type=int, default=1, help='untimed steps per round')
    p.add_argument('--threads', type=int, default=None,
                   help='torch / OpenMP / OpenCV threads per process (default: torch default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument('--ss-images', type=int, default=4,
                   help='images for the selective-search timing (0: skip)')
    p.add_argument('--ss-dir', default=osp.join(REPO, 'data', 'pretrain', 'train'))
    p.add_argument('--ss-max-side', default='none,320',
                   help="comma-separated generate_proposals --max-side values ('none' = its "
                   'default, original resolution)')
    p.add_argument('--assembler-reps', type=int, default=20,
                   help='montage assembler vs copy repetitions (0: skip; only with MCL)')
    p.add_argument('--no-macs', dest='macs', action='store_false',
                   help='skip the MAC count of one step (mmengine FlopAnalyzer, per module call; '
                   'see tools/analysis/bench/macs.py)')
    p.add_argument('--channels-last', action='store_true',
                   help='speed lever: model weights and input images in torch.channels_last '
                   '(every algorithm; fails naming one that cannot run so)')
    p.add_argument('--foreach', action='store_true',
                   help='speed lever: foreach=True (multi-tensor) optimizer step where the '
                   'optimizer takes it (torch SGD does); the report says which got it')
    p.add_argument('--keep-freed-memory', action='store_true',
                   help='speed lever (glibc): each worker calls mcl_plugin.engine.'
                   'keep_freed_memory() first (no mmap per allocation, no heap trimming; what '
                   'KeepFreedMemoryHook does in a config)')
    p.add_argument('--profile', action='store_true',
                   help='one extra step per algorithm under torch.profiler: self time by '
                   'operator kind (conv, matmul, batch norm, element-wise, ...) in the report')
    p.add_argument('--out', default=None, help='JSON file (the table goes next to it as .md)')
    p.add_argument('--render', metavar='JSON',
                   help='measure nothing: recompute the ratios and rewrite the Markdown of an '
                   'earlier result (in place)')
    p.add_argument('--recount-macs', metavar='JSON',
                   help='count the MACs of every algorithm of an earlier result again (its '
                   'depth, image, batch, levels, heads; today\'s counting), keep its times and '
                   'memory, rewrite it in place')
    args = p.parse_args(argv)
    if args.pair:
        args.algos = ','.join(PAIRS[args.pair])
    names = [a.strip() for a in args.algos.split(',') if a.strip()]
    bad = [a for a in names if split_name(a)[0] not in ALGOS + EXTRA_ALGOS
           or split_name(a)[1] not in ('', *NAME_SUFFIXES)]
    if bad or not names:
        p.error(f'unknown algorithms {bad}; choose from {ALGOS + EXTRA_ALGOS}, each optionally '
                f'with a suffix from {[":" + v for v in NAME_SUFFIXES]}')
    args.algo_list = list(dict.fromkeys(names))
    if args.out is None:
        args.out = osp.join('work_dirs', 'benchmark',
                            f'all_r{args.depth}_{args.img}_b{args.batch}.json')
    return args


def set_threads_env(threads) -> None:
    """One BLAS / OpenMP pool of ``threads`` in this process and the workers forked later."""
    if threads:
        for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
            os.environ[k] = str(threads)


def run_one(name: str, args: argparse.Namespace, **overrides) -> dict:
    """One algorithm, one round, in a fresh process; its record (:func:`run_worker`).
    ``overrides``: worker arguments other than ``args``' (e.g. ``macs=False``). A ``:keep``
    entry runs its algorithm with ``keep_freed_memory`` on."""
    from tools.analysis.bench import run_isolated
    kwargs = {k: getattr(args, k) for k in WORKER_KEYS}
    base, variant = split_name(name)
    if variant == 'keep':
        kwargs['keep_freed_memory'] = True
    return run_isolated(dict(kwargs, **overrides, name=base))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args.render)
    if args.recount_macs:
        return recount_macs(args.recount_macs)
    set_threads_env(args.threads)
    import torch

    from tools.analysis.bench import (bench_assembler, bench_selective_search, sample_images,
                                      summarize)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = [round(x, 2) for x in os.getloadavg()]
    config = {k: v for k, v in vars(args).items() if k != 'algo_list'}
    config['algos'] = args.algo_list
    results = dict(config=config, torch=torch.__version__,
                   threads=args.threads or torch.get_num_threads(), machine=os.uname().machine,
                   cpus=os.cpu_count())
    records = {name: [] for name in args.algo_list}
    for r in range(args.rounds):
        order = args.algo_list if r % 2 == 0 else args.algo_list[::-1]
        for name in order:
            # MACs are deterministic, the profile is one extra step: both in round 0 only
            rec = run_one(name, args, macs=args.macs and r == 0,
                          profile=args.profile and r == 0)
            records[name].append(rec)
            print(f'round {r} {name}: median step {statistics.median(rec["times"]):.3f} s, '
                  f'peak memory +{rec["peak_delta_mb"]:.0f} MB', flush=True)
    algos = summarize(records, args.batch)
    for name, res in algos.items():
        levels = res['num_levels'] or 1
        base = split_name(name)[0]
        res['inputs'] = describe_inputs(base, args.img, args.batch, levels)
        res['online_px_per_image'] = online_pixels(base, args.img, args.batch, levels)
        res['label'] = name
    results['algorithms'] = algos
    if args.pair:  # legacy keys of the two-model comparison
        base, ours = PAIRS[args.pair]
        for name in (base, ours):
            results[name] = dict(algos[name], peak_mem_mb=algos[name]['peak_mb'])
        results['step_ratio'] = algos[ours]['step_s'] / algos[base]['step_s']
        results['mem_ratio'] = algos[ours]['peak_mb'] / algos[base]['peak_mb']
        results['mem_delta_ratio'] = algos[ours]['peak_delta_mb'] / algos[base]['peak_delta_mb']
        results['pair'] = [base, ours]

    results['selective_search'] = []
    if args.ss_images > 0:
        paths = sample_images(args.ss_dir, args.ss_images)
        for side in args.ss_max_side.split(','):
            side = None if side.strip().lower() == 'none' else int(side)
            res = bench_selective_search(paths, side, args.threads or 1)
            res['files'] = [osp.relpath(p, REPO) for p in paths]
            results['selective_search'].append(res)
    levels = next((a['num_levels'] for a in algos.values() if a['num_levels']), None)
    if levels and args.assembler_reps > 0:
        results['assembler'] = bench_assembler(args.batch, args.img, levels,
                                               args.assembler_reps, args.device)
    results['loadavg'] = dict(before=load_before, after=[round(x, 2) for x in os.getloadavg()])

    write_report(results, args.out)
    return 0


def render(path: str) -> int:
    """Re-render an earlier result file (new table layout, ratios from its stored steps)."""
    with open(path) as f:
        results = json.load(f)
    return render_results(results, path)


def render_results(results: dict, path: str) -> int:
    """Ratios from the stored steps and MACs, then :func:`write_report` to ``path``."""
    from tools.analysis.bench import add_ratios
    add_ratios(results['algorithms'])
    levels = next((a['num_levels'] for a in results['algorithms'].values() if a['num_levels']),
                  None)
    for a in (results.get('assembler') or {}).values():
        a.setdefault('levels', levels)
    write_report(results, path)
    return 0


def recount_macs(path: str) -> int:
    """Replace the MAC counts of an earlier result by today's count (one untimed step per
    algorithm with the result's settings) and re-render it; times and memory are kept."""
    from tools.analysis.bench import MAC_KEYS
    with open(path) as f:
        results = json.load(f)
    cfg = results['config']
    args = argparse.Namespace(**{k: cfg.get(k) for k in WORKER_KEYS})
    args.steps, args.warmup = 1, 1
    args.channels_last, args.foreach = bool(args.channels_last), bool(args.foreach)
    args.keep_freed_memory = bool(args.keep_freed_memory)
    set_threads_env(args.threads)
    for name, res in results['algorithms'].items():
        rec = run_one(name, args, macs=True, profile=False)
        for key in MAC_KEYS:
            res[key] = rec[key]
        print(f'{name}: {rec["step_macs"] / 1e9:.1f} GMAC per step', flush=True)
    results['macs_recounted'] = ('MACs counted again by tools/benchmark.py --recount-macs '
                                 '(heads\' loss methods traced); times and memory as measured')
    return render_results(results, path)


def write_report(results: dict, out: str) -> None:
    """Render the Markdown table, store it in ``results``, write ``out`` (JSON) and the
    ``.md`` next to it, and print the table."""
    table = markdown_table(results)
    results['markdown'] = table
    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    with open(out, 'w') as f:
        json.dump(results, f, indent=1)
    md = osp.splitext(out)[0] + '.md'
    with open(md, 'w') as f:
        f.write(table + '\n')
    print('\n' + table)
    print(f'written {out} and {md}')


if __name__ == '__main__':
    sys.exit(main())
