package link

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/store"
)

func TestFindURLs(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"none", "no links here, just http and https words", nil},
		{"simple", "Apply at https://example.org/apply today", []string{"https://example.org/apply"}},
		{"http and any case", "HTTP://Example.ORG/A and Https://x.io", []string{"HTTP://Example.ORG/A", "Https://x.io"}},
		{"trailing punctuation", "See https://example.org/a. Or https://example.org/b, or https://example.org/c!", []string{"https://example.org/a", "https://example.org/b", "https://example.org/c"}},
		{"in parentheses", "(details: https://example.org/x)", []string{"https://example.org/x"}},
		{"balanced parentheses kept", "https://en.example.org/wiki/Go_(language) is it", []string{"https://en.example.org/wiki/Go_(language)"}},
		{"quoted", `Open "https://example.org/q?a=1&b=2" now`, []string{"https://example.org/q?a=1&b=2"}},
		{"angle brackets", "<https://example.org/path>", []string{"https://example.org/path"}},
		{"query and fragment", "https://example.org/p?utm_source=sms&x=%20y#top", []string{"https://example.org/p?utm_source=sms&x=%20y#top"}},
		{"port and user path", "http://localhost:8080/a/b", []string{"http://localhost:8080/a/b"}},
		{"unicode path", "https://example.org/café/menü ok", []string{"https://example.org/café/menü"}},
		{"inside a word", "xhttps://example.org/a", nil},
		{"scheme only", "http:// and https://", nil},
		{"newline ends", "https://example.org/a\nnext", []string{"https://example.org/a"}},
		{"two adjacent by space", "https://a.org/1 https://b.org/2", []string{"https://a.org/1", "https://b.org/2"}},
		{"ellipsis", "more at https://example.org/more…", []string{"https://example.org/more"}},
		{"ftp is not", "ftp://example.org/file", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spans := FindURLs(c.text)
			var got []string
			for _, s := range spans {
				if c.text[s.Start:s.End] != s.URL {
					t.Fatalf("span %d:%d is %q, not %q", s.Start, s.End, c.text[s.Start:s.End], s.URL)
				}
				got = append(got, s.URL)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	text := "Short https://a.io/x, long https://example.org/a/very/long/path?with=query (again https://example.org/a/very/long/path?with=query)."
	got := Rewrite(text, func(u string) (string, bool) {
		if len(u) <= 30 {
			return "", false
		}
		return "https://s.io/l/CODE", true
	})
	want := "Short https://a.io/x, long https://s.io/l/CODE (again https://s.io/l/CODE)."
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if Rewrite("nothing", func(string) (string, bool) { return "x", true }) != "nothing" {
		t.Fatal("text without URLs changed")
	}
}

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 10_000 {
		c := NewCode()
		if !ValidCode(c) {
			t.Fatalf("code %q is not valid", c)
		}
		if seen[c] {
			t.Fatalf("code %q repeated", c)
		}
		seen[c] = true
	}
	for _, bad := range []string{"", "short", "AAAAAAAAAAA", "AAAAAAAAAAAAA", "AAAAAAAAAAA-", "AAAAAAAAAAA/", "ÄAAAAAAAAAA"} {
		if ValidCode(bad) {
			t.Errorf("%q passed as a code", bad)
		}
	}
}

// User-Agent samples of the common browsers and of the link-preview bots.
var agents = []struct {
	name, ua string
	browser  string
	bot      bool
}{
	{"chrome android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", "Chrome 124 on Android", false},
	{"safari iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "Safari 17 on iOS", false},
	{"chrome ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", "Chrome 124 on iOS", false},
	{"firefox windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox 125 on Windows", false},
	{"firefox ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15", "Firefox 125 on iOS", false},
	{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "Edge 124 on Windows", false},
	{"samsung internet", "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "Samsung Internet 24 on Android", false},
	{"opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0", "Opera 109 on Windows", false},
	{"safari mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", "Safari 17 on macOS", false},
	{"facebook in-app", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/459.0.0.38.110]", "Facebook 459 on iOS", false},
	{"internet explorer", "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer 11 on Windows", false},
	{"chromeos", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome 124 on ChromeOS", false},
	{"cubot phone", "Mozilla/5.0 (Linux; Android 10; CUBOT) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "Chrome 120 on Android", false},
	{"unknown", "SomeBrowser", "Other", false},
	{"slackbot", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Other", true},
	{"facebookexternalhit", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "Other", true},
	{"twitterbot", "Twitterbot/1.0", "Other", true},
	{"whatsapp", "WhatsApp/2.23.20.0 A", "Other", true},
	{"imessage preview", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0", "Safari 9 on macOS", true},
	{"applebot", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", "Safari 13 on macOS", true},
	{"telegram", "TelegramBot (like TwitterBot)", "Other", true},
	{"discord", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "Other", true},
	{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Other", true},
	{"linkedin", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "Other", true},
	{"generic bot", "Mozilla/5.0 (compatible; ExampleBot/1.0)", "Other", true},
	{"curl", "curl/8.5.0", "Other", true},
	{"empty", "", "Other", true},
}

func TestParseUserAgent(t *testing.T) {
	for _, c := range agents {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseUserAgent(c.ua).String(); got != c.browser {
				t.Errorf("browser %q, want %q", got, c.browser)
			}
			if got := IsBotAgent(c.ua); got != c.bot {
				t.Errorf("bot %v, want %v", got, c.bot)
			}
		})
	}
}

func TestIsBotRequest(t *testing.T) {
	chrome := agents[0].ua
	cases := []struct {
		name, method string
		header       map[string]string
		bot          bool
	}{
		{"person", "GET", map[string]string{"User-Agent": chrome}, false},
		{"HEAD", "HEAD", map[string]string{"User-Agent": chrome}, true},
		{"prefetch", "GET", map[string]string{"User-Agent": chrome, "Sec-Purpose": "prefetch;prerender"}, true},
		{"purpose preview", "GET", map[string]string{"User-Agent": chrome, "X-Purpose": "preview"}, true},
		{"bot agent", "GET", map[string]string{"User-Agent": "Twitterbot/1.0"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "/l/x", nil)
			r.Header.Del("User-Agent")
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			if got := IsBot(r); got != c.bot {
				t.Fatalf("IsBot = %v, want %v", got, c.bot)
			}
		})
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[string, int](2)
	c.add("a", 1)
	c.add("b", 2)
	if v, ok := c.get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatal("a missing")
	}
	c.add("c", 3) // evicts b
	if _, ok := c.get("b"); ok {
		t.Fatal("b was not evicted")
	}
	if _, ok := c.get("a"); !ok {
		t.Fatal("a was evicted")
	}
	c.add("a", 10)
	if v, _ := c.get("a"); v != 10 || c.len() != 2 {
		t.Fatalf("update: %d, len %d", v, c.len())
	}
}

func TestSettingsNormalize(t *testing.T) {
	cases := []struct {
		name  string
		in    Settings
		want  Settings
		field string
	}{
		{"defaults", Settings{}, Settings{Mode: ModeBasic, MinLength: 30}, ""},
		{"base url normalized", Settings{Mode: "PER_RECIPIENT", BaseURL: " HTTPS://Go.Example.ORG/ ", MinLength: 20}, Settings{Mode: ModePerRecipient, BaseURL: "https://go.example.org", MinLength: 20}, ""},
		{"bad mode", Settings{Mode: "fancy"}, Settings{}, "mode"},
		{"negative length", Settings{MinLength: -1}, Settings{}, "min_length"},
		{"relative base", Settings{BaseURL: "go.example.org"}, Settings{}, "base_url"},
		{"base with path", Settings{BaseURL: "https://example.org/s"}, Settings{}, "base_url"},
		{"base with query", Settings{BaseURL: "https://example.org?x=1"}, Settings{}, "base_url"},
		{"ftp base", Settings{BaseURL: "ftp://example.org"}, Settings{}, "base_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.in.Normalize()
			if c.field != "" {
				var e *sb.Error
				if !sb.IsCode(err, sb.EInvalid) || !errors.As(err, &e) || e.Field != c.field {
					t.Fatalf("error %v, want invalid %s", err, c.field)
				}
				return
			}
			if err != nil || c.in != c.want {
				t.Fatalf("got %+v (%v), want %+v", c.in, err, c.want)
			}
		})
	}
}

// TestRecorderNeverLoses: clicks added concurrently, some after Close
// began, are all written; Flush waits for what was added before it.
func TestRecorderNeverLoses(t *testing.T) {
	var mu sync.Mutex
	written := 0
	batches := 0
	r := newRecorder(logging.Discard(), 4, 3, func(_ context.Context, b []store.Click) error {
		mu.Lock()
		defer mu.Unlock()
		written += len(b)
		batches++
		if len(b) > 3 {
			t.Errorf("batch of %d, max 3", len(b))
		}
		return nil
	})
	ctx := context.Background()
	for range 10 {
		if err := r.add(ctx, store.Click{Code: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if written != 10 {
		t.Fatalf("after flush %d written, want 10", written)
	}
	mu.Unlock()

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := r.add(ctx, store.Click{Code: "b"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close(ctx) }()
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// After Close, a click is written at once.
	if err := r.add(ctx, store.Click{Code: "c"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if written != 10+8*50+1 {
		t.Fatalf("%d clicks written, want %d", written, 10+8*50+1)
	}
}

// TestRecorderRetries: a failed write is retried until it succeeds.
func TestRecorderRetries(t *testing.T) {
	fails := 2
	got := make(chan int, 10)
	r := newRecorder(logging.Discard(), 4, 10, func(_ context.Context, b []store.Click) error {
		if fails > 0 {
			fails--
			return fmt.Errorf("database is down")
		}
		got <- len(b)
		return nil
	})
	if err := r.add(context.Background(), store.Click{}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 1 {
		t.Fatalf("wrote %d", n)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNotFoundPage(t *testing.T) {
	for _, method := range []string{"GET", "HEAD"} {
		w := httptest.NewRecorder()
		notFound(w, httptest.NewRequest(method, "/l/x", nil))
		if w.Code != http.StatusNotFound || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", method, w.Code, w.Header())
		}
		if (method == "GET") != strings.Contains(w.Body.String(), "Link not found") {
			t.Fatalf("%s body: %q", method, w.Body.String())
		}
	}
}
