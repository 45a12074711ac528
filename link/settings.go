package link

import (
	"net/url"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// Modes of tracked links.
const (
	// ModeBasic: one short link per URL per send (a bulk send shares one
	// code per URL); clicks are counted.
	ModeBasic = "basic"
	// ModePerRecipient: a unique link per recipient message; each click by a
	// person is recorded (time, IP address, domain, browser) and written to
	// the recipient's CRM record.
	ModePerRecipient = "per_recipient"
)

// DefaultMinLength: URLs longer than this many characters are shortened.
const DefaultMinLength = 30

// Settings are an org's tracked-link settings.
type Settings struct {
	Enabled bool   `json:"enabled"`
	Mode    string `json:"mode"`
	// BaseURL is the short domain links are built on, scheme and host only
	// ("https://go.example.org"): links are <base_url>/l/<code>, so the
	// domain must point at Switchboard. Empty: the service's public URL.
	BaseURL string `json:"base_url"`
	// MinLength: URLs longer than this many characters are shortened.
	MinLength int       `json:"min_length"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// DefaultSettings are an org's settings until an admin saves some: off.
func DefaultSettings() Settings {
	return Settings{Mode: ModeBasic, MinLength: DefaultMinLength}
}

// Normalize fills defaults and checks the settings; the error names the
// setting at fault.
func (s *Settings) Normalize() error {
	s.Mode = strings.TrimSpace(strings.ToLower(s.Mode))
	if s.Mode == "" {
		s.Mode = ModeBasic
	}
	if s.Mode != ModeBasic && s.Mode != ModePerRecipient {
		return sb.FieldError("mode", "mode must be %q or %q, not %q", ModeBasic, ModePerRecipient, s.Mode)
	}
	if s.MinLength == 0 {
		s.MinLength = DefaultMinLength
	}
	if s.MinLength < 0 || s.MinLength > 2000 {
		return sb.FieldError("min_length", "min_length must be between 1 and 2000 characters (URLs longer than it are shortened), not %d", s.MinLength)
	}
	base, err := normalizeBase(s.BaseURL)
	if err != nil {
		return err
	}
	s.BaseURL = base
	return nil
}

func normalizeBase(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return "", sb.FieldError("base_url", "base_url must be an absolute URL such as https://go.example.org")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", sb.FieldError("base_url", "base_url must start with https:// (or http://), not %q", u.Scheme+"://")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", sb.FieldError("base_url", "base_url is the short domain only (scheme and host, e.g. https://go.example.org): no path, query or credentials")
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

func fromStore(st *store.LinkSettings) Settings {
	if st == nil {
		return DefaultSettings()
	}
	return Settings{Enabled: st.Enabled, Mode: st.Mode, BaseURL: st.BaseURL, MinLength: st.MinLength, UpdatedBy: st.UpdatedBy, UpdatedAt: st.UpdatedAt}
}
