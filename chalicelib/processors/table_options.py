"""How the options every table processor shares (they choose how a CSV or an
Excel file is read, before any processor sees a row) are described to users.

Each description is {name, type, default, help[, choices][, advanced]};
`type` is one of string, integer, number, boolean, list, mapping or choice,
and `advanced` marks an option seldom set by hand, which a form may fold away
(these are: the file says how it is to be read). GET /processors
hands them to the dashboard, which builds its form from them.
"""
from __future__ import annotations

TABLE_INPUT_OPTIONS_HELP: list[dict] = [
    {"name": "delimiter", "type": "string", "default": None, "advanced": True,
     "help": "CSV delimiter, one character such as ; or | (sniffed from the file when empty)"},
    {"name": "encoding", "type": "string", "default": None, "advanced": True,
     "help": "Text encoding such as cp1252 or utf-16 (detected when empty)"},
    {"name": "sheet", "type": "string", "default": None, "advanced": True,
     "help": "Excel sheet: its name or 1-based position (the first sheet when empty)"},
]
