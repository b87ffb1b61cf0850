"""The SDK and the daemon's OpenAPI document agree: every (method, path) of the document
is a client method and every client method a route of the document, and the generated
types are those of the document. A route change that forgets the SDK fails here."""

import importlib.util
import pathlib

from mandate_sdk import NOT_IN_OPENAPI, ROUTES, AsyncClient, Client
from mandate_sdk.types import OPERATIONS

ROOT = pathlib.Path(__file__).resolve().parents[1]


def document_operations(doc):
    return {(m.upper(), p) for p, item in doc["paths"].items() for m in ("get", "put", "post", "delete", "patch") if m in item}


def test_every_operation_has_a_method_and_every_method_an_operation(stack):
    with Client(stack.url) as client:
        doc = client.openapi()
    documented = document_operations(doc)
    sdk = {route: name for name, route in ROUTES.items() if name not in NOT_IN_OPENAPI}
    missing = sorted(documented - set(sdk))
    extra = sorted(set(sdk) - documented)
    assert not missing, f"operations without an SDK method (add them to _routes.py and client.py): {missing}"
    assert not extra, f"SDK methods whose route the document does not have: {[(sdk[r], r) for r in extra]}"
    for name in NOT_IN_OPENAPI:
        assert ROUTES[name] not in documented, f"{name} is in the document now: remove it from NOT_IN_OPENAPI"
    for name in ROUTES:
        assert callable(getattr(Client, name, None)) and callable(getattr(AsyncClient, name, None)), name


def test_the_generated_types_are_those_of_the_live_document(stack):
    spec = importlib.util.spec_from_file_location("gen_schema", ROOT / "scripts" / "gen_schema.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with Client(stack.url) as client:
        doc = client.openapi()
    committed = (ROOT / "src" / "mandate_sdk" / "_schema.py").read_text()
    assert committed == gen.generate(doc), f"_schema.py is stale: run scripts/gen_schema.py {stack.url}/v1/openapi.json and commit"
    assert OPERATIONS == document_operations(doc)
