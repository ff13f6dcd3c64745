"""The functions a person or an API client runs: checked with a sentence, and `strict` kept for the
constraint (backend/harmony/structured.py holds a strict function's calls to its parameters)."""

import pytest

from backend.harmony.structured import strict_calls
from backend.tools.user_functions import CLIENT, offered_recipients, parse_user_functions
from core.errors import InputError

WEATHER = {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}}, "required": ["city"]}


def test_strict_is_kept_and_names_the_calls_held_to_their_parameters():
    functions = parse_user_functions([{"name": "get_weather", "parameters": WEATHER, "strict": True},
                                      {"name": "get_time", "parameters": {"type": "object"}, "strict": False},
                                      {"name": "ping"}], **CLIENT)
    assert [f.get("strict") for f in functions] == [True, None, None]
    namespaces = [{"name": "shop", "tools": parse_user_functions(
        [{"name": "buy", "parameters": WEATHER, "strict": True}], **CLIENT)}]
    assert strict_calls(functions, namespaces) == {"functions.get_weather": WEATHER, "shop.buy": WEATHER}
    assert offered_recipients(functions, namespaces) == {"functions.get_weather", "functions.get_time",
                                                         "functions.ping", "shop.buy"}


@pytest.mark.parametrize("spec,message", [
    ({"name": "f", "strict": "yes"}, "strict must be true or false"),
    ({"name": "f", "strict": True, "parameters": {"type": "object", "properties": {
        "x": {"type": "string", "pattern": "(?<=a)b"}}}}, "(?s)cannot be enforced \\(strict\\).*look-behind"),
    ({"name": "f", "parameters": {"type": "array"}}, "parameters must be a JSON Schema of type object"),
    ({"name": "f", "color": "red"}, "unknown field\\(s\\) color"),
])
def test_what_cannot_be_honoured_is_refused_with_a_sentence(spec, message):
    pytest.importorskip("llguidance")
    with pytest.raises(InputError, match=message):
        parse_user_functions([spec], **CLIENT)
