"""A simulator of normal shoppers whose statistics roughly follow Taobao UserBehavior.

The generative story, from the top down:

  catalogue  `num_categories` categories with Zipf popularity, each holding
             `items_per_category` items with Zipf popularity inside it; item ids are
             `category * items_per_category + rank`, so the category is a function of
             the item.
  users      each user has an activity level (Gamma, mean 1) that scales their
             number of sessions, a propensity (Gamma, mean 1) that scales their
             fav/cart/buy rates, and a handful of preferred categories with
             Dirichlet weights.
  sessions   session starts fall on a uniform day of the span at an hour drawn from
             an evening-heavy profile (China local time); a session never starts
             until `min_session_gap_seconds` after the previous one ended.
  views      within a session the user dwells on one category and moves to another
             with `category_switch_prob` per view (mostly to a preferred one); the
             next view repeats the current item with `repeat_view_prob`.
  actions    after a view, the user may fav the item, add it to the cart and, mostly
             after a cart, buy it; actions follow the view they belong to.
  gaps       inside a session, lognormal gaps (median tens of seconds, heavy tail).

Every user is genuine: the `kind` column is all `NORMAL`.
"""

import dataclasses
import time

from absl import logging
import numpy as np

from seqad.data import events

_HOUR = 3600
_DAY = 24 * _HOUR


@dataclasses.dataclass(frozen=True)
class SimulatorParams:
  """Knobs of the shopper simulator; the defaults give Taobao-like statistics.

  With the defaults, 3000 users make about 300k events: ~89% views, ~5.5% carts,
  ~3% favs, ~2% buys; about 100 events per user on average (median ~75).
  """

  num_users: int = 3000
  num_categories: int = 300
  items_per_category: int = 60
  category_zipf: float = 1.0  # popularity of the k-th category is ~ k ** -category_zipf
  item_zipf: float = 1.1  # popularity of the k-th item inside its category

  preferred_categories: int = 6  # categories each user favours, drawn by popularity
  preference_concentration: float = 0.5  # Dirichlet alpha; smaller = fewer favourites
  explore_prob: float = 0.1  # a category pick ignores the user's preferences
  category_switch_prob: float = 0.15  # per view; mean dwell ~1/p views per category
  repeat_view_prob: float = 0.2  # the next view is of the same item again

  mean_sessions: float = 8.7  # sessions per user, at least 1
  activity_shape: float = 1.5  # Gamma shape of per-user activity; smaller = more skew
  mean_session_views: float = 10.0  # geometric number of page views per session
  gap_median_seconds: float = 30.0  # lognormal gap between events of a session
  gap_sigma: float = 1.2  # log-space spread of that gap; gives the heavy tail
  min_session_gap_seconds: int = 1800  # sessions are this far apart at least

  start_time: int = 1511539200  # 2017-11-25 00:00 China time; a local midnight
  span_days: int = 9
  utc_offset_hours: int = 8  # local hour = (timestamp / 3600 + offset) mod 24
  evening_peak_hour: float = 21.0  # local hour of the busiest time
  evening_peak_width: float = 2.0  # hours; standard deviation of the evening bump
  daytime_weight: float = 0.6  # broad daytime bump centred at 14:00, relative height
  night_weight: float = 0.05  # floor of the hour profile, relative height

  fav_prob: float = 0.034  # per view, for a user of propensity 1
  cart_prob: float = 0.062  # per view, for a user of propensity 1
  buy_after_cart_prob: float = 0.3  # a cart is followed by a buy of the same item
  buy_without_cart_prob: float = 0.004  # per uncarted view, for propensity 1
  propensity_shape: float = 2.0  # Gamma shape of per-user fav/cart/buy propensity

  def __post_init__(self):
    for name in ('num_users', 'num_categories', 'items_per_category',
                 'preferred_categories', 'span_days'):
      if getattr(self, name) < 1:
        raise ValueError(
            f'SimulatorParams.{name} must be >= 1, got {getattr(self, name)}.')
    if self.preferred_categories > self.num_categories:
      raise ValueError('SimulatorParams.preferred_categories exceeds num_categories.')
    for name in ('explore_prob', 'category_switch_prob', 'repeat_view_prob', 'fav_prob',
                 'cart_prob', 'buy_after_cart_prob', 'buy_without_cart_prob'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'SimulatorParams.{name} must lie in [0, 1].')
    if self.mean_sessions < 1 or self.mean_session_views < 1:
      raise ValueError(
          'SimulatorParams.mean_sessions and mean_session_views must be >= 1.')


def hour_profile(params: SimulatorParams) -> np.ndarray:
  """Probability that a session starts in each local hour, shape [24]."""
  hours = np.arange(24, dtype=np.float64)

  def bump(centre, width):
    # Circular distance, so a peak near midnight wraps around.
    distance = np.abs((hours - centre + 12.0) % 24.0 - 12.0)
    return np.exp(-0.5 * (distance / width) ** 2)

  weight = (params.night_weight + params.daytime_weight * bump(14.0, 4.0) +
            bump(params.evening_peak_hour, params.evening_peak_width))
  return weight / weight.sum()


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


def _draw_users(params, rng):
  """Per-user activity [users], propensity [users], preferred category ranks and
  cumulative preference weights [users, preferred_categories]."""
  activity = rng.gamma(params.activity_shape, 1.0 / params.activity_shape,
                       params.num_users)
  propensity = rng.gamma(params.propensity_shape, 1.0 / params.propensity_shape,
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
  return activity, propensity, favourites, np.cumsum(weights, axis=1)


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
  starts = params.start_time + day * _DAY + hour * _HOUR + second

  # Sessions are exchangeable, so sorted starts can be handed out in session order.
  starts = starts[np.lexsort((starts, session_user))]

  # Push back any session that would begin before its predecessor has ended; one
  # vectorised step per session rank keeps this a short loop.
  first = np.flatnonzero(np.diff(session_user, prepend=-1))
  sessions_per_user = np.diff(np.append(first, num_sessions))
  rank = np.arange(num_sessions) - np.repeat(first, sessions_per_user)
  for k in range(1, int(rank.max()) + 1):
    current = np.flatnonzero(rank == k)
    previous = current - 1
    earliest = starts[previous] + durations[previous] + params.min_session_gap_seconds
    starts[current] = np.maximum(starts[current], earliest)
  return starts


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
  category_cdf = _zipf_cdf(params.num_categories, params.category_zipf)
  item_cdf = _zipf_cdf(params.items_per_category, params.item_zipf)
  # Popularity rank -> category id, so that popular categories get scattered ids.
  category_ids = rng.permutation(params.num_categories)
  activity, propensity, favourites, preference_cdf = _draw_users(params, rng)

  # Sessions and their page views.
  sessions_per_user = 1 + rng.poisson(activity * (params.mean_sessions - 1))
  session_user = np.repeat(np.arange(params.num_users), sessions_per_user)
  views_per_session = rng.geometric(1.0 / params.mean_session_views, len(session_user))
  view_session = np.repeat(np.arange(len(session_user)), views_per_session)
  view_user = session_user[view_session]
  num_views = len(view_session)
  session_first_view = np.diff(view_session, prepend=-1) != 0

  # Category dwells: a new dwell at every session start and at each switch.
  new_dwell = session_first_view | (rng.random(num_views) < params.category_switch_prob)
  dwell = np.cumsum(new_dwell) - 1
  dwell_user = view_user[new_dwell]
  slot = (preference_cdf[dwell_user] < rng.random(len(dwell_user))[:, None]).sum(axis=1)
  preferred = favourites[dwell_user, np.minimum(slot, params.preferred_categories - 1)]
  explore = rng.random(len(dwell_user)) < params.explore_prob
  dwell_rank = np.where(explore, _draw(category_cdf, rng, len(dwell_user)), preferred)
  view_category = category_ids[dwell_rank][dwell]

  # Items: a new item unless the view repeats the previous one in the same dwell.
  new_item = new_dwell | (rng.random(num_views) >= params.repeat_view_prob)
  item_rank = _draw(item_cdf, rng, int(new_item.sum()))
  view_item = (view_category[new_item] * params.items_per_category + item_rank)[
      np.cumsum(new_item) - 1]

  # Actions that follow a view; column order is the order they happen in.
  scale = propensity[view_user]
  fav = rng.random(num_views) < np.minimum(1.0, params.fav_prob * scale)
  cart = rng.random(num_views) < np.minimum(1.0, params.cart_prob * scale)
  buy_p = np.where(cart, params.buy_after_cart_prob,
                   np.minimum(1.0, params.buy_without_cart_prob * scale))
  buy = rng.random(num_views) < buy_p
  happens = np.stack([np.ones(num_views, bool), fav, cart, buy], axis=1)
  flat = np.flatnonzero(happens.ravel())
  source = flat // 4
  event_type = np.array([events.VIEW, events.FAV, events.CART, events.BUY])[flat % 4]

  # Timing: offsets inside sessions first, then session starts that avoid overlap.
  event_session = view_session[source]
  session_first_event = np.diff(event_session, prepend=-1) != 0
  gaps = rng.lognormal(np.log(params.gap_median_seconds), params.gap_sigma, len(source))
  offsets = _segment_offsets(np.maximum(1, np.rint(gaps)).astype(np.int64),
                             session_first_event)
  last_event = np.append(np.flatnonzero(session_first_event)[1:], len(source)) - 1
  starts = _session_starts(params, session_user, offsets[last_event], rng)
  timestamp = starts[event_session] + offsets

  table = events.EventTable.from_columns(
      user=view_user[source], timestamp=timestamp, event_type=event_type,
      item=view_item[source], category=view_category[source])
  table = table.sort()
  logging.info('Simulated %d events of %d users in %.2fs.', len(table), params.num_users,
               time.perf_counter() - started)
  return table
