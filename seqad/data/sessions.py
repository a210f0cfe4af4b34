"""Sequences of a sorted event table: whole user histories or inactivity sessions.

A table sorted by (user, timestamp) is a run of sequences. With unit 'user' each
user's history is one sequence (for logs whose `user` column is the file's own
session id, such as DIGINETICA or YOOCHOOSE, that is the file's session). With unit
'session' a user's history is cut wherever the user was idle for more than
`gap_seconds` (30 minutes by default, the usual web-analytics convention).
"""

import numpy as np

from seqad.data import events

UNITS = ('user', 'session')
DEFAULT_GAP_SECONDS = 30 * 60


def sequence_starts(table: events.EventTable, unit: str = 'user',
                    gap_seconds: int = DEFAULT_GAP_SECONDS) -> np.ndarray:
  """[events] bool, True at the first event of each sequence.

  Args:
    table: events sorted by (user, timestamp).
    unit: 'user' (one sequence per user) or 'session' (cut at inactivity gaps).
    gap_seconds: with unit 'session', a gap longer than this starts a new session.
  """
  if unit not in UNITS:
    raise ValueError(f'unit must be one of {UNITS}, got {unit!r}.')
  if gap_seconds <= 0:
    raise ValueError(f'gap_seconds must be positive, got {gap_seconds}.')
  starts = np.ones(len(table), dtype=bool)
  if len(table) > 1:
    np.not_equal(table.user[1:], table.user[:-1], out=starts[1:])
    if unit == 'session':
      starts[1:] |= (table.timestamp[1:] - table.timestamp[:-1]) > gap_seconds
  return starts


def sequence_lengths(starts: np.ndarray) -> np.ndarray:
  """[sequences] int64 events per sequence, from `sequence_starts`."""
  first = np.flatnonzero(starts)
  return np.diff(np.append(first, len(starts)))
