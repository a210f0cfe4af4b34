"""From a data config to train / validation / test windows with labels.

The steps, in order: load or simulate the event table; split users into
disjoint train, validation and test sets; inject labelled anomalies into the
validation and test users (and into training users only at the configured
contamination rate); fit the vocabulary on the training users alone; cut each
split into windows. Raw user ids never leave this module.

Files are read by `seqad.data.sources` (cached on disk); users are split by user
or by time (`seqad.data.splits`); a labels file (`seqad.data.labels`) replaces the
injection. The report holds the load counts, an events profile, the windows per
split and kind, and the count of windows duplicated across splits.
"""

import dataclasses

from absl import logging
import ml_collections
import numpy as np

from seqad import settings
from seqad.data import anomalies
from seqad.data import events
from seqad.data import labels as labels_lib
from seqad.data import profile
from seqad.data import simulator
from seqad.data import sources
from seqad.data import splits
from seqad.data import windows as windows_lib

SPLITS = ('train', 'validation', 'test')


@dataclasses.dataclass(frozen=True)
class Dataset:
  train: windows_lib.Windows
  validation: windows_lib.Windows
  test: windows_lib.Windows
  vocab: windows_lib.Vocabulary
  report: dict


def load_events(config: ml_collections.ConfigDict) -> tuple[events.EventTable, dict]:
  """The normal traffic named by `config.data.source`, and a load report."""
  table, report, _ = _load(config)
  return table, report


def _load(config: ml_collections.ConfigDict):
  """(table, report, owner map or None) of `config.data.source`."""
  source = config.data.source
  if source == 'simulator':
    params = simulator.SimulatorParams(**config.simulator)
    table = simulator.simulate(params, seed=config.seed)
    return table, {'source': 'simulator', 'events': len(table),
                   'users': int(len(table.users()))}, None
  if source in sources.FILE_SOURCES:
    loaded = sources.load(config.data)
    owner_of = (None if loaded.owners is None
                else splits.owner_map(loaded.table, loaded.owners))
    return loaded.table, {'source': source, **loaded.report.to_dict()}, owner_of
  raise ValueError(f'Unknown data source {source!r}; expected simulator or one of '
                   f'{sources.FILE_SOURCES}.')


def _split(table: events.EventTable, owner_of, config: ml_collections.ConfigDict,
           report: dict) -> tuple[events.EventTable, ...]:
  """Train / validation / test tables by `config.data.split_by`."""
  data = config.data
  if data.split_by == 'user':
    return splits.split_by_user(table, tuple(data.split), config.seed, owner_of)
  if data.split_by == 'time':
    parts, cuts = splits.split_by_time(table, tuple(data.split), data.utc_offset_hours)
    report['time_cuts'] = list(cuts)
    logging.info('Split by time at %s (Unix seconds).', cuts)
    return parts
  raise ValueError(f'config.data.split_by must be one of {splits.MODES}, got '
                   f'{data.split_by!r}.')


def build(config: ml_collections.ConfigDict) -> Dataset:
  """Builds the labelled windows of every split; deterministic in `config.seed`."""
  table, report, owner_of = _load(config)
  data = config.data
  event_types = report.get('event_types', list(events.EVENT_TYPES))
  report['events_profile'] = profile.describe(table, event_types,
                                              60 * data.session_gap_minutes)
  labelled = bool(data.labels_path)
  if labelled:
    table, report['labels'] = labels_lib.apply_labels(
        table, labels_lib.read_labels(data.labels_path, data.labels_string_ids),
        data.unlabelled_normal)
  split_parts = _split(table, owner_of, config, report)

  # Settings (seqad/settings.py): 'clean' injects into training users only at an
  # explicit train_contamination (then labelled, for supervised objectives).
  setting = settings.check(data.get('setting', 'clean'))
  contaminate_train = setting != 'clean' or data.train_contamination > 0
  report['setting'] = setting

  # Distinct seeds per split, so each split's anomalies are drawn independently.
  anomaly_params = anomalies.AnomalyParams(**config.anomalies)
  split_tables = {}
  for offset, (split, split_table) in enumerate(zip(SPLITS, split_parts)):
    users = split_table.users()
    # With a labels file the labels are the anomalies: nothing is injected.
    if not labelled and (split != 'train' or contaminate_train):
      params = anomaly_params
      if split == 'train':  # Rate 0 in a contaminated setting: the test rate.
        params = dataclasses.replace(
            params, user_fraction=data.train_contamination or params.user_fraction)
      split_table = anomalies.inject_anomalies(
          split_table, users, params, seed=config.seed * 1000 + offset + 1)
    split_tables[split] = split_table

  vocab = windows_lib.fit_vocabulary(
      split_tables['train'], max_categories=data.max_categories,
      min_count=data.min_category_count, num_gap_buckets=data.num_gap_buckets,
      utc_offset_hours=data.utc_offset_hours, num_event_types=len(event_types),
      item_encoding=data.item_encoding, max_items=data.max_items,
      min_item_count=data.min_item_count)

  split_windows = {}
  for split, split_table in split_tables.items():
    windows = windows_lib.make_windows(
        split_table, vocab, length=data.window_length, min_events=data.min_events,
        label_min_fraction=data.label_min_fraction, stride=data.window_stride or None,
        unit=data.window_unit, session_gap_seconds=60 * data.session_gap_minutes)
    ambiguous = int(np.sum(windows.kind == windows_lib.AMBIGUOUS))
    if ambiguous:
      logging.info('%s: leaving out %d windows with too few injected events to label.',
                   split, ambiguous)
    # Raw training traffic keeps its ambiguous windows: nobody labelled them.
    keep_all = split == 'train' and setting != 'clean'
    split_windows[split] = windows if keep_all else windows.drop_ambiguous()
    if labelled and split == 'train' and setting == 'clean':
      # Known anomalies from the labels file stay out of clean training data.
      split_windows[split] = windows.take(windows.kind == events.NORMAL)
    report[f'{split}_users'] = int(len(split_table.users()))
    # Counted before the ambiguous windows are dropped, so the report shows them.
    report[f'{split}_windows'] = windows.counts()

  report['vocab_sizes'] = vocab.sizes()
  report['duplicate_windows'] = splits.duplicate_windows(split_windows)
  profile.log_summary(report)
  logging.info('Windows per split and kind: %s',
               {s: report[f'{s}_windows'] for s in SPLITS})
  return Dataset(split_windows['train'], split_windows['validation'],
                 split_windows['test'], vocab, report)
