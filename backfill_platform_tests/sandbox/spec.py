"""Validate simulator responses against the official API descriptions in ../shared/specs."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator, OAS31Validator

_SHARED = Path(__file__).resolve().parents[3] / "shared" / "specs"
SPECS = _SHARED if _SHARED.is_dir() else Path(__file__).resolve().parent / "specs"


@cache
def _load(path: Path) -> dict:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=yaml.CSafeLoader)


def _inline(node: Any, base: Path, seen: tuple[str, ...] = ()) -> Any:
    """Resolve every $ref (same file or a sibling file); a recursive reference becomes 'anything'."""
    if isinstance(node, list):
        return [_inline(n, base, seen) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        file_part, _, pointer = ref.partition("#")
        target_file = (base.parent / file_part) if file_part else base
        key = f"{target_file}#{pointer}"
        if key in seen:
            return {}
        target: Any = _load(target_file)
        for part in pointer.strip("/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return _inline(target, target_file, (*seen, key))
    # A discriminator only names the oneOf branch by a bare ref string; the oneOf itself validates.
    return {k: _inline(v, base, seen) for k, v in node.items() if k != "discriminator"}


def response_schema(spec: str, path: str, method: str = "get", status: str = "200") -> dict:
    file = SPECS / spec
    doc = _load(file)
    response = doc["paths"][path][method]["responses"][status]
    schema = response["schema"] if "schema" in response else response["content"]["application/json"]["schema"]
    return _inline(schema, file)


def definition(spec: str, name: str) -> dict:
    file = SPECS / spec
    return _inline(_load(file)["definitions"][name], file)


def validate(schema: dict, instance: Any, openapi_31: bool = False) -> None:
    validator = (OAS31Validator if openapi_31 else OAS30Validator)(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(_explain(e) for e in errors[:3])


def _explain(error) -> str:
    """The deepest reason (a oneOf's own message is just the whole instance)."""
    while error.context:
        error = max(error.context, key=lambda e: len(list(e.absolute_path)))
    return f"{list(error.absolute_path)}: {error.message[:200]}"
