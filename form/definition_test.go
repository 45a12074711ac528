package form

import (
	"errors"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
)

func num(f float64) *float64 { return &f }

var keywords = map[string][]string{"gw1": {"STOP", "START", "YES", "HELP"}, "gw2": {"STOP"}}

func validDef() Definition {
	return Definition{
		Questions: []Question{
			{Key: "attend", Text: "Will you attend? 1) Attending 2) Not attending", Type: "choice", Choices: []string{"Attending", "Not attending"},
				Branches: []Branch{{Answer: "not attending", Next: "why"}}},
			{Key: "guests", Text: "How many guests (0-5)?", Type: "number", Min: num(0), Max: num(5),
				Branches: []Branch{{Min: num(3), Next: "end"}}, Next: "arrive"},
			{Key: "why", Text: "Sorry to hear that. Why not?", Next: "end"},
			{Key: "arrive", Text: "Arrival date?", Type: "date"},
		},
		ClosingMessage: "Thanks!",
		QueryCodes:     []QueryCode{{GatewayID: "gw1", Keyword: " rsvp! "}},
	}
}

func TestNormalize(t *testing.T) {
	d := validDef()
	if err := d.Normalize(keywords); err != nil {
		t.Fatal(err)
	}
	if d.Timeout != "24h0m0s" || d.QueryCodes[0].Keyword != "RSVP" || d.Questions[2].Type != TypeText || d.Questions[0].Branches[0].Answer != "Not attending" {
		t.Fatalf("normalized: %+v", d)
	}
	cases := []struct {
		name  string
		edit  func(d *Definition)
		field string
		msg   string
	}{
		{"no questions", func(d *Definition) { d.Questions = nil }, "questions", "at least one question"},
		{"bad timeout", func(d *Definition) { d.Timeout = "soon" }, "timeout", "duration"},
		{"short timeout", func(d *Definition) { d.Timeout = "1m" }, "timeout", "between"},
		{"duplicate key", func(d *Definition) { d.Questions[1].Key = "attend" }, "questions[1].key", "used twice"},
		{"reserved key", func(d *Definition) { d.Questions[1].Key = "END" }, "questions[1].key", `not "end"`},
		{"bad key", func(d *Definition) { d.Questions[1].Key = "a b" }, "questions[1].key", "letters, digits"},
		{"empty text", func(d *Definition) { d.Questions[2].Text = "  " }, "questions[2].text", "no text"},
		{"bad type", func(d *Definition) { d.Questions[2].Type = "rating" }, "questions[2].type", `not "rating"`},
		{"one choice", func(d *Definition) { d.Questions[0].Choices = []string{"Only"} }, "questions[0].choices", "2 to 20 choices"},
		{"duplicate choice", func(d *Definition) { d.Questions[0].Choices = []string{"A", "a"} }, "questions[0].choices", "listed twice"},
		{"keyword choice", func(d *Definition) { d.Questions[0].Choices = []string{"Yes", "No"}; d.Questions[0].Branches = nil }, "questions[0].choices", "gateway keyword"},
		{"choices on text", func(d *Definition) { d.Questions[2].Choices = []string{"a", "b"} }, "questions[2].choices", "only choice questions"},
		{"min over max", func(d *Definition) { d.Questions[1].Min = num(9) }, "questions[1].min", "above max"},
		{"min on text", func(d *Definition) { d.Questions[2].Min = num(1) }, "questions[2].min", "only number questions"},
		{"unknown next", func(d *Definition) { d.Questions[1].Next = "nowhere" }, "questions[1].next", "not a question key"},
		{"backwards next", func(d *Definition) { d.Questions[2].Next = "guests" }, "questions[2].next", "goes back"},
		{"self loop", func(d *Definition) { d.Questions[1].Next = "guests" }, "questions[1].next", "goes back"},
		{"branch not a choice", func(d *Definition) { d.Questions[0].Branches[0].Answer = "Maybe" }, "questions[0].branches[0].answer", "not one of its choices"},
		{"branch without next", func(d *Definition) { d.Questions[0].Branches[0].Next = "" }, "questions[0].branches[0].next", "no next"},
		{"number branch without range", func(d *Definition) { d.Questions[1].Branches[0].Min = nil }, "questions[1].branches[0].min", "min or max"},
		{"date branch", func(d *Definition) { d.Questions[3].Branches = []Branch{{Answer: "x", Next: "end"}} }, "questions[3].branches[0]", "cannot branch"},
		{"query code of unknown gateway", func(d *Definition) { d.QueryCodes[0].GatewayID = "gw9" }, "query_codes[0].gateway_id", "not found"},
		{"query code is a keyword", func(d *Definition) { d.QueryCodes[0].Keyword = "stop" }, "query_codes[0].keyword", "opt-out, opt-in or help keyword"},
		{"empty query code", func(d *Definition) { d.QueryCodes[0].Keyword = "!!" }, "query_codes[0].keyword", "1 to 40"},
		{"query code twice", func(d *Definition) { d.QueryCodes = append(d.QueryCodes, QueryCode{GatewayID: "gw1", Keyword: "RSVP"}) }, "query_codes[1].keyword", "listed twice"},
		{"long closing", func(d *Definition) { d.ClosingMessage = strings.Repeat("x", 641) }, "closing_message", "641 characters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := validDef()
			c.edit(&d)
			err := d.Normalize(keywords)
			var e *sb.Error
			if !errors.As(err, &e) || e.Code != sb.EInvalid || e.Field != c.field || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("got %v (field %q), want field %q with %q", err, fieldOf(err), c.field, c.msg)
			}
		})
	}
}

func fieldOf(err error) string {
	var e *sb.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

func TestNext(t *testing.T) {
	d := validDef()
	if err := d.Normalize(keywords); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ q, answer, want string }{
		{"attend", "Attending", "guests"},
		{"attend", "Not attending", "why"},
		{"guests", "2", "arrive"},
		{"guests", "3", ""},
		{"why", "busy", ""},
		{"arrive", "2025-06-01", ""},
	}
	for _, c := range cases {
		q, _ := d.question(c.q)
		if got := d.next(q, c.answer); got != c.want {
			t.Errorf("after %s=%q: %q, want %q", c.q, c.answer, got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	choice := &Question{Type: TypeChoice, Choices: []string{"Red", "Green", "Blue"}}
	number := &Question{Type: TypeNumber, Min: num(1), Max: num(10)}
	anyNumber := &Question{Type: TypeNumber}
	date := &Question{Type: TypeDate}
	text := &Question{Type: TypeText}
	cases := []struct {
		name   string
		q      *Question
		reply  string
		region string
		want   string
		hint   string
	}{
		{"choice by text", choice, " green ", "US", "Green", ""},
		{"choice by number", choice, "3", "US", "Blue", ""},
		{"choice by number with dot", choice, "1.", "US", "Red", ""},
		{"choice with punctuation", choice, "Blue!", "US", "Blue", ""},
		{"choice out of range", choice, "4", "US", "", "Please answer 1, 2 or 3."},
		{"choice unknown", choice, "purple", "US", "", "Please answer 1, 2 or 3."},
		{"two choices hint", &Question{Type: TypeChoice, Choices: []string{"A", "B"}}, "x", "US", "", "Please answer 1 or 2."},
		{"number", number, "7", "US", "7", ""},
		{"decimal", number, " 2.5 ", "US", "2.5", ""},
		{"decimal comma", number, "2,5", "GB", "2.5", ""},
		{"below min", number, "0", "US", "", "Please answer with a number from 1 to 10."},
		{"not a number", number, "seven", "US", "", "Please answer with a number from 1 to 10."},
		{"thousands", anyNumber, "1,250", "US", "1250", ""},
		{"negative", anyNumber, "-3", "US", "-3", ""},
		{"hex is not a number", anyNumber, "0x10", "US", "", "Please answer with a number."},
		{"exponent is not a number", anyNumber, "1e3", "US", "", "Please answer with a number."},
		{"nan", anyNumber, "NaN", "US", "", "Please answer with a number."},
		{"min only hint", &Question{Type: TypeNumber, Min: num(18)}, "3", "US", "", "Please answer with a number of at least 18."},
		{"iso date", date, "2025-12-31", "GB", "2025-12-31", ""},
		{"us date", date, "12/31/2025", "US", "2025-12-31", ""},
		{"us short year", date, "3/4/25", "US", "2025-03-04", ""},
		{"day first elsewhere", date, "3/4/2025", "GB", "2025-04-03", ""},
		{"dotted", date, "31.12.2025", "DE", "2025-12-31", ""},
		{"month name", date, "december 31st, 2025", "US", "2025-12-31", ""},
		{"day month name", date, "31 Dec 2025", "US", "2025-12-31", ""},
		{"impossible date", date, "2/30/2025", "US", "", "Please answer with a date, e.g. 12/31/2025."},
		{"not a date", date, "tomorrow", "GB", "", "Please answer with a date, e.g. 31/12/2025."},
		{"text", text, "  Because I'm busy  ", "US", "Because I'm busy", ""},
		{"empty text", text, "   ", "US", "", "Please answer with a few words."},
		{"long text is cut", text, strings.Repeat("é", MaxAnswerChars+5), "US", strings.Repeat("é", MaxAnswerChars), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, hint := c.q.Check(c.reply, c.region)
			if got != c.want || hint != c.hint {
				t.Fatalf("Check(%q) = %q, %q; want %q, %q", c.reply, got, hint, c.want, c.hint)
			}
		})
	}
}

// FuzzCheck: any reply to any question type gives either an answer or a
// hint, never both or neither; an accepted answer is accepted again as
// itself (stored answers are canonical).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "1", "green", "2,5", "1,250", "12/31/2025", "31 Dec 2025", "\xff", "0x1p3", "-0", "+.5", strings.Repeat("9", 50)} {
		f.Add(s, "US")
		f.Add(s, "GB")
	}
	questions := []*Question{
		{Type: TypeChoice, Choices: []string{"Red", "Green", "Blue", "10"}},
		{Type: TypeNumber, Min: num(-5), Max: num(5)},
		{Type: TypeNumber},
		{Type: TypeDate},
		{Type: TypeText},
	}
	f.Fuzz(func(t *testing.T, reply, region string) {
		for _, q := range questions {
			got, hint := q.Check(reply, region)
			if (got == "") == (hint == "") {
				t.Fatalf("%s question, reply %q: answer %q, hint %q", q.Type, reply, got, hint)
			}
			if got == "" {
				continue
			}
			again, hint := q.Check(got, region)
			if again != got || hint != "" {
				t.Fatalf("%s question: answer %q re-checked as %q (%q)", q.Type, got, again, hint)
			}
		}
	})
}
