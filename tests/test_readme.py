"""The README is the operator's manual: every setting the code reads is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from youthlink.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_in_the_configuration_table() -> None:
    text = README.read_text()
    missing = [f"YOUTHLINK_{name.upper()}" for name in Settings.model_fields
               if not re.search(rf"\bYOUTHLINK_{name.upper()}\b", text)]
    assert not missing, f"settings missing from README.md: {missing}"


def test_the_quick_start_has_the_two_commands() -> None:
    text = README.read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "youthlink up" in quick_start and "pytest" in quick_start
