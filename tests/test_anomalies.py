"""Tests of the labelled anomaly injectors."""

import numpy as np
import pytest

from seqad.data import anomalies
from seqad.data import events
from seqad.data import simulator

PARAMS = anomalies.AnomalyParams(user_fraction=0.1)
LOCAL_OFFSET = 8 * 3600


@pytest.fixture(scope='module')
def table():
  return simulator.simulate(simulator.SimulatorParams(num_users=200), seed=0)


@pytest.fixture(scope='module')
def candidates(table):
  # Every other user, so that victims must be picked among a strict subset.
  return table.users()[::2]


@pytest.fixture(scope='module')
def injected(table, candidates):
  return anomalies.inject_anomalies(table, candidates, PARAMS, seed=3)


def _segments(injected, name):
  """{victim: that victim's injected rows} for one kind."""
  rows = injected.take(injected.kind == events.kind_index(name))
  return {int(u): rows.select_users([u]) for u in rows.users()}


def test_same_seed_gives_identical_tables(table, candidates, injected):
  again = anomalies.inject_anomalies(table, candidates, PARAMS, seed=3)
  for name, column in injected.columns().items():
    np.testing.assert_array_equal(column, getattr(again, name), err_msg=name)
  other = anomalies.inject_anomalies(table, candidates, PARAMS, seed=4)
  assert not np.array_equal(other.user, injected.user)


def test_genuine_rows_are_unchanged(table, injected):
  assert injected.is_sorted()
  genuine = injected.take(injected.kind == events.NORMAL)
  for name, column in table.columns().items():
    np.testing.assert_array_equal(getattr(genuine, name), column, err_msg=name)


def test_victims_are_disjoint_candidates(injected, candidates):
  expected = round(PARAMS.user_fraction * len(candidates))
  seen = set()
  for name in PARAMS.kinds:
    segments = _segments(injected, name)
    assert len(segments) == expected
    assert all(len(s) == PARAMS.segment_length for s in segments.values())
    assert set(segments) <= set(candidates.tolist())
    assert not seen & set(segments)
    seen |= set(segments)


def test_click_bot_views_few_items_at_a_steady_fast_pace(injected):
  for segment in _segments(injected, 'click_bot').values():
    assert np.all(segment.event_type == events.VIEW)
    assert len(np.unique(segment.item)) <= PARAMS.bot_max_items
    gaps = np.diff(segment.timestamp)
    assert gaps.min() >= 1
    assert gaps.max() <= PARAMS.bot_gap_seconds + PARAMS.bot_jitter_seconds + 1
    assert gaps.std() < 1.0


def test_order_brushing_buys_the_same_few_items_quickly(injected):
  for segment in _segments(injected, 'order_brushing').values():
    buys = segment.event_type == events.BUY
    assert buys.sum() >= PARAMS.segment_length // 4
    assert len(np.unique(segment.item)) <= PARAMS.brushing_items
    assert len(np.unique(segment.category)) == 1
    assert np.all(np.isin(segment.event_type, [events.VIEW, events.CART, events.BUY]))
    assert np.median(np.diff(segment.timestamp)) < 10 * 60


def _view_fraction_range(table, length):
  """5th and 95th percentile of the view fraction of genuine `length`-event runs."""
  fractions = []
  for user in table.users():
    types = table.event_type[table.user == user]
    for start in range(0, len(types) - length + 1, length):
      fractions.append(np.mean(types[start:start + length] == events.VIEW))
  return np.percentile(fractions, [5, 95])


def test_account_takeover_switches_categories_hours_and_pace(table, injected):
  low, high = _view_fraction_range(table, PARAMS.segment_length)
  genuine_gaps = np.diff(table.timestamp)[table.user[1:] == table.user[:-1]]
  for user, segment in _segments(injected, 'account_takeover').items():
    own = table.select_users([user])
    assert not np.isin(segment.category, own.category).any()
    bought = segment.item[segment.event_type == events.BUY]
    carted = segment.item[segment.event_type == events.CART]
    viewed = segment.item[segment.event_type == events.VIEW]
    assert len(bought) == PARAMS.takeover_purchases
    np.testing.assert_array_equal(np.sort(bought), np.sort(carted))
    assert not np.isin(bought, own.item[own.event_type == events.VIEW]).any()
    assert not np.isin(bought, viewed).any()

    # By its event-type counts it is an ordinary shopping stretch.
    assert low <= np.mean(segment.event_type == events.VIEW) <= high

    start_hour = (segment.timestamp[0] + LOCAL_OFFSET) // 3600 % 24
    assert PARAMS.takeover_first_hour <= start_hour < PARAMS.takeover_last_hour
    assert np.median(np.diff(segment.timestamp)) < np.median(genuine_gaps)
    assert own.timestamp[0] <= segment.timestamp[0]


def test_real_looking_table():
  # Taobao-like ids: large, sparse, items under a handful of categories.
  rng = np.random.default_rng(0)
  categories = np.array([4756105, 2520377, 982926, 1464116, 2735466, 4145813])
  items = np.arange(6 * 5) * 7919 + 1000003
  item_category = np.repeat(categories, 5)
  rows = []
  for user in (1, 100, 1003, 24113, 999975):
    picks = rng.integers(0, 10, 20)  # each user stays within two categories
    picks += 5 * (user % 3)
    ts = 1511544070 + np.sort(rng.integers(0, 9 * 86400, 20))
    types = rng.choice(4, 20, p=[0.85, 0.07, 0.04, 0.04])
    rows.append((np.full(20, user), ts, types, items[picks], item_category[picks]))
  table = events.EventTable.from_columns(
      **dict(zip(('user', 'timestamp', 'event_type', 'item', 'category'),
                 map(np.concatenate, zip(*rows))))).sort()

  params = anomalies.AnomalyParams(user_fraction=0.2, segment_length=16)
  out = anomalies.inject_anomalies(table, table.users(), params, seed=0)
  assert out.is_sorted()
  assert len(out) == len(table) + 3 * 16
  counts = np.bincount(out.kind, minlength=len(events.ANOMALY_KINDS))
  np.testing.assert_array_equal(counts[1:], [16, 16, 16])
  assert set(np.unique(out.category)) <= set(categories)
  takeover = out.take(out.kind == events.kind_index('account_takeover'))
  victim = table.select_users(takeover.users())
  assert not np.isin(takeover.category, victim.category).any()


def test_takeover_of_a_user_who_touched_everything_uses_new_ids():
  table = events.EventTable.from_columns(
      user=[7, 7, 7], timestamp=[1511600000, 1511600030, 1511700000],
      event_type=[0, 0, 1], item=[11, 12, 12], category=[1, 2, 2])
  params = anomalies.AnomalyParams(kinds=('account_takeover',), user_fraction=1.0,
                                   segment_length=10, takeover_purchases=3)
  out = anomalies.inject_anomalies(table, [7], params, seed=0)
  segment = out.take(out.kind > 0)
  assert len(segment) == 10
  assert not np.isin(segment.category, [1, 2]).any()
  assert not np.isin(segment.item, [11, 12]).any()


def test_victim_counts():
  params = anomalies.AnomalyParams(user_fraction=0.06)
  assert anomalies.victim_counts(100, params) == [6, 6, 6]
  assert anomalies.victim_counts(2, params) == [1, 1, 0]
  assert anomalies.victim_counts(0, anomalies.AnomalyParams(user_fraction=0.0)) == [
      0, 0, 0]


def test_zero_fraction_returns_the_table(table):
  out = anomalies.inject_anomalies(
      table, [], anomalies.AnomalyParams(user_fraction=0.0), seed=0)
  assert len(out) == len(table)


def test_bad_input_raises(table):
  with pytest.raises(ValueError, match='Unknown anomaly kind'):
    anomalies.AnomalyParams(kinds=('click_bot', 'spam'))
  with pytest.raises(ValueError, match='user_fraction'):
    anomalies.AnomalyParams(user_fraction=0.5)
  with pytest.raises(ValueError, match='no candidate users'):
    anomalies.inject_anomalies(table, [], PARAMS, seed=0)
  with pytest.raises(ValueError, match='no events'):
    anomalies.inject_anomalies(table, [10**9], PARAMS, seed=0)
