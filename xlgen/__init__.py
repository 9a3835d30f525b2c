"""xlgen: gradient-descent workbooks with live formulas, verified against NumPy."""

__version__ = "0.1.0"
