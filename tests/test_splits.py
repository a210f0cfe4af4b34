"""Splits by user and by time are disjoint; vocabularies see training data only."""

import numpy as np
import pytest

from configs import smoke
from seqad.data import dataset
from seqad.data import events
from seqad.data import splits
from seqad.data import windows

DAY = 86400
MIDNIGHT = 1700006400  # 2023-11-15 00:00 UTC.


def _log(num_users=40, days=10, seed=0):
  """Users with events on every day; category = 100 * day + user % 5."""
  rng = np.random.default_rng(seed)
  user = np.repeat(np.arange(1, num_users + 1), days * 3)
  day = np.tile(np.repeat(np.arange(days), 3), num_users)
  timestamp = MIDNIGHT + day * DAY + rng.integers(3600, 20 * 3600, len(user))
  return events.EventTable.from_columns(
      user=user, timestamp=timestamp, event_type=rng.integers(0, 4, len(user)),
      item=rng.integers(0, 50, len(user)), category=100 * day + user % 5).sort()


def test_user_split_is_disjoint_and_covers_every_user():
  table = _log()
  parts = splits.split_by_user(table, (0.6, 0.2, 0.2), seed=1)
  users = [set(part.users().tolist()) for part in parts]
  assert [len(u) for u in users] == [24, 8, 8]
  assert not users[0] & users[1] and not users[0] & users[2] and not users[1] & users[2]
  assert sum(len(part) for part in parts) == len(table)


def test_user_split_keeps_an_owners_sessions_together():
  table = _log(num_users=30)
  owners = (table.user + 2) // 3  # Sessions 1-2 owned by 1, 3-5 by 2, ...
  owner_of = splits.owner_map(table, owners)
  parts = splits.split_by_user(table, (0.6, 0.2, 0.2), seed=0, owner_of=owner_of)
  owner_sets = [set(((part.user + 2) // 3).tolist()) for part in parts]
  assert not owner_sets[0] & owner_sets[1] and not owner_sets[0] & owner_sets[2]
  assert not owner_sets[1] & owner_sets[2]
  assert sum(len(part) for part in parts) == len(table)


def test_time_split_cuts_at_local_midnights_and_is_disjoint_in_time():
  table = _log()
  parts, (first, second) = splits.split_by_time(table, (0.6, 0.2, 0.2),
                                                utc_offset_hours=0)
  assert (first, second) == (MIDNIGHT + 6 * DAY, MIDNIGHT + 8 * DAY)
  train, validation, test = parts
  assert train.timestamp.max() < first <= validation.timestamp.min()
  assert validation.timestamp.max() < second <= test.timestamp.min()
  assert sum(len(part) for part in parts) == len(table)
  # China time moves the midnights 8 hours earlier.
  china = splits.time_cuts(table.timestamp, (0.6, 0.2, 0.2), utc_offset_hours=8)
  assert china == (first - 8 * 3600, second - 8 * 3600)
  with pytest.raises(ValueError, match='summing to 1'):
    splits.time_cuts(table.timestamp, (0.5, 0.2, 0.2), 0)


def test_one_day_of_data_falls_back_to_exact_quantiles():
  timestamp = MIDNIGHT + np.arange(100) * 60
  first, second = splits.time_cuts(timestamp, (0.6, 0.2, 0.2), 0)
  assert np.count_nonzero(timestamp < first) == 60
  assert np.count_nonzero(timestamp >= second) == 20


def test_duplicate_windows_across_splits_are_counted():
  vocab = windows.Vocabulary(categories=np.array([100, 101]))
  table = _log(num_users=6, days=1)
  made = windows.make_windows(table, vocab, length=3)
  same = made.take(np.array([0, 1]))
  counts = splits.duplicate_windows({'train': made, 'validation': same,
                                     'test': made.take(np.array([2, 0]))})
  assert counts == {'validation_in_train': 2, 'test_in_train': 2,
                    'test_in_validation': 1}
  hashes = splits.window_hashes(made)
  tokens = np.concatenate([made.tokens[f] for f in sorted(made.tokens)], axis=1)
  assert len(np.unique(hashes)) == len(np.unique(tokens, axis=0))


def _csv_config(tmp_path, split_by):
  table = _log()
  path = tmp_path / 'log.csv'
  lines = [f'{u},{t},{e},{i},{c}' for u, t, e, i, c in zip(
      table.user, table.timestamp, table.event_type, table.item, table.category)]
  path.write_text('user,time,event,item,category\n' + '\n'.join(lines) + '\n')
  config = smoke.get_config()
  config.data.source, config.data.path = 'csv', str(path)
  config.data.cache_dir = 'none'
  config.data.table.columns.update(user='user', time='time', event='event', item='item',
                                   category='category')
  config.data.table.event_map = '0:view,1:cart,2:fav,3:buy'
  config.data.split_by = split_by
  config.data.utc_offset_hours = 0
  config.data.window_length = 8
  config.data.min_events = 2
  config.data.max_categories = 1000
  config.data.item_encoding, config.data.max_items = 'vocab', 100
  config.data.min_item_count = 1
  return config, table


@pytest.mark.parametrize('split_by', ['user', 'time'])
def test_build_fits_vocabularies_on_the_training_split_only(tmp_path, split_by):
  config, table = _csv_config(tmp_path, split_by)
  data = dataset.build(config)
  if split_by == 'user':
    train = splits.split_by_user(table, tuple(config.data.split), config.seed)[0]
  else:
    cut = data.report['time_cuts'][0]
    assert cut == MIDNIGHT + 6 * DAY
    train = table.take(table.timestamp < cut)
  assert data.vocab.categories.tolist() == np.unique(train.category).tolist()
  assert data.vocab.items.tolist() == np.unique(train.item).tolist()
  # Categories of later days never reach a time split's vocabulary.
  if split_by == 'time':
    assert data.vocab.categories.max() < 600
  assert data.vocab.sizes()['item'] == len(data.vocab.items) + 1
  assert set(data.report['duplicate_windows']) == {
      'validation_in_train', 'test_in_train', 'test_in_validation'}
  assert data.report['events_profile']['users'] == 40
