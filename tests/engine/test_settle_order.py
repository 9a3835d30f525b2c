"""The order of cells whose inputs come later in sheet order (evaluate._Engine._settle).

They are computed after every cell computed in sheet order; each waits for the last of its
pending inputs in sheet order and is tried again when that one is computed (the cells
waiting for one cell are tried again last-registered first). The engine finds the next
input a cell waits for from the list it made when the cell was not ready a second time;
these tests hold it to the plain rule, which `rule_order` below spells out.
"""

import random

import pytest
from engine_cases import book_of

from xlgen.engine import calculate
from xlgen.engine.refs import col_letters
from xlgen.errors import CircularReference


def rule_order(formulas: dict, inputs: dict):
    """(order, loop): the order the plain rule computes `formulas` ({(row, col): text}) in,
    their inputs given as {(row, col): [cells, singles first, then each range's cells
    last first]}; loop: the cells a depth-first walk names when some are left waiting
    (from the first of them in sheet order, as the engine's walk), else None."""
    done, order, deferred = set(), [], []
    pending = [cell for cell in sorted(formulas)]
    for cell in pending:  # in sheet order: ready now, or later
        if any(d in formulas and d not in done for d in inputs[cell]):
            deferred.append(cell)
        else:
            done.add(cell)
            order.append(cell)
    waiting: dict = {}
    for root in deferred:
        stack = [root]
        while stack:
            cell = stack.pop()
            late = [d for d in inputs[cell] if d in formulas and d not in done]
            if late:
                waiting.setdefault(max(late), []).append(cell)
            else:
                done.add(cell)
                order.append(cell)
                stack += waiting.pop(cell, [])
    if not waiting:
        return order, None
    for root in sorted(cell for cells in waiting.values() for cell in cells):
        if root in done:
            continue
        stack, rest = [root], [iter(inputs[root])]  # depth first: a cell's inputs in its list's order
        while stack:
            for d in rest[-1]:
                if d in formulas and d not in done:
                    if d in stack:
                        return order, stack[stack.index(d):] + [d]
                    stack.append(d)
                    rest.append(iter(inputs[d]))
                    break
            else:
                done.add(stack.pop())
                rest.pop()
    raise AssertionError("cells left waiting without a loop")


def name(cell) -> str:
    return f"{col_letters(cell[1])}{cell[0]}"


def engine_order(formulas: dict, constants: dict):
    cells = {name(cell): value for cell, value in constants.items()}
    cells.update({name(cell): "=" + text for cell, text in formulas.items()})
    calc = calculate(book_of(("s", cells)))
    return [(row, col) for _, row, col in calc.order], calc


def test_a_chain_running_upwards_is_computed_from_its_bottom():
    formulas = {(r, 1): f"A{r + 1}+1" for r in range(1, 6)}
    formulas[(6, 1)] = "B6*2"
    order, calc = engine_order(formulas, {(6, 2): 1.0})
    assert order == [(6, 1), (5, 1), (4, 1), (3, 1), (2, 1), (1, 1)]
    assert calc.values[("s", 1, 1)] == 7.0


def test_a_total_before_a_row_computed_from_its_end_waits_for_each_input():
    # A1 sums B1:E1, computed E1, D1, C1 (each after the cell below it in column F): A1
    # waits for E1, then (not ready again) lists C1 and D1 and waits for D1, then for C1
    # from that list without running, and runs once C1 is computed
    formulas = {(1, 1): "SUM(B1:E1)", (1, 2): "F4+1", (1, 3): "F3+1", (1, 4): "F2+1", (1, 5): "F1+1",
                (1, 6): "F2+1", (2, 6): "F3+1", (3, 6): "F4+1", (4, 6): "G4+1"}
    order, calc = engine_order(formulas, {(4, 7): 1.0})
    assert order == [(4, 6), (1, 2), (3, 6), (2, 6), (1, 6), (1, 5), (1, 4), (1, 3), (1, 1)]
    assert calc.values[("s", 1, 1)] == 3.0 + 4.0 + 5.0 + 6.0
    inputs = {(1, 1): [(1, 5), (1, 4), (1, 3), (1, 2)], (1, 2): [(4, 6)], (1, 3): [(3, 6)], (1, 4): [(2, 6)],
              (1, 5): [(1, 6)], (1, 6): [(2, 6)], (2, 6): [(3, 6)], (3, 6): [(4, 6)], (4, 6): [(4, 7)]}
    assert rule_order(formulas, inputs) == (order, None)


def test_a_row_whose_first_cells_sum_its_last():
    # B1 and C1 read the end of their row, which reads the row above's: each waits once
    formulas = {(1, 2): "SUM(E1:F1)", (1, 3): "B1+F1", (1, 5): "E2*2", (1, 6): "E1+1",
                (2, 5): "A2+1"}
    order, calc = engine_order(formulas, {(2, 1): 2.0})
    assert order == [(2, 5), (1, 5), (1, 6), (1, 2), (1, 3)]
    assert calc.values[("s", 1, 3)] == (6.0 + 7.0) + 7.0


def test_a_cell_waiting_from_its_list_then_caught_in_a_loop_names_the_loop():
    # as above, but C1 reads A1 through H1: A1 is left waiting for C1
    formulas = {(1, 1): "SUM(B1:E1)", (1, 2): "F4+1", (1, 3): "H1+1", (1, 4): "F2+1", (1, 5): "F1+1",
                (1, 6): "F2+1", (2, 6): "F3+1", (3, 6): "F4+1", (4, 6): "G4+1", (1, 8): "A1"}
    with pytest.raises(CircularReference) as info:
        engine_order(formulas, {(4, 7): 1.0})
    assert info.value.cells == ["s!A1", "s!C1", "s!H1", "s!A1"]


def test_a_cell_whose_offset_finds_a_pending_range_waits_for_it_each_time():
    # A1's inputs are found only when it runs (OFFSET): it is run again at each one
    formulas = {(1, 1): "SUM(OFFSET(B1,0,0,1,4))", (1, 2): "F4+1", (1, 3): "F3+1", (1, 4): "F2+1",
                (1, 5): "F1+1", (1, 6): "F2+1", (2, 6): "F3+1", (3, 6): "F4+1", (4, 6): "G4+1"}
    order, calc = engine_order(formulas, {(4, 7): 1.0})
    assert order == [(4, 6), (1, 2), (3, 6), (2, 6), (1, 6), (1, 5), (1, 4), (1, 3), (1, 1)]
    assert calc.values[("s", 1, 1)] == 18.0


def random_book(rng: random.Random, rows: int, cols: int, loop: bool):
    """MAX(inputs)+1 on a grid: each formula reads cells ranked below it (singles and
    ranges), so its value is its depth; `loop`: one formula also reads one ranked above."""
    cells = [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)]
    noise = rng.choice((0.5, 3.0, 1000.0))  # 1000: any order; else mostly against sheet order
    flow = rng.choice((lambda r, c: -(r * cols + c), lambda r, c: r * cols - c))  # upwards, or rows from their end
    rank = {cell: flow(*cell) + rng.uniform(0.0, noise) for cell in cells}
    formulas, constants, inputs = {}, {}, {}
    for cell in cells:
        if rng.random() < 0.2:
            constants[cell] = 0.0
    for cell in cells:
        if cell in constants:
            continue
        below = [d for d in cells if rank[d] < rank[cell] or d in constants]
        singles = rng.sample(below, min(len(below), rng.randint(0, 4)))
        ranges = []
        for _ in range(rng.randint(0, 4)):
            r1, c1 = rng.choice(cells)
            r2, c2 = min(rows, r1 + rng.randint(0, 3)), min(cols, c1 + rng.randint(0, 5))
            inside = [(r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)]
            if all(d in constants or rank[d] < rank[cell] for d in inside):
                ranges.append(((r1, c1), (r2, c2), inside))
        if not singles and not ranges:
            constants[cell] = 0.0
            continue
        formulas[cell] = singles, ranges
    if loop and len(formulas) > 2:
        low, high = sorted(rng.sample(sorted(formulas), 2), key=rank.get)
        formulas[low][0].append(high)  # low now reads high, which reads at most ranked below it...
        formulas[high][0].append(low)  # ...so make sure the two read each other
    texts = {}
    for cell, (singles, ranges) in formulas.items():
        parts = [f"{name(d)}+0" for d in singles] + [f"{name(a)}:{name(b)}" for a, b, _ in ranges]
        texts[cell] = f"MAX({','.join(parts)})+1"
        listed = list(dict.fromkeys(singles))  # the engine lists a cell read twice once...
        for a, b, inside in dict.fromkeys((a, b, tuple(inside)) for a, b, inside in ranges):
            listed += sorted(inside, reverse=True)  # ...and a range's cells last first
        inputs[cell] = listed
    return texts, constants, inputs


@pytest.mark.parametrize("seed", range(60))
def test_random_books_follow_the_rule(seed):
    rng = random.Random(seed)
    texts, constants, inputs = random_book(rng, rng.randint(2, 12), rng.randint(2, 10), loop=seed % 5 == 4)
    expected, loop = rule_order(texts, inputs)
    if loop is not None:
        with pytest.raises(CircularReference) as info:
            engine_order(texts, constants)
        assert info.value.cells == [f"s!{name(cell)}" for cell in loop]
        return
    order, calc = engine_order(texts, constants)
    assert order == expected
    depth = {}
    for cell in expected:
        depth[cell] = max([depth.get(d, 0.0) for d in inputs[cell]], default=0.0) + 1.0
        assert calc.values[("s", *cell)] == depth[cell]
