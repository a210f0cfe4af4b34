"""Per-window test scores on disk, for PR curves and score histograms in the report.

`scores.jsonl` holds one line per detector:

  {"detector": "lstm-next", "scores": [float, ...], "kinds": [int, ...],
   "kind_names": ["normal", "click_bot", ...], "threshold": float}

`scores[i]` and `kinds[i]` belong to the i-th test window (in the test split's
order); `kinds` index `kind_names` (0 = normal). No user ids or tokens are
written, only what the curves need. `threshold` is the detector's alert
threshold fitted on validation (best F1), or null.
"""

import math

import numpy as np

from seqad import io
from seqad.data import events


def record(detector: str, scores: np.ndarray, kinds: np.ndarray,
           threshold: float | None = None) -> dict:
  """One line of scores.jsonl; non-finite scores become null."""
  scores = np.asarray(scores, np.float64)
  kinds = np.asarray(kinds)
  if scores.shape != kinds.shape or scores.ndim != 1:
    raise ValueError(f'{detector}: scores {scores.shape} and kinds {kinds.shape} must be '
                     'one value per window.')
  return {
      'detector': detector,
      # Eight significant digits keep every ranking of float32 scores intact.
      'scores': [float(f'{s:.8g}') if math.isfinite(s) else None for s in scores],
      'kinds': [int(k) for k in kinds],
      'kind_names': list(events.ANOMALY_KINDS),
      'threshold': None if threshold is None else float(threshold),
  }


def write(path: str, records: list[dict]) -> None:
  io.write_jsonl_atomic(path, records)


def read(path: str) -> dict[str, dict]:
  """detector -> {'scores' [windows] float64 (nan for null), 'kinds' [windows] int,
  'kind_names', 'threshold'}."""
  result = {}
  for line in io.read_jsonl(path):
    result[line['detector']] = {
        'scores': np.array([np.nan if s is None else s for s in line['scores']],
                           np.float64),
        'kinds': np.asarray(line['kinds'], np.int64),
        'kind_names': tuple(line['kind_names']),
        'threshold': line.get('threshold'),
    }
  return result
