"""YAML files people write by hand (loyalty programs, journeys), read with PyYAML's safe
loader made strict:

- YAML 1.2 core scalars: only ``true``/``false`` are booleans (``NO``, the country code,
  stays a string; YAML 1.1 would read it as false), ``1e3`` is a number, ``10:30`` stays
  a string (YAML 1.1 reads it as 630), and dates stay strings for the models that read
  the file to parse;
- a key given twice in one mapping is an error (PyYAML would keep the last one);
- anchors and aliases are refused (a hand-written file does not need them, and expanding
  them is how a small file becomes a huge one);
- every error names the file and the line.

>>> read_yaml("a: 1\\nb:\\n  - x\\n  - {y: NO, d: 2026-11-01}\\n")
{'a': 1, 'b': ['x', {'y': 'NO', 'd': '2026-11-01'}]}
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from liucun.core._errors import InvalidInput


class YamlError(InvalidInput):
    """A YAML file is malformed or uses what liucun refuses (duplicate keys, aliases)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no implicit dates, no duplicate keys, no
    aliases."""


_REPLACED = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "timestamp")}
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the key {key!r} appears twice in one mapping (first on line {seen[key]}); "
                "keep one",
                key_node.start_mark,
            )
        seen[key] = _line(key_node)
    return loader.construct_mapping(node, deep=deep)  # type: ignore[no-untyped-call]


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _compose_node(self: _StrictLoader, parent: Any, index: Any) -> Any:
    if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
        mark = self.peek_event().start_mark
        raise yaml.composer.ComposerError(
            None,
            None,
            "anchors and aliases (&name, *name) are not supported; write the value out",
            mark,
        )
    return yaml.composer.Composer.compose_node(self, parent, index)


_StrictLoader.compose_node = _compose_node  # type: ignore[method-assign]


def read_yaml(text: str, *, source: str = "the YAML text") -> Any:
    """The one YAML document in ``text``; :class:`YamlError` naming ``source`` and the line
    for anything malformed or refused."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        problem = exc.problem or exc.context or "malformed YAML"
        if "expected a single document" in str(exc):
            problem = "one document per file (remove the second '---' and what follows)"
        raise YamlError(f"{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{source}: {' '.join(str(exc).split())}") from None
