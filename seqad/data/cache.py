"""On-disk cache of loaded event tables, keyed by the input files and the load config.

Parsing a large log takes far longer than reading back its arrays, so a load is
saved as one uncompressed `.npz` file named by a key: a BLAKE2b hash of every input
file's contents (not its name or time stamp) and of the settings that change what
the loader returns. A change to either gives a new key, so a cache from another
file or config is never reused. Files are written atomically and read back with
`allow_pickle=False`; the load report travels inside as UTF-8 JSON bytes.
"""

import hashlib
import json
import os
import tempfile

from absl import logging
import numpy as np

from seqad.data import events
from seqad.data import tabular

# Bump when the loaders' output changes for the same input and settings.
CACHE_VERSION = 2  # 2: int32 columns where they fit; decimal timestamps parse.
_READ_BYTES = 8 << 20


def file_digest(path: str) -> str:
  """BLAKE2b hex digest of a file's contents."""
  digest = hashlib.blake2b(digest_size=20)
  with open(path, 'rb') as stream:
    while chunk := stream.read(_READ_BYTES):
      digest.update(chunk)
  return digest.hexdigest()


def cache_key(paths: list[str], settings: dict) -> str:
  """The key of a load: the files' contents and the JSON-able `settings`."""
  digest = hashlib.blake2b(digest_size=20)
  digest.update(json.dumps({'version': CACHE_VERSION, 'settings': settings},
                           sort_keys=True, default=str).encode())
  for path in paths:
    digest.update(file_digest(path).encode())
  return digest.hexdigest()


def default_dir() -> str:
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'),
                                                          '.cache')
  return os.path.join(base, 'seqad', 'data')


def save(directory: str, key: str, loaded: tabular.Loaded) -> str:
  """Writes `loaded` under `key`; returns the file's path."""
  os.makedirs(directory, exist_ok=True)
  arrays = {f'table.{name}': values for name, values in loaded.table.columns().items()}
  arrays.update({f'extra.{name}': values for name, values in loaded.extras.items()})
  if loaded.owners is not None:
    arrays['owners'] = loaded.owners
  report = json.dumps(loaded.report.to_dict()).encode()
  arrays['report'] = np.frombuffer(report, dtype=np.uint8)

  path = os.path.join(directory, f'{key}.npz')
  descriptor, temporary = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.npz')
  try:
    with os.fdopen(descriptor, 'wb') as stream:
      np.savez(stream, **arrays)
    os.replace(temporary, path)
  except BaseException:
    os.unlink(temporary)
    raise
  return path


def load(directory: str, key: str) -> tabular.Loaded | None:
  """The load saved under `key`, or None if there is none (or it is unreadable)."""
  path = os.path.join(directory, f'{key}.npz')
  if not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as saved:
      arrays = {name: saved[name] for name in saved.files}
  except (OSError, ValueError) as error:
    logging.warning('Ignoring unreadable cache file %s: %s', path, error)
    return None
  report = tabular.LoadReport(**json.loads(arrays.pop('report').tobytes()))
  table = events.EventTable(**{name: arrays.pop(f'table.{name}')
                               for name in events.COLUMNS})
  owners = arrays.pop('owners', None)
  extras = {name.removeprefix('extra.'): values for name, values in arrays.items()}
  logging.info('Loaded %d events of %s from the cache %s.', len(table), report.path, path)
  return tabular.Loaded(table=table, report=report, extras=extras, owners=owners)
