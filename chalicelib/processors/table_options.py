"""How the options every table processor shares (they choose how a CSV or an
Excel file is read, before any processor sees a row) are described to users.

Each description is {name, type, default, help[, choices]}; `type` is one of
string, integer, number, boolean, list, mapping or choice. GET /processors
hands them to the dashboard, which builds its form from them.
"""
from __future__ import annotations

TABLE_INPUT_OPTIONS_HELP: list[dict] = [
    {"name": "delimiter", "type": "string", "default": None,
     "help": "CSV delimiter, one character such as ; or | (sniffed from the file when empty)"},
    {"name": "encoding", "type": "string", "default": None,
     "help": "Text encoding such as cp1252 or utf-16 (detected when empty)"},
    {"name": "sheet", "type": "string", "default": None,
     "help": "Excel sheet: its name or 1-based position (the first sheet when empty)"},
]
