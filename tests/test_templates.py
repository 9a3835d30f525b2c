"""Templates and --set: good values load, bad ones are refused before anything is written."""

import pytest

from xlgen.errors import TemplateError
from xlgen.templates import available_templates, load_template


def test_graddesc_loads_with_the_course_settings():
    template = load_template("graddesc")
    assert "graddesc" in available_templates()
    assert len(template.data["x"]) == 29
    (basic,) = [s for s in template.sheets if s.name == "basic"]
    assert basic.options["learning_rate"] == 0.0001
    assert basic.options["initial"] == {"a": 1.0, "b": 1.0}


def test_overrides_reach_the_sheets():
    template = load_template("graddesc", ["epochs=20", "learning_rate=0.001", "derivative=finite",
                                          "sheets.basic.initial.a=3"])
    (basic,) = [s for s in template.sheets if s.name == "basic"]
    assert basic.options["epochs"] == 20
    assert basic.options["learning_rate"] == 0.001
    assert basic.options["derivative"] == "finite"
    assert basic.options["initial"]["a"] == 3.0


@pytest.mark.parametrize("override, message", [
    ("epochs=0", "epochs must be a whole number"),
    ("epochs=2.5", "epochs must be a whole number"),
    ("learning_rate=nan", "finite number"),
    ("learning_rate=inf", "finite number"),
    ("learning_rate=0", "greater than 0"),
    ("learning_rate=-0.1", "greater than 0"),
    ("learning_rate=fast", "must be a number"),
    ("derivative=symbolic", "must be one of analytic, finite"),
    ("colour=red", "unknown key 'colour'"),
    ("sheets.basic.colour=red", "unknown key"),
    ("data.x=3", "only single values"),
    ("epochs=40000", "pass Excel's limit of 1,048,576"),
    ("novalue", "takes key=value"),
])
def test_bad_overrides_are_refused(override, message):
    with pytest.raises(TemplateError, match=message):
        load_template("graddesc", [override])


def test_unknown_template_names_the_known_ones():
    with pytest.raises(TemplateError, match="unknown template 'nope'.*graddesc"):
        load_template("nope")


def test_bad_template_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("title = [unclosed")
    with pytest.raises(TemplateError, match="not valid TOML"):
        load_template(str(broken))
    extra = tmp_path / "extra.toml"
    extra.write_text('speed = 3\n[data]\nintercept = 1\nslope = 2\nx = [1]\n[sheets.s]\nlayout = "basic"\n')
    with pytest.raises(TemplateError, match="unknown key 'speed'"):
        load_template(str(extra))
    no_layout = tmp_path / "nolayout.toml"
    no_layout.write_text('[data]\nintercept = 1\nslope = 2\nx = [1]\n[sheets.s]\nepochs = 1\n')
    with pytest.raises(TemplateError, match="layout must be one of"):
        load_template(str(no_layout))
    with pytest.raises(TemplateError, match="does not exist"):
        load_template(str(tmp_path / "missing.toml"))
