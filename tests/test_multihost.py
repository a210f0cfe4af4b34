"""Two processes on one machine, joined by `jax.distributed`, train like one device."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from conftest import VOCAB_SIZES, multihost_config
from seqad import parallel
from seqad.detectors import neural

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multihost_worker.py')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_on_a_mesh_match_one_device(pattern_windows, tmp_path):
  port = _free_port()
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  outputs = [tmp_path / f'process_{i}.json' for i in range(2)]
  workers = [subprocess.Popen([sys.executable, WORKER, str(i), '2', str(port), str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for i, out in enumerate(outputs)]
  for worker in workers:
    log, _ = worker.communicate(timeout=600)
    assert worker.returncode == 0, log[-3000:]
  results = [json.loads(out.read_text()) for out in outputs]

  single = neural.NeuralDetector('gru-masked', VOCAB_SIZES, multihost_config(), seed=0,
                                 plan=parallel.DataParallel('single'))
  single.fit(pattern_windows, pattern_windows.take(np.arange(20)))
  losses = [e['train/loss'] for e in single.loss_history]
  scores = single.decision_function(pattern_windows.take(np.arange(10)))
  for result in results:
    assert (result['devices'], result['local_devices']) == (4, 2)
    np.testing.assert_allclose(result['losses'], losses, rtol=1e-4)
    np.testing.assert_allclose(result['scores'], scores, rtol=1e-4)
