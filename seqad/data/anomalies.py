"""Labelled anomaly injectors that work on any `EventTable`, simulated or real.

Each injector writes one anomalous *segment* of `segment_length` events into the
timeline of each of its victims; `order_anomaly` instead rewrites a stretch of the
victim's own events. Anomalous rows carry the victim's user id and the kind's index
in the `kind` column, which is therefore the per-event label; other genuine rows
are never changed, and the result is re-sorted by (user, timestamp). Items and
categories come from the table's own universe, so segments use ids that real
traffic uses too.

Camouflage. `camouflage` in [0, 1] sets every kind's difficulty: 0 is the blatant
form described below; towards 1, each kind's pace, gap spread, event-type mix,
item and category spread and hour move (interpolated, geometrically for scales)
towards those of the table's own genuine traffic (`NormalProfile`). What defines
the kind stays at every level: the bot never buys and sticks to its own target
items, brushing buys one shop's items again and again, the takeover ends in a
checkout of items the victim never saw, the scraper sweeps items it never saw
before, farming carts and favs items it never viewed and buys none, and the order
anomaly plays real events in an implausible order. Random draws do not depend on
the level, so the same seed at a higher camouflage moves the same segments closer
to normal.

click_bot
  Scripted page views that inflate a listing's traffic. Starts at a random moment
  of the victim's active period; page views only, at a near-constant 1-2 s pace,
  on one to three items of one category. Betrayed by its metronome pace, the
  absence of carts, favs and buys, and the tiny item set.

order_brushing
  Paid fake orders that push a shop's sales count and ranking. A shop (a few items
  of one category) is bought again and again in quick view->(cart->)buy cycles a
  couple of minutes apart. Victims are brushed in collusive groups of up to
  `brushing_group_size` accounts that buy the same shop's items within the same
  `brushing_group_window_seconds`. Betrayed by a purchase rate far above any
  genuine shopper's, repeated buys of the same items, and (across accounts) many
  buyers of one shop in one hour.

account_takeover
  A stolen account spent by an attacker. After the victim's genuine history, the
  attacker browses categories the victim never touched, at night (local time) and
  at a fast pace, then carts and buys items the victim never looked at. Its
  event-type mix is that of an ordinary session, so counting event types does not
  find it; the category switch, the hour, the pace and the checkout of unseen items
  do.

scraper
  A crawler harvesting the catalogue: page views only, sweeping categories in id
  order and the items of each in id order, a few per category, at a steady pace.
  Betrayed by every view being an item never seen before, many (often obscure)
  categories, the steady pace, and no carts, favs or buys.

cart_farming
  Mass add-to-cart and favourite actions (to fake interest in items, or to farm
  coupons and rewards), issued straight to the shop's API: carts and favs of items
  the account never viewed, a few categories, a fast pace, never a purchase.
  Betrayed by an action share far above normal, actions on never-viewed items, and
  no buys.

order_anomaly
  A real user's own events replayed in an implausible order, as a replaying script
  or a tampered log would: the victim's whole history, in consecutive blocks of
  `segment_length` events, is re-played with each block sorted by type (the
  purchases first, then carts, favs and, last, the page views) over the same
  timestamps, the events of a type taking turns across categories. Event counts,
  items, categories, gaps and hours are the user's own, so only a detector that
  reads order can catch it: purchases before the views that led to them, carts
  after buys, runs of actions no shopper makes, and views that jump category at
  every click instead of dwelling. Victims need `segment_length` / 2 events, some of them carts,
  favs or buys. Camouflage reorders a shorter head of each block
  (`order_min_share` of it at 1).
"""

import dataclasses

from absl import logging
import numpy as np

from seqad.data import events

_HOUR = 3600
_DAY = 24 * _HOUR
_SESSION_GAP = 1800

KINDS = ('click_bot', 'order_brushing', 'account_takeover', 'scraper', 'cart_farming',
         'order_anomaly')
assert all(name in events.ANOMALY_KINDS for name in KINDS)


@dataclasses.dataclass(frozen=True)
class AnomalyParams:
  """What to inject and how; every field maps onto a config entry."""

  kinds: tuple[str, ...] = KINDS  # anomaly kinds to inject, names from ANOMALY_KINDS
  user_fraction: float = 0.05  # per kind, fraction of candidate users made victims
  segment_length: int = 48  # injected (or, for order_anomaly, rewritten) events
  camouflage: float = 0.0  # 0 blatant .. 1 close to normal on counts and timing
  utc_offset_hours: int = 8  # local time of the data (China) for night hours

  bot_gap_seconds: float = 1.5  # median gap between consecutive bot views
  bot_gap_sigma: float = 0.15  # log-space spread of bot gaps
  bot_max_items: int = 3  # the bot views 1..bot_max_items items of one category

  brushing_items: int = 3  # items of the brushed shop, all of one category
  brushing_cycle_seconds: float = 120.0  # median spacing of view->buy cycles
  brushing_step_seconds: float = 5.0  # median gap inside a view->(cart->)buy cycle
  brushing_cart_prob: float = 0.3  # a cycle puts the item in the cart before buying
  brushing_min_buys: int = 4  # purchases left at camouflage 1
  brushing_group_size: int = 3  # colluding accounts per brushed shop
  brushing_group_window_seconds: int = 3600  # a group's segments start in this span

  takeover_categories: int = 3  # never-touched categories the attacker browses
  takeover_purchases: int = 5  # items carted then bought at the end of the segment
  takeover_switch_prob: float = 0.15  # per view, the attacker moves to a new category
  takeover_gap_seconds: float = 3.0  # median gap between attacker events
  takeover_gap_sigma: float = 0.6  # log-space spread of attacker gaps
  takeover_first_hour: int = 1  # the segment starts in local hours [first, last)
  takeover_last_hour: int = 5

  scraper_gap_seconds: float = 2.0  # median gap between scraper views
  scraper_items_per_category: int = 3  # items taken from each category of the sweep

  farming_gap_seconds: float = 3.0  # median gap between farming events
  farming_action_share: float = 0.8  # share of carts and favs in the blatant segment
  farming_categories: int = 3  # categories whose items are farmed

  order_min_share: float = 0.25  # share of the stretch reordered at camouflage 1

  def __post_init__(self):
    # Configs may hand over a list; keep the frozen dataclass hashable.
    object.__setattr__(self, 'kinds', tuple(self.kinds))
    for name in self.kinds:
      if name not in KINDS:
        raise ValueError(f'Unknown anomaly kind {name!r}; known: {KINDS}.')
    if len(set(self.kinds)) != len(self.kinds):
      raise ValueError(f'AnomalyParams.kinds repeats a kind: {self.kinds}.')
    if self.user_fraction < 0 or self.user_fraction * len(self.kinds) > 1:
      raise ValueError(
          f'AnomalyParams.user_fraction={self.user_fraction} must be >= 0 and at most '
          f'1 / {len(self.kinds)} so that victims of different kinds stay disjoint.')
    if not 0.0 <= self.camouflage <= 1.0:
      raise ValueError(f'AnomalyParams.camouflage must lie in [0, 1], got '
                       f'{self.camouflage}.')
    if self.segment_length < 2 * self.takeover_purchases + 2:
      raise ValueError('AnomalyParams.segment_length must exceed 2 * takeover_purchases '
                       '+ 1, leaving the attacker some views.')
    if min(self.bot_max_items, self.brushing_items, self.takeover_categories,
           self.scraper_items_per_category, self.farming_categories,
           self.brushing_group_size, self.brushing_min_buys) < 1:
      raise ValueError('AnomalyParams item, category, group and buy counts must be >= 1.')
    if not 0 <= self.takeover_first_hour < self.takeover_last_hour <= 24:
      raise ValueError('AnomalyParams needs 0 <= takeover_first_hour < '
                       'takeover_last_hour <= 24.')
    for name in ('brushing_cart_prob', 'farming_action_share', 'order_min_share',
                 'takeover_switch_prob'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'AnomalyParams.{name} must lie in [0, 1].')


@dataclasses.dataclass(frozen=True)
class Catalog:
  """The distinct items of a table grouped by category.

  Attributes:
    items: [items] distinct item ids, grouped by category, ascending inside a group.
    categories: [categories] distinct category ids, ascending.
    starts: [categories + 1] offsets of each category's items in `items`.
  """

  items: np.ndarray
  categories: np.ndarray
  starts: np.ndarray

  @classmethod
  def from_table(cls, table: events.EventTable) -> 'Catalog':
    if not len(table):
      raise ValueError('Cannot build a catalogue of an empty EventTable.')
    # An item seen under several categories keeps the first one in table order.
    items, first = np.unique(table.item, return_index=True)
    item_category = table.category[first]
    order = np.lexsort((items, item_category))
    categories, starts = np.unique(item_category[order], return_index=True)
    return cls(items[order], categories, np.append(starts, len(items)))

  def items_of(self, position: int) -> np.ndarray:
    """The items of the category at `position` in `categories`."""
    return self.items[self.starts[position]:self.starts[position + 1]]

  def pool(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([n] items, [n] their categories) of the categories at `positions`."""
    positions = np.asarray(positions, dtype=np.int64)
    sizes = np.diff(self.starts)[positions]
    items = np.concatenate([self.items_of(p) for p in positions] +
                           [np.zeros(0, np.int64)])
    return items, np.repeat(self.categories[positions], sizes)


@dataclasses.dataclass(frozen=True)
class NormalProfile:
  """What genuine traffic of a table looks like; camouflage moves kinds towards it.

  Attributes:
    gap_median: median seconds between consecutive events of a session (>= 1).
    gap_sigma: standard deviation of the log of those gaps.
    type_mix: [4] share of each event type.
    new_item_share: share of events that are a user's first touch of the item.
    items_per_segment: median distinct items in `segment_length` consecutive events.
    categories_per_segment: median distinct categories in as many events.
    hour_cdf: [24] cumulative share of events per local hour.
  """

  gap_median: float
  gap_sigma: float
  type_mix: np.ndarray
  new_item_share: float
  items_per_segment: float
  categories_per_segment: float
  hour_cdf: np.ndarray

  @classmethod
  def from_table(cls, table: events.EventTable, segment_length: int,
                 utc_offset_hours: int) -> 'NormalProfile':
    genuine = table.take(table.kind == events.NORMAL)
    if len(genuine) < 2:
      genuine = table
    same_user = genuine.user[1:] == genuine.user[:-1]
    gaps = np.diff(genuine.timestamp)[same_user]
    gaps = np.maximum(gaps[gaps <= _SESSION_GAP], 1)
    log_gaps = np.log(gaps) if len(gaps) else np.zeros(1)

    # Consecutive chunks of `segment_length` events per user, the full ones only.
    first = np.append(True, ~same_user)
    start = np.flatnonzero(first)
    rank = np.arange(len(genuine)) - np.repeat(start, np.diff(np.append(start,
                                                                       len(genuine))))
    chunk = np.cumsum(first | (rank % segment_length == 0)) - 1
    size = np.bincount(chunk)
    full = size[chunk] == segment_length
    if not full.any():
      full = np.ones(len(genuine), bool)

    def distinct(values):
      pairs = np.unique(np.stack([chunk[full], values[full]]), axis=1)
      return float(np.median(np.bincount(pairs[0])[np.unique(pairs[0])]))

    key = np.stack([genuine.user, genuine.item])
    hour = (genuine.timestamp // _HOUR + utc_offset_hours) % 24
    return cls(
        gap_median=float(np.exp(np.median(log_gaps))),
        gap_sigma=float(np.std(log_gaps)),
        type_mix=np.bincount(genuine.event_type, minlength=4) / len(genuine),
        new_item_share=np.unique(key, axis=1).shape[1] / len(genuine),
        items_per_segment=distinct(genuine.item),
        categories_per_segment=distinct(genuine.category),
        hour_cdf=np.cumsum(np.bincount(hour, minlength=24)) / len(genuine))


def lerp(blatant: float, normal: float, camouflage: float) -> float:
  """Linear interpolation from the blatant value (0) to the normal one (1)."""
  return blatant + (normal - blatant) * camouflage


def geo_lerp(blatant: float, normal: float, camouflage: float) -> float:
  """Geometric interpolation, for scales such as gaps and counts (both > 0)."""
  return float(np.exp(lerp(np.log(blatant), np.log(normal), camouflage)))


@dataclasses.dataclass
class _Context:
  """What every segment maker gets besides its victims."""

  table: events.EventTable
  seed: int
  params: AnomalyParams
  catalog: Catalog
  profile: NormalProfile

  @property
  def camouflage(self) -> float:
    return self.params.camouflage

  def rng_for(self, kind: str, user: int, part: int = 0) -> np.random.Generator:
    """The generator of one victim's segment: the same at every camouflage level,
    so that a level changes how far each segment sits from normal, not the draws."""
    return np.random.default_rng(
        [self.seed, events.kind_index(kind), int(user) % 2**63, part])

  def gaps(self, rng, size: int, blatant_median: float,
           blatant_sigma: float) -> np.ndarray:
    """[size] int64 gaps >= 1 whose median and spread move towards normal."""
    z = rng.standard_normal(size)
    median = geo_lerp(blatant_median, self.profile.gap_median, self.camouflage)
    sigma = lerp(blatant_sigma, self.profile.gap_sigma, self.camouflage)
    return np.maximum(1, np.rint(median * np.exp(sigma * z))).astype(np.int64)

  def count(self, blatant: float, normal: float) -> int:
    return max(1, int(np.rint(geo_lerp(max(blatant, 1), max(normal, 1),
                                       self.camouflage))))

  def actions(self, rng, size: int) -> np.ndarray:
    """[size] types for a non-buying segment: views, plus favs and carts at the
    normal rate times the camouflage."""
    u = rng.random(size)
    fav, cart = self.profile.type_mix[events.FAV], self.profile.type_mix[events.CART]
    return np.where(u < self.camouflage * cart, events.CART,
                    np.where(u < self.camouflage * (cart + fav), events.FAV,
                             events.VIEW)).astype(np.int8)

  def start(self, rng, user: int) -> int:
    ts = self.table.timestamp[_user_rows(self.table, user)]
    return int(rng.integers(ts[0], ts[-1] + 1))

  def categories(self, rng, count: int) -> np.ndarray:
    """`count` distinct category positions, uniform over the catalogue, drawn as
    a prefix of one permutation so that more categories extend fewer."""
    order = rng.permutation(len(self.catalog.categories))
    return order[:min(count, len(order))]


def _user_rows(table: events.EventTable, user: int) -> slice:
  lo, hi = np.searchsorted(table.user, [user, user + 1])
  if lo == hi:
    raise ValueError(f'User {user} has no events in the table.')
  return slice(int(lo), int(hi))


def _segment(user, timestamp, event_type, item, category, kind) -> events.EventTable:
  return events.EventTable.from_columns(
      user=np.full(len(timestamp), user), timestamp=timestamp, event_type=event_type,
      item=item, category=category, kind=np.full(len(timestamp), events.kind_index(kind)))


def _times(start: int, gaps: np.ndarray) -> np.ndarray:
  """[len(gaps) + 1] timestamps: `start`, then after each gap."""
  return start + np.concatenate([[0], np.cumsum(gaps)])


def click_bot_segments(victims, context: _Context):
  """One click-bot segment per victim; returns (new rows, no replaced rows)."""
  params, length = context.params, context.params.segment_length
  profile = context.profile
  segments = []
  for user in victims:
    rng = context.rng_for('click_bot', user)
    start = context.start(rng, user)
    # Any category, not a popular one: bots inflate obscure listings as well.
    positions = context.categories(rng, context.count(1, profile.categories_per_segment))
    pool, pool_category = context.catalog.pool(positions)
    size = context.count(rng.integers(1, params.bot_max_items + 1),
                         profile.items_per_segment)
    targets = rng.choice(len(pool), min(size, len(pool)), replace=False)
    pick = targets[rng.integers(len(targets), size=length)]
    gaps = context.gaps(rng, length - 1, params.bot_gap_seconds, params.bot_gap_sigma)
    segments.append(_segment(user, _times(start, gaps), context.actions(rng, length),
                             pool[pick], pool_category[pick], 'click_bot'))
  return segments, []


def _brushing_groups(victims, size):
  return [victims[i:i + size] for i in range(0, len(victims), size)]


def order_brushing_segments(victims, context: _Context):
  """Order-brushing segments, one per victim, shops shared inside collusive groups."""
  params, length = context.params, context.params.segment_length
  catalog, table = context.catalog, context.table
  sizes = np.diff(catalog.starts)
  # Prefer categories that can stock a full shop; tiny tables may have none.
  shops = np.flatnonzero(sizes >= params.brushing_items)
  if not len(shops):
    shops = np.arange(len(catalog.categories))
  max_cycles = length // 2  # enough to fill the segment even without carts
  cycles = int(np.rint(lerp(max_cycles, min(params.brushing_min_buys, max_cycles),
                            context.camouflage)))
  segments = []
  for group in _brushing_groups(np.asarray(victims), params.brushing_group_size):
    # The group shares its shop and its hour; the rest is drawn per account.
    group_rng = context.rng_for('order_brushing', group[0], part=1)
    position = group_rng.choice(shops)
    pool = catalog.items_of(position)
    shop = group_rng.choice(pool, min(params.brushing_items, len(pool)), replace=False)
    group_start = context.start(group_rng, group[0])
    for user in group:
      rng = context.rng_for('order_brushing', user)
      start = group_start + int(rng.integers(params.brushing_group_window_seconds))
      # Blocks: `cycles` view->(cart->)buy cycles, the rest single browsing views
      # of popular items, in a random order.
      carts = rng.random(max_cycles) < params.brushing_cart_prob
      cycle_types = [[events.VIEW, events.CART, events.BUY] if cart
                     else [events.VIEW, events.BUY] for cart in carts[:cycles]]
      filler = max(length - sum(map(len, cycle_types)), 0)
      blocks = cycle_types + [[events.VIEW]] * filler
      order = rng.permutation(len(blocks))
      event_type = np.concatenate([blocks[b] for b in order])[:length].astype(np.int8)
      block = np.repeat(np.arange(len(blocks)), [len(blocks[b]) for b in order])[:length]
      in_cycle = order[block] < cycles

      # Cycle events buy shop items; filler views look at what genuine users view.
      bought = rng.choice(shop, len(blocks))[block]
      rows = rng.integers(len(table), size=length)
      item = np.where(in_cycle, bought, table.item[rows])
      category = np.where(in_cycle, catalog.categories[position], table.category[rows])

      step = context.gaps(rng, length, params.brushing_step_seconds, 0.5)
      between = context.gaps(rng, length, params.brushing_cycle_seconds, 0.5)
      new_block = np.append(True, block[1:] != block[:-1])
      gaps = np.where(new_block, between, step)[1:]
      segments.append(_segment(user, _times(start, gaps), event_type, item, category,
                               'order_brushing'))
  return segments, []


def _takeover_start(ts: np.ndarray, rng: np.random.Generator, params: AnomalyParams,
                    own_hour: bool):
  """A night moment (or, camouflaged, one of the victim's own hours) on a local
  day in the later half of the victim's history."""
  offset = params.utc_offset_hours * _HOUR
  moment = rng.integers(ts[len(ts) // 2], ts[-1] + 1)
  midnight = (moment + offset) // _DAY * _DAY - offset
  night = rng.integers(params.takeover_first_hour * _HOUR, params.takeover_last_hour * _HOUR)
  own = (rng.choice(ts) + offset) % _DAY
  start = midnight + (own if own_hour else night)
  # Only a history shorter than a day can begin after that moment; take the next day.
  return start + _DAY if start < ts[0] else start


def _unseen_items(catalog, positions, excluded, count, fresh_item, fresh_category, rng):
  """`count` distinct items of the categories at `positions`, none in `excluded`.

  Returns:
    ([count] item ids, [count] their category ids).
  """
  pool, pool_category = catalog.pool(positions)
  keep = ~np.isin(pool, excluded)
  picked = rng.choice(np.flatnonzero(keep), min(count, int(keep.sum())), replace=False)

  # A catalogue too small to supply them gets items that no one has seen.
  missing = count - len(picked)
  return (np.concatenate([pool[picked], fresh_item + np.arange(missing)]),
          np.concatenate([pool_category[picked], np.full(missing, fresh_category)]))


def account_takeover_segments(victims, context: _Context):
  """One account-takeover segment per victim; returns (new rows, no replaced rows)."""
  params, catalog, table = context.params, context.catalog, context.table
  fresh_item = int(catalog.items.max()) + 1
  fresh_category = int(catalog.categories.max()) + 1
  purchases = int(np.rint(lerp(params.takeover_purchases, 1, context.camouflage)))
  num_views = params.segment_length - 2 * purchases
  segments = []
  for user in victims:
    rng = context.rng_for('account_takeover', user)
    rows = _user_rows(table, user)
    ts = table.timestamp[rows]
    untouched = np.flatnonzero(~np.isin(catalog.categories, table.category[rows]))
    chosen = rng.choice(untouched, min(params.takeover_categories, len(untouched)),
                        replace=False)

    # Browse: dwell on one chosen category, then move on to the next one.
    switch = rng.random(num_views) < params.takeover_switch_prob
    dwell = (np.cumsum(switch) - switch[0]) % max(len(chosen), 1)
    if len(chosen):
      view_category = catalog.categories[chosen][dwell]
      lo, size = catalog.starts[chosen][dwell], np.diff(catalog.starts)[chosen][dwell]
      view_item = catalog.items[lo + (rng.random(num_views) * size).astype(np.int64)]
    else:
      logging.warning('Takeover victim %d touched every category; using new ids.', user)
      view_category = np.full(num_views, fresh_category)
      view_item = fresh_item + params.takeover_purchases + rng.integers(
          num_views, size=num_views)

    # Camouflaged views revisit what the owner looked at (so the category mix
    # looks like theirs); the loot stays unseen.
    own = rng.integers(rows.start, rows.stop, size=num_views)
    mimic = rng.random(num_views) < context.camouflage
    view_item = np.where(mimic, table.item[own], view_item)
    view_category = np.where(mimic, table.category[own], view_category)

    # Checkout rush: cart every loot item, then buy them, none seen by the victim.
    loot, loot_category = _unseen_items(
        catalog, chosen, np.concatenate([table.item[rows], view_item]),
        purchases, fresh_item, fresh_category, rng)
    event_type = np.concatenate([np.full(num_views, events.VIEW),
                                 np.full(len(loot), events.CART),
                                 np.full(len(loot), events.BUY)])

    gaps = context.gaps(rng, params.segment_length - 1, params.takeover_gap_seconds,
                        params.takeover_gap_sigma)
    own_hour = rng.random() < context.camouflage
    timestamp = _times(_takeover_start(ts, rng, params, own_hour), gaps)
    segments.append(_segment(
        user, timestamp, event_type, np.concatenate([view_item, loot, loot]),
        np.concatenate([view_category, loot_category, loot_category]),
        'account_takeover'))
  return segments, []


def scraper_segments(victims, context: _Context):
  """One crawler sweep per victim; returns (new rows, no replaced rows)."""
  params, length = context.params, context.params.segment_length
  catalog = context.catalog
  profile = context.profile
  per_category = context.count(params.scraper_items_per_category,
                               profile.items_per_segment / profile.categories_per_segment)
  sizes = np.diff(catalog.starts)
  segments = []
  for user in victims:
    rng = context.rng_for('scraper', user)
    start = context.start(rng, user)
    # The sweep: categories in id order from a random one, items in id order, as
    # many categories as it takes to fill the segment.
    first = int(rng.integers(len(catalog.categories)))
    positions = (first + np.arange(len(catalog.categories))) % len(catalog.categories)
    taken = np.cumsum(np.minimum(sizes[positions], per_category))
    positions = positions[:int(np.searchsorted(taken, length)) + 1]
    pool, pool_category = catalog.pool(positions)
    offsets = np.concatenate([[0], np.cumsum(sizes[positions])])
    swept = np.concatenate([np.arange(o, min(o + per_category, e))
                            for o, e in zip(offsets, offsets[1:])])
    swept = np.resize(swept, length)  # a tiny catalogue is swept again from the start

    # Camouflaged views go back to an item swept earlier, as a shopper comparing
    # items would; the first view is always new.
    back = rng.integers(1, 8, size=length)
    revisit = rng.random(length) < context.camouflage * (1 - context.profile.new_item_share)
    revisit[0] = False
    source = np.where(revisit, np.maximum(np.arange(length) - back, 0), np.arange(length))
    while np.any(source != source[source]):
      source = source[source]
    pick = swept[source]
    gaps = context.gaps(rng, length - 1, params.scraper_gap_seconds, 0.2)
    segments.append(_segment(user, _times(start, gaps), context.actions(rng, length),
                             pool[pick], pool_category[pick], 'scraper'))
  return segments, []


def cart_farming_segments(victims, context: _Context):
  """One cart/fav farming segment per victim; returns (new rows, no replaced rows)."""
  params, length = context.params, context.params.segment_length
  profile = context.profile
  normal_share = profile.type_mix[events.CART] + profile.type_mix[events.FAV]
  share = lerp(params.farming_action_share, normal_share, context.camouflage)
  segments = []
  for user in victims:
    rng = context.rng_for('cart_farming', user)
    start = context.start(rng, user)
    positions = context.categories(rng, context.count(params.farming_categories,
                                                 profile.categories_per_segment))
    pool, pool_category = context.catalog.pool(positions)
    # Actions hit the farmed items, never viewed in the segment; views look at
    # what genuine users view, the farmed items excepted.
    u = rng.random(length)
    event_type = np.where(u < share / 2, events.CART,
                          np.where(u < share, events.FAV, events.VIEW)).astype(np.int8)
    acted = event_type != events.VIEW
    farmed = rng.permutation(len(pool))[np.arange(length) % len(pool)]
    rows = rng.integers(len(context.table), size=4 * length)
    rows = rows[~np.isin(context.table.item[rows], pool[farmed[acted]])]
    rows = np.resize(rows, length) if len(rows) else np.zeros(length, np.int64)
    item = np.where(acted, pool[farmed], context.table.item[rows])
    category = np.where(acted, pool_category[farmed], context.table.category[rows])
    gaps = context.gaps(rng, length - 1, params.farming_gap_seconds, 0.4)
    segments.append(_segment(user, _times(start, gaps), event_type, item, category,
                             'cart_farming'))
  return segments, []


def _ranks_in_groups(sorted_groups: np.ndarray) -> np.ndarray:
  """[n] position of each element inside its run of equal sorted values."""
  first = np.flatnonzero(np.append(True, sorted_groups[1:] != sorted_groups[:-1]))
  return np.arange(len(sorted_groups)) - np.repeat(
      first, np.diff(np.append(first, len(sorted_groups))))


def order_eligible(table: events.EventTable, params: AnomalyParams) -> np.ndarray:
  """Users with at least `segment_length` / 2 events, some of them carts, favs
  or buys (a views-only history has no order to make implausible). Returns
  sorted [users] ids."""
  users, first, counts = np.unique(table.user, return_index=True, return_counts=True)
  actions = np.add.reduceat((table.event_type != events.VIEW).astype(np.int64),
                            first) if len(first) else np.zeros(0, np.int64)
  return users[(counts >= max(2, params.segment_length // 2)) & (actions > 0)]


# Order in which a reordered stretch plays its events: purchases first, then
# carts, favs and, last, the page views that led to them.
_REORDER_PRIORITY = np.array([3, 1, 2, 0])  # by event type: view, cart, fav, buy


def _reorder_block(event_type, category, share, rng):
  """[n] order of one block's events: the head (`share`) sorted by type, buys
  first and then carts, favs, views; inside a type, events take turns across
  categories (the k-th event of every category, then the (k+1)-th, ...), so no
  two neighbours share a category where avoidable. The tail keeps its order."""
  size = len(event_type)
  moved = min(size, max(2, int(np.rint(share * size))))
  priority = _REORDER_PRIORITY[event_type[:moved]]
  key = priority.astype(np.int64) * (category.max() + 1) + category[:moved]
  _, group = np.unique(key, return_inverse=True)
  turn = np.zeros(moved, np.int64)
  by_group = np.argsort(group, kind='stable')
  turn[by_group] = _ranks_in_groups(group[by_group])
  group_key = rng.random(size)[group]
  return np.concatenate([np.lexsort((group_key, turn, priority)),
                         np.arange(moved, size)])


def order_anomaly_segments(victims, context: _Context):
  """Rewrites each victim's history into an implausible order; returns (rewritten
  rows, [the table rows they replace])."""
  params, table = context.params, context.table
  length = params.segment_length
  share = lerp(1.0, params.order_min_share, context.camouflage)
  segments, replaced = [], []
  for user in victims:
    rng = context.rng_for('order_anomaly', user)
    rows = _user_rows(table, user)
    index = np.arange(rows.start, rows.stop)
    # Consecutive blocks of `segment_length` events, each reordered on its own.
    order = np.concatenate([
        start + _reorder_block(table.event_type[index[start:start + length]],
                               table.category[index[start:start + length]], share, rng)
        for start in range(0, len(index), length)])
    source = index[order]
    segments.append(_segment(user, table.timestamp[index], table.event_type[source],
                             table.item[source], table.category[source],
                             'order_anomaly'))
    replaced.append(index)
  return segments, replaced


# Kind name -> function making that kind's segments for a set of victims.
SEGMENT_MAKERS = {
    'click_bot': click_bot_segments,
    'order_brushing': order_brushing_segments,
    'account_takeover': account_takeover_segments,
    'scraper': scraper_segments,
    'cart_farming': cart_farming_segments,
    'order_anomaly': order_anomaly_segments,
}

# Kind name -> function giving the users it can be injected into.
ELIGIBLE = {'order_anomaly': order_eligible}


def victim_counts(num_candidates: int, params: AnomalyParams) -> list[int]:
  """Victims per kind in `params.kinds`: round(user_fraction * candidates), at least
  one per kind while disjoint candidates last."""
  counts = []
  for _ in params.kinds:
    count = round(params.user_fraction * num_candidates)
    if params.user_fraction > 0:
      count = max(count, 1)
    counts.append(min(count, num_candidates - sum(counts)))
  return counts


def inject_anomalies(table: events.EventTable, candidate_users: np.ndarray,
                     params: AnomalyParams, seed: int) -> events.EventTable:
  """Injects every kind of `params.kinds` into disjoint victims among the candidates.

  Args:
    table: any event table; its rows come back unchanged except those that an
      order anomaly rewrites (which are relabelled).
    candidate_users: [users] ids of users that may become victims; all must have
      events in `table`.
    params: what to inject.
    seed: seeds `np.random.default_rng`; equal inputs and seed give identical output.

  Returns:
    The genuine rows plus `segment_length` anomalous rows per victim (order
    anomalies: up to that many, rewritten in place), sorted by (user, timestamp),
    labelled in the `kind` column.
  """
  rng = np.random.default_rng(seed)
  if not table.is_sorted():
    table = table.sort()
  candidates = np.unique(np.asarray(candidate_users, dtype=np.int64))
  if params.user_fraction > 0 and params.kinds and not len(candidates):
    raise ValueError('inject_anomalies got no candidate users but user_fraction > 0.')
  # The table is sorted by user, so a binary search finds who has events.
  position = np.minimum(np.searchsorted(table.user, candidates), max(len(table) - 1, 0))
  absent = candidates[table.user[position] != candidates] if len(table) else candidates
  if len(absent):
    raise ValueError(f'{len(absent)} candidate users have no events in the table, '
                     f'e.g. {absent[:5].tolist()}.')
  counts = victim_counts(len(candidates), params)
  if not sum(counts):
    return table

  context = _Context(table, seed, params, Catalog.from_table(table),
                     NormalProfile.from_table(table, params.segment_length,
                                              params.utc_offset_hours))
  remaining = rng.permutation(candidates)
  parts, replaced = [], []
  for name, count in zip(params.kinds, counts):
    pool = remaining
    if name in ELIGIBLE:
      pool = remaining[np.isin(remaining, ELIGIBLE[name](table, params))]
    victims = np.sort(pool[:count])
    remaining = remaining[~np.isin(remaining, victims)]
    if len(victims) < count:
      logging.warning('Only %d of %d wanted candidate users can take %s.', len(victims),
                      count, name)
    if not len(victims):
      continue
    segments, rows = SEGMENT_MAKERS[name](victims, context)
    segments = events.EventTable.concatenate(segments)
    logging.info('Injected %s (camouflage %.2f) into %d users: %d events.', name,
                 params.camouflage, len(victims), len(segments))
    parts.append(segments)
    replaced += rows

  keep = np.ones(len(table), dtype=bool)
  if replaced:
    keep[np.concatenate(replaced)] = False
  return events.EventTable.concatenate([table.take(keep)] + parts).sort()
