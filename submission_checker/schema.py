"""The checker's JSON Schemas (schemas/*.schema.json, draft 2020-12), applied with jsonschema.

jsonschema takes ~100 us per log line, too slow for every line of thousands of logs, so log lines go through a
fast path: the schema is translated into one plain Python function for the few keywords it uses (type, enum,
required, properties, ...). A line the fast path rejects is validated again by jsonschema, which writes the
message and the failing schema path; a schema using any other keyword is applied by jsonschema alone. A test
checks that both paths agree on valid and mutated events.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


class Schema:
    def __init__(self, name: str):
        self.name = f"{name}.schema.json"
        schema = json.loads((SCHEMA_DIR / self.name).read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        self.validator = jsonschema.Draft202012Validator(schema)
        self.fast, self.fast_source = _compile(schema)
        self.memo = {}

    def is_valid(self, instance) -> bool:
        if self.fast is not None and self.fast(instance):
            return True
        return self.validator.is_valid(instance)

    def error(self, instance) -> str | None:
        """None when valid, else one sentence: where in the document, what is wrong, which schema rule.
        Answers are remembered by document text: the runs of one system repeat the same provenance record."""
        if self.fast is not None and self.fast(instance):
            return None
        text = json.dumps(instance, sort_keys=True)
        if text not in self.memo:
            if len(self.memo) > 1000:
                self.memo.clear()
            self.memo[text] = self._error(instance)
        return self.memo[text]

    def _error(self, instance) -> str | None:
        if self.is_valid(instance):
            return None
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(instance))
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        rule = "/".join(str(p) for p in error.absolute_schema_path)
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
        return f"{message} (at {where}; {self.name}#/{rule})"


@lru_cache(maxsize=None)
def load(name: str) -> Schema:
    return Schema(name)


# --- fast path: the schema translated into one plain Python function ----------------------------------------------
# Only the keywords below are translated, each exactly as jsonschema applies it (a keyword constrains only values of
# its type: `minimum` ignores strings, `required` ignores non-objects, ...). A schema with any other keyword gets
# no fast path. The generated source is kept in Schema.fast_source for reading.
ANNOTATIONS = {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"}
TYPE_TESTS = {
    "null": "{v} is None",
    "boolean": "isinstance({v}, bool)",
    "integer": "((isinstance({v}, int) and not isinstance({v}, bool))"
               " or (isinstance({v}, float) and {v}.is_integer()))",
    "number": "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
    "string": "isinstance({v}, str)",
    "array": "isinstance({v}, list)",
    "object": "isinstance({v}, dict)",
}


def _compile(schema):
    """Return (function, source) equivalent to the schema, or (None, None) when it uses another keyword.
    Each entry of $defs becomes its own function, which "$ref": "#/$defs/<name>" calls."""
    defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}
    constants = {"REFS": {f"#/$defs/{name}": f"def_{i}" for i, name in enumerate(defs)}}
    lines = []
    for function, sub in [("valid", schema)] + [(f"def_{i}", sub) for i, sub in enumerate(defs.values())]:
        lines.append(f"def {function}(x):")
        if not _emit(sub, "x", lines, 1, constants):
            return None, None
        lines.append("    return True")
    source = "\n".join(lines)
    exec(source, constants)
    return constants["valid"], source


def _emit(schema, v, lines, depth, constants) -> bool:
    """Append lines that `return False` when the value named v breaks schema; False for an unsupported schema.
    As in jsonschema, a keyword constrains only values of its JSON type (`minimum` ignores strings, ...); where the
    schema declares one type, that type is checked first and the keywords need no type test of their own."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    declared = schema.get("type")
    known = declared if isinstance(declared, str) else None

    def const(value):
        name = f"C{len(constants)}"
        constants[name] = value
        return name

    def applies(kind):  # None: the keyword cannot apply (another type is declared); "": no test needed
        if known is None:
            return TYPE_TESTS[kind].format(v=v)
        return "" if known == kind or (known == "integer" and kind == "number") else None

    def reject_if(kind, condition, at=depth):
        test = applies(kind) if kind else ""
        if test is not None:
            lines.append(f"{'    ' * at}if {test + ' and ' if test else ''}{condition}: return False")

    def block(kind, body_for):  # a nested block that only applies to values of one type
        test = applies(kind)
        if test is None:
            return True
        body = []
        if not body_for(depth + (1 if test else 0), body):
            return False
        if body:
            lines.extend(([f"{'    ' * depth}if {test}:"] if test else []) + body)
        return True

    if declared is not None:
        types = [declared] if isinstance(declared, str) else declared
        reject_if(None, "not (" + " or ".join(TYPE_TESTS[t].format(v=v) for t in types) + ")")
    for keyword, arg in schema.items():
        if keyword in ANNOTATIONS or keyword == "type":
            continue
        if keyword in ("enum", "const") and all(isinstance(e, str) or e is None
                                                for e in (arg if keyword == "enum" else [arg])):
            members = arg if keyword == "enum" else [arg]  # strings and null only: no 1 == 1.0 == True subtleties
            strings = const(frozenset(e for e in members if e is not None))
            either = f" or {v} is None" if None in members else ""
            reject_if(None, f"not ((isinstance({v}, str) and {v} in {strings}){either})")
        elif keyword == "$ref" and arg in constants["REFS"]:
            reject_if(None, f"not {constants['REFS'][arg]}({v})")
        elif keyword in ("minimum", "maximum", "exclusiveMinimum"):
            operator = {"minimum": "<", "maximum": ">", "exclusiveMinimum": "<="}[keyword]
            reject_if("number", f"{v} {operator} {const(arg)}")
        elif keyword in ("minLength", "maxLength"):
            reject_if("string", f"len({v}) {'<' if keyword == 'minLength' else '>'} {const(arg)}")
        elif keyword == "pattern":
            reject_if("string", f"{const(re.compile(arg).search)}({v}) is None")
        elif keyword == "required":
            reject_if("object", f"not {const(frozenset(arg))} <= {v}.keys()")
        elif keyword == "additionalProperties" and arg is False and "patternProperties" not in schema:
            reject_if("object", f"not {const(frozenset(schema.get('properties', {})))}.issuperset({v})")
        elif keyword == "additionalProperties" and isinstance(arg, dict) and "patternProperties" not in schema:
            def body_for(at, body):  # every member that `properties` does not name
                key, item, checks = f"{v}_key", f"{v}_extra", []
                if not _emit(arg, item, checks, at + 1, constants):
                    return False
                if checks:
                    pad, named = "    " * at, const(frozenset(schema.get("properties", {})))
                    body += [f"{pad}for {key}, {item} in {v}.items():", f"{pad}    if {key} in {named}: continue",
                             *checks]
                return True
            if not block("object", body_for):
                return False
        elif keyword in ("minItems", "maxItems"):
            reject_if("array", f"len({v}) {'<' if keyword == 'minItems' else '>'} {const(arg)}")
        elif keyword == "properties":
            def body_for(at, body):
                for i, (name, sub) in enumerate(arg.items()):
                    inner, checks = f"{v}_{i}", []
                    if not _emit(sub, inner, checks, at + 1, constants):
                        return False
                    if checks:
                        pad = "    " * at
                        body += [f"{pad}if {name!r} in {v}:", f"{pad}    {inner} = {v}[{name!r}]", *checks]
                return True
            if not block("object", body_for):
                return False
        elif keyword == "items":
            def body_for(at, body):
                item, checks = f"{v}_item", []
                if not _emit(arg, item, checks, at + 1, constants):
                    return False
                if checks:
                    skip = len(schema.get("prefixItems", []))
                    body += [f"{'    ' * at}for {item} in {f'{v}[{skip}:]' if skip else v}:", *checks]
                return True
            if not block("array", body_for):
                return False
        elif keyword == "prefixItems":
            def body_for(at, body):
                for i, sub in enumerate(arg):
                    item, checks = f"{v}_{i}", []
                    if not _emit(sub, item, checks, at + 1, constants):
                        return False
                    if checks:
                        pad = "    " * at
                        body += [f"{pad}if len({v}) > {i}:", f"{pad}    {item} = {v}[{i}]", *checks]
                return True
            if not block("array", body_for):
                return False
        else:
            return False
    return True
