"""NegativeQueue: FIFO order, wrap-around, non-dividing batches, autograd safety, and the
all-gather across two real gloo processes."""
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from mcl_plugin.models.utils import NegativeQueue

QUEUE_FILE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'mcl_plugin', 'models',
                          'utils', 'queue.py')


def _keys(start: int, n: int, dim: int = 4) -> torch.Tensor:
    """Keys whose first coordinate is their global index (easy to track)."""
    k = torch.zeros(n, dim)
    k[:, 0] = torch.arange(start, start + n, dtype=torch.float)
    return k


def test_init_buffers_normalised_and_in_state_dict():
    q = NegativeQueue(16, 8)
    assert q.queue.shape == (16, 8) and q.ptr.item() == 0
    assert torch.allclose(q.queue.norm(dim=1), torch.ones(16), atol=1e-5)
    assert set(q.state_dict()) == {'queue', 'ptr'}
    assert len(list(q.parameters())) == 0


def test_fifo_and_wraparound_with_non_dividing_batch():
    K = 7
    q = NegativeQueue(K, 4)
    init = q.queue.clone()
    q.enqueue(_keys(0, 3))  # rows 0..2
    assert q.ptr.item() == 3
    assert q.queue[:3, 0].tolist() == [0, 1, 2]
    assert torch.equal(q.queue[3:], init[3:])  # untouched rows keep the random init
    q.enqueue(_keys(3, 3))  # rows 3..5
    q.enqueue(_keys(6, 3))  # 6 -> row 6, 7 -> row 0, 8 -> row 1: wrap-around
    assert q.ptr.item() == 2
    assert q.queue[:, 0].tolist() == [7, 8, 2, 3, 4, 5, 6]
    # The queue always holds the newest K keys, the oldest being overwritten next.
    for step in range(5):
        q.enqueue(_keys(9 + 3 * step, 3))
    newest = set(range(9 + 15 - K, 9 + 15))
    assert set(int(v) for v in q.queue[:, 0].tolist()) == newest
    assert q.queue[q.ptr.item(), 0].item() == min(newest)  # next to be dequeued = oldest


def test_batch_longer_than_queue_keeps_newest():
    q = NegativeQueue(4, 4)
    q.enqueue(_keys(0, 1))
    q.enqueue(_keys(1, 10))
    assert sorted(q.queue[:, 0].tolist()) == [7, 8, 9, 10]
    assert q.ptr.item() == (1 + 4) % 4


def test_enqueue_detaches_and_checks_shape():
    q = NegativeQueue(5, 4)
    k = torch.randn(2, 4, requires_grad=True)
    q.enqueue(k * 2)
    assert not q.queue.requires_grad
    with pytest.raises(ValueError, match=r'\(N, 4\)'):
        q.enqueue(torch.randn(2, 3))


def test_inplace_write_is_loud_and_negatives_copy_is_safe():
    q = NegativeQueue(6, 4)
    query = torch.randn(2, 4, requires_grad=True)
    logits = query @ q.queue.t()
    q.enqueue(F.normalize(torch.randn(3, 4), dim=1))
    with pytest.raises(RuntimeError, match='inplace'):
        logits.sum().backward()
    neg = q.negatives()
    logits = query @ neg.t()
    q.enqueue(F.normalize(torch.randn(3, 4), dim=1))
    logits.sum().backward()
    assert torch.allclose(query.grad, neg.sum(0).expand(2, 4))


WORKER = r"""
import importlib.util, os, sys, types
import torch
import torch.distributed as dist
rank, port, path, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
# Load queue.py (and the gather.py it imports) alone: importing the whole mcl_plugin package per
# process is slow. A bare package object gives the relative import its folder.
pkg = types.ModuleType('utils_under_test')
pkg.__path__ = [os.path.dirname(path)]
sys.modules['utils_under_test'] = pkg
spec = importlib.util.spec_from_file_location('utils_under_test.queue', path)
mod = importlib.util.module_from_spec(spec)
sys.modules['utils_under_test.queue'] = mod
spec.loader.exec_module(mod)
dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
torch.manual_seed(rank)  # different random init per rank


def keys(start, n):
    k = torch.zeros(n, 4)
    k[:, 0] = torch.arange(start, start + n, dtype=torch.float)
    return k


q = mod.NegativeQueue(5, 4)
q.enqueue(keys(10 * rank, 2))  # rank 0: 0,1   rank 1: 10,11
q.enqueue(keys(10 * rank + 2, 1 + rank))  # unequal sizes: rank 0: 2   rank 1: 12,13
torch.save(dict(queue=q.queue, ptr=q.ptr), os.path.join(out, f'{rank}.pt'))
dist.destroy_process_group()
"""


def test_enqueue_gathers_all_ranks_in_rank_order(tmp_path):
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, str(script), '{rank}', str(port), os.path.abspath(QUEUE_FILE),
           str(tmp_path)]
    procs = [
        subprocess.Popen([c.format(rank=r) for c in cmd], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True) for r in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out
    r0, r1 = (torch.load(tmp_path / f'{r}.pt') for r in range(2))
    # 4 keys, then 3 keys (rank 0's one, rank 1's two): 7 writes into 5 rows.
    assert r0['queue'][:, 0].tolist() == [12, 13, 10, 11, 2]
    assert torch.equal(r0['queue'][:, 0], r1['queue'][:, 0])
    assert r0['ptr'].item() == r1['ptr'].item() == 2
