"""The forward pass of the course's conv-example.xlsx, in NumPy.

A spreadsheet reads an empty cell as 0, so a layer whose block of cells is larger than
a 'valid' convolution gives (the course's second layer has 25 columns over 26-wide
maps, its last window reaching into an empty column) is a convolution of the input
padded with zeros on the bottom and right; `conv_relu` takes the output shape for that
reason. MAX skips empty cells, so max-pooling pads with nothing (all empty: 0).
"""

from __future__ import annotations

import numpy as np


def padded(array, rows: int, cols: int, fill: float = 0.0) -> np.ndarray:
    """`array` cut or padded with `fill` (bottom and right) to rows x cols."""
    array = np.asarray(array, dtype=np.float64)
    out = np.full((rows, cols), fill)
    r, c = min(rows, array.shape[0]), min(cols, array.shape[1])
    out[:r, :c] = array[:r, :c]
    return out


def conv_relu(maps, kernels, out_shape) -> np.ndarray:
    """max(0, sum over input maps of the window times that map's kernel), for each output cell.

    The window of output cell (i, j) starts at (i, j) of every input map: a 'valid'
    cross-correlation (no kernel flip), as the spreadsheet's SUM(window*kernel) computes."""
    rows, cols = out_shape
    total = np.zeros((rows, cols))
    for image, kernel in zip(maps, kernels):
        kernel = np.asarray(kernel, dtype=np.float64)
        kr, kc = kernel.shape
        source = padded(image, rows + kr - 1, cols + kc - 1)
        layer = np.zeros((rows, cols))
        # inputs near the largest double overflow to inf (and inf - inf is nan), as IEEE
        # says; no warning is news to the user
        with np.errstate(over="ignore", invalid="ignore"):
            for di in range(kr):          # one product at a time, in the spreadsheet's order
                for dj in range(kc):
                    layer = layer + source[di:di + rows, dj:dj + cols] * kernel[di, dj]
            total = total + layer
    # an overflowed sum is Excel's #NUM! (nan), and MAX(0, #NUM!) is #NUM!, not 0
    total[~np.isfinite(total)] = np.nan
    return np.maximum(0.0, total)


def max_pool(image, out_shape, size: int = 2) -> np.ndarray:
    """The largest value of each size x size block; blocks past the image's edge use what
    is there (an all-empty block is 0, as Excel's MAX of nothing). A nan in a block
    (#NUM! in the sheet) makes the block's MAX nan, as Excel's MAX of an error is one."""
    rows, cols = out_shape
    source = padded(image, rows * size, cols * size, fill=-np.inf)  # -inf: an empty cell
    blocks = source.reshape(rows, size, cols, size)
    pooled = np.max(blocks, axis=(1, 3))
    return np.where(pooled == -np.inf, 0.0, pooled)


def dense(pooled_maps, weights) -> float:
    """One output unit: the sum over every map of weight times activation."""
    with np.errstate(over="ignore", invalid="ignore"):  # inf and nan as in conv_relu
        return float(sum(float(np.sum(np.asarray(w, dtype=np.float64) * np.asarray(p, dtype=np.float64)))
                         for p, w in zip(pooled_maps, weights)))


def dropout(random_numbers, p: float, margin: float = 0.001) -> np.ndarray:
    """The course's mask: a random number is kept where it passes p + margin, else 0.
    (No 1/(1-p) rescaling of what is kept, as in the course's sheet.)"""
    random_numbers = np.asarray(random_numbers, dtype=np.float64)
    return np.where(random_numbers > p + margin, random_numbers, 0.0)


def apply_mask(activations, mask) -> np.ndarray:
    """An activation where its mask cell is not 0, else 0."""
    return np.where(np.asarray(mask) == 0, 0.0, np.asarray(activations, dtype=np.float64))
