"""The command line: xlgen list | build | verify.

Bad input of any kind ends with one line on stderr and exit code 2; a workbook that
disagrees with the reference ends with exit code 1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from xlgen.errors import XlgenError


@contextmanager
def progress_bar(label: str, quiet: bool):
    """Phases with their counts on a terminal (xlgen.progress); nothing when quiet or
    when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from xlgen.progress import Progress
    with Progress(label, sys.stderr) as progress:
        yield progress


class Group(click.Group):
    """Turns user errors into one line and exit 2, wherever they are raised."""

    # true while this process's own command line runs (`xlgen ...`, `python -m xlgen.cli`:
    # no arguments passed in), never for a caller in Python (click's CliRunner, the fuzz
    # harness): only then may a command end the process itself (`leave`)
    owns_process = False

    def main(self, args=None, *more, **options):
        self.owns_process = args is None
        try:
            return super().main(args, *more, **options)
        finally:
            self.owns_process = False

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except XlgenError as error:  # one line, whatever text from the file the message quotes
            message = str(error).replace("\r", "\\r").replace("\n", "\\n")
            click.echo(f"xlgen: error: {message}", err=True)
            sys.exit(2)
        except click.UsageError as error:  # a wrong command line: one line too, not click's four
            usage_error(error)

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:  # `xlgen --bogus`; a bare `xlgen` still shows the help
            if isinstance(error, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                raise
            usage_error(error)


def usage_error(error: click.UsageError):
    hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
    click.echo(f"xlgen: error: {error.format_message()}{hint}", err=True)
    sys.exit(2)


def leave(code: int):
    """Exit with `code`, all output written: at once where this process is the command
    line's, without freeing its heap object by object (a 300,000-cell verify's book and
    values: about 0.2 s; the modules a build imported: about 15 ms), as a normal exit
    would; else (a caller in Python, a thread still running, output that cannot be
    flushed) by sys.exit, as before."""
    import threading
    if not main.owns_process or threading.active_count() > 1:
        sys.exit(code)
    import atexit
    try:
        atexit._run_exitfuncs()   # what a normal exit runs before it frees anything
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:   # (a closed pipe...): Python's own exit says so, as it always did
        sys.exit(code)
    os._exit(code)


def echo_above(progress, line: str) -> None:
    """A result line, printed above the progress line when one is showing."""
    if progress is None:
        click.echo(line)
    else:
        progress.print_above(lambda: click.echo(line))


@click.group(cls=Group)
@click.version_option(package_name="xlgen")
def main():
    """Gradient descent in spreadsheets: build teaching workbooks, verify any workbook."""


@main.command("list")
def list_templates():
    """The templates, one line each."""
    from xlgen.templates import available_templates, load_template
    for name in available_templates():
        template = load_template(name)
        sheets = ", ".join(["about"] + (["data"] if template.data is not None else []) + [sheet.name for sheet in template.sheets])
        click.echo(f"{name:16} {template.title}  [{sheets}]")


@main.command()
@click.argument("template", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write (default: TEMPLATE.xlsx here).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a template value, e.g. epochs=20.")
@click.option("--all", "build_all", is_flag=True, help="Build every template into workbooks/ and verify each.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def build(template, output, overrides, build_all, force, quiet):
    """Build a workbook from a template (a name from `xlgen list`, or a .toml file)."""
    from xlgen.build import EXAMPLES_DIR, ExampleBuilds, build as build_one
    # a polite kill unwinds like Ctrl-C, so the writer removes its temporary file
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    from xlgen.templates import available_templates

    if build_all:
        if template or output or overrides:
            raise XlgenError("--all builds every template with its own settings; give no template, -o or --set")
        failed = 0
        EXAMPLES_DIR.mkdir(exist_ok=True)
        builds = ExampleBuilds(available_templates())   # worker processes start here
        with progress_bar("build --all", quiet) as update:
            builds.progress = update
            for ok, line in builds:
                failed += not ok
                echo_above(update, line)
        leave(1 if failed else 0)
    if not template:
        raise XlgenError("name a template (see `xlgen list`) or use --all")
    output = Path(output or f"{Path(template).stem}.xlsx")
    with progress_bar(f"build {template}", quiet) as update:
        path = build_one(template, output, overrides, force=force, progress=update)
    click.echo(f"wrote {path}")
    if main.owns_process:   # (a caller in Python gets the command's return, as before)
        leave(0)


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--engine", type=click.Choice(["xlgen", "libreoffice", "ironcalc"]), default="xlgen", show_default=True,
              help="Who recomputes the formulas: xlgen's engine, LibreOffice or IronCalc (if installed).")
@click.option("--strict", is_flag=True,
              help="Exit 1 also when any formula cell was not checked or any saved value is stale.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(file, as_json, engine, strict, quiet):
    """Recompute every formula of FILE and check it against the NumPy reference."""
    from xlgen.verify import verify_file
    from xlgen.verify.report import text_report

    kept = []   # the book and its values, freed with the process (`leave`)
    if main.owns_process:   # nor collected: no collector pass over them once verify re-enables it
        import gc
        gc.disable()
    with progress_bar("verify", quiet or as_json) as update:
        report = verify_file(file, progress=update, engine=engine, keep=kept)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(text_report(report, strict=strict))
    leave(0 if (report.strict_ok if strict else report.ok) else 1)


if __name__ == "__main__":  # python -m xlgen.cli, as tests run it in a subprocess
    main()
