"""A zip of generated documents (PDF, Word, text, CSV) with known target
codes, near misses and a few unreadable files, for trying the scan processor
or benchmarking it:

    python -m bench.make_documents 50 drawings.zip          # codes HOLE-1 ... HOLE-5
    python -m bench.make_documents 6600 big.zip --codes 40 --broken 33

It prints how many documents hold codes and how many matches a scan must find.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.scan_bench import CODES
from tests.support.documents import make_corpus, zip_bytes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, help="how many documents")
    parser.add_argument("path", type=Path, help="the zip to write")
    parser.add_argument("--broken", type=int, default=1, help="how many cannot be read (default 1)")
    parser.add_argument("--codes", type=int, default=5, choices=range(1, len(CODES) + 1), metavar="N",
                        help=f"the codes are HOLE-1 ... HOLE-N (1-{len(CODES)}, default 5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    codes = CODES[:args.codes]
    corpus = make_corpus(args.count, codes, seed=args.seed, broken=args.broken)
    args.path.write_bytes(zip_bytes(corpus.documents))
    matches = sum(len(codes) for codes in corpus.expected.values())
    with_codes = sum(1 for codes in corpus.expected.values() if codes)
    print(f"{args.path}: {args.count} documents, {with_codes} with codes, {matches} matches, "
          f"{len(corpus.broken)} unreadable; target_hole_codes={','.join(codes)}")


if __name__ == "__main__":
    main()
