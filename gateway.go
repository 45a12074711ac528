package switchboard

import (
	"math"
	"strings"
	"time"
)

// Provider names.
const (
	ProviderSim      = "sim"
	ProviderTwilio   = "twilio"
	ProviderWhatsApp = "whatsapp"
	ProviderSMPP     = "smpp"
)

// Number types decide the default sending rate.
const (
	NumberLongCode  = "long_code"
	NumberTollFree  = "toll_free"
	NumberShortCode = "short_code"
	NumberWhatsApp  = "whatsapp"
)

// DefaultRate returns the default messages-per-second rate for a number type.
func DefaultRate(numberType string) float64 {
	switch numberType {
	case NumberTollFree:
		return 3
	case NumberShortCode:
		return 100
	case NumberWhatsApp:
		return 80
	default:
		return 1
	}
}

// NumberTypeFor returns numberType, or when it is empty the provider's
// usual one: whatsapp for WhatsApp senders, long_code otherwise.
func NumberTypeFor(provider, numberType string) string {
	switch {
	case numberType != "":
		return numberType
	case provider == ProviderWhatsApp:
		return NumberWhatsApp
	}
	return NumberLongCode
}

// Keywords are the whole-message commands a gateway answers.
type Keywords struct {
	OptOut []string `json:"opt_out"`
	OptIn  []string `json:"opt_in"`
	Help   []string `json:"help"`
}

// DefaultKeywords returns the keywords a new gateway of the given provider
// starts with. Carriers in the US honour the same set whatever the partner, so
// every SMS provider starts with the Twilio list; WhatsApp has no carrier
// keywords but the same words are the clearest default.
func DefaultKeywords(provider string) Keywords {
	return Keywords{
		OptOut: []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"},
		OptIn:  []string{"START", "UNSTOP", "YES"},
		Help:   []string{"HELP", "INFO"},
	}
}

// Rate units.
const (
	RatePerMessage = "message"
	RatePerSegment = "segment"
)

// Gateway is a sending number (or WhatsApp sender) on one provider.
type Gateway struct {
	ID       string `json:"id"`
	OrgID    string `json:"org_id"`
	Name     string `json:"name"`
	Provider string `json:"provider"`
	// Number is the E.164 sending number (or provider sender id).
	Number     string `json:"number"`
	NumberType string `json:"number_type"`
	// Rate is the most messages (or segments, see RateUnit) per second the
	// gateway may send; 0 means unlimited.
	Rate     float64  `json:"rate"`
	RateUnit string   `json:"rate_unit"`
	Keywords Keywords `json:"keywords"`
	HelpText string   `json:"help_text"`
	// Replies sent after an opt-out / opt-in keyword; empty sends nothing.
	OptOutReply string `json:"opt_out_reply"`
	OptInReply  string `json:"opt_in_reply"`
	// Sandbox gateways are not registered with the provider automatically.
	Sandbox bool `json:"sandbox"`
	// Config holds the provider settings; values of keys the provider names
	// as secret are encrypted at rest and never returned by the API.
	Config    map[string]string `json:"config,omitempty"`
	Active    bool              `json:"active"`
	CreatedAt time.Time         `json:"created_at"`
}

// Default texts for new gateways.
const (
	DefaultHelpText    = "Reply STOP to unsubscribe. Msg&data rates may apply."
	DefaultOptOutReply = "You have been unsubscribed and will receive no further messages. Reply START to resubscribe."
	DefaultOptInReply  = "You have been resubscribed. Reply STOP to unsubscribe."
)

// Normalize fills defaults and validates the gateway's own fields (not the
// provider config, which the provider checks).
func (g *Gateway) Normalize(region string) error {
	g.Provider = strings.TrimSpace(strings.ToLower(g.Provider))
	if g.Provider == "" {
		return FieldError("provider", "provider is required")
	}
	if strings.TrimSpace(g.Number) == "" {
		return FieldError("number", "number is required")
	}
	g.NumberType = NumberTypeFor(g.Provider, g.NumberType)
	g.Number = strings.TrimSpace(g.Number)
	switch {
	case g.NumberType == NumberShortCode && isDigits(g.Number) && len(g.Number) >= 3 && len(g.Number) <= 8:
		// A short code is not an E.164 number.
	case g.Provider == ProviderSMPP && !strings.HasPrefix(g.Number, "+") && !isDigits(g.Number):
		// An alphanumeric sender id; the SMPP provider checks its form.
	default:
		p, err := ParsePhone(g.Number, region)
		if err != nil {
			return &Error{Code: EInvalid, Field: "number", Message: "gateway number: " + ErrorMessage(err)}
		}
		g.Number = p
	}
	switch g.NumberType {
	case NumberLongCode, NumberTollFree, NumberShortCode, NumberWhatsApp:
	default:
		return FieldError("number_type", "number_type must be long_code, toll_free, short_code or whatsapp, not %q", g.NumberType)
	}
	if math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0) || g.Rate < 0 {
		return FieldError("rate", "rate must be a number of messages per second, 0 or more")
	}
	if g.RateUnit == "" {
		g.RateUnit = RatePerMessage
	}
	if g.RateUnit != RatePerMessage && g.RateUnit != RatePerSegment {
		return FieldError("rate_unit", "rate_unit must be %q or %q", RatePerMessage, RatePerSegment)
	}
	if g.Name == "" {
		g.Name = g.Number
	}
	def := DefaultKeywords(g.Provider)
	if g.Keywords.OptOut == nil {
		g.Keywords.OptOut = def.OptOut
	}
	if g.Keywords.OptIn == nil {
		g.Keywords.OptIn = def.OptIn
	}
	if g.Keywords.Help == nil {
		g.Keywords.Help = def.Help
	}
	for _, kw := range [][]string{g.Keywords.OptOut, g.Keywords.OptIn, g.Keywords.Help} {
		for i, k := range kw {
			k = NormalizeKeyword(k)
			if k == "" {
				return FieldError("keywords", "keywords must not be empty")
			}
			kw[i] = k
		}
	}
	if err := g.Keywords.checkOverlap(); err != nil {
		return err
	}
	if g.Config == nil {
		g.Config = map[string]string{}
	}
	return nil
}

func (k Keywords) checkOverlap() error {
	seen := map[string]string{}
	for kind, list := range map[string][]string{"opt_out": k.OptOut, "opt_in": k.OptIn, "help": k.Help} {
		for _, w := range list {
			if other, ok := seen[w]; ok && other != kind {
				return FieldError("keywords", "keyword %q is both an %s and an %s keyword", w, other, kind)
			}
			seen[w] = kind
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
