"""The throughput benchmark end to end at tiny sizes, with its PyTorch peers if installed."""

import importlib.util
import json

import numpy as np
import pytest

from benchmarks import throughput

TINY = throughput.Shape(length=8, train_batch=4, score_batch=8, hidden=16)
HAS_TORCH = importlib.util.find_spec('torch') is not None


def test_tiny_run_writes_rows_tables_and_streaming(tmp_path):
  rows = throughput.run('default', str(tmp_path), ['lstm', 'transformer'],
                        torch_mode='auto', rounds=2, repeats=2, streams=[2],
                        shapes=[TINY])
  jax_rows = {r['detector']: r for r in rows if r['framework'] == 'jax'}
  assert set(jax_rows) == {'lstm-next', 'transformer-next'}
  for row in jax_rows.values():
    assert row['train_seq_per_s'] > 0 and row['score_seq_per_s'] > 0
    assert row['train_p50_ms'] <= row['train_p99_ms']
    assert row['train_repeats'] == row['rounds'] * 2
    # FLOPs from the traced program; utilisation against the peak of the same run.
    assert row['train_flops'] > row['score_flops'] / row['score_batch_size']
    np.testing.assert_allclose(
        row['train_utilisation'],
        row['train_flops'] / (row['train_p50_ms'] / 1e3) / row['peak_flops_per_s'])
    assert row['window_length'] == 8 and row['backend'] and 'load_before' in row

  written = [json.loads(line) for line in open(tmp_path / 'default.jsonl')]
  assert len(written) == len(rows)
  table = open(tmp_path / 'default.md').read()
  assert 'vs torch' in table and 'lstm-next' in table

  streamed = [json.loads(line) for line in open(tmp_path / 'streaming.jsonl')]
  # The transformer has no one-event step: only the LSTM streams.
  assert [r['detector'] for r in streamed] == ['lstm-next']
  assert streamed[0]['events_per_s'] > 0 and streamed[0]['compiled_steps'] == 1
  assert streamed[0]['history_events'] == 2000

  if HAS_TORCH:
    torch_rows = {r['detector']: r for r in rows if r['framework'] == 'torch'}
    assert set(torch_rows) == {'lstm-next', 'transformer-next'}
    for name, row in jax_rows.items():
      for part in ('train', 'score'):
        np.testing.assert_allclose(
            row[f'{part}_vs_torch'],
            row[f'{part}_seq_per_s'] / torch_rows[name][f'{part}_seq_per_s'])
  else:
    assert all(r['framework'] == 'jax' for r in rows)


@pytest.mark.skipif(not HAS_TORCH, reason='the torch extra is not installed')
def test_torch_peers_compute_the_same_loss_as_their_definition():
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  from seqad import batching  # pylint: disable=g-import-not-at-top

  config = TINY.neural_config()
  windows = throughput.random_windows(4, TINY.length)
  batch = batching.gather(windows, np.arange(4))
  workload = torch_reference.Workload('transformer', throughput.VOCAB_SIZES, config,
                                      batch, batch)
  tokens, mask = workload.score_batch
  with torch.inference_mode():
    key, relation, gap = workload.model(tokens, mask)
  # The NLL by hand from the three heads' log-probabilities.
  log_key, log_relation, log_gap = (torch.log_softmax(x, -1) for x in (key, relation, gap))
  keys = tokens['event_type'] * throughput.VOCAB_SIZES['category'] + tokens['category']
  b, t = np.meshgrid(np.arange(4), np.arange(TINY.length), indexing='ij')
  expected = -(log_key[b, t, keys] +
               log_relation[b, t, tokens['event_type'], tokens['item_relation']] +
               log_gap[b, t, tokens['gap']]).mean(axis=1)
  np.testing.assert_allclose(workload.score(), expected, rtol=1e-5)
  losses = [float(workload.train_step()) for _ in range(8)]
  assert losses[-1] < losses[0]  # The same eight-step batch is being fitted.
