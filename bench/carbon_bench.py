"""Benchmark: the carbon processor through the local cloud against one plain
pandas process doing the same work, on the same generated activity file.

    python -m bench.carbon_bench                  # 1,000,000 rows
    python -m bench.carbon_bench --rows 200000

The baseline is what a user would otherwise write: one process that reads the
whole CSV with pandas, calculates every row with Sluice's own calculation,
and writes the same outputs (the per-row CSV and the Excel report with the
same writer). The pipeline run is end to end: presigned upload, dispatch,
workers, aggregation with the row file, the result JSON with every row and
the Excel report, until GET /jobs/<id> says `completed`. Also printed, from
the same run: the profile benchmark's rows per second on a file of the same
row count, so the two processors can be compared. The figures go to
bench/results/carbon.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.generate import write_csv
from bench.profile_bench import DATA, MB, RESULTS, run_pipeline

# (activity, unit, region) as users write them; amounts are drawn per row.
KINDS = [
    ("Electricity", "kWh", "UK"), ("Electricity", "MWh", "ERCT"), ("Natural gas", "kWh", "UK"),
    ("Natural gas", "m3", "UK"), ("Diesel", "litres", "UK"), ("Diesel", "US gallons", "UK"),
    ("Petrol", "litres", "UK"), ("LPG", "litres", "UK"), ("Burning oil", "litres", "UK"),
    ("Coal", "tonnes", "UK"), ("Short-haul flight", "passenger-km", "UK"),
    ("Long-haul flight", "passenger miles", "UK"), ("Rail", "passenger-km", "UK"),
    ("Road freight", "tonne-km", "UK"), ("Waste to landfill", "tonnes", "UK"),
]


def write_activities(path: Path, rows: int, seed: int = 20261122) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, len(KINDS), rows)
    table = np.array(KINDS, dtype=object)[kinds]
    frame = pd.DataFrame({
        "Site": np.array(["London", "Leeds", "Austin", "Cardiff"], dtype=object)[rng.integers(0, 4, rows)],
        "Activity": table[:, 0], "Quantity": np.round(rng.uniform(0, 5000, rows), 2),
        "Unit": table[:, 1], "Country": table[:, 2], "Year": 2023,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def run_baseline(path: Path) -> float:
    """Seconds for one process to calculate and write the same outputs."""
    from chalicelib.carbon.activities import match_columns
    from chalicelib.carbon.calculate import calculate_rows
    from chalicelib.carbon.factor_table import bundled_table
    from chalicelib.processors.carbon import CarbonProcessor
    from chalicelib.reports.excel import Column, Report, RowSheet, write_report

    started = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = match_columns(list(frame.columns))
    rows, _ = calculate_rows(frame, pd.Series(np.arange(2, len(frame) + 2)), columns, bundled_table())
    with tempfile.TemporaryDirectory() as tmp:
        rows.to_csv(os.path.join(tmp, "rows.csv"), index=False)
        rows.to_json(os.path.join(tmp, "result.json"), orient="records")
        spec = CarbonProcessor.row_columns
        write_report(os.path.join(tmp, "report.xlsx"), Report(
            title="baseline", rows=RowSheet("Rows", [Column(c.header, c.kind) for c in spec],
                                            rows.itertuples(index=False, name=None))))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    activities = write_activities(DATA / f"activities_{args.rows}.csv", args.rows)
    profiled = write_csv(DATA / f"rows_{args.rows}.csv", args.rows)

    base_seconds = run_baseline(activities)
    carbon, result = run_pipeline(activities, args.rows, args.workers, processor="carbon")
    profile, _ = run_pipeline(profiled, args.rows, args.workers, processor="profile")
    if carbon.status != "completed" or result["rows_calculated"] != args.rows:
        print(f"carbon job ended {carbon.status} with {result.get('rows_calculated')} rows", file=sys.stderr)
        return 1
    base_rate = args.rows / base_seconds
    ratio = carbon.rows_per_second / base_rate
    per_million = carbon.app_calls_total * 1_000_000 / args.rows
    figures = {
        "rows": args.rows, "file_mb": round(activities.stat().st_size / MB, 1), "workers": args.workers,
        "baseline_seconds": round(base_seconds, 2), "baseline_rows_per_s": round(base_rate),
        "carbon_seconds": round(carbon.seconds, 2), "carbon_rows_per_s": round(carbon.rows_per_second),
        "ratio_carbon_to_baseline": round(ratio, 2),
        "profile_seconds": round(profile.seconds, 2), "profile_rows_per_s": round(profile.rows_per_second),
        "carbon_app_calls_by_service": carbon.app_calls,
        "carbon_app_calls_per_million_rows": round(per_million),
        "carbon_worker_peak_rss_mb": round(carbon.worker_peak_rss_mb, 1),
        "chunks": carbon.chunks,
        "targets_met": {"ratio >= 0.5": ratio >= 0.5, "calls/M rows <= 300": per_million <= 300},
    }
    (RESULTS / "carbon.json").write_text(json.dumps(figures, indent=2))
    f = figures
    print("\n".join([
        "",
        f"Sluice carbon benchmark: {args.rows:,} activity rows, {f['file_mb']} MB CSV,"
        f" {args.workers} workers",
        f"  one process, same outputs  {f['baseline_seconds']:8.2f} s {f['baseline_rows_per_s']:>10,} rows/s",
        f"  carbon, local cloud        {f['carbon_seconds']:8.2f} s {f['carbon_rows_per_s']:>10,} rows/s"
        f"   {carbon.chunks} chunks",
        f"  ratio carbon/baseline      {f['ratio_carbon_to_baseline']:.2f}x (target >= 0.5)",
        f"  profile, local cloud       {f['profile_seconds']:8.2f} s {f['profile_rows_per_s']:>10,} rows/s"
        " (same row count, for comparison)",
        f"  AWS calls by the job       {carbon.app_calls_total}"
        f" = {f['carbon_app_calls_per_million_rows']} per million rows (target <= 300)",
        f"  worker peak RSS            {f['carbon_worker_peak_rss_mb']:.0f} MB",
        f"  targets met                {all(f['targets_met'].values())} {f['targets_met']}",
        "",
    ]))
    return 0 if all(f["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
