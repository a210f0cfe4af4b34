"""Training settings: which training windows and labels a detector gets."""

import numpy as np
import pytest

from configs import smoke
from seqad import benchmark
from seqad import settings
from seqad.data import dataset
from seqad.data import events


@pytest.fixture(scope='module')
def contaminated():
  config = smoke.get_config()
  config.simulator.num_users = 240
  config.data.setting = 'semi_supervised'
  config.data.train_contamination = 0.1
  config.data.labelled_per_kind = 2
  return config, dataset.build(config)


def test_contaminated_training_holds_every_kind(contaminated):
  config, data = contaminated
  assert data.report['setting'] == 'semi_supervised'
  assert set(np.unique(data.train.kind[data.train.kind > 0])) == set(
      map(events.kind_index, config.anomalies.kinds))
  assert data.report['train_windows']['click_bot'] > 2


def test_views_reveal_only_what_the_setting_allows(contaminated):
  config, data = contaminated
  train = data.train
  kinds = list(map(events.kind_index, config.anomalies.kinds))
  assert settings.training_view(train, 'clean', 2, 0) is train

  hidden = settings.training_view(train, 'contaminated', 2, 0)
  assert np.all(hidden.kind == events.NORMAL) and np.all(hidden.event_kind == 0)
  np.testing.assert_array_equal(hidden.tokens['category'], train.tokens['category'])

  view = settings.training_view(train, 'semi_supervised', 2, seed=0)
  for kind in kinds:
    visible = np.flatnonzero(view.kind == kind)
    assert len(visible) == 2 and np.all(train.kind[visible] == kind)
  assert np.all((view.kind == 0) | (view.kind == train.kind))
  # Unsupervised detectors drop the known anomalies; supervised ones keep them.
  assert len(settings.fit_windows(view, uses_labels=False)) == len(train) - 2 * len(kinds)
  assert len(settings.fit_windows(view, uses_labels=True)) == len(train)


def test_harness_fits_on_the_settings_view(contaminated):
  config, data = contaminated
  detector = benchmark.make_detector('rules', data.vocab.sizes(), config)
  fitted = benchmark.training_windows(detector, data, config)
  assert len(fitted) == len(data.train) - 2 * len(config.anomalies.kinds)
  assert np.all(fitted.kind == events.NORMAL)
  with pytest.raises(ValueError, match='Unknown setting'):
    settings.training_view(data.train, 'dirty', 2, 0)
