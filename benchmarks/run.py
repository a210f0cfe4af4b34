r"""Runs the seqad benchmark: every configured detector x anomaly kind.

  python -m benchmarks.run --config=configs/default.py --workdir=results/default

Any config field can be overridden, e.g. `--config.data.source=taobao
--config.data.path=../shared/data/taobao_userbehavior/UserBehavior_head_814users.csv`.

Data parallelism: `--config.parallel.mode=pmap` (this host's devices) or
`--config.parallel.mode=mesh` (sharded jit). Several hosts run the same command
with the mesh mode and their own `--process_id`:

  python -m benchmarks.run --config.parallel.mode=mesh \
    --coordinator_address=host0:1234 --num_processes=2 --process_id=0

Every process trains on its own rows of each global batch and checkpoints
into the same <workdir>/checkpoints (a shared file system); process 0 writes
the results.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from seqad import benchmark
from seqad import parallel

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/default.py', 'Python config file with a get_config().')
_WORKDIR = flags.DEFINE_string('workdir', 'results/default',
                               'Folder for config.json, results.jsonl, leaderboard.md.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', '', 'host:port of process 0, for a multi-host run.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'Processes of the run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', 0, 'This process, 0..num_processes-1.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value,
                                  _PROCESS_ID.value)
  benchmark.run(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
