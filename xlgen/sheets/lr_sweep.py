"""The learning-rate sweep: one model from the same initial weights at several learning
rates, each run's rmse per epoch and first blow-up side by side, rmse against the
learning rate on log axes (xlgen.sheets.runs)."""

from __future__ import annotations

from xlgen.sheets import runs

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'The {model} model at {runs} learning rates: rmse per epoch and the first blow-up '
    'of each run.')

OPTIONS = {"model": "collapse", "epochs": 3, "derivative": "finite", "initial": {"a": 1.0, "b": 1.0},
           "learning_rates": [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2], "blowup_threshold": 1e6}
OPTION_CHECKS = {"learning_rates": runs.learning_rate_list}
NOTE = ("Each row of the table is one run of the rows below, from the same initial weights; only the learning rate "
        "differs. Look at the chart: too small and it learns slowly, too big and the squared error blows up within a "
        "few rows (first blow-up step, epoch, row). Type a learning rate into the table to try it.")


def rows_needed(template, spec) -> int:
    return runs.rows_needed(template, spec, len(spec.options["learning_rates"]))


def build(workbook, template, spec, data) -> None:
    settings = [(lr, spec.options["initial"]) for lr in spec.options["learning_rates"]]
    runs.build_runs(workbook, spec, data, settings, NOTE, chart="learning_rate")
