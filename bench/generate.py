"""A deterministic CSV for the benchmark: about ten columns mixing ints,
floats, dates (in several written forms), booleans and strings, with some
missing and some invalid values. Vectorised, so a million rows take seconds."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

CITIES = np.array(["Lisbon", "Oslo", "Austin", "Kyoto", "Lagos", "Quito", "Perth", "Derry, NH"])


def make_frame(rows: int, seed: int = 20261122) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def holes(values: np.ndarray, rate: float, fill: str = "") -> np.ndarray:
        values = values.astype(object)
        values[rng.random(rows) < rate] = fill
        return values

    days = rng.integers(0, 365 * 30, rows)
    dates = pd.Timestamp("1995-01-01") + pd.to_timedelta(days, unit="D")
    iso = dates.strftime("%Y-%m-%d").to_numpy()
    us = dates.strftime("%m/%d/%Y").to_numpy()
    written = dates.strftime("%b %d, %Y").to_numpy()
    form = rng.integers(0, 10, rows)
    join = np.where(form < 7, iso, np.where(form < 9, us, written))
    return pd.DataFrame({
        "id": np.arange(1, rows + 1),
        "name": np.char.add("customer_", rng.integers(0, 50_000, rows).astype(str)),
        "age": holes(holes(rng.integers(18, 90, rows), 0.01), 0.002, "unknown"),
        "salary": holes(np.round(rng.normal(60_000, 15_000, rows), 2), 0.02),
        "join_date": holes(join, 0.01),
        "active": np.where(rng.random(rows) < 0.6, "true", "false"),
        "score": holes(np.round(rng.random(rows) * 100, 3), 0.005, "n/a"),
        "city": CITIES[rng.integers(0, len(CITIES), rows)],
        "quantity": holes(rng.integers(0, 1000, rows), 0.001, "12x"),
        "updated_at": (dates + pd.to_timedelta(rng.integers(0, 86400, rows), unit="s"))
        .strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
    })


def write_csv(path: Path, rows: int, seed: int = 20261122) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        make_frame(rows, seed).to_csv(tmp, index=False)
        tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int)
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    write_csv(args.path, args.rows)
    print(args.path, args.path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
