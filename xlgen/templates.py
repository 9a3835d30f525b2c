"""Experiment specs: TOML templates, checked before anything is written.

A template names a data set and a list of sheets. Top-level scalars (epochs,
learning_rate, derivative, ...) are defaults that every sheet inherits unless its own
table sets the key. `--set key=value` overrides any scalar by its dotted path
(`epochs=20`, `sheets.basic.learning_rate=0.001`, `data.slope=3`); unknown keys and bad
values are refused with one line naming the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from xlgen.errors import TemplateError
from xlgen.options import finite_number, number_list, number_table, one_of, positive_integer, positive_number, text

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
EXCEL_MAX_ROWS = 1_048_576


# Keys a sheet may inherit from the top level, with their checks.
SHARED_KEYS = {
    "epochs": positive_integer,
    "learning_rate": positive_number,
    "derivative": one_of("analytic", "finite"),
    "model": one_of("linear", "collapse", "relu"),
    "initial": number_table,
    # the two-neuron sheets: a row blows up when its squared error passes this (or is an error)
    "blowup_threshold": positive_number,
}

TOP_KEYS = {"title": text, "description": text, "about": text, **SHARED_KEYS}

DATA_KEYS = {"intercept": finite_number, "slope": finite_number, "x": number_list}


@dataclass
class SheetSpec:
    """One sheet to build: its layout (which builder and checker) and its options."""
    name: str
    layout: str
    options: dict = field(default_factory=dict)


@dataclass
class Template:
    name: str
    title: str
    description: str
    data: dict | None       # the x, y points of the data sheet; None: no data sheet
    sheets: list[SheetSpec]
    about: str = ""              # what the workbook teaches, a few lines (the about sheet)
    made_with: str = ""          # the build command, options in a fixed order (the about sheet)


def template_path(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml":
        if not path.is_file():
            raise TemplateError(f"template file {name} does not exist")
        return path
    candidate = TEMPLATE_DIR / f"{name}.toml"
    if not candidate.is_file():
        known = ", ".join(available_templates()) or "none"
        raise TemplateError(f"unknown template {name!r} (known: {known})")
    return candidate


def available_templates() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.toml"))


def parse_override(item: str):
    """`key=value` -> (key, value); the value is read as TOML (so 1e-3, 20, true) or as text."""
    if "=" not in item:
        raise TemplateError(f"--set takes key=value, got {item!r}")
    key, raw = (part.strip() for part in item.split("=", 1))
    if not key:
        raise TemplateError(f"--set takes key=value, got {item!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_override(raw: dict, key: str, value) -> None:
    """Set a dotted key that already exists in the template (or is a known sheet default)."""
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            raise TemplateError(f"--set {key}: unknown key {'.'.join(parts[:depth + 1])!r}")
        node = node[part]
    last = parts[-1]
    in_sheet = len(parts) == 3 and parts[0] == "sheets"
    top_level_default = len(parts) == 1 and last in TOP_KEYS
    if last not in node and not (in_sheet and last in SHARED_KEYS) and not top_level_default:
        raise TemplateError(f"--set {key}: unknown key {key!r}")
    if isinstance(node.get(last), (dict, list)):
        raise TemplateError(f"--set {key}: only single values can be set, {key!r} is a table or list")
    node[last] = value


def sheet_name_problem(name: str, taken: dict) -> str | None:
    """Why Excel would refuse this sheet name (`taken`: casefolded names in use), or None."""
    if not name:
        return "it is empty"
    if len(name.encode("utf-16-le")) // 2 > 31:
        return "longer than 31 characters"
    bad = sorted({ch for ch in name if ch in "[]:*?/\\"})
    if bad:
        return f"it holds {' '.join(bad)}; Excel refuses any of [ ] : * ? / \\"
    if any(not ch.isprintable() and not ch.isspace() or ch in "\t\n\r" for ch in name):
        return "it holds a control character"
    if name.startswith("'") or name.endswith("'"):
        return "it starts or ends with an apostrophe"
    if name.casefold() == "history":
        return "Excel reserves 'History'"
    if name.casefold() in taken:
        return f"Excel does not tell it from the sheet {taken[name.casefold()]!r}"
    return None


def load_template(name: str, overrides: list[str] | tuple = ()) -> Template:
    path = template_path(name)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise TemplateError(f"{path}: not valid TOML: {error}") from None
    settings = {}
    for item in overrides:
        key, value = parse_override(item)
        apply_override(raw, key, value)
        settings[key] = item.split("=", 1)[1].strip()
    template = check_template(path.stem, raw)
    template.made_with = build_command(name, settings)
    return template


def build_command(name: str, settings: dict) -> str:
    """The `xlgen build` command that makes this workbook: the same whatever the folder or
    the order of the --set options, so the same template and options give the same bytes."""
    import shlex
    source = Path(name).name if Path(name).suffix == ".toml" else name
    words = ["xlgen", "build", source]
    for key in sorted(settings):
        words += ["--set", f"{key}={settings[key]}"]
    return shlex.join(words)


def check_data(data_raw) -> dict:
    if not isinstance(data_raw, dict):
        raise TemplateError("[data] must be a table (intercept, slope, x)")
    for key in data_raw:
        if key not in DATA_KEYS:
            raise TemplateError(f"unknown key data.{key} (known: {', '.join(DATA_KEYS)})")
    for key in DATA_KEYS:
        if key not in data_raw:
            raise TemplateError(f"data.{key} is missing")
    return {key: check(f"data.{key}", data_raw[key]) for key, check in DATA_KEYS.items()}


def check_template(name: str, raw: dict) -> Template:
    from xlgen.sheets import LAYOUTS  # the builders say which options their layouts take

    known_top = set(TOP_KEYS) | {"data", "sheets"}
    for key in raw:
        if key not in known_top:
            raise TemplateError(f"unknown key {key!r} at the top of the template (known: {', '.join(sorted(known_top))})")
    defaults = {key: check(key, raw[key]) for key, check in TOP_KEYS.items() if key in raw}

    data = check_data(raw["data"]) if "data" in raw else None  # sheets with inputs of their own need none

    sheets_raw = raw.get("sheets")
    if not isinstance(sheets_raw, dict) or not sheets_raw:
        raise TemplateError("the template needs at least one [sheets.NAME] table")
    sheets = []
    from xlgen.sheets.data import SHEET as DATA_SHEET
    taken = {DATA_SHEET.casefold(): DATA_SHEET}  # the data sheet every workbook has
    for sheet_name, table in sheets_raw.items():
        if not isinstance(table, dict):
            raise TemplateError(f"sheets.{sheet_name} must be a table")
        problem = sheet_name_problem(sheet_name, taken)
        if problem:
            shown = sheet_name if sheet_name.isprintable() and sheet_name.strip() else repr(sheet_name)
            raise TemplateError(f"sheets.{shown}: not a valid Excel sheet name ({problem})")
        taken[sheet_name.casefold()] = sheet_name
        layout_name = table.get("layout")
        if layout_name not in LAYOUTS:
            raise TemplateError(f"sheets.{sheet_name}.layout must be one of {', '.join(sorted(LAYOUTS))}; got {layout_name!r}")
        layout = LAYOUTS[layout_name]
        if data is None and getattr(layout, "USES_DATA", True):
            raise TemplateError(f"sheets.{sheet_name}: layout {layout_name!r} reads the [data] table (intercept, slope, x), which the template lacks")
        allowed = {"layout"} | set(layout.OPTIONS)
        for key in table:
            if key not in allowed:
                raise TemplateError(f"unknown key sheets.{sheet_name}.{key} for layout {layout_name!r} (known: {', '.join(sorted(allowed))})")
        options = {}
        for key, default in layout.OPTIONS.items():
            if key in table:
                value = table[key]
            elif key in defaults:
                value = defaults[key]
            else:
                value = default
            check = SHARED_KEYS.get(key) or layout.OPTION_CHECKS.get(key)
            options[key] = check(f"sheets.{sheet_name}.{key}", value) if check else value
        sheets.append(SheetSpec(sheet_name, layout_name, options))
    template = Template(name, defaults.get("title", name), defaults.get("description", ""), data, sheets,
                        about=defaults.get("about", ""))
    for sheet in sheets:
        rows = LAYOUTS[sheet.layout].rows_needed(template, sheet)
        if rows > EXCEL_MAX_ROWS:
            raise TemplateError(f"sheets.{sheet.name}: {rows:,} rows would pass Excel's limit of {EXCEL_MAX_ROWS:,}; use fewer epochs")
    return template

