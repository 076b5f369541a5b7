"""Property-based: whatever arrives at the endpoint, the answer is never a 5xx."""

from __future__ import annotations

import copy
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import SECRET, load, payload_files, send

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EVENTS = [
    "installation",
    "installation_repositories",
    "issues",
    "pull_request",
    "issue_comment",
    "pull_request_review",
    "pull_request_review_comment",
    "ping",
    "push",
    "star",
]
HEADER_NAMES = [
    "content-type",
    "x-github-event",
    "x-github-delivery",
    "x-hub-signature-256",
    "x-hub-signature",
    "content-length",
    "x-other",
]

header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def assert_not_5xx(response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    json.loads(response.text)  # always a JSON answer


@FUZZ
@given(
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_text, max_size=7),
    body=st.binary(max_size=2048),
)
async def test_arbitrary_headers_and_body(client, headers, body) -> None:
    headers.pop("content-length", None)  # the client computes the real one
    response = await client.post("/webhooks/github", content=body, headers=headers)
    assert_not_5xx(response)
    if "x-hub-signature-256" not in headers:
        assert response.status_code >= 400


@FUZZ
@given(event=st.sampled_from(EVENTS), payload=json_values, delivery=header_text)
async def test_signed_arbitrary_json(client, event, payload, delivery) -> None:
    body = json.dumps(payload).encode()
    response = await send(client, event, body, delivery=delivery or "x", secret=SECRET)
    assert_not_5xx(response)


def mutate(data, rng: random.Random, value):
    """Replace one randomly chosen node of ``data`` with ``value``."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*path, index))

    walk(data, ())
    path = rng.choice(paths[1:])
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


ITEM_FILES = [p for p in payload_files() if p.parent.name in set(EVENTS)]


@FUZZ
@given(
    index=st.integers(min_value=0, max_value=len(ITEM_FILES) - 1),
    seed=st.integers(min_value=0, max_value=2**32),
    value=json_values,
    count=st.integers(min_value=1, max_value=3),
)
async def test_signed_real_payloads_with_mutated_fields(client, index, seed, value, count) -> None:
    path = ITEM_FILES[index]
    data = load(f"{path.parent.name}/{path.name}")
    rng = random.Random(seed)
    for _ in range(count):
        data = mutate(data, rng, copy.deepcopy(value))
    response = await send(client, path.parent.name, data, delivery=f"m-{seed}-{index}")
    assert_not_5xx(response)
