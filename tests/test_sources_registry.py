"""The registry is the one description of each source: readers take their title, licence,
attribution, citation, homepage and layout from it and repeat none of them."""

from __future__ import annotations

import ast
import inspect

import pytest

from dermasynth_builder.paths import sample_root
from dermasynth_builder.sources import SOURCES, get_source, reader_class
from dermasynth_builder.sources.base import Source
from dermasynth_builder.sources.registry import REGISTRY, SOURCE_NAMES, license_for

DESCRIBED = ("title", "license", "attribution", "citation", "homepage", "layout")


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_reader_describes_itself_from_the_registry(name):
    info = REGISTRY[name]
    cls = reader_class(name)
    assert cls.name == name and cls.info is info and SOURCES[name] is cls
    for attr in DESCRIBED:
        assert getattr(cls, attr) == getattr(info, attr), attr
    license_for(cls.license)  # every licence is one the card can name and link


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_reader_module_repeats_no_registry_text(name):
    """No string of the registry entry appears in the reader's module, nor a class attribute
    that would shadow it."""
    source = inspect.getsource(inspect.getmodule(reader_class(name)))
    tree = ast.parse(source)
    strings = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    texts = {getattr(info, attr) for info in REGISTRY.values() for attr in DESCRIBED}
    texts -= {info.title for info in REGISTRY.values()}  # short names may be used in messages
    assert not strings & texts, strings & texts
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            assigned = {
                target.id
                for stmt in node.body
                if isinstance(stmt, ast.Assign)
                for target in stmt.targets
                if isinstance(target, ast.Name)
            }
            assert not assigned & set(DESCRIBED), (node.name, assigned & set(DESCRIBED))


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_records_carry_the_registry_licence_and_attribution(name):
    result = get_source(name).read(sample_root(name))
    assert result.records
    expected = (REGISTRY[name].license, REGISTRY[name].attribution)
    assert {(rec.license, rec.attribution) for rec in result.records} == {expected}


def test_registry_order_and_unknown_names():
    assert list(SOURCES) == list(SOURCE_NAMES) == list(REGISTRY)
    assert "nope" not in SOURCES
    with pytest.raises(KeyError, match="known: derm12345"):
        get_source("nope")


def test_a_reader_missing_from_the_registry_fails_when_defined():
    with pytest.raises(KeyError, match="unknown source 'not_registered'"):

        class NotRegistered(Source):
            name = "not_registered"
