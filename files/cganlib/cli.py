"""Command-line plumbing every script shares: a parser whose errors are one line with exit
status 2, flag types that check a number's range (NaN and infinity included), a memory check
for sizes that cannot fit, and the exit statuses."""

import argparse
import math
from contextlib import contextmanager

import psutil

from cganlib.storage import InputError, fail

EXIT_BAD_INPUT = 2
EXIT_TOO_MANY_REBUILDS = 3  # training: the collapse guard gave up; the epoch's models are saved
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it
SEED_MAX = 2**32 - 1  # NumPy's legacy seeding, which Keras's set_random_seed calls, takes no more


@contextmanager
def one_line_errors():
    """Bad input inside reported as `<script>: error: <message>`, status 2: a script's main runs in it."""
    try:
        yield
    except InputError as e:
        fail(str(e), status=EXIT_BAD_INPUT)


def shown(value):
    """A flag's value as it reads in a message: on or off for a switch, none when unset."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else value


class Parser(argparse.ArgumentParser):
    """argparse with the script's docstring as its help, and one-line errors: `<script>: error:
    <message>`, status 2, without the usage block argparse prints by default."""

    def __init__(self, doc, **kwargs):
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message):
        fail(message.removeprefix("argument "))  # "--seed: must be ...", as the scripts' own checks read


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


def check_memory(n_bytes, what):
    """InputError when n_bytes cannot fit in the memory this machine has free now."""
    free = psutil.virtual_memory().available
    if n_bytes > free:
        raise InputError(f"{what} would need {_size(n_bytes)} of memory; {_size(free)} is free")


def _size(n_bytes):
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1000 or unit == "PB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
