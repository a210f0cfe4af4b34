"""Describes an event table for the data report: sizes, event mix, lengths, gaps.

Everything here is an aggregate; no user id appears in the output.
"""

from absl import logging
import numpy as np

from seqad.data import events
from seqad.data import sessions

_PERCENTILES = (0, 10, 25, 50, 75, 90, 99, 100)


def _distribution(values: np.ndarray) -> dict:
  if not len(values):
    return {'count': 0}
  points = np.percentile(values, _PERCENTILES)
  return {'count': int(len(values)), 'mean': float(np.mean(values)),
          **{f'p{p}': float(v) for p, v in zip(_PERCENTILES, points)}}


def describe(table: events.EventTable, event_types: list[str],
             session_gap_seconds: int = sessions.DEFAULT_GAP_SECONDS) -> dict:
  """Aggregate statistics of a table sorted by (user, timestamp).

  Returns:
    events, users, sessions (cut at `session_gap_seconds`), event_mix (type name ->
    count), events_per_user and events_per_session distributions, and the
    distribution of seconds between a user's consecutive events.
  """
  user_starts = sessions.sequence_starts(table, 'user')
  session_starts = sessions.sequence_starts(table, 'session', session_gap_seconds)
  mix = np.bincount(table.event_type, minlength=len(event_types))
  gaps = np.diff(table.timestamp)[~user_starts[1:]] if len(table) else np.zeros(0)
  return {
      'events': int(len(table)),
      'users': int(user_starts.sum()),
      'sessions': int(session_starts.sum()),
      'event_mix': {name: int(count) for name, count in zip(event_types, mix)},
      'events_per_user': _distribution(sessions.sequence_lengths(user_starts)),
      'events_per_session': _distribution(sessions.sequence_lengths(session_starts)),
      'gap_seconds': _distribution(gaps),
  }


def log_summary(report: dict) -> None:
  """A few log lines a user reads before trusting the run."""
  load = report.get('load', {})
  if load:
    dropped = {k: v for k, v in load.get('dropped', {}).items() if v}
    repaired = {k: v for k, v in load.get('repaired', {}).items() if v}
    logging.info('Data: %s rows read, %s kept; dropped %s; repaired %s.',
                 load.get('rows_read'), load.get('rows_kept'), dropped or 'none',
                 repaired or 'none')
  stats = report.get('events_profile', {})
  if stats:
    logging.info('Data: %d events, %d users, %d sessions; event mix %s; median '
                 '%.0f events per user, median gap %.0f s.', stats['events'],
                 stats['users'], stats['sessions'], stats['event_mix'],
                 stats['events_per_user'].get('p50', 0),
                 stats['gap_seconds'].get('p50', 0))
  if 'duplicate_windows' in report:
    logging.info('Data: windows equal to a window of an earlier split: %s.',
                 report['duplicate_windows'])
