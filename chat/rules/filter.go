package rules

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
)

// Filter is an export filter: conditions on captured fields combined with
// and/or and parentheses. A conversation is exported only when its filter
// holds. The syntax:
//
//	expr      = term { "or" term }
//	term      = factor { "and" factor }
//	factor    = "(" expr ")" | condition
//	condition = field ( "=" value | "!=" value | "equals" value | "not" "equals" value
//	                  | "contains" value | "is" "set" | "is" "not" "set" )
//	field     = word | quoted      (matched by FieldKey: student_type = "Student Type")
//	value     = quoted             ('Future Student' or "Future Student"; \' \" \\ escape)
//
// Keywords are case-insensitive and "and" binds tighter than "or". A word
// is letters, digits and underscores. Comparisons ignore case and the
// spaces around values; a field that was not captured is "" (so
// `student_type != 'Alumni'` holds when no student type was captured, and
// `student_type contains 'x'` does not).
//
// Example: student_type = 'Future Student' and (email is set or phone is set)
type Filter struct {
	root node
}

// Limits of a filter expression.
const (
	MaxFilterLen        = 2000
	MaxFilterConditions = 50
	MaxFilterDepth      = 10
)

type op int

const (
	opEquals op = iota
	opNotEquals
	opContains
	opIsSet
	opIsNotSet
)

type node interface {
	match(f Fields) bool
	write(b *strings.Builder, inAnd bool)
}

type cond struct {
	field string
	op    op
	value string
}

type group struct {
	or    bool
	items []node
}

// ParseFilter reads a filter expression; "" (or only spaces) is no filter
// (nil), which every conversation passes. Errors are EInvalid, name the
// filter setting and say where the expression went wrong.
func ParseFilter(s string) (*Filter, error) {
	if len(s) > MaxFilterLen {
		return nil, sb.FieldError("filter", "filter is longer than %d characters", MaxFilterLen)
	}
	if !utf8.ValidString(s) {
		return nil, sb.FieldError("filter", "filter is not valid UTF-8")
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p := &parser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errorf(t, "unexpected %s; expected and, or or the end", t.describe())
	}
	return &Filter{root: root}, nil
}

// MustParseFilter is ParseFilter for expressions known to be valid; it
// panics on an error (tests, constants).
func MustParseFilter(s string) *Filter {
	f, err := ParseFilter(s)
	if err != nil {
		panic(err)
	}
	return f
}

// Match reports whether the captured fields pass the filter. A nil filter
// passes everything.
func (f *Filter) Match(fields Fields) bool {
	return f == nil || f.root.match(fields)
}

// String returns the filter in canonical form (parsing it again gives the
// same filter).
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	var b strings.Builder
	f.root.write(&b, false)
	return b.String()
}

// Explain says which part of the filter the fields fail, for the export
// log: the failing conditions of a top-level "and", else the whole filter.
// It returns "" when the fields pass.
func (f *Filter) Explain(fields Fields) string {
	if f.Match(fields) {
		return ""
	}
	g, ok := f.root.(*group)
	if !ok || g.or {
		return f.String()
	}
	var failed []string
	for _, it := range g.items {
		if !it.match(fields) {
			var b strings.Builder
			it.write(&b, true)
			failed = append(failed, b.String())
		}
	}
	return strings.Join(failed, " and ")
}

// --- evaluation ---

func (c *cond) match(f Fields) bool {
	v := strings.TrimSpace(f.Get(c.field))
	want := strings.TrimSpace(c.value)
	switch c.op {
	case opEquals:
		return strings.EqualFold(v, want)
	case opNotEquals:
		return !strings.EqualFold(v, want)
	case opContains:
		return v != "" && strings.Contains(strings.ToLower(v), strings.ToLower(want))
	case opIsSet:
		return v != ""
	case opIsNotSet:
		return v == ""
	}
	return false
}

func (g *group) match(f Fields) bool {
	for _, it := range g.items {
		if it.match(f) == g.or {
			return g.or
		}
	}
	return !g.or
}

// --- printing ---

func isKeyword(w string) bool {
	switch strings.ToLower(w) {
	case "and", "or", "not", "is", "set", "equals", "contains":
		return true
	}
	return false
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func isWord(s string) bool {
	if s == "" || isKeyword(s) {
		return false
	}
	for _, r := range s {
		if !isWordRune(r) {
			return false
		}
	}
	return true
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		if r == '\'' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

func (c *cond) write(b *strings.Builder, _ bool) {
	if isWord(c.field) {
		b.WriteString(c.field)
	} else {
		b.WriteString(quote(c.field))
	}
	switch c.op {
	case opEquals:
		b.WriteString(" = " + quote(c.value))
	case opNotEquals:
		b.WriteString(" != " + quote(c.value))
	case opContains:
		b.WriteString(" contains " + quote(c.value))
	case opIsSet:
		b.WriteString(" is set")
	case opIsNotSet:
		b.WriteString(" is not set")
	}
}

func (g *group) write(b *strings.Builder, inAnd bool) {
	paren := g.or && inAnd
	if paren {
		b.WriteByte('(')
	}
	sep := " and "
	if g.or {
		sep = " or "
	}
	for i, it := range g.items {
		if i > 0 {
			b.WriteString(sep)
		}
		it.write(b, !g.or)
	}
	if paren {
		b.WriteByte(')')
	}
}

// --- lexing and parsing ---

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tEq
	tNe
	tWord
	tString
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the source
}

func (t token) is(word string) bool { return t.kind == tWord && strings.EqualFold(t.text, word) }

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tLParen:
		return `"("`
	case tRParen:
		return `")"`
	case tEq:
		return `"="`
	case tNe:
		return `"!="`
	case tString:
		return "quoted text " + quote(Clip(t.text, 20))
	}
	return fmt.Sprintf("%q", Clip(t.text, 20))
}

type parser struct {
	src   string
	toks  []token
	i     int
	conds int
}

func (p *parser) errorf(t token, format string, args ...any) error {
	col := utf8.RuneCountInString(p.src[:t.pos]) + 1
	return sb.FieldError("filter", "filter: %s (at character %d)", fmt.Sprintf(format, args...), col)
}

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			i += size
		case r == '(':
			p.toks = append(p.toks, token{kind: tLParen, pos: i})
			i++
		case r == ')':
			p.toks = append(p.toks, token{kind: tRParen, pos: i})
			i++
		case r == '=':
			p.toks = append(p.toks, token{kind: tEq, pos: i})
			i++
			if i < len(s) && s[i] == '=' { // "==" reads as "="
				i++
			}
		case r == '!':
			if i+1 >= len(s) || s[i+1] != '=' {
				return p.errorf(token{pos: i}, `"!" must be followed by "=" (not equals)`)
			}
			p.toks = append(p.toks, token{kind: tNe, pos: i})
			i += 2
		case r == '\'' || r == '"':
			start := i
			var b strings.Builder
			i += size
			closed := false
			for i < len(s) {
				c, n := utf8.DecodeRuneInString(s[i:])
				if c == '\\' {
					if i+1 >= len(s) {
						break
					}
					e, en := utf8.DecodeRuneInString(s[i+1:])
					if e != '\\' && e != '\'' && e != '"' {
						return p.errorf(token{pos: i}, `unknown escape "\%c" in quoted text; only \', \" and \\ are escapes`, e)
					}
					b.WriteRune(e)
					i += 1 + en
					continue
				}
				i += n
				if c == r {
					closed = true
					break
				}
				b.WriteRune(c)
			}
			if !closed {
				return p.errorf(token{pos: start}, "quoted text is not closed")
			}
			p.toks = append(p.toks, token{kind: tString, text: b.String(), pos: start})
		case isWordRune(r):
			start := i
			for i < len(s) {
				c, n := utf8.DecodeRuneInString(s[i:])
				if !isWordRune(c) {
					break
				}
				i += n
			}
			p.toks = append(p.toks, token{kind: tWord, text: s[start:i], pos: start})
		default:
			return p.errorf(token{pos: i}, "unexpected %q; quote field names and values that have it", r)
		}
	}
	p.toks = append(p.toks, token{kind: tEOF, pos: len(s)})
	return nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// expr parses "term { or term }".
func (p *parser) expr(depth int) (node, error) {
	if depth > MaxFilterDepth {
		return nil, p.errorf(p.peek(), "parentheses are nested more than %d deep", MaxFilterDepth)
	}
	first, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	items := []node{first}
	for p.peek().is("or") {
		p.next()
		t, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		items = append(items, t)
	}
	return flatten(true, items), nil
}

// term parses "factor { and factor }".
func (p *parser) term(depth int) (node, error) {
	first, err := p.factor(depth)
	if err != nil {
		return nil, err
	}
	items := []node{first}
	for p.peek().is("and") {
		p.next()
		f, err := p.factor(depth)
		if err != nil {
			return nil, err
		}
		items = append(items, f)
	}
	return flatten(false, items), nil
}

// flatten makes an n-ary group of items, merging nested groups of the same
// kind, so equivalent expressions have one canonical form.
func flatten(or bool, items []node) node {
	if len(items) == 1 {
		return items[0]
	}
	g := &group{or: or}
	for _, it := range items {
		if sub, ok := it.(*group); ok && sub.or == or {
			g.items = append(g.items, sub.items...)
			continue
		}
		g.items = append(g.items, it)
	}
	return g
}

func (p *parser) factor(depth int) (node, error) {
	t := p.peek()
	if t.kind == tLParen {
		p.next()
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errorf(c, `expected ")" to close the "(" at character %d, found %s`, utf8.RuneCountInString(p.src[:t.pos])+1, c.describe())
		}
		return n, nil
	}
	return p.condition()
}

func (p *parser) condition() (node, error) {
	ft := p.next()
	var field string
	switch {
	case ft.kind == tString:
		field = ft.text
	case ft.kind == tWord && !isKeyword(ft.text):
		field = ft.text
	default:
		return nil, p.errorf(ft, "expected a field name, found %s", ft.describe())
	}
	if err := CheckFieldName("filter", field); err != nil {
		return nil, p.errorf(ft, "%s", sb.ErrorMessage(err))
	}
	p.conds++
	if p.conds > MaxFilterConditions {
		return nil, p.errorf(ft, "a filter may have at most %d conditions", MaxFilterConditions)
	}
	c := &cond{field: strings.TrimSpace(field)}
	ot := p.next()
	switch {
	case ot.kind == tEq || ot.is("equals"):
		c.op = opEquals
	case ot.kind == tNe:
		c.op = opNotEquals
	case ot.is("not"):
		if e := p.next(); !e.is("equals") {
			return nil, p.errorf(e, `expected "equals" after "not", found %s`, e.describe())
		}
		c.op = opNotEquals
	case ot.is("contains"):
		c.op = opContains
	case ot.is("is"):
		c.op = opIsSet
		nt := p.next()
		if nt.is("not") {
			c.op = opIsNotSet
			nt = p.next()
		}
		if !nt.is("set") {
			return nil, p.errorf(nt, `expected "set" after "is", found %s`, nt.describe())
		}
		return c, nil
	default:
		return nil, p.errorf(ot, `expected =, !=, contains, is set or is not set after field %s, found %s`, quote(Clip(c.field, 20)), ot.describe())
	}
	vt := p.next()
	if vt.kind != tString {
		return nil, p.errorf(vt, "expected a quoted value such as 'Future Student', found %s", vt.describe())
	}
	if utf8.RuneCountInString(vt.text) > MaxFieldValueLen {
		return nil, p.errorf(vt, "value is longer than %d characters", MaxFieldValueLen)
	}
	c.value = vt.text
	return c, nil
}
