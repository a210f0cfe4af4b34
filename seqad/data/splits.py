"""Train / validation / test splits without leakage, and a check for leaked windows.

Two modes (`config.data.split_by`):
  user  disjoint users: every user (or, for session logs with user ids, every
        owner with all their sessions) lands in exactly one split;
  time  earlier days train, later days validate and test: cut points at local
        midnights chosen so the splits hold about the given shares of events.

Whatever the mode, vocabularies are fitted on the training split only (see
`seqad.data.dataset`), and `duplicate_windows` counts validation and test windows
whose tokens equal a training window's: memorisable leakage across splits.
"""

import numpy as np

from seqad.data import events
from seqad.data import windows as windows_lib

MODES = ('user', 'time')


def split_by_user(table: events.EventTable, fractions: tuple[float, float, float],
                  seed: int, owner_of: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[events.EventTable, ...]:
  """Three tables of disjoint users (or disjoint owners of sessions).

  Args:
    table: events sorted by (user, timestamp).
    fractions: shares of users (owners) in train / validation / test.
    seed: the permutation seed.
    owner_of: (sequence ids ascending, owner of each), when the table's sequences
      are sessions of users: all sessions of an owner go to the same split.
  """
  if owner_of is None:
    parts = windows_lib.split_users(table.users(), fractions, seed)
    return tuple(table.select_users(users) for users in parts)
  sequence_ids, owner = owner_of
  owners = owner[np.searchsorted(sequence_ids, table.user)]
  parts = windows_lib.split_users(np.unique(owners), fractions, seed)
  return tuple(table.take(np.isin(owners, users)) for users in parts)


def owner_map(table: events.EventTable, owners: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
  """(sequence ids ascending, owner of each) from [events] owners of a table."""
  sequence_ids, first = np.unique(table.user, return_index=True)
  return sequence_ids, owners[first]


def time_cuts(timestamp: np.ndarray, fractions: tuple[float, float, float],
              utc_offset_hours: int) -> tuple[int, int]:
  """Two cut times [train < cut1 <= validation < cut2 <= test], Unix seconds.

  Each cut is the local midnight nearest to the event-count quantile, unless that
  empties a split with a positive share; then the exact quantile time is used.
  """
  fractions = np.asarray(fractions, dtype=np.float64)
  if fractions.shape != (3,) or np.any(fractions < 0) or abs(fractions.sum() - 1) > 1e-6:
    raise ValueError(f'fractions must be 3 non-negative numbers summing to 1, '
                     f'got {tuple(fractions)}.')
  if not len(timestamp):
    return 0, 0
  quantiles = np.quantile(timestamp, np.cumsum(fractions)[:2], method='lower')
  offset = utc_offset_hours * 3600
  day = 86400
  midnights = ((quantiles + offset + day // 2) // day) * day - offset
  cuts = []
  for share, quantile, midnight in zip(fractions[:2], quantiles, midnights):
    cut = int(midnight)
    before = np.count_nonzero(timestamp < cut)
    previous = cuts[-1] if cuts else None
    if (share > 0 and before == 0) or (previous is not None and cut < previous):
      cut = int(quantile) + 1
    cuts.append(cut)
  if fractions[2] > 0 and np.count_nonzero(timestamp >= cuts[1]) == 0:
    cuts[1] = int(quantiles[1])
  return cuts[0], cuts[1]


def split_by_time(table: events.EventTable, fractions: tuple[float, float, float],
                  utc_offset_hours: int) -> tuple[tuple[events.EventTable, ...],
                                                  tuple[int, int]]:
  """Three tables of earlier to later events, and the two cut times."""
  first, second = time_cuts(table.timestamp, fractions, utc_offset_hours)
  parts = (table.take(table.timestamp < first),
           table.take((table.timestamp >= first) & (table.timestamp < second)),
           table.take(table.timestamp >= second))
  return parts, (first, second)


def window_hashes(windows: windows_lib.Windows) -> np.ndarray:
  """[windows] uint64 hash of each window's tokens and mask.

  Equal windows get equal hashes; unequal ones collide with chance about 2**-64.
  """
  rng = np.random.default_rng(20240521)
  total = np.zeros(len(windows), dtype=np.uint64)
  with np.errstate(over='ignore'):
    for field in sorted(windows.tokens):
      values = windows.tokens[field].astype(np.uint64) + np.uint64(1)
      weights = rng.integers(1, 2**63, size=windows.length, dtype=np.uint64) | 1
      mixed = windows_lib._mix64((values * weights[None, :]).view(np.int64))
      total += mixed.sum(axis=1, dtype=np.uint64)
      total = windows_lib._mix64(total.view(np.int64))
    total += windows.mask.sum(axis=1).astype(np.uint64)
  return total


def duplicate_windows(split_windows: dict[str, windows_lib.Windows]) -> dict[str, int]:
  """Windows of each later split whose tokens equal a window of an earlier split.

  Returns:
    'validation_in_train', 'test_in_train', 'test_in_validation' -> counts.
  """
  hashes = {name: window_hashes(w) for name, w in split_windows.items()}
  counts = {}
  for later, earlier in (('validation', 'train'), ('test', 'train'),
                         ('test', 'validation')):
    counts[f'{later}_in_{earlier}'] = int(np.count_nonzero(
        np.isin(hashes[later], hashes[earlier])))
  return counts
