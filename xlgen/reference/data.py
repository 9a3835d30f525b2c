"""The data set: points on a known line, y = intercept + slope * x."""

import numpy as np


def line(x, intercept: float, slope: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return intercept + x * slope
