"""Command-line plumbing every script shares: a parser whose help shows each flag's default and
whose errors are one line with exit status 2, the same one line for bad input found later,
flag types that check a number's range (NaN and infinity included), a memory check for sizes
that cannot fit (storage.check_memory), and the exit statuses."""

import argparse
import math
import signal
from contextlib import contextmanager

from tqdm import tqdm

from cganlib.storage import EXIT_BAD_INPUT, InputError, check_memory, fail  # noqa: F401  (cli.check_memory: the scripts' name for it)

# exit statuses besides 0 and EXIT_BAD_INPUT (2, bad input: the one-line error)
EXIT_FAILED = 1  # the machine failed a read or write: a full disk, a folder gone or made read-only
EXIT_TOO_MANY_REBUILDS = 3  # training: the collapse guard gave up; the epoch's models are saved
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it
EXIT_TERMINATED = 143  # SIGTERM (kill), as a shell reports it
SEED_MAX = 2**32 - 1  # NumPy's legacy seeding, which Keras's set_random_seed calls, takes no more


def shown(value):
    """A flag's value as it reads in a message: on or off for a switch, none when unset."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else value


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The script's docstring as written, and after each flag's help its default, unless the
    help says it already (a default worked out later, like `<data_dir>/results`, is said in
    words). Switches (off unless given) and flags without a default show none."""

    def _get_help_string(self, action):
        text = action.help or ""
        no_default = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or action.required or no_default:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with the script's docstring as its help, each flag's default in its help, and
    one-line errors: `<script>: error: <message>`, status 2, without the usage block argparse
    prints by default."""

    def __init__(self, doc, **kwargs):
        super().__init__(description=doc, formatter_class=HelpFormatter, **kwargs)

    def error(self, message):
        fail(message.removeprefix("argument "), EXIT_BAD_INPUT)  # "--seed: must be ...", as the scripts' own checks read


@contextmanager
def exit_on_bad_input():
    """Around a script's work: it ends in one line `<script>: error: <message>`, never a
    traceback. Bad input found there (InputError) ends it as a bad flag does, with
    EXIT_BAD_INPUT; a read or write the machine failed (OSError) with EXIT_FAILED; Ctrl-C with
    EXIT_INTERRUPTED; SIGTERM (`kill`) with EXIT_TERMINATED, as an exception, so that the file
    being written is removed on the way out. Files are written atomically (storage.atomic_write),
    so none is left half-written; a SIGKILL's temporary file goes at the next write of its name."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    except InputError as e:
        fail(str(e), EXIT_BAD_INPUT)
    except OSError as e:
        where, why = os_error_parts(e)
        fail(f"{where}: {why}" if where else why, EXIT_FAILED)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame):
    raise SystemExit(EXIT_TERMINATED)


def os_error_parts(error):
    """(the file, why) of an OSError, each on one line: h5py's and others' messages span several."""
    where = error.filename2 or error.filename
    return where, " ".join((error.strerror or str(error)).split())


def print_beside_bars(line):
    """Print a line while tqdm bars run: the bars step aside and the line is flushed before they
    are drawn again, so it stands whole on its own line also where stdout and stderr go to one
    pipe or log (where stdout is buffered, a plain tqdm.write's line would come out later,
    inside a bar's line)."""
    with tqdm.external_write_mode():
        print(line, flush=True)


def _range_text(low, high, low_open, high_open):
    low, high = (f"{end:g}" if isinstance(end, float) else end for end in (low, high))
    if high is None:
        return f"{'above' if low_open else 'at least'} {low}"
    if low is None:
        return f"{'below' if high_open else 'at most'} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def integer(low=None, high=None):
    """An argparse type: an int within [low, high] (either end may be None)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_range_text(low, high, False, False)}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a finite float within low..high, each end closed unless said open."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or below or above:
            raise argparse.ArgumentTypeError(f"must be {_range_text(low, high, low_open, high_open)}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def comma_list(choices):
    """An argparse type: some of choices joined by commas, returned in choices' order."""

    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}: choose from {', '.join(choices)}")
        return ",".join(name for name in choices if name in names)

    parse.__name__ = "comma_list"
    return parse


SEED = integer(0, SEED_MAX)
POSITIVE = integer(1)
RATE = number(0, 1, low_open=True)  # a learning rate
BETA = number(0, 1, high_open=True)  # an Adam(ax) beta


# ---------------------------------------------------------------- values read back, by the flags' rules

KIND_NAMES = {"integer": "a whole number", "number": "a number"}  # the flag types, as a refusal names them


def refusal(action, value):
    """Why the command line would refuse value for this flag (an argparse action), or None."""
    if value is None:
        return None if not action.required else "must be given"
    if action.nargs == 0:  # a switch
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if action.choices:
        return None if value in action.choices else f"must be one of {', '.join(action.choices)}, got {value!r}"
    return type_refusal(action.type, value)


def type_refusal(parse, value):
    """Why an argparse type function (cli.integer, cli.number, ...; None for text) refuses value."""
    kind = getattr(parse, "__name__", None)
    wanted = {"integer": (int,), "number": (int, float)}.get(kind, (str,))
    if isinstance(value, bool) or not isinstance(value, wanted):
        return f"must be {KIND_NAMES.get(kind, 'text')}, got {value!r}"
    try:
        if parse:
            parse(str(value))
    except argparse.ArgumentTypeError as e:
        return str(e)
    return None


def check_recorded(values, rules, path, section):
    """InputError naming the value when one of run_config.json's `section` values breaks the rule
    its flag has on the command line (rules: {name: argparse action or type function}); n_batch
    must be even, as parse_args says."""
    for name, value in values.items():
        rule = rules.get(name)
        if rule is None:
            continue
        problem = refusal(rule, value) if isinstance(rule, argparse.Action) else type_refusal(rule, value)
        if problem is None and name == "n_batch" and value % 2:
            problem = f"must be even (two half batches), got {value}"
        if problem:
            raise InputError(f'{path}: {section} "{name}" {problem}; the command line refuses it too')
