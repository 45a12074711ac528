package smpp

import (
	"context"
	"errors"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
)

func testGateway(number string, cfg map[string]string) *sb.Gateway {
	c := map[string]string{"host": "smsc.example", "port": "2775", "system_id": "acct", "password": "secret"}
	for k, v := range cfg {
		if v == "-" {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return &sb.Gateway{ID: "gw1", Provider: sb.ProviderSMPP, Number: number, Config: c}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name      string
		number    string
		cfg       map[string]string
		want      config
		wantField string
		wantMsg   string
	}{
		{
			name: "E.164 sender defaults", number: "+447700900123",
			want: config{Host: "smsc.example", Port: 2775, SystemID: "acct", Password: "secret", Source: "447700900123", SourceTON: 1, SourceNPI: 1, DestTON: 1, DestNPI: 1},
		},
		{
			name: "alphanumeric sender defaults", number: "Switchbrd", cfg: map[string]string{"system_type": "VMA"},
			want: config{Host: "smsc.example", Port: 2775, SystemID: "acct", Password: "secret", SystemType: "VMA", Source: "Switchbrd", SourceTON: 5, SourceNPI: 0, DestTON: 1, DestNPI: 1},
		},
		{
			name: "explicit TON and NPI", number: "12345",
			cfg:  map[string]string{"source_ton": "3", "source_npi": "0", "dest_ton": "2", "dest_npi": "8"},
			want: config{Host: "smsc.example", Port: 2775, SystemID: "acct", Password: "secret", Source: "12345", SourceTON: 3, SourceNPI: 0, DestTON: 2, DestNPI: 8},
		},
		{name: "password of 8 is fine", number: "+1555", cfg: map[string]string{"password": "12345678"},
			want: config{Host: "smsc.example", Port: 2775, SystemID: "acct", Password: "12345678", Source: "1555", SourceTON: 1, SourceNPI: 1, DestTON: 1, DestNPI: 1}},
		{name: "host missing", number: "+1555", cfg: map[string]string{"host": "-"}, wantField: "host", wantMsg: "host is required"},
		{name: "host with port", number: "+1555", cfg: map[string]string{"host": "smsc:2775"}, wantField: "host", wantMsg: "without port"},
		{name: "port missing", number: "+1555", cfg: map[string]string{"port": "-"}, wantField: "port", wantMsg: "port is required"},
		{name: "port zero", number: "+1555", cfg: map[string]string{"port": "0"}, wantField: "port", wantMsg: "1 to 65535"},
		{name: "port too big", number: "+1555", cfg: map[string]string{"port": "65536"}, wantField: "port", wantMsg: "1 to 65535"},
		{name: "port not a number", number: "+1555", cfg: map[string]string{"port": "smpp"}, wantField: "port", wantMsg: "1 to 65535"},
		{name: "system_id missing", number: "+1555", cfg: map[string]string{"system_id": "-"}, wantField: "system_id", wantMsg: "system_id is required"},
		{name: "system_id too long", number: "+1555", cfg: map[string]string{"system_id": "0123456789abcdef"}, wantField: "system_id", wantMsg: "at most 15 characters"},
		{name: "password missing", number: "+1555", cfg: map[string]string{"password": "-"}, wantField: "password", wantMsg: "password is required"},
		{name: "password too long", number: "+1555", cfg: map[string]string{"password": "123456789"}, wantField: "password", wantMsg: "password must be at most 8 characters (SMPP 3.4), not 9"},
		{name: "password not ASCII", number: "+1555", cfg: map[string]string{"password": "pässwd"}, wantField: "password", wantMsg: "printable ASCII"},
		{name: "system_type too long", number: "+1555", cfg: map[string]string{"system_type": "0123456789abc"}, wantField: "system_type", wantMsg: "at most 12"},
		{name: "sender too long", number: "Switchboard-Sender-123", wantField: "number", wantMsg: "at most 20"},
		{name: "bad TON", number: "+1555", cfg: map[string]string{"source_ton": "7"}, wantField: "source_ton", wantMsg: "0 to 6"},
		{name: "bad NPI", number: "+1555", cfg: map[string]string{"dest_npi": "2"}, wantField: "dest_npi", wantMsg: "numbering plans"},
		{name: "NPI not a number", number: "+1555", cfg: map[string]string{"source_npi": "isdn"}, wantField: "source_npi", wantMsg: "numbering plans"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(testGateway(tt.number, tt.cfg))
			if tt.wantField != "" {
				var e *sb.Error
				if !errors.As(err, &e) || e.Code != sb.EInvalid || e.Field != tt.wantField || !strings.Contains(e.Message, tt.wantMsg) {
					t.Fatalf("err = %v, want invalid %s containing %q", err, tt.wantField, tt.wantMsg)
				}
				if strings.Contains(err.Error(), "123456789") && tt.wantField == "password" {
					t.Fatalf("error reveals the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("config = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestProviderBasics(t *testing.T) {
	p := New(Options{})
	if p.Name() != sb.ProviderSMPP {
		t.Fatalf("Name = %q", p.Name())
	}
	fields := map[string]sb.ConfigField{}
	for _, f := range p.ConfigFields() {
		fields[f.Key] = f
	}
	for _, key := range []string{"host", "port", "system_id", "password"} {
		if !fields[key].Required {
			t.Errorf("%s should be required", key)
		}
	}
	if !fields["password"].Secret {
		t.Error("password should be secret")
	}
	for _, key := range []string{"system_type", "source_ton", "source_npi", "dest_ton", "dest_npi"} {
		if f, ok := fields[key]; !ok || f.Required || f.Secret {
			t.Errorf("%s should be an optional, non-secret field: %+v", key, f)
		}
	}
	if err := p.ValidateConfig(testGateway("+1555", map[string]string{"port": "99999"})); sb.ErrorCode(err) != sb.EInvalid {
		t.Errorf("ValidateConfig = %v, want invalid", err)
	}
	if err := p.ValidateConfig(testGateway("+1555", nil)); err != nil {
		t.Errorf("ValidateConfig = %v", err)
	}
	ev, err := p.HandleWebhook(context.Background(), testGateway("+1555", nil), &sb.WebhookRequest{})
	if ev != nil || sb.ErrorCode(err) != sb.ENotFound || !strings.Contains(sb.ErrorMessage(err), "SMPP bind, not webhooks") {
		t.Errorf("HandleWebhook = %v, %v", ev, err)
	}
}

func TestSubmitError(t *testing.T) {
	tests := []struct {
		status uint32
		kind   sb.SendErrorKind
		debug  string
	}{
		{0x58, sb.SendThrottled, "SMPP 0x00000058: throttling error (the SMSC asks to slow down)"},
		{0x14, sb.SendThrottled, "SMPP 0x00000014: message queue full"},
		{0x0B, sb.SendInvalidNumber, "SMPP 0x0000000B: invalid destination address"},
		{0x08, sb.SendTransient, "SMPP 0x00000008: system error"},
		{0x04, sb.SendTransient, "SMPP 0x00000004: incorrect bind status for the command"},
		{0x45, sb.SendPermanent, "SMPP 0x00000045: submit_sm or submit_multi failed"},
		{0x0A, sb.SendPermanent, "SMPP 0x0000000A: invalid source address"},
		{0x400, sb.SendPermanent, "SMPP 0x00000400: SMSC-specific error"},
	}
	for _, tt := range tests {
		t.Run(tt.debug, func(t *testing.T) {
			e := submitError(tt.status)
			if e.Kind != tt.kind || e.Debug != tt.debug || e.Code != statusCode(tt.status) {
				t.Fatalf("submitError = %+v, want kind %s debug %q", e, tt.kind, tt.debug)
			}
			if tt.kind == sb.SendThrottled && e.RetryAfter <= 0 {
				t.Fatalf("throttled error without RetryAfter")
			}
		})
	}
}

func TestSendErrorClassification(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind sb.SendErrorKind
		code string
	}{
		{"bad password", &bindError{Status: statusInvPaswd}, sb.SendAuth, "0x0000000E"},
		{"bad system id", &bindError{Status: statusInvSysID}, sb.SendAuth, "0x0000000F"},
		{"bind failed", &bindError{Status: statusBindFail}, sb.SendAuth, "0x0000000D"},
		{"already bound", &bindError{Status: 0x05}, sb.SendTransient, "0x00000005"},
		{"timeout", errResponseTimeout, sb.SendTransient, ""},
		{"cancelled", context.Canceled, sb.SendTransient, ""},
		{"bad settings", sb.FieldError("port", "port is required"), sb.SendAuth, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sendError(tt.err)
			if e.Kind != tt.kind || e.Code != tt.code || !errors.Is(e, tt.err) {
				t.Fatalf("sendError = %+v (%v), want kind %s code %q", e, e, tt.kind, tt.code)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := New(Options{ReconnectMin: 100, ReconnectMax: 1000})
	for n := 0; n < 40; n++ {
		for range 50 {
			d := p.backoff(n)
			upper := min(int64(100)<<min(n, 10), 1000)
			if int64(d) < 100 || int64(d) > upper || int64(d) < upper/2 {
				t.Fatalf("backoff(%d) = %d, want within [max(100, %d), %d]", n, d, upper/2, upper)
			}
		}
	}
}
