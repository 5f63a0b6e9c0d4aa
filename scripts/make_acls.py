#!/usr/bin/env python3
"""docs/acls.md's table of ACLs per command again, from kafkaops/doctor/acls.py (`make docs`)."""

from __future__ import annotations

from pathlib import Path

from kafkaops.doctor.acls import page_with_table

PAGE = Path(__file__).resolve().parent.parent / "docs" / "acls.md"

if __name__ == "__main__":
    PAGE.write_text(page_with_table(PAGE.read_text()))
