package switchboard

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SubscriptionStatus is the state of one phone number on one gateway.
type SubscriptionStatus string

const (
	OptedIn  SubscriptionStatus = "Opt-In"
	OptedOut SubscriptionStatus = "Opt-Out"
	// NoOptIn is only shown in mandatory opt-in mode.
	NoOptIn SubscriptionStatus = "No Opt-In"
)

// Subscription details, as the conversation view shows them.
const (
	DetailOptInFromIncoming = "Opt-in from incoming SMS"
	DetailImported          = "Imported legacy opt-out"
	// DetailProviderPrefix starts the detail of an opt-out the provider
	// reported (see DetailProviderOptOut).
	DetailProviderPrefix = "Opt-out at provider: "
)

// DetailProviderOptOut returns the detail of an opt-out the provider
// reported ("the recipient unsubscribed", e.g. Twilio 21610, WhatsApp
// 131050), naming the provider's answer: "Opt-out at provider: Twilio 21610:
// recipient has unsubscribed (replied STOP)".
func DetailProviderOptOut(code, debug string) string {
	why := strings.TrimSpace(debug)
	if why == "" {
		why = strings.TrimSpace(code + " unsubscribed recipient")
	}
	d := DetailProviderPrefix + why
	if len(d) > 255 {
		d = d[:255]
		for !utf8.ValidString(d) {
			d = d[:len(d)-1]
		}
	}
	return d
}

// How a subscription changed.
const (
	ViaKeyword    = "keyword"
	ViaManual     = "manual"
	ViaIncoming   = "incoming"
	ViaAutomation = "automation"
	ViaProvider   = "provider"
	ViaImport     = "import"
)

// DetailManual returns "Manual opt-in by <user>" or "Manual opt-out by <user>".
func DetailManual(status SubscriptionStatus, userName string) string {
	if status == OptedOut {
		return "Manual opt-out by " + userName
	}
	return "Manual opt-in by " + userName
}

// DetailKeyword returns "Opt-out keyword: STOP" or "Opt-in keyword: START".
func DetailKeyword(status SubscriptionStatus, keyword string) string {
	if status == OptedOut {
		return "Opt-out keyword: " + keyword
	}
	return "Opt-in keyword: " + keyword
}

// Subscription is the stored state of a number on a gateway.
type Subscription struct {
	OrgID     string             `json:"org_id"`
	GatewayID string             `json:"gateway_id"`
	PhoneHash []byte             `json:"-"`
	Status    SubscriptionStatus `json:"status"`
	Detail    string             `json:"detail"`
	// Via is how the latest change came: keyword, manual, incoming,
	// automation, provider or import.
	Via string `json:"via"`
	// Locked is set on an opt-out that came from the phone: an opt-out
	// keyword, or the provider reporting that the recipient unsubscribed
	// at the carrier (e.g. replied STOP there). Only an opt-in keyword
	// texted from the phone lifts it: a manual, automation or incoming-SMS
	// opt-in is refused, and any other opt-out is recorded in the history
	// while the lock stays.
	Locked    bool      `json:"locked"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// LockedOut reports whether the subscription is an opt-out only an opt-in
// keyword from the phone can lift.
func (s *Subscription) LockedOut() bool { return s != nil && s.Status == OptedOut && s.Locked }

// Unlocks reports whether the change s may lift a locked opt-out: only an
// opt-in keyword texted from the phone can.
func (s *Subscription) Unlocks() bool { return s.Status == OptedIn && s.Via == ViaKeyword }

// ErrLocked is the error for an opt-in refused because the number's opt-out
// is locked (detail: the lock's detail, e.g. "Opt-out keyword: STOP").
func ErrLocked(detail string) error {
	why := "this number opted out from the phone"
	if detail != "" {
		why += " (" + detail + ")"
	}
	return Errorf(EConflict, "%s; only an opt-in keyword such as START texted from the phone can opt it back in", why)
}

// SubscriptionEvent is one entry in a subscription's history.
type SubscriptionEvent struct {
	GatewayID string             `json:"gateway_id"`
	Status    SubscriptionStatus `json:"status"`
	Detail    string             `json:"detail"`
	Via       string             `json:"via"`
	UserID    string             `json:"user_id,omitempty"`
	At        time.Time          `json:"at"`
}

// EffectiveStatus returns the status of a number with the given stored
// subscription (nil when none) under the org's mode.
func EffectiveStatus(sub *Subscription, mode OptInMode) SubscriptionStatus {
	if sub != nil {
		return sub.Status
	}
	if mode == OptInMandatory {
		return NoOptIn
	}
	return OptedIn
}

// BlockDebug returns the Debug text for a message that may not be sent to a
// number in the given status, or "" when sending is allowed.
func BlockDebug(status SubscriptionStatus) string {
	switch status {
	case OptedOut:
		return DebugPreviousOptOut
	case NoOptIn:
		return DebugNoOptIn
	}
	return ""
}

// KeywordKind is the kind of command an incoming message is.
type KeywordKind string

const (
	KeywordNone   KeywordKind = ""
	KeywordOptOut KeywordKind = "opt_out"
	KeywordOptIn  KeywordKind = "opt_in"
	KeywordHelp   KeywordKind = "help"
)

// NormalizeKeyword reduces a message or keyword to the form keywords are
// compared in: surrounding whitespace and punctuation removed, inner runs of
// whitespace folded to one space, upper case.
func NormalizeKeyword(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || r == '\u200b' || r == '\ufeff'
	})
	return strings.ToUpper(strings.Join(strings.Fields(s), " "))
}

// Match returns the kind and the configured keyword an incoming body is, when
// the whole message (trimmed, any case, surrounding punctuation ignored) is one
// of the gateway's keywords. "stop please" is not a keyword unless it is
// configured as one. Opt-out wins over every other kind.
func (k Keywords) Match(body string) (KeywordKind, string) {
	n := NormalizeKeyword(body)
	if n == "" {
		return KeywordNone, ""
	}
	for _, set := range []struct {
		kind KeywordKind
		list []string
	}{{KeywordOptOut, k.OptOut}, {KeywordOptIn, k.OptIn}, {KeywordHelp, k.Help}} {
		for _, w := range set.list {
			if NormalizeKeyword(w) == n {
				return set.kind, w
			}
		}
	}
	return KeywordNone, ""
}
