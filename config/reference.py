"""`python -m config.reference`: the config reference, generated from the schema.

The schema's field docstrings are the only place settings are described; this renders them
as Markdown (docs/config-reference.md, kept equal to this output by a test) so the
documentation cannot drift from what the loader accepts.
"""

from __future__ import annotations

import enum
import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from config import schema
from config.durations import Duration

INTRO = """\
# Configuration reference

<!-- Generated from config/schema.py by `python -m config.reference` (`make docs`). Do not edit. -->

spendgate reads one YAML file (`make run` uses `config/example.yaml`). Section and key names
follow LiteLLM's proxy config, so LiteLLM's budget and alert settings carry over.

- Any value written `os.environ/NAME` is replaced by the environment variable `NAME`; an unset
  variable is an error. Use it for every credential.
- Durations are a whole number followed by `s`, `m`, `h`, `d` or `mo`: `30s`, `15m`, `12h`,
  `1d`, `7d`, `30d`, `1mo`.
- Unknown keys are errors, and all problems are reported at once, each under its key path.
- Secrets print as `**********` in logs, errors and the admin API's `GET /config`.
- An empty file gives every default below.
"""

_BASE_NAMES: dict[Any, str] = {
    float: "number",
    int: "integer",
    bool: "boolean",
    str: "string",
    SecretStr: "secret string",
    Duration: "duration",
}
_ALIASES = [(schema.EmailAddress, "email address"), (schema.Host, "host or host:port")]
_BOUNDS = {
    annotated_types.Gt: ("gt", ">"),
    annotated_types.Ge: ("ge", "≥"),
    annotated_types.Lt: ("lt", "<"),
    annotated_types.Le: ("le", "≤"),
}
_DICT_KEY = {"pricing": "<model>"}  # placeholder for a mapping's keys in key paths (default <name>)


def render() -> str:
    """The whole reference as Markdown."""
    lines = [INTRO]
    for name, field in schema.SpendgateConfig.model_fields.items():
        model, path = _nested(name, field.annotation) or (None, name)
        lines += [f"## `{path}`", "", _text(field.description), ""]
        if model is not None:
            lines += _section(model, path, level=3)
    return "\n".join(lines).rstrip() + "\n"


def _section(model: type[BaseModel], path: str, level: int) -> list[str]:
    """A model's docstring, a table of its keys, then a sub-section per nested model."""
    lines = [_text(model.__doc__), "", "| Key | Type | Default | Description |", "|---|---|---|---|"]
    nested = []
    fields = sorted(model.model_fields.items(), key=lambda item: not item[1].is_required())
    for name, field in fields:
        key = f"{path}.{name}"
        lines.append(f"| `{key}` | {_cell(_type(field.annotation, field.metadata))} | {_cell(_default(model, field))} "
                     f"| {_cell(_text(field.description))} |")
        if inner := _nested(key, field.annotation):
            nested.append(inner)
    lines.append("")
    for inner_model, inner_path in nested:
        lines += [f"{'#' * level} `{inner_path}`", ""] + _section(inner_model, inner_path, level + 1)
    return lines


def _nested(path: str, annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model a field holds (directly, as list items or mapping values) and its key path."""
    if _is_model(annotation):
        return annotation, path
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and _is_model(args[0]):
        return args[0], f"{path}[]"
    if origin is dict and _is_model(args[1]):
        return args[1], f"{path}.{_DICT_KEY.get(path, '<name>')}"
    return None


def _type(annotation: Any, metadata: list[Any] = ()) -> str:  # type: ignore[assignment]
    """A YAML-minded type name, with numeric bounds (`number ≥ 0`)."""
    bounds = _bounds(metadata)
    for alias, alias_name in _ALIASES:
        if annotation == alias:
            return alias_name
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0], [*metadata, *args[1:]])
    if origin in (Union, types.UnionType):
        return " or ".join(_type(arg, metadata) for arg in args if arg is not type(None))
    if origin is Literal:
        return "one of " + _choices(args)
    if origin is list:
        if _is_model(args[0]):
            return "list of mappings (below)"
        item = get_args(args[0]) if get_origin(args[0]) is Literal else None
        return "list of " + (_choices(item) if item else _type(args[0]))
    if origin is dict:
        return f"mapping of {_type(args[0])} → {_type(args[1])}"
    if _is_model(annotation):
        return "mapping (below)"
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return "one of " + _choices(tuple(annotation))
    return _BASE_NAMES[annotation] + bounds


def _bounds(metadata: list[Any]) -> str:
    found = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            found += item.metadata
        else:
            found.append(item)
    parts = [
        f"{_BOUNDS[type(bound)][1]} {getattr(bound, _BOUNDS[type(bound)][0])}"
        for bound in found
        if type(bound) in _BOUNDS
    ]
    return (" " + ", ".join(parts)) if parts else ""


def _choices(values: tuple[Any, ...]) -> str:
    return ", ".join(f"`{value}`" for value in values)


def _default(model: type[BaseModel], field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if note := getattr(model, "doc_default", None):
        return note
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "`{}`"
    return f"`{json.dumps(value)}`"


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _text(text: str | None) -> str:
    return " ".join((text or "").split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":
    print(render(), end="")
