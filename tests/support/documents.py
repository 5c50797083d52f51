"""Documents for scan tests and the scan benchmark, made by real libraries:
PDFs with a text layer (fpdf2), Word files (python-docx), text and CSV, each
holding known target codes, near misses that must not match, and, on
request, some that cannot be read at all."""
from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

_WORDS = ("bore", "casing", "depth", "survey", "drilled", "grout", "sample", "log", "north", "east",
          "collar", "azimuth", "dip", "core", "tray", "assay", "shift", "rig", "site", "plan")
_FIXED_DATE = dt.datetime(2026, 1, 20, tzinfo=dt.UTC)


@dataclass
class Corpus:
    #: (name inside the zip, bytes), in a stable order
    documents: list[tuple[str, bytes]] = field(default_factory=list)
    #: each document's codes, in the order of the target list ([] for broken ones)
    expected: dict[str, list[str]] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)


def pdf_bytes(lines: Sequence[str], pages: Sequence[Sequence[str]] | None = None) -> bytes:
    """A PDF whose text layer holds `lines` (one page), or one page per item
    of `pages`."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(_FIXED_DATE)
    pdf.set_font("Helvetica", size=11)
    for page in pages or [lines]:
        pdf.add_page()
        for line in page:
            pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def docx_bytes(paragraphs: Sequence[str], table: Sequence[Sequence[str]] = ()) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bytes(documents: Sequence[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in documents:
            archive.writestr(name, data)
    return buffer.getvalue()


def near_misses(code: str) -> list[str]:
    """Tokens that contain `code` but are not it, whatever the target list."""
    return [f"X{code}", f"{code}Z", f"{code}-B", f"{code}.5", f"{code}_2"]


def make_corpus(count: int, codes: Sequence[str], seed: int = 0, broken: int = 0) -> Corpus:
    """`count` documents (the last `broken` of them unreadable), each with
    zero to three of `codes` written in varied case and punctuation, and
    near misses of others."""
    rng = random.Random(seed)
    corpus = Corpus()
    for number in range(1, count + 1):
        if number > count - broken:
            name, data = _broken(number, rng)
            corpus.documents.append((name, data))
            corpus.expected[name] = []
            corpus.broken.append(name)
            continue
        chosen = rng.sample(list(codes), k=min(len(codes), rng.choice((0, 0, 1, 1, 1, 2, 3))))
        decoys = [rng.choice(near_misses(c)) for c in rng.sample(list(codes), k=min(2, len(codes)))]
        kind = rng.choice(("pdf", "pdf", "pdf", "docx", "txt", "txt", "csv"))
        name = f"site-{number % 7}/drawing_{number:05d}.{kind}"
        corpus.documents.append((name, _document(kind, chosen, decoys, rng)))
        corpus.expected[name] = [c for c in codes if c in chosen]
    return corpus


def _document(kind: str, codes: list[str], decoys: list[str], rng: random.Random) -> bytes:
    spelled = [rng.choice((code, code.lower(), f"({code})", f"{code}.", f"{code},")) for code in codes]
    tokens = spelled + decoys
    lines = []
    for _ in range(rng.randint(3, 8)):
        words = rng.sample(_WORDS, k=6)
        if tokens and rng.random() < 0.6:
            words.insert(rng.randrange(len(words) + 1), tokens.pop())
        lines.append(" ".join(words))
    lines += [" ".join(("see", token)) for token in tokens]
    if kind == "pdf":
        half = rng.randint(1, len(lines))
        return pdf_bytes([], pages=[lines[:half], lines[half:]] if half < len(lines) else [lines])
    if kind == "docx":
        table = [["Hole", "Depth"], [lines.pop() if len(lines) > 1 else "-", "12 m"]]
        return docx_bytes(lines, table)
    if kind == "csv":
        return ("line,text\n" + "".join(f'{i},"{line}"\n' for i, line in enumerate(lines))).encode()
    return "\n".join(lines).encode("utf-8")


def _broken(number: int, rng: random.Random) -> tuple[str, bytes]:
    which = number % 3
    if which == 0:
        return f"broken/damaged_{number:05d}.pdf", b"%PDF-1.7\n" + rng.randbytes(200)
    if which == 1:
        return f"broken/truncated_{number:05d}.docx", docx_bytes(["HOLE"])[:300]
    return f"broken/junk_{number:05d}.bin", b"\x00\x01\x02\x03" + rng.randbytes(300)
