"""Reading a config file's YAML, strictly: the safe loader, and on top of it a key given twice in one
mapping is an error naming both lines (YAML would keep the last one silently), an alias that contains
itself or aliases that expand past `MAX_VALUES` values are refused before anything walks them, and
every problem (a folder or an unreadable file, bytes that are not UTF-8, YAML no constructor takes) is
an `InputError` naming the file and, where there is one, the line. `At` then names the line of any
path in the document, for the errors found when it validates (harness.config.load).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputError

Lines = dict[tuple, int]  # every path in the YAML document (keys and list indexes) -> its 1-based line

MAX_VALUES = 100_000  # values in a config, aliases expanded: far past any real one, far below a bomb
_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping: where its mapping starts, the key, and its two lines."""

    def __init__(self, mapping: yaml.MappingNode, key: Any, first: int, second: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.mapping, self.key, self.first, self.second = mapping, key, first, second


class StrictLoader(yaml.SafeLoader):
    """The safe loader that refuses a key given twice in one mapping (`DuplicateKey`). Keys merged in
    with `<<: *anchor` may be overridden, as YAML means them to be."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                    continue  # a complex key: the safe constructor refuses it (unhashable)
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKey(node, key, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, name: str) -> tuple[Any, Lines]:
    """What the YAML file at `path` holds (named `name` in errors), and the line of every path in it."""
    text = _text(path, name)
    try:
        loader = StrictLoader(text)
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, found before any parsing
        line = text.count("\n", 0, e.position) + 1
        raise InputError(name, f"YAML cannot hold character #x{e.character:04x}", line=line) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_expansion(node, name)
        lines, paths = _line_index(node)
        try:
            return loader.construct_document(node), lines
        except DuplicateKey as e:
            raise _duplicate(e, paths, name) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = mark.line + 1 if mark else None
        raise InputError(name, f"YAML syntax error: {getattr(e, 'problem', None) or e}", line=at) from None
    except RecursionError:
        raise InputError(name, "YAML nested too deeply") from None
    except (ValueError, TypeError, OverflowError, AttributeError) as e:  # a tag's constructor on text it
        # cannot take: `!!int x`, `!!timestamp 2020-99-99` (PyYAML's regex finds no match: AttributeError)
        raise InputError(name, f"YAML value that cannot be read: {e}".split("\n")[0]) from None
    finally:
        loader.dispose()


def _duplicate(e: DuplicateKey, paths: dict[int, tuple], name: str) -> InputError:
    """The one line naming a key given twice: its field, and both lines (the second as the line)."""
    where = (*paths.get(id(e.mapping), ()), e.key)
    lines = f"twice on line {e.first}" if e.first == e.second else f"on lines {e.first} and {e.second}"
    return InputError(
        name,
        f"duplicate key {e.key!r}, {lines}: give it once (YAML would keep the last silently)",
        line=e.second,
        field=".".join(str(p) for p in where),
    )


def _text(path: Path, name: str) -> str:
    """The config file's text, or one line saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except IsADirectoryError:
        raise InputError(name, "is a folder, not a config file") from None
    except UnicodeDecodeError as e:
        raise InputError(name, f"not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise InputError(name, f"cannot be read ({e.strerror or e})") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, name: str) -> None:
    """No alias inside what it names (a cycle no walk ends), and at most `MAX_VALUES` values once every
    alias is expanded (aliases of aliases grow exponentially: a "billion laughs"). Each node is visited
    once (sizes memoised), without recursion."""
    size: dict[int, int] = {}
    entered: set[int] = set()  # the nodes on the way down to the current one
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            entered.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] > MAX_VALUES:
                raise InputError(
                    name,
                    f"YAML aliases expand to more than {MAX_VALUES:,} values",
                    line=node.start_mark.line + 1,
                )
            continue
        if key in size:
            continue
        if key in entered:
            raise InputError(name, "YAML alias inside what it names (a recursive alias)", line=_line(node))
        entered.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(_children(node)))


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _line_index(root: yaml.Node) -> tuple[Lines, dict[int, tuple]]:
    """Every path (keys and list indexes) in the YAML document -> its 1-based line (a key's own line);
    and each node -> the first path it is at. Bounded: `_check_expansion` came first."""
    index: Lines = {}
    paths: dict[int, tuple] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        index[path] = _line(n)
        paths.setdefault(id(n), path)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):  # a complex key: the constructor refuses it
                    walk(v, path + (k.value,))
                    index[path + (k.value,)] = _line(k)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    walk(root, ())
    return index, paths


def line_of(index: Lines, loc: tuple) -> int | None:
    """The line of `loc`, or of its nearest ancestor present in the file."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in index:
            return index[loc[:n]]
    return None


@dataclass(frozen=True)
class At:
    """The config file being loaded: its name and the line of every path in it."""

    name: str
    lines: Lines

    def error(self, loc: tuple, message: str) -> InputError:
        """The one-line error at `loc` (keys and list indexes): its line, and `loc` as the field."""
        return InputError(self.name, message, line=line_of(self.lines, loc), field=".".join(str(p) for p in loc))
