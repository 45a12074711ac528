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
