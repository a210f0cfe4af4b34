"""Neural detectors: any encoder x objective pair, trained and scored under jit."""

import dataclasses
import time

from absl import logging
import jax
import ml_collections
import numpy as np

from seqad import batching
from seqad import parallel
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
    plan: the devices training and scoring run on (default: one device).
    checkpoint_dir: where training checkpoints go; a rerun resumes from them.
    log_path: JSON-lines training log.
  """

  def __init__(self, name: str, vocab_sizes: dict[str, int],
               config: ml_collections.ConfigDict, seed: int,
               plan: parallel.DataParallel | None = None,
               checkpoint_dir: str | None = None, log_path: str | None = None):
    super().__init__()
    parsed = parse_name(name)
    if parsed is None:
      raise ValueError(f'{name!r} is not <encoder>-<objective> with an encoder of '
                       f'{encoders.ENCODERS} and an objective of {objectives.OBJECTIVES}.')
    encoder_name, objective_name = parsed
    self.name = name
    self.config = config
    self.seed = seed
    self.plan = plan or parallel.DataParallel('single')
    self.checkpoint_dir = checkpoint_dir
    self.log_path = log_path
    encoder = encoders.make_encoder(
        encoder_name, config.encoder, causal=objectives.CAUSAL[objective_name])
    self.objective = objectives.Objective(objective_name, vocab_sizes, encoder, config)
    self.params = None
    self.loss_history = []
    self._device_params = None
    self._compiled_scorers = {}

  def _window_scores(self, params, batch):
    event_scores = self.objective.event_scores(params, batch)
    return objectives.aggregate(event_scores, batch['mask'], self.config.aggregation,
                                self.config.aggregation_k)

  @property
  def supervised(self) -> bool:
    return self.objective.name == 'sup'

  def fit(self, train, validation=None):
    fitted = fit_seeds(self.name, self.objective, self.config, [self.seed], train,
                       validation, self.plan, self.checkpoint_dir, self.log_path)
    self._take(fitted[0])
    return self

  def _take(self, fitted: dict) -> None:
    self.params = fitted['params']
    self.loss_history = fitted['stats']['loss_history']
    self.timings.update({k: v for k, v in fitted['stats'].items() if k != 'loss_history'})
    self._device_params = None

  def _scorer(self, batch):
    """The scoring function compiled for this batch shape (once per shape)."""
    shape = batch['mask'].shape
    if shape not in self._compiled_scorers:
      start = time.perf_counter()
      self._compiled_scorers[shape] = self.plan.compile(
          self._window_scores, self._device_params, batch)
      self.timings['score_compile_s'] = time.perf_counter() - start
    return self._compiled_scorers[shape]

  def decision_function(self, windows: windows_lib.Windows) -> np.ndarray:
    if self.params is None:
      raise RuntimeError(f'{self.name}: decision_function called before fit.')
    if self._device_params is None:
      self._device_params = self.plan.put_replicated(self.params)
    # Batches of a multiple of the devices; the padded rows are dropped below.
    size = self.config.score_batch_size
    size += -size % self.plan.num_shards
    pending = []
    for host_batch, valid in batching.padded_batches(windows, size):
      batch = self.plan.put_batch(host_batch)
      pending.append((self._scorer(batch)(self._device_params, batch), valid))
    # Read back only after every batch is dispatched, so the device never idles.
    scores = [self.plan.gather_rows(scores)[:valid] for scores, valid in pending]
    return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)


def validation_loss_windows(objective_name: str, validation: windows_lib.Windows | None):
  """The validation windows early stopping reads: the normal ones (an
  unsupervised model should model normal traffic), or all of them, labelled,
  for the supervised objective."""
  if validation is None or len(validation) == 0:
    return None
  if objective_name == 'sup':
    return validation
  normal = validation.take(np.flatnonzero(validation.kind == 0))
  return normal if len(normal) else None


def fit_seeds(name: str, objective: objectives.Objective,
              config: ml_collections.ConfigDict, seeds, train: windows_lib.Windows,
              validation: windows_lib.Windows | None = None,
              plan: parallel.DataParallel | None = None,
              checkpoint_dir: str | None = None,
              log_path: str | None = None, hooks=()) -> list[dict]:
  """Trains `objective` once per seed, all seeds in one compiled step.

  `hooks` are passed to `training.train` (called with each step number).

  Returns:
    Per seed, {'params': host parameters (the best by validation loss when
    `config.eval_every` > 0), 'stats': timings and the loss history}.
  """
  supervised = objective.name == 'sup'
  if supervised and not np.any(train.kind > 0):
    raise ValueError(f'{name} needs labelled anomalous windows in training; '
                     'set --config.data.train_contamination above 0.')
  train_config = training.TrainConfig.from_config(config)
  train_config = dataclasses.replace(train_config,
                                     eval_batch_size=config.score_batch_size)
  validation = validation_loss_windows(objective.name, validation)
  if train_config.eval_every and validation is None:
    logging.warning('%s: no validation windows; training without early stopping.', name)
    train_config = dataclasses.replace(train_config, eval_every=0, patience=0)

  example = batching.gather(train, np.arange(min(len(train), config.batch_size)))
  init = jax.jit(objective.init)
  init_params = [init(jax.random.key(seed), example) for seed in seeds]
  num_params = sum(x.size for x in jax.tree.leaves(init_params[0]))
  logging.info('%s: %d parameters, %d seed(s), up to %d steps of %d windows.', name,
               num_params, len(seeds), config.num_steps, config.batch_size)

  optimizer = training.make_optimizer(
      config.learning_rate, config.weight_decay, config.clip_norm,
      config.warmup_steps, config.num_steps)
  params, stats = training.train(
      objective.loss_terms, init_params, optimizer, train, train_config, list(seeds),
      validation_windows=validation, plan=plan, with_labels=supervised,
      checkpoint_dir=checkpoint_dir, log_path=log_path,
      fingerprint={'detector': name, 'neural': config.to_dict()}, hooks=hooks)
  stats['num_params'] = num_params
  return [{'params': p, 'stats': {**stats, 'best_step': stats['best_step'][k],
                                  'best_validation_loss': stats['best_validation_loss'][k]}}
          for k, p in enumerate(params)]


def fit_many(name: str, vocab_sizes: dict[str, int], config: ml_collections.ConfigDict,
             seeds, train: windows_lib.Windows,
             validation: windows_lib.Windows | None = None,
             plan: parallel.DataParallel | None = None,
             checkpoint_dir: str | None = None,
             log_path: str | None = None) -> list[NeuralDetector]:
  """K fitted detectors of one kind, one per seed, trained together (one
  compilation, K parameter sets, initialisations and data orders)."""
  detectors = [NeuralDetector(name, vocab_sizes, config, seed, plan) for seed in seeds]
  fitted = fit_seeds(name, detectors[0].objective, config, seeds, train, validation,
                     plan, checkpoint_dir, log_path)
  for detector, result in zip(detectors, fitted):
    detector._take(result)  # pylint: disable=protected-access
  return detectors
