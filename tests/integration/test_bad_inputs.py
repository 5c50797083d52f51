"""The bad-input corpus (tests/corpus) through the whole pipeline: every
hostile or broken input ends with a clear error naming the problem, or with
the right result, within its time and memory budgets, without a handler
raising into a retry loop, and without the sound job worked beside it
noticing (tests/corpus/runner.py says how each case is run and judged).

`pytest -s` shows the table of every case; the summary line is printed
always (but pytest-xdist keeps a worker's output to itself), and both are
written to bad-input-corpus.txt in pytest's base temporary directory."""
from __future__ import annotations

from pathlib import Path

from tests.corpus.make_corpus import GOOD, load_corpus, markdown_table, write_corpus
from tests.corpus.runner import format_table, run_corpus, summary_line

README = Path(__file__).resolve().parents[1] / "corpus" / "README.md"
MIN_CASES = 40


def test_every_bad_input_ends_well_beside_a_good_job(tmp_path_factory, capsys, request):
    corpus = tmp_path_factory.mktemp("bad-input-corpus")
    write_corpus(corpus)
    cases, good = load_corpus(corpus)
    observed = run_corpus(corpus, cases, good, workers=2)

    table, summary = format_table(observed), summary_line(observed)
    (tmp_path_factory.getbasetemp() / "bad-input-corpus.txt").write_text(f"{table}\n{summary}\n")
    with capsys.disabled():
        shown = table + "\n" if request.config.getoption("capture") == "no" else ""
        print(f"\n{shown}{summary}")

    assert len(observed) >= MIN_CASES
    assert {case["processor"] for case in cases} == set(GOOD)
    unhandled = [seen for seen in observed if not seen["handled"]]
    assert not unhandled, "\n".join(f"{seen['name']}: {'; '.join(seen['problems'])}" for seen in unhandled)


def test_the_corpus_readme_lists_every_case():
    assert markdown_table() in README.read_text(), (
        "tests/corpus/README.md is out of date: paste `python -m tests.corpus.make_corpus --table` into it")
