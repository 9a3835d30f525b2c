"""Helpers for tests that edit .xlsx files the way a user (or a bug) would."""

import html
import re
import zipfile
from pathlib import Path


def sheet_part(path: Path, sheet: str) -> str:
    """The zip member holding `sheet` (XlsxWriter numbers sheets in order)."""
    with zipfile.ZipFile(path) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
    names = re.findall(r'<sheet name="([^"]+)"', workbook)
    return f"xl/worksheets/sheet{names.index(sheet) + 1}.xml"


def read_formula(path: Path, sheet: str, cell: str) -> str:
    with zipfile.ZipFile(path) as archive:
        xml = archive.read(sheet_part(path, sheet)).decode()
    match = re.search(rf'<c r="{cell}"[^>]*><f>([^<]*)</f>', xml)
    assert match, f"{sheet}!{cell} holds no formula"
    return html.unescape(match.group(1))


def replace_formula(source: Path, target: Path, sheet: str, cell: str, new_formula: str) -> None:
    """Copy `source` to `target` with one cell's formula text replaced, cached value kept."""
    part = sheet_part(source, sheet)
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename == part:
                xml = data.decode()
                pattern = rf'(<c r="{cell}"[^>]*><f>)([^<]*)(</f>)'
                assert re.search(pattern, xml), f"{sheet}!{cell} holds no formula"
                escaped = html.escape(new_formula, quote=False)
                xml = re.sub(pattern, lambda m: m.group(1) + escaped + m.group(3), xml, count=1)
                data = xml.encode()
            out.writestr(item, data)
