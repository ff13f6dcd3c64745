"""Built-in developer functions: `calculate` (safe arithmetic) and `current_time`.

`calculate` parses the expression with `ast` and evaluates only whitelisted nodes (numbers, + - * /
// % **, unary signs, parentheses, a few math functions), with limits on the expression's length,
the size of numbers and the exponent: never `eval`, so no name, attribute or call can reach
anything else.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import operator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1_000
MAX_DIGITS = 1_000  # an integer result longer than this is refused
MAX_NODES = 200

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS = {"sqrt": math.sqrt, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
             "log": math.log, "log10": math.log10, "exp": math.exp, "sin": math.sin, "cos": math.cos,
             "tan": math.tan, "min": min, "max": max}
CONSTANTS = {"pi": math.pi, "e": math.e}

CALCULATE = {
    "name": "calculate",
    "description": "Evaluates an arithmetic expression exactly and returns the result. Supports + - * / // % **, "
                   "parentheses, pi, e and sqrt, abs, round, floor, ceil, log, log10, exp, sin, cos, tan, min, max.",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string",
                                                                   "description": "e.g. (17 + 25) * 3"}},
                   "required": ["expression"]},
}
CURRENT_TIME = {
    "name": "current_time",
    "description": "Returns the current date and time.",
    "parameters": {"type": "object", "properties": {"timezone": {
        "type": "string", "description": "IANA time zone such as Europe/Paris; default UTC"}}},
}


class CalcError(ValueError):
    pass


def calculate(expression: str) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise CalcError("expression must be a non-empty string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalcError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalcError(f"not an arithmetic expression: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalcError("expression too long")
    value = _eval(tree.body)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value)


def _eval(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalcError(f"exponent larger than {MAX_EXPONENT}")
        try:
            value = BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise CalcError("division by zero") from None
        except OverflowError:
            raise CalcError("result too large") from None
        return _checked(value)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
            and not node.keywords and len(node.args) <= 2):
        try:
            return _checked(FUNCTIONS[node.func.id](*[_eval(a) for a in node.args]))
        except (ValueError, TypeError, OverflowError) as exc:
            raise CalcError(f"{node.func.id}: {exc}") from None
    raise CalcError(f"not allowed in an arithmetic expression: {ast.unparse(node)[:60]}")


def _checked(value):
    if isinstance(value, complex):
        raise CalcError("the result is not a real number")
    if isinstance(value, int) and abs(value) >= 10 ** MAX_DIGITS:
        raise CalcError(f"result longer than {MAX_DIGITS} digits")
    return value


def current_time(timezone: str = "UTC", now: dt.datetime | None = None) -> str:
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise CalcError(f"unknown time zone {timezone!r}; use an IANA name such as Europe/Paris") from None
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(zone)
    return json.dumps({"timezone": str(zone), "iso": now.isoformat(timespec="seconds"),
                       "weekday": now.strftime("%A")})


def parse_arguments(arguments: str) -> dict:
    """A function call's arguments: a JSON object (what the model was told to write)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError as exc:
        raise CalcError(f"the arguments are not valid JSON ({exc.msg}); send a JSON object") from None
    if not isinstance(value, dict):
        raise CalcError("the arguments must be a JSON object")
    return value
