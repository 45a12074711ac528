package link

import (
	"net/http"
	"strings"
)

// Browser is what a User-Agent header says about the browser that clicked.
type Browser struct {
	// Name is the browser ("Chrome", "Safari", …) or "Other".
	Name string
	// Version is the major version, when the header gives one.
	Version string
	// OS is the operating system ("iOS", "Android", …), when known.
	OS string
}

// String returns "Chrome 124 on Android", "Safari on iOS", "Other".
func (b Browser) String() string {
	s := b.Name
	if b.Version != "" {
		s += " " + b.Version
	}
	if b.OS != "" {
		s += " on " + b.OS
	}
	return s
}

// browserTokens are checked in order: many browsers also name the engine
// they are built on ("Chrome/…" in Edge, "Safari/…" in Chrome), so the more
// specific tokens come first.
var browserTokens = []struct{ token, name string }{
	{"edg/", "Edge"}, {"edga/", "Edge"}, {"edgios/", "Edge"}, {"edge/", "Edge"},
	{"opr/", "Opera"}, {"opera/", "Opera"}, {"opt/", "Opera"},
	{"samsungbrowser/", "Samsung Internet"},
	{"yabrowser/", "Yandex Browser"},
	{"ucbrowser/", "UC Browser"},
	{"vivaldi/", "Vivaldi"},
	{"duckduckgo/", "DuckDuckGo"},
	{"fbav/", "Facebook"}, {"fban/", "Facebook"},
	{"instagram ", "Instagram"},
	{"fxios/", "Firefox"}, {"firefox/", "Firefox"},
	{"crios/", "Chrome"}, {"chromium/", "Chromium"}, {"chrome/", "Chrome"},
	{"msie ", "Internet Explorer"}, {"trident/", "Internet Explorer"},
}

// ParseUserAgent reads the browser, its major version and the operating
// system from a User-Agent header. Unknown browsers are "Other".
func ParseUserAgent(ua string) Browser {
	if len(ua) > 1024 {
		ua = ua[:1024]
	}
	l := strings.ToLower(ua)
	b := Browser{Name: "Other", OS: parseOS(l)}
	for _, t := range browserTokens {
		if i := strings.Index(l, t.token); i >= 0 {
			b.Name = t.name
			b.Version = leadingDigits(l[i+len(t.token):])
			if t.token == "trident/" {
				b.Version = ieVersion(l)
			}
			return b
		}
	}
	if strings.Contains(l, "safari/") || strings.Contains(l, "applewebkit/") && (b.OS == "iOS" || b.OS == "macOS") {
		b.Name = "Safari"
		if i := strings.Index(l, "version/"); i >= 0 {
			b.Version = leadingDigits(l[i+len("version/"):])
		}
	}
	return b
}

func parseOS(l string) string {
	switch {
	case strings.Contains(l, "iphone"), strings.Contains(l, "ipad"), strings.Contains(l, "ipod"):
		return "iOS"
	case strings.Contains(l, "android"):
		return "Android"
	case strings.Contains(l, "windows"):
		return "Windows"
	case strings.Contains(l, "cros"):
		return "ChromeOS"
	case strings.Contains(l, "mac os x"), strings.Contains(l, "macintosh"):
		return "macOS"
	case strings.Contains(l, "linux"):
		return "Linux"
	}
	return ""
}

func leadingDigits(s string) string {
	n := 0
	for n < len(s) && n < 6 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return s[:n]
}

// ieVersion maps the Trident engine version to Internet Explorer's.
func ieVersion(l string) string {
	if i := strings.Index(l, "rv:"); i >= 0 {
		return leadingDigits(l[i+3:])
	}
	return ""
}

// botTokens mark link-preview fetchers, crawlers and HTTP libraries: a
// request from one is not a person clicking.
var botTokens = []string{
	"slackbot", "slack-imgproxy", "facebookexternalhit", "facebot", "twitterbot",
	"whatsapp", "applebot", "telegrambot", "discordbot", "googlebot", "google-inspectiontool",
	"googleother", "adsbot-google", "mediapartners-google", "apis-google", "feedfetcher-google",
	"google-read-aloud", "bingbot", "bingpreview", "linkedinbot", "pinterestbot", "redditbot",
	"skypeuripreview", "embedly", "iframely", "vkshare", "yandexbot", "baiduspider",
	"duckduckbot", "petalbot", "semrushbot", "ahrefsbot", "mj12bot", "kakaotalk-scrap",
	"bitlybot", "crawler", "spider", "preview",
	"headlesschrome", "phantomjs", "curl/", "wget/", "python-requests", "python-urllib",
	"aiohttp", "go-http-client", "java/", "okhttp", "libwww-perl", "axios/", "node-fetch",
	"undici", "httpclient", "scrapy",
}

// IsBot reports whether a request to a short link comes from a program
// rather than a person: HEAD requests, prefetches and previews, an empty
// User-Agent, and the known preview fetchers and crawlers (Slackbot,
// facebookexternalhit, Twitterbot, WhatsApp, the iMessage and Applebot
// previews, TelegramBot, Discordbot, Googlebot, …).
func IsBot(r *http.Request) bool {
	if r.Method == http.MethodHead {
		return true
	}
	for _, h := range []string{"Sec-Purpose", "Purpose", "X-Purpose", "X-Moz"} {
		if v := strings.ToLower(r.Header.Get(h)); strings.Contains(v, "prefetch") || strings.Contains(v, "preview") {
			return true
		}
	}
	return IsBotAgent(r.UserAgent())
}

// IsBotAgent reports whether a User-Agent names a bot, preview fetcher or
// HTTP library. An empty User-Agent is a program's.
func IsBotAgent(ua string) bool {
	l := strings.ToLower(strings.TrimSpace(ua))
	if l == "" {
		return true
	}
	for _, t := range botTokens {
		if strings.Contains(l, t) {
			return true
		}
	}
	// Generic "somethingbot/1.0" and "(compatible; somethingbot; …)": the
	// word "bot" ending a product token. A phone model called "Cubot" is
	// not one.
	l = strings.ReplaceAll(l, "cubot", "")
	for _, end := range []string{"bot/", "bot;", "bot)", "bot-", "bot_", "+http"} {
		if strings.Contains(l, end) {
			return true
		}
	}
	return false
}
