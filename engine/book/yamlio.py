"""YAML loading that remembers line numbers and keeps decimals exact.

Rule and policy files are edited by people; every error must point at the
file and line. Floats are read as exact decimal text, so ``18591.7`` in a
policy file is exactly 18591.7, not a binary approximation.

A rule file may also come from a user (a reform), so what a document can cost is bounded
by its length: aliases (``*name``), which let a few lines stand for an exponentially large
tree, are refused, and so is nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml


class LineDict(dict):
    """A mapping from a YAML file, with the line (1-based) of itself and of each key."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


MAX_DEPTH = 64  # nested mappings and lists; the shipped files reach 6


class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML this loader will not read (an alias, too deep)."""


class _Loader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _Refused(
                None, None, "不允许使用 YAML 别名（*name），请写出完整内容 / YAML aliases (*name) are not allowed", mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(None, None, f"嵌套超过{MAX_DEPTH}层 / nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int):
            raise yaml.constructor.ConstructorError(None, None, f"mapping key must be text, got {key!r}", key_node.start_mark)
        key = str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} / 重复的键 {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    return Decimal(text)


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (ten times faster; about 0.15 s of every start-up), for texts ``_plainly_bounded``
    shows cannot hold an alias or nest deep enough to strain its recursion; depth is then checked on the
    composed tree. Anything else goes through ``_Loader``, which refuses aliases and depth as it reads."""


for _cls in (_Loader, _FastLoader):
    _cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
    _cls.add_constructor("tag:yaml.org,2002:float", _construct_float)

_FAST_LIMIT = 1000  # longest line, and most flow brackets: nesting is at most about 2 per column plus 1 per bracket


def _plainly_bounded(text: str) -> bool:
    """No anchor (so no alias can resolve), short lines and few flow brackets: libyaml's recursive composer
    goes at most a few thousand levels deep on such a text, whatever it holds."""
    if "&" in text or text.count("[") + text.count("{") > _FAST_LIMIT:
        return False
    return max(map(len, text.splitlines()), default=0) <= _FAST_LIMIT


def _too_deep(root: yaml.Node) -> yaml.Node | None:
    """The first node in document order nested deeper than ``MAX_DEPTH`` (counted as ``_Loader`` counts,
    keys included, so both name the same line), if any; iterative, so no recursion to exhaust."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            continue
        stack.extend((child, depth + 1) for child in reversed(children))
    return None


def _load_fast(text: str) -> Any:
    loader = _FastLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        deep = _too_deep(node)
        if deep is not None:
            raise _Refused(None, None, f"嵌套超过{MAX_DEPTH}层 / nested deeper than {MAX_DEPTH} levels", deep.start_mark)
        return loader.construct_document(node)
    finally:
        loader.dispose()


class YamlError(ValueError):
    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


def load_yaml(path: Path, display: str | None = None) -> Any:
    text = path.read_text(encoding="utf-8")
    return loads_yaml(text, display or str(path))


def loads_yaml(text: str, display: str) -> Any:
    try:
        return _load_fast(text) if _plainly_bounded(text) else yaml.load(text, Loader=_Loader)
    except _Refused as e:
        raise YamlError(display, e.problem_mark.line + 1, e.problem) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlError(display, line, f"YAML 格式错误 / YAML syntax error: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise YamlError(display, 0, f"YAML 格式错误 / YAML syntax error: {e}") from None
