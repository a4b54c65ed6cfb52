"""``SMALL=1 bash tools/quickstart.sh``: the smoke run of the main command (setup check, --small
data, a few MCL iterations at 64 px, linear probe and frozen-feature detection probe) finishes,
writes both probe tables and never restarts its data loader (infinite sampler)."""
import json
import os
import os.path as osp
import subprocess
import time

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_small_quickstart_runs_the_probes_in_minutes(tmp_path):
    env = dict(os.environ, SMALL='1', WORK=str(tmp_path / 'qs'), PRETRAIN_ITERS='2',
               OMP_NUM_THREADS='1')
    start = time.time()
    proc = subprocess.run(['bash', 'tools/quickstart.sh'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert time.time() - start < 600, 'SMALL=1 must stay a smoke run of minutes'
    assert 'Reach the end of the dataloader' not in out
    assert (tmp_path / 'qs' / 'mcl' / 'pretrain' / 'iter_2.pth').exists()
    linear = json.load(open(tmp_path / 'qs' / 'linear_probe' / 'linear.json'))
    assert [(r['name'], r['seed']) for r in linear['results']] == [
        ('random', 0), ('random', 1), ('random', 2), ('mcl', 0), ('mcl', 1), ('mcl', 2)]
    det = json.load(open(tmp_path / 'qs' / 'det_probe' / 'det.json'))
    assert [(r['name'], r['variant']) for r in det['results']] == [('random', 'all'),
                                                                  ('mcl', 'all')]
    assert det['results'][1]['frozen'] == ['backbone', 'neck', 'head']
    assert '| mcl | 0 | all |' in out  # the det-probe table is printed at the end
