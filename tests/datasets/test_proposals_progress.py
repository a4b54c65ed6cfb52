"""The progress bar of generate_proposals (tools/generate_proposals.py): a tqdm bar over the images
on stderr when asked for (or on a terminal), the periodic log lines otherwise."""
import os.path as osp

import cv2
import numpy as np

from tools.proposals import ProposalFilter, SelectiveSearchConfig, generate_proposals


def _images(root, n):
    rng = np.random.RandomState(0)
    items = []
    for i in range(n):
        img = (100 + rng.randint(-12, 12, (48, 64, 3))).astype(np.uint8)
        img[8:30, 10:40] = (40, 40, 220)
        path = osp.join(root, f'{i}.png')
        cv2.imwrite(path, img)
        items.append((path, f'{i}.png'))
    return items


def test_progress_bar_counts_images_and_replaces_log_lines(tmp_path, capsys):
    items = _images(str(tmp_path), 3)
    cfg, filt = SelectiveSearchConfig(mode='single'), ProposalFilter(min_side=4)
    logs = []
    generate_proposals(items[:1],
                       str(tmp_path / 'p.json'),
                       cfg,
                       filt,
                       keep_partial=True,
                       log=logs.append,
                       log_every=1,
                       progress=True)
    err = capsys.readouterr().err
    assert 'selective search' in err and '1/1' in err and 'img' in err
    assert not any('images/s' in line for line in logs)  # the bar replaces the periodic lines
    # resumed run: the bar starts at the finished image and counts all three
    generate_proposals(items,
                       str(tmp_path / 'p.json'),
                       cfg,
                       filt,
                       log=logs.append,
                       log_every=1,
                       progress=True)
    err = capsys.readouterr().err
    assert '1/3' in err and '3/3' in err
    # no bar: nothing on stderr, a log line per image instead
    logs.clear()
    generate_proposals(items,
                       str(tmp_path / 'q.json'),
                       cfg,
                       filt,
                       log=logs.append,
                       log_every=1,
                       progress=False)
    assert capsys.readouterr().err == ''
    assert [line.split()[1] for line in logs[1:]] == ['1/3', '2/3', '3/3']
