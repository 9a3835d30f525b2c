"""The truth: NumPy descriptions of each experiment, independent of the sheet builders.

Nothing here knows about cells or formulas. Verify feeds these functions the inputs it
read from a workbook and compares what they return with what the formulas computed.
"""
