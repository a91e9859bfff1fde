"""Kubernetes resource quantities (``500m``, ``1Gi``, ``2e3``), parsed as the apiserver does.

Only what stack configuration needs: recognising a quantity and comparing two of them
(a limit below its request is a configuration error). The grammar is the one in
``k8s.io/apimachinery/pkg/api/resource``: a signed decimal number, then a binary suffix
(``Ki`` .. ``Ei``), a decimal suffix (``n u m k M G T P E``) or a decimal exponent.
"""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(text: str) -> Decimal:
    """The value of a quantity in base units (bytes, cores); ValueError if it is not one."""
    found = _QUANTITY.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (for example 500m, 2Gi or 10Gi)")
    number, suffix = Decimal(found["number"]), found["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        return number.scaleb(int(suffix[1:]))
    return number


def positive_quantity(text: str) -> str:
    """Returns ``text`` if it is a quantity above zero; ValueError naming the problem if not."""
    if parse_quantity(text) <= 0:
        raise ValueError(f"{text!r} must be above zero")
    return text
