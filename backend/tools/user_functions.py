"""Developer functions a user defines (Settings, or the API): JSON Schema in, checked, out.

The app does not run these: when the model calls one, the turn pauses with the call shown, and the
person (on the page) or the client (through the API) sends the result, which the model reads
before it goes on, as in openai/gpt-oss's Streamlit example.
"""

from __future__ import annotations

import json
import re

from backend.harmony.limits import unwritable
from backend.tools.toolbox import BUILT_IN_FUNCTIONS
from core.errors import InputError

MAX_FUNCTIONS = 16
MAX_FUNCTIONS_CHARS = 20_000
# An API client (an agent framework, Codex) sends more and longer tools than a person types; still
# bounded, as harmony's renderer is not made for megabytes (a 5 MB description overflowed its stack).
CLIENT = {"reserved": (), "max_functions": 128, "max_chars": 200_000}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def offered_recipients(functions, namespaces) -> set[str]:
    """The harmony recipients of the functions a person or an API client runs: `functions.NAME`, an API
    client's `NAMESPACE.NAME`."""
    return ({f"functions.{f['name']}" for f in functions or []}
            | {f"{ns['name']}.{t['name']}" for ns in namespaces or [] for t in ns["tools"]})


def parse_user_functions(value, reserved=BUILT_IN_FUNCTIONS, max_functions: int = MAX_FUNCTIONS,
                         max_chars: int = MAX_FUNCTIONS_CHARS) -> list[dict]:
    """The functions as a list of {name, description, parameters}, from JSON text or a list; an
    InputError that says what is wrong otherwise. Empty text: no functions. `reserved`: names the
    deployment's own functions take (an API client, offered none of them, may use any name)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    size = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    if size > max_chars:
        raise InputError(f"Your functions are {size:,} characters long (as JSON); the limit is {max_chars:,}.")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InputError(f"Your functions are not valid JSON: {exc.msg} at line {exc.lineno}, column "
                             f"{exc.colno}.") from None
        except RecursionError:
            raise InputError("Your functions are nested too deeply.") from None
    bad = unwritable(value)
    if bad is not None:
        raise InputError(f"Your functions hold text that is not valid Unicode (a lone surrogate, in {bad!r}).")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or len(value) > max_functions:
        raise InputError(f"Functions must be a JSON list of at most {max_functions} objects "
                         '({"name": ..., "description": ..., "parameters": {JSON Schema}}).')
    functions, names = [], set()
    for i, spec in enumerate(value, 1):
        function = _checked(spec, i, reserved)
        if function["name"] in names:
            raise InputError(f"Function {i}: the name {function['name']!r} is used twice.")
        names.add(function["name"])
        functions.append(function)
    return functions


def _checked(spec, i: int, reserved) -> dict:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if isinstance(spec, dict) and spec.get("type") == "function" and isinstance(spec.get("function"), dict):
        spec = spec["function"]  # the OpenAI `tools` form is accepted as it is
    if not isinstance(spec, dict):
        raise InputError(f"Function {i} must be an object with a name, a description and parameters.")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"Function {i}: the name must be letters, digits and _ (at most 64), not {name!r}.")
    if name in reserved:
        raise InputError(f"Function {i}: {name!r} is a built-in tool; tick it under Tools instead.")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise InputError(f"Function {name}: the description must be text.")
    parameters = spec.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise InputError(f"Function {name}: parameters must be a JSON Schema of type object.")
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top"
        raise InputError(f"Function {name}: the parameters are not a valid JSON Schema ({exc.message}, at "
                         f"{where}).") from None
    unknown = set(spec) - {"name", "description", "parameters", "strict"}
    if unknown:
        raise InputError(f"Function {name}: unknown field(s) {', '.join(sorted(unknown))}.")
    strict = spec.get("strict")
    if strict not in (None, True, False):
        raise InputError(f"Function {name}: strict must be true or false.")
    if strict:
        from backend.harmony.structured import check_strict

        check_strict(name, parameters)
    # strict: its calls' arguments are held to the parameters (structured.py), or end as an error
    return {"name": name, "description": description, "parameters": parameters, **({"strict": True} if strict else {})}
