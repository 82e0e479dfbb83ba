"""Reading UFTP messages strictly: well-formed, schema-valid messages only.

A message file is refused (:class:`~market.errors.BatchError`, naming the file and the
reason) unless:

- it is a regular file (no FIFO, device or link) of at most :data:`MAX_MESSAGE_BYTES`, and
  a folder holds at most :data:`MAX_MESSAGES` of them;
- it is well-formed XML without a DTD (lxml with ``recover=False``: a truncated message is
  an error, never a shorter message) and every element and attribute is one the UFTP schema
  knows (xsdata with unknown properties, attributes and unconvertible values as errors);
- every value meets the schema's facets that ``shapeshifter-uftp`` carries from the UFTP
  XSD: required attributes present, patterns (UUID message ids, time zones), inclusive
  bounds, fraction digits, enumerations; decimals finite; the time zone a real IANA zone.

ISPs are checked against their period where a message is mapped (:mod:`market.io.uftp`).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import stat
import typing
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from market.errors import BatchError

MAX_MESSAGE_BYTES = 1_000_000
MAX_MESSAGES = 10_000


def message_files(folder: Path) -> list[Path]:
    """The ``*.xml`` files of ``folder``, sorted, each a regular file within the limits."""
    if not folder.is_dir():
        raise BatchError(f"{folder}: not a folder of UFTP messages")
    paths = sorted(folder.glob("*.xml"))
    if len(paths) > MAX_MESSAGES:
        raise BatchError(f"{folder}: {len(paths):,} messages; at most {MAX_MESSAGES:,} are read at once")
    for path in paths:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise BatchError(f"{path}: not a regular file (a link, FIFO or device is never read)")
        if info.st_size > MAX_MESSAGE_BYTES:
            raise BatchError(f"{path}: {info.st_size:,} bytes; a UFTP message is at most {MAX_MESSAGE_BYTES:,}")
    return paths


def parse_message(path: Path) -> Any:
    """The UFTP message in ``path``, parsed strictly (see the module docstring)."""
    from lxml import etree
    from shapeshifter_uftp.transport import _context
    from xsdata.formats.dataclass.parsers import XmlParser
    from xsdata.formats.dataclass.parsers.config import ParserConfig

    data = _read_regular(path)
    strict_xml = etree.XMLParser(recover=False, resolve_entities=False, no_network=True, load_dtd=False)
    try:
        tree = etree.fromstring(data, parser=strict_xml)
    except etree.XMLSyntaxError as exc:
        raise BatchError(f"{path}: not well-formed XML ({exc})") from exc
    if tree.getroottree().docinfo.doctype:
        raise BatchError(f"{path}: a DOCTYPE is not allowed in a UFTP message")
    config = ParserConfig(
        fail_on_unknown_properties=True, fail_on_unknown_attributes=True, fail_on_converter_warnings=True
    )
    try:
        message: Any = XmlParser(context=_context, config=config).from_bytes(data)
    except Exception as exc:  # xsdata raises several kinds (ParserError, ConverterWarning, ...)
        raise BatchError(f"{path}: not a valid UFTP message ({exc})") from exc
    problems = facet_problems(message) + raw_digit_problems(tree, fraction_digits(message))
    if problems:
        raise BatchError(f"{path}: not a valid UFTP message: " + "; ".join(problems[:5]))
    return message


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file, opened without following a link or blocking on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BatchError(f"{path}: cannot be read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise BatchError(f"{path}: not a regular file")
        data = f.read(MAX_MESSAGE_BYTES + 1)
    if len(data) > MAX_MESSAGE_BYTES:
        raise BatchError(f"{path}: larger than {MAX_MESSAGE_BYTES:,} bytes")
    return data


def facet_problems(obj: Any, where: str = "") -> list[str]:
    """Every value of ``obj`` (a shapeshifter-uftp dataclass, recursively) that breaks the
    schema's facets, as ``Element.Attribute: reason``."""
    problems: list[str] = []
    name = type(obj).__name__
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        meta = f.metadata
        label = f"{where}{name}.{meta.get('name', f.name)}"
        if value is None:
            if meta.get("required"):
                problems.append(f"{label}: required")
            continue
        if isinstance(value, list):
            for item in value:
                if dataclasses.is_dataclass(item):
                    problems += facet_problems(item, f"{where}{name}/")
                else:
                    problems += _value_problems(item, meta, label)
            continue
        if dataclasses.is_dataclass(value):
            problems += facet_problems(value, f"{where}{name}/")
            continue
        choices = _enum_of(f.type)
        if choices is not None and value not in {c.value for c in choices} and not isinstance(value, choices):
            allowed = ", ".join(str(c.value) for c in choices)
            problems.append(f"{label}: {value!r} is not one of the schema's values ({allowed})")
            continue
        problems += _value_problems(value, meta, label)
    return problems


def fraction_digits(obj: Any, found: dict[str, int] | None = None) -> dict[str, int]:
    """Attribute name -> the decimals the schema allows, for every dataclass in ``obj``."""
    found = {} if found is None else found
    for f in dataclasses.fields(obj):
        if f.metadata.get("fraction_digits") is not None:
            found[f.metadata.get("name", f.name)] = int(f.metadata["fraction_digits"])
        value = getattr(obj, f.name)
        for item in value if isinstance(value, list) else [value]:
            if dataclasses.is_dataclass(item) and not isinstance(item, type):
                fraction_digits(item, found)
    return found


def raw_digit_problems(tree: Any, digits: dict[str, int]) -> list[str]:
    """Decimals with more digits than the schema allows, read from the XML text itself (the
    parser would round them silently: 0.505 would become 0.50)."""
    out = []
    for element in tree.iter():
        for name, text in element.attrib.items():
            allowed = digits.get(name)
            if allowed is None or "." not in text:
                continue
            decimals = text.strip().split(".", 1)[1].rstrip("0")
            if len(decimals) > allowed:
                out.append(f"{element.tag}.{name}: {text} has more than {allowed} decimals")
    return out


def _enum_of(kind: Any) -> type[enum.Enum] | None:
    """The enumeration a field's type names (``X`` or ``Optional[X]``), if any."""
    for candidate in (kind, *typing.get_args(kind)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate
    return None


def _value_problems(value: Any, meta: Any, label: str) -> list[str]:
    out = []
    if isinstance(value, Decimal):
        if not value.is_finite():
            return [f"{label}: {value} is not a finite number"]
        digits = meta.get("fraction_digits")
        exponent = value.as_tuple().exponent
        if (
            digits is not None
            and isinstance(exponent, int)
            and -exponent > digits
            and value != value.quantize(Decimal(1).scaleb(-digits))
        ):
            out.append(f"{label}: {value} has more than {digits} decimals")
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        lo, hi = meta.get("min_inclusive"), meta.get("max_inclusive")
        if lo is not None and value < lo:
            out.append(f"{label}: {value} is below {lo}")
        if hi is not None and value > hi:
            out.append(f"{label}: {value} is above {hi}")
    pattern = meta.get("pattern")
    if pattern and isinstance(value, str) and not re.fullmatch(pattern, value):
        out.append(f"{label}: {value!r} does not match {pattern}")
    if isinstance(value, str) and meta.get("name") == "TimeZone":
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            out.append(f"{label}: {value!r} is not a known time zone")
    return out
