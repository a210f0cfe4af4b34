"""Event scores, occlusion, prefixes and alert records."""

import numpy as np

from conftest import VOCAB_SIZES, make_windows
from seqad import explain
from seqad.detectors import markov
from seqad.detectors import rules


def _windows():
  tokens = {
      'event_type': [[0, 3, 3, 1, 0], [0, 0, 0, 0, 0]],
      'category': [[1, 2, 2, 3, 0], [1, 1, 2, 2, 3]],
      'gap': [[0, 1, 1, 5, 0], [0, 4, 4, 4, 4]],
      'hour': [[9, 9, 9, 10, 0], [12, 12, 12, 12, 12]],
      'item_relation': [[0, 0, 0, 2, 0], [0, 1, 0, 1, 0]],
  }
  mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
  windows = make_windows(tokens, mask, kind=[2, 0])
  event_kind = np.array([[0, 2, 2, 0, 0], [0, 0, 0, 0, 0]], np.int8)
  return windows.__class__(tokens=windows.tokens, mask=mask, event_kind=event_kind,
                           kind=windows.kind, user_index=windows.user_index)


def test_remove_event_shifts_later_events_up():
  windows = _windows()
  removed = explain.remove_event(windows, np.array([0, 1]), np.array([1, 4]))
  np.testing.assert_array_equal(removed.tokens['event_type'][0], [0, 3, 1, 0, 0])
  np.testing.assert_array_equal(removed.mask[0], [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(removed.event_kind[0], [0, 2, 0, 0, 0])
  np.testing.assert_array_equal(removed.tokens['category'][1], [1, 1, 2, 2, 0])
  np.testing.assert_array_equal(removed.mask[1], [1, 1, 1, 1, 0])


def test_occlusion_scores_are_window_score_drops():
  windows = _windows()
  detector = rules.RuleDetector(VOCAB_SIZES).fit(windows.take(np.array([1, 1, 1])))
  drops = explain.event_scores(detector, windows)
  full = detector.decision_function(windows)
  for position in range(4):
    without = explain.remove_event(windows, np.array([0]), np.array([position]))
    assert drops[0, position] == full[0] - detector.decision_function(without)[0]
  assert drops[0, 4] == 0.0  # Padding.
  # The blind buys carry the window's buy rules: removing one lowers the score most.
  assert set(np.argsort(-drops[0][:4])[:2]) == {1, 2}


def test_native_markov_event_scores_and_prefixes():
  windows = _windows()
  detector = markov.MarkovDetector(VOCAB_SIZES).fit(windows)
  scores = explain.event_scores(detector, windows)
  mean = scores.sum(axis=1) / windows.mask.sum(axis=1)
  np.testing.assert_allclose(mean, detector.decision_function(windows))
  prefix, lengths = explain.prefix_scores(detector, windows, step=2)
  np.testing.assert_array_equal(lengths, [2, 4, 5])
  np.testing.assert_allclose(prefix[:, 0], scores[:, :2].mean(axis=1))
  np.testing.assert_allclose(prefix[:, -1], detector.decision_function(windows))
  np.testing.assert_array_equal(explain.onsets(windows), [1, 0])


def test_alert_records_name_windows_not_users():
  windows = _windows()
  scores = np.array([2.0, 1.0])
  per_event = np.array([[0.1, 0.9, 0.8, 0.2, 0.0]])
  (record,) = explain.alert_records(windows, np.array([0]), scores, per_event, 1.5,
                                    'test', events_per_alert=2)
  assert record['window'] == 0 and record['alerted'] and record['true_kind'] == (
      'order_brushing')
  assert [e['position'] for e in record['top_events']] == [1, 2]
  assert record['top_events'][0] == {
      'position': 1, 'event_type': 'buy', 'category_bucket': 2, 'gap_bucket': 1,
      'hour': 9, 'item_relation': 0, 'score': 0.9, 'injected': True}
  assert not any('user' in key for key in record)
