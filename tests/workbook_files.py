"""Helpers for tests that edit .xlsx files the way a user (or a bug) would."""

import html
import re
import zipfile
from pathlib import Path


def sheet_parts(path: Path) -> dict:
    """Sheet name -> zip member, through workbook.xml and its relationships."""
    with zipfile.ZipFile(path) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
    targets = {}
    for element in re.findall(r"<Relationship [^>]*>", rels):
        rid = re.search(r'Id="([^"]+)"', element).group(1)
        targets[rid] = re.search(r'Target="([^"]+)"', element).group(1)
    return {name: "xl/" + targets[rid].lstrip("/").removeprefix("xl/")
            for name, rid in re.findall(r'<sheet name="([^"]+)"[^>]*r:id="([^"]+)"', workbook)}


def sheet_part(path: Path, sheet: str) -> str:
    return sheet_parts(path)[sheet]


def read_formula(path: Path, sheet: str, cell: str) -> str:
    with zipfile.ZipFile(path) as archive:
        xml = archive.read(sheet_part(path, sheet)).decode()
    match = re.search(rf'<c r="{cell}"[^>]*><f>([^<]*)</f>', xml)
    assert match, f"{sheet}!{cell} holds no formula"
    return html.unescape(match.group(1))


def replace_formula(source: Path, target: Path, sheet: str, cell: str, new_formula: str) -> None:
    """Copy `source` to `target` with one cell's formula replaced (a shared-formula member
    becomes a plain one), its saved value kept, as a user editing one cell and not
    recalculating would."""
    def edit(data: bytes) -> bytes:
        xml = data.decode()
        pattern = rf'<c r="{cell}"([^>]*)>(?:<f[^>]*/>|<f[^>]*>[^<]*</f>)'
        assert re.search(pattern, xml), f"{sheet}!{cell} holds no formula"
        escaped = html.escape(new_formula, quote=False)
        return re.sub(pattern, lambda m: f'<c r="{cell}"{m.group(1)}><f>{escaped}</f>', xml, count=1).encode()
    _copy_editing(source, target, sheet_part(source, sheet), edit)


def _copy_editing(source: Path, target: Path, part: str, edit) -> None:
    """Copy the zip `source` to `target`, member `part` passed through `edit` (bytes -> bytes)."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in archive.infolist():
            data = archive.read(item.filename)
            out.writestr(item, edit(data) if item.filename == part else data)


def rewrite_part(source: Path, target: Path, part: str, pattern: bytes, replacement: bytes) -> None:
    """Copy `source` to `target` with one regex substitution in zip member `part`; the
    pattern must match there (exactly once is used), as a fuzzed or hand-damaged file."""
    def edit(data: bytes) -> bytes:
        data, count = re.subn(pattern, replacement, data, count=1)
        assert count == 1, f"{pattern!r} matches nothing in {part}"
        return data
    _copy_editing(source, target, part, edit)


def type_into(source: Path, target: Path, sheet: str, cell: str, typed: str) -> None:
    """Copy `source` to `target` with `typed` entered into one cell as a user types it
    (its formula, if any, gone): TRUE or FALSE a boolean, anything else text (inline), so
    "3" is the text 3, as Excel keeps a number typed after an apostrophe."""
    part = sheet_part(source, sheet)
    if typed in ("TRUE", "FALSE"):
        body = f' t="b"><v>{int(typed == "TRUE")}</v></c>'
    else:
        body = f' t="inlineStr"><is><t>{html.escape(typed, quote=False)}</t></is></c>'
    def edit(data: bytes) -> bytes:
        pattern = rf'<c r="{cell}"((?: (?!t=)[a-z]+="[^"]*")*)(?: t="[^"]*")?((?: [a-z]+="[^"]*")*)(?:/>|>.*?</c>)'
        xml, count = re.subn(pattern, lambda m: f'<c r="{cell}"{m.group(1)}{m.group(2)}{body}', data.decode(),
                             count=1, flags=re.S)
        assert count == 1, f"{sheet}!{cell} is not in the file"
        return xml.encode()
    _copy_editing(source, target, part, edit)
