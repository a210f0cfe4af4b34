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


WINDOW_SCORES = ('sum', 'head_z')


class NeuralDetector(base.Detector):
  """Trains `objective` on top of `encoder`; window score from its event scores.

  `config.window_score` says how a window's score is made:
    'sum'     the event scores (the heads' likelihoods summed, or DeepLog's
              top-k misses), aggregated over the window (`config.aggregation`);
    'head_z'  each likelihood head's event scores aggregated apart, then
              standardised by the median and spread (MAD) over the training
              windows, and summed where above typical
              (`objectives.standardised_head_sum`). The supervised objective
              always scores a window by its classifier's logit.

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
    self.window_score = config.get('window_score', 'sum')
    if self.window_score not in WINDOW_SCORES:
      raise ValueError(f'Unknown window_score {self.window_score!r}; expected one of '
                       f'{WINDOW_SCORES}.')
    if objective_name == 'sup':
      self.window_score = 'sum'  # The classifier's logit: no likelihood heads.
    if self.window_score == 'head_z' and config.get('event_score', 'nll') != 'nll':
      raise ValueError("window_score='head_z' standardises likelihood heads; with "
                       "event_score='top_k' set window_score='sum'.")
    self.params = None
    self.head_stats = None  # 'head_z': {'center', 'scale'}, [heads] each.
    self.loss_history = []
    self._device_params = None
    self._compiled_scorers = {}

  def _window_scores(self, state, batch):
    """[b] window scores; `state` is the parameters, with the head statistics
    under 'head_z'."""
    if self.window_score == 'sum':
      event_scores = self.objective.event_scores(state, batch)
      return objectives.aggregate(event_scores, batch['mask'], self.config.aggregation,
                                  self.config.aggregation_k)
    per_head = self._head_window_scores(state['params'], batch)
    return objectives.standardised_head_sum(per_head, state['center'], state['scale'])

  def _head_window_scores(self, params, batch):
    """[b, heads] each head's aggregated event scores."""
    return objectives.aggregate(self.objective.head_event_scores(params, batch),
                                batch['mask'], self.config.aggregation,
                                self.config.aggregation_k)

  def _fit_head_stats(self, train: windows_lib.Windows) -> None:
    """Median and scaled MAD of each head's window score over `train` (robust
    to the anomalies a contaminated training split holds)."""
    if self.window_score != 'head_z':
      return
    values = self._batched(self._head_window_scores, {},
                           self.plan.put_replicated(self.params), train)
    center = np.median(values, axis=0)
    # 1.4826 MAD estimates the standard deviation of a normal distribution.
    spread = 1.4826 * np.median(np.abs(values - center), axis=0)
    scale = np.maximum(spread, 1e-3 * np.maximum(np.abs(center), 1.0))
    self.head_stats = {'center': center.astype(np.float32),
                       'scale': scale.astype(np.float32)}
    logging.info('%s: head medians %s, spreads %s over %d training windows.', self.name,
                 np.round(center, 3).tolist(), np.round(scale, 3).tolist(), len(values))

  @property
  def supervised(self) -> bool:
    return self.objective.name == 'sup'

  def fit(self, train, validation=None):
    fitted = fit_seeds(self.name, self.objective, self.config, [self.seed], train,
                       validation, self.plan, self.checkpoint_dir, self.log_path)
    self._take(fitted[0])
    self._fit_head_stats(train)
    return self

  def _take(self, fitted: dict) -> None:
    self.params = fitted['params']
    self.loss_history = fitted['stats']['loss_history']
    self.timings.update({k: v for k, v in fitted['stats'].items() if k != 'loss_history'})
    self._device_params = None

  def _batched(self, fn, compiled: dict, state, windows: windows_lib.Windows,
               compile_timing: str | None = None) -> np.ndarray:
    """fn(state, batch) over `windows` in padded batches of a multiple of the
    devices; its [windows, ...] rows on the host as float64, padding dropped.

    `compiled` caches fn's executable per batch shape (one compilation each);
    `compile_timing` names the `timings` entry of the compile time.
    """
    size = self.config.score_batch_size
    size += -size % self.plan.num_shards
    pending = []
    for host_batch, valid in batching.padded_batches(windows, size):
      batch = self.plan.put_batch(host_batch)
      shape = host_batch['mask'].shape
      if shape not in compiled:
        start = time.perf_counter()
        compiled[shape] = self.plan.compile(fn, state, batch)
        if compile_timing:
          self.timings[compile_timing] = time.perf_counter() - start
      pending.append((compiled[shape](state, batch), valid))
    # Read back only after every batch is dispatched, so the device never idles.
    rows = [self.plan.gather_rows(out)[:valid] for out, valid in pending]
    return np.concatenate(rows).astype(np.float64) if rows else np.zeros(0)

  def decision_function(self, windows: windows_lib.Windows) -> np.ndarray:
    if self.params is None:
      raise RuntimeError(f'{self.name}: decision_function called before fit.')
    if self._device_params is None:
      state = self.params
      if self.window_score == 'head_z':
        state = {'params': self.params, **self.head_stats}
      self._device_params = self.plan.put_replicated(state)
    return self._batched(self._window_scores, self._compiled_scorers,
                         self._device_params, windows, 'score_compile_s')


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
    detector._fit_head_stats(train)  # pylint: disable=protected-access
  return detectors
