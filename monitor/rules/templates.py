"""Message templates: ``{variable}`` or ``{variable:format}`` over rule variables, checked at load.

Fields name variables from the catalogue (or ``value``) and are looked up whole, so a dot
never reaches an attribute of a Python object.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.rules.expressions import Value, VarType

_SAMPLES: dict[VarType, Value] = {VarType.NUMBER: 1.5, VarType.BOOL: True, VarType.STRING: "x"}
# A message goes to a phone: a width or precision beyond this is a mistake, and a huge one
# ({spx:1000000000000}) would allocate the padding when the template is checked or rendered.
MAX_FORMAT_DIGITS = 100
# The longest template of the default pack has 320 characters and 7 fields.
MAX_TEMPLATE_CHARS = 2_000
MAX_TEMPLATE_FIELDS = 50


class TemplateError(ValueError):
    pass


class _Lookup(string.Formatter):
    def get_field(self, field_name: str, _args: Any, kwargs: Any) -> tuple[Any, str]:
        return kwargs[field_name], field_name


_FORMATTER = _Lookup()


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    names: frozenset[str] = frozenset()  # the variables its fields read

    def render(self, values: Mapping[str, Value]) -> str:
        return _FORMATTER.vformat(self.text, (), dict(values))


def _too_wide(spec: str) -> bool:
    # Leading zeros dropped first: int() refuses a run of more than 4300 digits.
    numbers = (n.lstrip("0") or "0" for n in re.findall(r"[0-9]+", spec))
    return any(len(n) > 3 or int(n) > MAX_FORMAT_DIGITS for n in numbers)


def compile_template(text: str, catalogue: Mapping[str, VarType]) -> Template:
    """Checks every field and format spec of ``text``; raises TemplateError naming the field."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"the template is too long: {len(text):,} characters, at most {MAX_TEMPLATE_CHARS:,}"
        )
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed template ({exc})") from None
    names = set()
    fields = 0
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        fields += 1
        if fields > MAX_TEMPLATE_FIELDS:
            raise TemplateError(
                f"the template has too many fields: more than {MAX_TEMPLATE_FIELDS}"
            )
        names.add(name)
        if conversion is not None:
            raise TemplateError(f"field {{{name}}}: conversions like !{conversion} are not allowed")
        if name not in catalogue:
            raise TemplateError(f"field {{{name}}} is not a variable of this rule")
        if spec and "{" in spec:
            raise TemplateError(f"field {{{name}}}: nested fields are not allowed")
        if _too_wide(spec or ""):
            raise TemplateError(
                f"field {{{name}}}: width and precision are at most {MAX_FORMAT_DIGITS} "
                f"(format {spec!r})"
            )
        try:
            format(_SAMPLES[catalogue[name]], spec or "")
        except ValueError as exc:
            raise TemplateError(f"field {{{name}}}: bad format {spec!r} ({exc})") from None
    return Template(text, frozenset(names))
