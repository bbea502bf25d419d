"""Translates sentences with a trained run dir.

    python -m apps.nlp.translate "Where is the station?" --run-dir runs/translate
    python -m apps.nlp.translation.translate --run-dir runs/translate --input-file sentences.txt --beam-size 1

Behaviour for awkward input:
- an empty sentence on the command line is an error (exit 2); empty lines in
  `--input-file` give empty output lines.
- characters the source tokenizer never saw become `<unk>`; translation goes on and a
  warning names them on stderr.
- a sentence longer than `data.max_source_tokens` is truncated with a warning, or
  rejected with exit 2 under `--strict`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from apps.nlp.translation.decode import Translator
from common.training import USER_ERRORS, report_user_error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Translate sentences with a trained translation run")
    parser.add_argument("sentences", nargs="*", help="sentences to translate (quote each one)")
    parser.add_argument("--run-dir", default="runs/translate", help="run dir written by apps.nlp.translation.train")
    parser.add_argument("--input-file", help="translate each line of this file ('-' reads stdin)")
    parser.add_argument("--beam-size", type=int, default=None, help="1 = greedy; default: the run's decode.beam_size")
    parser.add_argument("--strict", action="store_true", help="reject over-long sentences instead of truncating them")
    args = parser.parse_args(argv)
    try:
        sentences = list(args.sentences)
        if args.input_file:
            if args.input_file == "-":
                sentences += sys.stdin.read().splitlines()
            else:
                path = Path(args.input_file)
                if not path.is_file():
                    raise FileNotFoundError(f"input file {path} not found")
                sentences += path.read_text(encoding="utf-8").splitlines()
        elif not sentences:
            raise ValueError('nothing to translate: pass a sentence, e.g. "Where is the station?", or --input-file')
        if not args.input_file and any(not s.strip() for s in sentences):
            raise ValueError("empty source sentence: pass the text to translate in quotes")
        if args.beam_size is not None and args.beam_size < 1:
            raise ValueError(f"--beam-size must be >= 1, got {args.beam_size}")
        translator = Translator.from_run_dir(args.run_dir, on_overlong="error" if args.strict else "truncate")
        translations = translator.translate(sentences, beam_size=args.beam_size)
    except USER_ERRORS as err:
        return report_user_error(err)
    limit = translator.cfg.data.max_source_tokens
    for number, translation in enumerate(translations, 1):
        if translation.unknown_characters:
            print(f"warning: sentence {number}: characters unknown to the model were ignored: "
                  f"{' '.join(translation.unknown_characters)}", file=sys.stderr)
        if translation.truncated:
            print(f"warning: sentence {number}: longer than {limit} tokens, translated only the first {limit}", file=sys.stderr)
        print(translation.text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
