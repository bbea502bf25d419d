"""Short entry point: `python -m apps.nlp.translate "Where is the station?" --run-dir runs/translate`.

See `apps.nlp.translation.translate` for the options.
"""

from apps.nlp.translation.translate import main

if __name__ == "__main__":
    raise SystemExit(main())
