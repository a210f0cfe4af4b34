"""Tests of the normal-shopper simulator."""

import numpy as np
import pytest

from seqad.data import events
from seqad.data import simulator

PARAMS = simulator.default_params(num_users=300)


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


def test_event_types_follow_the_fitted_transitions(table):
  inside = np.diff(table.timestamp) <= PARAMS.min_session_gap_seconds
  inside &= _consecutive(table)
  counts = np.zeros((4, 4))
  np.add.at(counts, (table.event_type[:-1][inside], table.event_type[1:][inside]), 1)
  observed = counts / counts.sum(axis=1, keepdims=True)
  # Rows with many pairs are estimated tightly; carts and buys repeat in bursts.
  np.testing.assert_allclose(observed[events.VIEW], PARAMS.type_transitions[0], atol=0.01)
  np.testing.assert_allclose(observed, PARAMS.type_transitions, atol=0.06)
  assert observed[events.BUY, events.BUY] > 5 * observed[events.VIEW, events.BUY]


def test_new_items_follow_the_fitted_rate_per_type(table):
  key = table.user * 10**9 + table.item
  _, first_index = np.unique(key, return_index=True)
  first = np.zeros(len(table), bool)
  first[first_index] = True
  for kind in range(4):
    rate = first[table.event_type == kind].mean()
    # Revisits beyond a short history become new items, so rates sit a bit higher.
    assert PARAMS.new_item_prob[kind] - 0.05 < rate < PARAMS.new_item_prob[kind] + 0.1


def test_quantile_draw_inverts_quantile_cdf():
  quantiles = (1, 2, 2, 6, 20, 56, 300)
  u = np.linspace(0.0, 0.999, 50)
  draws = simulator.quantile_draw(quantiles, u)
  assert np.all(np.diff(draws) >= 0) and draws[0] == 1 and draws[-1] < 300
  # Away from flat stretches of the table, the CDF maps a draw back to its uniform.
  steep = draws > 2.01
  np.testing.assert_allclose(simulator.quantile_cdf(quantiles, draws[steep]), u[steep],
                             atol=1e-9)


def test_gaps_are_heavy_tailed(table):
  gaps = np.diff(table.timestamp)[_consecutive(table)]
  assert np.all(gaps >= 0)
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
  assert persistence > 0.3
  assert persistence > 10 * np.sum(share ** 2)


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


def test_default_params_are_the_packaged_fit():
  params = simulator.default_params()
  assert params.num_categories > 1000 and len(params.gap_quantiles[0]) > 20
  assert simulator.default_params(num_users=7).num_users == 7
  with pytest.raises(ValueError, match='Unknown SimulatorParams fields'):
    simulator.params_from_dict({'num_users': 3, 'bogus': 1})


def test_invalid_params_raise():
  with pytest.raises(ValueError, match='preferred_categories'):
    simulator.SimulatorParams(num_categories=3, preferred_categories=5)
  with pytest.raises(ValueError, match='explore_prob'):
    simulator.SimulatorParams(explore_prob=1.5)
  with pytest.raises(ValueError, match='type_transitions'):
    simulator.SimulatorParams(type_transitions=((1, 0, 0, 0),) * 3 + ((.5, .6, 0, 0),))
  with pytest.raises(ValueError, match='hour_weights'):
    simulator.SimulatorParams(hour_weights=(1,) * 23)
