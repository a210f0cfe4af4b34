"""A simulator of normal shoppers whose statistics can be fitted to a real log.

The generative story, from the top down:

  catalogue  `num_categories` categories with Zipf popularity, each holding
             `items_per_category` items with Zipf popularity inside it; item ids are
             `category * items_per_category + rank`, so the category is a function of
             the item.
  users      each user has an activity level (Gamma, mean 1, shape `activity_shape`)
             that scales their number of sessions (so sessions per user are negative
             binomial), a handful of preferred categories with Dirichlet weights, and
             a chance to explore beyond them (Beta with mean `explore_prob`).
  sessions   a session's number of events comes from an empirical distribution (a
             Gaussian copula correlates the lengths of one user's sessions); it
             starts on a uniform day of the span at a local hour drawn from
             `hour_weights`, more than `min_session_gap_seconds` after the previous
             one ended.
  types      a session's event types are a Markov chain: the first from
             `first_type_probs`, each next one from its row of `type_transitions`.
  gaps       the gap before each event of a session comes from an empirical
             distribution that depends on the event's type (a buy comes slower than a
             view).
  items      an event touches a new item with `new_item_prob[type]`; otherwise it
             revisits the item of the user's event `d` events back, `d` drawn from an
             empirical distribution. A new item stays in the previous event's category
             with `category_stay_prob` (inside a session); else its category is one of
             the user's preferred ones, or a popular one with `explore_prob`.

Empirical distributions are quantile tables: `k` values at the probabilities
`linspace(0, 1, k)`, read with linear interpolation in log1p space.
`seqad.data.calibration.fit` estimates every field from an `EventTable`; the
parameters fitted on the Taobao slice ship with the package and `default_params()`
loads them. The dataclass defaults are a coarse hand-rounded version of that fit.

Every user is genuine: the `kind` column is all `NORMAL`.
"""

import dataclasses
import importlib.resources
import json
import time

from absl import logging
import numpy as np
from scipy import special

from seqad.data import events

_HOUR = 3600
_DAY = 24 * _HOUR
_NUM_TYPES = len(events.EVENT_TYPES)

DEFAULT_PARAMS_FILE = 'taobao_fitted.json'  # in seqad/data/params/


@dataclasses.dataclass(frozen=True)
class SimulatorParams:
  """Knobs of the shopper simulator; see the module docstring for the story.

  The defaults are rounded from the Taobao fit: ~90% views, ~5% carts, ~3% favs,
  ~2% buys; ~17 sessions and ~100 events per user.
  """

  num_users: int = 3000
  num_categories: int = 2900
  items_per_category: int = 2000
  category_zipf: float = 0.9  # popularity of the k-th category is ~ k ** -category_zipf
  item_zipf: float = 0.6  # popularity of the k-th item inside its category

  preferred_categories: int = 10  # categories each user favours, drawn by popularity
  preference_concentration: float = 0.5  # Dirichlet alpha; smaller = fewer favourites
  explore_prob: float = 0.3  # mean chance that a new category ignores preferences
  explore_concentration: float = 2.0  # Beta a + b of each user's own explore chance
  category_stay_prob: float = 0.4  # a new item keeps the previous event's category

  mean_sessions: float = 17.0  # sessions per user, at least 1
  activity_shape: float = 3.5  # Gamma shape of per-user activity; smaller = more skew
  session_length_quantiles: tuple[float, ...] = (1, 1, 1, 2, 3, 4, 6, 9, 15, 40, 300)
  session_length_correlation: float = 0.2  # of a user's sessions' length quantiles
  min_session_gap_seconds: int = 1800  # sessions are more than this far apart

  start_time: int = 1511539200  # 2017-11-25 00:00 China time; a local midnight
  span_days: int = 9
  utc_offset_hours: int = 8  # local hour = (timestamp / 3600 + offset) mod 24
  hour_weights: tuple[float, ...] = (  # session starts per local hour 0..23
      3, 1.5, 1, .5, .5, .5, 1, 2, 3, 4, 4.5, 4.5, 4, 4.5, 4.5, 4.5, 4, 4, 4.5, 5.5,
      6.5, 7.5, 7, 5)

  first_type_probs: tuple[float, ...] = (0.88, 0.055, 0.03, 0.035)  # view/cart/fav/buy
  type_transitions: tuple[tuple[float, ...], ...] = (  # row: this type, column: next
      (0.91, 0.05, 0.025, 0.015), (0.82, 0.15, 0.015, 0.015),
      (0.73, 0.02, 0.24, 0.01), (0.77, 0.05, 0.01, 0.17))
  gap_quantiles: tuple[tuple[float, ...], ...] = (  # per type of the later event
      (0, 9, 20, 50, 127, 310, 1800), (0, 30, 56, 111, 235, 480, 1800),
      (0, 16, 36, 87, 232, 500, 1800), (0, 1, 59, 166, 384, 770, 1800))
  new_item_prob: tuple[float, ...] = (0.76, 0.82, 0.89, 0.39)  # per event type
  revisit_distance_quantiles: tuple[float, ...] = (2, 2, 2, 6, 20, 56, 500)

  def __post_init__(self):
    # Configs and JSON hand over lists; keep the frozen dataclass hashable.
    for name in ('session_length_quantiles', 'hour_weights', 'first_type_probs',
                 'new_item_prob', 'revisit_distance_quantiles'):
      object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
    for name in ('type_transitions', 'gap_quantiles'):
      object.__setattr__(self, name, tuple(
          tuple(float(v) for v in row) for row in getattr(self, name)))

    for name in ('num_users', 'num_categories', 'items_per_category',
                 'preferred_categories', 'span_days'):
      if getattr(self, name) < 1:
        raise ValueError(
            f'SimulatorParams.{name} must be >= 1, got {getattr(self, name)}.')
    if self.preferred_categories > self.num_categories:
      raise ValueError('SimulatorParams.preferred_categories exceeds num_categories.')
    for name in ('explore_prob', 'category_stay_prob'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'SimulatorParams.{name} must lie in [0, 1].')
    if not 0.0 <= self.session_length_correlation < 1.0:
      raise ValueError('SimulatorParams.session_length_correlation must lie in [0, 1).')
    if self.explore_concentration <= 0:
      raise ValueError('SimulatorParams.explore_concentration must be > 0.')
    if self.mean_sessions < 1:
      raise ValueError('SimulatorParams.mean_sessions must be >= 1.')
    if len(self.hour_weights) != 24 or min(self.hour_weights) < 0:
      raise ValueError('SimulatorParams.hour_weights needs 24 non-negative weights.')
    _check_probs('first_type_probs', [self.first_type_probs])
    _check_probs('type_transitions', self.type_transitions)
    if len(self.new_item_prob) != _NUM_TYPES or not all(
        0 <= p <= 1 for p in self.new_item_prob):
      raise ValueError(f'SimulatorParams.new_item_prob needs {_NUM_TYPES} values in '
                       '[0, 1].')
    if len(self.gap_quantiles) != _NUM_TYPES:
      raise ValueError(f'SimulatorParams.gap_quantiles needs {_NUM_TYPES} tables.')
    for name, tables, low in (
        ('session_length_quantiles', [self.session_length_quantiles], 1),
        ('gap_quantiles', self.gap_quantiles, 0),
        ('revisit_distance_quantiles', [self.revisit_distance_quantiles], 1)):
      for table in tables:
        if len(table) < 2 or min(table) < low or np.any(np.diff(table) < 0):
          raise ValueError(f'SimulatorParams.{name} must hold >= 2 non-decreasing '
                           f'values >= {low}.')


def _check_probs(name, rows):
  for row in rows:
    if len(row) != _NUM_TYPES or min(row) < 0 or abs(sum(row) - 1) > 1e-3:
      raise ValueError(f'SimulatorParams.{name}: each row needs {_NUM_TYPES} '
                       'non-negative probabilities summing to 1.')


def params_from_dict(data: dict) -> SimulatorParams:
  """SimulatorParams from a dict such as a JSON file's; unknown keys are an error."""
  names = {field.name for field in dataclasses.fields(SimulatorParams)}
  unknown = sorted(set(data) - names)
  if unknown:
    raise ValueError(f'Unknown SimulatorParams fields: {unknown}.')
  return SimulatorParams(**data)


def default_params(**overrides) -> SimulatorParams:
  """The parameters fitted on the Taobao slice, shipped with the package."""
  text = importlib.resources.files('seqad.data.params').joinpath(
      DEFAULT_PARAMS_FILE).read_text()
  data = json.loads(text)['params']
  data.update(overrides)
  return params_from_dict(data)


def hour_profile(params: SimulatorParams) -> np.ndarray:
  """Probability that a session starts in each local hour, shape [24]."""
  weight = np.asarray(params.hour_weights, dtype=np.float64)
  return weight / weight.sum()


def quantile_draw(quantiles, u: np.ndarray) -> np.ndarray:
  """Inverse-CDF draws from a quantile table at probabilities linspace(0, 1, k).

  Args:
    quantiles: [k] non-decreasing non-negative values.
    u: [n] uniforms in [0, 1).

  Returns:
    [n] float draws, interpolated linearly in log1p space.
  """
  knots = np.log1p(np.asarray(quantiles, dtype=np.float64))
  return np.expm1(np.interp(u, np.linspace(0.0, 1.0, len(knots)), knots))


def quantile_cdf(quantiles, x: np.ndarray) -> np.ndarray:
  """The CDF that `quantile_draw` samples from, at the values `x`, shape [n]."""
  knots = np.log1p(np.asarray(quantiles, dtype=np.float64))
  probs = np.linspace(0.0, 1.0, len(knots))
  # Flat stretches of the table (repeated values) take their highest probability.
  knots, last = np.unique(knots[::-1], return_index=True)
  return np.interp(np.log1p(x), knots, probs[::-1][last], left=0.0, right=1.0)


def _zipf_cdf(size: int, exponent: float) -> np.ndarray:
  """Cumulative probabilities of ranks 0..size-1 under a Zipf law, shape [size]."""
  weight = np.arange(1, size + 1, dtype=np.float64) ** -exponent
  cdf = np.cumsum(weight)
  return cdf / cdf[-1]


def _draw(cdf: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
  """Inverse-CDF draws of indices into `cdf`, shape [size]."""
  return np.minimum(np.searchsorted(cdf, rng.random(size), side='right'), len(cdf) - 1)


def _segment_offsets(gaps: np.ndarray, is_first: np.ndarray) -> np.ndarray:
  """Time since the first event of each run, given gaps to the previous event.

  Args:
    gaps: [events] gap of each event to the one before it.
    is_first: [events] bool, True where a new run starts (must be True at 0).

  Returns:
    [events] cumulative gap inside each run; 0 at every run start.
  """
  gaps = np.where(is_first, 0, gaps)
  total = np.cumsum(gaps)
  run = np.cumsum(is_first) - 1
  return total - total[np.flatnonzero(is_first)][run]


def _ranks(group: np.ndarray) -> np.ndarray:
  """[n] position of each row inside its run of equal, contiguous `group` values."""
  first = np.flatnonzero(np.diff(group, prepend=group[0] - 1) != 0)
  return np.arange(len(group)) - np.repeat(first, np.diff(np.append(first, len(group))))


def _resolve(parent: np.ndarray) -> np.ndarray:
  """Follows `parent` pointers (each <= its index) to their fixed points, [n]."""
  root = parent.copy()
  while True:
    jumped = root[root]
    if np.array_equal(jumped, root):
      return root
    root = jumped


def _draw_users(params, rng):
  """Per-user activity [users], explore chance [users], preferred category ranks and
  cumulative preference weights [users, preferred_categories]."""
  activity = rng.gamma(params.activity_shape, 1.0 / params.activity_shape,
                       params.num_users)

  # Gumbel top-k draws each user's favourites by popularity, without replacement.
  log_popularity = np.log(np.diff(_zipf_cdf(params.num_categories, params.category_zipf),
                                  prepend=0.0))
  keys = log_popularity + rng.gumbel(size=(params.num_users, params.num_categories))
  favourites = np.argpartition(-keys, params.preferred_categories - 1, axis=1)
  favourites = favourites[:, :params.preferred_categories]
  weights = rng.dirichlet(
      np.full(params.preferred_categories, params.preference_concentration),
      size=params.num_users)
  mean = np.clip(params.explore_prob, 1e-6, 1 - 1e-6)
  explore = rng.beta(mean * params.explore_concentration,
                     (1 - mean) * params.explore_concentration, params.num_users)
  return activity, explore, favourites, np.cumsum(weights, axis=1)


def _session_starts(params, session_user, durations, rng):
  """Start times of sessions, in order within each user and never overlapping.

  Args:
    params: the simulator parameters.
    session_user: [sessions] owner of each session, non-decreasing.
    durations: [sessions] seconds from a session's first to its last event.
    rng: the random generator.

  Returns:
    [sessions] int64 Unix seconds.
  """
  num_sessions = len(session_user)
  day = rng.integers(params.span_days, size=num_sessions)
  hour = rng.choice(24, size=num_sessions, p=hour_profile(params))
  second = rng.integers(_HOUR, size=num_sessions)
  # start_time is a local midnight, so this is local hour `hour` of day `day`.
  starts = params.start_time + day * _DAY + hour * _HOUR + second

  # Sessions are exchangeable, so sorted starts can be handed out in session order.
  starts = starts[np.lexsort((starts, session_user))]

  # Push back any session that would begin before its predecessor has ended; one
  # vectorised step per session rank keeps this a short loop.
  rank = _ranks(session_user)
  for k in range(1, int(rank.max()) + 1):
    current = np.flatnonzero(rank == k)
    previous = current - 1
    # One second more than the gap, so that a session split at gaps over
    # `min_session_gap_seconds` finds these sessions apart.
    earliest = starts[previous] + durations[previous] + params.min_session_gap_seconds + 1
    starts[current] = np.maximum(starts[current], earliest)
  return starts


def _event_types(params, event_session, rng):
  """[events] int8 types: a Markov chain inside each session."""
  position = _ranks(event_session)
  first_cdf = np.cumsum(params.first_type_probs)
  step_cdf = np.cumsum(np.asarray(params.type_transitions), axis=1)
  u = rng.random(len(event_session))
  types = np.zeros(len(event_session), dtype=np.int8)
  at = np.flatnonzero(position == 0)
  types[at] = np.minimum(np.searchsorted(first_cdf, u[at], side='right'), _NUM_TYPES - 1)

  # One vectorised step per position; events are in session order, so position k
  # of a session is one row after its position k - 1.
  by_position = np.argsort(position, kind='stable')
  bounds = np.searchsorted(position[by_position], np.arange(1, position.max() + 2))
  for k in range(1, int(position.max()) + 1):
    at = by_position[bounds[k - 1]:bounds[k]]
    row = step_cdf[types[at - 1]]
    types[at] = np.minimum((row < u[at, None]).sum(axis=1), _NUM_TYPES - 1)
  return types


def _event_gaps(params, event_type, rng):
  """[events] int64 seconds before each event, drawn per event type."""
  u = rng.random(len(event_type))
  gaps = np.zeros(len(event_type))
  for kind in range(_NUM_TYPES):
    at = event_type == kind
    gaps[at] = quantile_draw(params.gap_quantiles[kind], u[at])
  return np.rint(gaps).astype(np.int64)


def _items(params, event_type, event_user, position_in_session, users, rng):
  """Items and categories [events] of every event; see 'items' in the docstring.

  `users` is (explore [users], favourites [users, preferred], preference_cdf
  [users, preferred], category_ids [categories]) from `_draw_users` and the catalogue.
  """
  explore_prob, favourites, preference_cdf, category_ids = users
  num_events = len(event_type)
  user_rank = _ranks(event_user)

  # Revisits point d events back in the user's history, d drawn from the distance
  # distribution cut at the history's length; new items point to themselves, or
  # (for their category) to the previous event when they stay.
  reachable = quantile_cdf(params.revisit_distance_quantiles, user_rank + 0.5)
  distance = np.rint(quantile_draw(params.revisit_distance_quantiles,
                                   rng.random(num_events) * reachable)).astype(np.int64)
  revisit = ((rng.random(num_events) >= np.asarray(params.new_item_prob)[event_type]) &
             (distance <= user_rank))
  stay = (~revisit & (position_in_session > 0) &
          (rng.random(num_events) < params.category_stay_prob))
  index = np.arange(num_events)
  item_root = _resolve(np.where(revisit, index - distance, index))
  category_root = _resolve(np.where(revisit, index - distance,
                                    np.where(stay, index - 1, index)))

  # Fresh categories: one of the user's favourites, or a popular one when exploring.
  fresh = np.flatnonzero(category_root == index)
  user = event_user[fresh]
  slot = (preference_cdf[user] < rng.random(len(fresh))[:, None]).sum(axis=1)
  rank = favourites[user, np.minimum(slot, params.preferred_categories - 1)]
  explore = rng.random(len(fresh)) < explore_prob[user]
  category_cdf = _zipf_cdf(params.num_categories, params.category_zipf)
  rank = np.where(explore, _draw(category_cdf, rng, len(fresh)), rank)
  category = np.zeros(num_events, dtype=np.int64)
  category[fresh] = category_ids[rank]
  category = category[category_root]

  new = np.flatnonzero(item_root == index)
  item_cdf = _zipf_cdf(params.items_per_category, params.item_zipf)
  item = np.zeros(num_events, dtype=np.int64)
  item[new] = category[new] * params.items_per_category + _draw(item_cdf, rng, len(new))
  return item[item_root], category


def simulate(params: SimulatorParams, seed: int) -> events.EventTable:
  """Simulates the behaviour events of `params.num_users` genuine shoppers.

  Args:
    params: the simulator parameters.
    seed: seeds `np.random.default_rng`; equal params and seed give identical output.

  Returns:
    A table sorted by (user, timestamp), users 0..num_users-1, `kind` all `NORMAL`.
  """
  started = time.perf_counter()
  rng = np.random.default_rng(seed)
  # Popularity rank -> category id, so that popular categories get scattered ids.
  category_ids = rng.permutation(params.num_categories)
  activity, explore, favourites, preference_cdf = _draw_users(params, rng)

  # Sessions and their events.
  sessions_per_user = 1 + rng.poisson(activity * (params.mean_sessions - 1))
  session_user = np.repeat(np.arange(params.num_users), sessions_per_user)
  # Gaussian copula: uniforms that are uniform per session, correlated per user.
  rho = params.session_length_correlation
  shared = rng.standard_normal(params.num_users)[session_user]
  own = rng.standard_normal(len(session_user))
  u = special.ndtr(np.sqrt(rho) * shared + np.sqrt(1 - rho) * own)
  lengths = quantile_draw(params.session_length_quantiles, np.minimum(u, 1 - 1e-12))
  lengths = np.maximum(1, np.rint(lengths)).astype(np.int64)
  event_session = np.repeat(np.arange(len(session_user)), lengths)
  event_user = session_user[event_session]
  position = _ranks(event_session)

  event_type = _event_types(params, event_session, rng)
  item, category = _items(params, event_type, event_user, position,
                          (explore, favourites, preference_cdf, category_ids), rng)

  # Timing: offsets inside sessions first, then session starts that avoid overlap.
  offsets = _segment_offsets(_event_gaps(params, event_type, rng), position == 0)
  last_event = np.cumsum(lengths) - 1
  starts = _session_starts(params, session_user, offsets[last_event], rng)
  timestamp = starts[event_session] + offsets

  table = events.EventTable.from_columns(
      user=event_user, timestamp=timestamp, event_type=event_type, item=item,
      category=category)
  table = table.sort()
  logging.info('Simulated %d events of %d users in %.2fs.', len(table), params.num_users,
               time.perf_counter() - started)
  return table
