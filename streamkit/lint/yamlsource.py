"""YAML documents that remember the line of every key, so findings can point at file:line."""

from __future__ import annotations

from typing import Any

import yaml


class LineDict(dict[Any, Any]):
    line: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


class LineList(list[Any]):
    line: int = 1


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_documents(text: str) -> list[Any]:
    """Every document of a (multi-document) YAML text; raises yaml.YAMLError on bad YAML (also on
    YAML that parses but cannot be a config, such as a mapping used as a key)."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except (TypeError, ValueError, RecursionError) as exc:
        raise yaml.YAMLError(f"unsupported YAML ({type(exc).__name__}: {exc})") from exc


def dig(node: Any, *keys: str) -> Any:
    """node[k1][k2]... or None when any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def line_at(node: Any, *keys: str) -> int:
    """Line of the deepest existing key along `keys` (the parent's line when the key is absent)."""
    line = getattr(node, "line", 1)
    for key in keys:
        if not isinstance(node, LineDict):
            break
        line = node.line_of(key)
        if key not in node:
            break
        node = node[key]
    return line


def mappings(node: Any) -> list[LineDict]:
    """The mapping items of a YAML list (anything else is skipped)."""
    return [item for item in node or [] if isinstance(item, LineDict)] if isinstance(node, list) else []
