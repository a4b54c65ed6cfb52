"""``SMALL=1 bash tools/quickstart.sh``: the smoke run of the main command (setup check, --small
data, a few MCL iterations at 64 px, linear and NCM probes of the online and EMA backbones next
to random init) finishes, writes the tables and the reading, and never restarts its data loader
(infinite sampler)."""
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
    for folder, ema in (('linear_probe', False), ('linear_probe_ema', True)):
        linear = json.load(open(tmp_path / 'qs' / folder / 'linear.json'))
        assert linear['settings']['use_ema'] is ema and linear['settings']['img_size'] == 64
        assert [(r['name'], r['seed']) for r in linear['results']] == [
            ('random', 0), ('random', 1), ('random', 2), ('mcl', 0), ('mcl', 1), ('mcl', 2)]
        assert all(r['ncm_top1'] is not None for r in linear['results'])
    results = (tmp_path / 'qs' / 'results.md').read_text()
    # the reading compares MCL with random init's seed spread, for both backbones and scores
    assert results.count('- mcl NCM top-1 ') == 2 and results.count('- mcl linear top-1 ') == 2
    assert results.count('- mcl pooled CV linear top-1 ') == 2
    assert results.count('- mcl pooled NCM top-1 ') == 2
    assert 'x the seed spread' in results and '## MCL ema backbone' in results
    assert '- mcl NCM top-1 ' in out  # printed at the end
