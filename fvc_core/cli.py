"""The ``fvc`` command. Exit codes: 0 success, 2 a user mistake (one line each), 1 a failure inside fvc."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from fvc_core import __version__
from fvc_core.errors import DiskFullError, Terminated, UserError, is_disk_full, one_line
from fvc_core.pipes import closed_pipe_is_the_end
from fvc_core.plugins import DISABLE_ENV, KINDS, get_registry


class _Parser(argparse.ArgumentParser):
    """argparse, with its mistakes reported like every other user mistake: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        # Options anywhere among the positionals (`fvc run exp.yaml --fresh k=v`): plain argparse ends
        # CONFIG's overrides at the first option and calls the rest "unrecognized". Every command
        # parser intermixes (plugins' commands too); a parser argparse cannot intermix (the top level,
        # with its subcommands; a REMAINDER positional) parses as usual.
        if self._intermixing or not self._can_intermix():
            return super().parse_known_args(args, namespace)
        args = list(sys.argv[1:] if args is None else args)
        # An option this parser does not know is set aside first: intermixed parsing would otherwise
        # stop CONFIG's overrides at it and call every override after it unrecognized too.
        unknown = [a for a in args if self._unknown_option(a)]
        self._intermixing = True
        try:
            namespace, extras = self.parse_known_intermixed_args([a for a in args if a not in unknown],
                                                                 namespace)
        finally:
            self._intermixing = False
        return namespace, unknown + extras

    def _unknown_option(self, arg: str) -> bool:
        if arg == "--" or not arg.startswith("-"):
            return False
        found = self._parse_optional(arg)  # None: a positional (a negative number, say)
        if found is None:
            return False
        # Python 3.11 returns one (action, option, value); 3.12.7+ a list of them
        candidates = found if isinstance(found, list) else [found]
        return all(c[0] is None for c in candidates)

    def _can_intermix(self) -> bool:
        positionals = self._get_positional_actions()
        if any(a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in positionals):
            return False
        return not any(a in positionals for g in self._mutually_exclusive_groups for a in g._group_actions)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML file")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                        help="override any key, e.g. trainer.epochs=3 'trackers=[console]'")


def _cmd_run(args: argparse.Namespace) -> int:
    from fvc_core.config import load_config
    from fvc_core.runner import run_experiment

    config = load_config(args.config, args.overrides, disabled=args.disabled)
    run_experiment(config, fresh=args.fresh)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _cmd_sweep(args: argparse.Namespace) -> int:
    from fvc_core.sweeps.run import run_sweep

    return run_sweep(args.config, args.overrides, disabled=args.disabled, yes=args.yes, name=args.name,
                     fresh=args.fresh, at_once=args.points_at_once)


def _cmd_check(args: argparse.Namespace) -> int:
    from fvc_core.config import load_config
    from fvc_core.console import get_console

    config = load_config(args.config, args.overrides, disabled=args.disabled)
    # What `fvc run` would refuse before writing anything (the filesystem root, a file): said here too.
    from pathlib import Path

    from fvc_core.ownership import check_output_dir

    check_output_dir(Path(config.output_dir), "output_dir")
    swept = _check_sweep_section(args)
    # What the dataset can tell without decoding (its table, its files): a missing table is found
    # here, not minutes into a run.
    dataset = get_registry(config.disabled_plugins).create("datasets", config.data.name, config.data.config)
    notes = dataset.check() if callable(getattr(dataset, "check", None)) else []
    console = get_console()
    console.print(config.to_yaml(), end="", markup=False)
    for note in notes or []:
        console.print(f"# note: {note}", markup=False)
    if swept:
        console.print(f"# sweep: section: {swept} points, each valid", markup=False)
    console.print(f"# {args.config}: valid (config hash {config.hash()})", markup=False)
    return 0


def _check_sweep_section(args: argparse.Namespace) -> int:
    """The points of the YAML's sweep: section validated as `fvc sweep` would (a typo'd key in its
    grid is found here, not when the sweep starts); how many there are, 0 without a section."""
    from fvc_core.config import load_yaml
    from fvc_core.sweeps.plan import plan
    from fvc_core.sweeps.spec import CONFIRM_ABOVE, count, section_of, split_arguments

    section = section_of(load_yaml(args.config), str(args.config))
    if not section.grid and section.random is None:
        return 0
    fixed = {word.partition("=")[0] for word in split_arguments(args.overrides)[0]}
    grid = {k: v for k, v in section.grid.items() if k not in fixed}
    if not grid and section.random is None:
        return 0  # every swept key set on the command line: the config checked is the one point
    if count(grid, section) > CONFIRM_ABOVE:
        return 0  # `fvc sweep` asks for --yes before building them; not built here either
    return len(plan(args.config, args.overrides, disabled=args.disabled)[2])


def _cmd_schema(args: argparse.Namespace) -> int:
    from fvc_core.config import json_schema

    print(json.dumps(json_schema(get_registry(args.disabled)), indent=2))
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    """The installed plugins; exit 1 when one failed to load, so a script or CI job notices."""
    registry = get_registry(args.disabled)
    rows = []
    for p in registry.plugins:
        rows.append({
            "name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
            "builtin": p.builtin, "hooks": p.hooks, "provides": p.provides, "error": p.error,
        })
    conflicts = [
        {"kind": kind, "name": name, "distributions": [r.plugin.distribution for r in regs]}
        for (kind, name), regs in registry.conflicts.items()
    ]
    failed = [p for p in registry.plugins if p.error]
    if args.json:
        print(json.dumps({"plugins": rows, "conflicts": conflicts, "disabled": sorted(args.disabled)}, indent=2))
        return 1 if failed else 0
    from rich.table import Table

    from fvc_core.console import get_console

    table = Table(title="fvc plugins")
    for col in ("plugin", "distribution", "version", "hooks", "provides"):
        table.add_column(col)
    for r in rows:
        provides = "\n".join(f"{k}: {', '.join(v)}" for k, v in r["provides"].items() if k in KINDS)
        if r["error"]:
            provides = "[red]failed to load (below)[/]"
        table.add_row(r["name"], r["distribution"], r["version"], ", ".join(r["hooks"]), provides)
    console = get_console()
    console.print(table)
    for c in conflicts:
        console.print(f"[red]conflict:[/] {c['kind'][:-1]} {c['name']!r} is provided by "
                      + " and ".join(c["distributions"]))
    if args.disabled:
        console.print("disabled: " + ", ".join(sorted(args.disabled)))
    # Plain print, not the table: a load error stays one line at any width and in a pipe, where a
    # table cell wrapped and cut it over many lines.
    for p in failed:
        error = p.error if len(p.error) <= _ERROR_CHARS else p.error[: _ERROR_CHARS - 3] + "..."
        print(f"failed to load: {p.name} ({p.distribution} {p.version}): {error}")
        if args.traceback and p.traceback:
            print(p.traceback.rstrip())
    if failed and not args.traceback:
        print("(fvc plugins --traceback shows where each failed)")
    return 1 if failed else 0


_ERROR_CHARS = 200


def build_parser(disabled: list[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fvc", description="Plugin-based experiment runner for deepfake video detection.")
    parser.add_argument("--version", action="version", version=f"fvc {__version__}")
    parser.add_argument("-p", dest="plugin_opts", action="append", default=[], metavar="no:NAME",
                        help="disable an installed plugin by name (repeatable), as pytest does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run an experiment (resumes an interrupted one)")
    _add_config_args(p)
    p.add_argument("--fresh", action="store_true",
                   help="discard earlier outputs of this model in output_dir and start over")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("sweep", help="run a grid or random sweep of a config, ranked by validation (docs/sweeps.md)")
    p.add_argument("config", help="experiment YAML file (its sweep: section, if any, says what to vary)")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=v1,v2",
                   help="a comma list sweeps the key (every combination is a point); key=value sets it for all")
    p.add_argument("--name", help="the sweep's folder in output_dir (default: sweep.name, else the experiment)")
    p.add_argument("--yes", action="store_true", help="run a sweep of more than 10,000 points")
    p.add_argument("--fresh", action="store_true", help="discard the points' earlier outputs and train them again")
    p.add_argument("--points-at-once", type=_positive_int, metavar="N",
                   help="points open at once on an executor that runs several (ray); default: enough to keep "
                   "its slots busy; 1: one after another")
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("check", help="validate a config and print it resolved")
    _add_config_args(p)
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("schema", help="print the JSON Schema of experiment.yaml")
    p.set_defaults(func=_cmd_schema)
    p = sub.add_parser("plugins", help="list installed plugins and what failed to load")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--traceback", action="store_true", help="the full traceback of each plugin that failed to load")
    p.set_defaults(func=_cmd_plugins)

    for command in get_registry(disabled).commands.values():
        if command.name in sub.choices:
            continue
        p = _Parser(prog=f"fvc {command.name}", description=command.help)
        try:
            command.configure(p)
        except Exception as exc:  # a broken plugin loses its command, not the whole CLI
            if not command.plugin.error:
                command.plugin.error = f"command {command.name!r}: {one_line(exc)}"
                command.plugin.traceback = traceback.format_exc()
            continue
        p = sub.add_parser(command.name, help=f"{command.help} [{command.plugin.name}]")
        command.configure(p)
        p.set_defaults(func=command.run)
    for p in sub.choices.values():
        _accept_plugin_option(p)
    return parser


def _accept_plugin_option(parser: argparse.ArgumentParser) -> None:
    """``-p no:NAME`` after the command too (`fvc check exp.yaml -p no:mlflow`): _disabled_from_argv
    reads it from anywhere on the line, so the command's parser only has to let it through."""
    if "-p" not in parser._option_string_actions:
        parser.add_argument("-p", dest="plugin_opts", action="append", default=argparse.SUPPRESS,
                            metavar="no:NAME", help="disable an installed plugin by name (as fvc -p)")


def _disabled_from_argv(argv: Sequence[str]) -> list[str]:
    pre = _Parser(prog="fvc", add_help=False)
    pre.add_argument("-p", dest="plugin_opts", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    disabled = []
    for opt in known.plugin_opts:
        if not opt.startswith("no:") or len(opt) <= 3:
            raise UserError(f"-p {opt}: expected -p no:NAME to disable the plugin NAME")
        disabled.append(opt[3:])
    return disabled


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Schedulers (Slurm, Kubernetes, systemd) send SIGTERM first: unwind as Ctrl-C does, so state is
    # saved and the run's status recorded. Only from the main thread (signal.signal raises elsewhere).
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, _on_sigterm)
    with closed_pipe_is_the_end():
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        disabled = _disabled_from_argv(argv)
        registry = get_registry(disabled)
        # A typo'd -p no:NAME that disabled nothing would leave the plugin it meant in force, silently.
        unknown = [f"-p no:{name}: {why}" for name in disabled if (why := registry.not_installed(name))]
        if unknown:
            raise UserError("\n".join(unknown))
        if disabled:
            # Child processes (DataLoader workers, nested fvc calls) see the same plugin set.
            os.environ[DISABLE_ENV] = ",".join(sorted(set(disabled) | set(
                filter(None, os.environ.get(DISABLE_ENV, "").split(",")))))
        parser = build_parser(disabled)
        args = parser.parse_args(argv)
        args.disabled = disabled
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except UserError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("terminated (SIGTERM): progress so far is saved; run the same command again to resume",
              file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted: progress so far is saved; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if is_disk_full(exc):
            path = getattr(exc, "filename", None) or "the output folder"
            print(f"error: {DiskFullError(path)}", file=sys.stderr)
            return DiskFullError.exit_code
        traceback.print_exc()
        print("error: fvc failed internally (the traceback above is a bug report)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
