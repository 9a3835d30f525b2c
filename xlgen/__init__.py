"""xlgen: gradient-descent workbooks with live formulas, verified against NumPy.

From Python (a notebook):

    import xlgen
    xlgen.templates()                                   # what build() takes
    xlgen.build("graddesc", "out.xlsx", epochs=20)      # --set epochs=20
    report = xlgen.verify("out.xlsx")                   # report.ok, .first_divergence, ...

The three are xlgen.api's functions. Everything is imported on first use, so
`import xlgen` stays fast.
"""

import sys as _sys
import types as _types

__version__ = "0.1.0"
__all__ = ["build", "verify", "templates", "VerifyReport", "XlgenError", "__version__"]
_API = ("build", "verify", "templates")


class _CallableModule(_types.ModuleType):
    """xlgen.build, xlgen.verify and xlgen.templates are modules (the pipeline's parts)
    and, called, the API's functions. Python binds a submodule to its package's
    attribute whenever it is imported, so plain functions of these names would vanish
    at the first `from xlgen.build import ...`; a callable module cannot."""

    def __call__(self, *args, **kwargs):
        from xlgen import api
        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


class _Package(_types.ModuleType):
    def __setattr__(self, name, value):
        if name in _API and type(value) is _types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name in _API:
        import importlib
        return importlib.import_module(f"xlgen.{name}")   # bound here, callable, by _Package
    if name == "VerifyReport":
        from xlgen.api import VerifyReport
        return VerifyReport
    if name == "XlgenError":
        from xlgen.errors import XlgenError
        return XlgenError
    raise AttributeError(f"module 'xlgen' has no attribute {name!r}")
