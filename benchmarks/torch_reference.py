"""PyTorch peers of the LSTM and Transformer next-event detectors, for timing only.

Optional: needs the `torch` extra (`pip install -e .[torch]`). Each model is
the same network as its JAX counterpart in `seqad.models` at the same sizes:
summed field embeddings + LayerNorm, a learned start event and a one-step shift,
the encoder, and the three event heads (type x category, item relation given
the type, time gap) with the same negative log-likelihood. Training is AdamW
after global-norm clipping; scoring is the masked mean event NLL per window,
under `torch.inference_mode`. They run in eager mode, PyTorch's default.

`benchmarks.throughput` times them with the same harness as the JAX models,
interleaved with them in one process, and reports JAX / PyTorch ratios.
"""

from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class EventEmbedding(nn.Module):
  """Sums one embedding per token field, then LayerNorm: [b, t] ints -> [b, t, e]."""

  def __init__(self, vocab_sizes: Mapping[str, int], features: int):
    super().__init__()
    self.fields = sorted(vocab_sizes)
    self.embeds = nn.ModuleDict(
        {field: nn.Embedding(vocab_sizes[field], features) for field in self.fields})
    self.norm = nn.LayerNorm(features)

  def forward(self, tokens):
    return self.norm(sum(self.embeds[field](tokens[field]) for field in self.fields))


def rotate(features: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
  """Rotary positions, 'rotate half' layout: [b, heads, t, d] by cos/sin [t, d/2]."""
  first, second = features.chunk(2, dim=-1)
  return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)


class Block(nn.Module):
  """Pre-norm block: LN -> causal rotary attention -> residual, LN -> GELU MLP -> residual."""

  def __init__(self, hidden: int, num_heads: int, mlp_ratio: int):
    super().__init__()
    self.num_heads = num_heads
    self.attention_norm = nn.LayerNorm(hidden)
    self.qkv = nn.Linear(hidden, 3 * hidden)
    self.out = nn.Linear(hidden, hidden)
    self.mlp_norm = nn.LayerNorm(hidden)
    self.mlp_in = nn.Linear(hidden, mlp_ratio * hidden)
    self.mlp_out = nn.Linear(mlp_ratio * hidden, hidden)

  def forward(self, hidden, attention_mask, cos, sin):
    batch, length, width = hidden.shape
    qkv = self.qkv(self.attention_norm(hidden))
    qkv = qkv.view(batch, length, 3, self.num_heads, width // self.num_heads)
    query, key, value = qkv.permute(2, 0, 3, 1, 4)  # Each [b, heads, t, head_dim].
    query, key = rotate(query, cos, sin), rotate(key, cos, sin)
    attended = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
    hidden = hidden + self.out(attended.transpose(1, 2).reshape(batch, length, width))
    return hidden + self.mlp_out(F.gelu(self.mlp_in(self.mlp_norm(hidden))))


class NextEventModel(nn.Module):
  """Per-event logits of each head from the events before it.

  Args:
    encoder: 'lstm' or 'transformer'.
    vocab_sizes: field -> vocabulary size.
    embed_dim, hidden, num_layers, num_heads, mlp_ratio: as in the JAX config.
  """

  def __init__(self, encoder: str, vocab_sizes: Mapping[str, int], embed_dim: int,
               hidden: int, num_layers: int = 1, num_heads: int = 4, mlp_ratio: int = 4):
    super().__init__()
    self.encoder_name = encoder
    self.num_types = vocab_sizes['event_type']
    self.num_categories = vocab_sizes['category']
    self.num_relations = vocab_sizes['item_relation']
    self.embedding = EventEmbedding(vocab_sizes, embed_dim)
    self.start = nn.Parameter(0.02 * torch.randn(embed_dim))
    if encoder == 'lstm':
      self.lstm = nn.LSTM(embed_dim, hidden, num_layers, batch_first=True)
    elif encoder == 'transformer':
      self.input = nn.Linear(embed_dim, hidden)
      self.blocks = nn.ModuleList(
          [Block(hidden, num_heads, mlp_ratio) for _ in range(num_layers)])
      self.final_norm = nn.LayerNorm(hidden)
      head_dim = hidden // num_heads
      self.register_buffer('frequencies', 10_000.0 ** (
          -torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim), persistent=False)
    else:
      raise ValueError(f'No PyTorch reference for encoder {encoder!r}.')
    self.key_head = nn.Linear(hidden, self.num_types * self.num_categories)
    self.relation_head = nn.Linear(hidden, self.num_types * self.num_relations)
    self.gap_head = nn.Linear(hidden, vocab_sizes['gap'])

  def encode(self, inputs, mask):
    if self.encoder_name == 'lstm':
      return self.lstm(inputs)[0]
    length = inputs.shape[1]
    angles = torch.arange(length, dtype=torch.float32)[:, None] * self.frequencies
    cos, sin = angles.cos(), angles.sin()
    # Causal and padding masks together: [b, 1, query, key] bool, True = attend.
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    attention_mask = causal[None, None] & mask[:, None, None, :]
    hidden = self.input(inputs)
    for block in self.blocks:
      hidden = block(hidden, attention_mask, cos, sin)
    return self.final_norm(hidden)

  def forward(self, tokens, mask):
    events = self.embedding(tokens)
    start = self.start.expand(events.shape[0], 1, -1)
    hidden = self.encode(torch.cat([start, events[:, :-1]], dim=1), mask)
    relation = self.relation_head(hidden)
    return (self.key_head(hidden),
            relation.view(*relation.shape[:-1], self.num_types, self.num_relations),
            self.gap_head(hidden))

  def event_nll(self, tokens, mask):
    """[b, t] negative log-likelihood of every event under the three heads."""
    key_logits, relation_logits, gap_logits = self(tokens, mask)
    keys = tokens['event_type'] * self.num_categories + tokens['category']
    types = tokens['event_type'][..., None, None].expand(
        *keys.shape, 1, self.num_relations)
    relation_logits = relation_logits.gather(-2, types).squeeze(-2)

    def nll(logits, targets):
      return -F.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)

    return (nll(key_logits, keys) + nll(relation_logits, tokens['item_relation']) +
            nll(gap_logits, tokens['gap']))


def masked_mean(values, mask, dim=None):
  mask = mask.to(values.dtype)
  total = (values * mask).sum() if dim is None else (values * mask).sum(dim)
  count = mask.sum() if dim is None else mask.sum(dim)
  return total / count.clamp(min=1.0)


class Workload:
  """A model, its optimizer and batches; `train_step()` and `score()` run one batch.

  Args:
    encoder: 'lstm' or 'transformer'.
    vocab_sizes: field -> vocabulary size.
    config: the `neural` config section (embed_dim, encoder.*, learning_rate,
      weight_decay, clip_norm).
    train_batch, score_batch: {'tokens': {field: [b, t] int}, 'mask': [b, t] bool}
      as numpy arrays (`seqad.batching.gather`).
    seed: torch's initialisation seed.
  """

  def __init__(self, encoder: str, vocab_sizes, config, train_batch: dict,
               score_batch: dict, seed: int = 0):
    torch.manual_seed(seed)
    self.model = NextEventModel(
        encoder, vocab_sizes, config.embed_dim, config.encoder.hidden,
        config.encoder.num_layers, config.encoder.num_heads, config.encoder.mlp_ratio)
    self.optimizer = torch.optim.AdamW(
        self.model.parameters(), lr=config.learning_rate,
        weight_decay=config.weight_decay)
    self.clip_norm = config.clip_norm
    self.train_batch = _to_torch(train_batch)
    self.score_batch = _to_torch(score_batch)
    self.num_params = sum(p.numel() for p in self.model.parameters())

  def train_step(self) -> torch.Tensor:
    tokens, mask = self.train_batch
    self.optimizer.zero_grad(set_to_none=True)
    loss = masked_mean(self.model.event_nll(tokens, mask), mask)
    loss.backward()
    nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
    self.optimizer.step()
    return loss.detach()

  def score(self) -> torch.Tensor:
    """[b] window scores: the mean event NLL over each window's real events."""
    tokens, mask = self.score_batch
    with torch.inference_mode():
      return masked_mean(self.model.event_nll(tokens, mask), mask, dim=1)


def _to_torch(batch: dict):
  tokens = {field: torch.from_numpy(np.asarray(v, np.int64))
            for field, v in batch['tokens'].items()}
  return tokens, torch.from_numpy(np.asarray(batch['mask'], bool))


def describe() -> dict:
  """Version and threading of the PyTorch runtime, stamped on rows it timed."""
  return {'torch_version': torch.__version__, 'torch_threads': torch.get_num_threads()}

