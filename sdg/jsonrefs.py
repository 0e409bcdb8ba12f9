"""References inside one JSON Schema document: `$ref` by JSON pointer, by `$anchor`, or by the
`$id` (draft-04: `id`) of an embedded schema. A reference that leaves the document is remote."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

# Keywords whose value is a schema, a list of schemas, or a mapping of names to schemas: where
# `$id` and `$anchor` can appear. Values of other keywords (enum, const, default...) are data.
SCHEMA_VALUED = {"items", "additionalItems", "contains", "additionalProperties", "propertyNames", "not", "if", "then", "else",
                 "unevaluatedItems", "unevaluatedProperties", "contentSchema"}
SCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems", "items"}
SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}


class RefError(ValueError):
    """A reference that cannot be followed; str() says why."""


class Document:
    """Every schema resource of one document, by base URI, with its anchors."""

    def __init__(self, root: Any, draft4: bool):
        self.root = root
        self.draft4 = draft4
        self.resources: dict[str, tuple[Any, str]] = {}  # URI -> (schema, its pointer)
        self.anchors: dict[tuple[str, str], tuple[Any, str]] = {}
        self.bases: dict[str, str] = {}  # a schema's pointer -> the base URI its refs resolve against
        base = self._id_of(root) or ""
        self.root_base = urldefrag(base)[0]
        self.resources[self.root_base] = (root, "")
        self._index(root, "", self.root_base)

    def _id_of(self, schema: Any) -> str | None:
        if not isinstance(schema, dict):
            return None
        value = schema.get("$id", schema.get("id") if self.draft4 else None)
        return value if isinstance(value, str) else None

    def _index(self, schema: Any, pointer: str, base: str) -> None:
        if not isinstance(schema, dict):
            return
        own = self._id_of(schema)
        if own and pointer:
            uri, fragment = urldefrag(urljoin(base, own))
            if uri:
                base = uri
                self.resources.setdefault(uri, (schema, pointer))
            elif fragment and self.draft4:  # draft-04's plain-name fragments: {"id": "#foo"}
                self.anchors[(base, fragment)] = (schema, pointer)
        self.bases[pointer] = base
        for key in ("$anchor", "$dynamicAnchor"):
            if isinstance(schema.get(key), str):
                self.anchors[(base, schema[key])] = (schema, pointer)
        for key, value in schema.items():
            at = f"{pointer}/{escape(key)}"
            if key in SCHEMA_MAPS and isinstance(value, dict):
                for name, sub in value.items():
                    self._index(sub, f"{at}/{escape(name)}", base)
            elif key in SCHEMA_LISTS and isinstance(value, list):
                for i, sub in enumerate(value):
                    self._index(sub, f"{at}/{i}", base)
            elif key in SCHEMA_VALUED:
                self._index(value, at, base)

    def base_of(self, pointer: str) -> str:
        """The base URI refs at `pointer` resolve against (the nearest indexed schema's)."""
        while pointer not in self.bases and pointer:
            pointer = pointer.rsplit("/", 1)[0]
        return self.bases.get(pointer, self.root_base)

    def resolve(self, ref: str, pointer: str) -> tuple[Any, str]:
        """The schema `ref` (written at `pointer`) names, and its pointer in this document."""
        base = self.base_of(pointer)
        uri, fragment = urldefrag(urljoin(base, ref) if base else ref)
        if uri not in self.resources:
            raise RefError(f"$ref {ref!r} points outside this schema; only references within it are supported")
        schema, at = self.resources[uri]
        fragment = unquote(fragment)
        if not fragment:
            return schema, at
        if not fragment.startswith("/"):
            if (uri, fragment) not in self.anchors:
                raise RefError(f"$ref {ref!r}: no $anchor {fragment!r} in this schema")
            return self.anchors[(uri, fragment)]
        for part in fragment[1:].split("/"):
            key = unescape(part)
            if isinstance(schema, dict) and key in schema:
                schema = schema[key]
            elif isinstance(schema, list) and key.isdigit() and int(key) < len(schema):
                schema = schema[int(key)]
            else:
                raise RefError(f"$ref {ref!r}: nothing at {fragment!r} in this schema")
            at = f"{at}/{escape(key)}"
        return schema, at


def escape(key: str) -> str:
    """A key as one JSON pointer segment."""
    return str(key).replace("~", "~0").replace("/", "~1")


def unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
