// Package logging builds Switchboard's structured logger: JSON (or text)
// through log/slog, with secrets and phone numbers redacted whatever code
// logs them.
package logging

import (
	"context"
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
// messages, URLs).
var phonePattern = regexp.MustCompile(`\+[1-9]\d{6,14}`)

func redact(groups []string, a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	for _, s := range secretKeys {
		if k == s || strings.HasSuffix(k, "_"+s) || strings.HasPrefix(k, s+"_") {
			return slog.String(a.Key, "[redacted]")
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if v := a.Value.String(); phonePattern.MatchString(v) {
			return slog.String(a.Key, phonePattern.ReplaceAllStringFunc(v, sb.MaskPhone))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			v := err.Error()
			if phonePattern.MatchString(v) {
				return slog.String(a.Key, phonePattern.ReplaceAllStringFunc(v, sb.MaskPhone))
			}
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
