"""The carbon processor (seed 000): the emissions of every activity row.

Each chunk is calculated by chalicelib/carbon (one factor lookup per distinct
activity/unit/region/year, numpy for the rows); the partial carries sums by
scope and by activity, so it stays small however many rows a chunk has. The
rows themselves leave as the chunk's row output, and rows that cannot be
calculated as row errors: the job then ends `completed_with_errors`, or
`failed` when the caller set `strict`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..carbon.activities import OPTIONAL_ROLES, REQUIRED_ROLES, match_columns
from ..carbon.calculate import ROW_COLUMNS, calculate_rows, parse_year
from ..carbon.factor_table import bundled_table
from ..jobs.model import InputError
from .base import ChunkResult, Emit, FinishContext, Outcome, Partial, ReportContent, RowColumn, TableChunk
from .option_checks import only_known
from .table_options import TABLE_INPUT_OPTIONS_HELP

FACTOR_SOURCES = ("table", "api")
GASES = ("kg_co2e", "kg_co2", "kg_ch4", "kg_n2o")
_KNOWN_OPTIONS = {"columns", "region", "year", "strict", "factor_source", "delimiter", "encoding",
                  "sheet"}

_KINDS = {"row": "integer", "amount": "number", "year": "integer", "scope": "integer",
          "factor": "number", "factor_year": "integer", **{g: "number" for g in GASES}}
_HEADERS = {"row": "Row", "activity": "Activity", "amount": "Amount", "unit": "Unit",
            "region": "Region", "year": "Year", "kg_co2e": "kg CO2e", "kg_co2": "kg CO2e of CO2",
            "kg_ch4": "kg CO2e of CH4", "kg_n2o": "kg CO2e of N2O", "scope": "Scope",
            "factor": "Factor (kg CO2e per unit)", "factor_unit": "Factor unit",
            "factor_source": "Factor source", "factor_table": "Factor table",
            "factor_year": "Factor year"}


class CarbonProcessor:
    name = "carbon"
    chunk_kind = "table"
    #: what its files are, by their first bytes (sources.sniff); others are refused
    input_kinds = ("csv", "xlsx")
    row_columns = [RowColumn(c, _HEADERS[c], _KINDS.get(c, "text")) for c in ROW_COLUMNS]
    description = "Greenhouse-gas emissions of every activity row (DESNZ 2023 and eGRID2022 factors)"
    # What validate_options accepts, for GET /processors and the dashboard's form.
    options_help = [
        {"name": "region", "type": "string", "default": None,
         "help": "Country or grid region for rows without one, such as GB or US"},
        {"name": "year", "type": "integer", "default": None,
         "help": "Year for rows without one, such as 2023"},
        {"name": "factor_source", "type": "choice", "default": None, "choices": list(FACTOR_SOURCES),
         "help": "Where factors come from: the bundled tables or the stage's factor service "
                 "(the stage's choice when empty)"},
        {"name": "strict", "type": "boolean", "default": False,
         "help": "Fail the job if any row cannot be calculated"},
        {"name": "columns", "type": "mapping", "default": None,
         "help": f"Which column holds each role ({', '.join(REQUIRED_ROLES + OPTIONAL_ROLES)}), "
                 "e.g. activity=Fuel type, amount=Quantity (found from the headers when empty)"},
        *TABLE_INPUT_OPTIONS_HELP,
    ]

    def option_defaults(self, settings: Any) -> dict[str, Any]:
        """The stage's factor source (SLUICE_FACTOR_SOURCE) unless the job names one."""
        return {"factor_source": settings.factor_source}

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        clean = only_known(options, _KNOWN_OPTIONS, self.name)
        columns = clean.get("columns") or {}
        if not isinstance(columns, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
            raise InputError('options.columns must map roles to column names, e.g. '
                             '{"activity": "Fuel type", "amount": "Quantity"}')
        roles = set(REQUIRED_ROLES) | set(OPTIONAL_ROLES)
        if set(columns) - roles:
            raise InputError(f"options.columns has unknown role(s) "
                             f"{', '.join(sorted(set(columns) - roles))}; the roles are "
                             f"{', '.join(REQUIRED_ROLES + OPTIONAL_ROLES)}")
        clean["columns"] = columns
        region = clean.get("region")
        if region is not None and (not isinstance(region, str) or not region.strip()):
            raise InputError(f"options.region must be a country or grid region such as GB or US, "
                             f"got {region!r}")
        year = clean.get("year")
        if year is not None:
            parsed = parse_year(str(year)) if not isinstance(year, bool) else None
            if parsed is None:
                raise InputError(f"options.year must be a year such as 2023, got {year!r}")
            clean["year"] = parsed
        source = clean.get("factor_source") or "table"
        if source not in FACTOR_SOURCES:
            raise InputError(f"options.factor_source must be one of {', '.join(FACTOR_SOURCES)}, "
                             f"got {source!r}")
        clean["factor_source"] = source
        return clean

    # -- per chunk ---------------------------------------------------------

    def process(self, chunk: TableChunk, emit: Emit) -> ChunkResult:
        options = chunk.options
        columns = match_columns([str(c) for c in chunk.frame.columns], options.get("columns"))
        rows, errors = calculate_rows(
            chunk.frame, chunk.row_numbers, columns, self._lookup(chunk),
            default_region=options.get("region"), default_year=options.get("year"),
        )
        for error in errors:
            emit("row_error", error)
        partial = {
            "rows": int(len(chunk.frame)),
            "calculated": int(len(rows)),
            "rejected": len(errors),
            "all": _sums(rows),
            "by_scope": {str(k): _sums(group) for k, group in rows.groupby("scope")},
            "by_activity": {str(k): {**_sums(group), "scope": int(group["scope"].iloc[0])}
                            for k, group in rows.groupby("activity")},
        }
        return ChunkResult(partial, rows)

    @staticmethod
    def _lookup(chunk: TableChunk):
        if chunk.options.get("factor_source") != "api":
            return bundled_table()
        lookup = chunk.services.get("factor_api")
        if lookup is None:
            raise InputError("options.factor_source is 'api' but no factor API is configured "
                             "on this deployment (SLUICE_FACTOR_API_URL)")
        return lookup

    # -- merging -----------------------------------------------------------

    def merge(self, left: Partial, right: Partial) -> Partial:
        return {
            "rows": left["rows"] + right["rows"],
            "calculated": left["calculated"] + right["calculated"],
            "rejected": left["rejected"] + right["rejected"],
            "all": _add(left["all"], right["all"]),
            "by_scope": _add_groups(left["by_scope"], right["by_scope"]),
            "by_activity": _add_groups(left["by_activity"], right["by_activity"]),
        }

    # -- the result --------------------------------------------------------

    def finish(self, merged: Partial | None, ctx: FinishContext) -> Outcome:
        if merged is None or merged["rows"] == 0:
            raise InputError("the file has a header but no activity rows")
        if merged["calculated"] == 0:
            raise InputError("no row could be calculated")
        total = _rounded(merged["all"])
        by_scope = {k: _rounded(v) for k, v in sorted(merged["by_scope"].items())}
        by_activity = {k: _rounded(v) for k, v in sorted(merged["by_activity"].items())}
        result = {
            "file_name": ctx.filename,
            "processor": self.name,
            "factor_source": ctx.options.get("factor_source", "table"),
            "rows_calculated": merged["calculated"],
            "rows_rejected": merged["rejected"],
            "totals": {**total, "t_co2e": _sig(total["kg_co2e"] / 1000)},
            "by_scope": by_scope,
            "by_activity": by_activity,
        }
        totals = {"kg_co2e": total["kg_co2e"], "t_co2e": result["totals"]["t_co2e"],
                  "rows_calculated": merged["calculated"], "rows_rejected": merged["rejected"],
                  "by_scope": {k: v["kg_co2e"] for k, v in by_scope.items()}}
        # The rejected rows are row errors, which the pipeline counts itself.
        return Outcome(result=result, totals=totals, report=_report(result))


def _sums(rows: pd.DataFrame) -> dict[str, Any]:
    """Rows and kg per gas. A gas no row's factor gives (waste, US grid) is
    None rather than 0: unknown is not zero. math.fsum: the sum does not
    depend on the order of the rows."""
    sums: dict[str, Any] = {"rows": int(len(rows))}
    for gas in GASES:
        given = rows[gas].dropna().tolist()
        sums[gas] = math.fsum(given) if given else None
    return sums


def _add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in a.items():
        if k == "scope":
            out[k] = v
        elif v is None or b[k] is None:
            out[k] = b[k] if v is None else v
        else:
            out[k] = v + b[k]
    return out


def _add_groups(a: dict[str, dict], b: dict[str, dict]) -> dict[str, dict]:
    out = dict(a)
    for key, sums in b.items():
        out[key] = _add(out[key], sums) if key in out else sums
    return out


def _sig(x: float) -> float:
    # 12 significant digits keep binary noise (0.30000000000000004) out of totals.
    return float(f"{x:.12g}")


def _rounded(sums: dict[str, Any]) -> dict[str, Any]:
    return {k: (_sig(v) if k in GASES and v is not None else v) for k, v in sums.items()}


def _report(result: dict[str, Any]) -> ReportContent:
    totals = result["totals"]
    gases = ["kg_co2e", "kg_co2", "kg_ch4", "kg_n2o"]
    header = ["rows", "kg CO2e", "kg CO2e of CO2", "kg CO2e of CH4", "kg CO2e of N2O"]
    return ReportContent(
        sections=[("Emissions", [
            ("file", result["file_name"]),
            ("rows calculated", result["rows_calculated"]),
            ("rows rejected", result["rows_rejected"]),
            ("total kg CO2e", totals["kg_co2e"]),
            ("total t CO2e", totals["t_co2e"]),
            ("factor source", result["factor_source"]),
        ])],
        tables=[
            ("By scope", ["scope", *header],
             [[int(k), v["rows"], *(v[g] for g in gases)] for k, v in result["by_scope"].items()]),
            ("By activity", ["activity", "scope", *header],
             [[k, v["scope"], v["rows"], *(v[g] for g in gases)]
              for k, v in result["by_activity"].items()]),
        ],
    )
