"""The part of SOQL the stand-in answers, parsed and evaluated over in-memory records: SELECT of
fields or MIN/MAX/COUNT() aggregates, FROM one object, WHERE with AND/OR/NOT, parentheses,
comparisons, IN, LIKE and null, ORDER BY with ASC/DESC and NULLS FIRST/LAST, LIMIT. Literals are
typed as Salesforce types them: quoted strings, bare dates (YYYY-MM-DD) and dateTimes
(YYYY-MM-DDThh:mm:ss[.sss]Z or with an offset), numbers, true/false, null; a literal of the wrong
type for its field is refused as Salesforce refuses it. Anything else is MALFORMED_QUERY."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<string>'(?:\\.|[^'\\])*')
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    def word(self, *words: str) -> bool:
        return self.kind == "name" and self.text.upper() in words


def tokens(soql: str) -> list[Token]:
    found, at = [], 0
    while at < len(soql.rstrip()):
        match = _TOKEN.match(soql, at)
        if match is None or match.end() == at:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token at: {soql[at : at + 20]!r}")
        kind = match.lastgroup or ""
        found.append(Token(kind, match.group(kind)))
        at = match.end()
    return found


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, date, datetime, boolean, null
    value: Any


def _literal(token: Token) -> Literal:
    if token.kind == "string":
        body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), token.text[1:-1])
        return Literal("string", body)
    if token.kind == "number":
        return Literal("number", Decimal(token.text))
    if token.kind == "date":
        return Literal("date", date.fromisoformat(token.text))
    if token.kind == "datetime":
        return Literal("datetime", datetime.fromisoformat(token.text.replace("Z", "+00:00")).astimezone(UTC))
    if token.word("NULL"):
        return Literal("null", None)
    if token.word("TRUE", "FALSE"):
        return Literal("boolean", token.text.upper() == "TRUE")
    raise SoqlError("MALFORMED_QUERY", f"unexpected token: {token.text!r}")


# A condition is a function of a record (field name -> value, names as the object spells them).
Condition = Callable[[Mapping[str, Any]], bool]


@dataclass
class Query:
    object_name: str
    fields: list[str] = field(default_factory=list)  # plain fields, as written
    aggregates: list[tuple[str, str | None, str]] = field(default_factory=list)  # (fn, field, alias)
    where: Condition | None = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # (field, descending, nulls first)
    limit: int | None = None


# Schema: object -> {field name: Salesforce type}; types: id, string, picklist, textarea, reference,
# date, datetime, double, currency, int, boolean.
Schema = Mapping[str, Mapping[str, str]]
_TYPE_OF_LITERAL = {
    "id": "string",
    "string": "string",
    "picklist": "string",
    "textarea": "string",
    "reference": "string",
    "email": "string",
    "phone": "string",
    "date": "date",
    "datetime": "datetime",
    "double": "number",
    "currency": "number",
    "int": "number",
    "boolean": "boolean",
}


class _Parser:
    def __init__(self, soql: str, schema: Schema) -> None:
        self.tokens, self.at, self.schema = tokens(soql), 0, schema
        self.fields: Mapping[str, str] = {}
        self.object_name = ""

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.at += 1
        return token

    def expect(self, *words: str) -> None:
        token = self.take()
        if not token.word(*words):
            raise SoqlError("MALFORMED_QUERY", f"expecting {words[0]}, found {token.text!r}")

    def punct(self, char: str) -> None:
        token = self.take()
        if token.text != char:
            raise SoqlError("MALFORMED_QUERY", f"expecting '{char}', found {token.text!r}")

    def field_name(self, written: str) -> str:
        """The field as the object spells it (SOQL names are case-insensitive)."""
        for name in self.fields:
            if name.lower() == written.lower():
                return name
        raise SoqlError(
            "INVALID_FIELD",
            f"No such column '{written}' on entity '{self.object_name}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please reference "
            "your WSDL or the describe call for the appropriate names.",
        )

    def parse(self) -> Query:
        self.expect("SELECT")
        selected: list[tuple[str, str | None, str | None]] = []  # (fn or '', field, alias)
        while True:
            token = self.take()
            if token.word("MIN", "MAX", "COUNT") and (nxt := self.peek()) is not None and nxt.text == "(":
                self.punct("(")
                inner = (
                    None if (peeked := self.peek()) is not None and peeked.text == ")" else self.take().text
                )
                self.punct(")")
                alias = None
                if (after := self.peek()) is not None and after.kind == "name" and not after.word("FROM"):
                    alias = self.take().text
                selected.append((token.text.upper(), inner, alias))
            elif token.kind == "name":
                selected.append(("", token.text, None))
            else:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token in SELECT: {token.text!r}")
            if (nxt := self.peek()) is not None and nxt.text == ",":
                self.take()
                continue
            break
        self.expect("FROM")
        written = self.take().text
        match = next((name for name in self.schema if name.lower() == written.lower()), None)
        if match is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{written}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name.",
            )
        self.object_name, self.fields = match, self.schema[match]
        query = Query(match)
        for index, (function, name, alias) in enumerate(selected):
            if function:
                query.aggregates.append(
                    (function, self.field_name(name) if name else None, alias or f"expr{index}")
                )
            else:
                query.fields.append(self.field_name(name or ""))
        if query.aggregates and query.fields:
            raise SoqlError("MALFORMED_QUERY", "field must be grouped or aggregated")
        if (token := self.peek()) is not None and token.word("WHERE"):
            self.take()
            query.where = self.condition()
        if (token := self.peek()) is not None and token.word("ORDER"):
            self.take()
            self.expect("BY")
            while True:
                name = self.field_name(self.take().text)
                descending = False
                if (token := self.peek()) is not None and token.word("ASC", "DESC"):
                    descending = self.take().text.upper() == "DESC"
                nulls_first = not descending
                if (token := self.peek()) is not None and token.word("NULLS"):
                    self.take()
                    nulls_first = self.take().text.upper() == "FIRST"
                query.order.append((name, descending, nulls_first))
                if (token := self.peek()) is not None and token.text == ",":
                    self.take()
                    continue
                break
        if (token := self.peek()) is not None and token.word("LIMIT"):
            self.take()
            query.limit = int(self.take().text)
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {self.take().text!r}")
        return query

    # condition := term (OR term)*; term := factor (AND factor)*; factor := NOT factor | ( c ) | test
    def condition(self) -> Condition:
        terms = [self.term()]
        while (token := self.peek()) is not None and token.word("OR"):
            self.take()
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else (lambda record: any(t(record) for t in terms))

    def term(self) -> Condition:
        factors = [self.factor()]
        while (token := self.peek()) is not None and token.word("AND"):
            self.take()
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else (lambda record: all(f(record) for f in factors))

    def factor(self) -> Condition:
        token = self.take()
        if token.word("NOT"):
            inner = self.factor()
            return lambda record: not inner(record)
        if token.text == "(":
            inner = self.condition()
            self.punct(")")
            return inner
        name = self.field_name(token.text)
        kind = _TYPE_OF_LITERAL.get(self.fields[name], "string")
        operator = self.take()
        negated = False
        if operator.word("NOT"):
            negated, operator = True, self.take()
        if operator.word("IN"):
            self.punct("(")
            values = [self.typed(name, kind)]
            while (nxt := self.take()).text == ",":
                values.append(self.typed(name, kind))
            if nxt.text != ")":
                raise SoqlError("MALFORMED_QUERY", f"expecting ')', found {nxt.text!r}")
            allowed = {v.value for v in values}
            return lambda record: (record.get(name) in allowed) != negated and record.get(name) is not None
        if operator.word("LIKE"):
            pattern = self.typed(name, kind).value
            regex = re.compile(
                "^" + "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern) + "$",
                re.IGNORECASE | re.DOTALL,
            )
            return lambda record: isinstance(record.get(name), str) and bool(regex.match(record[name]))
        if operator.kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {operator.text!r}")
        value = self.typed(name, kind)
        return _comparison(name, operator.text, value.value)

    def typed(self, name: str, kind: str) -> Literal:
        literal = _literal(self.take())
        if literal.kind not in ("null", kind) and not (kind == "string" and literal.kind == "string"):
            shape = {"date": "date", "datetime": "dateTime", "number": "number", "boolean": "boolean"}
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{name}' must be of type "
                f"{shape.get(kind, 'string')} and should not be enclosed in quotes"
                if kind != "string"
                else f"value of filter criterion for field '{name}' must be a quoted string",
            )
        return literal


def _comparison(name: str, operator: str, value: Any) -> Condition:
    if value is None:
        if operator == "=":
            return lambda record: record.get(name) is None
        if operator in ("!=", "<>"):
            return lambda record: record.get(name) is not None
        return lambda record: False
    compare = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<>": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }[operator]

    def test(record: Mapping[str, Any]) -> bool:
        held = record.get(name)
        if held is None:
            return operator in ("!=", "<>")
        if isinstance(held, str) and isinstance(value, str) and operator in ("=", "!=", "<>"):
            return bool(compare(held.lower(), value.lower()))  # text equality ignores case
        return bool(compare(held, value))

    return test


def parse(soql: str, schema: Schema) -> Query:
    return _Parser(soql, schema).parse()


def run(query: Query, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The query's rows: each a dict of its selected fields, or one row of aggregates."""
    rows = [record for record in records if query.where is None or query.where(record)]
    for name, descending, nulls_first in reversed(query.order):
        present = sorted(
            (r for r in rows if r.get(name) is not None), key=lambda r: r[name], reverse=descending
        )
        missing = [r for r in rows if r.get(name) is None]
        rows = missing + present if nulls_first else present + missing
    if query.aggregates:
        result: dict[str, Any] = {}
        for function, name, alias in query.aggregates:
            values = [row[name] for row in rows if name is not None and row.get(name) is not None]
            if function == "COUNT":
                result[alias] = len(rows) if name is None else len(values)
            else:
                result[alias] = (min if function == "MIN" else max)(values) if values else None
        return [result]
    if query.limit is not None:
        rows = rows[: query.limit]
    return [{name: row.get(name) for name in query.fields} for row in rows]
