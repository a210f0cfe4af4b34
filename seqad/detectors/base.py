"""The detector interface every model and baseline implements.

It follows the scikit-learn / PyOD outlier-detector convention so that the
harness runs neural models and classical baselines with the same code:
`fit` on (mostly) normal windows, `decision_function` gives one score per
window where higher means more anomalous, `predict` applies a threshold.
"""

import abc

import numpy as np

from seqad.data import windows as windows_lib


class Detector(abc.ABC):
  """Base class of window-level anomaly detectors.

  Subclasses fill `timings` with what they measured while fitting and scoring
  (seconds and sequences per second), so the harness can report it.
  """

  name: str = 'detector'

  def __init__(self):
    self.timings: dict[str, float] = {}

  @abc.abstractmethod
  def fit(self, train: windows_lib.Windows,
          validation: windows_lib.Windows | None = None) -> 'Detector':
    """Learns normal behaviour from `train`; returns self."""

  @abc.abstractmethod
  def decision_function(self, windows: windows_lib.Windows) -> np.ndarray:
    """Anomaly scores [windows] float64; higher is more anomalous."""

  def predict(self, windows: windows_lib.Windows, threshold: float) -> np.ndarray:
    """Alerts [windows] bool: True where the score reaches `threshold`."""
    return self.decision_function(windows) >= threshold
