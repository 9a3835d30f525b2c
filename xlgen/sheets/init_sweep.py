"""Initialisation: one model at one learning rate from several sets of initial weights
(the forum tried "better initial weights"), each run's rmse per epoch and first blow-up
side by side, rmse by epoch one line per run (xlgen.sheets.runs)."""

from __future__ import annotations

from xlgen.sheets import runs

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'The {model} model from {runs} sets of initial weights: rmse per epoch and the '
    'first blow-up.')

OPTIONS = {"model": "collapse", "epochs": 3, "derivative": "finite", "learning_rate": 0.0001,
           "initials": [{"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}], "blowup_threshold": 1e6}
OPTION_CHECKS = {"initials": runs.initial_list}
NOTE = ("Each row of the table is one run of the rows below at the same learning rate; only the initial weights "
        "differ. Look at when (or whether) each run blows up and at its rmse by epoch. Starting at an exact answer "
        "does not keep you there: the finite-difference derivative with a 0.01 step is not 0 at the minimum. "
        "Type other initial weights into the table to try them.")


def rows_needed(template, spec) -> int:
    return runs.rows_needed(template, spec, len(spec.options["initials"]))


def build(workbook, template, spec, data) -> None:
    settings = [(spec.options["learning_rate"], initial) for initial in spec.options["initials"]]
    runs.build_runs(workbook, spec, data, settings, NOTE, chart="epoch")
