"""What the probes (``knn_probe.py``, ``linear_probe.py``, ``det_probe.py``) share: their
command-line options (what to probe, where data and outputs are, how checkpoints load) and how
they write their results (JSON + Markdown)."""
import argparse
import json
import os
import os.path as osp
from typing import Callable, List, Mapping, Sequence, Tuple


def probe_parser(doc: str, out_dir: str, out_help: str) -> argparse.ArgumentParser:
    """A parser with the checkpoints, ``--data-root`` and ``--out-dir`` of every probe.

    Args:
        doc (str): The tool's module docstring (its first paragraph is the description).
        out_dir (str): Default output folder.
        out_help (str): What the output folder receives.
    """
    p = argparse.ArgumentParser(description=doc.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoints', nargs='+', help='random | [NAME=]PATH, one or more')
    p.add_argument('--data-root', default='data/objects_coco',
                   help='COCO-format set: annotations/instances_<split>.json + <split>/')
    p.add_argument('--out-dir', default=out_dir, help=out_help)
    return p


def add_loading_args(p: argparse.ArgumentParser) -> None:
    """``--use-ema`` and ``--trust-checkpoint`` (how a checkpoint is read)."""
    p.add_argument('--use-ema', action='store_true',
                   help='probe the EMA / momentum target instead of the online backbone')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='unpickle checkpoints that hold Python objects outside the allow-list '
                   '(runs code stored in the file: only for files you trust)')


def write_results(out_dir: str, stem: str, doc: dict, to_markdown: Callable[[Mapping], str]) -> None:
    """``{stem}.json`` (written atomically: a probe resumes from it) and ``{stem}.md``."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = osp.join(out_dir, f'{stem}.json.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, osp.join(out_dir, f'{stem}.json'))
    with open(osp.join(out_dir, f'{stem}.md'), 'w', encoding='utf-8') as f:
        f.write(to_markdown(doc) + '\n')


def previous_rows(json_path: str, settings: Mapping, tool: str,
                  log: Callable[[str], None] = print) -> List[dict]:
    """The result rows of an earlier run in ``json_path`` if it used the same ``settings`` (a
    probe resumes from them); none if the file is absent or its settings differ (logged)."""
    if not osp.exists(json_path):
        return []
    with open(json_path, encoding='utf-8') as f:
        old = json.load(f)
    if old.get('settings') != settings:
        log(f'[{tool}] {json_path} has other settings: starting a new table')
        return []
    return list(old['results'])


def mean_half_range(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and half-range (0 for one value): the seed spread the probe readings use."""
    mean = sum(values) / len(values)
    return mean, (max(values) - min(values)) / 2


def exceeds(delta: float, threshold: float) -> bool:
    """Whether ``|delta|`` exceeds ``threshold``. Top-1 scores are counts over a fixed set
    (e.g. 397 crops), so a difference can equal the threshold exactly; float rounding must not
    turn that tie into an excess, hence the 1e-9 tolerance."""
    return abs(delta) - threshold > 1e-9
