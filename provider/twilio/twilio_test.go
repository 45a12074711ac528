package twilio

import (
	"testing"

	sb "github.com/switchboard/switchboard"
)

func TestNameAndConfigFields(t *testing.T) {
	p := New(Options{})
	if p.Name() != sb.ProviderTwilio {
		t.Errorf("Name = %q", p.Name())
	}
	want := map[string]struct{ required, secret bool }{
		ConfigAccountSID:          {true, false},
		ConfigAuthToken:           {true, true},
		ConfigMessagingServiceSID: {false, false},
		ConfigAPIBaseURL:          {false, false},
	}
	fields := p.ConfigFields()
	if len(fields) != len(want) {
		t.Fatalf("got %d fields, want %d", len(fields), len(want))
	}
	for _, f := range fields {
		w, ok := want[f.Key]
		if !ok {
			t.Errorf("unexpected field %q", f.Key)
			continue
		}
		if f.Required != w.required || f.Secret != w.secret || f.Label == "" {
			t.Errorf("field %q = %+v, want required=%v secret=%v and a label", f.Key, f, w.required, w.secret)
		}
	}
}

func TestValidateConfig(t *testing.T) {
	valid := func() map[string]string {
		return map[string]string{ConfigAccountSID: testSID, ConfigAuthToken: testToken}
	}
	set := func(k, v string) map[string]string {
		c := valid()
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name      string
		config    map[string]string
		wantField string // "" means valid
	}{
		{"minimal", valid(), ""},
		{"with messaging service", set(ConfigMessagingServiceSID, "MG0123456789ABCDEF0123456789abcdef"), ""},
		{"with api base URL", set(ConfigAPIBaseURL, "http://127.0.0.1:4010"), ""},
		{"missing account_sid", set(ConfigAccountSID, ""), "config.account_sid"},
		{"account_sid wrong prefix", set(ConfigAccountSID, "AB0123456789abcdef0123456789abcdef"), "config.account_sid"},
		{"account_sid too short", set(ConfigAccountSID, "AC0123456789abcdef"), "config.account_sid"},
		{"account_sid not hex", set(ConfigAccountSID, "AC0123456789abcdef0123456789abcdeg"), "config.account_sid"},
		{"missing auth_token", set(ConfigAuthToken, ""), "config.auth_token"},
		{"blank auth_token", set(ConfigAuthToken, "   "), "config.auth_token"},
		{"messaging service wrong prefix", set(ConfigMessagingServiceSID, "AC0123456789abcdef0123456789abcdef"), "config.messaging_service_sid"},
		{"api base URL relative", set(ConfigAPIBaseURL, "/twilio"), "config.api_base_url"},
		{"api base URL ftp", set(ConfigAPIBaseURL, "ftp://example.com"), "config.api_base_url"},
		{"api base URL with query", set(ConfigAPIBaseURL, "https://example.com/?x=1"), "config.api_base_url"},
		{"api base URL with credentials", set(ConfigAPIBaseURL, "https://u:p@example.com"), "config.api_base_url"},
	}
	p := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.ValidateConfig(&sb.Gateway{Provider: sb.ProviderTwilio, Number: "+14155550100", Config: tt.config})
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("ValidateConfig: %v", err)
				}
				return
			}
			e, ok := err.(*sb.Error)
			if !ok || e.Code != sb.EInvalid || e.Field != tt.wantField {
				t.Fatalf("got %#v, want an invalid error on %s", err, tt.wantField)
			}
			if e.Message == "" {
				t.Error("empty message")
			}
		})
	}
	if err := p.ValidateConfig(nil); !sb.IsCode(err, sb.EInvalid) {
		t.Errorf("nil gateway: got %v", err)
	}
}
