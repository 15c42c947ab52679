#!/usr/bin/env python3
"""Checks an example's OpenAPI document, and real events against it.

    openapi-check.py DOCUMENT.json [EVENTS.json]

1. The document is validated by openapi-spec-validator (an independent implementation of
   the OpenAPI 3.2 schema and rules).
2. Each event in EVENTS.json ([{"path": "/events", "event": "reset" or null, "data": "...",
   "id": "..." or null}, ...], read from a real stream) must match exactly one branch of
   the `itemSchema` the document gives for `GET path`'s `text/event-stream`: the branch
   whose `event` names it (`message` when it has none). Its `data`, when the branch says
   `contentMediaType: application/json`, must parse as JSON and be valid against the
   branch's `contentSchema`, strictly: an object may hold no property the schema does not
   name (so a field added or renamed in the code without its type fails here).

Exits 0 when everything holds; otherwise prints every problem and exits 1.
"""

import json
import re
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV32SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:openapi-document"


def strict(schema):
    """A copy of `schema` where every object schema with `properties` and no word on
    `additionalProperties` allows no other property."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(value) for value in schema]
    return schema


def registry(document):
    """Resolves `#/components/...` references against the (strict) document."""
    resource = Resource.from_contents(strict(document), default_specification=DRAFT202012)
    return Registry().with_resource(DOC_URI, resource)


def resolve(schema, document):
    """Follows a local `$ref` once."""
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if not ref:
        return schema
    node = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def rebased(schema):
    """`schema` with its local refs pointing into the registered document."""
    if isinstance(schema, dict):
        out = {key: rebased(value) for key, value in schema.items()}
        if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
            out["$ref"] = DOC_URI + out["$ref"]
        return out
    if isinstance(schema, list):
        return [rebased(value) for value in schema]
    return schema


def errors_of(schema, instance, refs):
    check = Draft202012Validator(rebased(schema), registry=refs)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in check.iter_errors(instance)]


def check_events(document, events):
    refs = registry(document)
    problems = []
    for n, event in enumerate(events):
        name = event.get("event") or "message"
        where = f"event {n} ({name} on {event['path']}, id {event.get('id')!r})"
        try:
            content = document["paths"][event["path"]]["get"]["responses"]["200"]["content"]
            items = content["text/event-stream"]["itemSchema"]
        except KeyError:
            problems.append(f"{where}: the document gives no text/event-stream itemSchema for GET {event['path']}")
            continue
        branches = resolve(items, document).get("oneOf", [items])
        item = {"data": event["data"]}
        if event.get("event") is not None:
            item["event"] = event["event"]
        if event.get("id") is not None:
            item["id"] = event["id"]
        # The branch this event is: the one its fields (event name, id, data as text)
        # satisfy. Exactly one must.
        matching = [b for b in branches if not errors_of(strict(b), item, refs)]
        if len(matching) != 1:
            found = errors_of(strict(items), item, refs)
            problems.append(f"{where}: matches {len(matching)} branches of the itemSchema, not 1 ({found})")
            continue
        branch = matching[0]
        data_schema = branch["properties"]["data"]
        if data_schema.get("contentMediaType") == "application/json":
            try:
                data = json.loads(event["data"])
            except ValueError as e:
                problems.append(f"{where}: data is not JSON ({e}): {event['data']!r}")
                continue
            found = errors_of(strict(data_schema["contentSchema"]), data, refs)
            problems += [f"{where}: data {e}" for e in found]
    return problems


# What a Rust doc comment says that means nothing to a reader of the document: an
# intra-doc link ([`Type`], [`Type::method`]), or a source file (`main.rs`).
RUST_ONLY = re.compile(r"\[`[^`\]]+`\]|\b[\w/.-]+\.rs\b")


def check_prose(document):
    """Every description and summary reads on its own: no Rust doc link, no source file."""
    problems = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "summary") and isinstance(value, str):
                    found = RUST_ONLY.findall(value)
                    if found:
                        problems.append(f"{where}/{key}: names {', '.join(found)} (Rust doc links and source files mean nothing to a client): {value!r}")
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(document, "#")
    return problems


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        document = json.load(f)
    problems = [f"document: {e.message} at {'/'.join(map(str, e.absolute_path))}"
                for e in OpenAPIV32SpecValidator(document).iter_errors()]
    problems += check_prose(document)
    events = []
    if len(sys.argv) == 3:
        with open(sys.argv[2], encoding="utf-8") as f:
            events = json.load(f)
        problems += check_events(document, events)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"ok: the document is valid OpenAPI {document.get('openapi')}; {len(events)} events match it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
