"""How a request's scalar values are read: FastChat's coercions, or OpenAI's JSON types.

FastChat's server validates bodies with pydantic 1 (fschat 0.2.36 pins no version; it needs
``pydantic<2``), whose validators convert rather than refuse (``pydantic/validators.py``:
``bool_validator``, ``int_validator``, ``float_validator``, ``str_validator``; behaviour checked
against pydantic 1.10.27). By default (``compat.strict: false``) every field is read the same
way, so that a body FastChat's server took is taken here:

======== ==================================================================================
boolean  ``true``/``false``; the numbers 0 and 1; the strings 0, 1, off, on, f, t, false,
         true, n, y, no, yes in any case
integer  integers; booleans (as 0 and 1); finite numbers, truncated toward zero (``1.9`` is
         1); strings of an integer, with surrounding spaces and ``_`` separators allowed
number   numbers; booleans (as 0 and 1); strings of a number
string   strings; numbers and booleans as Python writes them (``42`` as ``"42"``, ``true`` as
         ``"True"``, ``1.5`` as ``"1.5"``)
======== ==================================================================================

With ``compat.strict: true`` a value must have its JSON type, as OpenAI's API requires (an
integer may be written ``5.0``, as JSON Schema allows). In both modes a number must be finite and
an integer fit in 64 bits (where pydantic would pass ``"nan"`` or ``2**70`` on to the worker).
"""

from __future__ import annotations

import math
from typing import Any

# pydantic 1's BOOL_TRUE and BOOL_FALSE (strings compared lower-cased).
_TRUE = frozenset({1, "1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({0, "0", "off", "f", "false", "n", "no"})
# pydantic 1's max_str_int: longer digit strings are refused (CPython's own int() limit).
_MAX_INT_DIGITS = 4300


class NotCoercible(ValueError):
    """The value cannot be read as the type asked for."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_bool(value: Any, strict: bool) -> bool:
    """A JSON value read as a boolean; :class:`NotCoercible` when it is none."""
    if isinstance(value, bool):
        return value
    if strict or not (_is_number(value) or isinstance(value, str)):
        raise NotCoercible(value)
    key = value.lower() if isinstance(value, str) else value
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise NotCoercible(value)


def to_int(value: Any, strict: bool) -> int:
    """A JSON value read as an integer (any size; callers bound it)."""
    if isinstance(value, bool):
        if strict:
            raise NotCoercible(value)
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and (not strict or value.is_integer()):
        return int(value)
    if not strict and isinstance(value, str) and len(value) <= _MAX_INT_DIGITS:
        try:
            return int(value)
        except ValueError:
            pass
    raise NotCoercible(value)


def to_float(value: Any, strict: bool) -> float:
    """A JSON value read as a finite number."""
    if _is_number(value) or (not strict and isinstance(value, (bool, str))):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise NotCoercible(value) from None
        if math.isfinite(number):
            return number
    raise NotCoercible(value)


def to_str(value: Any, strict: bool) -> str:
    """A JSON value read as a string."""
    if isinstance(value, str):
        return value
    if not strict and isinstance(value, (int, float)):
        return str(value)
    raise NotCoercible(value)
