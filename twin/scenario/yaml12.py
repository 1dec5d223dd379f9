"""Reading the YAML files twin is given (scenarios, sweeps): YAML 1.2 core-schema values, ambiguous
scalars refused, bounded work, and a line index for messages.

* **YAML 1.2 core schema.** PyYAML implements YAML 1.1, whose implicit typing changes values silently:
  ``010`` is octal 8, ``1:30`` is 90 (base 60), ``yes``/``no``/``on``/``off`` are booleans, ``1_000`` is
  1000. twin resolves plain scalars with the 1.2 core schema (null, ``true``/``false``, decimal, ``0o``
  and ``0x`` integers, floats), and **refuses** a plain scalar that a YAML 1.1 reader (PyYAML, many
  editors and scripts) would read as a different boolean or number, and any number written with a
  leading zero (octal in 1.1, decimal in 1.2, and text such as a departement code ``09`` to a person):
  the file could mean two things, so it is refused with its line and field, and the fix (quote it, or
  write the number plainly). Dates stay text (pydantic parses them, naming the field).
* **Bounded work, in linear time.** A file over ``max_bytes`` is refused from its size, before it is
  read. The events are then counted in one pass (libyaml's parser when PyYAML has it): more than
  :data:`MAX_YAML_NODES` values or nesting deeper than :data:`MAX_YAML_DEPTH` are refused before any
  tree is built. Aliases expanding beyond :data:`MAX_YAML_NODES` values are refused too ("billion
  laughs"), counted once per node.
* **Duplicate keys refused** (PyYAML keeps the last one silently); nothing is executed (a safe loader).

Errors are :class:`twin.errors.ScenarioError`, one paragraph naming the file and, where known, the line
and the field path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import yaml

from twin.errors import ScenarioError

#: Most values (scalars, lists, mappings) a YAML file may hold, and hold once its aliases are expanded.
#: The largest shipped scenario (Auvergne 2005-2012, 30 KB) holds about 2,700.
MAX_YAML_NODES = 100_000

#: Deepest nesting of lists and mappings (scenarios nest 6 deep).
MAX_YAML_DEPTH = 32

#: Largest YAML file read, bytes (the largest shipped scenario is 30 KB).
MAX_YAML_BYTES = 1_000_000

_STR = "tag:yaml.org,2002:str"

#: The YAML 1.2 core schema's implicit resolvers (https://yaml.org/spec/1.2.2/#1032-tag-resolution),
#: plus the merge key ``<<`` (YAML 1.1's, kept: scenarios share blocks with it).
_CORE_RESOLVERS = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+0123456789.")),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
]

_LEADING_ZERO = re.compile(r"^[-+]?0[0-9]+$")
#: YAML 1.1's booleans beyond true/false, as PyYAML reads them (the 1.1 specification also lists y and n,
#: which PyYAML reads as text; twin accepts them as text).
_YAML11_WORDS = re.compile(r"^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$")


def _core_resolvers() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    table: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for tag, pattern, firsts in _CORE_RESOLVERS:
        regexp = re.compile(pattern)
        for first in firsts:
            table.setdefault(first or None, []).append((tag, regexp))
    return table


class _Core12(yaml.resolver.Resolver):
    """The YAML 1.2 core schema's resolution of plain scalars."""

    yaml_implicit_resolvers: ClassVar[dict] = _core_resolvers()


class _Yaml11(yaml.resolver.Resolver):
    """PyYAML's YAML 1.1 resolution (without timestamps), to tell which scalars it would read otherwise."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
    }


_CORE12, _YAML11 = _Core12(), _Yaml11()
_YAML11_VALUES = yaml.constructor.SafeConstructor()


class CoreLoader(yaml.SafeLoader):
    """A safe loader with the YAML 1.2 core schema's implicit resolvers, dates left as text, and
    duplicate keys refused. Use :func:`parse_yaml_text`, which also refuses ambiguous scalars."""

    yaml_implicit_resolvers: ClassVar[dict] = _Core12.yaml_implicit_resolvers

    def compose_scalar_node(self, anchor: str | None) -> yaml.ScalarNode:
        """A scalar node, marked ``explicit`` when the file tags it (``!!str 010`` is text, unambiguous)."""
        event = self.peek_event()
        node = super().compose_scalar_node(anchor)
        node.explicit = event.tag not in (None, "!")
        return node


def _construct_mapping(loader: CoreLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # YAML merge keys (<<: *base) first, as SafeLoader does
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, got {type(key).__name__}", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


CoreLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def core_tag(text: str) -> str:
    """The tag the YAML 1.2 core schema gives ``text`` written as a plain scalar."""
    return _CORE12.resolve(yaml.ScalarNode, text, (True, False))


def ambiguity(text: str) -> str | None:
    """Why ``text``, written as a plain (unquoted) scalar, is ambiguous, or None if YAML 1.1 and the YAML
    1.2 core schema read it alike (and it is no number with a leading zero)."""
    tag11, tag12 = _YAML11.resolve(yaml.ScalarNode, text, (True, False)), core_tag(text)
    if _LEADING_ZERO.match(text):
        decimal = str(int(text, 10))
        reading11 = (f"octal {int(text, 8)}" if tag11 == "tag:yaml.org,2002:int" else f"the text {text!r}")
        return (f"a number with a leading zero is ambiguous: YAML 1.1 reads it as {reading11}, YAML 1.2 as "
                f"{decimal}, and a code such as a departement number is text; write {decimal} for the number, "
                f"or quote '{text}' for text")
    if _YAML11_WORDS.match(text):
        truth = "true" if text.lower() in ("yes", "on") else "false"
        return (f"ambiguous plain scalar: YAML 1.1 reads it as the boolean {truth}, YAML 1.2 as the text "
                f"{text!r}; write true or false for a yes-or-no field, or quote '{text}' for text")
    if tag11 == tag12 or tag11 == _STR:
        return None
    value11 = _YAML11_VALUES.yaml_constructors[tag11](_YAML11_VALUES, yaml.ScalarNode(tag11, text))
    reading12 = f"the text {text!r}" if tag12 == _STR else f"a {tag12.rsplit(':', 1)[-1]}"
    if ":" in text:
        return (f"ambiguous plain scalar: YAML 1.1 reads it as the number {value11} (base 60), YAML 1.2 as "
                f"{reading12}; quote '{text}' for text (a time), or write {value11} for the number")
    return (f"ambiguous plain scalar: YAML 1.1 reads it as the number {value11}, YAML 1.2 as {reading12}; "
            f"write {value11} for the number, or quote '{text}' for text")


def format_loc(loc: tuple[Any, ...]) -> str:
    """A field path as text: ``services[0].agents``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _scan(text: str, path: str, what: str) -> int:
    """Count the file's values and check its depth in one pass over the parser's events, building no
    tree. Returns the number of aliases. A syntax error is left to the full parse, which reports it."""
    if yaml.__with_libyaml__:
        from yaml.cyaml import CParser

        parser: Any = CParser(text)
    else:
        parser = yaml.SafeLoader(text)
    nodes = aliases = depth = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise ScenarioError(f"line {event.start_mark.line + 1}: the YAML nests too deeply (more than "
                                        f"{MAX_YAML_DEPTH} levels of lists and mappings)", path=path)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise ScenarioError(f"line {event.start_mark.line + 1}: the YAML holds more than "
                                        f"{MAX_YAML_NODES:,} values, more than any {what} file: refused "
                                        "before reading further", path=path)
    except yaml.YAMLError:
        pass
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose is not None:
            dispose()
    return aliases


def _expanded_size(node: yaml.Node | None, memo: dict[int, int], depth: int = 0) -> int:
    """Number of values the composed YAML tree holds once every alias is expanded (memoised per node,
    so linear in the file's size)."""
    if node is None:
        return 0
    if id(node) in memo:
        return memo[id(node)]
    if depth > MAX_YAML_DEPTH + 2:
        raise RecursionError
    memo[id(node)] = 1  # a cycle counts once (and is reported later as too deep)
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo, depth + 1) for item in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def _line_index(node: yaml.Node | None, path: str) -> dict:
    """Map field path tuples to 1-based line numbers (an aliased node is walked once, at its anchor),
    refusing the first ambiguous plain scalar (see :func:`ambiguity`), keys included."""
    out: dict = {}
    visited: set[int] = set()

    def check(scalar: yaml.Node, loc: tuple[Any, ...]) -> None:
        if isinstance(scalar, yaml.ScalarNode) and scalar.style is None and not getattr(scalar, "explicit", False):
            why = ambiguity(scalar.value)
            if why:
                raise ScenarioError(f"line {scalar.start_mark.line + 1}, field {format_loc(loc)} = {scalar.value}: "
                                    f"{why}", path=path)

    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(node, ())] if node is not None else []
    while stack:
        item, loc = stack.pop()
        if id(item) in visited:
            continue
        visited.add(id(item))
        out.setdefault(loc, item.start_mark.line + 1)
        check(item, loc)
        children: list[tuple[yaml.Node, tuple[Any, ...]]] = []
        if isinstance(item, yaml.MappingNode):
            for key_node, value_node in item.value:
                key = key_node.value
                check(key_node, loc + (key,))
                out[loc + (key,)] = key_node.start_mark.line + 1
                children.append((value_node, loc + (key,)))
        elif isinstance(item, yaml.SequenceNode):
            children = [(child, loc + (i,)) for i, child in enumerate(item.value)]
        stack.extend(reversed(children))
    return out


def parse_yaml_text(text: str, path: str | Path, what: str = "scenario") -> tuple[Any, dict]:
    """Parse YAML text once (see the module docstring): the data and the line index (field path ->
    1-based line).

    Args:
        text: the file's text.
        path: the file, for messages.
        what: what the file is (``scenario``, ``sweep``), for messages.

    Raises:
        ScenarioError: empty or non-YAML text, an ambiguous plain scalar, more than
            :data:`MAX_YAML_NODES` values (aliases expanded), nesting deeper than :data:`MAX_YAML_DEPTH`,
            duplicate keys.
    """
    label = str(path)
    if not text.strip():
        raise ScenarioError(f"the {what} file is empty", path=label)
    aliases = _scan(text, label, what)
    loader = CoreLoader(text)
    try:
        node = loader.get_single_node()
        expanded = _expanded_size(node, {})
        if expanded > MAX_YAML_NODES:
            raise ScenarioError(f"the YAML expands to {expanded:,} values through its {aliases:,} aliases (at "
                                f"most {MAX_YAML_NODES:,}): nested aliases expand exponentially", path=label)
        lines = _line_index(node, label)
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise ScenarioError("the YAML nests too deeply or an alias refers to itself", path=label) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{where}not valid YAML: {problem}", path=label) from None
    finally:
        loader.dispose()
    return data, lines


def check_yaml_file(path: str | Path, what: str = "scenario", max_bytes: int = MAX_YAML_BYTES) -> None:
    """Refuse, from the file system alone (nothing is read), a path that cannot be a YAML input: a
    device, pipe or folder, or a file over ``max_bytes``. Commands call it before their slow imports,
    so an oversized file is refused at once; :func:`read_yaml_file` checks again and reads.

    Raises:
        ScenarioError: naming the file and what is wrong (a missing file is left to the reader).
    """
    p = Path(path)
    label = str(p)
    try:
        if p.is_dir():
            raise ScenarioError(f"is a folder, not a {what} file", path=label)
        if p.exists() and not p.is_file():
            raise ScenarioError(f"not a regular file (a device, pipe or socket cannot be a {what} file)", path=label)
        size = p.stat().st_size if p.is_file() else 0
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror or exc}", path=label) from None
    if size > max_bytes:
        raise ScenarioError(f"{size:,} bytes: larger than any {what} file ({max_bytes:,} bytes at most); refused "
                            "before reading", path=label)


def read_yaml_file(path: str | Path, what: str = "scenario", max_bytes: int = MAX_YAML_BYTES) -> tuple[Any, dict, bytes]:
    """Read and parse a YAML file: its data, line index and bytes (for a digest).

    Refused before reading: a device, pipe or folder; a file over ``max_bytes``. Then: not UTF-8 text,
    and everything :func:`parse_yaml_text` refuses.

    Raises:
        ScenarioError: naming the file and what is wrong.
    """
    p = Path(path)
    label = str(p)
    check_yaml_file(p, what, max_bytes)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError("file not found", path=label) from None
    except IsADirectoryError:
        raise ScenarioError(f"is a folder, not a {what} file", path=label) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror or exc}", path=label) from None
    if len(raw) > max_bytes:  # grew between stat and read
        raise ScenarioError(f"larger than any {what} file ({max_bytes:,} bytes at most)", path=label)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start}); is this a {what} file?", path=label) from None
    if "\x00" in text:
        raise ScenarioError(f"holds a NUL byte (at {text.index(chr(0))}): binary data, not a {what} file", path=label)
    data, lines = parse_yaml_text(text, p, what)
    return data, lines, raw


__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "CoreLoader", "ambiguity", "check_yaml_file",
           "core_tag", "format_loc", "parse_yaml_text", "read_yaml_file"]
