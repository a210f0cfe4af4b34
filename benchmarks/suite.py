r"""Runs the benchmark suite grid, resuming where an earlier run stopped.

  python -m benchmarks.suite --config=configs/suite.py --workdir=results/suite

Rerunning the same command skips every finished cell (seqad/suite.py). Any
config field can be overridden, e.g. `--config.suite.seeds=0,1,2,3,4`.
"""

import os

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from seqad import suite

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/suite.py', 'Python config file with a get_config().')
_WORKDIR = flags.DEFINE_string('workdir', 'results/suite',
                               'Folder for results.jsonl, alerts.jsonl, leaderboard.md.')
_COMPILE_CACHE = flags.DEFINE_string(
    'compile_cache', os.path.join(os.path.expanduser('~'), '.cache', 'seqad-jax'),
    'Persistent XLA compilation cache shared by the cells ("" disables it).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if _COMPILE_CACHE.value:
    # The cells of one grid compile the same functions at the same shapes.
    jax.config.update('jax_compilation_cache_dir', _COMPILE_CACHE.value)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  suite.run(_CONFIG.value, _WORKDIR.value)
  print(open(os.path.join(_WORKDIR.value, 'leaderboard.md')).read())


if __name__ == '__main__':
  app.run(main)
