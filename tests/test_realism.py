"""Tests of the realism report: its distances, its statistics, and the fitted default."""

import os

import numpy as np
import pytest
from scipy import stats

from seqad.data import calibration
from seqad.data import events
from seqad.data import realism
from seqad.data import simulator
from seqad.data import taobao

REAL = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                    'taobao_userbehavior', 'UserBehavior_head_814users.csv')


def test_ks_distance_matches_scipy():
  rng = np.random.default_rng(0)
  for a, b in [(rng.normal(size=300), rng.normal(0.3, 1.2, size=500)),
               (rng.integers(0, 5, 200), rng.integers(1, 6, 100))]:  # with ties
    assert realism.ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
  assert realism.ks_distance([1, 2, 3], [1, 2, 3]) == 0.0
  assert realism.ks_distance([1, 2], [5, 6]) == 1.0


def test_tv_distance():
  assert realism.tv_distance([0.5, 0.5, 0], [0, 0.5, 0.5]) == pytest.approx(0.5)
  assert realism.tv_distance([2, 2], [1, 1]) == 0.0  # counts are normalised
  with pytest.raises(ValueError, match='equal shapes'):
    realism.tv_distance([1, 2], [1, 2, 3])


def test_describe_a_hand_made_table():
  # User 1: a session view(a) cart(a) buy(b), then, 2 h later, view(a).
  # User 2: one session view(c) view(d).
  table = events.EventTable.from_columns(
      user=[1, 1, 1, 1, 2, 2], timestamp=[0, 10, 40, 7240, 100, 160],
      event_type=[0, 1, 3, 0, 0, 0], item=[5, 5, 6, 5, 7, 8],
      category=[1, 1, 2, 1, 3, 3])
  described = realism.describe(table, session_gap=1800, utc_offset_hours=0)
  np.testing.assert_array_equal(described['within_session_gap'], [10, 30, 60])
  np.testing.assert_array_equal(described['between_session_gap'], [7200])
  np.testing.assert_array_equal(described['session_length'], [3, 1, 2])
  np.testing.assert_array_equal(described['sessions_per_user'], [2, 1])
  np.testing.assert_array_equal(described['revisit_distance'], [1, 2])
  np.testing.assert_allclose(described['top_category_share'], [0.75, 1.0])
  np.testing.assert_allclose(described['distinct_category_share'], [0.5, 0.5])
  np.testing.assert_array_equal(np.sort(described['item_popularity']), [1, 1, 1, 1])
  transitions = np.zeros(16)
  transitions[[0 * 4 + 1, 1 * 4 + 3, 0 * 4 + 0]] = 1 / 3
  np.testing.assert_allclose(described['transitions'], transitions)
  np.testing.assert_allclose(described['first_type'], [1, 0, 0, 0])
  # First touches: view a, buy b, view c, view d; revisits: cart a, view a.
  np.testing.assert_allclose(described['new_item_by_type'],
                             np.array([3, 1, 0, 1, 0, 0, 1, 0]) / 6)


def test_report_flags_a_mismatched_simulator():
  real = simulator.simulate(simulator.default_params(num_users=300), seed=0)
  slow = simulator.default_params(
      gap_quantiles=tuple(tuple(10 * g for g in q)
                          for q in simulator.default_params().gap_quantiles))
  rows = {r['statistic']: r for r in calibration.realism_report(real, slow)['rows']}
  assert not rows['within_session_gap']['ok']
  assert rows['event_mix']['ok']


@pytest.mark.parametrize('seed', [1, 2])
def test_fitted_default_reproduces_the_taobao_slice(seed):
  if not os.path.exists(REAL):
    pytest.skip(f'real data slice not found at {REAL}')
  real, _ = taobao.load_taobao(REAL)
  report = calibration.realism_report(real, simulator.default_params(), seed=seed)
  outside = [(r['statistic'], r['distance'], r['tolerance'])
             for r in report['rows'] if not r['ok']]
  assert not outside
  assert len(report['rows']) == len(realism.TOLERANCES)
