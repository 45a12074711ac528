package salesforce_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

const contactsQuery = "SELECT Id FROM Contact"

func TestAuthCodeURL(t *testing.T) {
	e := newEnv(t)
	verifier := salesforce.NewCodeVerifier()
	state := salesforce.NewState()
	u, err := url.Parse(e.client.AuthCodeURL(state, verifier))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(verifier))
	want := map[string]string{
		"response_type":         "code",
		"client_id":             e.sf.ClientID(),
		"redirect_uri":          redirectURL,
		"scope":                 "api refresh_token offline_access id",
		"state":                 state,
		"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
		"code_challenge_method": "S256",
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://login.salesforce.com/services/oauth2/authorize" {
		t.Errorf("authorize endpoint = %s", got)
	}
	q := u.Query()
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(verifier) < 43 || len(state) < 32 {
		t.Errorf("verifier %d and state %d characters are too short", len(verifier), len(state))
	}
	if salesforce.NewState() == state || salesforce.NewCodeVerifier() == verifier {
		t.Error("state and verifier must be fresh each time")
	}
}

func TestExchange(t *testing.T) {
	e := newEnv(t)
	admin := e.sf.UserID(sftest.DefaultUsername)
	conn := e.connect(sftest.DefaultUsername)
	checks := []struct {
		name, got, want string
	}{
		{"flow", conn.Flow, salesforce.FlowWebServer},
		{"instance", conn.InstanceURL, e.sf.InstanceURL()},
		{"user", conn.UserID, admin},
		{"sf org", conn.SFOrgID, e.sf.OrgID()},
		{"username", conn.Username, sftest.DefaultUsername},
		{"identity", conn.IdentityURL, "https://login.salesforce.com/id/" + e.sf.OrgID() + "/" + admin},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if conn.AccessToken == "" || !e.sf.RefreshTokenValid(conn.RefreshToken) {
		t.Error("exchange must keep an access token and a valid refresh token")
	}
	if !conn.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero without expires_in", conn.ExpiresAt)
	}
	if !conn.AuthorizedAt.Equal(e.clock.Now()) || !conn.IssuedAt.Equal(e.clock.Now()) {
		t.Errorf("AuthorizedAt %v / IssuedAt %v, want the clock's now", conn.AuthorizedAt, conn.IssuedAt)
	}
	if got := e.stored(); got.AccessToken != conn.AccessToken || got.Mapping.MessageObject != "Switchboard_Message__c" {
		t.Errorf("stored connection differs: %+v", got.LogValue())
	}
	raw, err := json.Marshal(conn)
	if err != nil {
		t.Fatal(err)
	}
	var back salesforce.Connection
	if err := json.Unmarshal(raw, &back); err != nil || back.RefreshToken != conn.RefreshToken || !back.AuthorizedAt.Equal(conn.AuthorizedAt) || back.Mapping.Records[1].LookupField != "Lead__c" {
		t.Errorf("connection does not survive JSON: %v", err)
	}
	if logged := conn.LogValue().String(); strings.Contains(logged, conn.AccessToken) || strings.Contains(logged, conn.RefreshToken) {
		t.Errorf("LogValue shows a token: %s", logged)
	}

	// An admin customises the mapping, the connection goes offline, and a
	// second admin authorizes: the new user replaces the old one, the
	// connection is online again and the mapping stays.
	stored := e.stored()
	stored.Mapping.Fields.Debug = "Error_Text__c"
	if err := e.store.SaveConnection(context.Background(), e.org.ID, stored); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetOffline(context.Background(), e.org.ID, "revoked"); err != nil {
		t.Fatal(err)
	}
	other := e.sf.AddUser("second.admin@acme.example")
	conn = e.connect("second.admin@acme.example")
	got := e.stored()
	if got.UserID != other || got.Offline || got.OfflineReason != "" || got.Mapping.Fields.Debug != "Error_Text__c" {
		t.Errorf("after re-authorization: user %s offline %v mapping debug %q", got.UserID, got.Offline, got.Mapping.Fields.Debug)
	}
	if n, err := e.query(contactsQuery); err != nil || n != 0 {
		t.Errorf("query after re-authorization: %d, %v", n, err)
	}
}

func TestExchangeErrors(t *testing.T) {
	tests := []struct {
		name     string
		exchange func(e *env, code, verifier string) error
		wantMsg  string
	}{
		{"wrong verifier", func(e *env, code, _ string) error {
			_, err := e.client.Exchange(context.Background(), e.org.ID, code, salesforce.NewCodeVerifier())
			return err
		}, "invalid_grant: invalid code verifier"},
		{"unknown code", func(e *env, _, verifier string) error {
			_, err := e.client.Exchange(context.Background(), e.org.ID, "aPrxNOTACODE", verifier)
			return err
		}, "invalid_grant: invalid authorization code"},
		{"code used twice", func(e *env, code, verifier string) error {
			if _, err := e.client.Exchange(context.Background(), e.org.ID, code, verifier); err != nil {
				return err
			}
			_, err := e.client.Exchange(context.Background(), e.org.ID, code, verifier)
			return err
		}, "invalid_grant: invalid authorization code"},
		{"expired code", func(e *env, code, verifier string) error {
			e.clock.Advance(16 * time.Minute)
			_, err := e.client.Exchange(context.Background(), e.org.ID, code, verifier)
			return err
		}, "invalid_grant: expired authorization code"},
		{"authentication failure", func(e *env, code, verifier string) error {
			e.sf.FailNextToken("invalid_grant", "authentication failure")
			_, err := e.client.Exchange(context.Background(), e.org.ID, code, verifier)
			return err
		}, "invalid_grant: authentication failure"},
		{"missing verifier", func(e *env, code, _ string) error {
			_, err := e.client.Exchange(context.Background(), e.org.ID, code, "")
			return err
		}, "code verifier is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			verifier := salesforce.NewCodeVerifier()
			code, _, err := e.sf.Authorize(e.client.AuthCodeURL("s", verifier), sftest.DefaultUsername)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.exchange(e, code, verifier)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), e.sf.ClientSecret()) || strings.Contains(err.Error(), code) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestRefreshOnInvalidSession(t *testing.T) {
	e := newEnv(t)
	old := e.connect(sftest.DefaultUsername)
	e.sf.ExpireAccessTokens()
	e.sf.ResetCounters()
	if _, err := e.query(contactsQuery); err != nil {
		t.Fatalf("query after expiry: %v", err)
	}
	if got := e.sf.TokenGrants("refresh_token"); got != 1 {
		t.Errorf("refresh grants = %d, want 1", got)
	}
	if got := e.sf.Calls("GET /query"); got != 2 {
		t.Errorf("query calls = %d, want 2 (401, then the retry)", got)
	}
	conn := e.stored()
	if conn.AccessToken == old.AccessToken || conn.RefreshToken != old.RefreshToken {
		t.Errorf("stored tokens after refresh: new access %v, same refresh %v", conn.AccessToken != old.AccessToken, conn.RefreshToken == old.RefreshToken)
	}

	// A token rejected again after the refresh is not refreshed a second
	// time in the same call.
	e.sf.ResetCounters()
	e.sf.MoveInstance("elsewhere.my.salesforce.com")
	e.sf.FailNextToken("temporarily_unavailable", "try later")
	_, err := e.query(contactsQuery)
	ce := crmError(t, err)
	if !ce.Retryable || ce.Offline {
		t.Errorf("a failing refresh must be retryable, not offline: %+v", ce)
	}
	if got := e.sf.TokenGrants("refresh_token"); got != 1 {
		t.Errorf("refresh grants = %d, want 1", got)
	}
}

func TestConcurrentRefreshKeepsRotation(t *testing.T) {
	e := newEnv(t, sftest.WithRefreshRotation())
	e.connect(sftest.DefaultUsername)
	e.sf.ExpireAccessTokens()
	e.sf.ResetCounters()
	const callers = 16
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.query(contactsQuery)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent query: %v", err)
		}
	}
	if got := e.sf.TokenGrants("refresh_token"); got != 1 {
		t.Errorf("refresh grants = %d, want exactly 1 for %d concurrent callers", got, callers)
	}
	conn := e.stored()
	if !e.sf.RefreshTokenValid(conn.RefreshToken) || conn.Offline {
		t.Error("the stored refresh token must be the rotated, valid one")
	}
	// and the rotated token works for the next refresh
	e.sf.ExpireAccessTokens()
	if _, err := e.query(contactsQuery); err != nil {
		t.Errorf("second refresh with the rotated token: %v", err)
	}
}

// raceStore lets a test run something between a client's load of the
// connection and its use, like another process refreshing meanwhile.
type raceStore struct {
	*salesforce.MemStore
	mu    sync.Mutex
	skip  int // loads to let through before after runs
	after func()
}

func (r *raceStore) LoadConnection(ctx context.Context, orgID string) (*salesforce.Connection, error) {
	c, err := r.MemStore.LoadConnection(ctx, orgID)
	r.mu.Lock()
	var f func()
	if r.skip > 0 {
		r.skip--
	} else {
		f, r.after = r.after, nil
	}
	r.mu.Unlock()
	if f != nil {
		f()
	}
	return c, err
}

func TestRotationByAnotherProcess(t *testing.T) {
	e := newEnv(t, sftest.WithRefreshRotation())
	e.connect(sftest.DefaultUsername)
	e.sf.ExpireAccessTokens()
	rs := &raceStore{MemStore: e.store}
	b := e.newClient(rs)
	// B's call is refused (401) and B loads the connection to refresh it;
	// right after that load, process A refreshes (rotating the token). B's
	// refresh with the old token is refused, B finds the newer token in the
	// store and uses it instead of going offline.
	rs.skip = 1
	rs.after = func() {
		if _, err := e.query(contactsQuery); err != nil {
			t.Errorf("process A: %v", err)
		}
	}
	err := b.Query(context.Background(), e.org.ID, contactsQuery, func(json.RawMessage) error { return nil })
	if err != nil {
		t.Fatalf("process B: %v", err)
	}
	conn := e.stored()
	if conn.Offline || !e.sf.RefreshTokenValid(conn.RefreshToken) {
		t.Errorf("connection offline %v, refresh token valid %v", conn.Offline, e.sf.RefreshTokenValid(conn.RefreshToken))
	}
	if got := e.sf.TokenGrants("refresh_token"); got != 2 {
		t.Errorf("refresh grants = %d, want 2 (A's, and B's refused one)", got)
	}
}

func TestMemStoreUpdateTokensCAS(t *testing.T) {
	ctx := context.Background()
	s := salesforce.NewMemStore()
	if err := s.SaveConnection(ctx, "o", &salesforce.Connection{AccessToken: "a1", RefreshToken: "r1"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.UpdateTokens(ctx, "o", "r1", &salesforce.Connection{AccessToken: "a2", RefreshToken: "r2"})
	if err != nil || got.AccessToken != "a2" || got.RefreshToken != "r2" {
		t.Fatalf("first swap: %+v, %v", got, err)
	}
	got, err = s.UpdateTokens(ctx, "o", "r1", &salesforce.Connection{AccessToken: "a3", RefreshToken: "r3"})
	if err != nil || got.AccessToken != "a2" || got.RefreshToken != "r2" {
		t.Fatalf("stale swap must return the stored tokens: %+v, %v", got, err)
	}
	if _, err := s.UpdateTokens(ctx, "none", "r", &salesforce.Connection{}); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("unknown org: %v", err)
	}
}

func TestInstanceURLChange(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	e.sf.MoveInstance("acme2.my.salesforce.com")
	if _, err := e.query(contactsQuery); err != nil {
		t.Fatalf("query after the org moved: %v", err)
	}
	if got := e.stored().InstanceURL; got != "https://acme2.my.salesforce.com" {
		t.Errorf("stored instance URL = %s", got)
	}
}

func TestTokenExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int
	}{
		{"no expires_in", 0},
		{"expires_in one hour", 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []sftest.Option
			if tt.expiresIn > 0 {
				opts = append(opts, sftest.WithExpiresIn(tt.expiresIn))
			}
			e := newEnv(t, opts...)
			conn := e.connect(sftest.DefaultUsername)
			if tt.expiresIn == 0 {
				if !conn.ExpiresAt.IsZero() {
					t.Fatalf("ExpiresAt = %v, want zero", conn.ExpiresAt)
				}
				return
			}
			if want := e.clock.Now().Add(time.Hour); !conn.ExpiresAt.Equal(want) {
				t.Fatalf("ExpiresAt = %v, want %v", conn.ExpiresAt, want)
			}
			// Past the expiry the client refreshes before calling: no 401.
			e.clock.Advance(2 * time.Hour)
			e.sf.ResetCounters()
			if _, err := e.query(contactsQuery); err != nil {
				t.Fatal(err)
			}
			if e.sf.TokenGrants("refresh_token") != 1 || e.sf.Calls("GET /query") != 1 {
				t.Errorf("refresh grants %d, query calls %d; want 1 and 1", e.sf.TokenGrants("refresh_token"), e.sf.Calls("GET /query"))
			}
			if got := e.stored().ExpiresAt; !got.Equal(e.clock.Now().Add(time.Hour)) {
				t.Errorf("new ExpiresAt = %v", got)
			}
		})
	}
}

func TestBrokenAuthorizationGoesOffline(t *testing.T) {
	tests := []struct {
		name      string
		breakAuth func(sf *sftest.Server)
		want      string
	}{
		{"refresh token revoked", func(sf *sftest.Server) { sf.RevokeRefreshTokens() }, "expired access/refresh token"},
		{"authentication failure", func(sf *sftest.Server) {
			sf.ExpireAccessTokens()
			sf.FailNextToken("invalid_grant", "authentication failure")
		}, "authentication failure"},
		{"client secret changed", func(sf *sftest.Server) {
			sf.ExpireAccessTokens()
			sf.FailNextToken("invalid_client", "invalid client credentials")
		}, "invalid client credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			conn := e.connect(sftest.DefaultUsername)
			tt.breakAuth(e.sf)
			_, err := e.client.WriteMessages(context.Background(), e.org, []switchboard.CRMMessage{{MessageID: "m1", Direction: switchboard.Outgoing, Status: switchboard.StatusQueued}})
			ce := crmError(t, err)
			if !ce.Offline || ce.Code != "invalid_grant" || !strings.Contains(ce.Message, tt.want) {
				t.Fatalf("error = %+v, want Offline invalid_grant mentioning %q", ce, tt.want)
			}
			if strings.Contains(ce.Message, conn.RefreshToken) || strings.Contains(ce.Message, conn.AccessToken) {
				t.Error("the error leaks a token")
			}
			stored := e.stored()
			if !stored.Offline || !strings.Contains(stored.OfflineReason, tt.want) {
				t.Errorf("stored offline %v reason %q", stored.Offline, stored.OfflineReason)
			}

			// No further calls until a new authorization, and every CRM call
			// says Offline.
			before := e.sf.CallCounts()
			calls := map[string]func() error{
				"WriteMessages": func() error {
					_, err := e.client.WriteMessages(context.Background(), e.org, []switchboard.CRMMessage{{MessageID: "m2", Direction: switchboard.Outgoing, Status: switchboard.StatusQueued}})
					return err
				},
				"GetRecords": func() error {
					_, err := e.client.GetRecords(context.Background(), e.org, []string{"003RS0000000001AAA"})
					return err
				},
				"FindByPhone": func() error {
					_, err := e.client.FindByPhone(context.Background(), e.org, "+12015550123")
					return err
				},
				"FindContactsByEmail": func() error {
					_, err := e.client.FindContactsByEmail(context.Background(), e.org, "a@b.example")
					return err
				},
				"SaveContactAndTask": func() error {
					_, _, err := e.client.SaveContactAndTask(context.Background(), e.org, &switchboard.CRMRecord{LastName: "X"}, &switchboard.CRMTask{Subject: "Chat"})
					return err
				},
				"LastOutgoingOwner": func() error {
					_, err := e.client.LastOutgoingOwner(context.Background(), e.org, "+12015550100", "+12015550123")
					return err
				},
			}
			for name, call := range calls {
				if ce := crmError(t, call()); !ce.Offline || ce.Code != "invalid_grant" {
					t.Errorf("%s: %+v, want Offline invalid_grant", name, ce)
				}
			}
			if after := e.sf.CallCounts(); len(after) != len(before) || sumCalls(after) != sumCalls(before) {
				t.Errorf("calls were made while offline: before %v after %v", before, after)
			}
			if r := e.client.Check(context.Background(), e.org); r.OK {
				t.Error("health check of an offline connection must fail")
			}

			e.connect(sftest.DefaultUsername)
			if _, err := e.query(contactsQuery); err != nil {
				t.Errorf("after a new authorization: %v", err)
			}
		})
	}
}

func sumCalls(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestNotConnected(t *testing.T) {
	e := newEnv(t)
	_, err := e.client.WriteMessages(context.Background(), e.org, []switchboard.CRMMessage{{MessageID: "m", Direction: switchboard.Incoming, Status: switchboard.StatusReceived}})
	if ce := crmError(t, err); !ce.Offline || ce.Code != salesforce.CodeNotConnected {
		t.Errorf("error = %+v", ce)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(sftest.DefaultUsername)
	if err := e.client.Revoke(context.Background(), e.org.ID); err != nil {
		t.Fatal(err)
	}
	if e.sf.RefreshTokenValid(conn.RefreshToken) {
		t.Error("refresh token still valid at Salesforce")
	}
	if e.sf.Calls("POST /services/oauth2/revoke") != 1 {
		t.Error("revoke endpoint not called")
	}
	stored := e.stored()
	if !stored.Offline || stored.OfflineReason == "" {
		t.Errorf("connection offline %v reason %q", stored.Offline, stored.OfflineReason)
	}
	before := e.sf.DataCalls()
	if _, err := e.query(contactsQuery); !crmError(t, err).Offline {
		t.Error("calls after revoke must be offline")
	}
	if e.sf.DataCalls() != before {
		t.Error("a call reached Salesforce after revoke")
	}
	// revoking again is harmless: the token is already invalid
	if err := e.client.Revoke(context.Background(), e.org.ID); err != nil {
		t.Errorf("second revoke: %v", err)
	}
}

func TestConnectJWT(t *testing.T) {
	tests := []struct {
		name     string
		opts     []sftest.Option
		instance string
		wantAud  string
	}{
		{"production", nil, "https://acme.my.salesforce.com", "https://login.salesforce.com"},
		{"sandbox", []sftest.Option{sftest.WithSandbox(), sftest.WithInstanceHost("acme--uat.sandbox.my.salesforce.com")}, "https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"},
		{"legacy sandbox domain", []sftest.Option{sftest.WithSandbox(), sftest.WithInstanceHost("acme--uat.my.salesforce.com")}, "https://ACME--UAT.my.salesforce.com/", "https://test.salesforce.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			key, pemKey := newKey(t)
			e.sf.RegisterJWTKey("jwt-consumer-key", &key.PublicKey)
			conn, err := e.client.ConnectJWT(context.Background(), e.org.ID, salesforce.JWTSettings{
				InstanceURL: tt.instance, ClientID: "jwt-consumer-key", Username: sftest.DefaultUsername, PrivateKeyPEM: pemKey,
			})
			if err != nil {
				t.Fatal(err)
			}
			if conn.Flow != salesforce.FlowJWT || conn.RefreshToken != "" || conn.UserID != e.sf.UserID(sftest.DefaultUsername) || conn.InstanceURL != e.sf.InstanceURL() {
				t.Errorf("connection: flow %s refresh %q user %s instance %s", conn.Flow, conn.RefreshToken, conn.UserID, conn.InstanceURL)
			}
			a := e.sf.LastAssertion()
			if a == nil {
				t.Fatal("no assertion received")
			}
			if a.Header["alg"] != "RS256" {
				t.Errorf("alg = %v", a.Header["alg"])
			}
			wantClaims := map[string]any{"iss": "jwt-consumer-key", "sub": sftest.DefaultUsername, "aud": tt.wantAud}
			for k, v := range wantClaims {
				if a.Claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, a.Claims[k], v)
				}
			}
			exp, _ := a.Claims["exp"].(float64)
			ahead := time.Unix(int64(exp), 0).Sub(e.clock.Now())
			if ahead <= 0 || ahead > 3*time.Minute {
				t.Errorf("exp is %v ahead, want within 3 minutes", ahead)
			}

			// A rejected token runs the grant again (there is no refresh token).
			e.sf.ExpireAccessTokens()
			if _, err := e.query(contactsQuery); err != nil {
				t.Fatalf("query after expiry: %v", err)
			}
			if got := e.sf.TokenGrants(sftest.JWTBearerGrant); got != 2 {
				t.Errorf("JWT grants = %d, want 2", got)
			}
		})
	}
}

func TestConnectJWTValidation(t *testing.T) {
	e := newEnv(t)
	key, pemKey := newKey(t)
	e.sf.RegisterJWTKey("jwt-consumer-key", &key.PublicKey)
	good := salesforce.JWTSettings{InstanceURL: "https://acme.my.salesforce.com", ClientID: "jwt-consumer-key", Username: sftest.DefaultUsername, PrivateKeyPEM: pemKey}
	tests := []struct {
		name      string
		edit      func(s *salesforce.JWTSettings)
		wantField string
		wantMsg   string
	}{
		{"empty instance", func(s *salesforce.JWTSettings) { s.InstanceURL = "" }, "instance_url", "required"},
		{"http", func(s *salesforce.JWTSettings) { s.InstanceURL = "http://acme.my.salesforce.com" }, "instance_url", "https://"},
		{"login host", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://login.salesforce.com" }, "instance_url", "not login.salesforce.com"},
		{"test host", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://test.salesforce.com" }, "instance_url", "not test.salesforce.com"},
		{"other domain", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://acme.example.com" }, "instance_url", ".salesforce.com"},
		{"look-alike", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://acme.salesforce.com.example.net" }, "instance_url", ".salesforce.com"},
		{"bare domain", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://salesforce.com" }, "instance_url", ".salesforce.com"},
		{"path", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://acme.my.salesforce.com/services" }, "instance_url", "without a path"},
		{"port", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://acme.my.salesforce.com:8443" }, "instance_url", "port"},
		{"user info", func(s *salesforce.JWTSettings) { s.InstanceURL = "https://u:p@acme.my.salesforce.com" }, "instance_url", "without a path"},
		{"not a url", func(s *salesforce.JWTSettings) { s.InstanceURL = "acme" }, "instance_url", "not a URL"},
		{"no client id", func(s *salesforce.JWTSettings) { s.ClientID = " " }, "client_id", "required"},
		{"no username", func(s *salesforce.JWTSettings) { s.Username = "" }, "username", "required"},
		{"bad key", func(s *salesforce.JWTSettings) {
			s.PrivateKeyPEM = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"
		}, "private_key", "RSA private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			_, err := e.client.ConnectJWT(context.Background(), e.org.ID, s)
			var de *switchboard.Error
			if !errors.As(err, &de) || de.Code != switchboard.EInvalid || de.Field != tt.wantField || !strings.Contains(de.Message, tt.wantMsg) {
				t.Fatalf("error = %v, want EInvalid on %s mentioning %q", err, tt.wantField, tt.wantMsg)
			}
		})
	}
	if e.sf.TokenGrants(sftest.JWTBearerGrant) != 0 {
		t.Error("invalid settings must not reach Salesforce")
	}
}

func TestConnectJWTRefused(t *testing.T) {
	tests := []struct {
		name string
		edit func(e *env, s *salesforce.JWTSettings)
		want string
	}{
		{"user has not approved", func(e *env, s *salesforce.JWTSettings) { s.Username = "stranger@acme.example" }, "user hasn't approved this consumer"},
		{"key not uploaded", func(e *env, s *salesforce.JWTSettings) { _, s.PrivateKeyPEM = newKey(t) }, "invalid assertion"},
		{"unknown consumer key", func(e *env, s *salesforce.JWTSettings) { s.ClientID = "other" }, "invalid_client_id"},
		{"wrong audience", func(e *env, s *salesforce.JWTSettings) {
			e.cfg.JWTAudience = "https://test.salesforce.com"
			e.client = salesforce.New(e.cfg, e.store)
		}, "audience is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			key, pemKey := newKey(t)
			e.sf.RegisterJWTKey("jwt-consumer-key", &key.PublicKey)
			s := salesforce.JWTSettings{InstanceURL: "https://acme.my.salesforce.com", ClientID: "jwt-consumer-key", Username: sftest.DefaultUsername, PrivateKeyPEM: pemKey}
			tt.edit(e, &s)
			_, err := e.client.ConnectJWT(context.Background(), e.org.ID, s)
			if !switchboard.IsCode(err, switchboard.EUnauthorized) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want unauthorized mentioning %q", err, tt.want)
			}
			if _, err := e.store.LoadConnection(context.Background(), e.org.ID); !switchboard.IsCode(err, switchboard.ENotFound) {
				t.Error("a refused connect must store nothing")
			}
		})
	}
}

func TestJWTConnectionGoesOfflineWhenRefused(t *testing.T) {
	e := newEnv(t)
	key, pemKey := newKey(t)
	e.sf.RegisterJWTKey("jwt-consumer-key", &key.PublicKey)
	if _, err := e.client.ConnectJWT(context.Background(), e.org.ID, salesforce.JWTSettings{InstanceURL: "https://acme.my.salesforce.com", ClientID: "jwt-consumer-key", Username: sftest.DefaultUsername, PrivateKeyPEM: pemKey}); err != nil {
		t.Fatal(err)
	}
	e.sf.ExpireAccessTokens()
	e.sf.FailNextToken("invalid_grant", "user hasn't approved this consumer")
	if ce := crmError(t, func() error { _, err := e.query(contactsQuery); return err }()); !ce.Offline {
		t.Errorf("error = %+v, want Offline", ce)
	}
	if !e.stored().Offline {
		t.Error("connection not offline")
	}
}
