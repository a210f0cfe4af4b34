"""Bring your own labels: a labels file marks sequences (and events) as anomalous.

The file is a CSV with a header and the columns

  id         the sequence's id in the log: the user id, or the session id of a
             session log (integers, or strings when the log's ids are strings)
  label      0 / 1, or normal / anomalous (also false / true, anomaly)
  kind       optional: the anomaly's kind, a name of `events.ANOMALY_KINDS`;
             empty or absent gives 'labelled'
  positions  optional: the anomalous events, as 0-based positions in the
             sequence's time order separated by ';' (e.g. '3;4;7'); empty marks
             every event of an anomalous sequence

Events then carry their kind, and windows get labels from their events as for
injected anomalies. Ids the file does not name are left out of the benchmark,
unless `unlabelled_normal` says they are normal.
"""

import os

from absl import logging
import numpy as np
import pandas as pd
import pyarrow as pa

from seqad.data import events
from seqad.data import tabular

REQUIRED = ('id', 'label')
_TRUE = ('1', 'true', 'anomalous', 'anomaly', 'yes')
_FALSE = ('0', 'false', 'normal', 'no')


def _error(path: str, row: int, problem: str) -> ValueError:
  return ValueError(f'{path}, line {row + 2}: {problem}')


def read_labels(path: str | os.PathLike, string_ids: bool = False) -> pd.DataFrame:
  """Reads and checks a labels file.

  Returns:
    A frame with one row per id: 'id' int64, 'anomalous' bool, 'kind' int8 index of
    `events.ANOMALY_KINDS` (0 for normal rows), 'positions' str ('' for all).

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: naming the file and line, for a missing column, an unparseable id or
      label, an unknown kind, a repeated id or a bad position list.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Labels file not found: {path}')
  if os.path.getsize(path) == 0:
    raise ValueError(f'{path}: the labels file is empty; expected a header with '
                     f'{",".join(REQUIRED)}[,kind][,positions].')
  frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
  missing = [name for name in REQUIRED if name not in frame.columns]
  if missing:
    raise ValueError(f'{path}, line 1: column(s) {missing} missing from the header '
                     f'{list(frame.columns)}; expected id,label[,kind][,positions].')

  if string_ids:
    ids, valid = tabular._hash_strings(pa_array(frame['id']))
  else:
    ids, valid = tabular.parse_integers(pa_array(frame['id']))
  if not np.all(valid):
    row = int(np.argmin(valid))
    raise _error(path, row, f'id {frame["id"].iloc[row]!r} is not an integer.')
  repeated = pd.Series(ids).duplicated().to_numpy()
  if np.any(repeated):
    row = int(np.argmax(repeated))
    raise _error(path, row, f'id {frame["id"].iloc[row]!r} is labelled twice.')

  text = frame['label'].str.strip().str.lower()
  anomalous = text.isin(_TRUE).to_numpy()
  bad = ~(anomalous | text.isin(_FALSE).to_numpy())
  if np.any(bad):
    row = int(np.argmax(bad))
    raise _error(path, row, f'label {frame["label"].iloc[row]!r} is not one of '
                            f'{_FALSE + _TRUE}.')

  kind_names = frame.get('kind', pd.Series([''] * len(frame))).str.strip()
  kind_names = kind_names.where(kind_names != '', 'labelled')
  known = kind_names.isin(events.ANOMALY_KINDS[1:]).to_numpy()
  if np.any(anomalous & ~known):
    row = int(np.argmax(anomalous & ~known))
    raise _error(path, row, f'kind {kind_names.iloc[row]!r} is not one of '
                            f'{events.ANOMALY_KINDS[1:]}.')
  kind = np.where(anomalous, pd.Index(events.ANOMALY_KINDS).get_indexer(kind_names), 0)

  positions = frame.get('positions', pd.Series([''] * len(frame))).str.strip()
  listed = positions.str.replace(';', '', regex=False).str.replace(' ', '', regex=False)
  bad = (listed != '') & ~listed.str.fullmatch(r'[0-9]*').to_numpy()
  if np.any(bad):
    row = int(np.argmax(bad))
    raise _error(path, row, f'positions {positions.iloc[row]!r} are not 0-based event '
                            f'positions separated by ";".')
  return pd.DataFrame({'id': ids, 'anomalous': anomalous, 'kind': kind.astype(np.int8),
                       'positions': positions.to_numpy()})


def pa_array(series: pd.Series) -> pa.Array:
  return pa.array(series.to_numpy(dtype=object), type=pa.string())


def apply_labels(table: events.EventTable, labels: pd.DataFrame,
                 unlabelled_normal: bool) -> tuple[events.EventTable, dict]:
  """Sets each event's kind from the labels; leaves out unlabelled sequences.

  Args:
    table: events sorted by (sequence id, timestamp), all kinds 0.
    labels: from `read_labels`.
    unlabelled_normal: keep sequences the labels do not name, as normal.

  Returns:
    The labelled table and a report of the counts.
  """
  users, first_row, counts = np.unique(table.user, return_index=True,
                                       return_counts=True)
  index = pd.Index(users).get_indexer(labels['id'].to_numpy())
  present = index >= 0
  report = {'labelled_ids': int(len(labels)), 'ids_not_in_data': int(np.sum(~present)),
            'anomalous_sequences': int(labels['anomalous'][present].sum())}

  kind = np.zeros(len(table), dtype=np.int8)
  rows = labels[present & labels['anomalous'].to_numpy()]
  sequence = index[present & labels['anomalous'].to_numpy()]
  whole = (rows['positions'] == '').to_numpy()
  # Whole sequences: every event of the sequence.
  lengths = counts[sequence[whole]]
  starts = first_row[sequence[whole]]
  every = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
  kind[every] = np.repeat(rows['kind'].to_numpy()[whole], lengths)
  # Listed positions: one event each.
  listed = rows[~whole]
  exploded = listed['positions'].str.split(';').explode()
  exploded = exploded[exploded.str.strip() != '']
  owner = pd.Series(np.arange(len(listed)), index=listed.index)[exploded.index].to_numpy()
  position = exploded.astype(np.int64).to_numpy()
  seq = sequence[~whole][owner]
  inside = position < counts[seq]
  report['positions_outside_sequence'] = int(np.sum(~inside))
  kind[first_row[seq[inside]] + position[inside]] = listed['kind'].to_numpy()[owner[inside]]

  labelled = np.zeros(len(users), dtype=bool)
  labelled[index[present]] = True
  report['unlabelled_sequences'] = int(np.sum(~labelled))
  table = events.EventTable.from_columns(**{**table.columns(), 'kind': kind})
  if not unlabelled_normal and not np.all(labelled):
    table = table.select_users(users[labelled])
    report['unlabelled_left_out'] = True
    logging.info('Labels: %d unlabelled sequences left out (set '
                 'unlabelled_normal to count them as normal).', np.sum(~labelled))
  else:
    report['unlabelled_left_out'] = False
  logging.info('Labels: %s', report)
  return table, report
