"""Regenerate the README's reference-number table from src/helpers/reference_numbers.toml.

    .venv/bin/python tools/update_readme.py
"""

import re
from pathlib import Path

from helpers.results import reference_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- reference-table:start -->", "<!-- reference-table:end -->"

text = README.read_text(encoding="utf-8")
new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: f"{START}\n{reference_table()}\n{END}", text, flags=re.S)
README.write_text(new, encoding="utf-8")
print("README reference table updated" if new != text else "README reference table already up to date")
