"""The UA API contract as the simulator enforces it: openapi-core over the real YAML.

Every request under :data:`API_PREFIX` is unmarshalled against
``wsdl/edoreczenia/uaapi_3.0.8.1.yaml``; the same contract says which OAuth2 scopes each
operation needs. openapi-core does not implement OAuth2 security schemes (it warns and
accepts anything), so a small provider stands in: it requires a ``Bearer`` token, whose
validity and scopes the simulator itself checks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flask import Request, Response
from openapi_core import Config, OpenAPI
from openapi_core.contrib.flask import FlaskOpenAPIRequest, FlaskOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import BaseProvider
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

DEFAULT_CONTRACT = (
    Path(__file__).resolve().parents[2] / "wsdl" / "edoreczenia" / "uaapi_3.0.8.1.yaml"
)
#: The contract's ``servers`` entry: every operation lives under this prefix.
API_PREFIX = "/api/v1"
#: The statuses the contract declares for the operations served; answers with others
#: (401, 403, 404, 429, 5xx) are the simulator's protocol-level answers, which the
#: contract does not describe, so they are not checked against it.
DECLARED_STATUSES = frozenset({200, 202, 400})
_CONTRACT_URI = "urn:edoreczenia:uaapi:3.0.8"


@dataclass(frozen=True, slots=True)
class ValidatedRequest:
    """A request the contract accepted, with its parameters as the contract types them."""

    path: Mapping[str, Any]
    query: Mapping[str, Any]
    scopes: frozenset[str]


class ContractViolation(Exception):
    """A request or response breaks the contract; ``details`` says how."""

    def __init__(self, details: list[str]) -> None:
        super().__init__("; ".join(details))
        self.details = details


class BearerProvider(BaseProvider):
    """Requires ``Authorization: Bearer <token>`` for the contract's OAuth2 scheme."""

    def __call__(self, parameters: RequestParameters) -> Any:
        """Return the bearer token.

        Raises:
            SecurityProviderError: no bearer token in the request.
        """
        kind, _, token = str(parameters.header.get("Authorization", "")).partition(" ")
        if kind.lower() != "bearer" or not token:
            raise SecurityProviderError("missing bearer token")
        return token


class _BearerSecurity(SecurityProviderFactory):
    PROVIDERS = {**SecurityProviderFactory.PROVIDERS, "oauth2": BearerProvider}  # noqa: RUF012


class Contract:
    """The UA API contract, loaded once, checking requests and responses."""

    def __init__(self, path: Path | str = DEFAULT_CONTRACT) -> None:
        """Load and check the OpenAPI document at ``path``."""
        self._api = OpenAPI.from_file_path(
            str(path), config=Config(security_provider_factory=_BearerSecurity())
        )
        # Plain YAML is enough to read the security requirements of each operation.
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        self._scopes = _operation_scopes(document)
        self._registry: Registry[Any] = Registry().with_resource(
            _CONTRACT_URI, Resource.from_contents(document, default_specification=DRAFT4)
        )

    def validate_request(self, request: Request) -> ValidatedRequest:
        """Unmarshal ``request`` against the contract.

        Raises:
            ContractViolation: naming every problem openapi-core found.
        """
        openapi_request = FlaskOpenAPIRequest(request)
        result = self._api.unmarshal_request(openapi_request)
        if result.errors:
            raise ContractViolation([describe(error) for error in result.errors])
        template = openapi_request.path_pattern.removeprefix(API_PREFIX)
        return ValidatedRequest(
            path=result.parameters.path,
            query=result.parameters.query,
            scopes=self._scopes.get((template, request.method.lower()), frozenset()),
        )

    def response_violations(self, request: Request, response: Response) -> list[str]:
        """What in ``response`` (to ``request``) breaks the contract; empty if nothing."""
        errors = self._api.iter_response_errors(
            FlaskOpenAPIRequest(request), FlaskOpenAPIResponse(response)
        )
        return [describe(error) for error in errors]

    def schema_violations(self, schema_name: str, instance: Any) -> list[str]:
        """What in ``instance`` breaks ``components/schemas/<schema_name>`` (callback bodies).

        Callbacks are requests the simulator makes, which openapi-core does not check.
        """
        validator = OAS30Validator(
            {"$ref": f"{_CONTRACT_URI}#/components/schemas/{schema_name}"},
            registry=self._registry,
            format_checker=OAS30Validator.FORMAT_CHECKER,
        )
        return [error.message for error in validator.iter_errors(instance)]


@functools.cache
def load_contract(path: Path = DEFAULT_CONTRACT) -> Contract:
    """The contract at ``path``, loaded once per process (loading takes a third of a second)."""
    return Contract(path)


def describe(error: BaseException) -> str:
    """One line for an openapi-core error, with the schema errors that caused it."""
    text = type(error).__name__
    cause: BaseException | None = error
    while cause is not None:
        schema_errors: Iterable[Any] = getattr(cause, "schema_errors", ()) or ()
        details = [getattr(item, "message", str(item)) for item in schema_errors]
        if details:
            return f"{text}: {'; '.join(details)}"
        if str(cause):
            text = f"{text}: {cause}"
        cause = cause.__cause__
    return text


def _operation_scopes(document: Mapping[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    scopes: dict[tuple[str, str], frozenset[str]] = {}
    for template, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict):
                needed = {
                    scope
                    for requirement in operation.get("security", [])
                    for granted in requirement.values()
                    for scope in granted
                }
                scopes[(template, method)] = frozenset(needed)
    return scopes
