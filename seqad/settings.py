"""Training settings: what a detector may learn from, and which labels it sees.

  clean            training users are genuine; nothing is injected into them
                   (the classic novelty-detection setting).
  contaminated     raw traffic: anomalies are injected into training users at
                   `config.data.train_contamination` (0 = the validation / test
                   rate) and every training label is hidden from detectors.
  semi_supervised  the contaminated traffic, where analysts have labelled
                   `config.data.labelled_per_kind` anomalous windows of each kind;
                   all other training labels stay hidden.

`seqad.data.dataset.build` injects the training anomalies and keeps the truth in
`Dataset.train` (the data report counts them); `training_view` hides what the
setting hides, and `fit_windows` is what a detector is finally fitted on.
"""

import numpy as np

from seqad.data import events
from seqad.data import windows as windows_lib

SETTINGS = ('clean', 'contaminated', 'semi_supervised')


def check(setting: str) -> str:
  if setting not in SETTINGS:
    raise ValueError(f'Unknown setting {setting!r}; expected one of {SETTINGS}.')
  return setting


def _relabel(train: windows_lib.Windows, visible: np.ndarray) -> windows_lib.Windows:
  """`train` with the labels of windows outside `visible` [windows] set to normal."""
  kind = np.where(visible, train.kind, events.NORMAL).astype(np.int8)
  event_kind = np.where(visible[:, None], train.event_kind, events.NORMAL)
  return windows_lib.Windows(tokens=train.tokens, mask=train.mask,
                             event_kind=event_kind.astype(np.int8), kind=kind,
                             user_index=train.user_index)


def training_view(train: windows_lib.Windows, setting: str, labelled_per_kind: int,
                  seed: int) -> windows_lib.Windows:
  """The training windows with only the labels that `setting` reveals.

  Args:
    train: training windows with their true labels (ambiguous ones included).
    setting: one of `SETTINGS`.
    labelled_per_kind: semi_supervised: labelled windows drawn per anomaly kind
      (all of a kind's windows when it has fewer).
    seed: seeds which windows get labelled.

  Returns:
    The same windows; hidden labels read as normal.
  """
  check(setting)
  if setting == 'clean':
    return train
  visible = np.zeros(len(train), bool)
  if setting == 'semi_supervised':
    rng = np.random.default_rng(seed)
    for kind in range(1, len(events.ANOMALY_KINDS)):
      candidates = np.flatnonzero(train.kind == kind)
      chosen = rng.permutation(candidates)[:labelled_per_kind]
      visible[chosen] = True
  return _relabel(train, visible)


def fit_windows(view: windows_lib.Windows, uses_labels: bool) -> windows_lib.Windows:
  """What a detector is fitted on: unsupervised ones drop the known anomalies."""
  if uses_labels:
    return view
  return view.take(view.kind == events.NORMAL)
