"""Benchmark: the Excel report writer (chalicelib.reports.write_report) on a
generated 16-column row sheet, against plain openpyxl on the same rows.

    python -m bench.report_bench                  # 1,000,000 and 100,000 rows
    python -m bench.report_bench --rows 200000 --small-rows 20000

Every run is a fresh child process (`--child`), so each peak RSS is its own:
the child notes its RSS once the rows are ready to stream, writes, and
reports the growth of its peak (getrusage's ru_maxrss) over that. The parent
samples the child's private TMPDIR, where openpyxl keeps each sheet's XML
until the save (on Lambda that is /tmp, beside the report itself).

Runs, in one go:
- write_report at --small-rows and at --rows;
- baseline "normal": openpyxl's ordinary workbook (every cell in memory) at
  --small-rows, what a naive writer would do;
- baseline "write-only": openpyxl's write-only workbook fed the raw rows with
  no conversion, styling or injection safety, at --small-rows: the floor.
Targets: peak RSS grows < 50 MB from --small-rows to --rows; write_report
keeps >= 0.5x the rows/s of the normal-mode baseline.
The figures go to bench/results/report.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MB = 1024 * 1024

HEADER = ["row", "date", "site", "scope", "activity", "description", "quantity", "unit", "factor",
          "kg_co2e", "t_co2e", "cost", "currency", "estimated", "reference", "note"]
KINDS = ["integer", "date", "text", "text", "text", "text", "number", "text", "number",
         "number", "number", "number", "text", "bool", "text", "text"]
SITES = ["Lisbon plant", "Oslo office", "Austin DC", "Kyoto lab", "Lagos depot", "Perth mine"]
ACTIVITIES = ["electricity", "natural gas", "diesel", "flights", "rail", "hotel nights", "waste", "water"]
UNITS = ["kWh", "m3", "l", "km", "night", "kg"]
NOTES = ["", "", "", "checked", "-adjustment from Q3", "=estimate", "see invoice", "@ops review"]


def generate_rows(rows: int, seed: int = 20261122) -> Iterator[list]:
    """Deterministic rows, made one at a time as a caller streaming chunk
    files would hand them over; some notes start with - = @ on purpose."""
    rng = random.Random(seed)
    start = dt.date(2024, 1, 1)
    for i in range(1, rows + 1):
        quantity = round(rng.uniform(0, 5000), 2)
        factor = round(rng.uniform(0.01, 3), 5)
        kg = quantity * factor
        yield [
            i, start + dt.timedelta(days=i % 366), SITES[i % 6], f"scope {1 + i % 3}", ACTIVITIES[i % 8],
            f"{ACTIVITIES[i % 8]} at {SITES[i % 6]}, invoice {i * 7 % 100_000}", quantity, UNITS[i % 6],
            factor, kg, kg / 1000, round(rng.uniform(-500, 20_000), 2), "EUR", i % 5 == 0,
            f"INV-{i:08d}", NOTES[i % 8],
        ]


def write_with_report(path: Path, rows: int) -> dict:
    from chalicelib.reports import Column, Report, RowSheet, SummarySection, error_sheet, write_report

    report = Report(
        "Benchmark report",
        [SummarySection("File", [("rows", rows), ("columns", len(HEADER))])],
        RowSheet("Rows", [Column(h, k) for h, k in zip(HEADER, KINDS, strict=True)], generate_rows(rows)),
        error_sheet(iter([(5, "unit missing"), (9, "=bad factor")])),
    )
    stats = write_report(path, report)
    return {"sheets": stats.sheets}


def write_normal_mode(path: Path, rows: int) -> dict:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in generate_rows(rows):
        ws.append(row)
    wb.save(path)
    return {"sheets": wb.sheetnames}


def write_raw_write_only(path: Path, rows: int) -> dict:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Rows")
    ws.append(HEADER)
    for row in generate_rows(rows):
        ws.append(row)
    wb.save(path)
    return {"sheets": wb.sheetnames}


WRITERS = {"report": write_with_report, "normal": write_normal_mode, "write-only": write_raw_write_only}


def child(writer: str, rows: int, out: Path) -> None:
    """One measured write, in this fresh process: prints a JSON line."""
    import openpyxl  # noqa: F401

    import chalicelib.reports  # noqa: F401  imports are not the writer's memory

    rss_before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    extra = WRITERS[writer](out, rows)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"writer": writer, "rows": rows, "seconds": seconds, "bytes": out.stat().st_size,
                      "rss_before_mb": rss_before / MB, "peak_rss_mb": peak / MB,
                      "rss_growth_mb": (peak - rss_before) / MB, **extra}))


def run(writer: str, rows: int) -> dict:
    """Run one write in a child; sample the size of its private TMPDIR."""
    with tempfile.TemporaryDirectory(prefix="report_bench_") as work:
        tmp = Path(work) / "tmp"
        tmp.mkdir()
        out = Path(work) / "report.xlsx"
        env = {**os.environ, "TMPDIR": str(tmp)}
        proc = subprocess.Popen([sys.executable, "-m", "bench.report_bench", "--child", writer,
                                 "--rows", str(rows), "--out", str(out)],
                                cwd=HERE.parent, env=env, stdout=subprocess.PIPE, text=True)
        tmp_peak = 0
        while proc.poll() is None:
            tmp_peak = max(tmp_peak, _tree_bytes(tmp))
            time.sleep(0.05)
        stdout = proc.stdout.read()
        if proc.returncode:
            raise RuntimeError(f"{writer} at {rows} rows failed: {stdout}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["tmp_peak_mb"] = tmp_peak / MB
    result["rows_per_s"] = rows / result["seconds"]
    return result


def _tree_bytes(path: Path) -> int:
    total = 0
    for entry in os.scandir(path):
        try:
            total += entry.stat().st_size
        except OSError:  # removed while we looked
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--child", choices=sorted(WRITERS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.out)
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)

    normal = run("normal", args.small_rows)
    raw = run("write-only", args.small_rows)
    small = run("report", args.small_rows)
    big = run("report", args.rows)

    growth = big["peak_rss_mb"] - small["peak_rss_mb"]
    vs_normal = big["rows_per_s"] / normal["rows_per_s"]
    figures = {
        "rows": args.rows, "small_rows": args.small_rows, "columns": len(HEADER),
        "report_rows_per_s": {str(args.small_rows): round(small["rows_per_s"]),
                              str(args.rows): round(big["rows_per_s"])},
        "baseline_normal_rows_per_s": round(normal["rows_per_s"]),
        "baseline_write_only_rows_per_s": round(raw["rows_per_s"]),
        "ratio_report_to_normal": round(vs_normal, 2),
        "ratio_report_to_raw_write_only": round(big["rows_per_s"] / raw["rows_per_s"], 2),
        "report_peak_rss_mb": {str(args.small_rows): round(small["peak_rss_mb"], 1),
                               str(args.rows): round(big["peak_rss_mb"], 1)},
        "report_peak_rss_growth_mb": round(growth, 1),
        "baseline_normal_rss_growth_mb": round(normal["rss_growth_mb"], 1),
        "report_file_mb": round(big["bytes"] / MB, 1),
        "report_tmp_peak_mb": round(big["tmp_peak_mb"], 1),
        "targets_met": {"rss growth < 50 MB": growth < 50, "rows/s >= 0.5x normal mode": vs_normal >= 0.5},
        "runs": [normal, raw, small, big],
    }
    (RESULTS / "report.json").write_text(json.dumps(figures, indent=2))
    print(render(figures, args))
    return 0 if all(figures["targets_met"].values()) else 1


def render(f: dict, args) -> str:
    lines = ["", f"Sluice report benchmark: {f['columns']} columns, one fresh process per run",
             f"  {'writer':<34}{'rows':>10}{'seconds':>9}{'rows/s':>9}{'RSS growth':>12}"
             f"{'peak RSS':>10}{'file':>9}{'TMPDIR peak':>13}"]
    labels = {"normal": "openpyxl normal mode (baseline)", "write-only": "openpyxl write-only, raw (floor)",
              "report": "write_report"}
    for r in f["runs"]:
        growth = max(r["rss_growth_mb"], 0.0)  # no "-0"
        lines.append(f"  {labels[r['writer']]:<34}{r['rows']:>10,}{r['seconds']:>9.1f}"
                     f"{r['rows_per_s']:>9,.0f}{growth:>9.1f} MB{r['peak_rss_mb']:>7.0f} MB"
                     f"{r['bytes'] / MB:>6.0f} MB{r['tmp_peak_mb']:>10.0f} MB")
    lines += [
        f"  write_report at {args.rows:,} rows: {f['ratio_report_to_normal']:.2f}x the rows/s of normal mode"
        f" (target >= 0.5), {f['ratio_report_to_raw_write_only']:.2f}x raw write-only",
        f"  peak RSS {args.small_rows:,} -> {args.rows:,} rows: {f['report_peak_rss_growth_mb']:+.1f} MB"
        f" (target < 50); normal mode grows {f['baseline_normal_rss_growth_mb']:.0f} MB"
        f" for {args.small_rows:,} rows",
        f"  targets met: {all(f['targets_met'].values())} {f['targets_met']}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
