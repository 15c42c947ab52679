#!/usr/bin/env python3
"""TypeScript types of an example's event streams, from its OpenAPI document.

    event-types.py DOCUMENT.json EXAMPLE > EXAMPLE/client/events.ts

For each `text/event-stream` response with an `itemSchema` (a `oneOf`, one branch per
event name), it writes an event map (event name -> the type of its `data`), a table of
how each event's `data` is read (`"json"` when the branch says `contentMediaType:
application/json`, else `"text"`), and the types of every `contentSchema` the events
name, from `components.schemas`. `typescript/typed-events.ts` takes the two and gives a
typed `addEventListener`. Standard library only; the output is the same for the same
document, so a test can compare it with the committed file.
"""

import json
import re
import sys

# Keys that say something about a schema without changing its type.
ANNOTATIONS = {"description", "title", "example", "examples", "default", "deprecated",
               "readOnly", "writeOnly", "format", "pattern", "minimum", "maximum",
               "minLength", "maxLength", "minItems", "maxItems", "exclusiveMinimum",
               "exclusiveMaximum", "contentMediaType"}


def pascal(text):
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", text) if w)


def ref_name(ref):
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise SystemExit(f"event-types.py: a reference outside components.schemas: {ref}")
    return ref[len(prefix):]


def ident(name):
    """A component's name as a TypeScript identifier."""
    name = re.sub(r"[^A-Za-z0-9_$]", "_", name)
    return "_" + name if name[:1].isdigit() else name


def doc_comment(text, indent):
    """A JSDoc comment with `text` (which cannot close it early)."""
    if not text:
        return ""
    lines = text.replace("*/", "*\\/").strip().splitlines()
    pad = " " * indent
    if len(lines) == 1:
        return f"{pad}/** {lines[0].strip()} */\n"
    body = "".join(f"{pad} * {line.strip()}\n".replace(" \n", "\n") for line in lines)
    return f"{pad}/**\n{body}{pad} */\n"


def key(name):
    return name if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", name) else json.dumps(name)


class Types:
    def __init__(self, schemas):
        self.schemas = schemas
        self.wanted = []  # component names, in the order first met

    def want(self, name):
        if name not in self.schemas:
            raise SystemExit(f"event-types.py: no components.schemas.{name}")
        if name not in self.wanted:
            self.wanted.append(name)

    def ts(self, schema, indent=0):
        """The TypeScript type of a JSON Schema."""
        if not isinstance(schema, dict):
            return "unknown"
        if "$ref" in schema:
            name = ref_name(schema["$ref"])
            self.want(name)
            return ident(name)
        if "allOf" in schema:
            parts = [p for p in schema["allOf"] if not set(p) <= ANNOTATIONS]
            return " & ".join(self.wrap(self.ts(p, indent)) for p in parts) or "unknown"
        for union in ("oneOf", "anyOf"):
            if union in schema:
                return " | ".join(self.wrap(self.ts(p, indent)) for p in schema[union])
        if "const" in schema:
            return json.dumps(schema["const"])
        if "enum" in schema:
            return " | ".join(json.dumps(v) for v in schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self.ts({**schema, "type": k}, indent) for k in kind)
        if kind == "string":
            return "string"
        if kind in ("integer", "number"):
            return "number"
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "null"
        if kind == "array":
            return f"{self.wrap(self.ts(schema.get('items', {}), indent))}[]"
        if kind == "object" or "properties" in schema:
            return self.object(schema, indent)
        return "unknown"

    @staticmethod
    def wrap(text):
        return f"({text})" if " | " in text or " & " in text else text

    def object(self, schema, indent):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not properties:
            if isinstance(extra, dict):
                return f"{{ [key: string]: {self.ts(extra, indent)} }}"
            return "Record<string, never>" if extra is False else "Record<string, unknown>"
        required = set(schema.get("required", []))
        pad = " " * (indent + 2)
        lines = "{\n"
        for name in sorted(properties):
            prop = properties[name]
            lines += doc_comment(description(prop), indent + 2)
            optional = "" if name in required else "?"
            lines += f"{pad}{key(name)}{optional}: {self.ts(prop, indent + 2)};\n"
        lines += " " * indent + "}"
        if isinstance(extra, dict):  # named properties and any others of one type
            lines += f" & {{ [key: string]: {self.wrap(self.ts(extra, indent))} }}"
        return lines

    def declarations(self):
        out = ""
        done = 0
        while done < len(self.wanted):  # types found while writing one are written too
            name = self.wanted[done]
            schema = self.schemas[name]
            body = self.ts({k: v for k, v in schema.items() if k != "description"})
            out += "\n" + doc_comment(schema.get("description", ""), 0)
            plain = body.startswith("{\n") and body.endswith("\n}")
            if plain:
                out += f"export interface {ident(name)} {body}\n"
            else:
                out += f"export type {ident(name)} = {body};\n"
            done += 1
        return out


def description(schema):
    """A schema's own description, or that of the annotation beside its `$ref`."""
    if "description" in schema:
        return schema["description"]
    for part in schema.get("allOf", []):
        if set(part) <= ANNOTATIONS and "description" in part:
            return part["description"]
    return ""


def event_name(branch):
    """The event name a branch is for (`message` for unnamed events), and a note."""
    event = branch.get("properties", {}).get("event", {})
    if "const" in event:
        return event["const"], ""
    if len(event.get("enum", [])) == 1:
        return event["enum"][0], ""
    if "not" in event:
        others = ", ".join(event["not"].get("enum", []))
        return "message", f"Also every other event name but {others}, with the same data."
    if not event:
        return "message", ""
    raise SystemExit(f"event-types.py: cannot tell the event name of {json.dumps(event)}")


def streams(document):
    for path, operations in sorted(document.get("paths", {}).items()):
        for method, operation in sorted(operations.items()):
            if not isinstance(operation, dict):
                continue
            for status, response in sorted(operation.get("responses", {}).items()):
                content = response.get("content", {}).get("text/event-stream", {})
                if "itemSchema" in content:
                    yield f"{method.upper()} {path}", content["itemSchema"]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    document = json.load(open(sys.argv[1], encoding="utf-8"))
    example = sys.argv[2]
    types = Types(document.get("components", {}).get("schemas", {}))
    found = list(streams(document))
    if not found:
        raise SystemExit("event-types.py: the document describes no event stream")
    prefix = pascal(example.removeprefix("sse-"))
    out = (f"// The events of {example}, generated from its GET /openapi.json by scripts/event-types.py:\n"
           "// do not edit. Its contract test fails when this differs from what the server\n"
           "// describes; UPDATE_EVENT_TYPES=1 cargo test -p "
           f"{example} openapi_json_describes\n// writes it again.\n")
    for route, item in found:
        name = prefix + ("" if len(found) == 1 else pascal(route.lower())) + "Events"
        entries, reads, seen = "", "", set()
        for branch in item.get("oneOf", [item]):
            event, note = event_name(branch)
            data = branch.get("properties", {}).get("data", {})
            media = data.get("contentMediaType", "").split(";")[0].strip().lower()
            json_data = media == "application/json"
            data_type = types.ts(data.get("contentSchema", {}), 2) if json_data else "string"
            if event in seen:
                raise SystemExit(f"event-types.py: {route} names the event {event!r} twice")
            seen.add(event)
            text = "\n".join(t for t in (branch.get("description", ""), note) if t)
            entries += doc_comment(text, 2) + f"  {key(event)}: {data_type};\n"
            reads += f"  {key(event)}: \"{'json' if json_data else 'text'}\",\n"
        lower = name[:1].lower() + name[1:]
        out += (f"\n/** The events of `{route}`: each name, and the type of its `data`. */\n"
                f"export interface {name} {{\n{entries}}}\n"
                f"\n/** How each event's `data` of `{route}` is read (for `typed-events.ts`). */\n"
                f"export const {lower} = {{\n{reads}}} as const satisfies Reads<{name}>;\n")
    out += ("\n/** How an event's `data` is read: parsed as JSON, or the text as it is. */\n"
            "export type Reads<Events> = { [Name in keyof Events]: \"json\" | \"text\" };\n")
    out += types.declarations()
    declared = re.findall(r"^export (?:interface|type|const) ([A-Za-z0-9_$]+)", out, re.M)
    twice = sorted({n for n in declared if declared.count(n) > 1})
    if twice:
        raise SystemExit(f"event-types.py: two declarations named {', '.join(twice)}: rename the schema")
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
