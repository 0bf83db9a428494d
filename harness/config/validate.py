"""Config data validated into typed objects, every problem an `InputError` at its line and field:
pydantic's errors, and what pydantic's lax mode lets through where a number goes. Lax mode takes
`true` for 1 and `.inf` past a bound like `gt=0`; YAML writes booleans as plainly as numbers, so a
boolean where a number goes is refused by name, in every section however it validates (the schema's
models, a training method's own config class, an engine's options): strings it turns into numbers
("3") are taken as they always were."""

from __future__ import annotations

import math
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from core.errors import InputError
from harness.config.strict_yaml import At, line_of

Model = TypeVar("Model", bound=BaseModel)

NOT_A_BOOL = "expected a number, got a boolean (true/false)"
_PARSING = {"int_parsing", "float_parsing", "int_from_float"}  # pydantic's: a string that is no number
_MISSING = object()


def validate(model: type[Model], data: Any, at: At, prefix: tuple, context: dict | None = None) -> Model:
    """`data` (at `prefix` in the config) validated as `model`; its first error as an InputError. A
    boolean where a number goes is that error, whatever else a validator makes of its 0 or 1."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        _raise_boolean(model, data, at, prefix, context)
        raise_first(e, at, prefix)


def raise_first(e: ValidationError, at: At, prefix: tuple) -> NoReturn:
    """pydantic's first error as the one line naming its field, at its line."""
    err = e.errors()[0]
    loc = prefix + tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    raise InputError(at.name, _message(err), line=line_of(at.lines, loc), field=field) from None


def _message(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    return err["msg"].removeprefix("Value error, ")


def _raise_boolean(model: type[BaseModel], data: Any, at: At, prefix: tuple, context: dict | None) -> None:
    """For data that failed: validated again with each boolean written as a word ("true"), which a
    boolean field still takes and a number field refuses, so that a boolean where a number goes is
    named rather than what a check made of it (two seeds `[1, true]` are not "the same seed")."""
    words, swapped = _booleans_as_words(data, ())
    if not swapped:
        return
    try:
        model.model_validate(words, context=context)
    except ValidationError as e:
        for err in e.errors():
            loc = _given_loc(data, tuple(err["loc"]))
            if err["type"] in _PARSING and loc in swapped:
                raise at.error(prefix + loc, NOT_A_BOOL) from None


def _booleans_as_words(value: Any, loc: tuple) -> tuple[Any, set[tuple]]:
    """A copy of `value` with every boolean a word, and where each was."""
    if isinstance(value, bool):
        return ("true" if value else "false"), {loc}
    swapped: set[tuple] = set()
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            out[k], found = _booleans_as_words(v, (*loc, k))
            swapped |= found
        return out, swapped
    if isinstance(value, list):
        items = [_booleans_as_words(v, (*loc, i)) for i, v in enumerate(value)]
        return [v for v, _ in items], swapped.union(*(found for _, found in items))
    return value, swapped


def _given_loc(data: Any, loc: tuple) -> tuple:
    """pydantic's `loc` as the keys and indexes of `data`: without the parts it adds (a union's tag)."""
    out = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            continue
        out.append(part)
    return tuple(out)


def check_numbers(data: dict[str, Any], config: BaseModel, at: At) -> None:
    """On a config that validated: no value given as a boolean became a number, and no number is none
    (`.nan`, `.inf`, "inf"). Each value as given is looked up where it went in `config`."""
    todo: list[tuple[tuple, Any]] = [((), data)]
    while todo:
        loc, value = todo.pop()
        if isinstance(value, dict):
            todo.extend(((*loc, k), v) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend(((*loc, i), v) for i, v in enumerate(value))
        else:
            got = _validated(config, loc)
            if isinstance(got, bool) or not isinstance(got, int | float):
                continue
            if isinstance(value, bool):
                raise at.error(loc, NOT_A_BOOL)
            if not math.isfinite(got):
                raise at.error(loc, f"expected a finite number, got {got}")


def _validated(node: Any, loc: tuple) -> Any:
    """The value at `loc` (keys and list indexes as the YAML gives them) in validated `node`: a model's
    field by its name or an alias, or one of its extras; a dict's key; a list's index. `_MISSING` when
    there is none (a value a validator moved or dropped)."""
    for key in loc:
        if isinstance(node, BaseModel):
            node = _field(node, key)
        elif isinstance(node, dict):
            node = node.get(key, _MISSING)
        elif isinstance(node, list | tuple) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return _MISSING
        if node is _MISSING:
            return node
    return node


def _field(model: BaseModel, key: Any) -> Any:
    for name, info in type(model).model_fields.items():
        aliases = [info.alias, *getattr(info.validation_alias, "choices", [info.validation_alias])]
        if key == name or (key is not None and key in aliases):
            return getattr(model, name)
    return (model.model_extra or {}).get(key, _MISSING)
