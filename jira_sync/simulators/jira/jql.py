"""A small, real JQL parser: the subset a sync service sends, with Jira's syntax rules.

Only syntax lives here (tokens, clauses, AND/OR/NOT, ORDER BY, reserved words, escapes, date
literals). What a field means is decided by ``search``. Error texts follow Jira's wording so a
client's error handling meets what it will meet in production.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Jira's reserved words (JqlStringSupportImpl): unquoted, they are a syntax error.
RESERVED = frozenset(re.split(r"\s+", """
a an abort access add after alias all alter and any are as asc at audit avg be before begin
between boolean break but by byte catch cf changed char character check checkpoint collate
collation column commit connect continue count create current date decimal declare decrement
default defaults define delete delimiter desc difference distinct divide do double drop else
empty encoding end equals escape exclusive exec execute exists explain false fetch file field
first float for from function go goto grant greater group having identified if immediate in
increment index initial inner inout input insert int integer intersect intersection into is
isempty isnull join last left less like limit lock long max min minus mode modify modulo more
multiply next noaudit not notin nowait null number object of on option or order outer output
power previous prior privileges public raise raw remainder rename resource return returns revoke
right row rowid rownum rows select session set share size sqrt start strict string subtract sum
synonym table then to trans transaction trigger true uid union unique update user validate values
view was when whenever where while with
""".strip()))
_ILLEGAL_UNQUOTED = set("{}*/%+$#@?.;[]^|&")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'", "\\": "\\", " ": " "}
_OPERATORS = ("!=", ">=", "<=", "!~", "=", ">", "<", "~")
_VALID_OPERATORS = ("The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', "
                    "'NOT IN', 'IS' and 'IS NOT'.")


class JqlError(ValueError):
    """A query Jira would refuse with 400; ``str()`` is Jira's error message."""


@dataclass(frozen=True)
class Token:
    kind: str  # "word" | "string" | "op" | "(" | ")" | "," | "end"
    text: str
    position: int  # 1-based character, as Jira reports it

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool
    empty: bool = False  # EMPTY / NULL


@dataclass(frozen=True)
class Clause:
    field: str
    operator: str  # "=", "!=", ">=", ..., "in", "not in", "is", "is not"
    values: tuple[Value, ...]
    position: int


@dataclass(frozen=True)
class Bool:
    op: str  # "and" | "or" | "not"
    parts: tuple[Clause | Bool, ...]


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool


@dataclass(frozen=True)
class Query:
    where: Clause | Bool | None
    order_by: tuple[Sort, ...]


def _error(message: str, position: int | None = None) -> JqlError:
    where = f" (line 1, character {position})" if position else ""
    return JqlError(f"Error in the JQL Query: {message}{where}")


def tokenize(jql: str) -> list[Token]:
    tokens, i = [], 0
    while i < len(jql):
        char = jql[i]
        if char.isspace():
            i += 1
        elif char in "(),":
            tokens.append(Token(char, char, i + 1))
            i += 1
        elif char in "\"'":
            i = _string(jql, i, tokens)
        elif any(jql.startswith(op, i) for op in _OPERATORS):
            op = next(op for op in _OPERATORS if jql.startswith(op, i))
            tokens.append(Token("op", op, i + 1))
            i += len(op)
        else:
            start = i
            while i < len(jql) and not (jql[i].isspace() or jql[i] in "(),\"'=!<>~"):
                if jql[i] in _ILLEGAL_UNQUOTED:
                    raise _error(f"The character '{jql[i]}' is a reserved JQL character. You "
                                 f"must enclose it in a string or use the escape "
                                 f"'\\u{ord(jql[i]):04x}' instead.", i + 1)
                i += 1
            if i == start:
                raise _error(f"The character '{char}' is not valid here.", i + 1)
            tokens.append(Token("word", jql[start:i], start + 1))
    tokens.append(Token("end", "", len(jql) + 1))
    return tokens


def _string(jql: str, start: int, tokens: list[Token]) -> int:
    quote, out, i = jql[start], [], start + 1
    while i < len(jql):
        char = jql[i]
        if char == quote:
            tokens.append(Token("string", "".join(out), start + 1))
            return i + 1
        if char == "\\":
            escape = jql[i + 1:i + 2]
            if escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", jql[i + 2:i + 6]):
                out.append(chr(int(jql[i + 2:i + 6], 16)))
                i += 6
                continue
            if escape not in _ESCAPES:
                raise _error(f"The escape sequence '\\{escape}' in the quoted string is "
                             "illegal.", i + 1)
            out.append(_ESCAPES[escape])
            i += 2
            continue
        out.append(char)
        i += 1
    raise _error(f"The quoted string '{''.join(out)}' has not been completed.", start + 1)


def parse(jql: str) -> Query:
    return _Parser(tokenize(jql)).query()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.i = tokens, 0

    @property
    def current(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def query(self) -> Query:
        where = None
        if not self.current.is_keyword("order") and self.current.kind != "end":
            where = self.or_expr()
        order_by = self.order_by() if self.current.is_keyword("order") else ()
        if self.current.kind != "end":
            raise _error(f"Expecting either 'OR' or 'AND' but got '{self.current.text}'.",
                         self.current.position)
        return Query(where, order_by)

    def or_expr(self) -> Clause | Bool:
        parts = [self.and_expr()]
        while self.current.is_keyword("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Bool("or", tuple(parts))

    def and_expr(self) -> Clause | Bool:
        parts = [self.not_expr()]
        while self.current.is_keyword("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else Bool("and", tuple(parts))

    def not_expr(self) -> Clause | Bool:
        if self.current.is_keyword("not"):
            self.take()
            return Bool("not", (self.not_expr(),))
        if self.current.kind == "(":
            self.take()
            inner = self.or_expr()
            if self.current.kind != ")":
                raise _error("Expecting ')' but got "
                             f"'{self.current.text or 'the end of the query'}'.",
                             self.current.position)
            self.take()
            return inner
        return self.clause()

    def field_name(self) -> Token:
        token = self.take()
        if token.kind == "string" or (token.kind == "word" and token.text.lower() not in RESERVED):
            return token
        if token.kind == "word":
            raise _reserved(token)
        got = token.text or "the end of the query"
        raise _error(f"Expecting a field name but got '{got}'.", token.position)

    def clause(self) -> Clause:
        field = self.field_name()
        operator = self.operator()
        if operator in ("in", "not in"):
            values = self.value_list()
        else:
            values = (self.value(allow_empty=operator in ("is", "is not", "=", "!=")),)
        if operator in ("is", "is not") and not values[0].empty:
            raise _error("Expecting 'EMPTY' or 'NULL' after 'IS'.", field.position)
        return Clause(field.text.lower(), operator, values, field.position)

    def operator(self) -> str:
        token = self.take()
        if token.kind == "op":
            return token.text
        if token.is_keyword("in"):
            return "in"
        if token.is_keyword("is"):
            if self.current.is_keyword("not"):
                self.take()
                return "is not"
            return "is"
        if token.is_keyword("not") and self.current.is_keyword("in"):
            self.take()
            return "not in"
        got = token.text or "the end of the query"
        raise _error(f"Expecting operator but got '{got}'. {_VALID_OPERATORS}", token.position)

    def value(self, *, allow_empty: bool) -> Value:
        token = self.take()
        if token.kind == "string":
            return Value(token.text, quoted=True)
        if token.kind == "word":
            if token.is_keyword("empty", "null") and allow_empty:
                return Value("", quoted=False, empty=True)
            if token.text.lower() in RESERVED:
                raise _reserved(token)
            if self.current.kind == "(":
                raise JqlError(f"Unable to find JQL function '{token.text}()'.")
            return Value(token.text, quoted=False)
        got = token.text or "the end of the query"
        raise _error(f"Expecting either a value, list or function but got '{got}'.",
                     token.position)

    def value_list(self) -> tuple[Value, ...]:
        opening = self.take()
        if opening.kind != "(":
            raise _error(f"Expecting '(' but got '{opening.text or 'the end of the query'}'.",
                         opening.position)
        values = [self.value(allow_empty=True)]
        while self.current.kind == ",":
            self.take()
            values.append(self.value(allow_empty=True))
        closing = self.take()
        if closing.kind != ")":
            raise _error(f"Expecting ')' but got '{closing.text or 'the end of the query'}'.",
                         closing.position)
        return tuple(values)

    def order_by(self) -> tuple[Sort, ...]:
        self.take()
        if not self.current.is_keyword("by"):
            raise _error(f"Expecting 'by' but got '{self.current.text}'.", self.current.position)
        self.take()
        sorts = [self.sort()]
        while self.current.kind == ",":
            self.take()
            sorts.append(self.sort())
        return tuple(sorts)

    def sort(self) -> Sort:
        field = self.field_name()
        descending = False
        if self.current.is_keyword("asc", "desc"):
            descending = self.take().text.lower() == "desc"
        return Sort(field.text.lower(), descending)


def _reserved(token: Token) -> JqlError:
    return _error(f"'{token.text}' is a reserved JQL word. You must surround it in quotation "
                  "marks to use it in a query.", token.position)


# -- date literals -------------------------------------------------------------------------

_ABSOLUTE = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_PERIOD = re.compile(r"([-+]?)\s*((?:\d+[wdhm]?\s*)+)")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1), "": timedelta(minutes=1)}


def parse_date(value: Value, field: str, now: datetime) -> datetime:
    """A JQL date value, read in the searching user's time zone (UTC for every account here)."""
    text = value.text.strip()
    if not value.quoted and text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    for fmt in _ABSOLUTE:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    match = _PERIOD.fullmatch(text)
    if match:
        total = sum((int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([wdhm]?)", match[2])),
                    timedelta())
        return now - total if match[1] == "-" else now + total
    raise JqlError(f"Date value '{value.text}' for field '{field}' is invalid. Valid formats "
                   "include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
                   "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")
