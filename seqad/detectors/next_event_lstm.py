"""The LSTM next-event detector: training, jitted batched scoring, timings."""

import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from seqad import batching
from seqad import training
from seqad.data import windows as windows_lib
from seqad.detectors import base
from seqad.models import next_event


class NextEventLSTMDetector(base.Detector):
  """Anomaly score = mean negative log-likelihood of a window's real events.

  Args:
    vocab_sizes: field -> vocabulary size, from the fitted `Vocabulary`.
    config: the `lstm` config section (model sizes and optimisation).
    seed: initialisation and data-order seed.
  """

  name = 'lstm'

  def __init__(self, vocab_sizes: dict[str, int], config: ml_collections.ConfigDict,
               seed: int):
    super().__init__()
    self.config = config
    self.seed = seed
    self.num_categories = vocab_sizes['category']
    self.model = next_event.NextEventLSTM(
        vocab_sizes=dict(vocab_sizes), embed_dim=config.embed_dim, hidden=config.hidden,
        num_layers=config.num_layers, unroll=config.unroll)
    self.params = None
    self._compiled_scorers = {}

  def _event_nll(self, params, batch):
    logits = self.model.apply(params, batch['tokens'])
    return next_event.event_nll(logits, batch['tokens'], self.num_categories)

  def _loss(self, params, batch):
    return next_event.masked_mean(self._event_nll(params, batch), batch['mask'])

  def _window_scores(self, params, batch):
    nll = self._event_nll(params, batch)
    return next_event.masked_mean(nll, batch['mask'], axis=1)

  def fit(self, train, validation=None):
    del validation  # TODO: early stopping on validation loss lands with the engine.
    config = self.config
    example = batching.gather(train, np.arange(min(len(train), config.batch_size)))
    params = jax.jit(self.model.init)(jax.random.key(self.seed), example['tokens'])
    num_params = sum(x.size for x in jax.tree.leaves(params))
    logging.info('%s: %d parameters, training %d steps of %d windows.', self.name,
                 num_params, config.num_steps, config.batch_size)

    optimizer = training.make_optimizer(
        config.learning_rate, config.weight_decay, config.clip_norm,
        config.warmup_steps, config.num_steps)
    self.params, stats = training.train(
        self._loss, params, optimizer, train, num_steps=config.num_steps,
        batch_size=config.batch_size, seed=self.seed, log_every=config.log_every)
    self.loss_history = stats.pop('loss_history')
    self.timings.update(stats)
    self.timings['num_params'] = num_params
    return self

  def _scorer(self, batch):
    """The scoring function compiled for this batch shape (once per shape)."""
    shape = batch['mask'].shape
    if shape not in self._compiled_scorers:
      start = time.perf_counter()
      self._compiled_scorers[shape] = (
          jax.jit(self._window_scores).lower(self.params, batch).compile())
      self.timings['score_compile_s'] = time.perf_counter() - start
    return self._compiled_scorers[shape]

  def decision_function(self, windows: windows_lib.Windows) -> np.ndarray:
    if self.params is None:
      raise RuntimeError(f'{self.name}: decision_function called before fit.')
    pending = []
    for batch, valid in batching.padded_batches(windows, self.config.score_batch_size):
      pending.append((self._scorer(batch)(self.params, batch), valid))
    # Read back only after every batch is dispatched, so the device never idles.
    scores = [np.asarray(scores)[:valid] for scores, valid in pending]
    return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)
