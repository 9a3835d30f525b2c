"""Random damage to a workbook, for the fuzz tests and benchmarks/fuzz.py.

Every function takes the original file's bytes and a `random.Random` and returns the
damaged file's bytes, so a case is reproduced from (workbook, kind, seed) alone:

    damaged = damage(original, "formula", random.Random(seed))

Kinds: "zip" (bytes of the file itself), "member" (one part of the zip flipped,
truncated, duplicated or deleted), "tag" (an element inserted into a sheet that a
careful writer never writes) and "formula" (formula text with tokens inserted).
"""

from __future__ import annotations

import html
import io
import random
import re
import warnings
import zipfile

KINDS = ("zip", "member", "tag", "formula")

# --- bytes of the zip ------------------------------------------------------------------


def damage_zip(data: bytes, rng: random.Random) -> bytes:
    """Flip, overwrite, cut or splice bytes anywhere in the file (headers included)."""
    out = bytearray(data)
    how = rng.choice(["flip", "flip", "overwrite", "truncate", "insert", "delete", "swap"])
    if how == "flip":
        for _ in range(rng.choice([1, 1, 2, 4, 16])):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
    elif how == "overwrite":
        i = rng.randrange(len(out))
        n = rng.choice([1, 4, 64, 1024])
        out[i:i + n] = bytes(rng.randrange(256) for _ in range(min(n, len(out) - i)))
    elif how == "truncate":
        del out[rng.randrange(len(out)):]
    elif how == "insert":
        i = rng.randrange(len(out))
        out[i:i] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 100])))
    elif how == "delete":
        i = rng.randrange(len(out))
        del out[i:i + rng.choice([1, 3, 100, 4096])]
    else:  # two stretches trade places
        n = rng.choice([16, 256, 4096])
        i, j = sorted(rng.randrange(max(1, len(out) - n)) for _ in range(2))
        if j >= i + n:
            out[i:i + n], out[j:j + n] = out[j:j + n], out[i:i + n]
    return bytes(out)


# --- one member of the zip ---------------------------------------------------------------


def members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def rezip(parts: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some cases
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for info, content in parts:
                name = info.filename if isinstance(info, zipfile.ZipInfo) else info
                archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), content,
                                 compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _xml_members(parts) -> list[int]:
    chosen = [i for i, (info, _) in enumerate(parts) if info.filename.endswith((".xml", ".rels"))]
    return chosen or list(range(len(parts)))


def _weighted_member(parts, rng: random.Random) -> int:
    """Sheets, workbook.xml, sharedStrings and .rels are the parts the reader reads: likelier."""
    candidates = _xml_members(parts)
    weights = [5 if re.search(r"(worksheets/sheet|workbook\.xml|sharedStrings|\.rels$|Content_Types)",
                              parts[i][0].filename) else 1 for i in candidates]
    return rng.choices(candidates, weights)[0]


def flip_text(content: bytes, rng: random.Random) -> bytes:
    """Change a few bytes of an XML text: a bit, a character, or markup characters."""
    out = bytearray(content)
    if not out:
        return b"<"
    for _ in range(rng.choice([1, 1, 3, 10])):
        i = rng.randrange(len(out))
        how = rng.randrange(4)
        if how == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif how == 1:
            out[i] = rng.choice(b'<>&"\'/=!?;#0123456789-x \n\x00\xff')
        elif how == 2:
            out[i:i] = rng.choice([b"<", b"</", b"&amp;", b"&#0;", b"&bogus;", b"]]>", b"\xc3", b"\xe2\x80"])
        else:
            del out[i:i + rng.randrange(1, 40)]
    return bytes(out)


def damage_member(data: bytes, rng: random.Random) -> bytes:
    parts = members(data)
    i = _weighted_member(parts, rng)
    info, content = parts[i]
    how = rng.choice(["flip", "flip", "truncate", "duplicate", "delete", "empty", "swap"])
    if how == "flip":
        parts[i] = (info, flip_text(content, rng))
    elif how == "truncate":
        parts[i] = (info, content[:rng.randrange(len(content) + 1)])
    elif how == "duplicate":  # the same name twice in the archive, the copy damaged or not
        copy = flip_text(content, rng) if rng.random() < 0.5 else content
        parts.insert(rng.randrange(len(parts) + 1), (info.filename, copy))
    elif how == "delete":
        del parts[i]
    elif how == "empty":
        parts[i] = (info, b"")
    else:  # another part's content under this name
        j = rng.randrange(len(parts))
        parts[i] = (info, parts[j][1])
    return rezip(parts)


# --- elements inserted into a sheet ------------------------------------------------------

def _inserted_tag(rng: random.Random, xml: str) -> str:
    row = rng.choice([1, 2, 3, 5, 40, 1048576])
    col = rng.choice(["A", "B", "C", "F", "Z", "XFD"])
    formulas = re.findall(r"<f>([^<]{1,200})</f>", xml) or ["1+1"]
    tags = [
        '<row r="0"><c r="A0"><v>1</v></c></row>',
        '<row r="0"/>',
        '<row r="-3"><c r="A1"><v>1</v></c></row>',
        '<row r="1048577"><c r="A1048577"><v>1</v></c></row>',
        '<row r="x">',
        f'<c r="XFE{row}"><v>1</v></c>',
        f'<c r="AAAA{row}"><f>1+1</f><v>2</v></c>',
        f'<c r="{col}0"><v>1</v></c>',
        f'<c r="{col}99999999"><v>1</v></c>',
        f'<c r="{col}{row}"><f t="shared" si="999"/><v>1</v></c>',
        f'<c r="{col}{row}"><f t="shared" ref="{col}{row}:{col}{row + 3}" si="{rng.randrange(5)}"/></c>',
        f'<c r="{col}{row}"><f t="shared" si="0" ref="A1:XFD1048576">{formulas[0]}</f></c>',
        f'<c r="{col}{row}"><f t="shared" si="abc"/></c>',
        f'<c r="{col}{row}"><v>text where a number goes</v></c>',
        f'<c r="{col}{row}"><f>{rng.choice(formulas)}</f><v>NaN?</v></c>',
        f'<c r="{col}{row}"><f>{rng.choice(formulas)}</f><v>1e999</v></c>',
        f'<c r="{col}{row}"><v>nan</v></c>',
        f'<c r="{col}{row}"><v>inf</v></c>',
        f'<c r="{col}{row}" t="s"><v>999999</v></c>',
        f'<c r="{col}{row}" t="s"><v>-1</v></c>',
        f'<c r="{col}{row}" t="s"><v>one</v></c>',
        f'<c r="{col}{row}" t="b"><v>maybe</v></c>',
        f'<c r="{col}{row}" t="e"><v>#BOGUS!</v></c>',
        f'<c r="{col}{row}" t="d"><v>2024-13-45</v></c>',
        f'<c r="{col}{row}" t="zz"><v>1</v></c>',
        f'<c r="{col}{row}" t="inlineStr"><v>1</v></c>',
        f'<c r="{col}{row}" t="inlineStr"/>',
        f'<c r="{col}{row}"><f t="array" ref="ZZZZ9">{rng.choice(formulas)}</f></c>',
        f'<c r="{col}{row}"><f t="array" ref="{col}{row}:{col}{row + 2}">{rng.choice(formulas)}</f></c>',
        f'<c r="{col}{row}"><f t="dataTable" ref="A1:B2" dt2D="1" r1="A1" r2="B1"/></c>',
        f'<c r="{col}{row}"><f t="bogus">1</f></c>',
        f'<c r="{col}{row}"><f></f><v>1</v></c>',
        f'<c r="{col}{row}"><f>{"(" * 200}1{")" * 200}</f></c>',
        f'<c r="{col}{row}"><f>{col}{row}</f></c>',  # refers to itself
        f'<c r="{col}{row}"><f>A:A</f></c>',
        f'<c r="{col}{row}"><f>SUM(1:1048576)</f></c>',
        '<c r="A1"><v>1</v></c><c r="A1"><f>2</f></c>',  # the same cell twice
        '<c><f>1+</f></c>',
        '<c s="1" t="str"><f>"a"&amp;"b"</f></c>',
        '<x:c xmlns:x="urn:bogus" r="B2"><x:v>1</x:v></x:c>',
        '<c r="B2"><is><t>inline without type</t></is></c>',
        "<sheetData/>",
        "<sheetData>",
        "</sheetData>",
        "<mergeCell ref='A1:B2'/>",
        "<!-- a comment --><?pi data?>",
        "<![CDATA[<c r=\"A1\"><v>1</v></c>]]>",
    ]
    return rng.choice(tags)


def _sheet_members(parts) -> list[int]:
    return [i for i, (info, _) in enumerate(parts)
            if re.match(r"^/?xl/worksheets/[^/]+\.xml$", info.filename)]


def damage_tag(data: bytes, rng: random.Random) -> bytes:
    parts = members(data)
    sheets = _sheet_members(parts)
    if not sheets:
        return damage_member(data, rng)
    i = rng.choice(sheets)
    info, content = parts[i]
    xml = content.decode("utf-8", "replace")
    tag = _inserted_tag(rng, xml)
    places = [m.end() for m in re.finditer(r"<sheetData>|<row\b[^>]*>|</c>|</row>", xml)] or [len(xml) // 2]
    where = rng.choice(places)
    if rng.random() < 0.25:  # replace a cell rather than add one
        cell = re.search(r"<c\b[^>]*?(?:/>|>.*?</c>)", xml[where:], re.S)
        if cell:
            xml = xml[:where + cell.start()] + tag + xml[where + cell.end():]
            parts[i] = (info, xml.encode("utf-8"))
            return rezip(parts)
    xml = xml[:where] + tag + xml[where:]
    parts[i] = (info, xml.encode("utf-8"))
    return rezip(parts)


# --- formula text --------------------------------------------------------------------------

FUNCTIONS = ["SUM", "IF", "MAX", "INDEX", "MATCH", "VLOOKUP", "SQRT", "EXP", "LN", "ABS", "AVERAGE",
             "SUMPRODUCT", "MMULT", "TRANSPOSE", "ROW", "COLUMN", "OFFSET", "INDIRECT", "RAND",
             "_xlfn.LET", "_xlfn.LAMBDA", "_xlfn.XLOOKUP", "_xlfn.SEQUENCE", "_xlfn.FILTER",
             "FOOBAR", "_xlfn.NOSUCH", "WEBSERVICE", "CHOOSE", "IFERROR", "ISFORMULA", "TEXT",
             "DATE", "SUMIF", "COUNTIF", "LOG", "POWER", "MOD", "ROUND", "CONCATENATE", "N", "T"]

TOKENS = [
    "(", ")", "((", "))", ",", ";", ":", "+", "-", "*", "/", "^", "&", "%", "=", "<>", "<=", " ",
    "05", "007", "0.", ".5", "1e309", "1E+309", "-1e309", "1e-400", "1E+5", "9.99E+307",
    "4294967296", "1" * 40, "0x10", "1,5", "TRUE", "FALSE", "true()", "#DIV/0!", "#N/A", "#REF!",
    "#NAME?", "#NUM!", "#NULL!", "#VALUE!", "#SPILL!", "#CALC!", "#GETTING_DATA", "#BOGUS!",
    "{1,2;3,4}", "{1,2,3}", "{1;#N/A}", "{\"a\",TRUE}", "{}", "{1,2", "A1#", "B5#", "@", "@A1:A5",
    "Table1[Age]", "Table1[[#This Row],[x]]", "Table1[#All]", "[@x]", "tbl[", "A:A", "$B:$B",
    "1:1", "A:XFD", "1:1048576", "A1:XFD1048576", "XFE1", "A0", "A1048577", "ZZZZ1", "R1C1",
    "R[-1]C", "basic!A1", "'no such'!A1", "nosuch!B2", "'a''b'!C3", "[1]Sheet1!A1",
    "'C:\\x\\[book.xlsx]s'!A1", "A1:A", "A1 A2", "(A1,A2)", "A1:B2 B1:C3", "\"text\"",
    "\"unterminated", "\"\"\"\"", "learning_rate", "no_such_name", "_xlpm.x", "_xlfn._xlws.SORT",
    "FOOBAR(", "SUM(", "IF(,,)", "INDEX(A:A,0)", "OFFSET(A1,1,1)", "INDIRECT(\"A\"&1)",
    "INDIRECT(\"ZZZZ1\")", "_xlfn.LAMBDA(_xlpm.x,_xlpm.x)(1)", "_xlfn.LET(_xlpm.x,1,_xlpm.x+1)",
    "_xlfn.LET(_xlpm.x)", "_xlfn.LAMBDA()", "_xleta.SUM", "SUM(A:A)", "MMULT(A1:B2,A1:B2)",
    "_xlfn.SEQUENCE(1000000)", "_xlfn.SEQUENCE(100000,100000)", "_xlfn.RANDARRAY(1048576,16384)",
    "REPT(\"x\",32768)", "COUNTIF(A:A,\">0\")", "SUMPRODUCT(A:A,B:B)", "VLOOKUP(1,A:Z,30)",
    "10^400", "0^0", "(-8)^(1/3)", "1/0", "-\u00a0", "\u00e9t\u00e9", "\u2212", "\t", "\n",
    "\u200b", "😀", "\\", "`", "!", "$", "$$A$1", "A$$1", "'", "[", "]", "{", "}", "?", "~",
]


def _random_formula(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.2:
        return rng.choice(["A1", "B5", "1", "2.5", "TRUE", "\"x\"", "#N/A", "C3:D9", "learning_rate"])
    name = rng.choice(FUNCTIONS)
    args = ",".join(_random_formula(rng, depth - 1) for _ in range(rng.randint(0, 3)))
    return f"{name}({args})"


def long_formula(rng: random.Random) -> str:
    how = rng.randrange(4)
    if how == 0:  # Excel's limits: 8,192 characters, 64 levels of nesting
        depth = rng.choice([64, 65, 200, 1000])
        return "SUM(" * depth + "1" + ")" * depth
    if how == 1:
        return "+".join(["A1"] * rng.choice([2000, 4096, 20000]))
    if how == 2:
        depth = rng.choice([64, 500])
        return "(" * depth + "1" + ")" * depth
    return _random_formula(rng, rng.choice([3, 8, 20]))


def mangle_formula(text: str, rng: random.Random) -> str:
    """Formula text with tokens inserted, swapped or appended (or replaced outright)."""
    how = rng.randrange(10)
    if how == 0:
        return long_formula(rng)
    if how == 1:
        return _random_formula(rng, rng.randint(1, 6))
    out = text
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        token = rng.choice(TOKENS)
        i = rng.randrange(len(out) + 1)
        if how == 2 and out:
            j = min(len(out), i + rng.randint(1, 5))
            out = out[:i] + token + out[j:]
        elif how == 3:
            out = out + rng.choice(["+", "*", "&", ",", ""]) + token
        else:
            out = out[:i] + token + out[i:]
    return out


_FORMULA_RE = re.compile(r"(<(?:\w+:)?f\b[^>]*>)([^<]*)(</(?:\w+:)?f>)")


def damage_formula(data: bytes, rng: random.Random) -> bytes:
    """Mangle one to three formulas of one sheet (or a defined name in workbook.xml)."""
    parts = members(data)
    sheets = _sheet_members(parts)
    names_part = next((i for i, (info, _) in enumerate(parts) if info.filename == "xl/workbook.xml"), None)
    if names_part is not None and (not sheets or rng.random() < 0.1):
        info, content = parts[names_part]
        xml = content.decode("utf-8", "replace")
        found = list(re.finditer(r"(<definedName\b[^>]*>)([^<]*)(</definedName>)", xml))
        if found:
            m = rng.choice(found)
            new = html.escape(mangle_formula(html.unescape(m.group(2)), rng), quote=False)
            xml = xml[:m.start(2)] + new + xml[m.end(2):]
            parts[names_part] = (info, xml.encode("utf-8"))
            return rezip(parts)
    if not sheets:
        return damage_member(data, rng)
    with_formulas = [i for i in sheets if _FORMULA_RE.search(parts[i][1].decode("utf-8", "replace"))]
    if not with_formulas:
        return damage_tag(data, rng)
    i = rng.choice(with_formulas)
    info, content = parts[i]
    xml = content.decode("utf-8", "replace")
    found = [m for m in _FORMULA_RE.finditer(xml) if m.group(2)]
    for m in sorted(rng.sample(found, min(len(found), rng.choice([1, 1, 2, 3]))), key=lambda m: -m.start()):
        new = html.escape(mangle_formula(html.unescape(m.group(2)), rng), quote=False)
        xml = xml[:m.start(2)] + new + xml[m.end(2):]
    parts[i] = (info, xml.encode("utf-8"))
    return rezip(parts)


DAMAGE = {"zip": damage_zip, "member": damage_member, "tag": damage_tag, "formula": damage_formula}


def damage(data: bytes, kind: str, rng: random.Random) -> bytes:
    return DAMAGE[kind](data, rng)
