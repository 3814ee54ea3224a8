"""The OpenAPI schema's shared parts: the problem document every operation may answer with."""

from __future__ import annotations

PROBLEM = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Messages by field.",
        },
    },
    "required": ["type", "title", "status", "detail"],
}

# Answers any operation may give, whatever its own successes.
COMMON = {
    "400": "The request is not valid (wrong types, unknown fields, a bad cursor).",
    "401": "No API key, or a key that is unknown or revoked.",
    "403": "The key's role does not allow this.",
    "404": "Not found, or it belongs to another team.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "A conflict: a request with this Idempotency-Key is still being processed, or the "
    "message can no longer be canceled.",
    "413": "The request body is too large.",
    "415": "Unsupported media type.",
    "422": "The request is understood but cannot be carried out (the compose rules, a reused "
    "Idempotency-Key).",
    "429": "Too many requests; see Retry-After.",
}


def add_problem_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in components.items():
        # Request bodies refuse fields they do not know (messaging/api/serializers.py: Strict).
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    components["Problem"] = PROBLEM
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in COMMON.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": content}
                )
            if "429" in operation["responses"]:
                operation["responses"]["429"].setdefault(
                    "headers",
                    {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
                )
    return result
