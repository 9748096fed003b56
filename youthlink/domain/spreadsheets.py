"""Reading the city's spreadsheets: XLSX or CSV in, rows keyed by column out, errors reported per row.

Every importer (volunteers and team memberships, offline service hours) reads through here, so a file
that is not a spreadsheet is refused the same way everywhere, before anything is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from youthlink.config import get_settings
from youthlink.errors import Invalid


@dataclass
class RowError:
    row: int
    column: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


def check_size(content: bytes) -> None:
    settings = get_settings()
    if not content:
        raise Invalid("EMPTY_FILE", "文件为空", "file")
    if len(content) > settings.import_max_bytes:
        raise Invalid("FILE_TOO_LARGE", f"文件不能超过 {settings.import_max_bytes // 1_000_000} MB", "file")


def read_table(filename: str, content: bytes) -> list[list[Any]]:
    """Rows of cells from an XLSX (openpyxl) or CSV (UTF-8 with or without BOM, else GB18030) file."""
    check_size(content)
    name = filename.lower()
    if name.endswith(".xlsx") or content[:2] == b"PK":
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception:
            raise Invalid("UNREADABLE_FILE", "无法读取该 Excel 文件（需要 .xlsx）", "file") from None
        sheet = workbook.worksheets[0]
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
        workbook.close()
        return rows
    if name.endswith(".csv") or not name:
        if b"\x00" in content[:4096]:
            raise Invalid("UNREADABLE_FILE", "该文件不是表格（CSV 不应含二进制内容）", "file")
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise Invalid("UNREADABLE_FILE", "无法识别 CSV 文件的编码（请用 UTF-8）", "file")
        try:
            return [list(row) for row in csv.reader(io.StringIO(text))]
        except csv.Error:
            raise Invalid("UNREADABLE_FILE", "无法解析该 CSV 文件", "file") from None
    raise Invalid("UNSUPPORTED_FILE", "只支持 .xlsx 或 .csv 文件", "file")


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse_date(value: Any) -> date:
    """A date cell: a real date, or text like 2026-05-04, 2026/5/4, 2026.5.4 or 2026年5月4日."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = text(value).replace("/", "-").replace(".", "-").replace("年", "-").replace("月", "-").rstrip("日")
    return date.fromisoformat("-".join(part.zfill(2) for part in raw.split("-")))


@dataclass(frozen=True)
class Columns:
    """The columns an importer reads: accepted header names per key, which are required, display labels."""

    names: Mapping[str, Sequence[str]]
    required: Sequence[str]
    labels: Mapping[str, str]

    def key_of(self, cell: Any) -> str | None:
        header = text(cell).lower().replace("\u3000", " ")
        for key, names in self.names.items():
            if header in {n.lower() for n in names}:
                return key
        return None


def data_rows(table: list[list[Any]], columns: Columns) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number as the user sees it, {key: cell}) for every non-empty row below the header row."""
    header_index = next((i for i, row in enumerate(table) if any(columns.key_of(c) for c in row)), None)
    if header_index is None:
        wanted = "、".join(columns.labels[k] for k in columns.required)
        raise Invalid("MISSING_HEADER", f"找不到表头（{wanted}）", "file")
    positions = {key: i for i, c in enumerate(table[header_index]) if (key := columns.key_of(c))}
    missing = [columns.labels[k] for k in columns.required if k not in positions]
    if missing:
        raise Invalid("MISSING_COLUMNS", f"缺少列：{'、'.join(missing)}", "file")
    body = table[header_index + 1:]
    if len(body) > get_settings().import_max_rows:
        raise Invalid("TOO_MANY_ROWS", f"一次最多导入 {get_settings().import_max_rows} 行", "file")
    for number, cells in enumerate(body, start=header_index + 2):
        raw = {key: cells[i] if i < len(cells) else None for key, i in positions.items()}
        if any(text(v) for v in raw.values()):
            yield number, raw


def errors_csv(errors: Sequence[Mapping[str, Any]]) -> bytes:
    """The error report as a CSV a spreadsheet program opens (UTF-8 with BOM for Excel)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["行号 row", "列 column", "问题 problem"])
    for error in errors:
        writer.writerow([error.get("row"), error.get("column") or "", error.get("message")])
    return out.getvalue().encode("utf-8-sig")
