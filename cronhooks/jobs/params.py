"""A job's parameters: what a caller may pass, and how its values are cleaned."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from cronhooks.conf import unknown_keys
from cronhooks.exceptions import InvalidJobDefinition

PARAM_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
DEFAULT_MAX_LENGTH = 200
PARAM_KEYS = frozenset(
    {"type", "option", "default", "required", "min", "max", "choices", "max_length"}
)
ParamType = Literal["int", "float", "bool", "str"]
PARAM_TYPES: tuple[ParamType, ...] = ("int", "float", "bool", "str")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    option: str
    default: Any = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    max_length: int = DEFAULT_MAX_LENGTH

    def clean(self, value: object) -> Any:
        """Coerce a query-string or JSON value, or raise ``ValueError``."""
        cleaned = _COERCERS[self.type](value)
        if isinstance(cleaned, int | float) and not isinstance(cleaned, bool):
            if self.min is not None and cleaned < self.min:
                raise ValueError(f"must be at least {_number(self.min)}")
            if self.max is not None and cleaned > self.max:
                raise ValueError(f"must be at most {_number(self.max)}")
        if isinstance(cleaned, str) and len(cleaned) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters")
        if self.choices and cleaned not in self.choices:
            allowed = ", ".join(str(choice) for choice in self.choices)
            raise ValueError(f"must be one of: {allowed}")
        return cleaned


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _to_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value)
    raise ValueError("must be an integer")


def _to_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    numeric = isinstance(value, int | float) or (
        isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()) is not None
    )
    if not numeric:
        raise ValueError("must be a number")
    try:
        number = float(cast("str | float", value))
    except OverflowError:  # a JSON integer beyond any float
        raise ValueError("must be a finite number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError("must be true or false")


def _to_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. JSON "\ud800"
        raise ValueError("must be valid Unicode") from None
    return value


_COERCERS: dict[str, Callable[[object], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
}


def parse_param(job_name: str, name: str, spec: object) -> Param:
    where = f"Job {job_name!r} parameter {name!r}"

    def invalid(message: str, check_id: str = "cronhooks.E007") -> InvalidJobDefinition:
        return InvalidJobDefinition(f"{where} {message}", check_id=check_id)

    if not isinstance(name, str) or not PARAM_NAME_RE.fullmatch(name):
        raise invalid(
            "needs a name of lowercase letters, digits and underscores.",
            "cronhooks.E033",
        )
    if not isinstance(spec, Mapping):
        raise invalid("must be a dict.", "cronhooks.E034")
    unknown = set(spec) - PARAM_KEYS
    if unknown:
        raise invalid(unknown_keys(unknown, PARAM_KEYS), "cronhooks.E035")
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise invalid(f"has type {kind!r}; use one of {', '.join(PARAM_TYPES)}.")
    option = spec.get("option", name)
    if not isinstance(option, str) or not option.isidentifier():
        raise invalid("has an 'option' that is not a command option name.")
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        bound = spec.get(key)
        if bound is not None and (
            kind not in ("int", "float")
            or isinstance(bound, bool)
            or not isinstance(bound, int | float)
        ):
            raise invalid(f"has '{key}' but only int and float take numeric bounds.")
        bounds[key] = bound
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise invalid("has 'min' greater than 'max'.", "cronhooks.E036")
    max_length = spec.get("max_length", DEFAULT_MAX_LENGTH)
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int)
        or max_length < 1
    ):
        raise invalid("has a 'max_length' that is not a positive integer.")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise invalid("has a 'required' that is not True or False.")
    choices = spec.get("choices", ())
    if not isinstance(choices, list | tuple):
        raise invalid("has 'choices' that are not a list.")
    param = Param(
        name=name,
        type=kind,
        option=option,
        required=required,
        min=low,
        max=high,
        choices=tuple(choices),
        max_length=max_length,
    )
    cleaned_choices = []
    for choice in param.choices:
        try:
            cleaned_choices.append(replace(param, choices=()).clean(choice))
        except ValueError as error:
            raise invalid(
                f"has a choice {choice!r} that {error}.", "cronhooks.E038"
            ) from None
    param = replace(param, choices=tuple(cleaned_choices))
    default = spec.get("default")
    if default is not None:
        if required:
            raise invalid("is required, so it cannot have a default.", "cronhooks.E037")
        try:
            default = param.clean(default)
        except ValueError as error:
            raise invalid(
                f"has a default {default!r} that {error}.", "cronhooks.E038"
            ) from None
    return replace(param, default=default)
