package switchboard_test

import (
	"testing"

	sb "github.com/switchboard/switchboard"
)

func TestKeywordMatch(t *testing.T) {
	kw := sb.DefaultKeywords(sb.ProviderTwilio)
	tests := []struct {
		body string
		kind sb.KeywordKind
		word string
	}{
		{"STOP", sb.KeywordOptOut, "STOP"},
		{"stop", sb.KeywordOptOut, "STOP"},
		{"  Stop.  ", sb.KeywordOptOut, "STOP"},
		{"STOP!!!", sb.KeywordOptOut, "STOP"},
		{"\"stop\"", sb.KeywordOptOut, "STOP"},
		{"unsubscribe\n", sb.KeywordOptOut, "UNSUBSCRIBE"},
		{"StopAll", sb.KeywordOptOut, "STOPALL"},
		{"start", sb.KeywordOptIn, "START"},
		{"Yes", sb.KeywordOptIn, "YES"},
		{"help?", sb.KeywordHelp, "HELP"},
		{"info", sb.KeywordHelp, "INFO"},
		{"stop please", sb.KeywordNone, ""},
		{"please stop", sb.KeywordNone, ""},
		{"STOPP", sb.KeywordNone, ""},
		{"", sb.KeywordNone, ""},
		{"...", sb.KeywordNone, ""},
		{"yes I will come", sb.KeywordNone, ""},
	}
	for _, tt := range tests {
		kind, word := kw.Match(tt.body)
		if kind != tt.kind || word != tt.word {
			t.Errorf("Match(%q) = %q %q, want %q %q", tt.body, kind, word, tt.kind, tt.word)
		}
	}
	custom := sb.Keywords{OptOut: []string{"STOP PLEASE"}}
	if kind, _ := custom.Match("  stop   please! "); kind != sb.KeywordOptOut {
		t.Errorf("configured phrase not matched: %q", kind)
	}
}

func TestEffectiveStatus(t *testing.T) {
	if got := sb.EffectiveStatus(nil, sb.OptInDefault); got != sb.OptedIn {
		t.Errorf("default mode, no record: %s", got)
	}
	if got := sb.EffectiveStatus(nil, sb.OptInMandatory); got != sb.NoOptIn {
		t.Errorf("mandatory mode, no record: %s", got)
	}
	sub := &sb.Subscription{Status: sb.OptedOut}
	if got := sb.EffectiveStatus(sub, sb.OptInDefault); got != sb.OptedOut {
		t.Errorf("stored opt-out: %s", got)
	}
	if sb.BlockDebug(sb.OptedOut) != "Previous Opt-out" || sb.BlockDebug(sb.NoOptIn) != "No Opt-In" || sb.BlockDebug(sb.OptedIn) != "" {
		t.Error("BlockDebug texts")
	}
}

func FuzzKeywordMatch(f *testing.F) {
	for _, s := range []string{"STOP", " stop. ", "stop please", "", "\u200bSTOP", "ＳＴＯＰ"} {
		f.Add(s)
	}
	kw := sb.DefaultKeywords(sb.ProviderSim)
	f.Fuzz(func(t *testing.T, body string) {
		kind, word := kw.Match(body)
		if (kind == sb.KeywordNone) != (word == "") {
			t.Fatalf("kind %q with word %q", kind, word)
		}
		if kind != sb.KeywordNone {
			// A match survives extra surrounding punctuation and case changes.
			if k2, _ := kw.Match(" ¡" + body + "?! "); k2 != kind {
				t.Fatalf("%q matched %s but decorated form matched %s", body, kind, k2)
			}
		}
	})
}

func TestStatusForwardOnly(t *testing.T) {
	if !sb.StatusQueued.Advances(sb.StatusSent) || !sb.StatusSent.Advances(sb.StatusDelivered) {
		t.Error("forward moves refused")
	}
	if sb.StatusDelivered.Advances(sb.StatusSent) || sb.StatusDelivered.Advances(sb.StatusFailed) || sb.StatusSent.Advances(sb.StatusQueued) {
		t.Error("backward or sideways move allowed")
	}
}
