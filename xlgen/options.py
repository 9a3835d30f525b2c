"""Checks for template option values: each takes (key, value), returns the value as the
builders want it, or raises TemplateError with one line naming the key.

Shared by templates.py (top-level and data keys) and the builders (their layout-only keys),
so the builders need not import templates.py, which imports them.
"""

from __future__ import annotations

import math

from xlgen.errors import TemplateError


def positive_number(key, value):
    number = finite_number(key, value)
    if number <= 0:
        raise TemplateError(f"{key} must be greater than 0, got {value!r}")
    return number


def finite_number(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TemplateError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise TemplateError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def positive_integer(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TemplateError(f"{key} must be a whole number of at least 1, got {value!r}")
    return value


def text(key, value):
    if not isinstance(value, str):
        raise TemplateError(f"{key} must be text, got {value!r}")
    return value


def one_of(*choices):
    def check(key, value):
        if value not in choices:
            raise TemplateError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
        return value
    return check


def number_table(key, value):
    if not isinstance(value, dict) or not value:
        raise TemplateError(f"{key} must be a table of numbers such as {{ a = 1, b = 1 }}")
    return {name: finite_number(f"{key}.{name}", v) for name, v in value.items()}


def number_list(key, value):
    if not isinstance(value, list) or not value:
        raise TemplateError(f"{key} must be a non-empty list of numbers")
    return [finite_number(f"{key}[{i}]", v) for i, v in enumerate(value)]


def boolean(key, value):
    if not isinstance(value, bool):
        raise TemplateError(f"{key} must be true or false, got {value!r}")
    return value


def fraction(key, value):
    """A decay rate: 0 <= beta < 1 (at 1 the averages never forget and debias divides by 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value < 1:
        raise TemplateError(f"{key} must be a number from 0 up to (not including) 1, got {value!r}")
    return float(value)


def non_negative(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise TemplateError(f"{key} must be a finite number of at least 0, got {value!r}")
    return float(value)


def positive(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise TemplateError(f"{key} must be a finite number greater than 0, got {value!r}")
    return float(value)


def finite(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TemplateError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def optional(check):
    """None stands for "the style's default"."""
    def checked(key, value):
        return None if value is None else check(key, value)
    return checked
