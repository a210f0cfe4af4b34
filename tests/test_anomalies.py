"""Tests of the labelled anomaly injectors."""

import dataclasses
import os

import numpy as np
import pytest

from seqad.data import anomalies
from seqad.data import events
from seqad.data import simulator
from seqad.data import taobao

PARAMS = anomalies.AnomalyParams(user_fraction=0.1)
LOCAL_OFFSET = 8 * 3600


@pytest.fixture(scope='module')
def table():
  return simulator.simulate(simulator.default_params(num_users=200), seed=0)


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
  # Only the order anomaly rewrites rows; every other genuine row stays as it was.
  rewritten = injected.take(injected.kind == events.kind_index('order_anomaly'))
  untouched = table.take(~np.isin(table.user, rewritten.users()))
  np.testing.assert_array_equal(np.isin(genuine.user, rewritten.users()).sum() +
                                len(rewritten), (np.isin(table.user,
                                                         rewritten.users())).sum())
  for name, column in untouched.columns().items():
    np.testing.assert_array_equal(
        getattr(genuine.take(~np.isin(genuine.user, rewritten.users())), name), column,
        err_msg=name)


def test_victims_are_disjoint_candidates(injected, candidates):
  expected = round(PARAMS.user_fraction * len(candidates))
  seen = set()
  for name in PARAMS.kinds:
    segments = _segments(injected, name)
    assert len(segments) == expected
    if name != 'order_anomaly':  # a stretch of the victim's own, maybe shorter
      assert all(len(s) == PARAMS.segment_length for s in segments.values())
    assert set(segments) <= set(candidates.tolist())
    assert not seen & set(segments)
    seen |= set(segments)


def test_click_bot_views_few_items_at_a_steady_fast_pace(injected):
  for segment in _segments(injected, 'click_bot').values():
    assert np.all(segment.event_type == events.VIEW)
    assert len(np.unique(segment.item)) <= PARAMS.bot_max_items
    assert len(np.unique(segment.category)) == 1
    gaps = np.diff(segment.timestamp)
    assert gaps.min() >= 1
    assert gaps.max() <= 3 * PARAMS.bot_gap_seconds
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

  params = anomalies.AnomalyParams(
      kinds=('click_bot', 'order_brushing', 'account_takeover'), user_fraction=0.2,
      segment_length=16)
  out = anomalies.inject_anomalies(table, table.users(), params, seed=0)
  assert out.is_sorted()
  assert len(out) == len(table) + 3 * 16
  counts = np.bincount(out.kind, minlength=len(events.ANOMALY_KINDS))
  np.testing.assert_array_equal(counts[1:], [16, 16, 16] + [0] * (len(counts) - 4))
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
  three = ('click_bot', 'order_brushing', 'account_takeover')
  params = anomalies.AnomalyParams(kinds=three, user_fraction=0.06)
  assert anomalies.victim_counts(100, params) == [6, 6, 6]
  assert anomalies.victim_counts(2, params) == [1, 1, 0]
  assert anomalies.victim_counts(0, anomalies.AnomalyParams(user_fraction=0.0)) == [
      0] * len(anomalies.KINDS)


def test_zero_fraction_returns_the_table(table):
  out = anomalies.inject_anomalies(
      table, [], anomalies.AnomalyParams(user_fraction=0.0), seed=0)
  assert len(out) == len(table)


def test_bad_input_raises(table):
  with pytest.raises(ValueError, match='Unknown anomaly kind'):
    anomalies.AnomalyParams(kinds=('click_bot', 'spam'))
  with pytest.raises(ValueError, match='user_fraction'):
    anomalies.AnomalyParams(user_fraction=0.5)
  with pytest.raises(ValueError, match='camouflage'):
    anomalies.AnomalyParams(camouflage=1.5)
  with pytest.raises(ValueError, match='no candidate users'):
    anomalies.inject_anomalies(table, [], PARAMS, seed=0)
  with pytest.raises(ValueError, match='no events'):
    anomalies.inject_anomalies(table, [10**9], PARAMS, seed=0)


def test_collusive_brushing_groups_buy_the_same_items_in_the_same_hour(injected):
  segments = _segments(injected, 'order_brushing')
  by_shop = {}
  for user, segment in segments.items():
    bought = tuple(np.unique(segment.item[segment.event_type == events.BUY]))
    by_shop.setdefault(bought, []).append(segment.timestamp[0])
  # 10 victims in groups of 3: three shops shared by 3 accounts, one solo.
  sizes = sorted(len(starts) for starts in by_shop.values())
  assert sizes == [1, 3, 3, 3]
  for starts in by_shop.values():
    assert max(starts) - min(starts) < PARAMS.brushing_group_window_seconds


def test_scraper_sweeps_new_items_in_id_order(injected):
  for segment in _segments(injected, 'scraper').values():
    assert np.all(segment.event_type == events.VIEW)
    assert len(np.unique(segment.item)) == len(segment)
    # Within a category, items come in ascending id order; categories change
    # often, and each category is visited in one run.
    runs = np.flatnonzero(np.diff(segment.category) != 0)
    assert len(runs) + 1 == len(np.unique(segment.category)) >= 8
    same = np.diff(segment.category) == 0
    assert np.all(np.diff(segment.item)[same] > 0)


def test_cart_farming_acts_on_unviewed_items_and_never_buys(injected):
  for segment in _segments(injected, 'cart_farming').values():
    assert not np.any(segment.event_type == events.BUY)
    acted = np.isin(segment.event_type, [events.CART, events.FAV])
    assert acted.mean() > 0.6
    assert not np.isin(segment.item[acted], segment.item[~acted]).any()


def test_order_anomaly_keeps_counts_and_times_but_not_order(table, injected):
  for user, segment in _segments(injected, 'order_anomaly').items():
    own, after = table.select_users([user]), injected.select_users([user])
    # The user's events are exactly the same rows, as a multiset, at the same times.
    np.testing.assert_array_equal(after.timestamp, own.timestamp)
    for column in (after, own):
      assert len(column) == len(own)
    key = lambda t: sorted(zip(t.event_type.tolist(), t.item.tolist(),
                               t.category.tolist()))
    assert key(after) == key(own)
    np.testing.assert_array_equal(np.bincount(after.event_type, minlength=4),
                                  np.bincount(own.event_type, minlength=4))
    assert len(segment) == len(own)  # The whole history, block by block.
    assert np.any(own.event_type != events.VIEW)
    # ... but the order changed: some action now comes before a view it followed.
    assert not np.array_equal(after.event_type, own.event_type) or not np.array_equal(
        after.item, own.item)


# A statistic per kind, and whether camouflage should raise it (+1) or lower it
# (-1) towards normal traffic.
def _median_gap(segments, table):
  return np.median([np.median(np.diff(s.timestamp)) for s in segments.values()])


def _share(types):
  return lambda segments, table: np.mean(
      [np.isin(s.event_type, types).mean() for s in segments.values()])


def _distinct_items(segments, table):
  return np.mean([len(np.unique(s.item)) for s in segments.values()])


def _own_category_share(segments, table):
  return np.mean([np.isin(s.category, table.select_users([u]).category).mean()
                  for u, s in segments.items()])


def _moved_share(segments, table):
  moved = []
  for user, segment in segments.items():
    own = table.select_users([user])
    original = own.take(np.isin(own.timestamp, segment.timestamp))
    moved.append(np.mean(original.item[:len(segment)] != segment.item))
  return np.mean(moved)


MONOTONE = [
    ('click_bot', _median_gap, +1), ('click_bot', _distinct_items, +1),
    ('order_brushing', _share([events.BUY]), -1), ('order_brushing', _median_gap, +1),
    ('account_takeover', _median_gap, +1), ('account_takeover', _own_category_share, +1),
    ('scraper', _median_gap, +1), ('scraper', _distinct_items, -1),
    ('cart_farming', _share([events.CART, events.FAV]), -1),
    ('cart_farming', _median_gap, +1),
    ('order_anomaly', _moved_share, -1),
]


@pytest.fixture(scope='module')
def camouflage_levels(table, candidates):
  levels = (0.0, 0.25, 0.5, 0.75, 1.0)
  return {c: anomalies.inject_anomalies(
      table, candidates, dataclasses.replace(PARAMS, camouflage=c), seed=3)
          for c in levels}


@pytest.mark.parametrize('kind,statistic,direction', MONOTONE,
                         ids=[f'{k}-{s.__name__}' for k, s, _ in MONOTONE])
def test_camouflage_moves_each_kind_towards_normal(table, camouflage_levels, kind,
                                                   statistic, direction):
  values = [statistic(_segments(out, kind), table)
            for out in camouflage_levels.values()]
  steps = direction * np.diff(values)
  assert np.all(steps >= 0), values
  assert steps.sum() > 0, values

  # At full camouflage the pace is that of genuine sessions (within a factor 2).
  if statistic is _median_gap:
    profile = anomalies.NormalProfile.from_table(table, PARAMS.segment_length, 8)
    assert profile.gap_median / 2 < values[-1] < 2 * profile.gap_median


REAL = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                    'taobao_userbehavior', 'UserBehavior_head_814users.csv')


def test_every_kind_injects_into_real_taobao_users():
  if not os.path.exists(REAL):
    pytest.skip(f'real data slice not found at {REAL}')
  real, _ = taobao.load_taobao(REAL)
  params = anomalies.AnomalyParams(user_fraction=0.05, camouflage=0.5)
  out = anomalies.inject_anomalies(real, real.users(), params, seed=0)
  assert out.is_sorted()
  for name in anomalies.KINDS:
    labelled = out.take(out.kind == events.kind_index(name))
    assert len(labelled.users()) == round(0.05 * len(real.users())), name
    assert set(np.unique(labelled.category)) <= set(np.unique(real.category)) | {
        int(real.category.max()) + 1}
