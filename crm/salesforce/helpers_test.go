package salesforce_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

const redirectURL = "https://switchboard.example/oauth/salesforce/callback"

// clock is a controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sleeper records the waits the client asks for and returns at once.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleeper) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waits)
}

// env is a client wired to a fake Salesforce.
type env struct {
	t      *testing.T
	sf     *sftest.Server
	store  *salesforce.MemStore
	client *salesforce.Client
	clock  *clock
	sleep  *sleeper
	org    *switchboard.Org
	cfg    salesforce.Config
}

func newEnv(t *testing.T, opts ...sftest.Option) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), sleep: &sleeper{}, store: salesforce.NewMemStore(), org: &switchboard.Org{ID: "org-1", Name: "Acme"}}
	e.sf = sftest.NewServer(t, append([]sftest.Option{sftest.WithClock(e.clock.Now), sftest.WithRedirectURL(redirectURL)}, opts...)...)
	e.cfg = salesforce.Config{
		ClientID:     e.sf.ClientID(),
		ClientSecret: e.sf.ClientSecret(),
		RedirectURL:  redirectURL,
		HTTPClient:   e.sf.HTTPClient(),
		Now:          e.clock.Now,
		Sleep:        e.sleep.Sleep,
		Backoff:      func(attempt int) time.Duration { return time.Duration(attempt) * time.Second },
		Logger:       slog.New(slog.DiscardHandler),
	}
	e.client = salesforce.New(e.cfg, e.store)
	return e
}

// newClient returns another client on the same store and fake, like a
// second process.
func (e *env) newClient(store salesforce.Store) *salesforce.Client {
	return salesforce.New(e.cfg, store)
}

// connect authorizes the org with the web server flow as username.
func (e *env) connect(username string) *salesforce.Connection {
	e.t.Helper()
	verifier := salesforce.NewCodeVerifier()
	code, _, err := e.sf.Authorize(e.client.AuthCodeURL(salesforce.NewState(), verifier), username)
	if err != nil {
		e.t.Fatalf("authorize: %v", err)
	}
	conn, err := e.client.Exchange(context.Background(), e.org.ID, code, verifier)
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	return conn
}

func (e *env) stored() *salesforce.Connection {
	e.t.Helper()
	c, err := e.store.LoadConnection(context.Background(), e.org.ID)
	if err != nil {
		e.t.Fatalf("load connection: %v", err)
	}
	return c
}

// newKey returns an RSA key and its PKCS #8 PEM.
func newKey(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func crmError(t *testing.T, err error) *switchboard.CRMError {
	t.Helper()
	var ce *switchboard.CRMError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *switchboard.CRMError", err, err)
	}
	return ce
}

// query counts the records a SOQL query returns.
func (e *env) query(soql string) (int, error) {
	n := 0
	err := e.client.Query(context.Background(), e.org.ID, soql, func(json.RawMessage) error { n++; return nil })
	return n, err
}
