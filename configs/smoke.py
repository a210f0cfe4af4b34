r"""A tiny configuration that runs the whole pipeline in seconds; the tests use it.

  python -m benchmarks.run --config=configs/smoke.py --workdir=results/smoke
"""

from configs import default


def get_config():
  config = default.get_config()
  config.score_repeats = 1
  config.simulator.num_users = 150
  config.anomalies.user_fraction = 0.1
  config.anomalies.segment_length = 24
  config.data.window_length = 32
  config.data.max_categories = 32
  config.data.min_category_count = 1

  config.lstm.embed_dim = 16
  config.lstm.hidden = 16
  config.lstm.unroll = 1
  config.lstm.warmup_steps = 2
  config.lstm.num_steps = 20
  config.lstm.batch_size = 16
  config.lstm.score_batch_size = 64
  config.lstm.log_every = 10
  return config
