"""Checker for a convolution sheet: the course's conv-example.xlsx (both sheets) or xlgen's.

Recognised by its section labels in row 1 (Input, Conv1, Conv2, Maxpool, Dense weights,
Dense activation; the dropout sheet adds the random numbers, the dropout filter and
Conv2 after dropout, with "p =" beside them). A section runs from its label to the next
one; its formula cells form one block per feature map (blocks are apart by empty rows).
Inputs: the image under "Input", the kernels under "filter k/L" labels (map k of layer L;
a layer-2 filter holds one kernel per layer-1 map, top to bottom), the dense weights
placed like the pooled cells they weigh, the dropout sheet's p and its RAND() cells
(volatile: taken at their saved values). The reference computes every layer from those
inputs alone, each output cell's window starting at its own offset in the layer below;
a pooled cell's window is found by its rank among the pool block's rows and columns.
The dropout sheet's "Total Pixels", "Counts (zero cells)" and "Actual dropout" are
checked as the size of the filter block, its zeros and their share.
"""

from __future__ import annotations

import re

import numpy as np

from xlgen.formula import cell_name
from xlgen.reference import convolution as conv
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import labelled_cell, normal

LAYOUT = "convolution"
FILTER = re.compile(r"^filter\s*(\d+)\s*/\s*(\d+)$")
REQUIRED = ("input", "conv1", "conv2", "pool", "weights", "dense")
DROPOUT = ("random", "mask", "dropped")


def section_of(label: str) -> str | None:
    if label.startswith("input"):
        return "input"
    if label.startswith("conv1"):
        return "conv1"
    if label.startswith("conv2"):
        return "dropped" if "after dropout" in label else "conv2"
    if label.startswith("(generate random"):
        return "random"
    if label.startswith("(dropout"):
        return "mask"
    if label.startswith("maxpool"):
        return "pool"
    if label == "dense weights":
        return "weights"
    if label.startswith("dense activation"):
        return "dense"
    return None


def recognise(book, sheet):
    sections = {}
    for (row, col), value in sheet.constants.items():
        if row == 1 and isinstance(value, str):
            kind = section_of(normal(value))
            if kind and kind not in sections:
                sections[kind] = col
    if not all(kind in sections for kind in REQUIRED):
        return None
    dropout = [kind for kind in DROPOUT if kind in sections]
    if dropout and len(dropout) != len(DROPOUT):
        return None
    return sections


class Block:
    """The formula cells of one feature map: its rows and columns, in order."""

    def __init__(self, cells):
        self.cells = sorted(cells)
        self.rows = sorted({r for r, _ in cells})
        self.cols = sorted({c for _, c in cells})
        self.row_rank = {r: i for i, r in enumerate(self.rows)}
        self.col_rank = {c: i for i, c in enumerate(self.cols)}

    @property
    def top(self):
        return self.rows[0]

    @property
    def left(self):
        return self.cols[0]

    @property
    def shape(self):
        return len(self.rows), len(self.cols)


def blocks(sheet, first_col: int, last_col: int, gap: int = 3) -> list[Block]:
    # a formula right of a text label is a labelled figure (the dropout counts), not a map cell
    cells = sorted((r, c) for (r, c) in sheet.formulas if r > 1 and first_col <= c <= last_col
                   and not isinstance(sheet.constants.get((r, c - 1)), str))
    groups, current, last_row = [], [], None
    for r, c in cells:
        if last_row is not None and r - last_row > gap:
            groups.append(current)
            current = []
        current.append((r, c))
        last_row = r if last_row is None else max(last_row, r)
    if current:
        groups.append(current)
    return [Block(group) for group in groups]


def number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def read_grid(context, sheet, top: int, left: int, rows: int, cols: int) -> np.ndarray:
    """Cells as numbers, an empty cell (or text) as 0, as a spreadsheet's arithmetic reads them."""
    return np.array([[number(context.value(sheet.name, top + i, left + j)) for j in range(cols)]
                     for i in range(rows)], dtype=np.float64)


def kernels(sheet) -> dict:
    """(map, layer) -> list of kernels (top-left cell, 2-D array) under each "filter k/L" label."""
    found = {}
    for (row, col), value in sheet.constants.items():
        match = FILTER.match(normal(value)) if isinstance(value, str) else None
        if not match:
            continue
        grids, r = [], row + 1
        while r <= row + 12:
            if not isinstance(sheet.constants.get((r, col)), (int, float)):
                r += 1
                continue
            width = 0
            while isinstance(sheet.constants.get((r, col + width)), (int, float)):
                width += 1
            height = 0
            while isinstance(sheet.constants.get((r + height, col)), (int, float)):
                height += 1
            grid = np.array([[number(sheet.constants.get((r + i, col + j))) for j in range(width)]
                             for i in range(height)], dtype=np.float64)
            grids.append(((r, col), grid))
            r += height
        found[(int(match.group(1)), int(match.group(2)))] = grids
    return found


def check(sheet, match, context) -> SheetCheck | None:
    sections = match
    order = sorted(sections.values())
    extent = {kind: (col, (order[order.index(col) + 1] - 1) if col != order[-1] else col + 60)
              for kind, col in sections.items()}
    maps = {kind: blocks(sheet, *extent[kind]) for kind in sections if kind not in ("input", "weights")}
    result = SheetCheck(sheet.name, LAYOUT)
    filters = kernels(sheet)
    conv1_blocks, conv2_blocks = maps["conv1"], maps["conv2"]
    if not conv1_blocks or not conv2_blocks or not maps["pool"]:
        return None

    def kernel_input(key, index):
        grids = filters.get(key, [])
        if index >= len(grids):
            result.notes.append(f"no kernel {index + 1} under a 'filter {key[0]}/{key[1]}' label")
            return None
        (r, c), grid = grids[index]
        where = f"{sheet.name}!{cell_name(r, c)}:{cell_name(r + grid.shape[0] - 1, c + grid.shape[1] - 1)}"
        result.inputs[f"filter {key[0]}/{key[1]}" + (f" #{index + 1}" if key[1] > 1 else "")] = {
            "cell": where, "value": grid.tolist()}
        return grid

    # the image: from the cell under "Input", as large as the first layer's windows reach
    first_kernels = [kernel_input((k + 1, 1), 0) for k in range(len(conv1_blocks))]
    if any(k is None for k in first_kernels):
        return None
    reach_rows = max(b.shape[0] for b in conv1_blocks) + first_kernels[0].shape[0] - 1
    reach_cols = max(b.shape[1] for b in conv1_blocks) + first_kernels[0].shape[1] - 1
    image = read_grid(context, sheet, 2, sections["input"], reach_rows, reach_cols)
    result.inputs["image"] = {"cell": f"{sheet.name}!{cell_name(2, sections['input'])}:"
                                      f"{cell_name(1 + reach_rows, sections['input'] + reach_cols - 1)}",
                              "value": f"{reach_rows}x{reach_cols} cells"}

    def expect_block(block: Block, values: np.ndarray, scales: np.ndarray | None = None) -> None:
        """`scales`: the sum of the products' sizes, which bounds the rounding noise where
        a kernel's positive and negative products cancel."""
        for r, c in block.cells:
            i, j = block.row_rank[r], block.col_rank[c]
            result.expect(r, c, values[i, j], float(scales[i, j]) if scales is not None else 0.0)

    layer1 = []
    for block, kernel in zip(conv1_blocks, first_kernels):
        values = conv.conv_relu([image], [kernel], block.shape)
        expect_block(block, values, conv.conv_relu([np.abs(image)], [np.abs(kernel)], block.shape))
        layer1.append(values)
    layer2 = []
    for m, block in enumerate(conv2_blocks):
        grids = [kernel_input((m + 1, 2), i) for i in range(len(layer1))]
        if any(g is None for g in grids):
            return None
        values = conv.conv_relu(layer1, grids, block.shape)
        expect_block(block, values, conv.conv_relu(layer1, [np.abs(g) for g in grids], block.shape))
        layer2.append(values)
    pooled_from = layer2
    if "random" in sections:
        pooled_from = check_dropout(sheet, sections, maps, layer2, context, result)
        if pooled_from is None:
            return None
    pooled = []
    offset = sections["weights"] - sections["pool"]
    weights = []
    for block, source in zip(maps["pool"], pooled_from):
        values = conv.max_pool(source, block.shape)
        expect_block(block, values)
        pooled.append(np.array([values[block.row_rank[r], block.col_rank[c]] for r, c in block.cells]))
        weights.append(np.array([number(context.value(sheet.name, r, c + offset)) for r, c in block.cells]))
    result.inputs["dense weights"] = {"cell": f"{sheet.name}!{cell_name(maps['pool'][0].top, maps['pool'][0].left + offset)}"
                                              f" (beside each pooled cell)",
                                      "value": f"{sum(len(w) for w in weights)} cells"}
    activation = conv.dense(pooled, weights)
    for block in maps["dense"]:
        for r, c in block.cells:
            result.expect(r, c, activation)
    return result


def check_dropout(sheet, sections, maps, layer2, context, result):
    """The dropout sheet: RAND() cells as inputs, the course's filter and the masked maps."""
    p_cell = labelled_cell(sheet, "p =", max_row=1)
    if p_cell is None:
        result.notes.append("a dropout sheet without its 'p =' input")
        return None
    p = context.input(result, "p", (sheet.name, *p_cell))
    masked = []
    masks = []
    for random_block, mask_block, dropped_block, activations in zip(maps["random"], maps["mask"], maps["dropped"],
                                                                    layer2):
        drawn = np.zeros(random_block.shape)
        for r, c in random_block.cells:
            if not context.is_volatile(sheet.name, r, c):
                return None  # not the course's RAND() cells: no layout we know
            drawn[random_block.row_rank[r], random_block.col_rank[c]] = number(context.value(sheet.name, r, c))
            result.volatile.append(f"{sheet.name}!{cell_name(r, c)}")
        mask = conv.dropout(conv.padded(drawn, *mask_block.shape), p)
        for r, c in mask_block.cells:
            result.expect(r, c, mask[mask_block.row_rank[r], mask_block.col_rank[c]])
        kept = conv.apply_mask(conv.padded(activations, *dropped_block.shape), conv.padded(mask, *dropped_block.shape))
        for r, c in dropped_block.cells:
            result.expect(r, c, kept[dropped_block.row_rank[r], dropped_block.col_rank[c]])
        masked.append(kept)
        masks.append((mask_block, mask))
    # the dropout statistics under each filter block, beside their labels
    for (row, col), value in sheet.constants.items():
        label = normal(value)
        if not isinstance(value, str) or not label.startswith(("total pixels", "counts (zero", "actual drop", "actual droup")):
            continue
        if (row, col + 1) not in sheet.formulas:
            continue
        above = [(block, mask) for block, mask in masks if block.rows[-1] < row]
        if not above:
            continue
        block, mask = max(above, key=lambda item: item[0].rows[-1])
        cells = len(block.cells)
        zeros = int(np.count_nonzero(mask == 0))
        expected = cells if label.startswith("total") else zeros if label.startswith("counts") else zeros / cells
        result.expect(row, col + 1, float(expected))
    return masked
