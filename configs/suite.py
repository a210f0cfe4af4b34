r"""The default suite: every setting x 3 seeds, baselines beside neural detectors.

  python -m benchmarks.suite --config=configs/suite.py --workdir=results/suite

Sized to finish in about 20-25 minutes on a 2-core CPU: 3,000 simulated users,
two neural detectors (trained as in the default run) and every classical baseline, in the
clean, contaminated and semi-supervised settings, seeds 0, 1 and 2. Rerunning
the command resumes an interrupted run (seqad/suite.py).
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.detectors = ('lstm-next', 'transformer-masked', 'markov', 'ngram', 'iforest',
                      'lof', 'pca', 'ecod', 'rules', 'rules-val')

  config.suite = ml_collections.ConfigDict()
  config.suite.datasets = ('simulator',)  # Or '<source>:<path>', e.g. taobao:FILE.
  config.suite.kinds = ('all',)  # 'all', or '+'-joined kind names per entry.
  config.suite.camouflage = (0.0,)  # Used where the injectors have `camouflage`.
  config.suite.settings = ('clean', 'contaminated', 'semi_supervised')
  config.suite.seeds = (0, 1, 2)

  config.simulator.num_users = 3000  # 600 test users.
  config.data.train_contamination = 0.02  # Victims per kind among training users.
  config.data.labelled_per_kind = 5
  config.evaluation.explained_windows = 32
  config.evaluation.top_alerts = 5

  # Neural training as in configs/default.py (400 steps, lstm-next 800).
  config.neural.log_every = 200
  config.iforest.n_estimators = 100
  return config
