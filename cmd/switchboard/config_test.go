package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestConfigErrorsNameTheSetting(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--addr", "nonsense"}, "SWITCHBOARD_ADDR"},
		{map[string]string{"DATABASE_URL": "mysql://x"}, nil, "DATABASE_URL"},
		{nil, []string{"--public-url", "ftp://x"}, "SWITCHBOARD_PUBLIC_URL"},
		{map[string]string{"SWITCHBOARD_LOG_LEVEL": "loud"}, nil, "SWITCHBOARD_LOG_LEVEL"},
		{map[string]string{"SWITCHBOARD_LOG_FORMAT": "xml"}, nil, "SWITCHBOARD_LOG_FORMAT"},
		{map[string]string{"SWITCHBOARD_SEND_WORKERS": "many"}, nil, "SWITCHBOARD_SEND_WORKERS"},
		{nil, []string{"--send-workers", "0"}, "SWITCHBOARD_SEND_WORKERS"},
		{map[string]string{"SWITCHBOARD_JOB_TIMEOUT": "1s"}, nil, "SWITCHBOARD_JOB_TIMEOUT"},
		{map[string]string{"SWITCHBOARD_DEMO_GATEWAY": "perhaps"}, nil, "SWITCHBOARD_DEMO_GATEWAY"},
		{map[string]string{"SWITCHBOARD_ADMIN_EMAIL": "nobody"}, nil, "SWITCHBOARD_ADMIN_EMAIL"},
		{map[string]string{"SWITCHBOARD_PRICE_PER_SEGMENT": "-1"}, nil, "SWITCHBOARD_PRICE_PER_SEGMENT"},
		{map[string]string{"SWITCHBOARD_SIM_URL": "nope"}, nil, "SWITCHBOARD_SIM_URL"},
		{map[string]string{"SWITCHBOARD_SMTP_URL": "smtp://u:hunter2@smtp.example.org"}, nil, "SWITCHBOARD_SMTP_URL: SMTP URL needs the sender address"},
		{map[string]string{"SWITCHBOARD_SMTP_URL": "mailto:it@example.org"}, nil, "SWITCHBOARD_SMTP_URL"},
	}
	for _, c := range cases {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := loadConfig(fs, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("env %v args %v: error %v does not name %s", c.env, c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats a password: %v", err)
		}
		for k := range c.env {
			t.Setenv(k, "")
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg, err := loadConfig(fs, []string{"--data", t.TempDir(), "--addr", "127.0.0.1:9999"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.DatabaseURL, "sqlite:") || cfg.PublicURL != "http://127.0.0.1:9999" || cfg.simURL() != "http://127.0.0.1:9999/sim" {
		t.Fatalf("defaults: %+v", cfg)
	}
	ring, hasher, err := cfg.keys()
	if err != nil || ring == nil || hasher == nil {
		t.Fatalf("generated keys: %v", err)
	}
	// The same keys come back on the next start.
	ring2, _, err := cfg.keys()
	if err != nil {
		t.Fatal(err)
	}
	sealed := ring.Seal("x", []byte("secret"))
	if got, err := ring2.Open("x", sealed); err != nil || string(got) != "secret" {
		t.Fatalf("keys not kept: %v", err)
	}
}
