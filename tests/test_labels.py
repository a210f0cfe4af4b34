"""Bring your own labels: a labels file sets sequence and event kinds."""

import numpy as np
import pandas as pd
import pytest

from configs import smoke
from seqad.data import dataset
from seqad.data import events
from seqad.data import labels
from seqad.data import tabular

BASE = 1700000000


def _table():
  """Users 10 (4 events), 20 (3 events), 30 (2 events), 40 (5 events)."""
  user = [10] * 4 + [20] * 3 + [30] * 2 + [40] * 5
  return events.EventTable.from_columns(
      user=user, timestamp=BASE + np.arange(len(user)) * 60,
      event_type=np.zeros(len(user)), item=np.arange(len(user)),
      category=np.ones(len(user)))


def _write(tmp_path, text, name='labels.csv'):
  path = tmp_path / name
  path.write_text(text)
  return path


def test_whole_sequences_positions_and_kinds(tmp_path):
  path = _write(tmp_path, 'id,label,kind,positions\n'
                          '10,1,click_bot,\n'
                          '20,anomalous,,0;2\n'
                          '30,normal,,\n'
                          '99,1,,\n')
  table, report = labels.apply_labels(_table(), labels.read_labels(path),
                                      unlabelled_normal=False)
  click_bot, labelled = events.kind_index('click_bot'), events.kind_index('labelled')
  assert table.users().tolist() == [10, 20, 30]  # 40 is unlabelled: left out.
  assert table.kind.tolist() == [click_bot] * 4 + [labelled, 0, labelled] + [0, 0]
  assert report['ids_not_in_data'] == 1 and report['unlabelled_sequences'] == 1
  assert report['anomalous_sequences'] == 2

  kept, _ = labels.apply_labels(_table(), labels.read_labels(path),
                                unlabelled_normal=True)
  assert kept.users().tolist() == [10, 20, 30, 40]
  assert kept.kind[kept.user == 40].tolist() == [0] * 5


def test_positions_past_the_sequence_are_counted(tmp_path):
  path = _write(tmp_path, 'id,label,positions\n30,1,1;7\n')
  table, report = labels.apply_labels(_table(), labels.read_labels(path), True)
  assert report['positions_outside_sequence'] == 1
  assert table.kind[table.user == 30].tolist() == [0, events.kind_index('labelled')]


def test_string_ids_hash_like_the_loader(tmp_path):
  hashed, _ = tabular._hash_strings(labels.pa_array(pd.Series(['alice'])))
  path = _write(tmp_path, 'id,label\nalice,1\n')
  frame = labels.read_labels(path, string_ids=True)
  assert frame['id'].tolist() == hashed.tolist()


@pytest.mark.parametrize('text,problem', [
    ('user,label\n1,1\n', r"line 1: column\(s\) \['id'\] missing"),
    ('id,label\n1,1\n2,maybe\n', "line 3: label 'maybe'"),
    ('id,label\n1,1\nx,0\n', "line 3: id 'x' is not an integer"),
    ('id,label,kind\n1,1,fraud\n', "line 2: kind 'fraud'"),
    ('id,label\n1,1\n1,0\n', 'line 3: id .1. is labelled twice'),
    ('id,label,positions\n1,1,3-4\n', "line 2: positions '3-4'"),
])
def test_bad_labels_files_name_file_and_line(tmp_path, text, problem):
  with pytest.raises(ValueError, match=problem) as error:
    labels.read_labels(_write(tmp_path, text))
  assert 'labels.csv' in str(error.value) and '\n' not in str(error.value)
  with pytest.raises(FileNotFoundError):
    labels.read_labels(tmp_path / 'none.csv')
  with pytest.raises(ValueError, match='empty'):
    labels.read_labels(_write(tmp_path, '', 'empty.csv'))


def test_build_with_labels_injects_nothing_and_keeps_anomalies_out_of_training(
    tmp_path):
  rng = np.random.default_rng(0)
  num_users, per_user = 60, 12
  user = np.repeat(np.arange(1, num_users + 1), per_user)
  timestamp = BASE + np.tile(np.arange(per_user) * 100, num_users)
  log = tmp_path / 'log.csv'
  log.write_text('u,t,i\n' + ''.join(
      f'{u},{t},{i}\n' for u, t, i in zip(user, timestamp,
                                        rng.integers(0, 9, len(user)))))
  bad_users = np.arange(1, num_users + 1, 4)
  labels_path = _write(tmp_path, 'id,label\n' + ''.join(
      f'{u},{int(u in bad_users)}\n' for u in range(1, num_users + 1)))

  config = smoke.get_config()
  config.data.source, config.data.path, config.data.cache_dir = 'csv', str(log), 'none'
  config.data.table.columns.update(user='u', time='t', item='i')
  config.data.labels_path = str(labels_path)
  config.data.window_length, config.data.min_events = 12, 1
  data = dataset.build(config)

  labelled = events.kind_index('labelled')
  assert np.all(data.train.kind == 0)
  for split in (data.validation, data.test):
    assert set(np.unique(split.kind).tolist()) <= {0, labelled}
  windows = data.report['train_windows']['labelled'] + sum(
      data.report[f'{s}_windows']['labelled'] for s in ('validation', 'test'))
  assert windows == len(bad_users)  # One window per user; nothing injected.
  assert data.report['labels']['anomalous_sequences'] == len(bad_users)
