"""Formula text -> a small expression tree, using the `formulas` package's tokenizer.

`formulas.Parser` tokenizes Excel syntax and orders the tokens by precedence; we swap its
AstBuilder (which builds a `schedula` dispatcher per formula, the slow part) for one that
builds plain tuples, and its LET/LAMBDA token for one that parses the arguments into
trees. Node kinds:

    ("lit", value)                     float | str | bool | ExcelError
    ("missing",)                       an omitted argument, as in IF(A1,,1)
    ("cell", sheet, part)              part = (col_abs, col, row_abs, row)
    ("range", sheet, part1, part2)     whole columns/rows have row/col None
    ("spill", sheet, part)             A1#: the range a dynamic array anchored at A1 fills
    ("name", NAME, sheet)              defined name or LET/LAMBDA variable (prefix-free, upper)
    ("op", symbol, args)               '+', 'u-', '%', '=', ':', ...
    ("call", NAME, args)               NAME upper, without _xlfn./_xlws. prefix
    ("let", ((VAR, node), ...), body)
    ("lambda", (VAR, ...), body)
    ("unsupported", what)              parsed, but cannot be evaluated (e.g. inline LAMBDA call)
"""

from __future__ import annotations

import re

from formulas import Parser
from formulas.errors import FormulaError, TokenError
from formulas.tokens.function import Array, Function, Lambda
from formulas.tokens.operand import Empty, Error, Number, Operand, Range, String
from formulas.tokens.operator import Intersect, Operator, OperatorToken, Separator
from formulas.tokens.parenthesis import Parenthesis, _update_n_args

from .book import ExcelError
from .refs import col_number

PREFIXES = ("_XLFN._XLWS.", "_XLFN.", "_XLWS.", "_XLPM.")


class ParseError(Exception):
    """Formula text the tokenizer cannot read, or syntax we cannot represent."""


class UnsupportedSyntax(ParseError):
    """Readable syntax the engine does not evaluate (e.g. an inline LAMBDA call)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def strip_prefix(name: str) -> str:
    """'_xlfn.LET' -> 'LET', '_xlpm.x' -> 'X' (upper case)."""
    upper = name.upper()
    for prefix in PREFIXES:
        if upper.startswith(prefix):
            return upper[len(prefix):]
    return upper


_SHEET_REF = re.compile(r"^(?:('(?:[^']|'')+'|[^'!\[\]]+)!)?(.+)$", re.S)
_CELL = r"(\$?)([A-Za-z]{1,3})(\$?)([0-9]+)"
_CELL_RE = re.compile(rf"^{_CELL}$")
_RANGE_RE = re.compile(rf"^{_CELL}:{_CELL}$")
_COLS_RE = re.compile(r"^(\$?)([A-Za-z]{1,3}):(\$?)([A-Za-z]{1,3})$")
_ROWS_RE = re.compile(r"^(\$?)([0-9]+):(\$?)([0-9]+)$")
_ANCHORARRAY_RE = re.compile(r"^(?:_xlfn\.)?ANCHORARRAY\(\s*(.*?)\s*\)$", re.I | re.S)
_INDIRECT_RE = re.compile(r'^INDIRECT\(\s*"(.*)"\s*\)$', re.I | re.S)


def _unquote_sheet(sheet: str | None) -> str | None:
    if sheet and sheet.startswith("'"):
        return sheet[1:-1].replace("''", "'")
    return sheet


def reference_node(src: str):
    """A reference's source text ('my s'!$A$1:B2, A:A, 3:4) -> a cell or range node."""
    src = src.strip()
    volatile = False
    m = _ANCHORARRAY_RE.match(src)
    if m:  # how files store A1#: formulas reads it as a reference token
        src = m.group(1) + "#"
    m = _INDIRECT_RE.match(src)
    if m:  # formulas reads INDIRECT("A1") as the reference itself; it stays volatile
        src, volatile = m.group(1).replace('""', '"'), True
    if src.startswith("[") or "]" in src.split("!")[0]:
        return ("unsupported", "external workbook reference")
    m = _SHEET_REF.match(src)
    if not m:
        raise ParseError(src)
    sheet, ref = _unquote_sheet(m.group(1)), m.group(2)
    if ref.endswith("#") and not volatile and (m2 := _CELL_RE.match(ref[:-1])):
        return ("spill", sheet, (bool(m2[1]), col_number(m2[2]), bool(m2[3]), int(m2[4])))
    if (m2 := _CELL_RE.match(ref)):
        part = (bool(m2[1]) or volatile, col_number(m2[2]), bool(m2[3]) or volatile, int(m2[4]))
        node = ("cell", sheet, part)
    elif (m2 := _RANGE_RE.match(ref)):
        p1 = (bool(m2[1]) or volatile, col_number(m2[2]), bool(m2[3]) or volatile, int(m2[4]))
        p2 = (bool(m2[5]) or volatile, col_number(m2[6]), bool(m2[7]) or volatile, int(m2[8]))
        node = ("range", sheet, p1, p2)
    elif (m2 := _COLS_RE.match(ref)):
        node = ("range", sheet, (bool(m2[1]) or volatile, col_number(m2[2]), True, None),
                (bool(m2[3]) or volatile, col_number(m2[4]), True, None))
    elif (m2 := _ROWS_RE.match(ref)):
        node = ("range", sheet, (True, None, bool(m2[1]) or volatile, int(m2[2])),
                (True, None, bool(m2[3]) or volatile, int(m2[4])))
    else:
        return ("unsupported", f"reference {src}")
    if volatile:
        return ("call", "INDIRECT", (node,))
    return node


class _LetLambda(Operand, Lambda):
    """LET(...) / LAMBDA(...) read as one operand whose arguments are parsed into trees."""

    def ast(self, tokens, stack, builder):
        # Operand.ast would chain to Function.ast through the MRO; do only the operand part
        if tokens and isinstance(tokens[-1], Operand):
            raise TokenError()
        tokens.append(self)
        builder.append(self)
        _update_n_args(stack)

    def _process(self, attr, match, context=None, parser=None):
        if "leta" in attr:
            raise UnsupportedSyntax("eta-reduced LAMBDA (_xleta.)")
        if "call" in attr:
            raise UnsupportedSyntax("inline LAMBDA call LAMBDA(...)(...)")
        args = [parse_tree(arg, parser) for arg in match.captures("arg")]
        if not args:
            raise FormulaError()
        if "let" in attr:
            names, values = args[:-1:2], args[1:-1:2]
            if len(names) != len(values) or not names:
                raise FormulaError()
            pairs = []
            for name, value in zip(names, values):
                if name[0] != "name":
                    raise FormulaError()
                pairs.append((name[1], value))
            attr["node"] = ("let", tuple(pairs), args[-1])
        else:
            params = []
            for name in args[:-1]:
                if name[0] != "name":
                    raise FormulaError()
                params.append(name[1])
            attr["node"] = ("lambda", tuple(params), args[-1])
        return attr


def number_literal(text: str):
    """A number token's value. Not formulas' Number.compile, which evals the text as
    Python: `05` (Excel reads 5) is a SyntaxError there, `1e309` overflows to inf."""
    upper = text.upper()
    if upper in ("TRUE", "FALSE"):
        return upper == "TRUE"
    return float(text)


class _TreeBuilder:
    """Stands in for formulas' AstBuilder: the parser feeds it tokens in postfix order."""

    def __init__(self, *args, **kwargs):
        self._stack: list = []

    def __len__(self):
        return len(self._stack)

    def __getitem__(self, index):
        return self._stack[index]

    def pop(self):
        return self._stack.pop()

    def finish(self):
        pass

    def append(self, token):
        stack = self._stack
        if isinstance(token, _LetLambda):
            stack.append(token.attr["node"])
        elif isinstance(token, (Operator, Function)):
            n = token.get_n_args
            if n > len(stack):
                raise FormulaError()
            args = tuple(stack[len(stack) - n:]) if n else ()
            del stack[len(stack) - n:]
            if isinstance(token, Function):
                stack.append(("call", strip_prefix(token.name), args))
            else:
                stack.append(("op", token.name.upper(), args))
        elif isinstance(token, Empty):
            stack.append(("missing",))
        elif isinstance(token, Error):
            stack.append(("lit", ExcelError(token.name.upper())))
        elif isinstance(token, String):
            stack.append(("lit", token.compile()))
        elif isinstance(token, Number):
            stack.append(("lit", number_literal(token.name)))
        elif isinstance(token, Range):
            stack.append(self._range(token))
        else:
            raise FormulaError()

    @staticmethod
    def _range(token):
        attr = token.attr
        if "r1" in attr or "n1" in attr or "indirect" in attr:
            return reference_node(token.source[:token.end_match])
        if attr.get("anchor"):
            return ("unsupported", "spill reference (#)")
        m = _SHEET_REF.match(token.source[:token.end_match].strip())
        sheet, name = (_unquote_sheet(m.group(1)), m.group(2)) if m else (None, attr.get("ref", ""))
        return ("name", strip_prefix(name), sheet)


class _TreeParser(Parser):
    ast_builder = _TreeBuilder
    filters = [
        Error, String, Number, _LetLambda, Range, OperatorToken, Separator,
        Function, Array, Parenthesis, Intersect,
    ]


_PARSER = _TreeParser()


def _operand_after_parenthesis(tokens) -> bool:
    """True for `SUM(1)2`, `(1)(2)` or `SUM(A1)'s'!B2`: formulas' parser reads the operand
    after a closing parenthesis as one more argument of the call around it (MAX((1)2) as
    MAX(1,2)); Excel refuses such text. The rows of an array constant ({1,2;3,4}) come
    as ARRAY(1,2)ARRAY(3,4) and are not this."""
    opened = []  # per open parenthesis: "array", "row" (of an array constant) or None
    for before, after in zip(tokens, tokens[1:] + [None]):
        if isinstance(before, Parenthesis):
            if before.name == "(":
                continue
            closed = opened.pop() if opened else None
            if isinstance(after, (Operand, Function)) or (isinstance(after, Parenthesis) and after.name == "("):
                if not (closed == "row" and isinstance(after, Function) and after.name.upper() == "ARRAY"):
                    return True
        if isinstance(after, Parenthesis) and after.name == "(":
            array = isinstance(before, Function) and before.name.upper() == "ARRAY"
            opened.append(("row" if opened and opened[-1] == "array" else "array") if array else None)
    return False


def _unbalanced(text: str) -> bool:
    """Brackets that do not pair up outside "text", 'sheet names' and [table columns].
    Such text is refused before formulas' tokenizer sees it: its LAMBDA pattern
    backtracks for minutes on an unclosed call (a fuzzed LAMBDA name cut short)."""
    depth, quote, square = 0, None, 0
    for ch in text:
        if quote is not None:
            if ch == quote:
                quote = None  # a doubled quote closes and reopens: the same depth
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            square += 1
        elif ch == "]":
            square -= 1
        elif square:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return True
    return quote is None and depth != 0


# --- the plain formulas' own reader ------------------------------------------------------
# Most formulas (every builder's) are references, names, numbers, strings, arithmetic and
# comparisons, % and function calls, with no space. formulas' tokenizer reads such text
# at about 0.3 ms a formula (each filter's regex tried in turn at every position); this
# reader gives the very tree formulas' parser would in a tenth of that, and hands
# anything else (spaces, arrays {..}, LET/LAMBDA, errors #.., R1C1, lower-case cells,
# ':' between expressions, unions, '@', names that look like cells...) back to formulas,
# untouched: what it accepts is held to formulas' tree by tests (test_parse_fast.py).
_FAST_CELL = r"\$?[A-Z]{1,3}\$?[1-9][0-9]*"
_FAST_TOKEN = re.compile(
    r"(?P<num>(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-][0-9]+)?)(?![A-Za-z0-9.:])"
    r'|(?P<str>"(?:""|[^"])*")'
    # a cell or range, perhaps on a sheet: what formulas' Range token reads, to the character
    rf"|(?P<ref>(?:(?:[A-Za-z_][A-Za-z0-9_.]*|'[^'\[\]?*/\\:!]+')!)?{_FAST_CELL}(?::{_FAST_CELL})?)"
    r"(?![A-Za-z0-9_.(!#$:\[])"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<sign>[-+]+)"
    r"|(?P<cmp><>|<=|>=|[<>=])(?![<>=])"
    r"|(?P<op>[*/^&])"
    r"|(?P<pct>%)(?!%)"
    r"|(?P<open>\()|(?P<close>\))|(?P<comma>, *)"  # formulas' separator takes the spaces after it
)
# names formulas reads as a cell (a1, A01) or an R1C1 reference (R2C3): not read here
_CELL_LIKE_NAME = re.compile(r"[A-Za-z]{1,3}[0-9]+|[Rr][0-9]+[Cc][0-9]+")
_BINARY_PRECEDENCE = {"^": 5, "*": 4, "/": 4, "+": 3, "-": 3, "&": 2,
                      "=": 1, "<": 1, ">": 1, "<=": 1, ">=": 1, "<>": 1}
_NOT_PLAIN_FUNCTIONS = ("LET", "LAMBDA", "ANCHORARRAY", "INDIRECT", "_XLETA.")  # formulas' own tokens


class _NotPlain(Exception):
    """Text outside what _fast_tree reads: formulas' parser decides."""


def _fast_tokens(body: str) -> list:
    tokens = []
    match = _FAST_TOKEN.match
    pos, end = 0, len(body)
    while pos < end:
        m = match(body, pos)
        if m is None:
            raise _NotPlain
        tokens.append((m.lastgroup, m.group()))
        pos = m.end()
    tokens.append(("end", ""))
    return tokens


class _FastReader:
    """Precedence climbing that builds what formulas' shunting-yard does: unary signs
    (a run of + and -, read by its parity, as formulas does) bind to the operand after
    them, then %, then ^ * / + - & and comparisons, each left-associative."""

    __slots__ = ("tokens", "at")

    def __init__(self, tokens: list):
        self.tokens = tokens
        self.at = 0

    def expression(self, lowest: int):
        tokens = self.tokens
        left = self.unary()
        while True:
            kind, text = tokens[self.at]
            if kind == "pct":
                if 6 < lowest:
                    return left
                self.at += 1
                left = ("op", "%", (left,))
                continue
            if kind == "sign":
                symbol = "-" if text.count("-") % 2 else "+"
            elif kind == "cmp" or kind == "op":
                symbol = text
            else:
                return left
            precedence = _BINARY_PRECEDENCE[symbol]
            if precedence < lowest:
                return left
            self.at += 1
            left = ("op", symbol, (left, self.expression(precedence + 1)))

    def unary(self):
        kind, text = self.tokens[self.at]
        if kind == "sign":
            self.at += 1
            return ("op", "U-" if text.count("-") % 2 else "U+", (self.operand(),))
        return self.operand()

    def operand(self):
        tokens = self.tokens
        kind, text = tokens[self.at]
        self.at += 1
        if kind == "num":
            return ("lit", float(text))
        if kind == "str":
            return ("lit", text[1:-1].replace('""', '"'))
        if kind == "ref":
            sheet = text.partition("!")[0].upper() if "!" in text else ""
            if sheet.startswith(("TRUE", "FALSE")):  # formulas reads a boolean there
                raise _NotPlain
            return reference_node(text)
        if kind == "open":
            inner = self.expression(0)
            if tokens[self.at][0] != "close":
                raise _NotPlain
            self.at += 1
            return inner
        if kind != "id":
            raise _NotPlain
        upper = text.upper()
        if tokens[self.at][0] == "open":
            if any(word in upper for word in _NOT_PLAIN_FUNCTIONS):
                raise _NotPlain
            if upper in ("TRUE", "FALSE") and tokens[self.at + 1][0] != "close":
                raise _NotPlain  # formulas reads TRUE then a parenthesis
            self.at += 1
            return ("call", strip_prefix(text), self.arguments())
        if upper in ("TRUE", "FALSE"):
            return ("lit", upper == "TRUE")
        if upper.startswith(("TRUE", "FALSE")) or _CELL_LIKE_NAME.fullmatch(text):
            raise _NotPlain
        return ("name", strip_prefix(text), None)

    def arguments(self) -> tuple:
        tokens = self.tokens
        args = []
        if tokens[self.at][0] == "close":
            self.at += 1
            return ()
        while True:
            kind = tokens[self.at][0]
            args.append(("missing",) if kind == "comma" or kind == "close" else self.expression(0))
            kind = tokens[self.at][0]
            self.at += 1
            if kind == "close":
                return tuple(args)
            if kind != "comma":
                raise _NotPlain


def _fast_tree(text: str):
    """The tree formulas' parser gives for plain formula text, or None for other text."""
    body = text[1:] if text[:1] == "=" else text
    if not body or "\n" in body:
        return None
    try:
        reader = _FastReader(_fast_tokens(body))
        tree = reader.expression(0)
    except (_NotPlain, IndexError, RecursionError):  # (formulas' parser nests without recursing)
        return None
    return tree if reader.tokens[reader.at][0] == "end" else None


def parse_tree(text: str, parser=None):
    """Formula text (with or without '=') -> tree. Raises ParseError."""
    if _unbalanced(text):
        raise ParseError(text)
    tree = _fast_tree(text)
    return tree if tree is not None else formulas_tree(text, parser)


def formulas_tree(text: str, parser=None):
    """parse_tree(text) as formulas' parser reads it (bracket check already done)."""
    parser = parser or _PARSER
    expr = text if text.lstrip().startswith("=") else "=" + text
    try:
        tokens, builder = parser.ast(expr)
    except UnsupportedSyntax:
        raise
    except (FormulaError, TokenError, ParseError, ValueError, IndexError, KeyError) as exc:
        raise ParseError(text) from exc
    if len(builder) != 1 or _operand_after_parenthesis(tokens):
        raise ParseError(text)
    return builder[-1]
