#!/usr/bin/env python3
"""Tests of scripts/event-types.py on documents made here (scripts/test runs it): the
shapes a schema can take come out as TypeScript that `tsc --strict` accepts (the
TypeScript is compiled by scripts/test with typescript/tsconfig.test.json), and what
cannot be written is refused with a message."""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "event-types.py")


def document(events, schemas):
    """An OpenAPI document with one stream, `GET /events`, whose events are `events`
    (name -> data schema, or None for text)."""
    branches = []
    for name, schema in events.items():
        data = {"type": "string"}
        if schema is not None:
            data.update(schema)
        branches.append({"type": "object", "required": ["data", "event"], "properties": {
            "event": {"type": "string", "enum": [name]}, "data": data}})
    stream = {"text/event-stream": {"itemSchema": {"oneOf": branches}}}
    return {"openapi": "3.2.0", "paths": {"/events": {"get": {"responses": {"200": {
        "description": "events", "content": stream}}}}}, "components": {"schemas": schemas}}


def generate(doc, name="sse-edge"):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    run = subprocess.run([sys.executable, SCRIPT, f.name, name], capture_output=True, text=True)
    os.unlink(f.name)
    return run


def json_of(ref):
    return {"contentMediaType": "application/json", "contentSchema": {"$ref": f"#/components/schemas/{ref}"}}


def main(out_dir):
    failures = []
    shapes = document({
        "nullable": json_of("NullObj"),
        "extended": json_of("ExtObj"),
        "mixed": json_of("Mixed"),
        "closed": json_of("Closed"),
        "charset": {"contentMediaType": "application/json; charset=utf-8",
                    "contentSchema": {"$ref": "#/components/schemas/User.Info"}},
        "schemaless": {"contentMediaType": "application/json"},
        "text": None,
    }, {
        "NullObj": {"type": ["object", "null"], "properties": {"a": {"type": "string"}}},
        "ExtObj": {"allOf": [{"type": "object", "properties": {"b": {"type": "integer"}}},
                             {"$ref": "#/components/schemas/Closed"}]},
        "Mixed": {"type": "object", "properties": {"x": {"type": "number"}},
                  "additionalProperties": {"type": "number"}},
        "Closed": {"type": "object", "additionalProperties": False},
        "User.Info": {"type": "object", "required": ["class", "content-type"], "properties": {
            "class": {"type": "string"}, "content-type": {"type": "string"},
            "note": {"type": "string", "description": "ends a comment early? */ no"}}},
    })
    run = generate(shapes)
    if run.returncode != 0:
        failures.append(f"shapes: refused: {run.stderr}")
    else:
        ts = run.stdout
        for want in ['charset: "json"', "schemaless: unknown", 'text: "text"', "export type NullObj =",
                     "export type ExtObj =", "[key: string]: number", "Record<string, never>",
                     "User_Info", "*\\/"]:
            if want not in ts:
                failures.append(f"shapes: no {want!r} in the output")
        with open(os.path.join(out_dir, "shapes.ts"), "w") as f:
            f.write(ts)
    for case, doc, message in [
        ("a schema named like the map", document({"a": json_of("EdgeEvents")}, {"EdgeEvents": {"type": "string"}}), "two declarations"),
        ("a schema named Reads", document({"a": json_of("Reads")}, {"Reads": {"type": "string"}}), "two declarations"),
        ("an event named twice", document({"a": None}, {}), None),
    ]:
        if message is None:  # the same name in two branches
            doc["paths"]["/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]["oneOf"] *= 2
            message = "twice"
        run = generate(doc)
        if run.returncode == 0 or message not in run.stderr:
            failures.append(f"{case}: not refused with {message!r} (exit {run.returncode}: {run.stderr.strip()})")
    for failure in failures:
        print(f"event-types-test: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()))
