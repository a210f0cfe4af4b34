"""Atomic writes: a reader never sees a half-written results file."""

import json
import os
import tempfile
from typing import Any, Iterable


def _umask() -> int:
  """The process umask, read without changing it where Linux allows (setting it
  briefly would race with files other threads create)."""
  try:
    with open('/proc/self/status') as stream:
      for line in stream:
        if line.startswith('Umask:'):
          return int(line.split()[1], 8)
  except OSError:
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def write_text_atomic(path: str, text: str) -> None:
  """Writes `text` to `path` via a temporary file in the same folder + rename."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  handle, temporary = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.part')
  try:
    # mkstemp makes the file private (0600); give it the usual permissions.
    os.chmod(temporary, 0o666 & ~_umask())
    with os.fdopen(handle, 'w') as stream:
      stream.write(text)
      stream.flush()
      os.fsync(stream.fileno())
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


def write_json_atomic(path: str, obj: Any) -> None:
  write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def write_jsonl_atomic(path: str, rows: Iterable[dict]) -> None:
  write_text_atomic(path, ''.join(json.dumps(row, sort_keys=True) + '\n' for row in rows))


def read_jsonl(path: str) -> list[dict]:
  with open(path) as stream:
    return [json.loads(line) for line in stream if line.strip()]


def append_jsonl_atomic(path: str, rows: Iterable[dict]) -> None:
  """Appends `rows` to a JSON-lines file by rewriting it atomically.

  The old content plus the new rows go to a temporary file that replaces
  `path`, so a crash leaves either the old file or the new one, never a torn
  line. Rewriting costs O(file) per call, fine for result files of a few MB.
  """
  existing = ''
  if os.path.exists(path):
    with open(path) as stream:
      existing = stream.read()
  if existing and not existing.endswith('\n'):
    existing += '\n'
  new = ''.join(json.dumps(row, sort_keys=True) + '\n' for row in rows)
  write_text_atomic(path, existing + new)
