// Package logging builds Switchboard's structured logger: JSON (or text)
// through log/slog, with secrets and phone numbers redacted whatever code
// logs them.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	sb "github.com/switchboard/switchboard"
)

// New returns a logger writing to w at level in format "json" or "text".
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redact}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h)
}

// secretKeys are attribute names whose values are never logged.
var secretKeys = []string{"token", "secret", "password", "authorization", "api_key", "apikey", "key", "credential", "body", "phone", "to", "from"}

// phonePattern finds E.164-looking numbers inside free text (error
// messages, URLs — also with the + percent-encoded).
var phonePattern = regexp.MustCompile(`(?:\+|%2[Bb])[1-9]\d{6,14}`)

// nationalPattern finds numbers written without a country code: (202)
// 555-0123, 202-555-0123, 202.555.0123, 202 555 0123, and bare runs of 10
// to 15 digits (2025550123) standing alone. A long number that is not a
// phone number (a timestamp in text) is masked too: better than a leak.
var nationalPattern = regexp.MustCompile(`\(\d{2,5}\)[\s.-]?\d{2,4}[\s.-]?\d{3,4}\b|\b\d{3}[\s.-]\d{3}[\s.-]\d{4}\b|\b\d{10,15}\b`)

// secretPattern finds credentials inside free text: Switchboard API keys
// and bearer tokens.
var secretPattern = regexp.MustCompile(`\bsb_[A-Za-z0-9]+_[A-Za-z0-9]+|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+`)

// scrub masks phone numbers and credentials in free text; ok reports
// whether it changed anything.
func scrub(v string) (string, bool) {
	out := phonePattern.ReplaceAllStringFunc(v, func(p string) string {
		if p[0] == '%' {
			return "%2B" + sb.MaskPhone("+" + p[3:])[1:]
		}
		return sb.MaskPhone(p)
	})
	out = nationalPattern.ReplaceAllStringFunc(out, maskDigits)
	out = secretPattern.ReplaceAllStringFunc(out, func(s string) string {
		if strings.HasPrefix(s, "sb_") {
			return "sb_[redacted]"
		}
		return s[:len("bearer")] + " [redacted]"
	})
	return out, out != v
}

// maskDigits replaces every digit but the last two with '*', keeping the
// punctuation: (***) ***-**23.
func maskDigits(s string) string {
	b := []byte(s)
	keep := 2
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '0' || b[i] > '9' {
			continue
		}
		if keep > 0 {
			keep--
			continue
		}
		b[i] = '*'
	}
	return string(b)
}

func redact(groups []string, a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	for _, s := range secretKeys {
		if k == s || strings.HasSuffix(k, "_"+s) || strings.HasPrefix(k, s+"_") {
			return slog.String(a.Key, "[redacted]")
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if v, changed := scrub(a.Value.String()); changed {
			return slog.String(a.Key, v)
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			v, _ := scrub(err.Error())
			return slog.String(a.Key, v)
		}
		// Other values (lists, structs) are logged as text when they hold
		// something to hide.
		if v, changed := scrub(fmt.Sprint(a.Value.Any())); changed {
			return slog.String(a.Key, v)
		}
	}
	return a
}

// Discard is a logger that writes nothing (tests).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// AtLeast returns a logger that drops records below min (for chatty
// libraries such as the job queue).
func AtLeast(l *slog.Logger, min slog.Level) *slog.Logger {
	return slog.New(levelFilter{Handler: l.Handler(), min: min})
}

type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{Handler: f.Handler.WithAttrs(a), min: f.min}
}

func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{Handler: f.Handler.WithGroup(n), min: f.min}
}
