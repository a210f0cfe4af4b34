"""Tests of salted user-id pseudonyms."""

import hashlib

import numpy as np
import pytest

from seqad.data import privacy


def test_pseudonyms_are_keyed_hashes_stable_per_salt():
  salt = bytes(range(32))
  ids = np.array([1003693, 7, 1003693, 42])
  names = privacy.pseudonymize(ids, salt)

  expected = hashlib.blake2b(b'1003693', key=salt, digest_size=8).hexdigest()
  assert names[0] == names[2] == expected
  assert len(set(names.tolist())) == 3
  assert all(len(name) == 16 and str(i) not in name for name, i in zip(names, ids))
  other = privacy.pseudonymize(ids, privacy.new_salt())
  assert not set(other.tolist()) & set(names.tolist())
  # Decimal strings and integers name the same user.
  assert privacy.pseudonymize(np.array(['7']), salt)[0] == names[1]
  assert privacy.pseudonymize(np.zeros(0, np.int64), salt).shape == (0,)


def test_salt_from_environment_file_or_fresh(tmp_path, monkeypatch):
  monkeypatch.delenv(privacy.SALT_ENV, raising=False)
  path = tmp_path / 'salt'
  first = privacy.load_salt(path)
  assert privacy.load_salt(path) == first and len(first) == privacy.SALT_BYTES
  assert (path.stat().st_mode & 0o777) == 0o600
  assert privacy.load_salt() != privacy.load_salt()

  monkeypatch.setenv(privacy.SALT_ENV, 'ab' * 16)
  assert privacy.load_salt(path) == bytes([0xab] * 16)
  monkeypatch.setenv(privacy.SALT_ENV, 'not hex')
  with pytest.raises(ValueError, match='SEQAD_ID_SALT'):
    privacy.load_salt()
  with pytest.raises(ValueError, match='16 bytes'):
    privacy.pseudonymize(np.array([1]), b'short')
