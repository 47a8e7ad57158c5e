"""Command-line plumbing of the ``python -m vosjax.<tool>`` modules (convert, export, erf).

Each tool defines its absl flags in a function, on a fresh :class:`absl.flags.FlagValues`, and
parses its ``argv`` with :func:`parse`; importing a tool defines no global flag, and its
``main([...])`` can run any number of times in one process::

    def define_flags() -> flags.FlagValues:
        fv = flags.FlagValues()
        flags.DEFINE_string("out", None, "output folder", required=True, flag_values=fv)
        cli.define_size("size", "240x427", "working size HxW", flag_values=fv)
        return fv

    def main(argv=None) -> int:
        args = define_flags()
        cli.parse(args, argv, prog="python -m vosjax.tool", description="...")
        ... args.out, args.size ...

Flag names are absl's: underscores (``--num_slots``), booleans as ``--flag`` / ``--noflag``,
lists as ``--platforms=cpu,cuda``, frame sizes as ``--size=HxW`` (as in ``benchmarks/``).
``--help`` (``-h``, ``-?``, ``--helpshort``) prints the tool's flags and ``--helpfull`` adds
absl's ``--flagfile`` / ``--undefok``, both exiting 0; a bad command line (an unknown flag, a
missing or malformed value) prints ``PROG: error: ...`` naming the flag and exits 2, before
anything is read or written.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from absl import flags


def parse_size(text: str, min_side: int = 1) -> tuple[int, int]:
    """``"240x427"`` -> ``(240, 427)`` (height x width); ``ValueError`` when malformed or a
    side is below ``min_side``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected HxW, e.g. 240x427, got {text!r}") from None
    if h < min_side or w < min_side:
        raise ValueError(f"must be at least {min_side}x{min_side}, got {text!r}")
    return h, w


class SizeParser(flags.ArgumentParser):
    """absl parser of ``HxW`` frame sizes (value ``(H, W)``)."""

    syntactic_help = "HxW, e.g. 240x427"

    def __init__(self, min_side: int = 1):
        self.min_side = min_side

    def parse(self, argument):
        if isinstance(argument, tuple):
            return argument
        return parse_size(argument, self.min_side)

    def flag_type(self) -> str:
        return "size"


class _SizeSerializer(flags.ArgumentSerializer):
    def serialize(self, value) -> str:
        return f"{value[0]}x{value[1]}"


def define_size(name: str, default: str | None, help: str, *,  # noqa: A002
                flag_values: flags.FlagValues, min_side: int = 1, **kwargs):
    """``--<name>=HxW`` on ``flag_values``; the parsed value is ``(H, W)``."""
    return flags.DEFINE(SizeParser(min_side), name, default, help, flag_values=flag_values,
                        serializer=_SizeSerializer(), **kwargs)


class _HelpFlag(flags.BooleanFlag):
    """``--help`` & co. on a private FlagValues: print its flags to stdout and exit 0 as soon
    as the flag is read (before the required flags are checked)."""

    def __init__(self, name: str, short_name: str | None, text: str, show):
        super().__init__(name, False, text, short_name=short_name)
        self._show = show

    def parse(self, argument):
        if self._parse(argument):
            self._show()
            raise SystemExit(0)
        self.value = False


def _define_help(fv: flags.FlagValues, prog: str, description: str, usage: str) -> None:
    help_module = __name__

    def show(full: bool):
        def _print():
            print(f"{description}\n\nUSAGE: {prog} {usage}".rstrip())
            if full:
                print(fv.get_help())
            else:
                for module in sorted(fv.flags_by_module_dict()):
                    if module != help_module:
                        print(fv.module_help(module))
                print("\nTry --helpfull to also see --flagfile, --undefok and the help flags.")
        return _print

    for name, short, text, full in (("help", "?", "show this help", False),
                                    ("helpshort", "h", "show this help", False),
                                    ("helpfull", None, "show full help", True)):
        flags.DEFINE_flag(_HelpFlag(name, short, text, show(full)), flag_values=fv,
                          module_name=help_module)


def parse(fv: flags.FlagValues, argv: Sequence[str] | None, *, prog: str, description: str,
          positional: Sequence[str] = ()) -> list[str]:
    """Parse ``argv`` (``sys.argv[1:]`` when None) into ``fv``; return the positional
    arguments, exactly one per name in ``positional``.

    ``--help`` / ``--helpfull`` print the flags and exit 0; any error on the command line
    prints ``PROG: error: ...`` to stderr and exits 2.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = " ".join(["[flags]", *positional])
    _define_help(fv, prog, description, usage)
    try:
        rest = fv([prog, *argv])[1:]
        if len(rest) > len(positional):
            raise flags.Error(f"unexpected arguments: {' '.join(rest[len(positional):])}")
        if len(rest) < len(positional):
            raise flags.Error(f"missing {' '.join(positional[len(rest):])} (USAGE: {prog} "
                              f"{usage})")
    except flags.Error as e:
        print(f"{prog}: error: {e}\nPass --help to see the flags.", file=sys.stderr)
        raise SystemExit(2) from None
    return rest
