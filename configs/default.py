r"""The default benchmark: neural sequence detectors vs classical baselines on simulated shoppers.

  python -m benchmarks.run --config=configs/default.py --workdir=results/default

6,000 shoppers from the simulator fitted on Taobao, with six kinds of abuse
(click bots, order brushing, account takeover, scrapers, cart farming and
order anomalies) injected into 5% of the validation and test users per kind.
Writes config.json, data_report.json, results.jsonl, leaderboard.md,
alerts.jsonl and scores.jsonl into the workdir. On real Taobao users:

  python -m benchmarks.run --config=configs/default.py --workdir=results/taobao \
    --config.data.source=taobao \
    --config.data.path=../shared/data/taobao_userbehavior/UserBehavior_head_814users.csv
"""

import dataclasses

import ml_collections

from seqad.data import anomalies
from seqad.data import simulator
from seqad.models import encoders


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # Seeds data simulation, splits, injection, init and batch order.
  # Run in this order; seqad.benchmark.DETECTORS lists every detector.
  config.detectors = (
      'lstm-next', 'gru-next', 'transformer-next', 'ssm-next', 'transformer-masked',
      'lstm-ae', 'markov', 'ngram', 'iforest', 'lof', 'pca', 'ecod', 'rules',
      'rules-val')
  config.score_repeats = 1  # Timed scoring passes over the test split (median kept).

  # Where neural detectors train and score (seqad/parallel.py): 'single' device,
  # 'pmap' over this host's devices, or 'mesh' (sharded jit, also multi-host).
  config.parallel = ml_collections.ConfigDict()
  config.parallel.mode = 'single'
  config.parallel.num_devices = 0  # Devices used by pmap / mesh (0: all).

  # How scores become metrics (seqad/evaluation.py, seqad/thresholds.py).
  config.evaluation = ml_collections.ConfigDict()
  config.evaluation.contamination = 0.0  # Alerted share; 0 = validation's share.
  config.evaluation.fpr = 0.01  # fixed_fpr threshold and recall@FPR.
  config.evaluation.pot_level = 0.95  # POT: quantile where the fitted tail starts.
  config.evaluation.pot_risk = 0.005  # POT: tail probability of the threshold.
  config.evaluation.prefix_step = 8  # Time to detection: score every 8 events.
  config.evaluation.explained_windows = 64  # Anomalous windows localised per kind.
  config.evaluation.top_alerts = 10  # Alerts written to alerts.jsonl per detector.
  config.evaluation.events_per_alert = 5  # Highest-scoring events per alert.

  config.data = ml_collections.ConfigDict()
  config.data.source = 'simulator'  # 'simulator' or a file: seqad/data/sources.py.
  config.data.path = ''  # The data file when the source is not the simulator.
  config.data.split = (0.6, 0.2, 0.2)  # Train / validation / test fractions of users.
  config.data.train_contamination = 0.0  # Victims per kind among training users.
  # 'clean', 'contaminated' or 'semi_supervised' (seqad/settings.py).
  config.data.setting = 'clean'
  config.data.labelled_per_kind = 5  # semi_supervised: labelled windows per kind.
  config.data.window_length = 64  # Events per window; shorter windows are padded.
  config.data.min_events = 4  # Windows with fewer real events are left out.
  config.data.label_min_fraction = 0.5  # Injected share that labels a window.
  config.data.max_categories = 128  # Category buckets kept (most frequent in train).
  config.data.min_category_count = 5  # Rarer training categories go to the OOV bucket.
  config.data.num_gap_buckets = 16  # Log2 time-gap buckets (bucket 0 = first event).
  config.data.utc_offset_hours = 8  # Local time of the logs (China) for hour of day.
  config.data.max_rows = 0  # Read only the first rows of a file (0: all of it).
  config.data.cache_dir = ''  # Loaded-file cache: '' ~/.cache/seqad/data, 'none' off.
  config.data.window_unit = 'user'  # Windows within a 'user' history or a 'session'.
  config.data.window_stride = 0  # Events between window starts (0: window_length).
  config.data.session_gap_minutes = 30  # Inactivity that ends a session.
  config.data.split_by = 'user'  # 'user' (disjoint users) or 'time' (later days test).
  config.data.item_encoding = 'none'  # Item field: 'none', 'vocab' (top items), 'hash'.
  config.data.max_items = 0  # Item vocabulary size or hash buckets.
  config.data.min_item_count = 2  # Rarer training items go to the OOV bucket.
  config.data.labels_path = ''  # Labels file (seqad/data/labels.py): no injection.
  config.data.labels_string_ids = False  # The labels' ids are strings (hashed).
  config.data.unlabelled_normal = False  # Ids missing from the labels are normal.
  # Column mapping of the 'csv' and 'parquet' sources (seqad/data/tabular.py).
  config.data.table = ml_collections.ConfigDict()
  config.data.table.columns = ml_collections.ConfigDict({
      role: '' for role in ('user', 'session', 'time', 'time_offset', 'event', 'item',
                            'category')})  # Role -> column name; '' = absent.
  config.data.table.header = True  # The first line names the columns.
  config.data.table.names = ''  # Comma-separated column names when there is no header.
  config.data.table.delimiter = ','  # CSV field separator.
  config.data.table.time_unit = 's'  # 's', 'ms', 'iso' or 'date'.
  config.data.table.time_offset_unit = 'ms'  # Unit of the time_offset column.
  config.data.table.event_map = ''  # 'raw:type,...' onto view/cart/fav/buy or new types.
  config.data.table.keep_unknown_events = True  # Unmapped names become own types.
  config.data.table.default_event = 'view'  # Type of every row without an event column.
  config.data.table.string_ids = ''  # Roles whose ids are strings, e.g. 'user,item'.
  config.data.table.extras = ''  # Further columns to keep, e.g. 'price,shop'.

  # Every field of the simulator and the injectors, documented in their modules.
  # The simulator's defaults are fitted on the Taobao slice (seqad/data/params/).
  config.simulator = ml_collections.ConfigDict(
      dataclasses.asdict(simulator.default_params()))
  config.simulator.num_users = 6000  # About 600k events; 1,200 test users.
  config.anomalies = ml_collections.ConfigDict(
      dataclasses.asdict(anomalies.AnomalyParams()))

  # Every neural detector '<encoder>-<objective>' shares this section.
  config.neural = ml_collections.ConfigDict()
  config.neural.embed_dim = 32  # Width of the summed field embeddings.
  config.neural.encoder = encoders.default_encoder_config()
  config.neural.encoder.hidden = 64  # Encoder width.
  config.neural.encoder.num_layers = 1  # Stacked layers / blocks.
  config.neural.learning_rate = 3e-3  # Peak AdamW learning rate.
  config.neural.weight_decay = 1e-4  # AdamW decoupled weight decay.
  config.neural.clip_norm = 1.0  # Global gradient-norm clip.
  config.neural.warmup_steps = 100  # Linear warmup, then cosine decay.
  config.neural.num_steps = 400  # Training steps.
  config.neural.batch_size = 64  # Windows per training step.
  config.neural.score_batch_size = 256  # Windows per scoring call (last batch padded).
  config.neural.log_every = 100  # Steps between log lines (and steps 1, 2, 4, ...).
  config.neural.eval_every = 100  # Steps between validation losses (0: none).
  config.neural.patience = 3  # Evaluations without improvement before stopping (0: never).
  config.neural.checkpoint_every = 200  # Steps between checkpoints in the workdir.
  config.neural.accumulation_steps = 1  # Micro-batches per step (same update, less memory).
  config.neural.compute_dtype = 'float32'  # Or 'bfloat16' (fp32 params and optimizer).
  # Window score (seqad/detectors/neural.py): 'head_z' standardises each likelihood
  # head (type+category, item relation, gap) by its spread on training windows
  # before adding them; 'sum' adds raw likelihoods (or DeepLog's top-k misses).
  config.neural.window_score = 'head_z'
  config.neural.aggregation = 'mean'  # Window score from event scores: mean/max/top_k.
  config.neural.aggregation_k = 8  # Events averaged by the 'top_k' aggregation.
  config.neural.event_score = 'nll'  # next: 'nll', or 'top_k' misses as in DeepLog.
  config.neural.top_k = 10  # next with event_score='top_k': keys counted as expected.
  config.neural.mask_rate = 0.15  # masked: share of events hidden in training.
  config.neural.score_passes = 4  # masked: scoring passes; each event hidden once.
  config.neural.bottleneck = 32  # ae: width of the window code.

  # Per-detector changes to `neural`, keyed '<encoder>_<objective>'. The LSTM
  # next-event model is the reference detector: it trains twice as long.
  config.neural_overrides = ml_collections.ConfigDict()
  config.neural_overrides.lstm_next = ml_collections.ConfigDict({'num_steps': 800})

  # Classical baselines; each section is passed to its constructor as keywords
  # (documented in seqad/detectors/markov.py, classical.py and rules.py).
  config.markov = ml_collections.ConfigDict()
  config.markov.smoothing = 0.1  # Additive pseudo-count per transition.

  config.ngram = ml_collections.ConfigDict()
  config.ngram.n = 3  # Longest n-gram over (type, category) keys.
  config.ngram.smoothing = 0.1  # Lidstone pseudo-count of the unigram level.
  config.ngram.backoff_weight = 1.0  # Weight of the shorter context's estimate.

  config.iforest = ml_collections.ConfigDict()
  config.iforest.n_estimators = 200  # Trees.
  config.iforest.max_samples = 256  # Windows drawn per tree.
  config.iforest.max_features = 1.0  # Share of features drawn per tree.
  config.iforest.category_tfidf = True  # Add TF-IDF category counts to the features.

  config.lof = ml_collections.ConfigDict()
  config.lof.n_neighbors = 20  # Neighbours in the local density estimate.
  config.lof.metric = 'euclidean'  # Distance between standardised feature vectors.
  config.lof.category_tfidf = False  # The 129 sparse columns blur LOF's distances.

  config.pca = ml_collections.ConfigDict()
  config.pca.variance_explained = 0.95  # Normal subspace: components up to this share.
  config.pca.category_tfidf = True  # Add TF-IDF category counts to the features.

  config.rules = ml_collections.ConfigDict()
  config.rules.fast_gap_bucket = 2  # Gaps in buckets <= this (0-2 s) are 'fast'.
  config.rules.quantile = 0.99  # Normal spread of each rule: its training quantile.
  config.rules.min_spread = 0.05  # Floor of that spread, for near-constant rules.

  # The same rules with each rule's cut fitted on labelled validation windows.
  config.rules_val = ml_collections.ConfigDict(config.rules.to_dict())

  config.ecod = ml_collections.ConfigDict()  # PyOD's ECOD; parameter-free.
  config.ecod.category_tfidf = False  # Add TF-IDF category counts to the features.
  return config
