"""From a data config to train / validation / test windows with labels.

The steps, in order: load or simulate the event table; split users into
disjoint train, validation and test sets; inject labelled anomalies into the
validation and test users (and into training users only at the configured
contamination rate); fit the vocabulary on the training users alone; cut each
split into windows. Raw user ids never leave this module.
"""

import dataclasses

from absl import logging
import ml_collections
import numpy as np

from seqad import settings
from seqad.data import anomalies
from seqad.data import diginetica
from seqad.data import events
from seqad.data import simulator
from seqad.data import taobao
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
  source = config.data.source
  if source == 'simulator':
    params = simulator.SimulatorParams(**config.simulator)
    table = simulator.simulate(params, seed=config.seed)
    return table, {'source': 'simulator', 'events': len(table),
                   'users': int(len(table.users()))}
  loaders = {'taobao': taobao.load_taobao, 'diginetica': diginetica.load_diginetica}
  if source in loaders:
    if not config.data.path:
      raise ValueError(f'config.data.source={source} needs --config.data.path=FILE')
    table, load_report = loaders[source](config.data.path)
    return table, {'source': source, **load_report.to_dict()}
  raise ValueError(f'Unknown data source {source!r}; expected simulator or one of '
                   f'{tuple(loaders)}.')


def build(config: ml_collections.ConfigDict) -> Dataset:
  """Builds the labelled windows of every split; deterministic in `config.seed`."""
  table, report = load_events(config)
  data = config.data
  train_users, validation_users, test_users = windows_lib.split_users(
      table.users(), tuple(data.split), seed=config.seed)

  # Settings (seqad/settings.py): 'clean' injects into training users only at an
  # explicit train_contamination (then labelled, for supervised objectives).
  setting = settings.check(data.get('setting', 'clean'))
  contaminate_train = setting != 'clean' or data.train_contamination > 0
  report['setting'] = setting

  # Distinct seeds per split, so each split's anomalies are drawn independently.
  anomaly_params = anomalies.AnomalyParams(**config.anomalies)
  split_tables = {}
  for offset, (split, users) in enumerate(
      zip(SPLITS, (train_users, validation_users, test_users))):
    split_table = table.select_users(users)
    if split != 'train' or contaminate_train:
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
      utc_offset_hours=data.utc_offset_hours)

  split_windows = {}
  for split, split_table in split_tables.items():
    windows = windows_lib.make_windows(
        split_table, vocab, length=data.window_length, min_events=data.min_events,
        label_min_fraction=data.label_min_fraction)
    ambiguous = int(np.sum(windows.kind == windows_lib.AMBIGUOUS))
    if ambiguous:
      logging.info('%s: leaving out %d windows with too few injected events to label.',
                   split, ambiguous)
    # Raw training traffic keeps its ambiguous windows: nobody labelled them.
    keep_all = split == 'train' and setting != 'clean'
    split_windows[split] = windows if keep_all else windows.drop_ambiguous()
    report[f'{split}_users'] = int(len(split_table.users()))
    # Counted before the ambiguous windows are dropped, so the report shows them.
    report[f'{split}_windows'] = windows.counts()

  report['vocab_sizes'] = vocab.sizes()
  logging.info('Windows per split and kind: %s',
               {s: report[f'{s}_windows'] for s in SPLITS})
  return Dataset(split_windows['train'], split_windows['validation'],
                 split_windows['test'], vocab, report)
