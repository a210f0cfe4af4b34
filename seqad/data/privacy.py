"""Salted pseudonyms for user ids: raw ids never leave the data layer.

Results, logs and plots carry no raw user ids. Where something per user must be
exported (per-user scores, alerts), the raw id is replaced by `pseudonymize`: a
keyed BLAKE2b hash of the id under a secret salt. Without the salt the pseudonym
cannot be turned back into the id by hashing candidate ids; with the same salt the
same id always gets the same pseudonym, so exports of several runs can be joined.

The salt must not be written next to the pseudonyms. `load_salt` reads it from the
`SEQAD_ID_SALT` environment variable (hex) or from a file the caller names, kept
outside the results directory; `new_salt` makes a fresh one, which makes that
run's pseudonyms unlinkable to any other run's.

  salt = privacy.load_salt()              # or privacy.new_salt()
  names = privacy.pseudonymize(user_ids, salt)   # [users] str, 16 hex digits
"""

import hashlib
import os
import secrets

import numpy as np

SALT_ENV = 'SEQAD_ID_SALT'
SALT_BYTES = 32
# 64-bit pseudonyms: collisions are negligible below billions of users.
DIGEST_BYTES = 8


def new_salt() -> bytes:
  """A fresh random salt."""
  return secrets.token_bytes(SALT_BYTES)


def load_salt(path: str | os.PathLike | None = None) -> bytes:
  """The salt from `$SEQAD_ID_SALT` (hex), else from `path`, else a fresh one.

  A file named by `path` that does not exist yet is created with a fresh salt
  (readable by its owner only), so later runs reuse it.

  Raises:
    ValueError: if the variable or the file holds no valid hex salt of 16+ bytes.
  """
  text, origin = os.environ.get(SALT_ENV), f'${SALT_ENV}'
  if text is None and path is not None:
    path = os.fspath(path)
    if not os.path.exists(path):
      salt = new_salt()
      descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
      with os.fdopen(descriptor, 'w') as stream:
        stream.write(salt.hex() + '\n')
      return salt
    with open(path) as stream:
      text, origin = stream.read(), path
  if text is None:
    return new_salt()
  try:
    salt = bytes.fromhex(text.strip())
  except ValueError:
    salt = b''
  if len(salt) < 16:
    raise ValueError(f'{origin} must hold a salt of at least 16 bytes written in hex.')
  return salt


def pseudonymize(ids, salt: bytes) -> np.ndarray:
  """Replaces ids by salted hashes.

  Args:
    ids: [n] raw ids (integers or strings); equal ids give equal pseudonyms.
    salt: the secret key, at least 16 bytes.

  Returns:
    [n] str array of 16 hex digits each.
  """
  if len(salt) < 16:
    raise ValueError('The salt must be at least 16 bytes long.')
  ids = np.asarray(ids)
  if ids.ndim != 1:
    raise ValueError(f'ids must be 1-D, got shape {ids.shape}.')
  # Hash each distinct id once; an export holds at most one row per user anyway.
  distinct, inverse = np.unique(ids, return_inverse=True)
  names = np.array([
      hashlib.blake2b(str(value).encode(), key=salt[:64],
                      digest_size=DIGEST_BYTES).hexdigest()
      for value in distinct.tolist()], dtype=f'<U{2 * DIGEST_BYTES}')
  return names[inverse] if len(ids) else np.zeros(0, f'<U{2 * DIGEST_BYTES}')
