"""Merge the ``metrics.json`` of several ``tools/pretrain_and_finetune.py`` runs into one
Markdown table (box and mask AP, AP50, AP75, APs/m/l) and print it.

Example:
    python tools/analysis/compare_results.py work_dirs/quickstart/mcl \
        work_dirs/quickstart/random_init --out work_dirs/quickstart/results.md
"""
import argparse
import json
import os
import os.path as osp
from typing import List

NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


def load(run_dir: str) -> dict:
    path = osp.join(run_dir, 'metrics.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: did tools/pretrain_and_finetune.py '
                                f'finish for {run_dir}? (see {run_dir}/logs/)')
    with open(path) as f:
        return json.load(f)


def fmt(value) -> str:
    """COCO reports -1 (x100 = -100) for an area range without ground truth: show n/a."""
    if value is None or value != value or value < 0:
        return 'n/a'
    return f'{value:.1f}'


def table(runs: List[dict], labels: List[str]) -> str:
    header = ['pre-training', 'pre-train s', 'fine-tune s'] + [f'box {n}' for n in NAMES] + \
        [f'mask {n}' for n in NAMES]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for run, label in zip(runs, labels):
        sec = run.get('seconds', {})
        row = [label, f"{sec.get('pretrain', 0):.0f}", f"{sec.get('finetune', 0):.0f}"]
        for task in ('bbox', 'segm'):
            row += [fmt(run.get(task, {}).get(n)) for n in NAMES]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', help='work dirs of tools/pretrain_and_finetune.py')
    parser.add_argument('--labels', nargs='+', help='row labels (default: the pre-training)')
    parser.add_argument('--out', help='also write the table to this Markdown file')
    args = parser.parse_args()
    runs = [load(r) for r in args.runs]
    labels = args.labels or [r.get('pretrain') or osp.basename(r['pretrain_config'])
                             for r in runs]
    if len(labels) != len(runs):
        raise SystemExit(f'{len(labels)} labels for {len(runs)} runs')
    md = table(runs, labels)
    print(md)
    if args.out:
        os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(md + '\n')


if __name__ == '__main__':
    main()
