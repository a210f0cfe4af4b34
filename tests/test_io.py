import os
import stat

import pytest

from seqad import io


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
  path = tmp_path / 'out' / 'results.jsonl'
  io.write_jsonl_atomic(str(path), [{'a': 1}, {'b': 2.5}])
  io.write_jsonl_atomic(str(path), [{'c': 3}])
  assert io.read_jsonl(str(path)) == [{'c': 3}]
  assert os.listdir(path.parent) == ['results.jsonl']


def test_failed_write_keeps_the_old_file(tmp_path):
  path = tmp_path / 'results.json'
  io.write_json_atomic(str(path), {'kept': True})
  with pytest.raises(TypeError):
    io.write_json_atomic(str(path), {'bad': object()})
  assert path.read_text().strip().startswith('{')
  assert '"kept": true' in path.read_text()
  assert os.listdir(tmp_path) == ['results.json']


def test_atomic_writes_get_the_usual_permissions(tmp_path):
  old = os.umask(0o022)
  try:
    path = tmp_path / 'out.json'
    io.write_json_atomic(str(path), {'a': 1})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
  finally:
    os.umask(old)
