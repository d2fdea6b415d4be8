"""Pure logic: a subscription result shared by many subscribers is encoded once, each message keeping its own id."""

from __future__ import annotations

import json

from app.main import GraphQLApp


def test_messages_sharing_a_result_keep_their_own_ids_and_identical_payloads() -> None:
    app = GraphQLApp.__new__(GraphQLApp)  # encode_json uses no state of the view
    shared = {"runUpdates": {"seq": 7, "text": 'line "quoted" \u00e9\n'}}
    first = app.encode_json({"id": "a-1", "type": "next", "payload": {"data": shared}})
    second = app.encode_json({"id": 'b"2', "type": "next", "payload": {"data": shared}})

    assert json.loads(first) == {"id": "a-1", "type": "next", "payload": {"data": shared}}
    assert json.loads(second) == {"id": 'b"2', "type": "next", "payload": {"data": shared}}


def test_other_messages_are_encoded_as_they_are() -> None:
    app = GraphQLApp.__new__(GraphQLApp)
    with_errors = {"id": "x", "type": "next", "payload": {"data": None, "errors": [{"message": "no"}]}}
    assert json.loads(app.encode_json(with_errors)) == with_errors
    assert json.loads(app.encode_json({"data": {"a": 1}})) == {"data": {"a": 1}}
    assert json.loads(app.encode_json({"type": "complete", "id": "x"})) == {"type": "complete", "id": "x"}
