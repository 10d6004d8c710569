"""A deep copy of a decoded JSON document, the way the platform's components take one.

Objects from the API (an informer's cache, the datastore's stored copy) are what a JSON decoder
produced: dicts, lists, strings, numbers, booleans and None. Copying them through orjson is
about 5x faster than `copy.deepcopy` (6 us against 33 us for a VirtualMachine), and the
controllers and node handler copy one per reconcile. Anything JSON cannot carry (a unit test's
object holding other types) is copied by `deepcopy` instead.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson


def json_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `obj`, no part shared with it."""
    try:
        result: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    except TypeError:  # orjson.JSONEncodeError is one
        return copy.deepcopy(obj)
    return result
