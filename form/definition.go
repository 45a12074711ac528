// Package form runs SMS forms (surveys): a form template is an ordered list
// of questions with optional branching; a session asks them one text at a
// time, checks each answer (re-asking with a hint when it does not fit) and
// writes the answers to the recipient's CRM record.
//
// A session starts with an outgoing 1:1 or bulk message sent with form_id
// (the message carries the first question), or when a phone texts a form's
// query code to a gateway. Replies from that phone on that gateway answer
// the open session until it completes or times out. Opt-out keywords always
// win: the hub never shows them to forms, and a session of a number that
// has opted out is cancelled without a reply.
//
// Privacy: answers are personal data. They are sealed (AES-GCM) in the
// form_answers table only while their session runs and until it is written
// to the CRM, then deleted; sessions are keyed by the keyed hash of the
// phone number.
package form

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
)

// Question types.
const (
	TypeText   = "text"
	TypeChoice = "choice"
	TypeNumber = "number"
	TypeDate   = "date"
)

// End is the Next value that ends the form.
const End = "end"

// Limits of a form.
const (
	MaxQuestions     = 50
	MaxChoices       = 20
	MaxQuestionChars = 640
	DefaultTimeout   = 24 * time.Hour
	MinTimeout       = 5 * time.Minute
	MaxTimeout       = 30 * 24 * time.Hour
)

// Question is one question of a form.
type Question struct {
	// Key names the question in answers and branches; default q1, q2, …
	Key  string `json:"key"`
	Text string `json:"text"`
	Type string `json:"type"`
	// Choices are the allowed answers of a choice question; a reply may be
	// the choice itself (any case) or its number (1, 2, …).
	Choices []string `json:"choices,omitempty"`
	// Min and Max bound a number answer (inclusive).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Branches pick the next question by the answer; the first match wins.
	Branches []Branch `json:"branches,omitempty"`
	// Next is the question after this one when no branch matches: a later
	// question's key, "end", or empty for the next in order.
	Next string `json:"next,omitempty"`
}

// Branch sends a matching answer to another question.
type Branch struct {
	// Answer matches a choice (choice questions) or a text answer (text
	// questions, any case).
	Answer string `json:"answer,omitempty"`
	// Min and Max match a number answer within them (number questions).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Next is a later question's key or "end".
	Next string `json:"next"`
}

// QueryCode is a keyword that starts the form when texted to a gateway.
type QueryCode struct {
	GatewayID string `json:"gateway_id"`
	Keyword   string `json:"keyword"`
}

// Definition is the content of a form template.
type Definition struct {
	Questions []Question `json:"questions"`
	// ClosingMessage is sent after the last answer (empty: nothing).
	ClosingMessage string      `json:"closing_message,omitempty"`
	QueryCodes     []QueryCode `json:"query_codes,omitempty"`
	// Timeout ends a session that gets no answer for this long ("24h",
	// "90m"; default 24h).
	Timeout string `json:"timeout,omitempty"`
}

// Form is a form template as the API shows it.
type Form struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int    `json:"version"`
	Definition
	CreatedBy string    `json:"created_by"`
	UpdatedBy string    `json:"updated_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

// TimeoutDuration returns the session timeout.
func (d *Definition) TimeoutDuration() time.Duration {
	t, err := time.ParseDuration(d.Timeout)
	if err != nil || t <= 0 {
		return DefaultTimeout
	}
	return t
}

// question returns the question with a key, and its index.
func (d *Definition) question(key string) (*Question, int) {
	for i := range d.Questions {
		if d.Questions[i].Key == key {
			return &d.Questions[i], i
		}
	}
	return nil, -1
}

// next returns the key of the question after q for a checked answer, or ""
// when the form ends.
func (d *Definition) next(q *Question, value string) string {
	target := q.Next
	for _, b := range q.Branches {
		if b.matches(q, value) {
			target = b.Next
			break
		}
	}
	if target == End {
		return ""
	}
	if target != "" {
		return target
	}
	_, i := d.question(q.Key)
	if i+1 < len(d.Questions) {
		return d.Questions[i+1].Key
	}
	return ""
}

func (b *Branch) matches(q *Question, value string) bool {
	switch q.Type {
	case TypeNumber:
		f, ok := parseNumber(value)
		return ok && (b.Min == nil || f >= *b.Min) && (b.Max == nil || f <= *b.Max)
	case TypeChoice, TypeText:
		return strings.EqualFold(strings.TrimSpace(b.Answer), strings.TrimSpace(value))
	}
	return false
}

// Normalize fills defaults and checks a definition; the error names the
// field at fault ("questions[2].choices"). keywords are the gateways'
// opt-out, opt-in and help keywords (normalized) by gateway id: a choice or
// query code equal to one would never reach the form.
func (d *Definition) Normalize(keywords map[string][]string) error {
	if len(d.Questions) == 0 {
		return sb.FieldError("questions", "a form needs at least one question")
	}
	if len(d.Questions) > MaxQuestions {
		return sb.FieldError("questions", "a form has at most %d questions, not %d", MaxQuestions, len(d.Questions))
	}
	if d.Timeout == "" {
		d.Timeout = DefaultTimeout.String()
	}
	t, err := time.ParseDuration(d.Timeout)
	if err != nil {
		return sb.FieldError("timeout", "timeout must be a duration such as 24h or 90m, not %q", d.Timeout)
	}
	if t < MinTimeout || t > MaxTimeout {
		return sb.FieldError("timeout", "timeout must be between %s and %s, not %s", MinTimeout, "720h", t)
	}
	d.Timeout = t.String()
	if n := utf8.RuneCountInString(d.ClosingMessage); n > MaxQuestionChars {
		return sb.FieldError("closing_message", "closing_message is %d characters; the most is %d", n, MaxQuestionChars)
	}
	allKeywords := map[string]string{}
	for gw, list := range keywords {
		for _, k := range list {
			allKeywords[k] = gw
		}
	}
	seen := map[string]int{}
	for i := range d.Questions {
		q := &d.Questions[i]
		if q.Key == "" {
			q.Key = "q" + strconv.Itoa(i+1)
		}
		if !keyRE.MatchString(q.Key) || strings.EqualFold(q.Key, End) {
			return sb.FieldError(qf(i, "key"), "question key %q must be 1 to 40 letters, digits, - or _ (and not %q)", q.Key, End)
		}
		if _, dup := seen[q.Key]; dup {
			return sb.FieldError(qf(i, "key"), "question key %q is used twice", q.Key)
		}
		seen[q.Key] = i
	}
	for i := range d.Questions {
		if err := d.checkQuestion(i, seen, allKeywords); err != nil {
			return err
		}
	}
	codes := map[string]bool{}
	for i := range d.QueryCodes {
		c := &d.QueryCodes[i]
		c.Keyword = sb.NormalizeKeyword(c.Keyword)
		field := "query_codes[" + strconv.Itoa(i) + "]"
		if c.GatewayID == "" {
			return sb.FieldError(field+".gateway_id", "a query code needs a gateway_id")
		}
		kws, ok := keywords[c.GatewayID]
		if !ok {
			return sb.FieldError(field+".gateway_id", "gateway %s not found", c.GatewayID)
		}
		if c.Keyword == "" || utf8.RuneCountInString(c.Keyword) > 40 {
			return sb.FieldError(field+".keyword", "a query code keyword must have 1 to 40 characters")
		}
		if slices.Contains(kws, c.Keyword) {
			return sb.FieldError(field+".keyword", "query code %q is an opt-out, opt-in or help keyword of the gateway; those always win, so the form would never start", c.Keyword)
		}
		if codes[c.GatewayID+"\x00"+c.Keyword] {
			return sb.FieldError(field+".keyword", "query code %q is listed twice for the gateway", c.Keyword)
		}
		codes[c.GatewayID+"\x00"+c.Keyword] = true
	}
	return nil
}

func (d *Definition) checkQuestion(i int, keys map[string]int, keywords map[string]string) error {
	q := &d.Questions[i]
	q.Text = strings.TrimSpace(q.Text)
	if q.Text == "" {
		return sb.FieldError(qf(i, "text"), "question %s has no text", q.Key)
	}
	if n := utf8.RuneCountInString(q.Text); n > MaxQuestionChars {
		return sb.FieldError(qf(i, "text"), "question %s is %d characters; the most is %d", q.Key, n, MaxQuestionChars)
	}
	q.Type = strings.ToLower(strings.TrimSpace(q.Type))
	if q.Type == "" {
		q.Type = TypeText
	}
	switch q.Type {
	case TypeText, TypeDate:
	case TypeChoice:
		if len(q.Choices) < 2 || len(q.Choices) > MaxChoices {
			return sb.FieldError(qf(i, "choices"), "choice question %s needs 2 to %d choices, not %d", q.Key, MaxChoices, len(q.Choices))
		}
		seen := map[string]bool{}
		for j, c := range q.Choices {
			c = strings.TrimSpace(c)
			q.Choices[j] = c
			if c == "" || utf8.RuneCountInString(c) > 100 {
				return sb.FieldError(qf(i, "choices"), "choice %d of question %s must have 1 to 100 characters", j+1, q.Key)
			}
			if seen[strings.ToLower(c)] {
				return sb.FieldError(qf(i, "choices"), "choice %q of question %s is listed twice", c, q.Key)
			}
			seen[strings.ToLower(c)] = true
			if _, ok := keywords[sb.NormalizeKeyword(c)]; ok {
				return sb.FieldError(qf(i, "choices"), "choice %q of question %s is a gateway keyword (opt-out, opt-in or help): a reply %q would be taken as the keyword; rename the choice (replies by number still work)", c, q.Key, c)
			}
		}
	case TypeNumber:
		if q.Min != nil && q.Max != nil && *q.Min > *q.Max {
			return sb.FieldError(qf(i, "min"), "question %s has min %s above max %s", q.Key, fmtNumber(*q.Min), fmtNumber(*q.Max))
		}
	default:
		return sb.FieldError(qf(i, "type"), "question type must be text, choice, number or date, not %q", q.Type)
	}
	if q.Type != TypeChoice && len(q.Choices) > 0 {
		return sb.FieldError(qf(i, "choices"), "only choice questions have choices (question %s is %s)", q.Key, q.Type)
	}
	if q.Type != TypeNumber && (q.Min != nil || q.Max != nil) {
		return sb.FieldError(qf(i, "min"), "only number questions have min and max (question %s is %s)", q.Key, q.Type)
	}
	checkTarget := func(field, target string) error {
		if target == "" || target == End {
			return nil
		}
		j, ok := keys[target]
		if !ok {
			return sb.FieldError(field, "question %s goes to %q, which is not a question key (or %q)", q.Key, target, End)
		}
		if j <= i {
			return sb.FieldError(field, "question %s goes back to %s: a form only goes forward, so it always ends", q.Key, target)
		}
		return nil
	}
	if err := checkTarget(qf(i, "next"), q.Next); err != nil {
		return err
	}
	for j := range q.Branches {
		b := &q.Branches[j]
		field := qf(i, "branches["+strconv.Itoa(j)+"]")
		if b.Next == "" {
			return sb.FieldError(field+".next", "branch %d of question %s has no next", j+1, q.Key)
		}
		if err := checkTarget(field+".next", b.Next); err != nil {
			return err
		}
		switch q.Type {
		case TypeChoice:
			k := slices.IndexFunc(q.Choices, func(c string) bool { return strings.EqualFold(c, strings.TrimSpace(b.Answer)) })
			if k < 0 {
				return sb.FieldError(field+".answer", "branch %d of question %s: %q is not one of its choices", j+1, q.Key, b.Answer)
			}
			b.Answer = q.Choices[k]
		case TypeText:
			b.Answer = strings.TrimSpace(b.Answer)
			if b.Answer == "" {
				return sb.FieldError(field+".answer", "branch %d of text question %s needs an answer to match", j+1, q.Key)
			}
		case TypeNumber:
			if b.Min == nil && b.Max == nil {
				return sb.FieldError(field+".min", "branch %d of number question %s needs min or max", j+1, q.Key)
			}
			if b.Answer != "" {
				return sb.FieldError(field+".answer", "branch %d of number question %s matches by min and max, not answer", j+1, q.Key)
			}
		default:
			return sb.FieldError(field, "%s questions cannot branch", q.Type)
		}
		if q.Type != TypeNumber && (b.Min != nil || b.Max != nil) {
			return sb.FieldError(field+".min", "branch %d of question %s: only number questions branch on min and max", j+1, q.Key)
		}
	}
	return nil
}

func qf(i int, field string) string { return "questions[" + strconv.Itoa(i) + "]." + field }
