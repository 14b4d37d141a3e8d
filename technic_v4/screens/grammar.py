"""Text -> lark parse tree: the grammar, the size limits, and lark's errors as ScreenError.

The grammar is a dozen EBNF rules parsed by lark's LALR(1) parser (no backtracking, and an
explicit stack rather than Python recursion, so a long screen cannot exhaust the interpreter's
recursion limit while parsing). Precedence, loosest first:

    or  <  and  <  not  <  comparison / between / in  <  + -  <  * /  <  unary -  <  x[n], calls

Comparisons do not chain (`a < b < c` is a syntax error), `x between a and b` takes sums as its
bounds so that it binds tighter than `and`, and `and` / `or` chains come out flat (one node
with all operands), as do `+ -` and `* /` chains.

Limits are checked before any tree is built: the text length, then the bracket depth by a
scan of the raw characters (outside string literals), then, on the parse tree and without
recursion, the nesting depth (which also counts `not` / unary minus chains) and the node count.
"""

from __future__ import annotations

import unicodedata

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from technic_v4.screens.errors import ScreenError

MAX_LENGTH = 2_000
MAX_DEPTH = 32
MAX_NODES = 200

GRAMMAR = r"""
?start: expr
?expr: or_expr
?or_expr: and_expr ("or" and_expr)*
?and_expr: not_expr ("and" not_expr)*
?not_expr: "not" not_expr -> not_
         | comparison
?comparison: sum
           | sum COMP_OP sum -> compare
           | sum "between" sum "and" sum -> between
           | sum "in" strings -> isin
           | sum "not" "in" strings -> notin
?sum: product ((PLUS | MINUS) product)*
?product: unary ((STAR | SLASH) unary)*
?unary: "-" unary -> neg
      | postfix
?postfix: atom
        | postfix "[" expr "]" -> lag
?atom: NUMBER -> number
     | STRING -> string
     | "true" -> true
     | "false" -> false
     | NAME -> column
     | TFNAME -> timeframe
     | NAME "(" [argument ("," argument)*] ")" -> call
     | "(" expr ")"
?argument: expr
         | NAME "=" expr -> keyword
strings: "(" STRING ("," STRING)* [","] ")"

COMP_OP: "<=" | ">=" | "==" | "!=" | "<" | ">"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
TFNAME.2: /(?:W|D|M1|M5|M15|M30|H1)\.[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/
STRING: /"[^"\r\n]*"|'[^'\r\n]*'/
%ignore /[ \t\r\n]+/
"""

KEYWORDS = ("and", "or", "not", "in", "between", "true", "false")

_PARSER = Lark(
    GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False, cache=False
)

# What each terminal is called in "expected ..." (ordered: the order they are listed in).
_FRIENDLY = {
    "NUMBER": "a number",
    "NAME": "a column",
    "TFNAME": "a column on a timeframe (W.name, M5.name, ...)",
    "LPAR": "'('",
    "STRING": "a string",
    "MINUS": "'-'",
    "NOT": "'not'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "RPAR": "')'",
    "RSQB": "']'",
    "COMMA": "','",
    "COMP_OP": "a comparison",
    "PLUS": "'+'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "LSQB": "'['",
    "AND": "'and'",
    "OR": "'or'",
    "BETWEEN": "'between'",
    "IN": "'in'",
    "EQUAL": "'='",
    "$END": "the end of the screen",
}
_OPERAND_STARTS = {"NUMBER", "NAME", "LPAR"}
_LOOKALIKES = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u201c": '"', "\u201d": '"', "\u2018": "'",
    "\u2019": "'", "\u2264": "<=", "\u2265": ">=", "\u2260": "!=", "\u00d7": "*", "\u00f7": "/",
    "\uff08": "(", "\uff09": ")", "\u00a0": "a plain space",
}  # fmt: skip
_CHAR_HINTS = {
    "=": "did you mean '=='?",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not', or '!=' for 'not equal'",
    "%": "'%' is not an operator here",
    "^": "'^' is not an operator here",
    ".": "there is no attribute access; a timeframe's column is written W.<name>, M5.<name>",
    "{": "use '(' and ')'",
    "}": "use '(' and ')'",
    ":": "':' has no meaning in a screen",
    ";": "write one expression; join conditions with 'and'",
}


def parse(text: object) -> Tree:
    """The lark parse tree of `text`, after the length, depth and size checks."""
    if not isinstance(text, str):
        raise ScreenError("a screen must be text", hint=f"got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ScreenError(
            f"screen too long: {len(text):,} characters", hint=f"at most {MAX_LENGTH:,}"
        )
    if not text.strip():
        raise ScreenError("empty screen", hint="write a condition such as RSI < 30")
    _check_brackets(text)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as exc:
        raise _bad_character(text, exc) from None
    except UnexpectedToken as exc:
        raise _bad_token(text, exc) from None
    except UnexpectedEOF as exc:
        line, column = _end_position(text)
        raise ScreenError(
            "unexpected end of the screen", line, column, _expected(set(exc.expected))
        ) from None
    except LarkError as exc:  # any other parser complaint: still a ScreenError
        raise ScreenError("cannot parse the screen", hint=type(exc).__name__) from None
    if not isinstance(tree, Tree):  # a bare token cannot happen with this grammar; be safe
        tree = Tree("column", [tree])
    _check_size(tree)
    return tree


def position(item: Tree | Token, default: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """(line, column) where a parse-tree item starts."""
    if isinstance(item, Token):
        return (item.line or default[0], item.column or default[1])
    meta = item.meta
    if getattr(meta, "empty", True):
        for child in item.children:
            if isinstance(child, (Tree, Token)):
                return position(child, default)
        return default
    return (meta.line, meta.column)


def _check_brackets(text: str) -> None:
    """Bracket depth <= MAX_DEPTH, by a plain scan: no tree exists yet."""
    depth, quote, line, column = 0, "", 1, 0
    for ch in text:
        column += 1
        if ch == "\n":
            line, column, quote = line + 1, 0, ""
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
            if depth > MAX_DEPTH:
                raise ScreenError(
                    "brackets nested too deeply", line, column, f"at most {MAX_DEPTH} levels"
                )
        elif ch in ")]":
            depth = max(depth - 1, 0)


def _check_size(tree: Tree) -> None:
    """Nesting depth <= MAX_DEPTH and nodes <= MAX_NODES, walked with an explicit stack."""
    nodes = 0
    stack: list[tuple[Tree, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if node.data not in ("strings", "keyword"):
            nodes += 1
            if nodes > MAX_NODES:
                line, column = position(node)
                raise ScreenError(
                    "screen too large", line, column, f"at most {MAX_NODES} operations and values"
                )
        if depth > MAX_DEPTH:
            line, column = position(node)
            raise ScreenError("screen nested too deeply", line, column, f"at most {MAX_DEPTH}")
        step = 0 if node.data == "keyword" else 1
        stack.extend((c, depth + step) for c in node.children if isinstance(c, Tree))


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


_AFTER_OPERAND = (
    ("COMP_OP", "a comparison"),
    ("STAR", "an operator"),
    ("AND", "'and'"),
    ("OR", "'or'"),
    ("RPAR", "')'"),
    ("RSQB", "']'"),
    ("COMMA", "','"),
    ("$END", "the end of the screen"),
)


def _expected(expected: set[str]) -> str:
    """'expected a number, a column or '('' from lark's set of terminal names."""
    if expected & _OPERAND_STARTS == _OPERAND_STARTS:
        names = ["a number", "a column", "'('"]
    elif "COMP_OP" in expected or "STAR" in expected:  # after a complete operand
        names = [v for k, v in _AFTER_OPERAND if k in expected]
    else:
        names = [v for k, v in _FRIENDLY.items() if k in expected]
    if not names:
        return ""
    names = names[:6]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return "expected " + listed


def _show(ch: str) -> str:
    if ch.isprintable() and ch.isascii():
        return repr(ch)
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def _bad_character(text: str, exc: UnexpectedCharacters) -> ScreenError:
    pos = exc.pos_in_stream if exc.pos_in_stream is not None else -1
    ch = text[pos] if 0 <= pos < len(text) else ""
    if ch in "\"'":
        return ScreenError(
            "unterminated string", exc.line, exc.column, f"close it with {ch} on the same line"
        )
    hint = _CHAR_HINTS.get(ch, "")
    if ch == "!" and text[pos : pos + 2] == "!=":
        hint = "'!=' compares two values"
    if ch in _LOOKALIKES:
        hint = f"use {_LOOKALIKES[ch]!r}" if len(_LOOKALIKES[ch]) <= 2 else f"use {_LOOKALIKES[ch]}"
    elif not hint and not ch.isascii():
        hint = "only ASCII letters, digits, quotes and operators are allowed outside strings"
    elif not hint and not ch.isprintable():
        hint = "control characters are not allowed"
    return ScreenError(f"unexpected character {_show(ch)}", exc.line, exc.column, hint)


def _bad_token(text: str, exc: UnexpectedToken) -> ScreenError:
    token = exc.token
    expected = set(exc.expected)
    try:  # LALR's expected sets are merged across states; ask which terminals really fit
        expected = set(exc.interactive_parser.accepts()) or expected
    except Exception:  # noqa: BLE001 - only a nicer hint is lost
        pass
    if token.type == "$END":
        line, column = _end_position(text)
        return ScreenError("unexpected end of the screen", line, column, _expected(expected))
    line, column = token.line or 1, token.column or 1
    shown = repr(str(token)) if len(str(token)) <= 40 else repr(str(token)[:37] + "...")
    hint = _expected(expected)
    if token.type == "COMP_OP" and "COMP_OP" not in expected and "AND" in expected:
        hint = "comparisons do not chain: write a < b and b < c"
    elif token.type == "NAME" and str(token) in ("lambda", "for", "if", "import", "is"):
        hint = f"'{token}' is not part of the screen language"
    elif token.type == "EQUAL" and "EQUAL" not in expected:
        hint = "did you mean '=='?"
    elif token.type == "STAR" and "STAR" not in expected:
        hint = "'**' is not an operator here"
    return ScreenError(f"unexpected {shown}", line, column, hint)
