"""python -m tests.corpus CORPUS_DIR [CASE ...]: run the bad-input corpus
(written into CORPUS_DIR first when it is not there yet) and print the
table of every case. Kept apart from runner.py: each case's process
re-imports the main module, and this one is light."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from tests.corpus.make_corpus import load_corpus, write_corpus
    from tests.corpus.runner import format_table, run_corpus, summary_line

    if not argv or argv[0].startswith("-"):
        sys.stderr.write("usage: python -m tests.corpus CORPUS_DIR [CASE ...]\n")
        return 2
    folder = Path(argv[0])
    if not (folder / "cases.json").exists():
        write_corpus(folder)
    cases, good = load_corpus(folder)
    if argv[1:]:
        cases = [case for case in cases if case["name"] in argv[1:]]
    observed = run_corpus(folder, cases, good, workers=int(os.environ.get("CORPUS_WORKERS", "2")))
    print(format_table(observed))
    print(summary_line(observed))
    return 0 if all(seen["handled"] for seen in observed) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
