package mail_test

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/mail"
	"github.com/switchboard/switchboard/mail/mailtest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		url, wantErr, from string
	}{
		{"smtp://u:p@smtp.example.org:587?from=alerts@example.org", "", "alerts@example.org"},
		{"smtps://alerts@example.org:p@smtp.example.org", "", "alerts@example.org"},
		{"smtp://smtp.example.org?from=a@example.org", "", "a@example.org"},
		{"http://smtp.example.org?from=a@example.org", "must start with smtp:// or smtps://", ""},
		{"smtp://u:p@smtp.example.org", "needs the sender address", ""},
		{"smtp://?from=a@example.org", "no host", ""},
		{"smtp://u:hunter2@smtp.example.org?from=not-an-address", "is not an email address", ""},
		{"smtp://u:p@smtp.example.org?from=Alerts+<a@example.org>", "is not an email address", ""},
	}
	for _, tt := range tests {
		s, err := mail.Parse(tt.url)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.url, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tt.url, err, tt.wantErr)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%s: error repeats the password: %v", tt.url, err)
		case err == nil && s.From() != tt.from:
			t.Errorf("%s: from %q, want %q", tt.url, s.From(), tt.from)
		}
	}
}

func TestSend(t *testing.T) {
	srv := mailtest.NewServer(t)
	s, err := mail.Parse(srv.URL("alerts", "s3cret", "switchboard@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	body := "The CRM health check fails:\n.leading dot stays\n- message_object: Status__c is missing"
	if err := s.Send(context.Background(), []string{"admin@example.org"}, "Switchboard: CRM\r\nBcc: evil@example.org health", body); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "switchboard@example.org" || len(m.To) != 1 || m.To[0] != "admin@example.org" {
		t.Fatalf("envelope %s → %v", m.From, m.To)
	}
	if m.User != "alerts" || m.Password != "s3cret" {
		t.Fatalf("authenticated as %q/%q", m.User, m.Password)
	}
	for _, want := range []string{"Subject: Switchboard: CRM Bcc: evil@example.org health\n", "To: admin@example.org\n", "\n.leading dot stays\n", "Status__c is missing"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("message lacks %q:\n%s", want, m.Data)
		}
	}
	if strings.Contains(m.Data, "\nBcc:") {
		t.Errorf("a line break in the subject made a header:\n%s", m.Data)
	}

	if err := s.Send(context.Background(), []string{"not an address"}, "x", "y"); err == nil {
		t.Fatal("sent to an invalid address")
	}
	if err := s.Send(context.Background(), nil, "x", "y"); err == nil {
		t.Fatal("sent to nobody")
	}
}
