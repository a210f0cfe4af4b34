"""Tests of fitting the simulator to an event table."""

import dataclasses
import json
import os

import numpy as np
import pytest

from seqad.data import calibration
from seqad.data import simulator
from seqad.data import taobao

REAL = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                    'taobao_userbehavior', 'UserBehavior_head_814users.csv')
TRUE = simulator.SimulatorParams(
    num_users=1500, num_categories=400, mean_sessions=12.0, activity_shape=2.0,
    first_type_probs=(0.8, 0.1, 0.05, 0.05),
    type_transitions=((0.85, 0.08, 0.04, 0.03), (0.6, 0.3, 0.05, 0.05),
                      (0.7, 0.1, 0.15, 0.05), (0.8, 0.05, 0.05, 0.1)),
    new_item_prob=(0.7, 0.8, 0.9, 0.5))
SMALL_GRID = {'preferred_categories': (10,), 'preference_concentration': (0.5,),
              'explore_prob': (0.3,), 'explore_concentration': (2.0,)}


@pytest.fixture(scope='module')
def fitted():
  table = simulator.simulate(TRUE, seed=0)
  return calibration.fit(table, search_users=200, preference_grid=SMALL_GRID), table


def test_fit_recovers_the_generating_parameters(fitted):
  params, table = fitted
  assert params.num_users == TRUE.num_users
  assert params.mean_sessions == pytest.approx(TRUE.mean_sessions, rel=0.05)
  assert params.activity_shape == pytest.approx(TRUE.activity_shape, rel=0.3)
  np.testing.assert_allclose(params.first_type_probs, TRUE.first_type_probs, atol=0.01)
  np.testing.assert_allclose(params.type_transitions, TRUE.type_transitions, atol=0.03)
  np.testing.assert_allclose(params.type_transitions[0], TRUE.type_transitions[0],
                             atol=0.005)
  # Corrected for revisits that a short history turns into new items.
  np.testing.assert_allclose(params.new_item_prob, TRUE.new_item_prob, atol=0.03)
  # The hour profile is corrected so that event hours, not session starts, match.
  report = calibration.realism_report(table, params, seed=5)
  assert report['ok'], [r for r in report['rows'] if not r['ok']]
  for kind in range(4):
    true_median = simulator.quantile_draw(TRUE.gap_quantiles[kind], np.array([0.5]))
    assert np.median(params.gap_quantiles[kind]) == pytest.approx(true_median[0],
                                                                  rel=0.15)
  assert params.start_time == TRUE.start_time and params.span_days >= TRUE.span_days
  assert params.category_stay_prob == pytest.approx(TRUE.category_stay_prob, abs=0.1)


def test_fit_is_deterministic():
  table = simulator.simulate(dataclasses.replace(TRUE, num_users=200), seed=1)
  first, again = (calibration.fit(table, search_users=100, preference_grid=SMALL_GRID)
                  for _ in range(2))
  assert first == again


def test_save_and_load_round_trip(fitted, tmp_path):
  params, _ = fitted
  path = str(tmp_path / 'fit.json')
  calibration.save_params(path, params, fitted_on={'users': 1500})
  assert calibration.load_params(path) == params
  assert json.loads(open(path).read())['fitted_on'] == {'users': 1500}

  bad = tmp_path / 'bad.json'
  bad.write_text('{"params": {\n  "num_users": ,\n}}')
  with pytest.raises(ValueError, match=r'bad.json: line 2'):
    calibration.load_params(str(bad))
  bad.write_text('{"num_users": 3}')
  with pytest.raises(ValueError, match='no "params"'):
    calibration.load_params(str(bad))


def test_fit_rejects_a_tiny_table():
  table = simulator.simulate(dataclasses.replace(TRUE, num_users=1), seed=0)
  with pytest.raises(ValueError, match='at least 10 events of 2 or more users'):
    calibration.fit(table.take(np.arange(min(5, len(table)))))


def test_shipped_default_is_fitted_on_the_taobao_slice():
  if not os.path.exists(REAL):
    pytest.skip(f'real data slice not found at {REAL}')
  real, _ = taobao.load_taobao(REAL)
  shipped = simulator.default_params()
  closed = calibration._closed_form(  # pylint: disable=protected-access
      real, shipped.min_session_gap_seconds, shipped.utc_offset_hours,
      len(shipped.gap_quantiles[0]))
  for name in ('num_users', 'num_categories', 'mean_sessions', 'activity_shape',
               'type_transitions', 'first_type_probs', 'gap_quantiles',
               'session_length_quantiles', 'category_stay_prob', 'start_time'):
    assert getattr(shipped, name) == simulator.SimulatorParams(**closed).__getattribute__(
        name), name
