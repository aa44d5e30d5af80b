"""Schema derivation for @tool: one test per supported annotation, docstring parsing, and refusals."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Optional, Union

import pytest

from getpatter.tools.schema import function_schema, parse_docstring, schema_for_annotation


def _param(fn: Any, name: str) -> dict[str, Any]:
    return function_schema(fn).parameters["properties"][name]  # type: ignore[no-any-return]


def _required(fn: Any) -> list[str]:
    return list(function_schema(fn).parameters.get("required", []))


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 3


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (dict, {"type": "object"}),
        (dict[str, Any], {"type": "object"}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (list, {"type": "array", "items": {"type": "string"}}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list[float], {"type": "array", "items": {"type": "number"}}),
        (list[list[str]], {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
        (Sequence[bool], {"type": "array", "items": {"type": "boolean"}}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (set[str], {"type": "array", "items": {"type": "string"}}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
        (Literal[1, 2.5], {"type": "number", "enum": [1, 2.5]}),
        (Literal[True], {"type": "boolean", "enum": [True]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (list[Literal["x", "y"]], {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (Size, {"type": "integer", "enum": [1, 3]}),
        (Optional[int], {"type": "integer"}),  # noqa: UP045 - the typing spelling is what we test
        (int | None, {"type": "integer"}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),  # noqa: UP007
        (Any, {}),
        (Annotated[str, "The city"], {"type": "string", "description": "The city"}),
    ],
)
def test_annotation_schema(annotation: Any, expected: dict[str, Any]) -> None:
    assert schema_for_annotation(annotation, "x") == expected


def test_bool_literal_is_boolean_not_integer() -> None:
    # True is an int in Python; the JSON type must still be boolean.
    assert schema_for_annotation(Literal[True, False], "x") == {"type": "boolean", "enum": [True, False]}


def test_required_and_optional_parameters() -> None:
    def f(a: str, b: int = 3, c: Optional[str] = None, d: float | None = None, e: bool | None = True) -> str:  # noqa: UP045
        return ""

    def g(a: str, d: float | None) -> str:  # Optional without a default: still not required
        return ""

    assert _required(f) == ["a"]
    assert _required(g) == ["a"]
    assert _param(g, "d") == {"type": "number"}


def test_no_parameters_has_empty_object_and_no_required_key() -> None:
    def ping() -> str:
        return "pong"

    schema = function_schema(ping)
    assert schema.parameters == {"type": "object", "properties": {}}
    assert schema.param_names == ()


def test_unannotated_parameter_is_string() -> None:
    def f(x):  # type: ignore[no-untyped-def]
        return x

    assert _param(f, "x") == {"type": "string"}
    assert _required(f) == ["x"]


def test_string_annotations_are_resolved() -> None:
    # this module uses `from __future__ import annotations`, so every hint here is a string
    def f(items: list[int], mode: Literal["fast", "slow"] = "fast") -> None:
        return None

    assert _param(f, "items") == {"type": "array", "items": {"type": "integer"}}
    assert _param(f, "mode") == {"type": "string", "enum": ["fast", "slow"]}


def test_context_parameter_is_excluded() -> None:
    def f(city: str, context: dict[str, Any]) -> str:
        return city

    schema = function_schema(f)
    assert schema.takes_context is True
    assert list(schema.parameters["properties"]) == ["city"]
    assert schema.param_names == ("city",)


def test_var_args_are_skipped() -> None:
    def f(city: str, *args: Any, **kwargs: Any) -> str:
        return city

    assert function_schema(f).param_names == ("city",)


class Custom:
    pass


def test_unsupported_annotation_is_type_error_naming_parameter() -> None:
    def f(thing: Custom) -> None:
        return None

    with pytest.raises(TypeError, match=r"parameter 'thing'"):
        function_schema(f)


def test_positional_only_refused() -> None:
    def f(a: int, /) -> None:
        return None

    with pytest.raises(TypeError, match="positional-only"):
        function_schema(f)


def test_unresolvable_hint_is_type_error() -> None:
    def f(a: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(TypeError, match="cannot resolve type hints"):
        function_schema(f)


GOOGLE_DOC = """Look up an order and report its status.

    Used when the caller asks where their parcel is.

    Args:
        order_id (str): The order number, as printed
            on the receipt.
        include_items: Whether to list the items.
        *extra: ignored.

    Returns:
        A status line.

    Raises:
        KeyError: never documented as an argument.
    """


def test_parse_google_docstring() -> None:
    doc = parse_docstring(GOOGLE_DOC)
    assert doc.summary == "Look up an order and report its status."
    assert doc.args == {
        "order_id": "The order number, as printed on the receipt.",
        "include_items": "Whether to list the items.",
        "extra": "ignored.",
    }


def test_multiline_summary_is_joined() -> None:
    doc = parse_docstring("First line\ncontinues here.\n\nDetails.")
    assert doc.summary == "First line continues here."
    assert doc.args == {}


def test_summary_stops_at_section_without_blank_line() -> None:
    doc = parse_docstring("Book a table.\nArgs:\n    people: How many.")
    assert doc.summary == "Book a table."
    assert doc.args == {"people": "How many."}


def test_empty_docstring() -> None:
    assert parse_docstring(None).summary == ""
    assert parse_docstring("").args == {}


def test_function_schema_uses_docstring() -> None:
    def lookup_order(order_id: str, include_items: bool = False) -> str:
        """Look up an order.

        Args:
            order_id: The order number.
            include_items: Whether to list the items.
        """
        return order_id

    schema = function_schema(lookup_order)
    assert schema.description == "Look up an order."
    assert schema.parameters == {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "description": "The order number."},
            "include_items": {"type": "boolean", "description": "Whether to list the items."},
        },
        "required": ["order_id"],
    }


def test_docstring_description_wins_over_annotated() -> None:
    def f(city: Annotated[str, "from Annotated"]) -> None:
        """Do it.

        Args:
            city: from the docstring
        """

    assert _param(f, "city") == {"type": "string", "description": "from the docstring"}
