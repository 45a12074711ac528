package rules

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Speakers of chat messages.
const (
	SpeakerVisitor = "visitor"
	SpeakerBot     = "bot"
	SpeakerAgent   = "agent"
)

// Task description limits: Salesforce's Task.Description holds 32,000
// characters. A longer transcript is split into several tasks of at most
// DescriptionLimit characters each, at message boundaries where it can;
// past MaxParts tasks the last one ends with a truncation marker.
const (
	DescriptionLimit = 32000
	MaxParts         = 10
	// minLimit is the smallest limit SplitTranscript works with (room for
	// its markers and some text).
	minLimit = 200
)

// Message is one message of a transcript.
type Message struct {
	// Speaker is visitor, bot or agent.
	Speaker string
	// Name is the speaker's name; "" shows a default by speaker.
	Name string
	Text string
	At   time.Time
}

// TranscriptInput is what a transcript is rendered from.
type TranscriptInput struct {
	ConversationID string
	Fields         Fields
	Messages       []Message
	// HandledBy is the name of the user who handled the conversation.
	HandledBy string
	Started   time.Time
	Closed    time.Time
	// Location is the time zone of the timestamps (UTC when nil).
	Location *time.Location
}

const stampLayout = "2006-01-02 15:04:05 MST"

// RenderTranscript renders a conversation as the text of its CRM task: a
// header (conversation id, times, handling user), the captured fields, then
// one line per message, "[time] speaker name (role): text", with the
// continuation lines of a multi-line message indented.
func RenderTranscript(in TranscriptInput) string {
	loc := in.Location
	if loc == nil {
		loc = time.UTC
	}
	stamp := func(t time.Time) string { return t.In(loc).Format(stampLayout) }
	var b strings.Builder
	b.WriteString("Chat conversation " + in.ConversationID + "\n")
	if !in.Started.IsZero() {
		b.WriteString("Started: " + stamp(in.Started) + "\n")
	}
	if !in.Closed.IsZero() {
		b.WriteString("Closed: " + stamp(in.Closed) + "\n")
	}
	if in.HandledBy != "" {
		b.WriteString("Handled by: " + in.HandledBy + "\n")
	}
	if len(in.Fields) > 0 {
		b.WriteString("\nCaptured fields\n")
		for _, k := range StandardFields {
			if v := in.Fields[k]; v != "" {
				b.WriteString(Label(k) + ": " + v + "\n")
			}
		}
		for _, n := range in.Fields.Custom() {
			b.WriteString(Label(n) + ": " + in.Fields[n] + "\n")
		}
	}
	b.WriteString("\nTranscript\n")
	if len(in.Messages) == 0 {
		b.WriteString("(no messages)\n")
	}
	visitor := strings.TrimSpace(in.Fields.Get(FieldFirstName) + " " + in.Fields.Get(FieldLastName))
	for _, m := range in.Messages {
		b.WriteString("[" + stamp(m.At) + "] " + speakerName(m, visitor) + " (" + m.Speaker + "): ")
		lines := strings.Split(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n")
		b.WriteString(lines[0] + "\n")
		for _, l := range lines[1:] {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}

func speakerName(m Message, visitor string) string {
	if n := strings.TrimSpace(m.Name); n != "" {
		return n
	}
	switch m.Speaker {
	case SpeakerVisitor:
		if visitor != "" {
			return visitor
		}
		return "Visitor"
	case SpeakerBot:
		return "Bot"
	}
	return "Agent"
}

// Part is one task's share of a transcript.
type Part struct {
	// Text is this part's slice of the transcript, unchanged.
	Text string
	// N counts from 1; Of is the number of parts.
	N, Of int
	// Truncated is the number of characters of the transcript left out
	// after the last part (0 unless the transcript needed more than the
	// allowed number of parts).
	Truncated int
}

func startMarker(n, of int) string { return fmt.Sprintf("[continued from part %d of %d]\n", n, of) }
func endMarker(n, of int) string   { return fmt.Sprintf("\n[continued in part %d of %d]", n, of) }
func truncMarker(chars, of int) string {
	return fmt.Sprintf("\n[transcript truncated: %d more characters did not fit in %d tasks]", chars, of)
}

// Description returns the part as a task description: its text with
// "[continued from part n of m]" before and "[continued in part n+1 of m]"
// after it when the transcript is split, and "[transcript truncated: …]"
// at the end when text was left out.
func (p Part) Description() string {
	var b strings.Builder
	if p.N > 1 {
		b.WriteString(startMarker(p.N, p.Of))
	}
	b.WriteString(p.Text)
	if p.N < p.Of {
		b.WriteString(endMarker(p.N+1, p.Of))
	}
	if p.Truncated > 0 {
		b.WriteString(truncMarker(p.Truncated, p.Of))
	}
	return b.String()
}

// Subject returns the task subject of the part: "Chat transcript <date>",
// with "(part n of m)" when the transcript is split.
func (p Part) Subject(date string) string {
	if p.Of > 1 {
		return fmt.Sprintf("Chat transcript %s (part %d of %d)", date, p.N, p.Of)
	}
	return "Chat transcript " + date
}

// Units returns the length of s as Salesforce counts text (UTF-16 code
// units: a character outside the Basic Multilingual Plane, such as most
// emoji, counts twice).
func Units(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// SplitTranscript splits a transcript into parts whose descriptions hold
// at most limit characters (Units) each: one part when it fits, else
// parts cut after the last line break that keeps at least half the room
// used (mid-line only for a longer line). At most maxParts parts are made;
// the rest is left out and counted in the last part's Truncated. A limit
// below 200 is taken as 200, maxParts below 1 as 1.
func SplitTranscript(text string, limit, maxParts int) []Part {
	limit = max(limit, minLimit)
	maxParts = max(maxParts, 1)
	if Units(text) <= limit {
		return []Part{{Text: text, N: 1, Of: 1}}
	}
	reserve := Units(startMarker(maxParts, maxParts)) +
		max(Units(endMarker(maxParts, maxParts)), Units(truncMarker(len(text), maxParts)))
	budget := limit - reserve
	var chunks []string
	rest := text
	truncated := 0
	for rest != "" {
		if Units(rest) <= budget {
			chunks = append(chunks, rest)
			break
		}
		take := cut(rest, budget)
		chunks = append(chunks, take)
		rest = rest[len(take):]
		if len(chunks) == maxParts && rest != "" {
			truncated = utf8.RuneCountInString(rest)
			break
		}
	}
	parts := make([]Part, len(chunks))
	for i, c := range chunks {
		parts[i] = Part{Text: c, N: i + 1, Of: len(chunks)}
	}
	parts[len(parts)-1].Truncated = truncated
	return parts
}

// cut returns the longest prefix of s within budget units, shortened to
// end after a line break when one falls in its second half.
func cut(s string, budget int) string {
	units, end := 0, 0
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:])
		w := 1
		if r > 0xFFFF {
			w = 2
		}
		if units+w > budget {
			break
		}
		units += w
		end += size
	}
	prefix := s[:end]
	if i := strings.LastIndexByte(prefix, '\n'); i >= 0 && i+1 >= len(prefix)/2 {
		prefix = prefix[:i+1]
	}
	return prefix
}
