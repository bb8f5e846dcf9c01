"""The monthly check-in report per office as files: CSV (UTF-8 with BOM, so Excel in zh-CN reads the Chinese
right, as the queue log's CSV) and XLSX (openpyxl), the same columns and figures as the JSON report."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from huiyan.checkin.model import REPORT_COLUMNS, ReportRow

BOM = "\ufeff"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a cell starting like a formula would be run by Excel (CSV injection)
    return value


def totals(rows: Sequence[ReportRow], month: str) -> ReportRow:
    t = ReportRow(0, "合计 total", month)
    for r in rows:
        for key, _ in REPORT_COLUMNS:
            if key not in ("organisation_id", "organisation", "month", "completion_rate"):
                setattr(t, key, getattr(t, key) + getattr(r, key))
    return t


def csv_bytes(rows: Sequence[ReportRow], month: str) -> bytes:
    buf = io.StringIO()
    buf.write(BOM)
    w = csv.writer(buf)  # RFC 4180 quoting, CRLF line ends, as Excel expects
    w.writerow([title for _, title in REPORT_COLUMNS])
    for r in [*rows, totals(rows, month)]:
        v = r.view()
        w.writerow([_cell(v[k]) for k, _ in REPORT_COLUMNS])
    return buf.getvalue().encode("utf-8")


def xlsx_bytes(rows: Sequence[ReportRow], month: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = f"点验 {month}"
    ws.append([title for _, title in REPORT_COLUMNS])
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in [*rows, totals(rows, month)]:
        v = r.view()
        ws.append([v[k] if v[k] is not None else "" for k, _ in REPORT_COLUMNS])
    rate_col = [k for k, _ in REPORT_COLUMNS].index("completion_rate") + 1
    for row in ws.iter_rows(min_row=2, min_col=rate_col, max_col=rate_col):
        for c in row:
            if isinstance(c.value, float):
                c.number_format = "0.0%"
    for i, (_, title) in enumerate(REPORT_COLUMNS, 1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(10, len(title) + 2)
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
