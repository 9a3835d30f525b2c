"""Random templates: `xlgen build` writes a workbook that verifies, or refuses the
template in one line (exit 2) without writing anything, not even a temporary file.

Hypothesis mutates a small valid template: values of the wrong type, nested junk,
huge lists, unicode and Excel-refused sheet names (longer than 31 characters, any of
[]:*?/\\, a name already used in another case, 'History', quotes at the ends), and raw
damage to the TOML text. Derandomized; XLGEN_FUZZ_EXAMPLES raises the count.
"""

from __future__ import annotations

import datetime
import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import run_cli
from tests.fuzz.harness import judge, run_verify

EXAMPLES = int(os.environ.get("XLGEN_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

BASE = {
    "title": "small", "epochs": 1, "learning_rate": 0.0001, "derivative": "analytic",
    "data": {"intercept": 30, "slope": 2, "x": [14, 86, 28, 51]},
    "sheets": {"basic": {"layout": "basic", "initial": {"a": 1, "b": 1}},
               "momentum": {"layout": "momentum", "style": "course", "initial": {"a": 1, "b": 1}}},
}


def toml_key(key: str) -> str:
    return json.dumps(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int, datetime.date, datetime.time)):
        return value.isoformat() if not isinstance(value, int) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{ " + ", ".join(f"{toml_key(key)} = {toml_value(item)}" for key, item in value.items()) + " }"


def to_toml(raw: dict) -> str:
    lines = [f"{toml_key(key)} = {toml_value(value)}" for key, value in raw.items() if not isinstance(value, dict)]
    for key, value in raw.items():
        if isinstance(value, dict):
            if key == "sheets" and all(isinstance(table, dict) for table in value.values()):
                for name, table in value.items():
                    lines += ["", f"[sheets.{toml_key(name)}]"]
                    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
            else:
                lines += ["", f"[{toml_key(key)}]"] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


scalars = st.one_of(
    st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=40), st.sampled_from(["analytic", "finite", "basic", "momentum", "fastai", "course", ""]),
    st.dates(), st.just(0), st.just(-1), st.just(2**63 - 1), st.just(1e308))
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=12)
huge_lists = st.one_of(st.just([1] * 2_000_000), st.just(["x"] * 10_000), st.just([[1, 2]] * 1000),
                       st.just([float("nan")] * 100), st.just(list(range(300_000))))
BAD_NAMES = ["a" * 32, "é" * 32, "x[1]", "a:b", "a*b", "why?", "a/b", "a\\b", "'quoted'", "'start", "end'",
             "History", "history", "", " ", "BASIC", "Basic", "Data", "DATA", "data", "Momentum", "tab\there",
             "new\nline", "nul\x00", "\u200b", "😀" * 16, "日本語のシート名", "ok name"]
names = st.one_of(st.sampled_from(BAD_NAMES), st.text(min_size=0, max_size=40))
PATHS = [("epochs",), ("learning_rate",), ("derivative",), ("title",), ("data",), ("data", "x"),
         ("data", "slope"), ("data", "intercept"), ("sheets",), ("sheets", "basic"),
         ("sheets", "basic", "layout"), ("sheets", "basic", "initial"), ("sheets", "basic", "epochs"),
         ("sheets", "momentum", "style"), ("sheets", "momentum", "initial"), ("sheets", "momentum", "mom"),
         ("sheets", "basic", "initial", "a"), ("sheets", "basic", "initial", "zz"), ("junk",),
         ("sheets", "basic", "junk")]


@st.composite
def templates(draw):
    """(TOML text, what was done) from a small valid template and one to three changes."""
    raw = json.loads(json.dumps(BASE))
    done = []
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["value", "value", "huge", "rename", "add sheet", "delete", "text"]))
        if how in ("value", "huge", "delete"):
            path = draw(st.sampled_from(PATHS))
            node = raw
            for part in path[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            if how == "delete":
                node.pop(path[-1], None)
            else:
                node[path[-1]] = draw(huge_lists if how == "huge" else junk)
            done.append(f"{how} {'.'.join(path)}")
        elif how in ("rename", "add sheet") and isinstance(raw.get("sheets"), dict):
            name = draw(names)
            sheets = raw["sheets"]
            if how == "rename" and sheets:
                old = draw(st.sampled_from(sorted(sheets)))
                sheets[name] = sheets.pop(old)
            else:
                sheets[name] = {"layout": draw(st.sampled_from(["basic", "momentum", "adam", "nosuch"])),
                                "initial": {"a": 1, "b": 1}}
            done.append(f"{how} {name!r}")
    text = to_toml(raw)
    if "text" in [d.split()[0] for d in done] or draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["[", "]]", "=", '"', "\x00", "\n[data]\n", "é", "\\u",
                                                 "\n[sheets.basic]\n", "x = 1\nx = 2\n"])) + text[at:]
        done.append(f"text at {at}")
    return text, done


def refused_or_built(tmp_path, text: str, done):
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    for item in folder.iterdir():
        item.unlink()
    template = tmp_path / "fuzzed.toml"
    template.write_text(text, encoding="utf-8")
    output = folder / "out.xlsx"
    code, out, err = run_cli("build", template, "-o", output, "--quiet")
    problem = judge(code, out, err, None)
    assert problem is None, f"{done}: {problem}\n{text[:2000]}"
    if code == 2:
        assert list(folder.iterdir()) == [], f"{done}: refused, yet wrote {list(folder.iterdir())}"
        return err
    assert code == 0, (done, out, err)
    assert [item.name for item in folder.iterdir()] == ["out.xlsx"]
    verified = run_verify(output)
    assert verified[0] == 0 and judge(*verified) is None, (done, verified)
    return None


@FUZZ
@given(case=templates())
def test_random_template_builds_a_good_workbook_or_is_refused_in_one_line(tmp_path_factory, case):
    text, done = case
    refused_or_built(tmp_path_factory.mktemp("template"), text, done)


@pytest.mark.parametrize("name", ["a" * 32, "x[1]", "a:b", "a*b", "why?", "a/b", "a\\b", "'quoted'",
                                  "end'", "History", "", "BASIC", "Data", "new\nline", "nul\x00"])
def test_sheet_names_excel_refuses_are_refused(tmp_path, name):
    raw = json.loads(json.dumps(BASE))
    raw["sheets"][name] = {"layout": "basic", "initial": {"a": 1, "b": 1}}
    err = refused_or_built(tmp_path, to_toml(raw), [f"sheet {name!r}"])
    assert err is not None, f"sheet name {name!r} was accepted"
    assert "sheet name" in err or "sheets." in err


@pytest.mark.parametrize("name", ["日本語のシート名", "a" * 31, "with space", "é-ü"])
def test_sheet_names_excel_takes_are_built(tmp_path, name):
    raw = json.loads(json.dumps(BASE))
    raw["sheets"] = {name: raw["sheets"]["basic"]}
    assert refused_or_built(tmp_path, to_toml(raw), [f"sheet {name!r}"]) is None
