"""Checks the daemon's OpenAPI document and real responses against it, with
validators that share no code with the daemon.

Input (a JSON file named on the command line):
  {"document": <the document from GET /v1/openapi.json>,
   "responses": [{"method": "post", "path": "/v1/wallets/{id}/transactions",
                  "status": 202, "body": {...}}, ...]}
Output (stdout, JSON):
  {"document": null | "<why the document is not valid OpenAPI>",
   "responses": [null | "<why the body does not match>", ...]}

The document is validated with openapi-spec-validator (OpenAPI 3.1). A body is
validated with jsonschema (Draft 2020-12, the dialect of OpenAPI 3.1) against the
schema the document declares for its path, method and status: a 2xx status must be
declared; an error status falls back to the operation's `default` response.
"""

import json
import sys

import jsonschema
import referencing
import referencing.jsonschema
from openapi_spec_validator import validate as validate_document

BASE = "urn:mandate:openapi"


def response_schema(document, method, path, status):
    operation = document.get("paths", {}).get(path, {}).get(method)
    if operation is None:
        return None, f"the document has no {method.upper()} {path}"
    responses = operation.get("responses", {})
    response = responses.get(str(status))
    if response is None and status >= 400:
        response = responses.get("default")
    if response is None:
        return None, f"{method.upper()} {path} declares no response {status}"
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None, f"{method.upper()} {path} {status} declares no JSON schema"
    return schema, None


def check_body(document, registry, item):
    schema, problem = response_schema(document, item["method"], item["path"], item["status"])
    if problem:
        return problem
    # "#/components/…" inside the schema resolves against the document itself.
    validator = jsonschema.Draft202012Validator(
        {"$id": BASE + "/response", "$ref": BASE + schema["$ref"]} if "$ref" in schema else schema,
        registry=registry,
    )
    errors = sorted(validator.iter_errors(item["body"]), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    return "; ".join(
        f"at $/{'/'.join(str(p) for p in error.absolute_path)}: {error.message[:300]}" for error in errors[:5]
    )


def main():
    with open(sys.argv[1], encoding="utf-8") as source:
        request = json.load(source)
    document = request["document"]
    report = {"document": None, "responses": []}
    try:
        validate_document(document)
    except Exception as error:  # noqa: BLE001 - any refusal is the answer
        report["document"] = f"{type(error).__name__}: {str(error)[:2000]}"
    resource = referencing.Resource(contents=document, specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource(BASE, resource)
    for item in request["responses"]:
        try:
            report["responses"].append(check_body(document, registry, item))
        except Exception as error:  # noqa: BLE001 - an unresolvable schema is a failure too
            report["responses"].append(f"{type(error).__name__}: {str(error)[:500]}")
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
