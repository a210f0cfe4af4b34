r"""Runs the seqad benchmark: every configured detector x anomaly kind.

  python -m benchmarks.run --config=configs/default.py --workdir=results/default

Any config field can be overridden, e.g. `--config.data.source=taobao
--config.data.path=../shared/data/taobao_userbehavior/UserBehavior_head_814users.csv`.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from seqad import benchmark

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/default.py', 'Python config file with a get_config().')
_WORKDIR = flags.DEFINE_string('workdir', 'results/default',
                               'Folder for config.json, results.jsonl, leaderboard.md.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  benchmark.run(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
