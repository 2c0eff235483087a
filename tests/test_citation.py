"""CITATION.cff is valid Citation File Format 1.2.0 and cites the papers this workflow replicates.

The schema is the official CFF 1.2.0 JSON schema (https://citation-file-format.github.io/1.2.0/
schema.json, CC-BY-4.0), vendored as tests/cff_schema_1.2.0.json from the cffconvert 2.0.0 wheel
on PyPI (cffconvert/schemas/1.2.0/schema.json, SHA-256 below): the tests run without network,
and cffconvert itself pins jsonschema < 4, which requirements.txt's jsonschema >= 4 excludes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).with_name("cff_schema_1.2.0.json")
SCHEMA_SHA256 = "0b8d22140da702d766df318dcff3a91af2f39521298dcf36d76315fd99cc169b"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256, "schema changed"
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def test_citation_cff_is_valid_cff_1_2_0(validator, citation):
    errors = sorted(validator.iter_errors(citation), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert citation["cff-version"] == "1.2.0"


def test_the_schema_rejects_what_it_should(validator, citation):
    """The vendored schema is the real one: it rejects a missing title and an unknown key."""
    assert not validator.is_valid({k: v for k, v in citation.items() if k != "title"})
    assert not validator.is_valid({**citation, "titel": "typo"})
    bad_reference = {**citation["references"][0], "doi": "not a doi"}
    assert not validator.is_valid({**citation, "references": [bad_reference]})


def test_citation_cites_the_replicated_papers_and_matches_the_licence(citation):
    urls = {ref.get("url") for ref in citation["references"]}
    assert {"https://arxiv.org/abs/1901.06053", "https://arxiv.org/abs/1912.00018"} <= urls
    assert citation["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for arxiv in ("1901.06053", "1912.00018"):
        assert arxiv in readme, arxiv
