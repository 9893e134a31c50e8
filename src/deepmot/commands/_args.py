"""Argument types and checks shared by the commands: every user mistake is caught here, before
any work starts, and reported as one line naming the argument.

The ``type=`` functions raise :class:`argparse.ArgumentTypeError`; argparse prefixes the
argument's name (``argument --iterations: must be an integer >= 1, got 0``) and the CLI's
parser prints that one line and exits with code 2. Checks that need more than the text of one
argument (a device that must exist, a run folder that must not hold a run) raise
:class:`~deepmot.errors.DeepMOTError`, which the CLI reports the same way.

Standard library only, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from deepmot.errors import DeepMOTError

# Which extra of pyproject.toml brings each optional module a command may import.
_EXTRAS = {
    "torch": "train",
    "torchvision": "train",
    "optuna": "train",
    "torchmetrics": "train",
    "pycocotools": "train",
    "safetensors": "train",
    "cv2": "images",
    "matplotlib": "plots",
}

__all__ = [
    "DET_FILE_HELP",
    "ListAction",
    "SEQUENCES_HELP",
    "HelpFormatter",
    "check_device",
    "device",
    "existing_dir",
    "existing_file",
    "existing_path",
    "float_at_least",
    "int_at_least",
    "missing_extra_message",
    "key_value",
    "output_dir",
    "output_file",
    "positive_float",
    "probability",
]


#: ``--sequences`` of every command that reads sequence folders: names or prefixes.
SEQUENCES_HELP = (
    "only these sequences: a name, or the start of names (MOT17-02 chooses MOT17-02-FRCNN "
    "and MOT17-02-SDP; MOT17 every MOT17 sequence)"
)
#: ``--det-file`` of every command that reads detections: one rule everywhere.
DET_FILE_HELP = (
    "the detection file in each sequence's det/ (default: det.txt where present, else the "
    "folder's only file; several and no det.txt is an error listing them)"
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default after its help, unless the default is None or False (then the
    help says what happens without the option)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """One line saying which extra to install for a module a plain ``pip install`` leaves out,
    or None when the missing module is not one of them (a real bug: let it surface)."""
    module = (error.name or "").partition(".")[0]
    extra = _EXTRAS.get(module)
    if extra is None:
        return None
    return (
        f"needs {module}, which the core install leaves out: pip install 'deepmot[{extra}]' "
        f"(from a checkout: pip install '.[{extra}]')"
    )


class ListAction(argparse.Action):
    """A flag that prints a listing and exits, whatever else the command requires (as
    ``--version`` does): ``add_argument("--list-trackers", action=ListAction, lister=f)``
    with ``f() -> list[str]``. A listing that needs a missing extra is the CLI's one line."""

    def __init__(self, option_strings: list[str], dest: str, lister: Callable, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.lister = lister

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        try:
            lines = self.lister()
        except ModuleNotFoundError as error:
            message = missing_extra_message(error)
            if message is None:
                raise
            parser.exit(2, f"{parser.prog}: error: {message}\n")
        print("\n".join(lines))
        parser.exit(0)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number ``> 0``."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def float_at_least(minimum: float) -> Callable[[str], float]:
    """A finite number ``>= minimum``."""

    def parse(text: str) -> float:
        value = _float(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a number >= {minimum:g}, got {text}")
        return value

    parse.__name__ = f"number >= {minimum:g}"
    return parse


def probability(text: str) -> float:
    """A number in ``[0, 1]``."""
    value = _float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def existing_dir(text: str) -> Path:
    """A folder that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    return path


def existing_file(text: str) -> Path:
    """A file that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, not a file")
    return path


def output_dir(text: str) -> Path:
    """A folder to write into: one that exists or can be made (no file in the way)."""
    path = Path(text)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                where = "" if parent == path else f" (its parent {parent} is a file)"
                raise argparse.ArgumentTypeError(
                    f"{text}: is a file, not a folder{where}; choose a folder name"
                )
            break
    return path


def output_file(text: str) -> Path:
    """A file to write: not a folder, and no file in the way of its folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file name")
    output_dir(str(path.parent))
    return path


_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def device(text: str) -> str:
    """A device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it exists is checked
    by :func:`check_device` when the command runs)."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def check_device(name: str, option: str = "--device") -> None:
    """Raise :class:`DeepMOTError` unless ``name`` is a device this machine has (imports
    torch)."""
    import torch

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeepMOTError(
                f"{option} {name}: CUDA is not available on this machine (torch "
                f"{torch.__version__}); use {option} cpu"
            )
        index = int(name.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise DeepMOTError(
                f"{option} {name}: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
    elif name == "mps" and not torch.backends.mps.is_available():
        raise DeepMOTError(f"{option} mps: MPS is not available on this machine; use {option} cpu")


def existing_path(text: str) -> Path:
    """A file or folder that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return path


def key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE``; VALUE is read as JSON (``30``, ``0.5``, ``true``, ``null``, ``[0, 1]``,
    ``"dhn:seq_gru"``: text in double quotes)."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: VALUE must be JSON: a number, true, false, null, a list or text in "
            "double quotes (in a shell: 'KEY=\"text\"')"
        ) from None


def check_resumed_options(
    args: argparse.Namespace,
    settings: dict[str, str],
    defaults: dict[str, object],
    new_values: Callable[[], dict],
    stored_values: dict,
    where: Path,
    may_change: str,
) -> None:
    """A resumed run keeps its settings: an option given with ``--resume`` that would change
    one is a :class:`DeepMOTError` naming it and the stored value (rather than silently
    ignored).

    Args:
        settings: option dest -> dotted path of its value in the config's ``to_dict()``.
        defaults: the parser's defaults; an option at its default was not given.
        new_values: builds the config the given options describe, as a dict (called only when
            some option was given).
        stored_values: the stored config as a dict.
        may_change: the options that may change, for the message.
    """
    given = [dest for dest in settings if getattr(args, dest) != defaults.get(dest)]
    if not given:
        return
    new = new_values()

    def get(values: dict, path: str) -> object:
        for key in path.split("."):
            values = values[key]
        return list(values) if isinstance(values, tuple) else values

    differ = []
    for dest in given:
        option, path = "--" + dest.replace("_", "-"), settings[dest]
        if get(new, path) != get(stored_values, path):
            value = getattr(args, dest)
            shown = option if isinstance(value, bool) else f"{option} {value}"
            differ.append(f"{shown} (stored: {get(stored_values, path)})")
    if differ:
        raise DeepMOTError(
            f"--resume continues {where} with its stored settings; these options would change "
            f"them: {'; '.join(differ)}. Only {may_change} may change (or start a new run with "
            "another --out)"
        )
