"""The hand-written rules a risk team deploys first, as a scored detector.

Each rule is a per-window statistic, a share of the window's real events, that
a known abuse pushes up:

  fast_events     events whose gap bucket is 1..`fast_gap_bucket` (by default
                  gaps under 3 seconds): scripted clicking.
  blind_buys      buys of an item the user never touched before (item relation
                  NEW_ITEM on a buy): checkout without browsing, as in brushing or
                  a stolen account's spending spree.
  buys            all buys: a purchase rate no genuine shopper has.
  cart_fav_burst  carts and favs: bursts of list-building by bots or attackers.
  repeat_buys     buys repeating an earlier buy of the same item (the repeated
                  item relations on a buy): brushing's re-ordering.

`fit` learns each statistic's normal level on the training windows: its median
m_r and its spread d_r = max(q_r - m_r, min_spread), with q_r the `quantile` of
the statistic. A window's score is the largest exceedance over the rules,

  score = max_r (s_r - m_r) / d_r,

so a score of 1 means some statistic sits at its normal `quantile`, and every
rule is one-sided (only excess counts). `min_spread` keeps rules whose statistic
is (almost) always 0 in training, such as repeat buys, from dividing by zero and
from firing on a single event. Alert thresholds on the score are fitted by the
harness on validation, as for every detector.
"""

import time

import numpy as np

from seqad import metrics
from seqad.data import events
from seqad.data import windows as windows_lib
from seqad.detectors import base

RULES = ('fast_events', 'blind_buys', 'buys', 'cart_fav_burst', 'repeat_buys')


class RuleDetector(base.Detector):
  """Maximum over rules of a window's exceedance of the normal level.

  Args:
    vocab_sizes: field -> number of token values; unused, kept so every detector
      is built the same way.
    fast_gap_bucket: highest gap bucket that counts as fast; bucket b holds gaps
      of 2**(b-1) - 1 to 2**b - 2 seconds, so 2 means 0..2 seconds.
    quantile: in (0.5, 1), the upper quantile of normal windows that sets the
      spread of each statistic.
    min_spread: floor of the spread, as a share of events.
  """

  name = 'rules'

  def __init__(self, vocab_sizes: dict[str, int], *, fast_gap_bucket: int = 2,
               quantile: float = 0.99, min_spread: float = 0.05):
    super().__init__()
    del vocab_sizes  # The rules read token values, not vocabulary sizes.
    if fast_gap_bucket < 1 or not 0.5 < quantile < 1 or min_spread <= 0:
      raise ValueError(f'Need fast_gap_bucket >= 1, quantile in (0.5, 1) and '
                       f'min_spread > 0, got {fast_gap_bucket}, {quantile}, '
                       f'{min_spread}.')
    self.fast_gap_bucket = fast_gap_bucket
    self.quantile = quantile
    self.min_spread = min_spread
    self.center = None  # [rules] median of each statistic on training windows
    self.spread = None  # [rules]

  def statistics(self, windows: windows_lib.Windows) -> np.ndarray:
    """[windows, rules] share of real events each rule flags, columns as `RULES`."""
    mask = windows.mask
    event_type = windows.tokens['event_type']
    relation = windows.tokens['item_relation']
    gap = windows.tokens['gap']
    buy = event_type == events.BUY
    repeated = ((relation == windows_lib.SAME_ITEM_REPEATED)
                | (relation == windows_lib.SEEN_ITEM_REPEATED))
    flags = np.stack([
        (gap >= 1) & (gap <= self.fast_gap_bucket),
        buy & (relation == windows_lib.NEW_ITEM),
        buy,
        (event_type == events.CART) | (event_type == events.FAV),
        buy & repeated,
    ], axis=-1)
    counts = (flags & mask[..., None]).sum(axis=1)
    return counts / np.maximum(mask.sum(axis=1, keepdims=True), 1)

  def fit(self, train, validation=None):
    del validation  # Alert thresholds are the harness's job.
    start = time.perf_counter()
    values = self.statistics(train)
    self.center = np.median(values, axis=0)
    high = np.quantile(values, self.quantile, axis=0)
    self.spread = np.maximum(high - self.center, self.min_spread)
    elapsed = time.perf_counter() - start
    self.timings = {'train_s': elapsed,
                    'train_seq_per_s': len(train) / max(elapsed, 1e-9)}
    return self

  def rule_scores(self, windows: windows_lib.Windows) -> np.ndarray:
    """[windows, rules] exceedance of each statistic in units of its spread."""
    if self.center is None:
      raise RuntimeError('RuleDetector called before fit.')
    return (self.statistics(windows) - self.center) / self.spread

  def decision_function(self, windows):
    return self.rule_scores(windows).max(axis=1).astype(np.float64)


class ValidationRuleDetector(RuleDetector):
  """The same rules with each rule's cut fitted on labelled validation windows.

  A risk team tunes each rule on cases it has labelled: here rule r's cut c_r is
  the value of its statistic with the best F1 on validation, taken against the
  anomaly kind the rule separates best (a rule is written for one abuse, not for
  all). The normal level m_r is still the training median, and the score is

    score = max_r (s_r - m_r) / max(c_r - m_r, min_spread),

  so a score of 1 means some rule reaches its fitted cut. A rule whose best
  validation F1 stays below `min_rule_f1` is switched off (its score is 0), as a
  team retires a rule that only raises false alarms. The harness then fits the
  alert threshold on validation as for every detector.

  Args:
    vocab_sizes, fast_gap_bucket, quantile: as `RuleDetector` (`quantile` is
      unused: the cuts replace the training quantiles).
    min_spread: floor of c_r - m_r, as a share of events.
    min_rule_f1: rules below this validation F1 are switched off.
  """

  name = 'rules-val'

  def __init__(self, vocab_sizes: dict[str, int], *, min_rule_f1: float = 0.2,
               **kwargs):
    super().__init__(vocab_sizes, **kwargs)
    self.min_rule_f1 = min_rule_f1
    self.cuts = None
    self.rule_f1 = None

  def fit(self, train, validation=None):
    if validation is None or not np.any(validation.kind > 0):
      raise ValueError('rules-val fits its cuts on validation windows with labelled '
                       'anomalies; none were given.')
    start = time.perf_counter()
    self.center = np.median(self.statistics(train), axis=0)
    values = self.statistics(validation)
    normal = validation.kind == events.NORMAL
    cuts, rule_f1 = np.empty(len(RULES)), np.empty(len(RULES))
    for rule in range(len(RULES)):
      best_f1, cuts[rule] = -1.0, np.inf
      for kind in np.unique(validation.kind[validation.kind > 0]):
        subset = normal | (validation.kind == kind)
        labels, column = validation.kind[subset] == kind, values[subset, rule]
        cut = metrics.best_f1_threshold(labels, column)
        f1 = metrics.precision_recall_f1(labels, column, cut).f1
        if f1 > best_f1:
          best_f1, cuts[rule] = f1, cut
      rule_f1[rule] = best_f1
    self.cuts, self.rule_f1 = cuts, rule_f1
    self.spread = np.maximum(cuts - self.center, self.min_spread)
    self.spread[rule_f1 < self.min_rule_f1] = np.inf  # Switched off: scores 0.
    elapsed = time.perf_counter() - start
    self.timings = {'train_s': elapsed,
                    'train_seq_per_s': len(train) / max(elapsed, 1e-9)}
    return self
