"""The ``backstage`` console script: an Invoke program over the same tasks as ``fab``."""

import os
import re
import sys
from contextlib import contextmanager

from invoke import Exit, ParseError, Program

from backstage import __version__
from backstage.errors import UsageError, did_you_mean
from backstage.tasks import ns, tasks

# Invoke's core options that mean something here. The others (--pty, --hide, --dry, --echo,
# --warn-only, --prompt-for-sudo-password, --config...) set up Invoke's own run(), which no
# task of Backstage uses: they are neither listed nor accepted.
CORE_OPTIONS = {"help", "list", "list-format", "version", "complete", "print-completion-script"}


class BackstageProgram(Program):
    """Invoke's Program, with its command-line errors as one line and exit code 2, like every
    usage error of Backstage (Invoke prints them bare and exits 1), and only the core options
    that apply."""

    def parse_core(self, argv):
        with usage_errors(self):
            super().parse_core(argv)
        for name, argument in self.args.items():
            if name not in CORE_OPTIONS and argument.got_value:
                raise Exit(f"backstage: error: unknown option --{name}",
                           code=UsageError.exit_code)

    def print_help(self):
        print(f"Usage: {self.binary} [--help|--list|--version] <task> [--task-options] ...")
        print("\nOptions:\n")
        self.print_columns([row for row in self.initial_context.help_tuples()
                            if set(re.findall(r"--([\w-]+)", row[0])) & CORE_OPTIONS])
        self.list_tasks()

    def parse_tasks(self):
        with usage_errors(self):
            super().parse_tasks()

    def parse_cleanup(self):
        with usage_errors(self):
            super().parse_cleanup()


@contextmanager
def usage_errors(program: Program):
    try:
        yield
    except ParseError as exc:
        raise Exit(f"backstage: error: {usage_message(exc, program)}",
                   code=UsageError.exit_code) from None


def usage_message(error: ParseError, program: Program) -> str:
    """Invoke's parse error, said the way Backstage says errors, with a suggestion for a typo."""
    text = str(error)
    task = getattr(error.context, "name", None)  # None: before any task (core options)
    if found := re.fullmatch(r"No idea what '(.*)' is!", text):
        word = found[1]
        if word.startswith("-"):
            flags = error.context.flags if error.context else program.initial_context.flags
            where = f"{task}: " if task else ""
            return f"{where}unknown option {word!r}" + did_you_mean(word, flags)
        suggestion = did_you_mean(word, ns.task_names)
        if task and not suggestion:
            return f"{task}: unexpected argument {word!r}"
        return f"unknown task {word!r}" + (suggestion or " (backstage --list shows the tasks)")
    if found := re.fullmatch(r"'(.*)' did not receive required positional arguments: (.*)", text):
        return f"{found[1]}: missing argument {found[2]}"
    if found := re.fullmatch(r"Flag <Argument: ([\w-]+).*> needed value and was not given one!",
                             text):
        return f"--{found[1].replace('_', '-')}: needs a value"
    return f"{task}: {text}" if task else text


program = BackstageProgram(namespace=ns, name="Backstage", binary="backstage",
                           version=__version__)


def help_first(argv: list[str]) -> list[str]:
    """``backstage TASK --help`` -> ``backstage --help TASK``.

    Invoke would otherwise take ``--help`` as the value of a task's positional argument
    (``deploy-act --help`` would deploy an act named "--help").
    """
    words = argv[1:]
    tasks = [w for w in words if w in ns.task_names or w in ns.tasks]
    if tasks and any(w in ("--help", "-h") for w in words[words.index(tasks[0]):]):
        return [argv[0], "--help", tasks[0]]
    return argv


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """Words after the first ``--`` (the command of ``manage``/``exec``), kept as given:
    Invoke would join them with spaces, losing their quoting."""
    if "--" not in argv:
        return argv, []
    at = argv.index("--")
    return argv[:at], argv[at + 1:]


def short_flags(argv: list[str]) -> list[str]:
    """``logs -f`` for ``logs --follow``, as ``tail -f`` (Invoke gives tasks no short flags
    of their own choosing)."""
    at = next((i for i, w in enumerate(argv) if w in ("logs", "log")), len(argv))
    return argv[:at] + ["--follow" if w == "-f" else w for w in argv[at:]]


# Tasks whose act may be left out. ``status`` and ``unlock`` take it with ``--act`` (so that
# ``fab status`` needs none); this program also takes it as their first word. ``deploy-act``'s
# is positional (Invoke insists on a value for it): an empty one stands in for ``--all``'s.
ACT_OPTION = {"status", "unlock"}
ACT_OR_ALL = "deploy-act"


def optional_acts(argv: list[str]) -> list[str]:
    """``status storefront`` -> ``status --act storefront``; ``deploy-act --all`` ->
    ``deploy-act '' --all``. An act is the first word after the task name that is neither an
    option nor an option's value."""
    tasks = [i for i, w in enumerate(argv) if w in ACT_OPTION or w == ACT_OR_ALL]
    if not tasks or any(w in ("--help", "-h") for w in argv[:tasks[0]]):
        return argv  # help on the task (see help_first), not a run of it
    task, start = argv[tasks[0]], tasks[0] + 1
    takes_value = {f"--{name}" for a in ns.tasks[task].get_arguments()
                   if a.kind is not bool for name in a.names}
    at = start
    while at < len(argv):
        word = argv[at]
        if word.startswith("--act"):
            return argv  # named with its option
        if not word.startswith("-"):
            if task == ACT_OR_ALL:
                return argv
            return [*argv[:at], "--act", *argv[at:]]
        at += 2 if word in takes_value else 1
    return [*argv[:start], "", *argv[start:]] if task == ACT_OR_ALL else argv


def main():
    argv, tasks.command_words[:] = split_command(sys.argv)
    argv = short_flags(argv)
    try:
        program.run(optional_acts(help_first(argv)))
    except BrokenPipeError:  # whoever read stdout stopped (`| head`): not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as Python's docs say
        sys.exit(1)
