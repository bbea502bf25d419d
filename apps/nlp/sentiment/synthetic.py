"""An offline sentiment task that a bag-of-words model cannot solve.

Reviews are built from clauses whose polarity is the adjective's polarity flipped by a
negation ("the plot was not very good" is negative), joined by connectives whose scope
decides the label:

- `single`: one clause; label = its polarity.
- `and`:    "A and B", both clauses share the label.
- `but`:    "A but B", opposite polarities; the clause *after* "but" wins.
- `although`: "B , although A", opposite polarities; the clause *before* "although" wins.

Negation appears with probability 1/2 in every clause, so each adjective occurs equally
often in positive and negative reviews, and "A but B" / "B but A" share a bag of words
with opposite labels: unigram counts carry (almost) no signal, while a recurrent model
that tracks which words a "not" or a "but" governs reaches high accuracy.

    texts, labels = generate(1000, seed=0)   # labels: 1 positive, 0 negative
"""

from __future__ import annotations

import numpy as np
from common.errors import ConfigError

STRUCTURES = ("single", "and", "but", "although")
LABEL_NAMES = ("negative", "positive")

POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "superb", "enjoyable", "charming")
NEGATIVE = ("bad", "awful", "terrible", "boring", "dull", "poor", "weak", "clumsy")
ASPECTS = ("plot", "acting", "soundtrack", "cast", "script", "ending", "dialogue", "pacing", "camera work", "story")
INTENSIFIERS = ("", "", "very", "really", "truly", "quite", "extremely", "rather")
OPENERS = ("", "", "honestly ,", "overall ,", "in short ,", "i think", "to be fair ,")
CLOSERS = ("", ".", "!", ". watch it yourself")


def _clause(rng: np.random.Generator, polarity: int) -> str:
    """A clause with effective `polarity` (+1/-1); negated half the time."""
    negated = rng.random() < 0.5
    adjective_pool = POSITIVE if (polarity > 0) != negated else NEGATIVE
    adjective = adjective_pool[rng.integers(len(adjective_pool))]
    intensifier = INTENSIFIERS[rng.integers(len(INTENSIFIERS))]
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    words = f"{intensifier} {adjective}".strip()
    if rng.random() < 0.5:
        return f"the {aspect} was {'not ' if negated else ''}{words}"
    return f"i {'did not find' if negated else 'found'} the {aspect} {words}"


def _review(rng: np.random.Generator, structure: str, label: int) -> str:
    polarity = 1 if label == 1 else -1
    if structure == "single":
        body = _clause(rng, polarity)
    elif structure == "and":
        body = f"{_clause(rng, polarity)} and {_clause(rng, polarity)}"
    elif structure == "but":
        body = f"{_clause(rng, -polarity)} but {_clause(rng, polarity)}"
    elif structure == "although":
        body = f"{_clause(rng, polarity)} , although {_clause(rng, -polarity)}"
    else:
        raise ConfigError(f"unknown synthetic structure {structure!r}; choose from {STRUCTURES}")
    opener = OPENERS[rng.integers(len(OPENERS))]
    closer = CLOSERS[rng.integers(len(CLOSERS))]
    return " ".join(part for part in (opener, body, closer) if part)


def generate(num_examples: int, seed: int = 0, structures=STRUCTURES) -> tuple[list[str], list[int]]:
    """`num_examples` balanced reviews (labels 0/1) drawn uniformly over `structures`."""
    structures = tuple(structures)
    if num_examples < 1:
        raise ConfigError(f"num_examples must be positive, got {num_examples}")
    for structure in structures:
        if structure not in STRUCTURES:
            raise ConfigError(f"unknown synthetic structure {structure!r}; choose from {STRUCTURES}")
    rng = np.random.default_rng(seed)
    labels = [int(i % 2) for i in range(num_examples)]
    rng.shuffle(labels)
    texts = [_review(rng, structures[rng.integers(len(structures))], y) for y in labels]
    return texts, labels


def generate_splits(num_examples: int, seed: int = 0, structures=STRUCTURES, test_share: float = 0.25):
    """Train texts/labels and a test split of `test_share * num_examples` reviews absent from train."""
    train_texts, train_labels = generate(num_examples, seed, structures)
    seen = set(train_texts)
    wanted = max(2, int(round(num_examples * test_share)))
    test_texts: list[str] = []
    test_labels: list[int] = []
    offset = 1
    while len(test_texts) < wanted and offset < 50:
        texts, labels = generate(wanted * 2, seed + 7919 * offset, structures)
        for text, label in zip(texts, labels):
            if text not in seen and len(test_texts) < wanted:
                seen.add(text)
                test_texts.append(text)
                test_labels.append(label)
        offset += 1
    return (train_texts, train_labels), (test_texts, test_labels)
