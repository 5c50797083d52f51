"""The Excel report every job ends with: a Summary sheet, the rows streamed
from storage, and the errors. Pure Python over openpyxl; the caller uploads
the file it writes."""
from __future__ import annotations

from .excel import (
    MAX_SHEET_ROWS,
    Column,
    Report,
    ReportStats,
    RowSheet,
    SummarySection,
    SummaryTable,
    error_sheet,
    write_report,
)

__all__ = [
    "MAX_SHEET_ROWS", "Column", "Report", "ReportStats", "RowSheet", "SummarySection", "SummaryTable",
    "error_sheet", "write_report",
]
