package switchboard

import (
	"strings"
	"time"
	"unicode"
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
	DetailProviderOptOut    = "Opt-out reported by provider"
	DetailImported          = "Imported legacy opt-out"
)

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
	// ByKeyword is true when the number opted out by texting a keyword: then
	// only an opt-in keyword from the phone can opt it back in.
	ByKeyword bool      `json:"by_keyword"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
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
