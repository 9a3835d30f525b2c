"""The course's conv-example sheet: a 28x28 handwritten digit through two 3x3 convolutions
with ReLU, a second convolution layer reading both maps, 2x2 max-pooling and one dense unit.

Laid out where the course's sheet has its parts (labels in row 1: Input, Conv1, Conv2,
Maxpool, Dense weights, Dense activation; kernels under "filter k/L" labels), with the
sizes a valid convolution gives (26x26, 24x24, 12x12; the course's second layer has a
25th column reading an empty one). Each conv cell is MAX(0,SUMPRODUCT(window,kernel)):
the course's {=MAX(0,SUM(window*kernel))} array formula without Ctrl+Shift+Enter, so it
works the same in every Excel and LibreOffice. The kernels are named inputs; every map
has the course's white-to-red heat map. The digit ships in xlgen/data/mnist_seven.txt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xlgen.errors import TemplateError
from xlgen.formula import Name, Range, Ref, call
from xlgen.sheets.plan import ColorScale, WorkbookPlan
from xlgen.options import positive_integer

USES_DATA = False
DIGITS = Path(__file__).resolve().parent.parent / "data"

LABEL_ROW = 1
INPUT_ROW, INPUT_COL, SIZE = 2, 1, 28
KERNEL1_COL, KERNEL2_COL = 30, 61                  # AD, BI: under "filter k/1", "filter k/2"
CONV1_COL, CONV2_COL, POOL_COL, WEIGHTS_COL, DENSE_COL = 34, 65, 91, 104, 117
MAP_TOP = (3, 32)                                  # conv1 map k starts in this row; conv2 and pool one lower
FILTER_LABEL_ROW = (9, 36)


def matrix3(key, value):
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(row, list) and len(row) == 3 for row in value)):
        raise TemplateError(f"{key} must be a 3x3 matrix such as [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]")
    for i, row in enumerate(value):
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise TemplateError(f"{key}[{i}][{j}] must be a finite number, got {v!r}")
    return [[float(v) for v in row] for row in value]


def digit(key, value):
    if not isinstance(value, str) or not (DIGITS / f"{value}.txt").is_file():
        known = ", ".join(sorted(p.stem for p in DIGITS.glob("*.txt")))
        raise TemplateError(f"{key} must be one of the digits shipped with xlgen ({known}), got {value!r}")
    return value


# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'A 28x28 digit through two 3x3 kernels with ReLU, a second layer over both maps, '
    '2x2 max-pooling and a dense unit; each map a heat map.')
# the about sheet's numbers to look for: (row label, column header) of each
ABOUT_NUMBERS = ((None, "Dense activation"),)

OPTIONS = {
    "digit": "mnist_seven",
    "conv1_filter1": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "conv1_filter2": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "conv2_filter1_map1": [[0.5, 0.25, 0.25], [0.85, -0.5, 0.05], [0.8, 0.0, -0.65]],
    "conv2_filter1_map2": [[0.8, 0.35, -0.55], [0.55, 0.35, 0.3], [0.3, 0.7, 0.6]],
    "conv2_filter2_map1": [[0.0, 0.25, 0.45], [0.55, 0.2, 0.15], [-0.95, 0.45, 0.65]],
    "conv2_filter2_map2": [[0.8, 0.2, 0.7], [-0.85, 0.4, 0.55], [0.25, 0.15, 0.85]],
    "dense_seed": 8,
}
OPTION_CHECKS = {"digit": digit, "dense_seed": positive_integer,
                 **{key: matrix3 for key in OPTIONS if "filter" in key}}


def rows_needed(template, spec) -> int:
    return MAP_TOP[1] + 26 + 8


def load_digit(name: str) -> np.ndarray:
    rows = [line.split() for line in (DIGITS / f"{name}.txt").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    return np.array(rows, dtype=np.int64)


def block(sheet_name: str, top: int, left: int, rows: int, cols: int) -> Range:
    return Range(Ref(top, left, sheet_name, True, True), Ref(top + rows - 1, left + cols - 1, None, True, True))


def put_kernel(sheet, name: str, top: int, left: int, values) -> None:
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            sheet.put(top + i, left + j, value, "input")
    sheet.names[name] = block(sheet.name, top, left, 3, 3)


def window(top: int, left: int, size: int) -> Range:
    return Range(Ref(top, left), Ref(top + size - 1, left + size - 1))


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    sheet = workbook.add_sheet(spec.name)
    pixels = load_digit(options["digit"])
    if pixels.shape != (SIZE, SIZE):
        raise TemplateError(f"digit {options['digit']} is {pixels.shape[0]}x{pixels.shape[1]}, not 28x28")
    labels = {INPUT_COL: "Input", CONV1_COL: "Conv1", CONV2_COL: "Conv2", POOL_COL: "Maxpool",
              WEIGHTS_COL: "Dense weights", DENSE_COL: "Dense activation"}
    for col, label in labels.items():
        sheet.put(LABEL_ROW, col, label, "header")
    for i in range(SIZE):
        for j in range(SIZE):
            sheet.put(INPUT_ROW + i, INPUT_COL + j, int(pixels[i, j]) / 255, "map")
    sheet.names["image"] = block(spec.name, INPUT_ROW, INPUT_COL, SIZE, SIZE)
    sheet.color_scales.append(ColorScale(block(None, INPUT_ROW, INPUT_COL, SIZE, SIZE)))

    conv1 = SIZE - 2
    conv2 = conv1 - 2
    pool = conv2 // 2
    rng = np.random.default_rng(options["dense_seed"])
    dense_terms = []
    for k in range(2):
        label_row = FILTER_LABEL_ROW[k]
        top1 = MAP_TOP[k]
        top2 = top1 + 1
        # layer 1: map k+1 from the image and its own kernel
        sheet.put(label_row, KERNEL1_COL, f"filter {k + 1}/1", "label")
        first_kernel = f"conv1_filter{k + 1}"
        put_kernel(sheet, first_kernel, label_row + 2, KERNEL1_COL, options[first_kernel])
        for i in range(conv1):
            for j in range(conv1):
                sheet.put(top1 + i, CONV1_COL + j,
                          call("MAX", 0, call("SUMPRODUCT", window(INPUT_ROW + i, INPUT_COL + j, 3), Name(first_kernel))),
                          "map")
        sheet.color_scales.append(ColorScale(block(None, top1, CONV1_COL, conv1, conv1)))
        # layer 2: map k+1 from both layer-1 maps, one kernel for each
        sheet.put(label_row, KERNEL2_COL, f"filter {k + 1}/2", "label")
        names = [f"conv2_filter{k + 1}_map{m + 1}" for m in range(2)]
        for m, name in enumerate(names):
            put_kernel(sheet, name, label_row + 2 + 4 * m, KERNEL2_COL, options[name])
        for i in range(conv2):
            for j in range(conv2):
                total = (call("SUMPRODUCT", window(MAP_TOP[0] + i, CONV1_COL + j, 3), Name(names[0]))
                         + call("SUMPRODUCT", window(MAP_TOP[1] + i, CONV1_COL + j, 3), Name(names[1])))
                sheet.put(top2 + i, CONV2_COL + j, call("MAX", 0, total), "map")
        sheet.color_scales.append(ColorScale(block(None, top2, CONV2_COL, conv2, conv2)))
        # 2x2 max-pool, and the dense weights laid out beside it cell for cell
        for i in range(pool):
            for j in range(pool):
                sheet.put(top2 + i, POOL_COL + j, call("MAX", window(top2 + 2 * i, CONV2_COL + 2 * j, 2)), "map")
                sheet.put(top2 + i, WEIGHTS_COL + j, round(float(rng.random()), 3), "input")
        sheet.color_scales.append(ColorScale(block(None, top2, POOL_COL, pool, pool)))
        sheet.names[f"dense_weights{k + 1}"] = block(spec.name, top2, WEIGHTS_COL, pool, pool)
        dense_terms.append(call("SUMPRODUCT", Name(f"dense_weights{k + 1}"),
                                Range(Ref(top2, POOL_COL), Ref(top2 + pool - 1, POOL_COL + pool - 1))))
    sheet.put(MAP_TOP[0] + 1, DENSE_COL, dense_terms[0] + dense_terms[1], "number")

    notes = [
        "Each Conv1 cell: MAX(0,SUMPRODUCT(3x3 window of the input, kernel)): a 3x3 filter, then ReLU.",
        "Conv2 adds a filter over each Conv1 map; Maxpool keeps the largest of each 2x2 block;",
        "the dense activation weighs every pooled cell (MNIST would have 10 such units and a softmax).",
        "The yellow kernels are named inputs (conv1_filter1, ...): type your own edge detector.",
        "filter 1/1 lights up where ink lies above blank (lower edges); filter 2/1 where ink lies left of blank.",
        "The course wrote {=MAX(0,SUM(window*kernel))} as an array formula; SUMPRODUCT needs no Ctrl+Shift+Enter.",
    ]
    for offset, note in enumerate(notes):
        sheet.put(SIZE + 3 + offset, INPUT_COL, note, "note")
    sheet.comments[(INPUT_ROW + 9, KERNEL1_COL)] = ("A kernel: the conv cell is the sum of the 9 products of this "
                                                    "grid with the window under it (no ReLU yet). Try -1,-1,-1 on the "
                                                    "top row and 1,1,1 on the bottom row: upper edges light up instead.")
    sheet.put(MAP_TOP[0] + 2, DENSE_COL, "a weighted sum of both pooled maps", "note")
    for first, last, width in ((INPUT_COL, INPUT_COL + SIZE - 1, 3.6), (KERNEL1_COL, KERNEL1_COL + 2, 5.5),
                               (CONV1_COL, CONV1_COL + conv1 - 1, 3.6), (KERNEL2_COL, KERNEL2_COL + 2, 6),
                               (CONV2_COL, CONV2_COL + conv2 - 1, 4.3), (POOL_COL, POOL_COL + pool - 1, 4.3),
                               (WEIGHTS_COL, WEIGHTS_COL + pool - 1, 5.5), (DENSE_COL, DENSE_COL, 14)):
        for col in range(first, last + 1):
            sheet.widths[col] = width
    sheet.freeze = (1, 0)
