"""A description of where a result was measured, stamped on every result row."""

import functools
import os
import platform
import subprocess

import jax

import seqad


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
  """The checkout's commit (with '+dirty' for local changes), or 'unknown'."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=root,
                            capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                           cwd=root, capture_output=True, text=True, check=True).stdout
    return commit + ('+dirty' if dirty.strip() else '')
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'


def describe() -> dict:
  devices = jax.devices()
  return {
      'seqad_version': seqad.__version__,
      'commit': git_commit(),
      'jax_version': jax.__version__,
      'backend': jax.default_backend(),
      'device_kind': devices[0].device_kind,
      'device_count': len(devices),
      'cpu_count': os.cpu_count(),
      'python': platform.python_version(),
      'machine': platform.machine(),
  }
