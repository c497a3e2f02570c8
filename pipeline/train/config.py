"""How a training run's settings are declared: once, as fields of a dataclass (reward_config.py,
ppo_config.py), each made with `setting()`. From that one table come

- the `rlaif train <kind>` options (pipeline/commands/train_cmds.py): `--field-name`, plus the
  older flag names given in `flags`;
- the TRL trainer's arguments (`trl_kwargs`): every field marked `trl=True` is passed to TRL's
  RewardConfig / PPOConfig under the same name;
- the Training page's widgets (app/views/training.py), for fields given a `Widget`;
- the `python -m pipeline.train.<kind> --config run.yaml [--field value]` parser (`parse_args`).

So a new TRL option is one `setting(..., trl=True)` line. Only the standard library (and yaml,
when a file is read) is imported here: the CLI builds its options from this at start-up.
"""

from __future__ import annotations

import argparse
import functools
import types
import typing
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.errors import UserError


@dataclass(frozen=True)
class Widget:
    """A field's input on the Training page: label, widget key, bounds, number format, and the
    options of a select box for a text field."""

    label: str
    key: str
    low: float | None = None
    high: float | None = None
    format: str | None = None
    options: tuple[str, ...] = ()


def setting(
    default: Any,
    help: str,
    *,
    trl: bool = False,
    flags: tuple[str, ...] = (),
    widget: Widget | None = None,
    cli: bool = True,
) -> Any:
    """One field of a run config. `flags`: older CLI names kept as aliases; `cli=False` keeps a
    field off the command line (set by the job runner)."""
    metadata = {"help": help, "trl": trl, "flags": flags, "widget": widget, "cli": cli}
    return field(default=default, metadata=metadata)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a config class (its module uses `from __future__ import
    annotations`, so `Field.type` is a string)."""
    return typing.get_type_hints(cls)


def base_type(annotation: Any) -> Any:
    """int / float / str / bool / Literal[...] without the `| None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def choices(cls: type, name: str) -> tuple[str, ...]:
    kind = base_type(field_types(cls)[name])
    return typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()


def check_choices(config: Any) -> None:
    """ValueError when a Literal field holds a value outside its choices."""
    for item in fields(config):
        allowed = choices(type(config), item.name)
        if allowed and getattr(config, item.name) not in allowed:
            value = getattr(config, item.name)
            raise ValueError(f"{item.name} must be one of {allowed}, not {value!r}")


def cli_fields(cls: type) -> list[Field]:
    return [f for f in fields(cls) if f.metadata.get("cli", True)]


def flag_names(item: Field) -> tuple[str, ...]:
    """The older, shorter names in `flags` (shown first), then `--field-name`."""
    return (*item.metadata.get("flags", ()), f"--{item.name.replace('_', '-')}")


def widget_fields(cls: type) -> list[Field]:
    return [f for f in fields(cls) if f.metadata.get("widget") is not None]


def trl_kwargs(config: Any) -> dict[str, Any]:
    """The fields passed to the TRL trainer's config, under their own names."""
    return {f.name: getattr(config, f.name) for f in fields(config) if f.metadata.get("trl")}


def check_models(config: Any, names: tuple[str, ...]) -> None:
    """UserError when a model field names no bundled model, folder or cached hub model."""
    from pipeline.models import check

    for name in names:
        value = getattr(config, name)
        if value:
            check(value)


def load_yaml(path: Path | None) -> dict[str, Any]:
    """A YAML mapping of setting: value; any problem is a one-line UserError."""
    if path is None:
        return {}
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a YAML mapping of setting: value")
    return data


def build(cls: type, values: dict[str, Any]) -> Any:
    """The config from a mapping; an unknown setting or a bad value is a UserError."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown setting(s): {', '.join(unknown)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise UserError(f"bad config: {error}") from None


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def parse_args(cls: type, argv: list[str] | None) -> Any:
    """`--config run.yaml` and `--field value` flags (they win over the file) -> config."""
    parser = argparse.ArgumentParser(description=cls.__doc__)
    parser.add_argument("--config", type=Path, default=None, help="YAML file of the settings.")
    for item in fields(cls):
        kind = base_type(field_types(cls)[item.name])
        pick = choices(cls, item.name)
        convert = _parse_bool if kind is bool else (str if pick else kind)
        parser.add_argument(
            *dict.fromkeys((f"--{item.name}", *flag_names(item))),
            dest=item.name,
            type=convert,
            choices=pick or None,
            default=argparse.SUPPRESS,
            help=item.metadata.get("help"),
        )
    given = vars(parser.parse_args(argv))
    return build(cls, {**load_yaml(given.pop("config")), **given})
