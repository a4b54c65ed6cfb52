"""Plot training curves from mmengine JSON logs (several runs overlaid) to a PNG.

Every scalar logged per iteration can be plotted: total loss, per-level/per-term losses
(``loss_level0`` ...), ``lr``, ``momentum``, positive/negative similarities (``pos_sim_level0``).
By default all keys matching ``--keys`` patterns present in the logs get one panel each.

Example:
    python tools/analysis/plot_curves.py work_dirs/a/*/vis_data/*.json \
        work_dirs/b/*/vis_data/*.json --legend mcl byol --out work_dirs/curves.png
"""
import argparse
import fnmatch
import json
import os
import os.path as osp
from typing import Dict, List

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_KEYS = ['loss', 'loss_*', 'lr', 'momentum', 'ema_momentum', 'pos_sim_*', 'neg_sim_*', 'acc_*']


def read_log(path: str) -> Dict[str, List[tuple]]:
    """``{key: [(iter, value), ...]}`` of the training records of one mmengine JSON log."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'log {path!r} does not exist (mmengine writes '
                                '<work_dir>/<timestamp>/vis_data/<timestamp>.json)')
    series: Dict[str, List[tuple]] = {}
    with open(path) as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{n + 1} is not a JSON line ({e})') from e
            step = rec.get('iter', rec.get('step'))
            if step is None or 'loss' not in rec and 'lr' not in rec:
                continue  # validation / metric records
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k not in ('iter', 'step', 'epoch',
                                                               'data_time', 'time', 'memory'):
                    series.setdefault(k, []).append((step, float(v)))
    if not series:
        raise ValueError(f'{path!r} holds no training record')
    return series


def select_keys(logs: List[Dict[str, list]], patterns: List[str]) -> List[str]:
    keys: List[str] = []
    for pattern in patterns:
        for log in logs:
            for k in sorted(log):
                if fnmatch.fnmatch(k, pattern) and k not in keys:
                    keys.append(k)
    return keys


def plot(paths: List[str], legend: List[str], patterns: List[str], out: str,
         cols: int = 3) -> List[str]:
    """Write the PNG; return the plotted keys."""
    logs = [read_log(p) for p in paths]
    legend = legend or [osp.basename(osp.dirname(osp.dirname(osp.dirname(p)))) or p
                        for p in paths]
    if len(legend) != len(paths):
        raise ValueError(f'{len(legend)} legend entries for {len(paths)} logs')
    keys = select_keys(logs, patterns)
    if not keys:
        raise ValueError(f'no key of the logs matches {patterns}')
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for log, name in zip(logs, legend):
            if key in log:
                x, y = zip(*log[key])
                ax.plot(x, y, label=name, linewidth=1.2)
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    fig.tight_layout()
    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('logs', nargs='+', help='mmengine JSON logs (vis_data/*.json)')
    parser.add_argument('--legend', nargs='+', default=[], help='one name per log')
    parser.add_argument('--keys', nargs='+', default=DEFAULT_KEYS,
                        help='keys or glob patterns to plot')
    parser.add_argument('--out', default='work_dirs/curves.png', help='output PNG')
    args = parser.parse_args()
    keys = plot(args.logs, args.legend, args.keys, args.out)
    print(f'wrote {args.out} ({len(keys)} panels: {", ".join(keys)})')


if __name__ == '__main__':
    main()
