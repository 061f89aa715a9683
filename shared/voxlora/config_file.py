"""``--config FILE``: every option of a command from a YAML, TOML or JSON file; flags override it.

One click option, `config_option`, for any voxlora command. The file is read before the other
options (an eager option) and becomes click's ``default_map``, so a flag given on the command line
wins over the file, and the file over the built-in default::

    # run.yaml                          # run.toml                   # run.json
    model: sesame/csm-1b                model = "sesame/csm-1b"      {"model": "sesame/csm-1b",
    manifest: train.jsonl               manifest = "train.jsonl"      "max_steps": 500}
    max_steps: 500                      max_steps = 500
    targets: [q_proj, v_proj]           targets = "attn"

Keys are the long option names, with ``-`` or ``_`` (``max-steps``, ``max_steps``). A list is fine
where the option is a comma-separated list (``targets``) or repeatable (``context``). An unknown
key, or a value of the wrong type, is one line naming the file and the key:
``Error: run.yaml: unknown key 'max_step' (there is no --max-step option)``,
``Error: run.yaml: 'lr' must be a number, got 'fast'``.

A command can pass ``translate`` to accept its own records as configs: lora-train reads its
``voxlora-train.json`` (the resolved settings of a run), so a run can be replayed from it.
"""

import json
from collections.abc import Callable
from pathlib import Path

import click

SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".json": "JSON"}


class ConfigFileError(click.ClickException):
    """A bad config file: ``Error: FILE: what`` and exit 1 (a bad file, like a bad manifest)."""


def read_config_file(path) -> dict:
    """The mapping a YAML, TOML or JSON file holds (chosen by suffix), or a one-line error."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigFileError(f"{path}: a config file ends in .yaml, .yml, .toml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigFileError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    try:
        if kind == "JSON":
            data = json.loads(text)
        elif kind == "TOML":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)  # safe_load: plain data only, never objects
    except Exception as e:
        where = _where(e)
        raise ConfigFileError(f"{path}{where}: invalid {kind} ({_first_line(e)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: must hold a mapping of option names to values, not a {_kind(data)}")
    return data


def _where(e: Exception) -> str:
    line = getattr(e, "lineno", None)  # json.JSONDecodeError, tomllib (3.11 has no lineno)
    mark = getattr(e, "problem_mark", None)  # yaml.MarkedYAMLError
    if mark is not None:
        line = mark.line + 1
    return f":{line}" if line else ""


def _first_line(e: Exception) -> str:
    text = getattr(e, "problem", None) or getattr(e, "msg", None) or str(e)
    return " ".join(str(text).split()) or type(e).__name__


def _kind(value) -> str:
    return {
        dict: "mapping",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
    }.get(type(value), type(value).__name__)


def _options(command: click.Command) -> dict[str, click.Option]:
    """Option by every name a file may use for it: ``max_steps``, ``max-steps`` (and its dest)."""
    found = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in (None, "config_file", "help"):
            continue
        for decl in param.opts:
            if decl.startswith("--"):
                found[decl[2:]] = found[decl[2:].replace("-", "_")] = param
        found[param.name] = param
    return found


def _check(param: click.Option, key: str, value, path, ctx):
    """``value`` converted by the option's own type, or a one-line error naming the key and the type."""
    if param.multiple:
        values = value if isinstance(value, list) else [value]
        return tuple(_check_one(param, key, v, path, ctx) for v in values)
    if isinstance(value, list) and not param.is_flag:  # a comma-separated option (--targets)
        if not all(isinstance(v, str) for v in value):
            raise ConfigFileError(f"{path}: {key!r} must be a list of names, got {value!r}")
        value = ",".join(value)
    return _check_one(param, key, value, path, ctx)


def _check_one(param: click.Option, key: str, value, path, ctx):
    if value is None:
        return None
    kind = param.type
    if param.is_flag:
        expected, ok = "true or false", isinstance(value, bool)
    elif isinstance(kind, click.types.IntParamType):
        expected, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(kind, click.types.FloatParamType):
        expected, ok = "a number", isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(kind, click.Choice):
        expected, ok = "one of " + ", ".join(map(str, kind.choices)), value in kind.choices
    else:  # strings and paths
        expected, ok = "a string", isinstance(value, str)
    if not ok:
        raise ConfigFileError(f"{path}: {key!r} must be {expected}, got {value!r}")
    if param.is_flag:
        return value
    try:
        return kind.convert(value, param, ctx)  # ranges, paths: click's own checks
    except click.BadParameter as e:
        raise ConfigFileError(f"{path}: {key!r}: {e.message}") from None


def defaults_from(command: click.Command, data: dict, path, ctx=None) -> dict:
    """``data`` (a config file's mapping) as a click ``default_map`` for ``command``, every key checked."""
    options = _options(command)
    out = {}
    for key, value in data.items():
        param = options.get(str(key))
        if param is None:
            flag = "--" + str(key).replace("_", "-")
            raise ConfigFileError(f"{path}: unknown key {key!r} (there is no {flag} option)")
        out[param.name] = _check(param, key, value, path, ctx)
    return out


def config_option(translate: Callable[[dict, str], dict] | None = None):
    """``--config FILE`` on a click command: option defaults from the file; command-line flags win.

    ``translate(data, path)`` may reshape the file's mapping first (e.g. a run record into options).
    """

    def load(ctx: click.Context, param, value):
        if value is None or ctx.resilient_parsing:
            return
        data = read_config_file(value)
        if translate is not None:
            from voxlora.errors import VoxloraError

            try:
                data = translate(data, value)
            except VoxloraError as e:
                raise ConfigFileError(str(e)) from None
        ctx.default_map = {**(ctx.default_map or {}), **defaults_from(ctx.command, data, value, ctx)}
        ctx.meta["voxlora.config_file"] = value

    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        is_eager=True,
        expose_value=False,
        callback=load,
        help="Options from a YAML, TOML or JSON file (keys: option names); flags given here override it.",
    )
