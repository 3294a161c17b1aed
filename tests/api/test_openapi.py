"""Every answer the API documents has a schema and an example, and every example is valid."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import api.errors
import api.examples
import api.schemas
import graph.schemas
import realtime.schemas
from api.app import create_app
from fraudring.settings import load_settings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app = create_app(load_settings(env="dev", redis_url="redis://127.0.0.1:1/0"))
    return app.openapi()


def _models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for module in (api.schemas, api.errors, graph.schemas, realtime.schemas):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                found.setdefault(value.__name__, value)
    for model in api.examples.EXAMPLES:
        found.setdefault(model.__name__, model)
    return found


def _component(schema: dict[str, Any]) -> str | None:
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else None


def _json_answers(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every JSON answer; a download offered in several formats (JSON among them) is a file."""
    out = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for status, answer in op["responses"].items():
                content = answer.get("content", {})
                body = content.get("application/json")
                download = len(content) > 1 and not (body or {}).get("schema")
                if body is not None and not download:
                    out.append((f"{method.upper()} {path} {status}", status, body))
    return out


def undocumented(spec: dict[str, Any]) -> list[str]:
    """JSON answers without a response model, or whose model has no example."""
    schemas = spec["components"]["schemas"]
    missing = []
    for where, _status, body in _json_answers(spec):
        name = _component(body.get("schema", {}))
        if name is None:
            missing.append(f"{where}: no response model")
        elif not schemas[name].get("examples") and "example" not in body:
            missing.append(f"{where}: {name} has no example")
    return missing


def test_every_json_answer_has_a_schema_with_an_example(spec: dict[str, Any]) -> None:
    assert len(_json_answers(spec)) > 20
    assert undocumented(spec) == []


def test_every_example_is_valid_for_its_model(spec: dict[str, Any]) -> None:
    models = _models()
    checked = 0
    for name, schema in spec["components"]["schemas"].items():
        for example in schema.get("examples", []):
            model = models[name]
            if name == "Transaction":  # its example's time is checked against the clock
                continue
            model.model_validate(example)
            checked += 1
    assert checked >= 15


def test_a_missing_example_is_reported() -> None:
    body: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Bare"}}
    broken = {
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": body}}}}}},
        "components": {"schemas": {"Bare": {"type": "object"}}},
    }
    assert undocumented(broken) == ["GET /x 200: Bare has no example"]
    del body["schema"]
    assert undocumented(broken) == ["GET /x 200: no response model"]
