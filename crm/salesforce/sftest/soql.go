package sftest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SOQL is a parsed query of the subset the fake understands:
//
//	SELECT f1, f2 FROM Object
//	  [WHERE cond]                     -- =, !=, <>, <, <=, >, >=, IN, NOT IN, AND, OR, NOT, ( )
//	  [ORDER BY f [ASC|DESC] [, …]]
//	  [LIMIT n]
//
// String literals take the escape sequences of the SOQL reference (\n \N
// \r \R \t \T \b \B \f \F \" \' \\ \uXXXX); any other backslash is an
// error, as in Salesforce. Mixing AND and OR without parentheses is an
// error, as in Salesforce.
type SOQL struct {
	Fields  []string
	Object  string
	Where   *Expr
	OrderBy []OrderBy
	// Limit is -1 without a LIMIT clause.
	Limit int
}

// OrderBy is one ORDER BY item.
type OrderBy struct {
	Field string
	Desc  bool
}

// Expr is a WHERE condition. Comparisons have Field and Values (string,
// float64, bool or nil); AND, OR and NOT have Args.
type Expr struct {
	Op     string
	Field  string
	Values []any
	Args   []*Expr
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tPunct
)

type tok struct {
	kind tokKind
	text string
	val  any
	pos  int
}

// lex splits a query into tokens.
func lex(q string) ([]tok, error) {
	var toks []tok
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			s, n, err := readString(q[i:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, tok{kind: tString, text: q[i : i+n], val: s, pos: i})
			i += n
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && (isIdentStart(q[j]) || q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			toks = append(toks, tok{kind: tIdent, text: q[i:j], pos: i})
			i = j
		case c >= '0' && c <= '9' || c == '-' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			j := i + 1
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			f, err := strconv.ParseFloat(q[i:j], 64)
			if err != nil {
				return nil, fmt.Errorf("at %d: bad number %q", i, q[i:j])
			}
			toks = append(toks, tok{kind: tNumber, text: q[i:j], val: f, pos: i})
			i = j
		default:
			for _, p := range []string{"!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", ","} {
				if strings.HasPrefix(q[i:], p) {
					toks = append(toks, tok{kind: tPunct, text: p, pos: i})
					i += len(p)
					goto next
				}
			}
			return nil, fmt.Errorf("at %d: unexpected character %q", i, q[i])
		next:
		}
	}
	return append(toks, tok{kind: tEOF, pos: len(q)}), nil
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

// readString reads a quoted literal at the start of s and returns its
// value and length.
func readString(s string) (string, int, error) {
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		switch c {
		case '\'':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated escape")
			}
			e := s[i+1]
			switch e {
			case 'n', 'N':
				b.WriteByte('\n')
			case 'r', 'R':
				b.WriteByte('\r')
			case 't', 'T':
				b.WriteByte('\t')
			case 'b', 'B':
				b.WriteByte('\b')
			case 'f', 'F':
				b.WriteByte('\f')
			case '"', '\'', '\\':
				b.WriteByte(e)
			case 'u':
				if i+6 > len(s) {
					return "", 0, fmt.Errorf("short \\u escape")
				}
				n, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
				if err != nil {
					return "", 0, fmt.Errorf("bad \\u escape")
				}
				b.WriteRune(rune(n))
				i += 6
				continue
			default:
				return "", 0, fmt.Errorf("invalid escape sequence \\%c", e)
			}
			i += 2
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r)
			i += size
		}
	}
	return "", 0, fmt.Errorf("unterminated string literal")
}

type parser struct {
	toks []tok
	i    int
}

func (p *parser) peek() tok { return p.toks[p.i] }
func (p *parser) next() tok {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(kw string) bool {
	t := p.peek()
	if t.kind == tIdent && strings.EqualFold(t.text, kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectKeyword(kw string) error {
	if !p.keyword(kw) {
		return p.errorf("expected %s", kw)
	}
	return nil
}

func (p *parser) punct(s string) bool {
	t := p.peek()
	if t.kind == tPunct && t.text == s {
		p.i++
		return true
	}
	return false
}

func (p *parser) errorf(format string, args ...any) error {
	t := p.peek()
	what := t.text
	if t.kind == tEOF {
		what = "end of query"
	}
	return fmt.Errorf("%s at %d (found %s)", fmt.Sprintf(format, args...), t.pos, what)
}

var reserved = map[string]bool{"select": true, "from": true, "where": true, "and": true, "or": true, "not": true, "in": true, "order": true, "by": true, "asc": true, "desc": true, "limit": true, "null": true, "true": true, "false": true, "nulls": true, "first": true, "last": true}

func (p *parser) ident() (string, error) {
	t := p.peek()
	if t.kind != tIdent || reserved[strings.ToLower(t.text)] {
		return "", p.errorf("expected a field or object name")
	}
	p.i++
	return t.text, nil
}

// ParseSOQL parses a query of the subset described at SOQL.
func ParseSOQL(q string) (*SOQL, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	out := &SOQL{Limit: -1}
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	for {
		f, err := p.ident()
		if err != nil {
			return nil, err
		}
		out.Fields = append(out.Fields, f)
		if !p.punct(",") {
			break
		}
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	if out.Object, err = p.ident(); err != nil {
		return nil, err
	}
	if p.keyword("WHERE") {
		if out.Where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.keyword("ORDER") {
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			f, err := p.ident()
			if err != nil {
				return nil, err
			}
			ob := OrderBy{Field: f}
			if p.keyword("DESC") {
				ob.Desc = true
			} else {
				p.keyword("ASC")
			}
			out.OrderBy = append(out.OrderBy, ob)
			if !p.punct(",") {
				break
			}
		}
	}
	if p.keyword("LIMIT") {
		t := p.next()
		n, ok := t.val.(float64)
		if t.kind != tNumber || !ok || n < 0 || n != float64(int(n)) || n > 50000 {
			return nil, fmt.Errorf("LIMIT must be a whole number up to 50000")
		}
		out.Limit = int(n)
	}
	if p.peek().kind != tEOF {
		return nil, p.errorf("unexpected token")
	}
	return out, nil
}

// expr parses factors joined by one kind of connective.
func (p *parser) expr() (*Expr, error) {
	first, err := p.factor()
	if err != nil {
		return nil, err
	}
	var op string
	args := []*Expr{first}
	for {
		var this string
		switch {
		case p.keyword("AND"):
			this = "AND"
		case p.keyword("OR"):
			this = "OR"
		default:
			if op == "" {
				return first, nil
			}
			return &Expr{Op: op, Args: args}, nil
		}
		if op != "" && op != this {
			return nil, p.errorf("unexpected token: %s (use parentheses to mix AND and OR)", this)
		}
		op = this
		f, err := p.factor()
		if err != nil {
			return nil, err
		}
		args = append(args, f)
	}
}

func (p *parser) factor() (*Expr, error) {
	if p.keyword("NOT") {
		f, err := p.factor()
		if err != nil {
			return nil, err
		}
		return &Expr{Op: "NOT", Args: []*Expr{f}}, nil
	}
	if p.punct("(") {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if !p.punct(")") {
			return nil, p.errorf("expected )")
		}
		return e, nil
	}
	field, err := p.ident()
	if err != nil {
		return nil, err
	}
	if p.keyword("NOT") {
		if !p.keyword("IN") {
			return nil, p.errorf("expected IN after NOT")
		}
		vals, err := p.list()
		if err != nil {
			return nil, err
		}
		return &Expr{Op: "NOT IN", Field: field, Values: vals}, nil
	}
	if p.keyword("IN") {
		vals, err := p.list()
		if err != nil {
			return nil, err
		}
		return &Expr{Op: "IN", Field: field, Values: vals}, nil
	}
	t := p.next()
	if t.kind != tPunct || t.text == "(" || t.text == ")" || t.text == "," {
		return nil, fmt.Errorf("expected a comparison after %s", field)
	}
	op := t.text
	if op == "<>" {
		op = "!="
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	return &Expr{Op: op, Field: field, Values: []any{v}}, nil
}

func (p *parser) list() ([]any, error) {
	if !p.punct("(") {
		return nil, p.errorf("expected (")
	}
	var vals []any
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		if p.punct(")") {
			return vals, nil
		}
		if !p.punct(",") {
			return nil, p.errorf("expected , or )")
		}
	}
}

func (p *parser) value() (any, error) {
	t := p.peek()
	switch {
	case t.kind == tString || t.kind == tNumber:
		p.i++
		return t.val, nil
	case p.keyword("null"):
		return nil, nil
	case p.keyword("true"):
		return true, nil
	case p.keyword("false"):
		return false, nil
	}
	return nil, p.errorf("expected a value")
}

// match evaluates e against a record's values (looked up by get).
func (e *Expr) match(get func(field string) any) bool {
	switch e.Op {
	case "AND":
		for _, a := range e.Args {
			if !a.match(get) {
				return false
			}
		}
		return true
	case "OR":
		for _, a := range e.Args {
			if a.match(get) {
				return true
			}
		}
		return false
	case "NOT":
		return !e.Args[0].match(get)
	case "IN", "NOT IN":
		v := get(e.Field)
		in := false
		for _, w := range e.Values {
			if compare(v, w) == 0 {
				in = true
			}
		}
		return in == (e.Op == "IN")
	}
	v, w := get(e.Field), e.Values[0]
	c := compare(v, w)
	switch e.Op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	}
	if v == nil || w == nil {
		return false
	}
	switch e.Op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

// compare orders values; strings compare case-insensitively as in SOQL,
// nil sorts first.
func compare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	af, aNum := a.(float64)
	bf, bNum := b.(float64)
	if aNum && bNum {
		switch {
		case af < bf:
			return -1
		case af > bf:
			return 1
		}
		return 0
	}
	return strings.Compare(strings.ToLower(fmt.Sprint(a)), strings.ToLower(fmt.Sprint(b)))
}
