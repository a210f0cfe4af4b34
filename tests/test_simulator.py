"""Tests of the normal-shopper simulator."""

import numpy as np
import pytest

from seqad.data import events
from seqad.data import simulator

PARAMS = simulator.SimulatorParams(num_users=200)


@pytest.fixture(scope='module')
def table():
  return simulator.simulate(PARAMS, seed=0)


def _consecutive(table):
  """Mask [events - 1] of event pairs that belong to the same user."""
  return table.user[1:] == table.user[:-1]


def test_same_seed_gives_identical_columns(table):
  again = simulator.simulate(PARAMS, seed=0)
  for name, column in table.columns().items():
    np.testing.assert_array_equal(column, getattr(again, name), err_msg=name)


def test_different_seed_gives_different_events(table):
  other = simulator.simulate(PARAMS, seed=1)
  assert len(other) != len(table) or not np.array_equal(other.timestamp, table.timestamp)


def test_output_is_sorted_genuine_and_complete(table):
  assert table.is_sorted()
  np.testing.assert_array_equal(table.users(), np.arange(PARAMS.num_users))
  assert np.all(table.kind == events.NORMAL)


def test_category_is_a_function_of_item(table):
  np.testing.assert_array_equal(table.category,
                                table.item // PARAMS.items_per_category)
  assert table.category.max() < PARAMS.num_categories


def test_event_mix_and_volume_are_taobao_like(table):
  mix = np.bincount(table.event_type, minlength=len(events.EVENT_TYPES)) / len(table)
  assert 0.86 < mix[events.VIEW] < 0.92
  assert 0.035 < mix[events.CART] < 0.075
  assert 0.015 < mix[events.FAV] < 0.045
  assert 0.01 < mix[events.BUY] < 0.03

  per_user = np.bincount(table.user)
  assert 75 < per_user.mean() < 130
  assert 50 < np.median(per_user) < per_user.mean()


def test_buys_mostly_follow_a_cart_of_the_same_item(table):
  buys = np.flatnonzero(table.event_type == events.BUY)
  carted = 0
  for i in buys:
    earlier = slice(max(0, i - 3), i)
    carted += np.any((table.event_type[earlier] == events.CART) &
                     (table.item[earlier] == table.item[i]) &
                     (table.user[earlier] == table.user[i]))
  assert carted / len(buys) > 0.6


def test_gaps_are_heavy_tailed(table):
  gaps = np.diff(table.timestamp)[_consecutive(table)]
  assert np.all(gaps >= 1)
  median = np.median(gaps)
  assert 10 <= median <= 120
  assert np.percentile(gaps, 99) / median > 100


def test_sessions_are_hours_to_days_apart(table):
  gaps = np.diff(table.timestamp)[_consecutive(table)]
  long_gaps = gaps[gaps >= PARAMS.min_session_gap_seconds]
  assert np.median(long_gaps) > 3 * 3600
  assert np.percentile(long_gaps, 90) > 24 * 3600


def test_categories_persist_within_users(table):
  same = _consecutive(table)
  persistence = np.mean(table.category[1:][same] == table.category[:-1][same])

  # Independent draws from the overall category frequencies would match this often.
  share = np.bincount(table.category) / len(table)
  assert persistence > 0.7
  assert persistence > 5 * np.sum(share ** 2)


def test_hour_profile_peaks_in_the_evening(table):
  local_hour = (table.timestamp // 3600 + PARAMS.utc_offset_hours) % 24
  counts = np.bincount(local_hour, minlength=24)
  assert counts[19:23].sum() > 4 * counts[2:6].sum()
  assert np.argmax(counts) in range(19, 24)
  profile = simulator.hour_profile(PARAMS)
  assert profile.shape == (24,) and np.isclose(profile.sum(), 1.0)


def test_timestamps_lie_in_the_span(table):
  start = PARAMS.start_time
  assert table.timestamp.min() >= start
  # Pushed-back sessions may spill a little past the last day.
  assert table.timestamp.max() < start + (PARAMS.span_days + 1) * 86400


def test_invalid_params_raise():
  with pytest.raises(ValueError, match='preferred_categories'):
    simulator.SimulatorParams(num_categories=3, preferred_categories=5)
  with pytest.raises(ValueError, match='cart_prob'):
    simulator.SimulatorParams(cart_prob=1.5)
