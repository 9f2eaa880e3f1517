"""The frame of every command: its help page, one error style, no silently repeated option.

* Help pages are plain text in click's classic layout (they read the same in a pipe
  and in a terminal): usage, description, arguments, options (value options show a
  metavar such as ``COLUMN`` or ``[drop|error]``, flags show none), one section per
  ``rich_help_panel``, then the examples — the docstring's ``Examples:`` block, kept
  verbatim.
* An option that takes one value and is given twice (``--target a --target b``) is
  refused instead of silently keeping the last; repeatable options say so in their help.
* :func:`run` turns every usage error of the parser into the one line the rest of the
  command line prints — ``streamreg: error: …`` — with exit code 2 and where to find help.
"""

from __future__ import annotations

import inspect
import sys
from collections import Counter

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

# typer vendors click from 0.2x on and re-exports only some of its classes: find the two
# base classes of usage errors from one that it does export.
_ERRORS = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
CLICK_ERROR: type[Exception] = _ERRORS["ClickException"]
USAGE_ERROR: type[Exception] = _ERRORS["UsageError"]

EXAMPLES = "Examples:"
COMMAND_ORDER = ("fit", "predict", "evaluate", "summary", "inspect", "generate", "run", "job")
HELP_OPTION_NAMES = ["-h", "--help"]
# Metavars derived from typer's type labels when an option names none.
_TYPE_METAVARS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "path": "PATH"}


def split_examples(text: str | None) -> tuple[str, list[str]]:
    """A docstring's description and the lines of its ``Examples:`` block (dedented).

    >>> split_examples('''Fit it.
    ...
    ... Examples:
    ...   streamreg fit data/ -y y''')
    ('Fit it.', ['streamreg fit data/ -y y'])
    """
    text = inspect.cleandoc(text or "")
    description, _, examples = text.partition(EXAMPLES)
    lines = inspect.cleandoc(examples).splitlines() if examples.strip() else []
    return description.strip(), [line.rstrip() for line in lines]


def _metavar(param, ctx) -> str:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return param.metavar
    label = param.display_type_rich(ctx) if hasattr(param, "display_type_rich") else None
    label = (label or "<str>").strip("<>").replace(" range", "")
    return _TYPE_METAVARS.get(label, label.upper())


def _extras(param) -> list[str]:
    extras = []
    if getattr(param, "multiple", False):
        extras.append("repeatable")
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None or high is not None:
        extras.append(
            " and ".join(
                part
                for part in (
                    f"x>={low}" if low is not None else "",
                    f"x<={high}" if high is not None else "",
                )
                if part
            )
        )
    default = param.default
    shown = getattr(param, "show_default", True)
    if (
        shown
        and not getattr(param, "is_flag", False)
        and default not in (None, "", (), [])
        and not callable(default)
    ):
        extras.append(f"default: {default}")
    envvar = param.envvar if getattr(param, "show_envvar", True) else None
    if envvar:
        extras.append(f"env var: {envvar if isinstance(envvar, str) else ', '.join(envvar)}")
    if param.required:
        extras.append("required")
    return extras


def _record(param, ctx) -> tuple[str, str]:
    """A row of the help page: ``('-y, --target COLUMN', 'The column to predict. [required]')``."""
    if param.param_type_name == "argument":
        name = param.metavar or param.name.upper()
        names = name + ("..." if param.nargs == -1 and not name.endswith("...") else "")
    else:
        names = ", ".join(sorted(param.opts, key=lambda o: (o.startswith("--"), o)))
        metavar = _metavar(param, ctx)
        names = f"{names} {metavar}" if metavar else names
    extras = _extras(param)
    text = (param.help or "").strip()
    return names, f"{text}  [{'; '.join(extras)}]" if extras else text


def _usage_piece(param) -> list[str]:
    if param.param_type_name != "argument":
        return []
    name = param.metavar or param.name.upper()
    name += "..." if param.nargs == -1 and not name.endswith("...") else ""
    return [name if param.required else f"[{name}]"]


class Command(TyperCommand):
    """A typer command with the house's help page and its refusal of repeated options."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            pieces.extend(_usage_piece(param))
        return pieces

    def format_help(self, ctx, formatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_help_text(self, ctx, formatter) -> None:
        description, _ = split_examples(self.help)
        if description:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(description)

    def format_options(self, ctx, formatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
        for param in self.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            panel = getattr(param, "rich_help_panel", None)
            default = "Arguments" if param.param_type_name == "argument" else "Options"
            sections.setdefault(panel or default, []).append(_record(param, ctx))
        for title, rows in sections.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def format_epilog(self, ctx, formatter) -> None:
        _, examples = split_examples(self.help)
        if examples:
            formatter.write_paragraph()
            formatter.write_text(EXAMPLES)
            with formatter.indentation():
                for line in examples:
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            refuse_repeated(self, ctx, args)
        return super().parse_args(ctx, args)

    def get_help_option(self, ctx):
        return help_flag(super().get_help_option(ctx))


class Group(TyperGroup):
    """The ``streamreg`` group (and ``streamreg job``): plain help, a pointer to each command's,
    and — run standalone, as the console script or typer's test runner does — usage errors
    in the house's one-line style (see :func:`run_command`)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        sys.exit(run_command(self, args, prog_name, complete_var=complete_var, **extra))

    def get_help_option(self, ctx):
        return help_flag(super().get_help_option(ctx))

    def list_commands(self, ctx) -> list[str]:
        # The commands people start with first; any others after them, as registered.
        names = super().list_commands(ctx)
        first = [name for name in COMMAND_ORDER if name in names]
        return first + [name for name in names if name not in first]

    def format_help(self, ctx, formatter) -> None:
        self.format_usage(ctx, formatter)
        Command.format_help_text(self, ctx, formatter)
        rows = [_record(p, ctx) for p in self.get_params(ctx) if not getattr(p, "hidden", False)]
        if rows:
            with formatter.section("Options"):
                formatter.write_dl(rows)
        self.format_commands(ctx, formatter)
        Command.format_epilog(self, ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(
            f"Run '{ctx.command_path} COMMAND --help' for its options and examples."
        )


def help_flag(option):
    """``--help`` with the default False, not None: typer checks a flag's value that is not a
    bool through a pydantic adapter, and importing pydantic would double the start-up time of
    every command (``streamreg fit --help`` processes the group's own ``--help`` first)."""
    if option is not None and option.default is None:
        option.default = False
    return option


def refuse_repeated(command, ctx, args: list[str]) -> None:
    """An option that takes one value may be given once (flags and repeatable options aside)."""
    try:
        _, _, order = command.make_parser(ctx).parse_args(args=list(args))
    except USAGE_ERROR as exc:
        if getattr(exc, "ctx", None) is None:
            exc.ctx = ctx  # so that the message can say which command's help to read
        raise
    counts = Counter(
        param
        for param in order
        if param.param_type_name == "option"
        and not getattr(param, "multiple", False)
        and not getattr(param, "is_flag", False)
        and not getattr(param, "count", False)
    )
    for param, count in counts.items():
        if count > 1:
            flag = max(param.opts, key=len)
            raise USAGE_ERROR(
                f"{flag} was given {count} times; it takes one value, so give it once.",
                ctx=ctx,
            )


def use_house_commands(app: typer.Typer) -> None:
    """Make every command registered on ``app`` (and its sub-apps) a :class:`Command`."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = Command
    for group in app.registered_groups:
        if group.cls in (None, TyperGroup) or isinstance(group.cls, DefaultPlaceholder):
            group.cls = Group
        use_house_commands(group.typer_instance)


def run(app: typer.Typer, args: list[str] | None = None, prog_name: str = "streamreg") -> int:
    """Run the command line in this process; return its exit code (nothing calls ``sys.exit``)."""
    return run_command(typer.main.get_command(app), args, prog_name)


def run_command(command, args: list[str] | None, prog_name: str | None, **extra) -> int:
    """Run ``command``; return its exit code. Usage errors become one line on stderr."""
    try:
        result = TyperGroup.main(
            command, args=args, prog_name=prog_name, standalone_mode=False, **extra
        )
    except CLICK_ERROR as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # ``streamreg`` alone: its help
            typer.echo(ctx.get_help())
            return 2
        typer.echo(f"streamreg: error: {usage_message(exc, ctx, args)}", err=True)
        return int(getattr(exc, "exit_code", 2) or 2)
    except typer.Abort:
        typer.echo("streamreg: interrupted; nothing was written.", err=True)
        return 130
    return result if isinstance(result, int) else 0


def usage_message(exc, ctx, args: list[str] | None = None) -> str:
    """click's message as one sentence of ours, with where to find help."""
    text = " ".join(str(exc.format_message()).split())
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    if not text.endswith((".", "?", "!")):
        text += "."
    return f"{text} See '{help_path(ctx, sys.argv[1:] if args is None else args)} --help'."


def help_path(ctx, args: list[str]) -> str:
    """The command whose help fits an error: the error's own, or the subcommand named in
    ``args`` when the parser failed before reaching it (``streamreg fit --target``)."""
    if ctx is None:
        return "streamreg"
    path, command = ctx.command_path, ctx.command
    words = iter(args[len(path.split()) - 1 :] if " " in path else args)
    while isinstance(command, TyperGroup):
        name = next((w for w in words if not w.startswith("-")), None)
        sub = command.commands.get(name) if name else None
        if sub is None:
            break
        path, command = f"{path} {name}", sub
    return path
