"""tools/benchmark.py end to end at toy size: both models timed, ratios and the JSON written."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_benchmark_writes_ratios(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, 'tools/benchmark.py', '--depth', '18', '--img', '32',
                           '--batch', '4', '--levels', '2', '--steps', '1', '--rounds', '1',
                           '--warmup', '0', '--assembler-reps', '2', '--out', str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res['mcl']['step_s'] > 0 and res['byol']['step_s'] > 0
    assert res['step_ratio'] == pytest.approx(res['mcl']['step_s'] / res['byol']['step_s'])
    assert set(res['assembler']) == {'bilinear', 'area'}
    assert '| step time (s) |' in proc.stdout
