"""Next-word prediction (the keyboard use case) and text generation from a prompt.

    python -m apps.nlp.language_model.predict --run-dir runs/lm "the game was"              # top-5 next words
    python -m apps.nlp.language_model.predict --run-dir runs/lm --generate 30 --temperature 0.8 \\
        --top-k 40 --seed 1 "the game was"

Prompts are tokenised like the training text (split on spaces); unknown words read as <unk>, and
a prompt of unknown words only is an error. A prompt longer than the training window is read
whole, the state carried through it. From Python: `load_run(dir).predict("the game was")` or
`apps.nlp.language_model.inference.generate(run, prompt, ...)`.
"""

from __future__ import annotations

import json
from typing import Sequence

from common.cli import predict_main
from common.errors import UsageError


def add_arguments(parser) -> None:
    parser.add_argument("prompts", nargs="+", help="prompts (tokenised text, e.g. \"the game was\")")
    parser.add_argument("--top-k", type=int, default=None, help="next words to show (default 5), or with --generate "
                                                               "the top-k sampling cut (default the run's "
                                                               "generate.top_k; 0 = all words)")
    parser.add_argument("--generate", type=int, default=0, metavar="WORDS",
                        help="generate WORDS words after each prompt instead of listing next words")
    parser.add_argument("--temperature", type=float, default=None, help="--generate: sampling temperature (> 0)")
    parser.add_argument("--top-p", type=float, default=None, help="--generate: nucleus sampling mass in (0, 1]")
    parser.add_argument("--seed", type=int, default=0, help="--generate: sampling seed (same seed, same text)")


def run_command(run, args) -> int:
    from apps.nlp.language_model.inference import generate, next_words

    if args.generate < 0:
        raise UsageError(f"--generate must be >= 0, got {args.generate}")
    for prompt in args.prompts:
        if args.generate:
            text = generate(run, prompt, max_words=args.generate, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, seed=args.seed)
            print(json.dumps({"prompt": prompt, "text": text}, ensure_ascii=False) if args.json
                  else f"{prompt} | {text}")
        else:
            words = next_words(run, prompt, 5 if args.top_k is None else args.top_k)
            print(json.dumps({"prompt": prompt, "next": words}, ensure_ascii=False) if args.json
                  else f"{prompt} -> " + ", ".join(f"{w['word']} {w['probability']:.3f}" for w in words))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return predict_main("language_model", argv)


if __name__ == "__main__":
    raise SystemExit(main())
