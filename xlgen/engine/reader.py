"""Read an .xlsx (or .xlsm) file into a Book, streaming and defensively.

Formula text comes straight from the sheet XML (expat, fed in chunks), never from
openpyxl's full load: that is several times faster and keeps memory flat. Every way a
file can be hostile (not a zip, truncated, zip bomb, DTD/entities, encrypted) ends in a
one-line BadWorkbook.
"""

from __future__ import annotations

import codecs
import gc
import io
import marshal
import os
import posixpath
import re
import select
import zipfile
import zlib
from xml.parsers import expat

from ..errors import BadWorkbook
from .book import Book, ExcelError, Sheet, Table, range_bounds
from .children import end_child
from .refs import MAX_COL, MAX_ROW, Template, col_letters, col_number, shift_formula

MAX_TOTAL_UNCOMPRESSED = 1 << 30  # 1 GiB over all members we inflate
MAX_RATIO = 200  # per member, once it inflates past RATIO_FLOOR
RATIO_FLOOR = 1 << 20
CHUNK = 1 << 20

OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
REL_OFFICE_DOCUMENT = "/officeDocument"
REL_WORKSHEET = "/worksheet"
REL_SHARED_STRINGS = "/sharedStrings"
REL_TABLE = "/table"
REL_SHEET_METADATA = "/sheetMetadata"
MAX_ARRAY_CELLS = 1 << 22  # cells one array formula may fill (Excel's own limit is the sheet)

_ERRORS = {code: ExcelError(code) for code in (
    "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
    "#GETTING_DATA", "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#UNKNOWN!",
    "#CONNECT!", "#BUSY!", "#EXTERNAL!", "#PYTHON!",
)}


def excel_error(code: str) -> ExcelError:
    return _ERRORS.get(code) or ExcelError(code)


class _Refused(Exception):
    """Raised inside expat callbacks; turned into BadWorkbook by the caller."""


class _Package:
    """The zip container, with size accounting against zip bombs."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path)
        if not os.path.exists(path):
            raise BadWorkbook(f"{path}: no such file")
        if os.path.isdir(path):
            raise BadWorkbook(f"{path}: is a directory, not a workbook")
        try:
            with open(path, "rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise BadWorkbook(f"{path}: cannot be read ({exc.strerror})") from None
        if not head:
            raise BadWorkbook(f"{path}: is empty (0 bytes)")
        if head == OLE_MAGIC:
            raise BadWorkbook(
                f"{path}: is encrypted or password-protected (or a legacy .xls): "
                "save it as an unprotected .xlsx")
        try:
            self.zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            if head[:2] == b"PK":
                raise BadWorkbook(f"{path}: is a truncated or corrupt zip archive") from None
            raise BadWorkbook(f"{path}: is not an .xlsx workbook (not a zip archive)") from None
        except (OSError, ValueError, EOFError) as exc:
            raise BadWorkbook(f"{path}: cannot be opened as a zip archive ({exc})") from None
        self.members = {}
        declared = 0
        for info in self.zip.infolist():
            self.members[info.filename.lstrip("/")] = info
            declared += info.file_size
        if declared > MAX_TOTAL_UNCOMPRESSED:
            raise BadWorkbook(
                f"{path}: would inflate to {declared >> 20} MiB (limit "
                f"{MAX_TOTAL_UNCOMPRESSED >> 20} MiB): refusing a possible zip bomb")
        for info in self.zip.infolist():
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise BadWorkbook(
                    f"{path}: member {info.filename} compresses {info.file_size // max(info.compress_size, 1)}:1 "
                    "(a possible zip bomb)")
        self.inflated = 0

    def has(self, member: str) -> bool:
        return member in self.members

    def chunks(self, member: str):
        """Yield the member's bytes in chunks, counting them as they inflate (headers can lie)."""
        info = self.members.get(member)
        if info is None:
            raise BadWorkbook(f"{self.path}: missing part {member}")
        limit = max(info.file_size, 1)
        seen = 0
        try:
            with self.zip.open(info) as stream:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    seen += len(chunk)
                    self.inflated += len(chunk)
                    if seen > limit or self.inflated > MAX_TOTAL_UNCOMPRESSED:
                        raise BadWorkbook(f"{self.path}: {member} inflates past its declared size "
                                          "or the 1 GiB limit (a possible zip bomb)")
                    if seen > RATIO_FLOOR and seen > MAX_RATIO * max(info.compress_size, 1):
                        raise BadWorkbook(f"{self.path}: {member} inflates more than {MAX_RATIO}:1 "
                                          "(a possible zip bomb)")
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError) as exc:
            raise BadWorkbook(f"{self.path}: {member} is truncated or corrupt ({exc})") from None

    def parse(self, member: str, start, end=None, text=None) -> None:
        """Stream one XML member through expat with the given handlers; no DTDs, no entities."""
        parser = _refusing_parser()
        parser.buffer_text = True
        parser.buffer_size = 1 << 16
        parser.StartElementHandler = start
        if end is not None:
            parser.EndElementHandler = end
        if text is not None:
            parser.CharacterDataHandler = text
        try:
            for chunk in self.chunks(member):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _Refused as exc:
            raise BadWorkbook(f"{self.path}: {member} contains {exc}; refusing it") from None
        except expat.ExpatError as exc:
            raise BadWorkbook(f"{self.path}: {member} is not well-formed XML ({exc})") from None
        except (LookupError, ValueError) as exc:  # encoding="Uyes", "gbk": expat's codec look-up
            raise BadWorkbook(f"{self.path}: {member} cannot be read as XML ({exc})") from None


def _local(name: str) -> str:
    """Element name without namespace prefix ('x:c' -> 'c')."""
    return name.rpartition(":")[2]


def _attr(attrs: dict, local: str):
    """Attribute by local name, whatever its prefix."""
    value = attrs.get(local)
    if value is None:
        for key, val in attrs.items():
            if key.rpartition(":")[2] == local:
                return val
    return value


def _rel_attr(attrs: dict, local: str):
    """A prefixed relationship attribute (r:id) by local name; unprefixed ones do not count."""
    for key, val in attrs.items():
        if ":" in key and key.rpartition(":")[2] == local:
            return val
    return None


def _read_rels(pkg: _Package, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, target part path) for a part's .rels file."""
    folder, base = posixpath.split(part)
    rels_part = posixpath.join(folder, "_rels", base + ".rels")
    out: dict[str, tuple[str, str]] = {}
    if not pkg.has(rels_part):
        return out

    def start(name, attrs):
        if _local(name) == "Relationship":
            target = _attr(attrs, "Target") or ""
            if _attr(attrs, "TargetMode") == "External":
                return
            if target.startswith("/"):
                path = target.lstrip("/")
            else:
                path = posixpath.normpath(posixpath.join(folder, target))
            out[_attr(attrs, "Id") or ""] = (_attr(attrs, "Type") or "", path)

    pkg.parse(rels_part, start)
    return out


def _read_workbook(pkg: _Package, part: str):
    """Sheet list (name, rel id, state) and defined names from workbook.xml."""
    sheets: list[tuple[str, str]] = []
    names: list[tuple[str, str | None, str | None, list[str]]] = []
    current: list | None = None

    def start(name, attrs):
        nonlocal current
        local = _local(name)
        if local == "sheet":
            sheets.append((_attr(attrs, "name") or "", _rel_attr(attrs, "id") or ""))
        elif local == "definedName":
            current = [_attr(attrs, "name") or "", _attr(attrs, "localSheetId"),
                       _attr(attrs, "comment"), []]
            names.append(current)

    def end(name):
        nonlocal current
        if _local(name) == "definedName":
            current = None

    def text(data):
        if current is not None:
            current[3].append(data)

    pkg.parse(part, start, end, text)
    return sheets, names


def _read_shared_strings(pkg: _Package, part: str) -> list[str]:
    """Shared strings; rich-text runs are joined, phonetic runs (rPh) are skipped."""
    strings: list[str] = []
    parts: list[str] = []
    state = {"in_t": False, "in_rph": 0}

    def start(name, attrs):
        local = _local(name)
        if local == "t":
            state["in_t"] = True
        elif local == "rPh":
            state["in_rph"] += 1
        elif local == "si":
            parts.clear()

    def end(name):
        local = _local(name)
        if local == "t":
            state["in_t"] = False
        elif local == "rPh":
            state["in_rph"] -= 1
        elif local == "si":
            strings.append("".join(parts))

    def text(data):
        if state["in_t"] and not state["in_rph"]:
            parts.append(data)

    pkg.parse(part, start, end, text)
    return strings


class _SheetReader:
    """expat callbacks for one worksheet: fills a Sheet's constants, formulas and cached values.

    Used for whole sheets in unusual encodings, and for single cells the fast scanner
    (_scan_sheet) does not recognise; `store` is shared by both.
    """

    def __init__(self, sheet: Sheet, shared_strings: list[str], path: str,
                 dynamic_meta: frozenset = frozenset()):
        self.sheet = sheet
        self.dynamic_meta = dynamic_meta  # cell-metadata indices (cm=) that mark a dynamic array
        self.cell_meta = None
        self.sst = shared_strings
        self.path = path
        self.row = 0
        self.col = 0
        self.cell_type = "n"
        self.text: list[str] = []
        self.collect = False
        self.value = None  # text of <v>
        self.inline: list[str] | None = None
        self.in_is = False
        self.in_rph = 0
        self.formula = None  # attrs, then (attrs, text) once </f> is seen
        self.shared: dict[str, tuple] = {}
        self.notes: set[str] = set()
        self.handlers_start = {"row": self.start_row, "c": self.start_c, "v": self.start_text,
                               "f": self.start_f, "is": self.start_is, "t": self.start_t,
                               "rPh": self.start_rph}
        self.handlers_end = {"c": self.end_c, "v": self.end_v, "f": self.end_f,
                             "is": self.end_is, "t": self.end_t, "rPh": self.end_rph}

    # dispatch, with prefixed names mapped once to their local name
    def start(self, name, attrs):
        handler = self.handlers_start.get(name)
        if handler is None:
            local = _local(name)
            if local == name or local not in self.handlers_start:
                return
            handler = self.handlers_start[name] = self.handlers_start[local]
            self.handlers_end[name] = self.handlers_end.get(local)
        handler(attrs)

    def end(self, name):
        handler = self.handlers_end.get(name)
        if handler is not None:
            handler()

    def chars(self, data):
        if self.collect:
            self.text.append(data)

    def fragment(self, xml: str) -> None:
        """Parse one <c> element's text (the fast scanner's fallback)."""
        parser = expat.ParserCreate()
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.chars
        try:
            parser.Parse(xml.encode("utf-8"), True)
        except expat.ExpatError as exc:
            raise _Refused(f"a cell that is not well-formed XML ({exc})") from None

    def start_row(self, attrs):
        r = attrs.get("r")
        self.row = int(r) if r else self.row + 1
        self.col = 0

    def start_c(self, attrs):
        ref = attrs.get("r")
        if ref:
            self.row, self.col = _cell_position(ref)
        else:
            self.col += 1
            if self.row == 0:
                self.row = 1
        self.cell_type = attrs.get("t", "n")
        self.cell_meta = attrs.get("cm")
        self.value = None
        self.inline = None
        self.formula = None

    def start_text(self, attrs):
        self.text = []
        self.collect = True

    def end_v(self):
        self.value = "".join(self.text)
        self.collect = False

    def start_f(self, attrs):
        self.text = []
        self.collect = True
        self.formula = attrs

    def end_f(self):
        self.collect = False
        self.formula = (self.formula, "".join(self.text))

    def start_is(self, attrs):
        self.in_is = True
        self.inline = []

    def end_is(self):
        self.in_is = False

    def start_rph(self, attrs):
        self.in_rph += 1

    def end_rph(self):
        self.in_rph -= 1

    def start_t(self, attrs):
        if self.in_is and not self.in_rph:
            self.text = []
            self.collect = True

    def end_t(self):
        if self.in_is and self.collect:
            self.inline.append("".join(self.text))
            self.collect = False

    def end_c(self):
        formula = self.formula
        if formula is not None and not isinstance(formula, tuple):
            formula = (formula, "")  # <f .../> with no text
        inline = "".join(self.inline) if self.inline is not None else None
        self.store(self.row, self.col, self.cell_type, self.value, formula, inline, self.cell_meta)

    def store(self, row, col, cell_type, value_text, formula, inline=None, meta=None):
        """Record one cell. formula is None or (attrs dict, text); meta is its cm= attribute."""
        value = self.typed_value(cell_type, value_text, inline, row)
        key = (row, col)
        sheet = self.sheet
        if formula is not None:
            attrs, text = formula
            kind = attrs.get("t", "normal")
            if kind == "shared":
                si = attrs.get("si")
                if text:
                    self.shared[si] = (text, row, col, Template(text, row, col))
                elif si in self.shared:
                    base, brow, bcol, template = self.shared[si]
                    # the template renders the shifted text fast; shift_formula also
                    # knows how to write references pushed off the sheet as #REF!
                    text = template.render(row, col) or shift_formula(base, row - brow, col - bcol)
                else:
                    raise _Refused(f"a shared formula (si={si}) used before it is defined")
            elif kind == "array":
                if text and attrs.get("ref"):
                    sheet.array_refs[key] = attrs["ref"]
                    if meta is not None and meta in self.dynamic_meta:
                        sheet.dynamic_arrays.add(key)
            elif kind == "dataTable":
                self.notes.add(f"data table formulas in sheet {sheet.name!r} read as constants")
                text = ""
            if text:
                sheet.formulas[key] = text
                if value is not None:
                    sheet.cached[key] = value
                return
        if value is not None:
            sheet.constants[key] = value

    def typed_value(self, t, v, inline, row):
        """A cell's <v> (or inline string) as float | str | bool | ExcelError | None."""
        if t == "inlineStr":
            return inline if inline is not None else v
        if v is None:
            return None
        if t == "str":
            return v
        if not v.strip():
            return None  # <v/>: openpyxl writes this for formulas it has no value for
        if t == "n":
            try:
                number = float(v)
                if number - number:  # inf or nan: no Excel number (Python reads 'inf', '1e309')
                    raise ValueError
            except ValueError:
                raise _number_refused(v, row) from None
            return number
        if t == "s":
            try:
                return self.sst[int(v)]
            except (ValueError, IndexError):
                raise _Refused(f"a shared-string index {v!r} that does not exist") from None
        if t == "b":
            return v.strip() in ("1", "true")
        if t == "e":
            return excel_error(v.strip())
        return v  # "str" and ISO dates ("d") stay text


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$"


def _cell_position(ref: str) -> tuple[int, int]:
    digits = ref.lstrip(_LETTERS)
    letters = ref[:len(ref) - len(digits)].replace("$", "")
    try:
        row, col = int(digits), col_number(letters)
    except ValueError:
        raise _Refused(f"a cell with a bad reference r={ref!r}") from None
    if not (1 <= row <= MAX_ROW and 1 <= col <= MAX_COL and letters):
        raise _Refused(f"a cell outside the sheet (r={ref!r})")
    return row, col


# The fast scanner: one regular expression over the decoded sheet XML. Its first
# alternative is the cell most of a big sheet is made of (a number, or a formula with a
# number saved, no entities, as XlsxWriter and Excel write them), read with the fewest
# steps; each thing it or the plain row tag matches, the general alternatives after it
# would match with the same extent. Those read the plain cell Excel, LibreOffice and
# XlsxWriter write (r= first, optional s= and t=, an optional <f> (its aca= ignored, as
# the reader ignores it anywhere) and <v>) without any further matching; anything else
# (inline strings, prefixes, odd attribute order...) is matched as a whole element and
# handed to expat. Well-formedness and the DTD ban are checked by expat on the same
# bytes, with no Python callbacks, at C speed.
_GENERAL_ITEM = (
    r'<c r="([A-Z]{1,3})([0-9]{1,7})"(?: s="[0-9]+")?(?: t="([a-zA-Z]+)")?(?: s="[0-9]+")?>'
    r'(?:<f(?: aca="(?:false|true|0|1)")?((?: [^>/]*)?)(?:/>|>([^<]*)</f>))?(?:<v>([^<]*)</v>)?</c>'  # 1-6 plain cell
    r'|<c r="([A-Z]{1,3})([0-9]{1,7})"[^>/]*/>'  # 7-8 styled empty cell
    r"|(<(?:[\w.\-]+:)?c\b[^>]*?(?:/>|>[^<]*(?:<(?!/(?:[\w.\-]+:)?c\s*>)[^<]*)*"
    r"</(?:[\w.\-]+:)?c\s*>))"  # 9 any other cell element
    r"|<(?:[\w.\-]+:)?row\b([^>]*)>")  # 10 row start tag
_GENERAL_ITEM_RE = re.compile(_GENERAL_ITEM, re.S)
_ITEM_RE = re.compile(
    r'<c r="([A-Z]{1,3})([0-9]{1,7})"(?: s="[0-9]+")?>(?:<f>([^<]+)</f>)?<v>([^<]+)</v></c>'  # 1-4 number
    r'|<row r="([0-9]+)"[^>]*>'  # 5 plain row start tag
    r"|(" + re.sub(r"(?<!\\)\((?!\?)", "(?:", _GENERAL_ITEM) + ")",  # 6 anything else, read again
    re.S)
assert _ITEM_RE.groups == 6 and _GENERAL_ITEM_RE.groups == 10
_SHARED_FOLLOWER_RE = re.compile(r' t="shared"(?: ca="[01]")? si="([0-9]+)"$')
_CELL_ATTRS_RE = re.compile(r"<(?:[\w.\-]+:)?c\b([^>]*?)/?>", re.S)
_ROW_R_RE = re.compile(r"""\sr\s*=\s*["'](\d+)["']""")
_CELL_R_RE = re.compile(r"""\sr\s*=\s*["']([^"']*)["']""")
_ATTR_RE = re.compile(r"""([\w.\-:]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_SHEET_DATA_RE = re.compile(r"<(?:[\w.\-]+:)?sheetData\b")
_SHEET_DATA_END_RE = re.compile(r"</(?:[\w.\-]+:)?sheetData\s*>|<(?:[\w.\-]+:)?sheetData\b[^>]*/>")
_ROW_END_RE = re.compile(r"</(?:[\w.\-]+:)?row\s*>")
_ENCODING_RE = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([\w.\-]+)["']""")


def unescape(text: str) -> str:
    """html.unescape(text), by str.replace where every & begins one of XML's five
    entities (a formula's &lt;, the common case: a third of html.unescape's time);
    anything else (&#60;, &lt without its ;, a stray &) goes to html.unescape whole."""
    if "&" not in text:
        return text
    plain = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
    # each replacement puts one of <>"' where an entity was, so no & left now is new, and
    # an &amp; now was one before; & is replaced last, so nothing it makes is read again
    if "&" not in plain:
        return plain
    if plain.count("&") == plain.count("&amp;"):
        return plain.replace("&amp;", "&")
    import html   # (only here: its entity table is 2,000 names)
    return html.unescape(text)


def _attrs(text: str) -> dict:
    """Attributes of a start tag's text, entities decoded."""
    out = {}
    for m in _ATTR_RE.finditer(text):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        out[m.group(1)] = unescape(value)
    return out


def _scan(reader: _SheetReader, text: str) -> None:
    """Read every row and cell in this stretch of sheet XML."""
    store = reader.store
    shared = reader.shared
    formulas = reader.sheet.formulas
    cached = reader.sheet.cached
    constants = reader.sheet.constants
    columns: dict = {}
    row, col = reader.row, reader.col
    row_digits = None  # the row number's text of the last plain cell: a row's cells share one int
    entities = "&" in text  # asked once here, not twice a cell
    for n_letters, n_digits, n_formula, n_value, row_number, general in _ITEM_RE.findall(text):
        if n_letters:  # a number, or a formula with a number saved: most cells
            if n_digits != row_digits:
                row = int(n_digits)
                if row > MAX_ROW or row < 1:
                    raise _Refused(f"a cell outside the sheet (r={n_letters}{n_digits})")
                row_digits = n_digits
            try:
                col = columns[n_letters]
            except KeyError:
                col = columns[n_letters] = col_number(n_letters)
                if col > MAX_COL:
                    raise _Refused(f"a cell outside the sheet (r={n_letters}{n_digits})")
            if entities and "&" in n_value:  # read as the general plain cell
                letters, digits, ctype, f_attrs, f_text, v_text = n_letters, n_digits, "", "", n_formula, n_value
                e_letters = other = ""
            elif n_formula:  # (with its entities decoded, as the general plain cell would)
                cell = (row, col)
                formulas[cell] = unescape(n_formula) if entities and "&" in n_formula else n_formula
                try:
                    number = cached[cell] = float(n_value)
                    if number - number:  # inf or nan, as in typed_value: a volatile cell would keep it
                        raise ValueError
                except ValueError:
                    raise _number_refused(n_value, row) from None
                continue
            else:
                try:
                    number = constants[(row, col)] = float(n_value)
                    if number - number:  # inf or nan, as in typed_value
                        raise ValueError
                except ValueError:
                    raise _number_refused(n_value, row) from None
                continue
        elif row_number:
            row = int(row_number)
            col = 0
            row_digits = None
            continue
        else:
            letters, digits, ctype, f_attrs, f_text, v_text, e_letters, e_digits, other, row_attrs = \
                _GENERAL_ITEM_RE.match(general).groups("")
        if letters:
            if digits != row_digits:
                row = int(digits)
                if row > MAX_ROW or row < 1:
                    raise _Refused(f"a cell outside the sheet (r={letters}{digits})")
                row_digits = digits
            col = columns.get(letters)
            if col is None:
                col = columns[letters] = col_number(letters)
                if col > MAX_COL:
                    raise _Refused(f"a cell outside the sheet (r={letters}{digits})")
            if "&" in f_text or "&" in v_text:
                f_text, v_text = unescape(f_text), unescape(v_text)
            if ctype == "n" and v_text.strip():  # LibreOffice's t="n": a number, as if no t=
                ctype = ""
            if f_attrs or f_text:
                if f_attrs:  # a shared formula's follower takes its master's text, shifted
                    follower = None if f_text else _SHARED_FOLLOWER_RE.match(f_attrs)
                    master = follower and shared.get(follower.group(1))
                    text = master and master[3].render(row, col)
                else:
                    text = f_text
                if text and not ctype and v_text:  # the usual case: a formula with a number saved
                    cell = (row, col)
                    formulas[cell] = text
                    try:
                        number = cached[cell] = float(v_text)
                        if number - number:  # inf or nan, as in typed_value
                            raise ValueError
                    except ValueError:
                        raise _number_refused(v_text, row) from None
                else:
                    store(row, col, ctype or "n", v_text if v_text or ctype == "str" else None,
                          (_attrs(f_attrs) if f_attrs else {}, f_text))
            elif v_text:
                if not ctype:
                    try:
                        number = constants[(row, col)] = float(v_text)
                        if number - number:  # inf or nan, as in typed_value
                            raise ValueError
                    except ValueError:
                        raise _number_refused(v_text, row) from None
                else:
                    store(row, col, ctype, v_text, None)
            elif ctype == "str" or ctype == "inlineStr":
                store(row, col, ctype, "", None)
        elif e_letters:
            row, col = int(e_digits), col_number(e_letters)
            row_digits = None
        elif other:
            rm = _CELL_R_RE.search(_CELL_ATTRS_RE.match(other).group(1))
            if rm:
                row, col = _cell_position(rm.group(1))
            else:
                col += 1
                row = row or 1
                other = _with_ref(other, row, col)
            reader.row, reader.col = row, col
            reader.fragment(other)
            row_digits = None
        else:
            rm = _ROW_R_RE.search(row_attrs)
            row = int(rm.group(1)) if rm else row + 1
            col = 0
            row_digits = None
    reader.row, reader.col = row, col


def _number_refused(text: str, row: int) -> _Refused:
    """Why a number cell's text was refused: it reads as no float, or as inf or nan
    (Python reads 'inf' and '1e309'), which no Excel number is."""
    try:
        float(text)
    except ValueError:
        return _Refused(f"a non-numeric number {text!r} in row {row}")
    return _Refused(f"a number Excel cannot hold ({text.strip()!r}) in row {row}")


def _with_ref(xml: str, row: int, col: int) -> str:
    """Give a cell element without r= its position, so the fragment parser keeps it."""
    return re.sub(r"^(<(?:[\w.\-]+:)?c)\b", lambda m: f'{m.group(1)} r="{col_letters(col)}{row}"',
                  xml, count=1)


def _refusing_parser():
    """An expat parser that refuses any DTD or entity declaration, as defusedxml does:
    no entity expansion bombs, no external entities."""
    parser = expat.ParserCreate()

    def refuse(*_args):
        raise _Refused("a DTD or entity declaration")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    return parser


class _SheetText:
    """A sheet part's text, fed chunk by chunk: what lies inside <sheetData> is scanned up
    to the last complete row of what came so far. With scan=False a chunk only moves the
    state on (the forked child's way to reach the chunks it scans, as this process would)."""

    def __init__(self, reader: _SheetReader):
        self.reader = reader
        self.decoder = None
        self.buffer = ""
        self.started = False
        self.done = False

    def feed(self, chunk: bytes, scan: bool = True) -> bool:
        """False, with nothing read, when the part is not UTF-8 (expat reads it whole)."""
        if self.decoder is None:
            self.decoder = _decoder_for(chunk)
            if self.decoder is None:
                return False
        self.buffer = self._consume(self.buffer + self.decoder.decode(chunk), False, scan)
        return True

    def finish(self, scan: bool = True) -> None:
        if self.decoder is not None:
            self._consume(self.buffer + self.decoder.decode(b"", True), True, scan)

    def _consume(self, text: str, final: bool, scan: bool) -> str:
        """Scan up to the last complete row; return the rest."""
        if self.done:
            return ""
        if not self.started:
            m = _SHEET_DATA_RE.search(text) if "sheetData" in text else None
            if not m:
                return "" if final else text[-64:]
            self.started = True
            text = text[m.start():]
        end = _sheet_data_end(text)
        if end:
            if scan:
                _scan(self.reader, text[:end.end()])
            self.done = True
            return ""
        cut = len(text) if final else _last_row_end(text)
        if cut and scan:
            _scan(self.reader, text[:cut])
        return text[cut:]


def _read_sheet(pkg: _Package, member: str, reader: _SheetReader) -> None:
    """Stream a worksheet: expat checks the bytes, the regex scanner reads the cells.

    A large sheet's bytes are checked by expat in a forked child on the machine's other
    core (_ValidatorBeside) while this process scans them; its verdict is the same as
    checking each chunk here just before it is scanned, first error first. A very large
    sheet's last chunks are scanned by that child too (_ValidatorBeside.tail_from): from
    there on this process takes the child's cells as soon as they have come, scanning on
    until then, or to the end where the child has none to give.
    """
    beside = _ValidatorBeside.start(pkg, member, reader)
    validator = None if beside else _refusing_parser()
    text = _SheetText(reader)
    checked = 0  # chunks expat has checked (here), or would have (beside) before this point

    try:
        try:
            for chunk in pkg.chunks(member):
                checked += 1
                if validator is not None:
                    validator.Parse(chunk, False)
                if not text.feed(chunk):
                    break  # not UTF-8: let expat read the whole part instead
                if beside is not None and 0 < beside.tail_from <= checked + 1 and beside.take_tail(reader):
                    beside.raise_error()
                    return
            else:
                checked += 1
                if validator is not None:
                    validator.Parse(b"", True)
                text.finish()
                if beside is not None:
                    beside.raise_error()
                return
        except _Refused as exc:
            raise BadWorkbook(f"{pkg.path}: {member} contains {exc}; refusing it") from None
        except expat.ExpatError as exc:
            raise BadWorkbook(f"{pkg.path}: {member} is not well-formed XML ({exc})") from None
        except UnicodeDecodeError as exc:
            raise BadWorkbook(f"{pkg.path}: {member} is not valid UTF-8 ({exc.reason})") from None
        except (LookupError, ValueError) as exc:  # as in _Package.parse
            raise BadWorkbook(f"{pkg.path}: {member} cannot be read as XML ({exc})") from None
    except BadWorkbook:
        if beside is not None:  # an XML error expat met first is the one to report
            beside.raise_error(up_to=checked)
        raise
    finally:
        if beside is not None:
            beside.close()
    pkg.parse(member, reader.start, reader.end, reader.chars)


def _check_xml(pkg: _Package, member: str, each=None):
    """Inflate a part and run it through expat: None, or (the number of the chunk that
    failed, counting the final flush as one more, the one-line error). each(index, chunk),
    if given, sees every chunk expat accepted, then (index, None) after the final flush."""
    validator = _refusing_parser()
    index = 1
    try:
        for chunk in pkg.chunks(member):
            validator.Parse(chunk, False)
            if each is not None:
                each(index, chunk)
            index += 1
        validator.Parse(b"", True)
        if each is not None:
            each(index, None)
    except BadWorkbook as exc:
        return index, str(exc)
    except _Refused as exc:
        return index, f"{pkg.path}: {member} contains {exc}; refusing it"
    except expat.ExpatError as exc:
        return index, f"{pkg.path}: {member} is not well-formed XML ({exc})"
    except (LookupError, ValueError) as exc:  # as in _Package.parse
        return index, f"{pkg.path}: {member} cannot be read as XML ({exc})"
    return None


class _OwnOffset(io.RawIOBase):
    """An open file read with pread: a forked child reads it without moving the offset
    it shares with its parent."""

    def __init__(self, fd: int):
        self.fd = fd
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self.position
        elif whence == 2:
            offset += os.fstat(self.fd).st_size
        self.position = max(offset, 0)
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        data = os.pread(self.fd, len(buffer), self.position)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


VALIDATE_BESIDE_FROM = 1 << 20  # parts this large (inflated) are checked in a forked child
# (expat takes about 15 ms per MiB here, the fork about 2 ms in the parent)
SCAN_BESIDE_FROM = 8 << 20  # parts this large have their last chunks scanned by that child
SCAN_BESIDE_SHARE = 0.3  # the share of the chunks it scans: it also inflates and checks all of
# them, and this process takes its cells (marshal) at about a quarter of the cost of scanning


class _MasterLookups(dict):
    """The child's shared-formula masters: notes whether a follower looked for a master
    it had not seen (one in the chunks this process scans), when the child's cells are
    not what this process would read."""

    missed = False

    def get(self, key, default=None):
        if key not in self:
            self.missed = True
        return dict.get(self, key, default)

    def __contains__(self, key) -> bool:
        found = dict.__contains__(self, key)
        if not found:
            self.missed = True
        return found


def _tail_cells(pkg: _Package, member: str, reader: _SheetReader, tail_from: int, send) -> None:
    """The child's work: check every chunk (as _check_xml) and send the verdict with the
    bytes inflated so far; then scan the chunks from tail_from on (kept as they came) and
    send their cells, or None where the scan met an error or needed something from the
    chunks before (the row and column it starts from, a shared formula's master, a
    dynamic-array anchor's set order)."""
    text = _SheetText(reader)
    kept: list = []  # the chunks to scan, once the verdict is out
    skipping = [True]  # False once the text before tail_from cannot be followed (not UTF-8)

    def each(index, chunk):
        if index >= tail_from:
            kept.append(chunk)
        elif skipping[0]:
            try:  # the state this process leaves its last chunk in
                skipping[0] = text.feed(chunk, scan=False)
            except Exception:  # noqa: BLE001 (this process meets it, and says why)
                skipping[0] = False

    outcome = _check_xml(pkg, member, each)
    send((outcome, pkg.inflated))
    if outcome is not None or not kept or not skipping[0] or text.decoder is None:
        send(None)
        return
    reader.row = reader.col = None  # unknown here: a cell without r= fails the scan
    reader.shared = _MasterLookups()
    kept.reverse()
    try:
        while kept:
            chunk = kept.pop()  # each chunk's bytes freed once scanned
            if chunk is None:
                text.finish()
            elif not text.feed(chunk):
                raise ValueError("not UTF-8")
    except Exception:  # noqa: BLE001 (this process scans the chunks itself, and says why)
        send(None)
        return
    sheet = reader.sheet
    if reader.shared.missed or sheet.dynamic_arrays:
        send(None)
        return
    send((sheet.constants, sheet.formulas, sheet.cached, sheet.array_refs,
          sorted(reader.notes), reader.row, reader.col))


def _send_frame(fd: int, value) -> None:
    """One marshalled value, its length first (None where marshal knows a value not:
    an Excel error)."""
    try:
        data = marshal.dumps(value)
    except ValueError:
        data = marshal.dumps(None)
    data = len(data).to_bytes(8, "little") + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _readable(fd: int) -> bool:
    """Whether a read of the pipe would not block (data, or the child gone)."""
    if hasattr(select, "poll"):  # select.select refuses descriptors past 1023
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def _read_exactly(fd: int, size: int) -> bytes | None:
    parts = []
    while size:
        part = os.read(fd, min(size, 1 << 24))
        if not part:
            return None
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


class _ValidatorBeside:
    """expat's check of one large part, in a forked child with its own handle on the zip;
    for a very large part, the scan of its last chunks too (from tail_from on).

    Checking is about a fifth of reading a big sheet; beside the scan it costs no time
    on a machine with a free core. Where fork is missing or the child fails, the part is
    checked here instead, so the verdict never depends on the child. The child sends its
    verdict as soon as it has checked the last chunk, and then the cells it scanned; this
    process, once at tail_from, takes them when they are there and scans on meanwhile (a
    busy machine leaves the child behind), or to the end where the child has none.
    """

    def __init__(self, pkg: _Package, member: str, pid: int, read_end: int, tail_from: int):
        self.pkg, self.member, self.pid, self.read_end = pkg, member, pid, read_end
        self.tail_from = tail_from  # the first chunk the child scans (0: none)
        self.frames: list = []  # what the child sent: (verdict, bytes inflated), then cells or None
        self.outcome = None
        self.done = False

    @classmethod
    def start(cls, pkg: _Package, member: str, reader: _SheetReader | None = None):
        info = pkg.members.get(member)
        if info is None or info.file_size < VALIDATE_BESIDE_FROM or not hasattr(os, "fork"):
            return None
        tail_from = 0
        if reader is not None and info.file_size >= SCAN_BESIDE_FROM:
            chunks = -(-info.file_size // CHUNK)
            tail_from = max(2, chunks - int(chunks * SCAN_BESIDE_SHARE) + 1)
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # the child: check, send, and leave without running the parent's exit code
            status = 1
            try:
                os.close(read_end)
                # the file the parent opened (it may have been replaced since), at its own
                # offset; the parent's ZipFile stays referenced, or dropping it closes the file
                parents_zip = pkg.zip
                pkg.zip = zipfile.ZipFile(io.BufferedReader(_OwnOffset(parents_zip.fp.fileno()), CHUNK))
                if tail_from:
                    _tail_cells(pkg, member, reader, tail_from, lambda value: _send_frame(write_end, value))
                else:
                    _send_frame(write_end, (_check_xml(pkg, member), pkg.inflated))
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        return cls(pkg, member, pid, read_end, tail_from)

    def _next_frame(self, block: bool) -> bool:
        """Read the child's next value into frames; False if none is there yet (block=False)
        or ever will be (the child has sent all or died: a None frame stands in for it)."""
        if self.read_end is None:
            return False
        if not block and not _readable(self.read_end):
            return False
        head = _read_exactly(self.read_end, 8)
        data = head and _read_exactly(self.read_end, int.from_bytes(head, "little"))
        value = None
        if data is not None:
            try:
                value = marshal.loads(data)
            except (EOFError, ValueError, TypeError):
                data = None
        if data is None:  # the child died (or sent garbage): nothing more from it
            os.close(self.read_end)
            self.read_end = None
            if not self.frames:
                self.frames.append(None)
            self.frames.append(None)
            return False
        self.frames.append(value)
        return True

    def _wait(self):
        """The child's outcome (None when the part is well-formed); checked here if it failed."""
        if self.done:
            return self.outcome
        if not self.frames:
            self._next_frame(block=True)
        verdict = self.frames[0]
        if verdict is None:
            self.outcome = _check_xml(self.pkg, self.member)
        else:
            self.outcome = tuple(verdict[0]) if verdict[0] is not None else None
        self.done = True
        return self.outcome

    def take_tail(self, reader: _SheetReader) -> bool:
        """If the child has sent the cells it scanned (the chunks from tail_from on), add
        them to the reader's sheet, as scanning them here would (over any of those chunks
        this process scanned meanwhile: dict.update keeps the first place and the last
        value, as one insertion per cell does). False when they are not there (yet)."""
        while len(self.frames) < 2 and self._next_frame(block=False):
            pass
        if len(self.frames) < 2 or self.frames[0] is None or self.frames[1] is None:
            return False
        constants, formulas, cached, array_refs, notes, row, col = self.frames[1]
        sheet = reader.sheet
        sheet.constants.update(constants)
        sheet.formulas.update(formulas)
        sheet.cached.update(cached)
        sheet.array_refs.update(array_refs)
        reader.notes.update(notes)
        reader.row, reader.col = row, col
        self.pkg.inflated = self.frames[0][1]  # the whole part, inflated by the child
        return True

    def raise_error(self, up_to: int | None = None) -> None:
        """Raise expat's error if it was met in the first up_to chunks (any, by default)."""
        outcome = self._wait()
        if outcome is not None and (up_to is None or outcome[0] <= up_to):
            raise BadWorkbook(outcome[1])

    def close(self) -> None:
        """Stop and reap a child whose verdict is no longer needed."""
        end_child(self.pid, self.read_end)
        self.pid = self.read_end = None


def _decoder_for(first_chunk: bytes):
    """An incremental UTF-8 decoder, or None when the part is in another encoding."""
    if first_chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    m = _ENCODING_RE.match(first_chunk.lstrip(b"\xef\xbb\xbf"))
    if m and m.group(1).decode("ascii").lower().replace("_", "-") not in ("utf-8", "utf8"):
        return None
    return codecs.getincrementaldecoder("utf-8-sig")()


def _sheet_data_end(text: str):
    """_SHEET_DATA_END_RE.search(text), found by the word's occurrences: the regex would
    try every < of a megabyte of cells (20 ms), the word is found at C speed, and a
    match's < is the last one before its word (no < can lie between)."""
    at = text.find("sheetData")
    while at >= 0:
        lt = text.rfind("<", 0, at)
        end = _SHEET_DATA_END_RE.match(text, lt) if lt >= 0 else None
        if end:
            return end
        at = text.find("sheetData", at + 9)
    return None


def _last_row_end(text: str) -> int:
    """Index just past the last </row> in text (0 if none)."""
    end = len(text)
    while True:
        i = text.rfind("row>", 0, end)
        if i < 0:
            return 0
        lt = text.rfind("<", 0, i)
        if lt >= 0 and _ROW_END_RE.fullmatch(text, lt, i + 4):
            return i + 4
        end = i


def _read_dynamic_metadata(pkg: _Package, part: str) -> frozenset:
    """The cm= values (1-based cellMetadata blocks) that mark dynamic-array formulas.

    A cell's cm points at a cellMetadata block whose <rc t= v=> names a metadata type
    (1-based) and a block of that type's future metadata (0-based); Excel's XLDAPR type
    with fDynamic="1" is a formula that spills.
    """
    types: list[str] = []
    future: dict[str, list[bool]] = {}
    cell_blocks: list[tuple[int, int] | None] = []
    where: list = []  # open elements we care about

    def start(name, attrs):
        local = _local(name)
        if local == "metadataType":
            types.append(_attr(attrs, "name") or "")
        elif local == "futureMetadata":
            where.append(("future", _attr(attrs, "name") or ""))
            future.setdefault(where[-1][1], [])
        elif local == "cellMetadata":
            where.append(("cell", None))
        elif local == "bk" and where:
            if where[-1][0] == "future":
                future[where[-1][1]].append(False)
            else:
                cell_blocks.append(None)
        elif local == "dynamicArrayProperties" and where and where[-1][0] == "future":
            future[where[-1][1]][-1] = _attr(attrs, "fDynamic") in ("1", "true")
        elif local == "rc" and where and where[-1][0] == "cell" and cell_blocks:
            try:
                cell_blocks[-1] = (int(_attr(attrs, "t") or 0), int(_attr(attrs, "v") or 0))
            except ValueError:
                pass

    def end(name):
        if _local(name) in ("futureMetadata", "cellMetadata") and where:
            where.pop()

    pkg.parse(part, start, end)
    dynamic = set()
    for index, block in enumerate(cell_blocks, 1):
        if block is None or not 1 <= block[0] <= len(types):
            continue
        kind = types[block[0] - 1]
        flags = future.get(kind, [])
        if kind == "XLDAPR" and 0 <= block[1] < len(flags) and flags[block[1]]:
            dynamic.add(str(index))
    return frozenset(dynamic)


def _read_table(pkg: _Package, part: str, sheet: str) -> Table | None:
    """One Excel Table part; None when it has no usable name or range."""
    info: dict = {}
    columns: list[str] = []

    def start(name, attrs):
        local = _local(name)
        if local == "table":
            info.update(name=_attr(attrs, "displayName") or _attr(attrs, "name"), ref=_attr(attrs, "ref"),
                        header=_attr(attrs, "headerRowCount"), totals=_attr(attrs, "totalsRowCount"))
        elif local == "tableColumn":
            columns.append(_column_name(_attr(attrs, "name") or ""))

    pkg.parse(part, start)
    if not info.get("name") or not info.get("ref"):
        return None
    try:
        r1, c1, r2, c2 = range_bounds(info["ref"])
        header = int(info["header"]) if info["header"] is not None else 1
        totals = int(info["totals"]) if info["totals"] is not None else 0
    except ValueError:
        raise BadWorkbook(f"{pkg.path}: {part} has a bad table range or row count") from None
    columns = columns[:c2 - c1 + 1] + [f"Column{i}" for i in range(len(columns) + 1, c2 - c1 + 2)]
    return Table(info["name"], sheet, r1, c1, r2, c2, tuple(columns), header, totals)


def _column_name(name: str) -> str:
    """A table column's name with OOXML's _xHHHH_ escapes (line breaks...) decoded."""
    if "_x" not in name:
        return name
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), name)


def _add_array_members(sheet: Sheet, path: str) -> None:
    """The cells an array formula fills besides its anchor are formula cells too: their
    saved values are the formula's results, not constants."""
    for (row, col), ref in sheet.array_refs.items():
        try:
            r1, c1, r2, c2 = range_bounds(ref)
        except ValueError:
            raise BadWorkbook(f"{path}: sheet {sheet.name!r}: the array formula at "
                              f"{col_letters(col)}{row} has a bad range {ref!r}") from None
        size = (r2 - r1 + 1) * (c2 - c1 + 1)
        if (r1, c1) != (row, col):
            raise BadWorkbook(f"{path}: sheet {sheet.name!r}: the array formula at {col_letters(col)}{row} "
                              f"fills {ref}, which does not start at its own cell")
        if size > MAX_ARRAY_CELLS:
            raise BadWorkbook(f"{path}: sheet {sheet.name!r}: the array formula at {col_letters(col)}{row} "
                              f"fills {size:,} cells (limit {MAX_ARRAY_CELLS:,})")
        if r2 > MAX_ROW or c2 > MAX_COL:
            raise BadWorkbook(f"{path}: sheet {sheet.name!r}: the array formula at {col_letters(col)}{row} "
                              f"fills {ref}, which runs past the sheet's last row or column")
    text_of = sheet.formulas
    for member, anchor in sheet.array_members().items():
        value = sheet.constants.pop(member, None)
        if member in text_of and member not in sheet.array_refs:
            sheet.cached.pop(member, None)  # a stray formula inside the range: the anchor's wins
        text_of[member] = text_of[anchor]
        if value is not None:
            sheet.cached[member] = value


def read_xlsx(path) -> Book:
    """Read a workbook's sheets, defined names and cached values into a Book.

    Raises BadWorkbook (one line) for anything that is not a readable, safe workbook.
    """
    path = os.fspath(path)
    pkg = _Package(path)
    # Reading makes a few hundred thousand small tuples and no reference cycles: the
    # cyclic collector would walk them hundreds of times for nothing (~8% of the read).
    # As in calculate(); verify and build pause it around both already (xlgen.gcpause).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read(pkg)
    finally:
        if collecting:
            gc.enable()
        pkg.zip.close()


def _read(pkg: _Package) -> Book:
    book = Book()
    workbook_part = None
    for rel_type, target in _read_rels(pkg, "").values():
        if rel_type.endswith(REL_OFFICE_DOCUMENT) and pkg.has(target):
            workbook_part = target
    if workbook_part is None:
        workbook_part = "xl/workbook.xml"
    if not pkg.has(workbook_part):
        raise BadWorkbook(f"{pkg.path}: has no workbook part ({workbook_part}); not an Excel workbook")
    if any(name.lower().endswith("vbaproject.bin") for name in pkg.members):
        book.notes.append("macros (vbaProject.bin) ignored")

    rels = _read_rels(pkg, workbook_part)
    sheet_list, names = _read_workbook(pkg, workbook_part)
    shared_strings: list[str] = []
    dynamic_meta = frozenset()
    for rel_type, target in rels.values():
        if rel_type.endswith(REL_SHARED_STRINGS) and pkg.has(target):
            shared_strings = _read_shared_strings(pkg, target)
        elif rel_type.endswith(REL_SHEET_METADATA) and pkg.has(target):
            dynamic_meta = _read_dynamic_metadata(pkg, target)

    all_sheet_names = [name for name, _ in sheet_list]
    for name, rid in sheet_list:
        rel_type, target = rels.get(rid, ("", ""))
        if rel_type and not rel_type.endswith(REL_WORKSHEET):
            continue  # chart sheets and dialog sheets hold no cells
        if not target or not pkg.has(target):
            raise BadWorkbook(f"{pkg.path}: sheet {name!r} has no part ({target or 'no relationship'})")
        sheet = Sheet(name)
        reader = _SheetReader(sheet, shared_strings, pkg.path, dynamic_meta)
        _read_sheet(pkg, target, reader)
        if sheet.array_refs:
            _add_array_members(sheet, pkg.path)
        book.notes.extend(sorted(reader.notes))
        book.sheets.append(sheet)
        for rel_type, table_part in _read_rels(pkg, target).values():
            if rel_type.endswith(REL_TABLE) and pkg.has(table_part):
                table = _read_table(pkg, table_part, name)
                if table is not None:
                    book.tables[table.name.upper()] = table

    for name, local_id, comment, text_parts in names:
        scope = None
        if local_id is not None:
            try:
                scope = all_sheet_names[int(local_id)]
            except (ValueError, IndexError):
                continue  # a name scoped to a sheet that does not exist
        key = (scope, name.upper())
        book.names[key] = "".join(text_parts)
        if comment:
            book.name_comments[key] = comment
    return book
