"""``/openapi.json``, generated from the endpoint declarations and their pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from ghapp import __version__
from ghapp.api.core import Endpoint

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                    "in": {"type": "string"},
                },
            },
        },
    },
}
REASONS = {
    400: "The body is not valid JSON",
    401: "No token, or an unknown or revoked one",
    403: "This needs an admin token",
    404: "No such object (another repository's objects are not found for a limited token)",
    409: "The object is not in a state this action applies to",
    413: "The body is too large",
    422: "Invalid input: each problem names its field and reason",
    429: "Too many wrong tokens from this client: wait the Retry-After seconds",
    502: "GitHub could not be reached for what this needs",
}


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def schema(self, kind: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        suffix = "Input" if mode == "validation" else ""
        schema = TypeAdapter(kind).json_schema(
            mode=mode,
            by_alias=True,
            ref_template="#/components/schemas/{model}" + suffix,
        )
        for name, definition in schema.pop("$defs", {}).items():
            self.schemas[name + suffix] = definition
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.schemas[kind.__name__ + suffix] = schema
            return {"$ref": f"#/components/schemas/{kind.__name__}{suffix}"}
        return schema


def openapi_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, components
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ghapp",
            "version": __version__,
            "description": "Jobs, runs, notifiers and the scheduler of a ghapp server. The "
            "per-repository routes speak snake_case; the /api/scheduler routes camelCase.",
        },
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(endpoint: Endpoint, components: _Components) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint),
        "responses": _responses(endpoint, components),
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": components.schema(endpoint.body, "validation")}
            },
        }
    return operation


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        }
        for name in endpoint.path_params
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(mode="validation", by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", None)
            prop.pop("title", None)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    return params


def _responses(endpoint: Endpoint, components: _Components) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if endpoint.response is None:
        responses[str(endpoint.status if endpoint.status != 200 else 204)] = {"description": "Done"}
    else:
        schema = components.schema(endpoint.response, "serialization")
        responses[str(endpoint.status)] = {
            "description": endpoint.summary,
            "content": {"application/json": {"schema": schema}},
        }
    codes = {401, 403, 422, 429, *endpoint.errors}
    if endpoint.path_params:
        codes.add(404)
    if endpoint.body is not None:
        codes.update({400, 413})
    for code in sorted(codes):
        responses[str(code)] = {
            "description": REASONS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses
