package salesforce

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/switchboard/switchboard"
)

// Defaults.
const (
	DefaultLoginURL       = "https://login.salesforce.com"
	SandboxLoginURL       = "https://test.salesforce.com"
	DefaultAPIVersion     = "v62.0"
	DefaultUsageThreshold = 0.8
	DefaultMaxRetries     = 3
	DefaultLockRetries    = 3
	DefaultLimitBackoff   = 30 * time.Minute
)

// Config configures a Client. The zero value of every field but ClientID
// (and ClientSecret for the web server flow) has a working default.
type Config struct {
	// ClientID and ClientSecret are the connected app's consumer key and
	// secret (web server flow).
	ClientID     string
	ClientSecret string
	// LoginURL is where the web server flow authorizes and exchanges codes
	// (default https://login.salesforce.com; https://test.salesforce.com for
	// sandboxes, or an org's My Domain URL).
	LoginURL string
	// RedirectURL is the connected app's callback URL.
	RedirectURL string
	// APIVersion is the REST API version, "v62.0" by default.
	APIVersion string
	// HTTPClient makes every request (default: 30 s timeout).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// UsageThreshold is the share of the daily API limit from which
	// Throttle reports true (default 0.8).
	UsageThreshold float64
	// OnLimits hears every Sforce-Limit-Info reading.
	OnLimits func(orgID string, used, max int)
	// JWTAudience overrides the aud claim of JWT bearer assertions.
	JWTAudience string
	// MaxRetries bounds the retries of a call answered 5xx (default 3;
	// negative means none).
	MaxRetries int
	// LockRetries bounds the retries of records that failed with
	// UNABLE_TO_LOCK_ROW (default 3; negative means none).
	LockRetries int
	// Backoff is the wait before retry number attempt (1, 2, …). Default:
	// exponential from 250 ms, capped at 8 s, with jitter.
	Backoff func(attempt int) time.Duration
	// Sleep waits for d or until ctx ends (default: a timer). Tests inject
	// one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// LimitBackoff is how long an org that hit REQUEST_LIMIT_EXCEEDED is
	// left alone when Salesforce does not say (default 30 minutes).
	LimitBackoff time.Duration
	// Logger receives warnings (default slog.Default()). Nothing secret or
	// personal is logged.
	Logger *slog.Logger
}

var apiVersionRE = regexp.MustCompile(`^v[1-9][0-9]{1,2}\.[0-9]$`)

// Validate checks the configuration; the error names the setting at fault.
func (c Config) Validate() error {
	if strings.TrimSpace(c.ClientID) == "" {
		return switchboard.FieldError("client_id", "the Salesforce connected app's consumer key (client id) is required")
	}
	if c.LoginURL != "" {
		u, err := url.Parse(c.LoginURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return switchboard.FieldError("login_url", "login_url must be an https URL without a path, such as %s", DefaultLoginURL)
		}
	}
	if c.RedirectURL != "" {
		u, err := url.Parse(c.RedirectURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return switchboard.FieldError("redirect_url", "redirect_url must be an absolute http(s) URL")
		}
	}
	if c.APIVersion != "" && !apiVersionRE.MatchString(c.APIVersion) {
		return switchboard.FieldError("api_version", "api_version must look like %q, not %q", DefaultAPIVersion, c.APIVersion)
	}
	if c.UsageThreshold < 0 || c.UsageThreshold > 1 {
		return switchboard.FieldError("usage_threshold", "usage_threshold must be between 0 and 1")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.LoginURL == "" {
		c.LoginURL = DefaultLoginURL
	}
	c.LoginURL = strings.TrimRight(c.LoginURL, "/")
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UsageThreshold == 0 {
		c.UsageThreshold = DefaultUsageThreshold
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	switch {
	case c.LockRetries == 0:
		c.LockRetries = DefaultLockRetries
	case c.LockRetries < 0:
		c.LockRetries = 0
	}
	if c.Backoff == nil {
		c.Backoff = defaultBackoff
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.LimitBackoff <= 0 {
		c.LimitBackoff = DefaultLimitBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// defaultBackoff doubles from 250 ms up to 8 s and picks a random wait in
// the upper half, so that callers retrying together spread out.
func defaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := 250 * time.Millisecond << min(attempt-1, 5)
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// JWTSettings are what an admin enters for a JWT bearer connection.
type JWTSettings struct {
	// InstanceURL is the org's My Domain URL, such as
	// https://acme.my.salesforce.com.
	InstanceURL string `json:"instance_url"`
	// ClientID is the connected app's consumer key.
	ClientID string `json:"client_id"`
	// Username is the pre-approved API user's username.
	Username string `json:"username"`
	// PrivateKeyPEM is the RSA private key (PKCS #1 or PKCS #8 PEM) whose
	// certificate is uploaded to the connected app.
	PrivateKeyPEM string `json:"private_key_pem"`
}

// ValidateInstanceURL checks an instance URL an admin entered and returns
// it as "https://host". It must be https, its host must end in
// ".salesforce.com" (".my.salesforce.com" included) and must not be a login
// host. The error is a FieldError naming instance_url.
func ValidateInstanceURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", switchboard.FieldError("instance_url", "instance URL is required, for example https://yourdomain.my.salesforce.com")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", switchboard.FieldError("instance_url", "instance URL is not a URL; enter it like https://yourdomain.my.salesforce.com")
	}
	if u.Scheme != "https" {
		return "", switchboard.FieldError("instance_url", "instance URL must start with https://")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", switchboard.FieldError("instance_url", "instance URL must be just the https://host of your org, without a path or query")
	}
	if u.Port() != "" {
		return "", switchboard.FieldError("instance_url", "instance URL must not name a port")
	}
	host := strings.ToLower(u.Hostname())
	if !strings.HasSuffix(host, ".salesforce.com") || !validHost(host) {
		return "", switchboard.FieldError("instance_url", "instance URL must be your org's Salesforce domain, ending in .salesforce.com or .my.salesforce.com")
	}
	if host == "login.salesforce.com" || host == "test.salesforce.com" {
		return "", switchboard.FieldError("instance_url", "instance URL must be your org's own domain (such as https://yourdomain.my.salesforce.com), not %s", host)
	}
	return "https://" + host, nil
}

func validHost(h string) bool {
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// IsSandboxInstance reports whether an instance URL is a sandbox's (see
// isSandboxHost); an unreadable URL counts as a sandbox, so that nothing
// meant for production instances only is done for it.
func IsSandboxInstance(instanceURL string) bool {
	u, err := url.Parse(instanceURL)
	if err != nil || u.Hostname() == "" {
		return true
	}
	return isSandboxHost(u.Hostname())
}

// isSandboxHost reports whether an instance host is a sandbox's:
// "acme--uat.sandbox.my.salesforce.com" (enhanced domains) or
// "acme--uat.my.salesforce.com" (legacy).
func isSandboxHost(host string) bool {
	host = strings.ToLower(host)
	return strings.Contains(host, "--") || strings.Contains(host, ".sandbox.")
}

// audienceFor returns the aud claim for a JWT bearer assertion.
func (c *Client) audienceFor(instanceURL string) string {
	if c.cfg.JWTAudience != "" {
		return c.cfg.JWTAudience
	}
	if u, err := url.Parse(instanceURL); err == nil && isSandboxHost(u.Hostname()) {
		return SandboxLoginURL
	}
	return DefaultLoginURL
}
