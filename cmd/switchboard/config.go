package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/mail"
)

// Config is the service configuration: environment variables, overridden by
// flags. Validate names the setting at fault.
type Config struct {
	Addr        string // SWITCHBOARD_ADDR, --addr
	DataDir     string // SWITCHBOARD_DATA_DIR, --data
	DatabaseURL string // DATABASE_URL, --database-url
	PublicURL   string // SWITCHBOARD_PUBLIC_URL, --public-url
	SecretKeys  string // SWITCHBOARD_SECRET_KEYS
	HashKey     string // SWITCHBOARD_HASH_KEY (base64, ≥32 bytes)
	SimURL      string // SWITCHBOARD_SIM_URL: an external carrier; empty runs one inside
	LogLevel    string // SWITCHBOARD_LOG_LEVEL: debug, info, warn, error
	LogFormat   string // SWITCHBOARD_LOG_FORMAT: json or text
	SendWorkers int    // SWITCHBOARD_SEND_WORKERS
	OrgName     string // SWITCHBOARD_ORG_NAME: the first org's name
	AdminEmail  string // SWITCHBOARD_ADMIN_EMAIL: the first admin's email
	DemoGateway bool   // SWITCHBOARD_DEMO_GATEWAY: create a simulated gateway with the first org
	// PricePerSegment is the cost estimate per SMS segment the bulk-send
	// preview shows (SWITCHBOARD_PRICE_PER_SEGMENT).
	PricePerSegment float64
	// JobTimeout bounds a job run; work of a process that died is taken
	// over after 1.5 × it (SWITCHBOARD_JOB_TIMEOUT, e.g. 60s).
	JobTimeout time.Duration

	SalesforceClientID     string // SALESFORCE_CLIENT_ID
	SalesforceClientSecret string // SALESFORCE_CLIENT_SECRET
	SalesforceLoginURL     string // SALESFORCE_LOGIN_URL

	// SMTPURL is the SMTP server alert emails go through
	// (SWITCHBOARD_SMTP_URL, smtp://user:password@host:587?from=alerts@…);
	// empty: no alert emails.
	SMTPURL string

	public *url.URL
	mailer *mail.Sender
	// sfHTTP, when set, makes the Salesforce client's requests (tests).
	sfHTTP *http.Client
}

// env returns an environment variable, or def when it is unset or empty.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loadConfig reads the environment, then flags from args.
func loadConfig(fs *flag.FlagSet, args []string) (*Config, error) {
	c := &Config{
		Addr:                   env("SWITCHBOARD_ADDR", "127.0.0.1:8080"),
		DataDir:                env("SWITCHBOARD_DATA_DIR", "data"),
		DatabaseURL:            env("DATABASE_URL", ""),
		PublicURL:              env("SWITCHBOARD_PUBLIC_URL", ""),
		SecretKeys:             env("SWITCHBOARD_SECRET_KEYS", ""),
		HashKey:                env("SWITCHBOARD_HASH_KEY", ""),
		SimURL:                 env("SWITCHBOARD_SIM_URL", ""),
		LogLevel:               env("SWITCHBOARD_LOG_LEVEL", "info"),
		LogFormat:              env("SWITCHBOARD_LOG_FORMAT", "json"),
		OrgName:                env("SWITCHBOARD_ORG_NAME", "My Organisation"),
		AdminEmail:             env("SWITCHBOARD_ADMIN_EMAIL", "admin@example.org"),
		SalesforceClientID:     env("SALESFORCE_CLIENT_ID", ""),
		SalesforceClientSecret: env("SALESFORCE_CLIENT_SECRET", ""),
		SalesforceLoginURL:     env("SALESFORCE_LOGIN_URL", "https://login.salesforce.com"),
		SMTPURL:                env("SWITCHBOARD_SMTP_URL", ""),
	}
	var err error
	if c.SendWorkers, err = strconv.Atoi(env("SWITCHBOARD_SEND_WORKERS", "20")); err != nil {
		return nil, fmt.Errorf("SWITCHBOARD_SEND_WORKERS must be a whole number, not %q", os.Getenv("SWITCHBOARD_SEND_WORKERS"))
	}
	if c.PricePerSegment, err = strconv.ParseFloat(env("SWITCHBOARD_PRICE_PER_SEGMENT", "0.0079"), 64); err != nil || c.PricePerSegment < 0 {
		return nil, fmt.Errorf("SWITCHBOARD_PRICE_PER_SEGMENT must be a non-negative number, not %q", os.Getenv("SWITCHBOARD_PRICE_PER_SEGMENT"))
	}
	if c.JobTimeout, err = time.ParseDuration(env("SWITCHBOARD_JOB_TIMEOUT", "60s")); err != nil || c.JobTimeout < 4*time.Second || c.JobTimeout > time.Hour {
		return nil, fmt.Errorf("SWITCHBOARD_JOB_TIMEOUT must be a duration between 4s and 1h such as 60s, not %q", os.Getenv("SWITCHBOARD_JOB_TIMEOUT"))
	}
	if c.DemoGateway, err = strconv.ParseBool(env("SWITCHBOARD_DEMO_GATEWAY", "true")); err != nil {
		return nil, fmt.Errorf("SWITCHBOARD_DEMO_GATEWAY must be true or false, not %q", os.Getenv("SWITCHBOARD_DEMO_GATEWAY"))
	}
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (SWITCHBOARD_ADDR)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data folder for the SQLite file and generated keys (SWITCHBOARD_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres://… or sqlite:path (DATABASE_URL); default: SQLite in the data folder")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "public origin partners call back (SWITCHBOARD_PUBLIC_URL); default http://<addr>")
	fs.StringVar(&c.SimURL, "sim-url", c.SimURL, "URL of an external simulated carrier (SWITCHBOARD_SIM_URL); default: built in at <public-url>/sim")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (SWITCHBOARD_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (SWITCHBOARD_LOG_FORMAT)")
	fs.IntVar(&c.SendWorkers, "send-workers", c.SendWorkers, "concurrent send jobs per process (SWITCHBOARD_SEND_WORKERS)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("SWITCHBOARD_ADDR / --addr %q is not host:port", c.Addr)
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "switchboard.db")
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return fmt.Errorf("DATABASE_URL must start with postgres://, postgresql:// or sqlite:, not %q", redactURL(c.DatabaseURL))
	}
	if c.PublicURL == "" {
		host, port, _ := net.SplitHostPort(c.Addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("SWITCHBOARD_PUBLIC_URL / --public-url %q must be an http(s) URL", c.PublicURL)
	}
	c.public = u
	if c.SimURL != "" {
		if u, err := url.Parse(c.SimURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("SWITCHBOARD_SIM_URL / --sim-url %q must be an http(s) URL", c.SimURL)
		}
	}
	if _, err := c.logLevel(); err != nil {
		return err
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("SWITCHBOARD_LOG_FORMAT must be json or text, not %q", c.LogFormat)
	}
	if c.SendWorkers < 1 || c.SendWorkers > 1000 {
		return fmt.Errorf("SWITCHBOARD_SEND_WORKERS must be between 1 and 1000, not %d", c.SendWorkers)
	}
	if !strings.Contains(c.AdminEmail, "@") {
		return fmt.Errorf("SWITCHBOARD_ADMIN_EMAIL %q is not an email address", c.AdminEmail)
	}
	if c.SMTPURL != "" {
		m, err := mail.Parse(c.SMTPURL)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_SMTP_URL: %w", err)
		}
		c.mailer = m
	}
	return nil
}

func (c *Config) logLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("SWITCHBOARD_LOG_LEVEL must be debug, info, warn or error, not %q", c.LogLevel)
	}
	return l, nil
}

func (c *Config) simURL() string {
	if c.SimURL != "" {
		return c.SimURL
	}
	return c.public.JoinPath("sim").String()
}

// keyFile holds generated keys when none are given in the environment.
type keyFile struct {
	SecretKeys string `json:"secret_keys"`
	HashKey    string `json:"hash_key"`
}

// keys returns the keyring and hasher: from the environment, or from
// <data>/keys.json, created with fresh random keys on first start (mode
// 0600). Processes sharing one PostgreSQL must share the keys: set the
// environment variables on each.
func (c *Config) keys() (*sb.Keyring, *sb.Hasher, error) {
	spec, hashB64 := c.SecretKeys, c.HashKey
	if spec == "" || hashB64 == "" {
		path := filepath.Join(c.DataDir, "keys.json")
		var kf keyFile
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &kf); err != nil {
				return nil, nil, fmt.Errorf("key file %s is not valid JSON: %w", path, err)
			}
		case errors.Is(err, os.ErrNotExist):
			h := make([]byte, 32)
			_, _ = rand.Read(h)
			kf = keyFile{SecretKeys: sb.NewKeySpec("k1"), HashKey: base64.StdEncoding.EncodeToString(h)}
			if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
				return nil, nil, fmt.Errorf("create data folder %s: %w", c.DataDir, err)
			}
			b, _ := json.MarshalIndent(kf, "", "  ")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				return nil, nil, fmt.Errorf("write key file %s: %w", path, err)
			}
		default:
			return nil, nil, fmt.Errorf("read key file %s: %w", path, err)
		}
		if spec == "" {
			spec = kf.SecretKeys
		}
		if hashB64 == "" {
			hashB64 = kf.HashKey
		}
	}
	ring, err := sb.ParseKeyring(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("SWITCHBOARD_SECRET_KEYS: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(hashB64)
	if err != nil {
		return nil, nil, errors.New("SWITCHBOARD_HASH_KEY is not base64")
	}
	hasher, err := sb.NewHasher(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("SWITCHBOARD_HASH_KEY: %w", err)
	}
	return ring, hasher, nil
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}
