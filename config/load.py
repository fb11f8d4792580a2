"""Reading a config file: YAML, `os.environ/NAME` substitution, validation, readable errors.

A config mistake should be fixed in one round trip, so every problem is reported at once,
each on its own line under its dotted key path. Error text never quotes a value that came
from the environment or a secret field: those are the credentials the config references.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.schema import SpendgateConfig

ENV_PREFIX = "os.environ/"

Loc = tuple[Any, ...]


class ConfigError(Exception):
    """An unusable config. `problems` holds one line per problem, each naming its key path
    (or file position); the message is a header line followed by those lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__("\n".join([f"invalid config {source} ({count}):", *problems]))


def load_config(path: str | os.PathLike[str]) -> SpendgateConfig:
    """Read, substitute and validate the YAML file at `path`; an empty file gives the defaults."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except UnicodeDecodeError as error:
        raise ConfigError(source, [f"not UTF-8 text (byte {error.start})"]) from None
    except OSError as error:
        raise ConfigError(source, [f"cannot read: {error.strerror}"]) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        raise ConfigError(source, [_yaml_problem(error)]) from None
    except yaml.YAMLError as error:
        raise ConfigError(source, [f"not valid YAML: {error}"]) from None
    return parse_config(data, source=source)


def parse_config(data: dict[str, Any] | None, source: str = "<config>") -> SpendgateConfig:
    """Validate an already-parsed config mapping (None: all defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"expected a mapping of sections at the top level, got {_kind(data)}"])
    from_env: dict[Loc, str] = {}
    unset: dict[Loc, str] = {}
    data = _substitute_env(data, (), from_env, unset)
    problems = [f"{_dotted(loc)}: environment variable {name} is not set" for loc, name in unset.items()]
    try:
        config = SpendgateConfig.model_validate(data)
    except ValidationError as error:
        problems += [
            _describe(detail, from_env)
            for detail in error.errors(include_url=False)
            if not any(_within(detail["loc"], loc) for loc in unset)  # already reported
        ]
    if problems:
        raise ConfigError(source, problems) from None
    return config


# --- os.environ/NAME ----------------------------------------------------------------------


def _substitute_env(node: Any, loc: Loc, from_env: dict[Loc, str], unset: dict[Loc, str]) -> Any:
    """Replace `os.environ/NAME` strings anywhere in the tree, noting where each came from."""
    if isinstance(node, dict):
        return {key: _substitute_env(value, (*loc, key), from_env, unset) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute_env(value, (*loc, index), from_env, unset) for index, value in enumerate(node)]
    if isinstance(node, str) and node.startswith(ENV_PREFIX):
        name = node.removeprefix(ENV_PREFIX)
        if name in os.environ:
            from_env[loc] = name
            return os.environ[name]
        unset[loc] = name
    return node


# --- messages -----------------------------------------------------------------------------

_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}

_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _describe(detail: Any, from_env: dict[Loc, str]) -> str:
    """One pydantic error as `dotted.path: message`, quoting the bad value only when it is safe."""
    loc, kind, value = tuple(detail["loc"]), detail["type"], detail["input"]
    ctx = detail.get("ctx") or {}
    env_name = next((name for at, name in from_env.items() if _within(at, loc) or _within(loc, at)), None)
    shown = f"the value of {ENV_PREFIX}{env_name}" if env_name else _show(value)
    if loc and loc[-1] == "[key]":
        loc, message = loc[:-1], f"key must be a string, got {_kind(value)}"
    elif kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required"
    elif kind == "string_type":  # secrets are strings: describe a wrong value, never quote it
        message = f"expected a string, got {_kind(value)}"
    elif kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {shown}"
    elif kind == "literal_error":
        message = f"expected {ctx['expected']}, got {shown}"
    elif kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        message = f"must be {words} {ctx[key]:g}, got {shown}"
    else:  # our own checks (durations, hosts, ...) and anything unforeseen
        message = detail["msg"].removeprefix("Value error, ")
        if env_name and isinstance(value, str) and value:
            message = message.replace(repr(value), shown).replace(value, shown)
    return f"{_dotted(loc)}: {message}"


def _within(loc: Loc, prefix: Loc) -> bool:
    return tuple(loc[: len(prefix)]) == tuple(prefix)


def _dotted(loc: Loc) -> str:
    """`('providers', 'vllm', 'host')` → `providers.vllm.host`; list items as `[0]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "." in str(part):
            text += f'["{part}"]'
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    return _kind(value)


# --- YAML ---------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: pasting a second `litellm_settings:` block
    would otherwise silently drop the first one's budget."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in first_line:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"duplicate key {key!r} (first at line {first_line[key] + 1})",
                        key_node.start_mark,
                    )
                first_line[key] = key_node.start_mark.line
            except TypeError:  # unhashable key: let SafeLoader report it
                pass
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    """Position and problem, without PyYAML's source snippet (the line may hold a secret)."""
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
    problem = error.problem or error.context or "invalid YAML"
    if error.context and error.problem and error.context_mark:
        problem += f" ({error.context} at line {error.context_mark.line + 1})"
    return f"{where}: {problem}"
