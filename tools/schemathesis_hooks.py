"""Schemathesis hooks for kepatuhan's API (loaded by crates/api/tests/schemathesis.rs).

Uploads of workbooks declare the XLSX media type, which Schemathesis cannot generate on its
own: it gets raw bytes, and now and then a real (empty or one-row) workbook written by openpyxl,
so the fuzzer reaches the workbook reader and not only the "not a workbook" refusal.
"""

import io

import openpyxl
import schemathesis
from hypothesis import strategies as st

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _workbook(rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_REAL = [
    _workbook([]),
    _workbook([["kepatuhan:assessment:2025:unit:1"], [], [], [], [], ["waiting_room"]]),
    _workbook([["code", "name"], ["19", "Kepulauan Bangka Belitung"]]),
]

schemathesis.openapi.media_type(
    XLSX,
    st.one_of(st.binary(max_size=4096), st.sampled_from(_REAL)),
)
