"""The ``jr-jax`` command: parses options, runs the command (:mod:`jr_jax.cli_commands`) and reports its errors.

The options and their defaults are in :mod:`jr_jax.cli_options`; JAX, brainunit, matplotlib and the library are
imported only after the options are parsed, so that ``jr-jax --help`` answers at once. Ordinary mistakes (a bad
option, a missing or malformed file, parameters the library rejects) end with one line
``jr-jax <command>: error: <message>`` on stderr and exit status 2, and leave the output folder as it was (see :func:`main`); ``--debug`` shows the exception with its traceback instead.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import sys
from pathlib import Path

from jr_jax.cli_options import CommandLineError, message, parser


def _run(name: str, module: str = "cli_commands"):
    """The command ``name`` of ``jr_jax.<module>``, imported when it runs."""
    def run(args):
        return importlib.import_module(f"jr_jax.{module}").COMMANDS[name](args)
    run.__name__ = f"run_{name.replace('-', '_')}"
    return run


COMMANDS = {name: _run(name) for name in ("regimes", "sweep", "bifurcation", "network", "fit")}
COMMANDS["fit-network"] = _run("fit-network", "cli_network")


def _new_folders(out: Path) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first (the run would create them)."""
    new = []
    for folder in (out, *out.parents):
        if folder.exists() or folder.is_symlink():
            break
        new.append(folder)
    return new


def _entries(out: Path) -> set[Path]:
    """What ``out`` holds at its top level (its files, and the folders of the checkpoint stores)."""
    return set(out.iterdir()) if out.is_dir() else set()


def _holds_work(folder: Path) -> bool:
    """Whether ``folder`` is a checkpoint store with finished files (its manifest lists them): never removed."""
    return (folder / "manifest.json").exists()


def _restore(new_folders: list[Path], before: set[Path], out: Path) -> None:
    """Leave the output as it was before a failed run: what the run added at the top of ``out`` is removed, and
    folders it created are removed when left empty. Checkpoint stores with finished files are kept (the run can
    resume from them), and nothing that existed before is touched."""
    for entry in _entries(out) - before:
        if entry.is_dir() and not entry.is_symlink():
            if not _holds_work(entry):
                shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    for folder in new_folders:          # deepest first: removed only if left empty
        with contextlib.suppress(OSError):
            folder.rmdir()


def _parse(argv):
    """The options, or CommandLineError naming the subcommand (arguments left over included)."""
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:
        raise CommandLineError(f"unrecognized arguments: {' '.join(extra)}", f"{top.prog} {args.command}")
    return args


def main(argv=None) -> int:
    """The ``jr-jax`` command: 0 on success; 2 for an ordinary mistake, reported in one line
    ``jr-jax <command>: error: <message>``, with the output folder left as it was (``--debug``: the exception
    propagates, with its traceback, after the folder is restored). An interrupted run (Ctrl-C) or a bug keeps what
    it wrote, so that the run can resume."""
    try:
        args = _parse(argv)
    except CommandLineError as err:
        print(f"{err.prog}: error: {message(err)}", file=sys.stderr)
        return 2
    import matplotlib

    from jr_jax.cli_commands import KEEP_FOLDER_ERRORS, MESSAGE_ERRORS

    matplotlib.use("Agg")  # the command writes figures to files; chosen before any figure is made
    out = Path(args.out)
    new_folders, before = _new_folders(out), _entries(out)
    try:
        return COMMANDS[args.command](args)
    except MESSAGE_ERRORS as err:
        if not isinstance(err, KEEP_FOLDER_ERRORS):
            _restore(new_folders, before, out)
        if args.debug:
            raise
        print(f"jr-jax {args.command}: error: {message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
