"""Neural detectors: any encoder x objective pair, trained and scored under jit."""

import time

from absl import logging
import jax
import ml_collections
import numpy as np

from seqad import batching
from seqad import training
from seqad.data import windows as windows_lib
from seqad.detectors import base
from seqad.models import encoders
from seqad.models import objectives


def parse_name(name: str) -> tuple[str, str] | None:
  """'lstm-next' -> ('lstm', 'next'); None if `name` is no neural detector."""
  encoder, _, objective = name.partition('-')
  if encoder in encoders.ENCODERS and objective in objectives.OBJECTIVES:
    return encoder, objective
  return None


class NeuralDetector(base.Detector):
  """Trains `objective` on top of `encoder`; window score = aggregated event scores.

  Args:
    name: '<encoder>-<objective>', e.g. 'lstm-next' or 'transformer-masked'.
    vocab_sizes: field -> vocabulary size, from the fitted `Vocabulary`.
    config: the `neural` config section (sizes, optimisation, scoring), with
      the encoder's fields in `config.encoder`.
    seed: initialisation, masking and data-order seed.
  """

  def __init__(self, name: str, vocab_sizes: dict[str, int],
               config: ml_collections.ConfigDict, seed: int):
    super().__init__()
    parsed = parse_name(name)
    if parsed is None:
      raise ValueError(f'{name!r} is not <encoder>-<objective> with an encoder of '
                       f'{encoders.ENCODERS} and an objective of {objectives.OBJECTIVES}.')
    encoder_name, objective_name = parsed
    self.name = name
    self.config = config
    self.seed = seed
    encoder = encoders.make_encoder(
        encoder_name, config.encoder, causal=objectives.CAUSAL[objective_name])
    self.objective = objectives.Objective(objective_name, vocab_sizes, encoder, config)
    self.params = None
    self._compiled_scorers = {}

  def _window_scores(self, params, batch):
    event_scores = self.objective.event_scores(params, batch)
    return objectives.aggregate(event_scores, batch['mask'], self.config.aggregation,
                                self.config.aggregation_k)

  def fit(self, train, validation=None):
    del validation  # TODO: early stopping on validation loss lands with the engine.
    config = self.config
    supervised = self.objective.name == 'sup'
    if supervised and not np.any(train.kind > 0):
      raise ValueError(f'{self.name} needs labelled anomalous windows in training; '
                       'set --config.data.train_contamination above 0.')
    example = batching.gather(train, np.arange(min(len(train), config.batch_size)))
    params = jax.jit(self.objective.init)(jax.random.key(self.seed), example)
    num_params = sum(x.size for x in jax.tree.leaves(params))
    logging.info('%s: %d parameters, training %d steps of %d windows.', self.name,
                 num_params, config.num_steps, config.batch_size)

    optimizer = training.make_optimizer(
        config.learning_rate, config.weight_decay, config.clip_norm,
        config.warmup_steps, config.num_steps)
    self.params, stats = training.train(
        self.objective.loss, params, optimizer, train, num_steps=config.num_steps,
        batch_size=config.batch_size, seed=self.seed, log_every=config.log_every,
        with_labels=supervised)
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
