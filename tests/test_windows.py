"""Tests of user splits, the token vocabulary and windowing."""

import json
from pathlib import Path

import numpy as np
import pytest

from seqad.data import events
from seqad.data import taobao
from seqad.data import windows

SLICE = (Path(__file__).parents[1] / '..' / 'shared' / 'data' / 'taobao_userbehavior' /
         'UserBehavior_head_814users.csv')

# 2017-11-25 00:00 in China (UTC+8), 16:00 UTC.
BASE = 1511539200
HOUR = 3600


def _table(user, timestamp, category=None, kind=None):
  user = np.asarray(user)
  return events.EventTable.from_columns(
      user=user, timestamp=timestamp, event_type=np.arange(len(user)) % 4,
      item=np.arange(len(user)),
      category=np.full(len(user), 5) if category is None else category, kind=kind)


def _example():
  """Users 3 (2 events), 7 (6 events) and 9 (1 event), sorted."""
  user = [3, 3] + [7] * 6 + [9]
  timestamp = [BASE + 10, BASE + 20,
               BASE, BASE, BASE + 1, BASE + 4, BASE + HOUR, BASE + 7 * HOUR + 5,
               BASE + 50]
  category = [5, 6, 5, 5, 6, 7, 5, 5, 8]
  return _table(user, timestamp, category)


def _random_table(seed=0, num_events=500):
  """Events of random users with distinct categories = row index after sorting."""
  rng = np.random.default_rng(seed)
  table = _table(rng.integers(100, 140, num_events),
                 BASE + rng.integers(0, 9 * 24 * HOUR, num_events)).sort()
  return events.EventTable.from_columns(
      **{**table.columns(), 'category': np.arange(len(table))})


def test_gap_buckets_by_hand():
  vocab = windows.Vocabulary(categories=np.array([5, 6]), num_gap_buckets=16)
  gap = windows.encode_events(_example(), vocab)['gap']
  # Gaps of user 7: start, 0 s, 1 s, 3 s, 3596 s, 21605 s -> 1 + floor(log2(1 + gap)).
  assert gap.tolist() == [0, 4, 0, 1, 2, 3, 12, 15, 0]

  clipped = windows.Vocabulary(categories=np.array([5]), num_gap_buckets=8)
  assert windows.encode_events(_example(), clipped)['gap'].tolist() == [
      0, 4, 0, 1, 2, 3, 7, 7, 0]


def test_hour_by_hand():
  table = _example()
  china = windows.Vocabulary(categories=np.array([5]), utc_offset_hours=8)
  utc = windows.Vocabulary(categories=np.array([5]), utc_offset_hours=0)
  assert windows.encode_events(table, china)['hour'].tolist() == [0, 0, 0, 0, 0, 0, 1,
                                                                  7, 0]
  assert windows.encode_events(table, utc)['hour'].tolist() == [16] * 6 + [17, 23, 16]


def test_window_layout_of_example():
  vocab = windows.Vocabulary(categories=np.array([5, 6]))
  result = windows.make_windows(_example(), vocab, length=3, min_events=2)

  # User 9's single-event window is dropped; user 7's gap carries across windows.
  assert len(result) == 3 and result.length == 3
  assert result.user_index.tolist() == [0, 1, 1]
  assert result.mask.tolist() == [[True, True, False], [True] * 3, [True] * 3]
  assert result.tokens['gap'].tolist() == [[0, 4, 0], [0, 1, 2], [3, 12, 15]]
  assert result.tokens['category'].tolist() == [[1, 2, 0], [1, 1, 2], [0, 1, 1]]
  assert result.tokens['event_type'].tolist() == [[0, 1, 0], [2, 3, 0], [1, 2, 3]]
  assert result.kind.tolist() == [0, 0, 0]
  assert all(values.dtype == np.int32 for values in result.tokens.values())
  assert result.event_kind.dtype == np.int8 and result.kind.dtype == np.int8


def test_order_padding_and_no_mixed_users():
  table = _random_table()
  vocab = windows.Vocabulary(categories=np.arange(len(table)))
  result = windows.make_windows(table, vocab, length=8)

  rows = result.tokens['category'] - 1
  assert result.mask.sum() == len(table)
  assert sorted(rows[result.mask].tolist()) == list(range(len(table)))
  for window in range(len(result)):
    mask = result.mask[window]
    real = int(mask.sum())
    assert mask[:real].all() and not mask[real:].any()
    for values in [*result.tokens.values(), result.event_kind]:
      assert not values[window, real:].any()
    # Consecutive rows of one user, which the sorted table holds in time order.
    window_rows = rows[window, :real]
    assert np.all(np.diff(window_rows) == 1)
    assert len(np.unique(table.user[window_rows])) == 1
    assert np.all(np.diff(table.timestamp[window_rows]) >= 0)

  user_of_window = table.user[rows[:, 0]]
  assert np.array_equal(np.unique(table.user)[result.user_index], user_of_window)


def test_unseen_categories_get_the_oov_bucket():
  vocab = windows.Vocabulary(categories=np.array([10, 20, 30]))
  buckets = vocab.category_bucket(np.array([10, 15, 30, 31, -1, 20]))
  assert buckets.tolist() == [1, 0, 3, 0, 0, 2]
  assert buckets.dtype == np.int32
  assert vocab.sizes() == {'event_type': 4, 'category': 4, 'gap': 16, 'hour': 24,
                          'item_relation': 5}


def test_vocabulary_is_fitted_only_from_the_given_table():
  user = [1] * 6 + [2] * 3
  category = [40, 40, 40, 30, 30, 10, 99, 99, 99]
  table = _table(user, BASE + np.arange(9), category)
  train = table.select_users(np.array([1]))

  vocab = windows.fit_vocabulary(train, max_categories=2)
  assert vocab.categories.tolist() == [30, 40]
  assert windows.fit_vocabulary(train, max_categories=10,
                                min_count=2).categories.tolist() == [30, 40]
  # All three tie at count 1; the smaller ids win.
  tied = _table([1, 1, 1], BASE + np.arange(3), [30, 10, 20])
  assert windows.fit_vocabulary(tied, max_categories=2).categories.tolist() == [10, 20]

  result = windows.make_windows(table, vocab, length=9)
  assert result.tokens['category'][1, :3].tolist() == [0, 0, 0]

  restored = windows.Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
  assert restored.to_dict() == vocab.to_dict()


def test_split_users_is_disjoint_covering_and_deterministic():
  users = np.arange(1000, 1100)
  train, val, test = windows.split_users(users, (0.8, 0.1, 0.1), seed=3)
  assert (len(train), len(val), len(test)) == (80, 10, 10)
  assert not set(train) & set(val) and not set(train) & set(test)
  assert not set(val) & set(test)
  assert np.array_equal(np.sort(np.concatenate([train, val, test])), users)

  again = windows.split_users(users[::-1], (0.8, 0.1, 0.1), seed=3)
  assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
  other = windows.split_users(users, (0.8, 0.1, 0.1), seed=4)
  assert not np.array_equal(train, other[0])

  tiny = windows.split_users(np.array([5, 6, 7]), (0.8, 0.1, 0.1), seed=0)
  assert [len(split) for split in tiny] == [1, 1, 1]
  with pytest.raises(ValueError, match='summing to 1'):
    windows.split_users(users, (0.8, 0.1, 0.2), seed=0)


def test_window_labels():
  kinds = np.zeros((5, 10), dtype=np.int8)
  kinds[0, [1, 4, 7]] = events.kind_index('order_brushing')        # 30%
  kinds[1, 5] = events.kind_index('click_bot')                     # 10%
  kinds[3, [0, 1]] = events.kind_index('click_bot')                # 20% + 30%
  kinds[3, [2, 3, 4]] = events.kind_index('account_takeover')
  kinds[4, [0, 1]] = events.kind_index('account_takeover')          # 40%, a tie
  kinds[4, [2, 3]] = events.kind_index('click_bot')
  user = np.repeat(np.arange(5), 10)
  table = _table(user, BASE + np.arange(50), kind=kinds.ravel())
  vocab = windows.Vocabulary(categories=np.array([5]))

  result = windows.make_windows(table, vocab, length=10, label_min_fraction=0.25)
  assert result.kind.tolist() == [2, windows.AMBIGUOUS, 0, 3, 1]
  assert np.array_equal(result.event_kind, kinds)
  counts = result.counts()
  assert {name: count for name, count in counts.items() if count} == {
      'normal': 1, 'click_bot': 1, 'order_brushing': 1, 'account_takeover': 1,
      'ambiguous': 1}
  assert set(counts) == set(events.ANOMALY_KINDS) | {'ambiguous'}
  kept = result.drop_ambiguous()
  assert kept.kind.tolist() == [2, 0, 3, 1]
  assert kept.user_index.tolist() == [0, 2, 3, 4]


def test_unsorted_table_raises():
  table = _table([2, 1], [BASE, BASE])
  vocab = windows.Vocabulary(categories=np.array([5]))
  with pytest.raises(ValueError, match='sorted'):
    windows.make_windows(table, vocab, length=4)


def test_deterministic_and_empty():
  table = _random_table(seed=1)
  vocab = windows.fit_vocabulary(table, max_categories=50)
  first = windows.make_windows(table, vocab, length=16, min_events=3)
  second = windows.make_windows(table, vocab, length=16, min_events=3)
  for field in windows.FIELDS:
    assert np.array_equal(first.tokens[field], second.tokens[field])
  assert np.array_equal(first.mask, second.mask)
  assert np.array_equal(first.user_index, second.user_index)

  empty = windows.make_windows(events.EventTable.empty(), vocab, length=16)
  assert len(empty) == 0 and empty.mask.shape == (0, 16)


def test_real_slice_windows():
  if not SLICE.exists():
    pytest.skip(f'Taobao slice not found at {SLICE} (../shared is not beside the repo).')
  table, _ = taobao.load_taobao(SLICE)
  train, _, _ = windows.split_users(table.users(), (0.8, 0.1, 0.1), seed=0)
  vocab = windows.fit_vocabulary(table.select_users(train), max_categories=1000)
  result = windows.make_windows(table, vocab, length=64)

  assert result.mask.sum() == len(table)
  assert len(np.unique(result.user_index)) == 814
  assert np.count_nonzero(result.tokens['gap'][result.mask] == 0) == 814
  assert result.counts()['normal'] == len(result)


def test_item_relation_marks_new_same_seen_and_repeated():
  table = events.EventTable.from_columns(
      user=[1, 1, 1, 1, 1, 1, 2, 2],
      timestamp=[0, 5, 9, 20, 30, 40, 0, 3],
      event_type=[0, 1, 0, 3, 3, 0, 0, 0],
      item=[7, 7, 8, 7, 7, 9, 7, 7],
      category=[1, 1, 1, 1, 1, 2, 1, 1])
  vocab = windows.fit_vocabulary(table, max_categories=4)
  relation = windows.encode_events(table, vocab)['item_relation']
  new, same, seen = windows.NEW_ITEM, windows.SAME_ITEM, windows.SEEN_ITEM
  same_again, seen_again = windows.SAME_ITEM_REPEATED, windows.SEEN_ITEM_REPEATED
  # view 7, cart 7 (same item), view 8, buy 7 (seen), buy 7 again, view 9; then
  # user 2's first view of item 7 is new although user 1 touched it before.
  assert relation.tolist() == [new, same, new, seen, same_again, new, new, same_again]
  # Viewing item 7 again after item 8 repeats an action on an earlier item.
  table = events.EventTable.from_columns(
      user=[1, 1, 1], timestamp=[0, 5, 9], event_type=[0, 0, 0], item=[7, 8, 7],
      category=[1, 1, 1])
  assert windows.encode_events(table, vocab)['item_relation'].tolist() == [
      new, new, seen_again]


def _one_user(num_events, gaps=None):
  timestamp = BASE + (np.arange(num_events) * 10 if gaps is None else np.cumsum(gaps))
  return _table(np.full(num_events, 4), timestamp, np.arange(num_events) % 3 + 5)


def test_long_histories_are_cut_and_short_ones_padded_down_to_min_events():
  vocab = windows.Vocabulary(categories=np.array([5, 6, 7]))
  table = events.EventTable.concatenate([
      _one_user(150), _table([9, 9], BASE + np.arange(2)), _table([11], [BASE])])
  result = windows.make_windows(table, vocab, length=64, min_events=2)
  # 150 events: 64 + 64 + 22; user 9's two events padded; user 11's one dropped.
  assert result.mask.sum(axis=1).tolist() == [64, 64, 22, 2]
  assert result.user_index.tolist() == [0, 0, 0, 1]


def test_overlapping_windows_slide_by_the_stride():
  vocab = windows.Vocabulary(categories=np.array([5, 6, 7]))
  table = _one_user(11)
  result = windows.make_windows(table, vocab, length=4, stride=3)
  # Starts 0, 3, 6 and 9: the last window reaches the final event, padded.
  assert result.mask.sum(axis=1).tolist() == [4, 4, 4, 2]
  expected = windows.encode_events(table, vocab)['event_type']
  for row, start in enumerate([0, 3, 6, 9]):
    real = result.mask[row]
    assert result.tokens['event_type'][row, real].tolist() == (
        expected[start:start + 4].tolist())
  back_to_back = windows.make_windows(table, vocab, length=4, stride=4)
  default = windows.make_windows(table, vocab, length=4)
  assert np.array_equal(back_to_back.mask, default.mask)
  with pytest.raises(ValueError, match='stride'):
    windows.make_windows(table, vocab, length=4, stride=5)


def test_session_windows_break_at_inactivity_gaps():
  vocab = windows.Vocabulary(categories=np.array([5, 6, 7]))
  # Gaps of 1 min, 31 min (new session), 29 min, 2 h (new session).
  table = _one_user(5, gaps=[0, 60, 31 * 60, 29 * 60, 7200])
  by_session = windows.make_windows(table, vocab, length=8, unit='session')
  assert by_session.mask.sum(axis=1).tolist() == [2, 2, 1]
  by_user = windows.make_windows(table, vocab, length=8)
  assert by_user.mask.sum(axis=1).tolist() == [5]
  longer_gap = windows.make_windows(table, vocab, length=8, unit='session',
                                    session_gap_seconds=3 * 3600)
  assert longer_gap.mask.sum(axis=1).tolist() == [5]
  # The gap token still measures the pause before a session's first event.
  assert by_session.tokens['gap'][1, 0] == 1 + int(np.log2(1 + 31 * 60))


def test_item_buckets_by_vocabulary_or_hash():
  user = [1] * 6 + [2] * 2
  item = [70, 70, 70, 80, 80, 90, 70, 99]
  table = events.EventTable.from_columns(
      user=user, timestamp=BASE + np.arange(8), event_type=np.zeros(8),
      item=item, category=np.full(8, 5))
  train = table.select_users(np.array([1]))
  vocab = windows.fit_vocabulary(train, max_categories=4, item_encoding='vocab',
                                 max_items=10, min_item_count=2)
  assert vocab.items.tolist() == [70, 80] and vocab.sizes()['item'] == 3
  tokens = windows.encode_events(table, vocab)['item']
  assert tokens.tolist() == [1, 1, 1, 2, 2, 0, 1, 0]  # 90 and 99 are out of vocab.

  hashed = windows.fit_vocabulary(train, max_categories=4, item_encoding='hash',
                                  max_items=16)
  assert hashed.sizes()['item'] == 17
  buckets = windows.encode_events(table, hashed)['item']
  assert buckets.min() >= 1 and buckets.max() <= 16
  assert len(set(buckets[[0, 1, 2, 6]].tolist())) == 1  # Same item, same bucket.
  restored = windows.Vocabulary.from_dict(json.loads(json.dumps(hashed.to_dict())))
  assert restored.sizes() == hashed.sizes()
  assert 'item' not in windows.fit_vocabulary(train, max_categories=4).sizes()


def test_dense_and_sorted_lookups_agree():
  rng = np.random.default_rng(0)
  ids = np.unique(rng.integers(0, 5000, 300))
  raw = rng.integers(-10, 6000, 5000)
  dense = windows._lookup(ids, raw)  # Large enough for the dense table.
  index = np.searchsorted(ids, raw)
  found = (index < len(ids)) & (ids[np.minimum(index, len(ids) - 1)] == raw)
  np.testing.assert_array_equal(dense, np.where(found, index + 1, 0))
  far = windows._lookup(ids * 10**9, raw * 10**9)  # Too sparse: binary search.
  np.testing.assert_array_equal(far, dense)
