package link

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzFindURLs: spans are in order, inside the text, never overlap, start
// with http(s):// and parse as URLs; rewriting every URL with itself gives
// the text back; rewriting with a short link leaves no long URL behind.
func FuzzFindURLs(f *testing.F) {
	for _, s := range []string{"", "https://example.org/a.", "(https://x.org/a_(b))", "xhttp://a.b", "HTTP://A.B https://c.d/e?f=g#h",
		"https://", "http://[::1]:80/x", "https://a.b/\xff", "https://例え.jp/パス", "https://a.b/c…)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		spans := FindURLs(text)
		last := 0
		for _, s := range spans {
			if s.Start < last || s.End <= s.Start || s.End > len(text) {
				t.Fatalf("bad span %d:%d after %d in %q", s.Start, s.End, last, text)
			}
			if text[s.Start:s.End] != s.URL {
				t.Fatalf("span text %q is not the URL %q", text[s.Start:s.End], s.URL)
			}
			l := strings.ToLower(s.URL)
			if !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
				t.Fatalf("%q is not an http(s) URL", s.URL)
			}
			if u, err := url.Parse(s.URL); err != nil || u.Host == "" {
				t.Fatalf("%q does not parse: %v", s.URL, err)
			}
			if !utf8.ValidString(s.URL) {
				t.Fatalf("%q is not valid UTF-8", s.URL)
			}
			last = s.End
		}
		if got := Rewrite(text, func(u string) (string, bool) { return u, true }); got != text {
			t.Fatalf("identity rewrite changed %q to %q", text, got)
		}
		// Every long URL becomes one short link; nothing else changes.
		short := "https://s.io/l/AAAAAAAAAAAA"
		out := Rewrite(text, func(u string) (string, bool) { return short, len(u) > 30 })
		want := strings.Count(text, short)
		for _, s := range spans {
			if len(s.URL) > 30 {
				want += 1 - strings.Count(s.URL, short)
			}
		}
		if got := strings.Count(out, short); got != want {
			t.Fatalf("rewrite of %q has %d short links, want %d: %q", text, got, want, out)
		}
	})
}

// FuzzUserAgent: any header parses to a name, and the bot check answers.
func FuzzUserAgent(f *testing.F) {
	for _, a := range agents {
		f.Add(a.ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		b := ParseUserAgent(ua)
		if b.Name == "" || b.String() == "" {
			t.Fatalf("no browser name for %q", ua)
		}
		if len(b.Version) > 6 {
			t.Fatalf("version %q too long", b.Version)
		}
		for _, r := range b.Version {
			if r < '0' || r > '9' {
				t.Fatalf("version %q is not a number", b.Version)
			}
		}
		_ = IsBotAgent(ua)
	})
}
