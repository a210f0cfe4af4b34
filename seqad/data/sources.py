"""From `config.data` to a loaded log: picks the format, uses the on-disk cache.

Sources (`config.data.source`):
  taobao        Taobao UserBehavior CSV (`seqad.data.taobao`)
  diginetica    DIGINETICA train-item-views (`seqad.data.diginetica`)
  retailrocket  RetailRocket events.csv (`seqad.data.retailrocket`)
  yoochoose     YOOCHOOSE clicks, or 'clicks,buys' (`seqad.data.yoochoose`)
  csv, parquet  any log, read by the column mapping in `config.data.table`
"""

import os

from absl import logging
import ml_collections

from seqad.data import cache
from seqad.data import diginetica
from seqad.data import retailrocket
from seqad.data import tabular
from seqad.data import taobao
from seqad.data import yoochoose

FILE_SOURCES = ('taobao', 'diginetica', 'retailrocket', 'yoochoose', 'csv', 'parquet')


def _names(text: str) -> tuple[str, ...]:
  return tuple(name.strip() for name in text.split(',') if name.strip())


def _event_map(text: str) -> dict[str, str] | None:
  """'raw:type,raw:type' -> {raw: type}; None when empty."""
  if not text.strip():
    return None
  mapping = {}
  for pair in text.split(','):
    raw, sep, common = pair.partition(':')
    if not sep or not raw.strip() or not common.strip():
      raise ValueError(f'config.data.table.event_map: {pair!r} is not raw:type.')
    mapping[raw.strip()] = common.strip()
  return mapping


def table_format(data: ml_collections.ConfigDict) -> tabular.Format:
  """The `tabular.Format` described by `config.data.table` (csv / parquet sources)."""
  spec = data.table
  columns = {role: name for role, name in spec.columns.items() if name}
  return tabular.Format(
      name=f'{data.source} log', columns=columns, header=spec.header,
      names=_names(spec.names) or None, delimiter=spec.delimiter,
      time_unit=spec.time_unit, time_offset_unit=spec.time_offset_unit,
      event_map=_event_map(spec.event_map),
      keep_unknown_events=spec.keep_unknown_events,
      default_event=spec.default_event, string_ids=_names(spec.string_ids),
      extras=_names(spec.extras))


def _read(data: ml_collections.ConfigDict, paths: list[str]) -> tabular.Loaded:
  max_rows = data.max_rows or None
  source = data.source
  if source == 'taobao':
    loaded = tabular.read_events(paths[0], taobao.taobao_format(), max_rows=max_rows)
  elif source == 'diginetica':
    loaded = tabular.read_events(paths[0], diginetica.DIGINETICA_FORMAT,
                                 max_rows=max_rows)
  elif source == 'retailrocket':
    loaded = retailrocket.load_retailrocket(paths[0], max_rows=max_rows)
  elif source == 'yoochoose':
    loaded = yoochoose.load_yoochoose(paths[0], paths[1] if len(paths) > 1 else None,
                                      max_rows=max_rows)
  else:
    loaded = tabular.read_events(paths[0], table_format(data), max_rows=max_rows)
  return loaded


def _settings(data: ml_collections.ConfigDict) -> dict:
  """The settings that change what a load returns: the cache key's config part."""
  settings = {'source': data.source, 'max_rows': data.max_rows}
  if data.source in ('csv', 'parquet'):
    settings['table'] = data.table.to_dict()
  return settings


def load(data: ml_collections.ConfigDict) -> tabular.Loaded:
  """Loads `data.path` (comma-separated for several files) as `data.source`.

  With `data.cache_dir` not 'none', the result is cached under a key of the files'
  contents and the load settings ('' for the default directory).
  """
  if data.source not in FILE_SOURCES:
    raise ValueError(f'Unknown file source {data.source!r}; expected one of '
                     f'{FILE_SOURCES}.')
  paths = list(_names(data.path))
  if not paths:
    raise ValueError(f'config.data.source={data.source} needs '
                     f'--config.data.path=FILE')
  if len(paths) > (2 if data.source == 'yoochoose' else 1):
    raise ValueError(f'config.data.path names {len(paths)} files; {data.source} '
                     f'reads {"two (clicks,buys)" if data.source == "yoochoose" else "one"}.')
  for path in paths:
    if not os.path.isfile(path):
      raise FileNotFoundError(f'{data.source} file not found: {path}')

  if data.cache_dir == 'none':
    return _read(data, paths)
  directory = data.cache_dir or cache.default_dir()
  key = cache.cache_key(paths, _settings(data))
  loaded = cache.load(directory, key)
  if loaded is not None:
    loaded.report.log()
    return loaded
  loaded = _read(data, paths)
  path = cache.save(directory, key, loaded)
  logging.info('Cached the loaded events in %s.', path)
  return loaded
