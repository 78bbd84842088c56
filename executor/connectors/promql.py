"""PromQL checked before it reaches a Prometheus target.

`check_promql` refuses what is not a plain expression (other string forms,
comments, path-like text, deep nesting, look-backs beyond a week); the scanner
(`vector_selectors`) finds each vector selector so `check_selectors` can refuse
one that names no metric and is not scoped to the incident's service. Pure text
work, no I/O: the connector in prometheus.py sends what passes.
"""

import re
from dataclasses import dataclass
from typing import Any

from executor.results import StepBlocked

MAX_QUERY_CHARS = 500
MAX_NESTING = 32
# A range selector or subquery may look back at most this far: a bigger one is
# a heavy query on the target, not a diagnostic check.
MAX_RANGE_SECONDS = 7 * 24 * 3600

# Outside double-quoted strings: names, numbers, durations, operators, brackets.
# Not allowed: single quotes and backticks (other string forms), `#` (a comment
# to the end of the line), `;`, `\`, `$`, `&`, `|`, `?`, newlines and control chars.
_OUTSIDE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.,(){}[]=!~<>+-*/%^@ "
)
# Inside a double-quoted string (label values, regexes): printable ASCII except
# backtick and `;`; a backslash escapes the next (printable) character.
_INSIDE = frozenset(chr(c) for c in range(0x20, 0x7F)) - set("`;")
_PAIRS = {")": "(", "]": "[", "}": "{"}
# Path-like text has no business in an expression: the query cannot change the
# URL (it is a form field), but such text is a sign of an attempt and is refused.
_PATHLIKE_RE = re.compile(r"/api/|/-/|\.\./|/\.\.|/federate", re.IGNORECASE)
_DURATION_RE = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")
_DURATION_PART_RE = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _duration_seconds(text: str) -> float:
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART_RE.findall(text))


def _check_range(inner: str) -> None:
    """`[5m]` or a subquery `[1h:1m]` / `[1h:]`: durations only, and not too long."""
    parts = inner.strip().split(":")
    if len(parts) > 2 or not _DURATION_RE.fullmatch(parts[0].strip()):
        raise StepBlocked(f"refused PromQL range [{inner[:40]}]: expected a duration like [5m]")
    if len(parts) == 2 and parts[1].strip() and not _DURATION_RE.fullmatch(parts[1].strip()):
        raise StepBlocked(f"refused PromQL subquery step [{inner[:40]}]")
    if _duration_seconds(parts[0]) > MAX_RANGE_SECONDS:
        raise StepBlocked(f"refused PromQL range [{inner[:40]}]: longer than 7 days")


def check_promql(expr: object) -> str:
    """`expr` if it passes the conservative PromQL checks, else StepBlocked with the reason.

    Allows metric names, label matchers with double-quoted values, functions,
    operators, numbers and durations; refuses unbalanced brackets or quotes,
    other string forms, comments, `;`, control characters and path-like text.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise StepBlocked("refused PromQL: empty query")
    if len(expr) > MAX_QUERY_CHARS:
        raise StepBlocked(f"refused PromQL: longer than {MAX_QUERY_CHARS} characters")
    if _PATHLIKE_RE.search(expr):
        raise StepBlocked("refused PromQL: contains path-like text (/api/, /-/, ../, /federate)")
    stack: list[tuple[str, int]] = []
    in_string = False
    i = 0
    while i < len(expr):
        c = expr[i]
        if in_string:
            if c == "\\":
                nxt = expr[i + 1] if i + 1 < len(expr) else ""
                if nxt not in _INSIDE:
                    raise StepBlocked(f"refused PromQL: bad escape at position {i}")
                i += 2
                continue
            if c == '"':
                in_string = False
            elif c not in _INSIDE:
                raise StepBlocked(f"refused PromQL: character {c!r} at position {i}")
        elif c == '"':
            in_string = True
        elif c not in _OUTSIDE:
            raise StepBlocked(f"refused PromQL: character {c!r} at position {i}")
        elif c in "([{":
            stack.append((c, i))
            if len(stack) > MAX_NESTING:
                raise StepBlocked("refused PromQL: nested too deeply")
        elif c in ")]}":
            if not stack or stack[-1][0] != _PAIRS[c]:
                raise StepBlocked(f"refused PromQL: unbalanced {c!r} at position {i}")
            opener, start = stack.pop()
            if opener == "[":
                _check_range(expr[start + 1 : i])
        i += 1
    if in_string:
        raise StepBlocked("refused PromQL: unbalanced double quote")
    if stack:
        raise StepBlocked(f"refused PromQL: unclosed {stack[-1][0]!r}")
    return expr


# --- vector selectors ------------------------------------------------------------------
#
# A selector with no metric name reads every series its matchers allow: with
# `{__name__=~".+"}` that is the whole TSDB. A small scanner finds each vector
# selector (strings with escapes, braces inside strings, grouping clauses,
# functions, ranges and offsets are told apart) so that each can be checked.

_AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ]
)
# Followed by a parenthesised list of label names, not by an expression.
_LABEL_LISTS = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])
_KEYWORDS = (
    frozenset(["and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"]) | _LABEL_LISTS
)
_MATCH_OPS = ("=", "!=", "=~", "!~")
_TWO_CHAR_OPS = ("=~", "!~", "!=", "==", "<=", ">=")


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, str, num or op
    text: str  # the identifier, operator, number, or a string's decoded value
    pos: int
    end: int


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """One vector selector: `name{matchers}`, `{matchers}` or a bare `name`."""

    name: str
    matchers: tuple[Matcher, ...]
    text: str

    @property
    def metric(self) -> str:
        """The literal metric name the selector is bound to, or "" when it has none."""
        if self.name:
            return self.name
        for m in self.matchers:
            if m.label == "__name__" and m.op == "=" and m.value:
                return m.value
        return ""


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}


def _tokens(expr: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in "\"'`":
            j, value = i + 1, []
            while j < n and expr[j] != c:
                if expr[j] == "\\" and c != "`":
                    if j + 1 >= n:
                        break
                    # Unknown escapes stay as written: such a value equals no service name.
                    value.append(_ESCAPES.get(expr[j + 1], expr[j : j + 2]))
                    j += 2
                    continue
                value.append(expr[j])
                j += 1
            if j >= n:
                raise StepBlocked("refused PromQL: unbalanced quote")
            tokens.append(_Token("str", "".join(value), i, j + 1))
            i = j + 1
        elif c.isdigit() or (c == "." and expr[i + 1 : i + 2].isdigit()):
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "._"):
                j += 1
            tokens.append(_Token("num", expr[i:j], i, j))
            i = j
        elif c.isalpha() or c in "_:":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "_:"):
                j += 1
            tokens.append(_Token("ident", expr[i:j], i, j))
            i = j
        else:
            size = 2 if expr[i : i + 2] in _TWO_CHAR_OPS else 1
            tokens.append(_Token("op", expr[i : i + size], i, i + size))
            i += size
    return tokens


def _is(tokens: list[_Token], i: int, text: str) -> bool:
    return i < len(tokens) and tokens[i].kind == "op" and tokens[i].text == text


def _closing(tokens: list[_Token], i: int, open_: str, close: str) -> int:
    """The index of the token that closes the bracket opened at `i`."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].kind == "op" and tokens[j].text == open_:
            depth += 1
        elif tokens[j].kind == "op" and tokens[j].text == close:
            depth -= 1
            if depth == 0:
                return j
    raise StepBlocked(f"refused PromQL: unclosed {open_!r}")


def _matchers(tokens: list[_Token], i: int) -> tuple[tuple[Matcher, ...], int]:
    """The matchers of the `{...}` opened at `i`, and the index after its `}`."""
    found: list[Matcher] = []
    j = i + 1
    while not _is(tokens, j, "}"):
        if j >= len(tokens):
            raise StepBlocked("refused PromQL: unclosed '{'")
        tok = tokens[j]
        nxt = tokens[j + 1] if j + 1 < len(tokens) else None
        if tok.kind in ("ident", "str") and nxt and nxt.kind == "op" and nxt.text in _MATCH_OPS:
            value = tokens[j + 2] if j + 2 < len(tokens) else None
            if value is None or value.kind != "str":
                raise StepBlocked(f"refused PromQL: label {tok.text[:40]} needs a quoted value")
            found.append(Matcher(tok.text, nxt.text, value.text))
            j += 3
        elif tok.kind == "str":  # a quoted metric name: {"my.metric", job="x"}
            found.append(Matcher("__name__", "=", tok.text))
            j += 1
        else:
            raise StepBlocked(f"refused PromQL: unexpected {tok.text[:40]!r} in a selector")
        if _is(tokens, j, ","):
            j += 1
        elif not _is(tokens, j, "}"):
            raise StepBlocked("refused PromQL: matchers must be separated by commas")
    return tuple(found), j + 1


def vector_selectors(expr: str) -> list[Selector]:
    """Every vector selector of a PromQL expression, in order."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if _is(tokens, i, "["):  # a range or subquery window: durations, no selectors
            i = _closing(tokens, i, "[", "]") + 1
        elif tok.kind == "ident":
            low = tok.text.lower()
            if low in _LABEL_LISTS and _is(tokens, i + 1, "("):
                i = _closing(tokens, i + 1, "(", ")") + 1  # by (le), on (job): label names
            elif low in _KEYWORDS:
                i += 1
            elif _is(tokens, i + 1, "("):
                i += 1  # a function call; its arguments are read on
            elif (
                low in _AGGREGATIONS
                and i + 1 < len(tokens)
                and tokens[i + 1].text.lower() in _LABEL_LISTS
            ):
                i += 1  # sum by (le) (...)
            elif _is(tokens, i + 1, "{"):
                matchers, after = _matchers(tokens, i + 1)
                found.append(Selector(tok.text, matchers, expr[tok.pos : tokens[after - 1].end]))
                i = after
            else:
                found.append(Selector(tok.text, (), tok.text))
                i += 1
        elif _is(tokens, i, "{"):
            matchers, after = _matchers(tokens, i)
            found.append(Selector("", matchers, expr[tok.pos : tokens[after - 1].end]))
            i = after
        else:
            i += 1
    return found


def service_labels(target: Any) -> tuple[str, ...]:
    """The labels that name a service on this target (options service_labels / service_label)."""
    options = getattr(target, "options", None) or {}
    labels = options.get("service_labels") or [options.get("service_label") or "service"]
    if isinstance(labels, str):
        labels = [labels]
    return tuple(str(label) for label in labels if str(label) != "__name__")


def check_selectors(expr: str, *, service: str = "", labels: tuple[str, ...] = ("service",)) -> str:
    """`expr` if every vector selector names a metric or is scoped to `service`; else StepBlocked.

    A metric name must be literal (`up`, `{__name__="up"}`); a regex on __name__
    names none. Without one, a selector must carry `<label>="<service>"` for one
    of `labels`, where `service` is the incident's catalog service ("" when the
    incident has none: then only named metrics pass).
    """
    for sel in vector_selectors(expr):
        if sel.metric:
            continue
        if service and any(
            m.op == "=" and m.label in labels and m.value == service for m in sel.matchers
        ):
            continue
        shown = sel.text if len(sel.text) <= 80 else sel.text[:79] + "…"
        scope = (
            f' or scope it to the incident\'s service with {labels[0]}="{service}"'
            if service and labels
            else ""
        )
        raise StepBlocked(
            f"refused PromQL: the selector {shown} names no metric and would read every "
            f"series it matches; name a metric (e.g. http_requests_total{{...}}){scope}"
        )
    return expr


def check_query(expr: object, target: Any) -> str:
    """`check_promql`, then `check_selectors` scoped to the service the target runs for."""
    check_promql(expr)
    return check_selectors(
        expr, service=getattr(target, "service", "") or "", labels=service_labels(target)
    )
