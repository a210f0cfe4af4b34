"""Why a window was flagged: per-event scores, localisation, streaming prefixes, alerts.

Event scores come from the detector itself where it scores events (the neural
objectives' per-event scores, the Markov and n-gram negative log-likelihoods);
for window-level detectors (feature models, rules) they come from occlusion: an
event's score is how much the window's score drops when that event is removed
(later events move up one slot, the window keeps its length).

Alerts carry no user id, raw or pseudonymous: only the split and the window's
index in it, so an export never links windows of one user.
"""

import weakref

import jax
import numpy as np

from seqad import batching
from seqad.data import events
from seqad.data import windows as windows_lib
from seqad.detectors import base
from seqad.detectors import classical
from seqad.detectors import markov

_COMPILED = weakref.WeakKeyDictionary()  # Neural detector -> jitted event scorer.
_OCCLUSION_BATCH = 4096  # Occluded windows scored per call.


def _neural_event_scores(detector, windows: windows_lib.Windows) -> np.ndarray:
  """[windows, time] per-event scores from a neural detector's objective."""
  if detector not in _COMPILED:
    _COMPILED[detector] = jax.jit(detector.objective.event_scores)
  scorer = _COMPILED[detector]
  size = detector.config.score_batch_size
  parts = [np.asarray(scorer(detector.params, batch))[:valid]
           for batch, valid in batching.padded_batches(windows, size)]
  return np.concatenate(parts).astype(np.float64)


def native_event_scores(detector: base.Detector,
                        windows: windows_lib.Windows) -> np.ndarray | None:
  """[windows, time] scores of detectors that score events; None for the others."""
  if isinstance(detector, markov.MarkovDetector):
    previous, keys = detector._transitions(windows)  # pylint: disable=protected-access
    return -detector.log_probs[previous, keys]
  if isinstance(detector, classical.NGramDetector):
    return -detector.event_log_probs(windows)
  if hasattr(detector, 'objective') and hasattr(detector, 'params'):
    try:
      return _neural_event_scores(detector, windows)
    except (AttributeError, TypeError, ValueError):
      # TODO: a detector whose parameters changed form (e.g. stacked seeds)
      # falls back to occlusion until it exposes its own event scores.
      return None
  return None


def remove_event(windows: windows_lib.Windows, window: np.ndarray,
                 position: np.ndarray) -> windows_lib.Windows:
  """Copies of windows[window] [n] without the event at `position` [n].

  Later events move up one slot and the last slot becomes padding.
  """
  length = windows.length
  slots = np.arange(length)[None, :]
  source = np.where(slots < position[:, None], slots, slots + 1)  # [n, time]
  valid = source < length
  source = np.minimum(source, length - 1)
  rows = window[:, None]
  mask = windows.mask[rows, source] & valid
  tokens = {f: np.where(mask, v[rows, source], 0).astype(np.int32)
            for f, v in windows.tokens.items()}
  return windows_lib.Windows(
      tokens=tokens, mask=mask,
      event_kind=np.where(mask, windows.event_kind[rows, source], 0).astype(np.int8),
      kind=windows.kind[window], user_index=windows.user_index[window])


def occlusion_event_scores(detector: base.Detector,
                           windows: windows_lib.Windows) -> np.ndarray:
  """[windows, time] drop of the window score when each event is removed; 0 at padding."""
  full = detector.decision_function(windows)
  window, position = np.nonzero(windows.mask)
  drops = np.zeros(windows.mask.shape)
  for begin in range(0, len(window), _OCCLUSION_BATCH):
    part = slice(begin, begin + _OCCLUSION_BATCH)
    occluded = remove_event(windows, window[part], position[part])
    drops[window[part], position[part]] = (
        full[window[part]] - detector.decision_function(occluded))
  return drops


def event_scores(detector: base.Detector, windows: windows_lib.Windows) -> np.ndarray:
  """[windows, time] float64 per-event scores, native or by occlusion."""
  if len(windows) == 0:
    return np.zeros(windows.mask.shape)
  scores = native_event_scores(detector, windows)
  if scores is None:
    scores = occlusion_event_scores(detector, windows)
  return np.where(windows.mask, scores, 0.0).astype(np.float64)


def prefixes(windows: windows_lib.Windows, length: int) -> windows_lib.Windows:
  """The windows cut after their first `length` events (the rest becomes padding)."""
  mask = windows.mask & (np.arange(windows.length) < length)[None, :]
  return windows_lib.Windows(
      tokens={f: np.where(mask, v, 0).astype(np.int32) for f, v in windows.tokens.items()},
      mask=mask, event_kind=np.where(mask, windows.event_kind, 0).astype(np.int8),
      kind=windows.kind, user_index=windows.user_index)


def prefix_scores(detector: base.Detector, windows: windows_lib.Windows,
                  step: int) -> tuple[np.ndarray, np.ndarray]:
  """Scores [windows, checkpoints] of prefixes of `step`, 2 * step, ... events.

  Returns (scores, lengths [checkpoints]); the last checkpoint is the full window.
  """
  lengths = np.unique(np.r_[np.arange(step, windows.length, step), windows.length])
  scores = np.stack([detector.decision_function(prefixes(windows, n)) for n in lengths],
                    axis=1) if len(windows) else np.zeros((0, len(lengths)))
  return scores, lengths


def onsets(windows: windows_lib.Windows) -> np.ndarray:
  """[windows] position of each window's first injected event (0 if none)."""
  return np.argmax(windows.event_kind != events.NORMAL, axis=1)


def alert_records(windows: windows_lib.Windows, index: np.ndarray, scores: np.ndarray,
                  scores_per_event: np.ndarray, threshold: float, split: str,
                  events_per_alert: int) -> list[dict]:
  """One JSON-ready dict per alert: the window, its score and its top events.

  Args:
    windows: the split's windows.
    index: [alerts] window indices in `windows`, highest score first.
    scores: [windows] window scores of the split.
    scores_per_event: [alerts, time] event scores of windows[index].
    threshold: the alert threshold (recorded, so a reader sees the margin).
    split: the split's name.
    events_per_alert: events listed per alert, highest score first.
  """
  records = []
  for row, window in enumerate(index):
    real = np.flatnonzero(windows.mask[window])
    order = real[np.argsort(-scores_per_event[row][real], kind='stable')]
    top = []
    for position in order[:events_per_alert]:
      tokens = {f: int(v[window, position]) for f, v in windows.tokens.items()}
      top.append({
          'position': int(position),
          'event_type': events.EVENT_TYPES[tokens['event_type']],
          'category_bucket': tokens['category'],
          'gap_bucket': tokens['gap'],
          'hour': tokens['hour'],
          'item_relation': tokens['item_relation'],
          'score': float(scores_per_event[row][position]),
          'injected': bool(windows.event_kind[window, position] != events.NORMAL),
      })
    records.append({
        'split': split,
        'window': int(window),
        'rank': row + 1,
        'score': float(scores[window]),
        'threshold': float(threshold),
        'alerted': bool(scores[window] >= threshold),
        'true_kind': events.ANOMALY_KINDS[windows.kind[window]],
        'events': int(len(real)),
        'top_events': top,
    })
  return records
