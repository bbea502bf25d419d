"""Translates sentences with a trained run dir (the translation app's predict command).

    python -m apps.nlp.translate "Where is the station?" --run-dir runs/translate
    python -m apps.nlp.translation.translate --run-dir runs/translate --input-file sentences.txt --beam-size 1
    from common.pipeline import load_run; load_run("runs/translate").predict(["Where is the station?"])

Behaviour for awkward input:
- an empty sentence on the command line is an error (exit 2); empty lines in
  `--input-file` give empty output lines; a file that is not UTF-8 is an error naming it.
- characters the source tokenizer never saw become `<unk>`; translation goes on and a
  warning names them on stderr.
- a sentence longer than `data.max_source_tokens` is truncated with a warning, or
  rejected with exit 2 under `--strict`.
"""

from __future__ import annotations

import json
import sys
from typing import Sequence

from common.cli import predict_main
from common.errors import DataError, UsageError
from common.textio import read_text_lines


def translate(run, inputs, beam_size: int | None = None, strict: bool = False) -> list:
    """`Translation(text, unknown_characters, truncated)` per source string."""
    from apps.nlp.translation.app import make_translator

    if isinstance(inputs, str):
        inputs = [inputs]
    sentences = list(inputs)
    if not all(isinstance(s, str) for s in sentences):
        raise DataError("translate takes strings (one sentence each)")
    if beam_size is not None and beam_size < 1:
        raise UsageError(f"--beam-size must be >= 1, got {beam_size}")
    try:
        return make_translator(run, "error" if strict else "truncate").translate(sentences, beam_size=beam_size)
    except ValueError as err:  # the translator's over-long source under --strict
        if "max_source_tokens" in str(err):
            raise DataError(str(err)) from None
        raise


def add_arguments(parser) -> None:
    parser.add_argument("sentences", nargs="*", help="sentences to translate (quote each one)")
    parser.add_argument("--input-file", help="translate each line of this UTF-8 file ('-' reads stdin)")
    parser.add_argument("--beam-size", type=int, default=None, help="1 = greedy; default: the run's decode.beam_size")
    parser.add_argument("--strict", action="store_true", help="reject over-long sentences instead of truncating them")


def run_command(run, args) -> int:
    sentences = list(args.sentences)
    if args.input_file:
        sentences += sys.stdin.read().splitlines() if args.input_file == "-" else read_text_lines(args.input_file,
                                                                                                  "--input-file")
    elif not sentences:
        raise UsageError('nothing to translate: pass a sentence, e.g. "Where is the station?", or --input-file')
    if not args.input_file and any(not s.strip() for s in sentences):
        raise DataError("empty source sentence: pass the text to translate in quotes")
    translations = translate(run, sentences, beam_size=args.beam_size, strict=args.strict)
    limit = run.cfg.data.max_source_tokens
    if args.json:
        for source, translation in zip(sentences, translations):
            print(json.dumps({"source": source, "translation": translation.text, "truncated": translation.truncated,
                              "unknown_characters": translation.unknown_characters}, ensure_ascii=False))
        return 0
    for number, translation in enumerate(translations, 1):
        if translation.unknown_characters:
            print(f"warning: sentence {number}: characters unknown to the model were ignored: "
                  f"{' '.join(translation.unknown_characters)}", file=sys.stderr)
        if translation.truncated:
            print(f"warning: sentence {number}: longer than {limit} tokens, translated only the first {limit}",
                  file=sys.stderr)
        print(translation.text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return predict_main("translation", argv)


if __name__ == "__main__":
    raise SystemExit(main())
