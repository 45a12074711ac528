package rules

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRenderTranscript(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 3, 14, 13, 26, 53, 0, time.UTC)
	in := TranscriptInput{
		ConversationID: "c-1",
		Fields:         Fields{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "Student Type": "Future Student", "budget": "low"},
		Messages: []Message{
			{Speaker: SpeakerBot, Text: "Hi! How can I help?", At: start},
			{Speaker: SpeakerVisitor, Text: "Admissions,\nplease.", At: start.Add(17 * time.Second)},
			{Speaker: SpeakerAgent, Name: "Grace Hopper", Text: "Sure.", At: start.Add(time.Minute)},
			{Speaker: SpeakerAgent, Text: "Anything else?", At: start.Add(2 * time.Minute)},
		},
		HandledBy: "Grace Hopper",
		Started:   start,
		Closed:    start.Add(3 * time.Minute),
		Location:  ny,
	}
	want := `Chat conversation c-1
Started: 2025-03-14 09:26:53 EDT
Closed: 2025-03-14 09:29:53 EDT
Handled by: Grace Hopper

Captured fields
First name: Ada
Last name: Lovelace
Email: ada@example.org
budget: low
Student Type: Future Student

Transcript
[2025-03-14 09:26:53 EDT] Bot (bot): Hi! How can I help?
[2025-03-14 09:27:10 EDT] Ada Lovelace (visitor): Admissions,
  please.
[2025-03-14 09:27:53 EDT] Grace Hopper (agent): Sure.
[2025-03-14 09:28:53 EDT] Agent (agent): Anything else?
`
	if got := RenderTranscript(in); got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
	empty := RenderTranscript(TranscriptInput{ConversationID: "c-2"})
	if want := "Chat conversation c-2\n\nTranscript\n(no messages)\n"; empty != want {
		t.Errorf("empty transcript %q, want %q", empty, want)
	}
	anon := RenderTranscript(TranscriptInput{ConversationID: "c-3", Messages: []Message{{Speaker: SpeakerVisitor, Text: "hi", At: start}}})
	if !strings.Contains(anon, "[2025-03-14 13:26:53 UTC] Visitor (visitor): hi\n") {
		t.Errorf("a visitor without a name is Visitor, in UTC by default:\n%s", anon)
	}
}

func TestSplitTranscript(t *testing.T) {
	line := strings.Repeat("x", 99) + "\n" // 100 characters
	tests := []struct {
		name      string
		text      string
		limit     int
		maxParts  int
		parts     int
		truncated int
	}{
		{"fits exactly", strings.Repeat(line, 320), 32000, 10, 1, 0},
		{"one over", strings.Repeat(line, 320) + "y", 32000, 10, 2, 0},
		{"three parts", strings.Repeat(line, 700), 32000, 10, 3, 0},
		{"one long line", strings.Repeat("z", 70000), 32000, 10, 3, 0},
		{"truncated", strings.Repeat(line, 400), 1000, 3, 3, 40000 - 3*(1000-reserveFor(40000, 3))/100*100},
		{"emoji count twice", strings.Repeat("😀", 16001), 32000, 10, 2, 0},
		{"tiny limit is raised", strings.Repeat(line, 5), 10, 10, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := SplitTranscript(tt.text, tt.limit, tt.maxParts)
			if len(parts) != tt.parts {
				t.Fatalf("%d parts, want %d", len(parts), tt.parts)
			}
			checkParts(t, tt.text, parts, max(tt.limit, minLimit), tt.maxParts)
			if got := parts[len(parts)-1].Truncated; got != tt.truncated {
				t.Errorf("truncated %d characters, want %d", got, tt.truncated)
			}
		})
	}
	// Parts are cut at line breaks: every part but the last ends with one.
	parts := SplitTranscript(strings.Repeat(line, 700), DescriptionLimit, MaxParts)
	for _, p := range parts[:len(parts)-1] {
		if !strings.HasSuffix(p.Text, "\n") {
			t.Errorf("part %d does not end at a line break", p.N)
		}
	}
	d := parts[1].Description()
	if !strings.HasPrefix(d, "[continued from part 2 of 3]\n") || !strings.HasSuffix(d, "\n[continued in part 3 of 3]") {
		t.Errorf("middle part's markers: %q…%q", d[:40], d[len(d)-40:])
	}
	if parts[0].Subject("2025-03-14") != "Chat transcript 2025-03-14 (part 1 of 3)" {
		t.Errorf("subject %q", parts[0].Subject("2025-03-14"))
	}
	one := SplitTranscript("short", DescriptionLimit, MaxParts)
	if one[0].Description() != "short" || one[0].Subject("2025-03-14") != "Chat transcript 2025-03-14" {
		t.Errorf("a transcript that fits is unchanged: %+v", one)
	}
	cut := SplitTranscript(strings.Repeat(line, 400), 1000, 3)
	if d := cut[2].Description(); !strings.Contains(d, "[transcript truncated: ") {
		t.Errorf("the last part of a truncated transcript says so: %q", d)
	}
}

func reserveFor(textLen, maxParts int) int {
	return Units(startMarker(maxParts, maxParts)) + max(Units(endMarker(maxParts, maxParts)), Units(truncMarker(textLen, maxParts)))
}

// checkParts asserts the split's invariants: every description within the
// limit, parts numbered 1..n of n, at most maxParts, and the parts' texts
// are the transcript (or its start, when truncated, with the rest counted).
func checkParts(t *testing.T, text string, parts []Part, limit, maxParts int) {
	t.Helper()
	if len(parts) == 0 || len(parts) > max(maxParts, 1) {
		t.Fatalf("%d parts (at most %d)", len(parts), maxParts)
	}
	var joined strings.Builder
	for i, p := range parts {
		if p.N != i+1 || p.Of != len(parts) {
			t.Fatalf("part %d is numbered %d of %d", i+1, p.N, p.Of)
		}
		if u := Units(p.Description()); u > limit {
			t.Fatalf("part %d has %d characters, over the limit %d", p.N, u, limit)
		}
		if p.Text == "" && text != "" {
			t.Fatalf("part %d is empty", p.N)
		}
		if p.Truncated != 0 && i != len(parts)-1 {
			t.Fatalf("part %d of %d is marked truncated", p.N, p.Of)
		}
		joined.WriteString(p.Text)
	}
	j := joined.String()
	if !strings.HasPrefix(text, j) {
		t.Fatalf("parts are not the transcript's start")
	}
	if rest := utf8.RuneCountInString(text[len(j):]); rest != parts[len(parts)-1].Truncated {
		t.Fatalf("%d characters left out, %d reported", rest, parts[len(parts)-1].Truncated)
	}
}

// FuzzSplitTranscript checks the split's invariants for any text, limit
// and part count.
func FuzzSplitTranscript(f *testing.F) {
	f.Add(strings.Repeat("line of text\n", 25), 200, 3)
	f.Add(strings.Repeat("😀a\n", 80), 200, 10)
	f.Add("no breaks at all, just one long line of words", 200, 1)
	f.Add("\xff\xfe invalid bytes \n", 200, 2)
	f.Fuzz(func(t *testing.T, text string, limit, maxParts int) {
		limit = minLimit + abs(limit)%2000
		maxParts = 1 + abs(maxParts)%12
		if len(text) > 50000 {
			text = text[:50000]
		}
		checkParts(t, text, SplitTranscript(text, limit, maxParts), limit, maxParts)
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // the smallest int
			return 0
		}
		return -n
	}
	return n
}
