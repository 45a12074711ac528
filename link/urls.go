package link

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Span is one URL found in a text: Text[Start:End] == URL (byte offsets).
type Span struct {
	Start, End int
	URL        string
}

// FindURLs returns the http and https URLs in text, in order. A URL starts
// with http:// or https:// (any case) at a word boundary and runs to the
// next space, control character, quote or angle bracket; trailing
// punctuation (".", ",", "!", "?", …) and closing brackets without their
// opening one inside the URL are left out, so "see https://x.org/a." finds
// "https://x.org/a". Strings that do not parse as a URL with a host are
// skipped.
func FindURLs(text string) []Span {
	var out []Span
	for i := 0; i < len(text); {
		j := indexFold(text[i:], "http")
		if j < 0 {
			break
		}
		start := i + j
		var rest string
		switch {
		case hasPrefixFold(text[start:], "https://"):
			rest = text[start+len("https://"):]
		case hasPrefixFold(text[start:], "http://"):
			rest = text[start+len("http://"):]
		default:
			i = start + len("http")
			continue
		}
		if start > 0 {
			prev, _ := utf8.DecodeLastRuneInString(text[:start])
			if unicode.IsLetter(prev) || unicode.IsDigit(prev) {
				i = start + len("http")
				continue
			}
		}
		end := len(text) - len(rest)
		for end < len(text) {
			r, size := utf8.DecodeRuneInString(text[end:])
			if stopsURL(r) {
				break
			}
			end += size
		}
		end = start + trimURLEnd(text[start:end])
		candidate := text[start:end]
		if validURL(candidate) {
			out = append(out, Span{Start: start, End: end, URL: candidate})
			i = end
		} else {
			i = start + len("http")
		}
	}
	return out
}

// hasPrefixFold reports whether s starts with p (lower-case ASCII) in any
// case. (Lower-casing the whole text would move byte offsets: invalid UTF-8
// becomes a three-byte replacement character.)
func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// indexFold returns the first index of the ASCII word p in s, in any case.
func indexFold(s, p string) int {
	for k := 0; k+len(p) <= len(s); k++ {
		if hasPrefixFold(s[k:], p) {
			return k
		}
	}
	return -1
}

func stopsURL(r rune) bool {
	switch r {
	case '"', '<', '>', '`', utf8.RuneError:
		return true
	}
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

// trimURLEnd returns the length of u without trailing punctuation and
// unbalanced closing brackets.
func trimURLEnd(u string) int {
	for len(u) > 0 {
		r, size := utf8.DecodeLastRuneInString(u)
		switch r {
		case '.', ',', ';', ':', '!', '?', '\'', '*', '…':
			u = u[:len(u)-size]
			continue
		case ')', ']', '}':
			open := map[rune]rune{')': '(', ']': '[', '}': '{'}[r]
			if strings.Count(u, string(open)) < strings.Count(u, string(r)) {
				u = u[:len(u)-size]
				continue
			}
		}
		break
	}
	return len(u)
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme == "http" || scheme == "https"
}

// Rewrite replaces each URL of text for which replace returns ok with the
// replacement; the rest of the text is kept byte for byte.
func Rewrite(text string, replace func(url string) (string, bool)) string {
	spans := FindURLs(text)
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	last := 0
	for _, s := range spans {
		repl, ok := replace(s.URL)
		if !ok {
			continue
		}
		b.WriteString(text[last:s.Start])
		b.WriteString(repl)
		last = s.End
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}
