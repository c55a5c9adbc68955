"""The OpenAPI document: served by us with its docs, valid, and exact about every route."""

import json
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def api_routes() -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every /v1/ and /codec/ route Django knows."""
    found = set()

    def walk(patterns, prefix):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and route.startswith(("v1/", "codec/")):
                view = entry.callback.view_class
                for method in view.http_method_names:
                    if method not in ("options", "head") and hasattr(view, method):
                        found.add(("/" + CONVERTER.sub(r"{\1}", route), method))

    walk(get_resolver().url_patterns, "")
    return found


def test_schema_validates_with_no_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "s.yaml")


# Routes for other machines than API clients, left out of the schema on purpose.
UNDOCUMENTED = {("/v1/webhooks/twilio/message-status", "post")}  # Twilio's status callback


def test_every_api_route_and_method_is_in_the_schema_and_nothing_else(schema):
    documented = {
        (path, method) for path, operations in schema["paths"].items() for method in operations
    }

    assert documented == api_routes() - UNDOCUMENTED


def test_custom_methods_keep_their_colon_paths(schema):
    for path in ("/v1/customers/{customer_id}:verify", "/v1/customers/{customer_id}:resendCode"):
        operation = schema["paths"][path]["post"]
        (parameter,) = [p for p in operation["parameters"] if p["in"] == "path"]
        assert parameter["name"] == "customer_id"
        assert parameter["schema"] == {"type": "string", "format": "uuid"}
    assert "/v1/customers:batchGet" in schema["paths"]


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/v1/customers", "post", {"200", "201", "400", "409", "413", "415", "429", "503"}),
        ("/v1/customers/{customer_id}", "get", {"200", "404"}),
        ("/v1/customers:batchGet", "get", {"200", "400"}),
        (
            "/v1/customers/{customer_id}:verify",
            "post",
            {"200", "400", "404", "409", "413", "415", "422", "429", "503"},
        ),
        (
            "/v1/customers/{customer_id}:resendCode",
            "post",
            {"202", "400", "404", "409", "413", "415", "422", "429", "503"},
        ),
        ("/v1/customers/{customer_id}/verification", "get", {"200", "404", "503"}),
        ("/codec/decode", "post", {"200", "400", "401", "403", "413", "415", "429"}),
    ],
)
def test_each_operation_lists_its_statuses_with_the_error_shape(schema, path, method, statuses):
    responses = schema["paths"][path][method]["responses"]

    assert set(responses) == statuses
    for status, response in responses.items():
        body = response["content"]["application/json"]["schema"]
        if status >= "400":
            assert body == {"$ref": "#/components/schemas/Error"}
        if status == "429":
            assert response["headers"]["Retry-After"]["schema"]["type"] == "integer"


def test_request_bodies_refuse_unknown_fields(schema):
    components = schema["components"]["schemas"]

    for name in ("CustomerCreateRequest", "CustomerInputRequest", "VerifyCodeRequest"):
        assert components[name]["additionalProperties"] is False
    assert components["VerifyCodeRequest"]["properties"]["verification_code"]["pattern"] == (
        "^[0-9]{4,10}$"
    )


def test_nullable_status_fields_are_marked(schema):
    detail = schema["components"]["schemas"]["VerificationDetail"]["properties"]

    for name in ("attempts_remaining", "code_expires_at", "finished_at", "window_ends_at"):
        assert detail[name]["nullable"] is True
    assert "nullable" not in detail["started_at"]


def test_schema_is_also_served_as_yaml():
    response = Client().get("/api/schema/")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_swagger_ui_is_served_from_our_own_static_files():
    page = Client().get("/api/docs/")
    html = page.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)

    assert page.status_code == 200
    assert any("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in a for a in assets)
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    bundle = next(a for a in assets if a.endswith("swagger-ui-bundle.js"))
    assert Client().get(bundle).status_code == 200
