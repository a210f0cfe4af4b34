r"""A tiny configuration that runs the whole pipeline in seconds; the tests use it.

  python -m benchmarks.run --config=configs/smoke.py --workdir=results/smoke
"""

from configs import default


def get_config():
  config = default.get_config()
  config.score_repeats = 1
  # Few neural detectors keep compilations down; tests/test_zoo.py covers the rest.
  config.detectors = ('lstm-next', 'transformer-masked', 'markov', 'ngram', 'iforest',
                      'lof', 'pca', 'rules')
  config.simulator.num_users = 150
  config.anomalies.user_fraction = 0.1
  config.anomalies.segment_length = 24
  config.data.window_length = 32
  config.data.max_categories = 32
  config.data.min_category_count = 1

  config.neural.embed_dim = 16
  config.neural.encoder.hidden = 16
  config.neural.encoder.num_heads = 2
  config.neural.encoder.state_size = 8
  config.neural.warmup_steps = 2
  config.neural.num_steps = 20
  config.neural.batch_size = 16
  config.neural.score_batch_size = 64
  config.neural.score_passes = 2
  config.neural.log_every = 10
  config.neural_overrides.lstm_next.num_steps = 20
  return config
