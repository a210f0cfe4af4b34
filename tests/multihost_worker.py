"""One process of the two-process training test (tests/test_multihost.py).

  python tests/multihost_worker.py PROCESS_ID NUM_PROCESSES PORT OUT.json

Joins a `jax.distributed` run on localhost with two fake CPU devices per
process, trains the tiny masked GRU on a 'mesh' over every process's devices
and writes its loss history and scores as JSON.
"""

import json
import os
import sys

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=2')
_TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_TESTS, os.path.dirname(_TESTS)]  # conftest, and configs/

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

import conftest  # pylint: disable=wrong-import-position
from seqad import parallel  # pylint: disable=wrong-import-position
from seqad.detectors import neural  # pylint: disable=wrong-import-position


def main(process_id: int, num_processes: int, port: int, out_path: str) -> None:
  parallel.initialize_distributed(f'localhost:{port}', num_processes, process_id)
  windows = conftest.pattern_windows.__wrapped__()
  detector = neural.NeuralDetector(
      'gru-masked', conftest.VOCAB_SIZES, conftest.multihost_config(), seed=0,
      plan=parallel.DataParallel('mesh'))
  detector.fit(windows, windows.take(np.arange(20)))
  scores = detector.decision_function(windows.take(np.arange(10)))
  with open(out_path, 'w') as f:
    json.dump({'devices': jax.device_count(), 'local_devices': jax.local_device_count(),
               'losses': [e['train/loss'] for e in detector.loss_history],
               'scores': scores.tolist()}, f)


if __name__ == '__main__':
  main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
