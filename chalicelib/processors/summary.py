"""Where the profile's summary lands: processed/<name>_summary.json (seed 004)."""
from __future__ import annotations

import posixpath
import re


def summary_key(filename: str) -> str:
    stem = posixpath.splitext(posixpath.basename(filename))[0] or "file"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    return f"processed/{stem}_summary.json"
