"""Structured results: a command's output schema, and the JSON object a session returns.

A command may declare an output schema (a JSON Schema object). Its sessions then run with
Claude Code's ``--json-schema``: the CLI offers the model a ``StructuredOutput`` tool whose
input is that schema, checks what the model passes, and reports the object as the result
event's ``structured_output``. The model reads strangers' text, so ghapp never trusts that
object: it is checked again here, against the same schema and a size limit, before it is
stored with the session (``sessions.structured_result``). A missing or wrong object is
stored as a reason (``sessions.structured_error``), never as a result.

A session's schema is its job's own (``output_schema``), else its repository command's
(front matter ``output-schema``), else the built-in command's (:func:`schema_for`).

Only a small part of JSON Schema is supported (:data:`KEYWORDS`), checked when a schema is
declared: enough for flat classification results, and small enough to validate here
without a dependency at run time.

A job's ``structured_actions`` (:func:`check_actions`) says what ghapp may do with the
result on the issue or PR: ``labels`` and ``assign`` with allow-lists, ``duplicate``,
``dry_run``; each acts on one field of the result (:data:`RESULT_FIELDS`), and a job whose
schema is known must declare that field. :mod:`ghapp.worker.actions` does it;
:func:`actions_section` says what it did in the report.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_SCHEMA_BYTES = 16_000
MAX_RESULT_BYTES = 16_000
KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "maxItems",
        "maxLength",
        "minimum",
        "maximum",
        "description",
    }
)
TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
MISSING = "structured result did not match the schema: Claude Code reported no object that did"
MISMATCH = "structured result did not match the schema: {problem}"
TOO_LARGE = f"structured result did not match the schema: larger than {MAX_RESULT_BYTES} bytes"

# What a job's ``structured_actions`` may ask for, and the result field each acts on.
ACTION_KEYS = ("labels", "duplicate", "assign", "dry_run")
RESULT_FIELDS = {"labels": "labels", "duplicate": "duplicate_of", "assign": "assignees"}
MAX_ALLOWED = 100
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")  # GitHub's logins
DONE_WORDS = {
    "label": "Applied labels",
    "assign": "Assigned",
    "duplicate": "Closed as duplicate of",
}
WOULD_WORDS = {
    "label": "Would apply labels",
    "assign": "Would assign",
    "duplicate": "Would close as duplicate of",
}

TRIAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["bug", "feature", "question", "docs", "other"]},
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "labels": {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 10},
        "duplicate_of": {"type": ["integer", "null"], "minimum": 1},
        "summary": {"type": "string", "maxLength": 2000},
    },
    "required": ["kind", "severity", "labels", "summary"],
    "additionalProperties": False,
}
BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {"issue/triage": TRIAGE_SCHEMA}


def check_schema(schema: Any, where: str = "$") -> None:
    """Raise ValueError naming the problem when ``schema`` is not a schema ghapp supports."""
    if where == "$" and len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise ValueError(f"the output schema is larger than {MAX_SCHEMA_BYTES} bytes")
    if not isinstance(schema, dict):
        raise ValueError(f"{where}: a schema must be an object")
    unknown = sorted(set(schema) - KEYWORDS)
    if unknown:
        raise ValueError(f"{where}: unsupported keyword(s) {', '.join(unknown)}")
    types = schema.get("type", [])
    for name in [types] if isinstance(types, str) else types:
        if name not in TYPES:
            raise ValueError(f"{where}: unknown type {name!r}")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise ValueError(f"{where}: enum must be a list")
    for key, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.{key}")
    if "items" in schema:
        check_schema(schema["items"], f"{where}[]")


def schema_for(job: Any, repository_command: Any) -> dict[str, Any] | None:
    """A session's output schema: the job's own (``output_schema``), else its repository
    command's (front matter ``output-schema``; it replaces the built-in of that id), else
    the built-in command's."""
    own = getattr(job, "output_schema", None)
    if own:
        return dict(own)
    if repository_command is not None:
        declared = getattr(repository_command, "output_schema", None)
        return dict(declared) if declared else None
    return BUILTIN_SCHEMAS.get(getattr(job, "command_id", None) or "")


def check_actions(actions: Any, schema: dict[str, Any] | None) -> None:
    """Raise ValueError naming the problem when ``actions`` (a job's ``structured_actions``)
    is not a shape ghapp acts on, or asks for a field ``schema`` (when known) cannot give."""
    if not isinstance(actions, dict):
        raise ValueError("must be a JSON object")
    unknown = sorted(set(actions) - set(ACTION_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(ACTION_KEYS)})")
    for key in ("duplicate", "dry_run"):
        if key in actions and not isinstance(actions[key], bool):
            raise ValueError(f"{key} must be true or false")
    for key, limit in (("labels", 50), ("assign", 39)):
        if key in actions:
            _allow_list(key, actions[key], limit)
    if not any(actions.get(key) for key in RESULT_FIELDS):
        raise ValueError("names no action: give labels, duplicate or assign")
    for key, name in RESULT_FIELDS.items():
        properties = (schema or {}).get("properties")
        if actions.get(key) and properties is not None and name not in properties:
            raise ValueError(f"{key} acts on the result's {name!r}, which the output schema lacks")


def _allow_list(key: str, value: Any, limit: int) -> None:
    allowed = value.get("allowed") if isinstance(value, dict) else None
    if not isinstance(value, dict) or set(value) != {"allowed"} or not isinstance(allowed, list):
        raise ValueError(f'{key} must be {{"allowed": [...]}}')
    if not allowed or len(allowed) > MAX_ALLOWED:
        raise ValueError(f"{key}.allowed must name 1 to {MAX_ALLOWED} values")
    for name in allowed:
        if key == "assign" and not (isinstance(name, str) and LOGIN.match(name)):
            raise ValueError(f"assign.allowed: {str(name)[:60]!r} is not a GitHub login")
        if not isinstance(name, str) or not name.strip() or len(name) > limit:
            raise ValueError(
                f"{key}.allowed: {str(name)[:60]!r} is not a name of 1 to {limit} characters"
            )


def actions_section(actions: list[dict[str, Any]]) -> str | None:
    """What ghapp did with the structured result, as one line of the report, e.g.
    ``Applied labels: bug, docs · refused: wontfix (not in the job's allowed labels)``."""
    if not actions:
        return None
    parts: list[str] = []
    for status, verbs in (("done", DONE_WORDS), ("would", WOULD_WORDS)):
        for kind, verb in verbs.items():
            values = [a["value"] for a in actions if a["status"] == status and a["action"] == kind]
            if values:
                parts.append(f"{verb}: {', '.join(map(_shown, values))}")
    for status in ("refused", "failed"):
        for a in (a for a in actions if a["status"] == status):
            parts.append(f"{status}: {a['action']} {_shown(a['value'])} ({a['reason']})")
    dry = any(a["status"] == "would" for a in actions)
    head = "**Actions** (dry run, nothing changed)" if dry else "**Actions**"
    return f"{head}: " + " · ".join(parts)


def _shown(value: str) -> str:
    """A name the model wrote, as inline code that no backtick or line break escapes
    (no mention, link or markup of its own reaches the comment)."""
    plain = "".join(c if c.isprintable() and c != "`" else " " for c in str(value))
    return f"`{plain.strip()[:100]}`"


def accept(value: Any, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(the object, None) when ``value`` matches ``schema``, else (None, why not)."""
    if value is None:
        return None, MISSING
    if len(json.dumps(value)) > MAX_RESULT_BYTES:
        return None, TOO_LARGE
    problem = first_problem(value, schema, "$")
    if problem is None and not isinstance(value, dict):
        problem = "$: not an object"
    if problem is not None:
        return None, MISMATCH.format(problem=problem)
    return value, None


def first_problem(value: Any, schema: dict[str, Any], where: str) -> str | None:
    """The first place where ``value`` breaks ``schema``, or None."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is(value, name) for name in names):
            return f"{where}: expected {' or '.join(names)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: not one of {', '.join(map(str, schema['enum']))}"
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        return f"{where}: longer than {schema['maxLength']} characters"
    if _is(value, "number"):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            return f"{where}: out of range"
    if isinstance(value, list):
        return _array_problem(value, schema, where)
    if isinstance(value, dict):
        return _object_problem(value, schema, where)
    return None


def _array_problem(value: list[Any], schema: dict[str, Any], where: str) -> str | None:
    if len(value) > schema.get("maxItems", len(value)):
        return f"{where}: more than {schema['maxItems']} items"
    items = schema.get("items")
    for index, item in enumerate(value):
        problem = first_problem(item, items, f"{where}[{index}]") if items else None
        if problem:
            return problem
    return None


def _object_problem(value: dict[str, Any], schema: dict[str, Any], where: str) -> str | None:
    properties = schema.get("properties") or {}
    for key in schema.get("required") or ():
        if key not in value:
            return f"{where}: {key} is missing"
    for key, item in value.items():
        if key in properties:
            problem = first_problem(item, properties[key], f"{where}.{key}")
            if problem:
                return problem
        elif schema.get("additionalProperties") is False:
            return f"{where}: {str(key)[:50]!r} is not allowed"
    return None


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return name == "boolean"
    checks: dict[str, Any] = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "null": type(None),
    }
    return name in checks and isinstance(value, checks[name])


def ordered(result: dict[str, Any], command_id: str | None) -> dict[str, Any]:
    """The object's keys in its schema's order (PostgreSQL's JSONB keeps its own), then any
    others by name."""
    schema = BUILTIN_SCHEMAS.get(command_id or "") or {}
    order = list(schema.get("properties") or {})
    rank = {key: index for index, key in enumerate(order)}
    keys = sorted(result, key=lambda key: (rank.get(key, len(order)), key))
    return {key: result[key] for key in keys}


def summary_lines(result: dict[str, Any], limit: int = 200) -> list[str]:
    """``key: value`` lines for a notification (lists joined, long values cut)."""
    lines = []
    for key, value in result.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        lines.append(f"{key}: {shown[:limit]}")
    return lines


def in_report(text: str | None, result: dict[str, Any] | None, error: str | None) -> str | None:
    """A session's result as its GitHub comment says it: the model's text as before (unless
    it is only the JSON again), then the structured result as a compact fenced ``json``
    block, or why there is none."""
    if result is None and error is None:
        return text
    parts = [text.strip()] if text and not _same_json(text, result) else []
    if result is not None:
        compact = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        fence = "`" * max(3, _longest_backticks(compact) + 1)  # its strings cannot close it
        parts.append(f"{fence}json\n{compact}\n{fence}")
    else:
        parts.append(f"⚠️ {error}")
    return "\n\n".join(parts)


def _same_json(text: str, result: dict[str, Any] | None) -> bool:
    try:
        return result is not None and json.loads(text) == result
    except ValueError:
        return False


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest
