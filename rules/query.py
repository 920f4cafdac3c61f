"""The rule query language: lexer, parser and syntax tree.

Turns one query string (``@openai NEAR/15 (=IPO OR "going public")``) into a
small tree of `Term`, `And`, `Or`, `Not` and `Near` nodes, with aliases
already expanded and field scopes pushed down onto the terms. It knows
nothing about matching text; `rules.engine` compiles the trees. It raises
`QueryError` (with the 1-based column in the query) for anything malformed,
and never guesses what a broken query meant.

Syntax (see docs/rules.md for the analyst's reference):

* ``word``, ``"a phrase"``: case-insensitive, on word boundaries.
* ``=IPO``, ``="Open AI"``: case-sensitive.
* ``renegotiat*``: prefix wildcard (at the end of a word or of a phrase).
* ``AND``, ``OR``, ``NOT`` (upper case only), parentheses; juxtaposition is AND.
  Precedence, tightest first: field scope, ``NEAR/n``, ``NOT``, ``AND``, ``OR``.
* ``a NEAR/n b``: an occurrence of ``a`` and one of ``b`` in the same field
  with at most ``n - 1`` words between them, in either order.
* ``title:``, ``text:``, ``author:``, ``url:``, ``feed:`` scope a term, phrase,
  alias or parenthesised group; ``lead:`` is the title plus the text's first
  40 words. Unscoped terms look in title and text.
* ``@name`` is the OR of the alias's entries.
* ``count(x) >= n``: at least n occurrences of x.

Words that look like mistyped operators (``and``, ``near/5``, ``OpenAI/3``)
stay words to find and are reported as warnings, never reinterpreted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.errors import QueryError

# "lead" is not a field of an article: it is the title plus the first LEAD_WORDS
# words of the text, written `lead:x`. A lead term looks in {"title", "lead"};
# the engine turns the text's hits in its first words into "lead" hits.
FIELDS: tuple[str, ...] = ("title", "text", "author", "url", "feed", "lead")
SCOPES: tuple[str, ...] = ("title", "text", "lead", "author", "url", "feed")
DEFAULT_FIELDS: frozenset[str] = frozenset({"title", "text"})
LEAD_FIELDS: frozenset[str] = frozenset({"title", "lead"})
LEAD_WORDS = 40
# NEAR/n beyond this is refused: a window of 1,000 words is already "the same article".
MAX_NEAR = 1000
# A query longer than this is refused: no analyst writes one, and a generated
# one would make loading slow (see docs/rules.md, "Limits").
MAX_QUERY_CHARS = 4000
MIN_PREFIX = 3  # "ai*" would match "aid", "aim", "air": too blunt to be a rule
MAX_COUNT = 1000
# Parentheses and NOTs nested deeper than this are refused: no real query
# needs it, and it bounds the recursion of the parser and the engine.
MAX_DEPTH = 32

# Characters that read the same to a human but differ in code points. They are
# mapped one-to-one (so character offsets survive) in patterns and texts alike.
_SAME = str.maketrans(
    {
        "\u2019": "'",  # right single quotation mark, the usual typographic apostrophe
        "\u2018": "'",
        "\u02bc": "'",
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\t": " ",
        "\n": " ",
        "\r": " ",
    }
)
_SPACES = re.compile(r"\s+")


def canonical(text: str) -> str:
    """A pattern's canonical spelling: typographic variants folded, spaces collapsed."""
    return _SPACES.sub(" ", text.translate(_SAME)).strip()


def fold(text: str) -> str:
    """Lower-case without changing the length (the matcher maps offsets 1:1).

    A few characters lower-case to two (Turkish dotted I); they are left as
    they are, in patterns and texts alike, so both sides still agree.
    """
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)




@dataclass(frozen=True)
class Term:
    """One word or phrase to find, in the given fields.

    ``key`` is what the automaton looks for (canonical and folded);
    ``exact`` is the canonical spelling a case-sensitive term must have.
    """

    text: str
    key: str
    exact: str | None
    prefix: bool
    fields: frozenset[str]

    @property
    def ident(self) -> tuple[str, str | None, bool]:
        """Terms that find the same occurrences share one identity (fields aside)."""
        return (self.key, self.exact, self.prefix)

    def display(self) -> str:
        body = f'"{self.text}"' if " " in self.text else self.text
        body = ("=" if self.exact is not None else "") + body + ("*" if self.prefix else "")
        if self.fields == LEAD_FIELDS:
            return "lead:" + body
        if self.fields != DEFAULT_FIELDS:
            return "|".join(sorted(self.fields)) + ":" + body
        return body


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Near:
    left: Node
    right: Node
    distance: int


@dataclass(frozen=True)
class Count:
    """``count(x) >= n``: at least n occurrences of x (a term, alias or OR-group of them)."""

    child: Node
    minimum: int


Node = Term | And | Or | Not | Near | Count


# ---------------------------------------------------------------- lexer


@dataclass(frozen=True)
class _Tok:
    kind: str  # LP RP AND OR NOT NEAR TERM ALIAS FIELD EOF
    col: int  # 1-based
    value: str = ""
    quoted: bool = False
    exact: bool = False
    number: int = 0


_NEAR = re.compile(r"NEAR/(\d+)$")
_LOWER_NEAR = re.compile(r"near/\d+$", re.IGNORECASE)
_WORD_SLASH = re.compile(r"(\w+)/(\d+)$")
_LOWER_OPS = {"and": "AND", "or": "OR", "not": "NOT"}
_FIELD = re.compile(r"([A-Za-z]+):")
_ALIAS_NAME = re.compile(r"[A-Za-z0-9_-]+$")
_STOP = set(' \t\r\n()"')


def _lex(query: str, warnings: list[tuple[str, int]] | None = None) -> list[_Tok]:
    """Tokens of a query; a word that looks like a mistyped operator is kept
    literal (a word to find), and said in ``warnings`` as (message, column)."""
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
            continue
        col = i + 1
        if c == "(":
            toks.append(_Tok("LP", col))
            i += 1
            continue
        if c == ")":
            toks.append(_Tok("RP", col))
            i += 1
            continue
        exact = False
        if c == "=":
            exact = True
            i += 1
            if i >= n or query[i] in " \t\r\n()":
                raise QueryError("'=' must be followed by a word or a \"phrase\" (it marks it case-sensitive)", col)
            c = query[i]
        if c == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError("unterminated quote", i + 1)
            phrase = query[i + 1 : end]
            if not phrase.strip():
                raise QueryError("empty phrase", i + 1)
            toks.append(_Tok("TERM", col, phrase, quoted=True, exact=exact))
            i = end + 1
            continue
        j = i
        while j < n and query[j] not in _STOP:
            j += 1
        word = query[i:j]
        field = _FIELD.match(word)
        if field and not exact:
            name = field.group(1)
            if name not in SCOPES:
                raise QueryError(f"unknown field {name}: (fields are {', '.join(f + ':' for f in SCOPES)})", col)
            toks.append(_Tok("FIELD", col, name))
            i += len(name) + 1
            if i >= n or query[i] in " \t\r\n)":
                raise QueryError(f"field {name}: must be followed by a term, phrase, alias or group, without a space", col)
            continue
        if not exact and word in ("AND", "OR", "NOT"):
            toks.append(_Tok(word, col))
        elif not exact and word.startswith("NEAR"):
            m = _NEAR.match(word)
            if not m:
                raise QueryError(f"{word!r} is not a proximity operator: write NEAR/n, e.g. NEAR/10", col)
            if len(m.group(1)) > 6 or int(m.group(1)) > MAX_NEAR:
                raise QueryError(f"{word}: the distance must be at most {MAX_NEAR} words", col)
            distance = int(m.group(1))
            if distance < 1:
                raise QueryError("NEAR/0: the distance must be at least 1", col)
            toks.append(_Tok("NEAR", col, number=distance))
        elif word.startswith("@") and not exact:
            name = word[1:]
            if not _ALIAS_NAME.match(name):
                raise QueryError(f"bad alias reference {word!r}", col)
            toks.append(_Tok("ALIAS", col, name))
        else:
            if warnings is not None and not exact:
                _warn_operator_like(word, col, warnings)
            toks.append(_Tok("TERM", col, word, exact=exact))
        i = j
    toks.append(_Tok("EOF", n + 1))
    return toks


def _warn_operator_like(word: str, col: int, warnings: list[tuple[str, int]]) -> None:
    """Words that an analyst most likely meant as an operator (they stay words to find)."""
    if word.lower() in _LOWER_OPS:
        op = _LOWER_OPS[word.lower()]
        warnings.append((f"{word!r} is searched as the word {word.lower()!r}; operators are upper case: "
                         f"write {op} for the operator, or \"{word}\" to silence this", col))
    elif _LOWER_NEAR.match(word):
        warnings.append((f"{word!r} is searched as a word; write {word.upper()} for the proximity operator", col))
    else:
        m = _WORD_SLASH.match(word)
        if m:
            warnings.append((f"{word!r} is searched literally; did you mean {m.group(1)} NEAR/{m.group(2)} ...? "
                             f"(write \"{word}\" to silence this)", col))


# ---------------------------------------------------------------- terms


def make_term(raw: str, *, exact: bool, quoted: bool, fields: frozenset[str], col: int | None) -> Term:
    """Build a Term from its written form (shared by queries and alias entries)."""
    text = raw
    prefix = False
    if text.endswith("*"):
        prefix = True
        text = text[:-1]
    if "*" in text:
        raise QueryError(f"wildcard '*' is only allowed at the end of a word: {raw!r}", col)
    text = canonical(text)
    if not text:
        raise QueryError(f"empty term {raw!r}", col)
    if prefix:
        last = text.split(" ")[-1]
        if text[-1] == " " or not (text[-1].isalnum() or text[-1] == "_"):
            raise QueryError(f"wildcard must follow a letter or digit: {raw!r}", col)
        if len(last) < MIN_PREFIX:
            raise QueryError(f"prefix {last + '*'!r} is too short (at least {MIN_PREFIX} characters before '*')", col)
    if not any(ch.isalnum() for ch in text):
        raise QueryError(f"term {raw!r} has no letters or digits", col)
    return Term(text=text, key=fold(text), exact=text if exact else None, prefix=prefix, fields=fields)


def alias_term(entry: str, fields: frozenset[str] = DEFAULT_FIELDS) -> Term:
    """An alias entry is one term: ``OpenAI``, ``Sam Altman``, ``=MSFT``, ``renegotiat*``."""
    exact = entry.startswith("=")
    body = entry[1:] if exact else entry
    if len(body) >= 2 and body.startswith('"') and body.endswith('"'):
        body = body[1:-1]
    return make_term(body, exact=exact, quoted=" " in body, fields=fields, col=None)


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(
        self, query: str, aliases: Mapping[str, Sequence[Term]], warnings: list[tuple[str, int]] | None = None
    ):
        self.query = query
        self.toks = _lex(query, warnings)
        self.pos = 0
        self.aliases = aliases
        self.depth = 0

    def enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"nested too deeply (more than {MAX_DEPTH} levels of parentheses and NOT)", tok.col)

    def peek(self) -> _Tok:
        return self.toks[self.pos]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise QueryError("empty query", 1)
        node = self.parse_or(None)
        tok = self.peek()
        if tok.kind == "RP":
            raise QueryError("unbalanced parenthesis: ')' has no matching '('", tok.col)
        if tok.kind != "EOF":  # pragma: no cover - parse_and consumes everything else
            raise QueryError("unexpected text", tok.col)
        return node

    def parse_or(self, scope: frozenset[str] | None) -> Node:
        items = [self.parse_and(scope)]
        while self.peek().kind == "OR":
            self.take()
            items.append(self.parse_and(scope))
        return items[0] if len(items) == 1 else _or(items)

    def parse_and(self, scope: frozenset[str] | None) -> Node:
        items = [self.parse_not(scope)]
        while self.peek().kind not in ("OR", "RP", "EOF"):
            if self.peek().kind == "AND":
                self.take()
            items.append(self.parse_not(scope))
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_not(self, scope: frozenset[str] | None) -> Node:
        if self.peek().kind == "NOT":
            self.enter(self.take())
            node = Not(self.parse_not(scope))
            self.depth -= 1
            return node
        return self.parse_near(scope)

    def parse_near(self, scope: frozenset[str] | None) -> Node:
        left_col = self.peek().col
        left = self.parse_primary(scope)
        while self.peek().kind == "NEAR":
            op = self.take()
            if isinstance(left, Near):
                raise QueryError("NEAR cannot be chained: write (a NEAR/n b) AND (b NEAR/n c)", op.col)
            right_col = self.peek().col
            right = self.parse_primary(scope)
            for side, col in ((left, left_col), (right, right_col)):
                if not _near_operand(side):
                    raise QueryError(
                        "NEAR operands must be words, phrases, aliases or (OR-groups of them)", col
                    )
            left = Near(left, right, op.number)
        return left

    def parse_count(self, tok: _Tok, scope: frozenset[str] | None) -> Node:
        self.enter(self.take())
        if self.peek().kind == "RP":
            raise QueryError("empty parentheses", tok.col + 5)
        child = self.parse_or(scope)
        if self.peek().kind != "RP":
            raise QueryError("unbalanced parenthesis: '(' is never closed", tok.col + 5)
        self.take()
        self.depth -= 1
        if not _near_operand(child):
            raise QueryError("count(...) takes a word, phrase, alias or (OR-group of them)", tok.col)
        return Count(child, _count_minimum(self, tok))

    def parse_primary(self, scope: frozenset[str] | None) -> Node:
        tok = self.take()
        if tok.kind == "FIELD":
            inner = LEAD_FIELDS if tok.value == "lead" else frozenset({tok.value})
            if scope is not None and scope != inner:
                outer = "lead" if scope == LEAD_FIELDS else "/".join(sorted(scope))
                raise QueryError(f"field {tok.value}: inside {outer}:(...) can never match", tok.col)
            if self.peek().kind not in ("TERM", "ALIAS", "LP"):
                raise QueryError(f"field {tok.value}: must be followed by a term, phrase, alias or group", tok.col)
            return self.parse_primary(inner)
        fields = scope if scope is not None else DEFAULT_FIELDS
        if tok.kind == "TERM":
            nxt = self.peek()
            if tok.value == "count" and not tok.quoted and not tok.exact and nxt.kind == "LP" and nxt.col == tok.col + 5:
                return self.parse_count(tok, scope)
            return make_term(tok.value, exact=tok.exact, quoted=tok.quoted, fields=fields, col=tok.col)
        if tok.kind == "ALIAS":
            if tok.value not in self.aliases:
                raise QueryError(f"unknown alias @{tok.value}", tok.col)
            terms = tuple(_rescope(t, fields) for t in self.aliases[tok.value])
            return terms[0] if len(terms) == 1 else Or(terms)
        if tok.kind == "LP":
            if self.peek().kind == "RP":
                raise QueryError("empty parentheses", tok.col)
            self.enter(tok)
            node = self.parse_or(scope)
            if self.peek().kind != "RP":
                raise QueryError("unbalanced parenthesis: '(' is never closed", tok.col)
            self.take()
            self.depth -= 1
            return node
        if tok.kind == "EOF":
            raise QueryError("query ends where a term was expected", tok.col)
        if tok.kind == "RP":
            raise QueryError("unbalanced parenthesis: ')' has no matching '('", tok.col)
        if tok.kind == "NEAR":
            raise QueryError("NEAR/n has nothing on its left", tok.col)
        raise QueryError(f"{tok.kind} has nothing on its left", tok.col)


def _count_minimum(parser: _Parser, at: _Tok) -> int:
    """The ``>= n`` after ``count(...)``, written ``>= 2`` or ``>=2``."""
    tok = parser.take()
    text = tok.value if tok.kind == "TERM" and not tok.quoted else ""
    if text == ">=":
        tok = parser.take()
        text = ">=" + (tok.value if tok.kind == "TERM" and not tok.quoted else "")
    m = re.fullmatch(r">=(\d{1,6})", text)
    if not m:
        raise QueryError("count(...) must be followed by >= n, e.g. count(@openai) >= 2", at.col)
    n = int(m.group(1))
    if not 1 <= n <= MAX_COUNT:
        raise QueryError(f"count(...) >= {n}: n must be from 1 to {MAX_COUNT}", at.col)
    return n


def _or(items: Sequence[Node]) -> Node:
    """An OR with nested ORs spliced in: `(@ms OR Azure)` is one OR of terms, so it can be a NEAR operand."""
    flat: list[Node] = []
    for item in items:
        if isinstance(item, Or):
            flat.extend(item.children)
        else:
            flat.append(item)
    unique = tuple(dict.fromkeys(flat))
    return unique[0] if len(unique) == 1 else Or(unique)


def _rescope(term: Term, fields: frozenset[str]) -> Term:
    return Term(term.text, term.key, term.exact, term.prefix, fields)


def _near_operand(node: Node) -> bool:
    if isinstance(node, Term):
        return True
    if isinstance(node, Or):
        return all(isinstance(c, Term) for c in node.children)
    return False


def can_match_positively(node: Node) -> bool:
    """True when a match always needs at least one term to occur.

    The engine only evaluates rules whose terms occurred; a query that could
    match by absence alone (``NOT Azure``) would break that, and is also
    never what an analyst means.
    """
    if isinstance(node, (Term, Near, Count)):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(can_match_positively(c) for c in node.children)
    return all(can_match_positively(c) for c in node.children)


def parse_query(
    query: str,
    aliases: Mapping[str, Sequence[Term]] | None = None,
    warnings: list[tuple[str, int]] | None = None,
) -> Node:
    """Parse one query; aliases map a name to its terms (see `alias_term`).

    Words that look like mistyped operators (``and``, ``near/5``,
    ``OpenAI/3``) stay words to find; when ``warnings`` is given, each is
    appended to it as (message, column).
    """
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}", 1)
    node = _Parser(query, aliases or {}, warnings).parse()
    if not can_match_positively(node):
        raise QueryError("query matches only by what is absent (NOT alone): add a term it must find", 1)
    return node


def positive_terms(node: Node) -> list[Term]:
    """Terms whose occurrence can make the query true (not under NOT)."""
    out: list[Term] = []

    def walk(n: Node) -> None:
        if isinstance(n, Term):
            out.append(n)
        elif isinstance(n, (And, Or)):
            for c in n.children:
                walk(c)
        elif isinstance(n, Near):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Count):
            walk(n.child)

    walk(node)
    return out


def all_terms(node: Node) -> list[Term]:
    out: list[Term] = []

    def walk(n: Node) -> None:
        if isinstance(n, Term):
            out.append(n)
        elif isinstance(n, (And, Or)):
            for c in n.children:
                walk(c)
        elif isinstance(n, (Not, Count)):
            walk(n.child)
        else:
            walk(n.left)
            walk(n.right)

    walk(node)
    return out


def render(node: Node) -> str:
    """A canonical text of the tree (aliases expanded): hashed into the rule-set version."""
    if isinstance(node, Term):
        return node.display()
    if isinstance(node, And):
        return "(" + " AND ".join(render(c) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(render(c) for c in node.children) + ")"
    if isinstance(node, Not):
        return "NOT " + render(node.child)
    if isinstance(node, Count):
        return f"count({render(node.child)}) >= {node.minimum}"
    return f"({render(node.left)} NEAR/{node.distance} {render(node.right)})"
