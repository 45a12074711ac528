package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedaction(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo, "json")
	log.Info("x", "auth_token", "tok-123456", "password", "hunter2hunter2", "to", "+14155550100",
		"note", "texted +14155550100 today", "err", errors.New("send to +442079460958 failed"), "gateway", "g1")
	out := buf.String()
	for _, leak := range []string{"tok-123456", "hunter2hunter2", "4155550100", "2079460958"} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %q: %s", leak, out)
		}
	}
	for _, keep := range []string{`"gateway":"g1"`, "+1********00", "+4*********58"} {
		if !strings.Contains(out, keep) {
			t.Errorf("log lost %q: %s", keep, out)
		}
	}
}

// TestRedactionNationalFormatsAndSecrets: numbers written without a country
// code, in the message text and in attributes of every kind, and
// credentials inside free text, never reach the log; ids, times, addresses
// and counts do.
func TestRedactionNationalFormatsAndSecrets(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log := New(&buf, slog.LevelDebug, format)
		log.Info("reply from (202) 555-0101 to 2025550102",
			"note", "call 202-555-0103 or 202.555.0104 or 202 555 0105",
			"err", errors.New("carrier refused (202)555-0106: unreachable"),
			"numbers", []string{"2025550107", "+14155550108"},
			"callback", "https://example.org/status?To=%2B14155550109&From=%2B14155550110",
			"header", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig",
			"used", "request with sb_0123456789abcdef_s3cr3tv4lu3 failed",
			"client_secret", "cs-abcdef", "refresh_token", "rt-abcdef",
			slog.Group("gateway", slog.String("auth_token", "at-abcdef"), slog.String("number_note", "texted 2025550111")),
			"message_id", "01a24dc2-9e77-7e3d-b87f-7de4ea553ce8", "at", "2026-11-23T10:00:00.123456Z",
			"ip", "203.0.113.7", "took", "1.234567s", "count", 42, "gw", "g1")
		out := buf.String()
		for _, leak := range []string{"555-0101", "2025550102", "555-0103", "555.0104", "555 0105", "555-0106", "2025550107",
			"4155550108", "4155550109", "4155550110", "eyJhbGciOiJIUzI1NiJ9", "s3cr3tv4lu3", "cs-abcdef", "rt-abcdef", "at-abcdef", "2025550111"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s log leaks %q: %s", format, leak, out)
			}
		}
		for _, keep := range []string{"(***) ***-**01", "********02", "***-***-**03", "%2B1********09", "Bearer [redacted]", "sb_[redacted]",
			"01a24dc2-9e77-7e3d-b87f-7de4ea553ce8", "2026-11-23T10:00:00.123456Z", "203.0.113.7", "1.234567s", "42", "g1"} {
			if !strings.Contains(out, keep) {
				t.Errorf("%s log lost %q: %s", format, keep, out)
			}
		}
	}
}
