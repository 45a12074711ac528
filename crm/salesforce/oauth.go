package salesforce

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/switchboard/switchboard"
)

// Scopes requested by the web server flow.
var Scopes = []string{"api", "refresh_token", "offline_access", "id"}

const jwtGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// NewCodeVerifier returns a fresh PKCE code verifier (43 characters of
// base64url). Keep it with the state until the callback.
func NewCodeVerifier() string { return oauth2.GenerateVerifier() }

// NewState returns a fresh, unguessable OAuth state value.
func NewState() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Client) oauthConfig(loginURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  c.cfg.RedirectURL,
		Scopes:       Scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   loginURL + "/services/oauth2/authorize",
			TokenURL:  loginURL + "/services/oauth2/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// AuthCodeURL returns the URL to send an admin to for the web server flow,
// with a PKCE S256 challenge of codeVerifier.
func (c *Client) AuthCodeURL(state, codeVerifier string) string {
	return c.oauthConfig(c.cfg.LoginURL).AuthCodeURL(state, oauth2.S256ChallengeOption(codeVerifier))
}

// oauthError is an error answer of a token or revoke endpoint.
type oauthError struct {
	Code        string
	Description string
}

func (e *oauthError) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// brokenAuthorization reports whether a token error means the stored
// authorization can never work again.
func (e *oauthError) brokenAuthorization() bool {
	switch e.Code {
	case "invalid_grant", "invalid_client", "invalid_client_id":
		return true
	}
	return false
}

// asOAuthError extracts a token endpoint's error answer.
func asOAuthError(err error) (*oauthError, bool) {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe, true
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return &oauthError{Code: re.ErrorCode, Description: scrub(re.ErrorDescription)}, true
	}
	return nil, false
}

// authFailed turns a failed grant during a connect into a domain error.
func authFailed(err error, what string) error {
	if oe, ok := asOAuthError(err); ok {
		return &switchboard.Error{Code: switchboard.EUnauthorized, Message: fmt.Sprintf("Salesforce refused the %s: %s", what, oe.Error())}
	}
	return switchboard.Wrap(redactURLError(err), switchboard.EUnavailable, "Salesforce could not be reached for the %s", what)
}

// token is the part of a token response Switchboard keeps.
type token struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	InstanceURL  string          `json:"instance_url"`
	ID           string          `json:"id"`
	IssuedAt     string          `json:"issued_at"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	Error        string          `json:"error"`
	Description  string          `json:"error_description"`
}

func tokenFromOAuth2(t *oauth2.Token) token {
	str := func(k string) string {
		s, _ := t.Extra(k).(string)
		return s
	}
	out := token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, InstanceURL: str("instance_url"), ID: str("id"), IssuedAt: str("issued_at")}
	if t.ExpiresIn > 0 {
		out.ExpiresIn = json.RawMessage(strconv.FormatInt(t.ExpiresIn, 10))
	}
	return out
}

// apply copies a token response onto a connection.
func (c *Client) apply(conn *Connection, t token) error {
	if t.AccessToken == "" {
		return errors.New("token response has no access_token")
	}
	conn.AccessToken = t.AccessToken
	if t.RefreshToken != "" {
		conn.RefreshToken = t.RefreshToken
	}
	if t.InstanceURL != "" {
		u, err := url.Parse(t.InstanceURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
			return errors.New("token response has an instance_url that is not an https origin")
		}
		conn.InstanceURL = "https://" + u.Host
	}
	if conn.InstanceURL == "" {
		return errors.New("token response has no instance_url")
	}
	if t.ID != "" {
		conn.IdentityURL = t.ID
	}
	now := c.cfg.Now()
	conn.IssuedAt = now
	if ms, err := strconv.ParseInt(t.IssuedAt, 10, 64); err == nil && ms > 0 {
		conn.IssuedAt = time.UnixMilli(ms).UTC()
	}
	conn.ExpiresAt = time.Time{}
	if secs, err := parseCount(strings.Trim(string(t.ExpiresIn), `"`)); err == nil && secs > 0 {
		conn.ExpiresAt = now.Add(time.Duration(secs) * time.Second)
	}
	return nil
}

// Exchange completes the web server flow: it exchanges the code (with the
// PKCE verifier), reads the identity URL and stores the connection,
// replacing any previous one (and its offline state) but keeping its
// mapping.
func (c *Client) Exchange(ctx context.Context, orgID, code, codeVerifier string) (*Connection, error) {
	if c.cfgErr != nil {
		return nil, c.cfgErr
	}
	switch {
	case orgID == "":
		return nil, switchboard.FieldError("org", "org is required")
	case code == "":
		return nil, switchboard.FieldError("code", "the authorization code is missing from the callback")
	case codeVerifier == "":
		return nil, switchboard.FieldError("code_verifier", "the PKCE code verifier is missing; start the authorization again")
	}
	octx := context.WithValue(withOrg(ctx, orgID), oauth2.HTTPClient, c.http)
	tok, err := c.oauthConfig(c.cfg.LoginURL).Exchange(octx, code, oauth2.VerifierOption(codeVerifier))
	if err != nil {
		return nil, authFailed(err, "authorization")
	}
	conn := &Connection{Flow: FlowWebServer, LoginURL: c.cfg.LoginURL, AuthorizedAt: c.cfg.Now()}
	if err := c.apply(conn, tokenFromOAuth2(tok)); err != nil {
		return nil, switchboard.Wrap(err, switchboard.EUnavailable, "Salesforce answered the authorization with an unusable token")
	}
	if conn.RefreshToken == "" {
		return nil, switchboard.Errorf(switchboard.EInvalid, "Salesforce issued no refresh token: allow the refresh_token, offline_access scope on the connected app and authorize again")
	}
	return c.finishConnect(ctx, orgID, conn)
}

// finishConnect reads the identity URL and saves a new connection.
func (c *Client) finishConnect(ctx context.Context, orgID string, conn *Connection) (*Connection, error) {
	id, err := c.identity(ctx, orgID, conn)
	if err != nil {
		return nil, err
	}
	conn.UserID, conn.SFOrgID, conn.Username = id.UserID, id.OrganizationID, id.Username
	conn.Mapping = DefaultMapping()
	if prev, err := c.store.LoadConnection(ctx, orgID); err == nil && !prev.Mapping.IsZero() {
		conn.Mapping = prev.Mapping.WithDefaults()
	}
	if err := c.store.SaveConnection(ctx, orgID, conn); err != nil {
		return nil, err
	}
	c.cfg.Logger.Info("salesforce: connected", "org", orgID, "connection", conn)
	return conn.Clone(), nil
}

// identityInfo is the part of the identity URL's answer Switchboard uses.
type identityInfo struct {
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
	Username       string `json:"username"`
}

func (c *Client) identity(ctx context.Context, orgID string, conn *Connection) (*identityInfo, error) {
	u, err := url.Parse(conn.IdentityURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, switchboard.Errorf(switchboard.EUnavailable, "Salesforce returned no usable identity URL")
	}
	resp, err := c.send(ctx, orgID, conn, apiRequest{method: http.MethodGet, url: conn.IdentityURL})
	if err != nil {
		return nil, switchboard.Wrap(err, switchboard.EUnavailable, "the Salesforce identity URL could not be reached")
	}
	if resp.status != http.StatusOK {
		return nil, switchboard.Errorf(switchboard.EUnavailable, "the Salesforce identity URL answered HTTP %d", resp.status)
	}
	var id identityInfo
	if err := json.Unmarshal(resp.body, &id); err != nil || id.UserID == "" || id.OrganizationID == "" {
		return nil, switchboard.Errorf(switchboard.EUnavailable, "the Salesforce identity URL answered without a user and org id")
	}
	return &id, nil
}

// ConnectJWT connects an org with the JWT bearer flow and stores the
// connection, replacing any previous one but keeping its mapping.
func (c *Client) ConnectJWT(ctx context.Context, orgID string, s JWTSettings) (*Connection, error) {
	if c.cfgErr != nil {
		return nil, c.cfgErr
	}
	if orgID == "" {
		return nil, switchboard.FieldError("org", "org is required")
	}
	instance, err := ValidateInstanceURL(s.InstanceURL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(s.ClientID) == "" {
		return nil, switchboard.FieldError("client_id", "client id (the connected app's consumer key) is required")
	}
	if strings.TrimSpace(s.Username) == "" {
		return nil, switchboard.FieldError("username", "username of the Salesforce API user is required")
	}
	if _, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(s.PrivateKeyPEM)); err != nil {
		return nil, switchboard.FieldError("private_key", "private key must be an RSA private key in PEM form (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)")
	}
	conn := &Connection{
		Flow:          FlowJWT,
		InstanceURL:   instance,
		LoginURL:      instance,
		ClientID:      strings.TrimSpace(s.ClientID),
		Username:      strings.TrimSpace(s.Username),
		PrivateKeyPEM: s.PrivateKeyPEM,
		AuthorizedAt:  c.cfg.Now(),
	}
	fresh, err := c.jwtGrant(ctx, orgID, conn)
	if err != nil {
		return nil, authFailed(err, "JWT bearer grant")
	}
	return c.finishConnect(ctx, orgID, fresh)
}

// JWTClaims are the claims of a JWT bearer assertion.
type JWTClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expires  int64  `json:"exp"`
}

// GetExpirationTime and the other methods make JWTClaims a jwt.Claims.
func (c JWTClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Expires, 0)), nil
}

// GetIssuedAt implements jwt.Claims.
func (c JWTClaims) GetIssuedAt() (*jwt.NumericDate, error) { return nil, nil }

// GetNotBefore implements jwt.Claims.
func (c JWTClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c JWTClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c JWTClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c JWTClaims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings{c.Audience}, nil }

// jwtAssertion signs the assertion for a JWT connection: iss the client
// id, sub the username, aud the login host, exp three minutes from now
// (the most Salesforce accepts), RS256.
func (c *Client) jwtAssertion(conn *Connection) (string, error) {
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(conn.PrivateKeyPEM))
	if err != nil {
		return "", errors.New("the stored JWT private key cannot be read")
	}
	claims := JWTClaims{
		Issuer:   conn.ClientID,
		Subject:  conn.Username,
		Audience: c.audienceFor(conn.LoginURL),
		Expires:  c.cfg.Now().Add(3 * time.Minute).Unix(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
}

// jwtGrant runs the JWT bearer grant and returns the connection with the
// new token.
func (c *Client) jwtGrant(ctx context.Context, orgID string, conn *Connection) (*Connection, error) {
	assertion, err := c.jwtAssertion(conn)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {jwtGrantType}, "assertion": {assertion}}
	t, err := c.postToken(ctx, orgID, conn.LoginURL+"/services/oauth2/token", form)
	if err != nil {
		return nil, err
	}
	out := conn.Clone()
	t.RefreshToken = ""
	if err := c.apply(out, *t); err != nil {
		return nil, err
	}
	return out, nil
}

// postForm posts a form to an OAuth endpoint.
func (c *Client) postForm(ctx context.Context, orgID, endpoint string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(withOrg(ctx, orgID), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, redactURLError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// postToken posts a form to a token endpoint and reads the answer.
func (c *Client) postToken(ctx context.Context, orgID, endpoint string, form url.Values) (*token, error) {
	status, body, err := c.postForm(ctx, orgID, endpoint, form)
	if err != nil {
		return nil, err
	}
	var t token
	jsonErr := json.Unmarshal(body, &t)
	if t.Error != "" {
		return nil, &oauthError{Code: t.Error, Description: scrub(t.Description)}
	}
	if status != http.StatusOK || jsonErr != nil {
		return nil, fmt.Errorf("token endpoint answered HTTP %d", status)
	}
	return &t, nil
}

// grant gets a new access token for a connection: the refresh token grant
// (web server flow) or a new JWT bearer grant.
func (c *Client) grant(ctx context.Context, orgID string, conn *Connection) (*Connection, error) {
	if conn.Flow == FlowJWT {
		return c.jwtGrant(ctx, orgID, conn)
	}
	if conn.RefreshToken == "" {
		return nil, &oauthError{Code: "invalid_grant", Description: "no refresh token stored"}
	}
	loginURL := conn.LoginURL
	if loginURL == "" {
		loginURL = c.cfg.LoginURL
	}
	octx := context.WithValue(withOrg(ctx, orgID), oauth2.HTTPClient, c.http)
	tok, err := c.oauthConfig(loginURL).TokenSource(octx, &oauth2.Token{RefreshToken: conn.RefreshToken}).Token()
	if err != nil {
		return nil, err
	}
	out := conn.Clone()
	if err := c.apply(out, tokenFromOAuth2(tok)); err != nil {
		return nil, err
	}
	return out, nil
}

// refresh replaces the access token usedToken that Salesforce rejected.
// Refreshes of one org are serialized: a caller that waited finds the
// token already replaced and uses the new one. A rotated refresh token is
// stored with a compare-and-swap, and a refused grant takes the connection
// offline unless another process has meanwhile stored a newer token.
func (c *Client) refresh(ctx context.Context, orgID, usedToken string) (*Connection, error) {
	st := c.org(orgID)
	st.refreshMu.Lock()
	defer st.refreshMu.Unlock()
	conn, err := c.connection(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if conn.AccessToken != usedToken {
		return conn, nil
	}
	fresh, err := c.grant(ctx, orgID, conn)
	if err != nil {
		oe, ok := asOAuthError(err)
		if !ok || !oe.brokenAuthorization() {
			return nil, &switchboard.CRMError{Code: CodeUnavailable, Message: "the Salesforce access token could not be refreshed: " + scrub(redactURLError(err).Error()), Retryable: true}
		}
		if latest, lerr := c.store.LoadConnection(ctx, orgID); lerr == nil && !latest.Offline &&
			(latest.RefreshToken != conn.RefreshToken || latest.AccessToken != conn.AccessToken) {
			return latest, nil // another process refreshed or re-authorized meanwhile
		}
		reason := "Salesforce refused the stored authorization: " + oe.Error()
		if err := c.store.SetOffline(ctx, orgID, reason); err != nil {
			c.cfg.Logger.Error("salesforce: cannot mark connection offline", "org", orgID, "err", err)
		}
		c.cfg.Logger.Warn("salesforce: connection offline", "org", orgID, "reason", reason)
		return nil, offlineError(reason)
	}
	stored, err := c.store.UpdateTokens(ctx, orgID, conn.RefreshToken, fresh)
	if err != nil {
		c.cfg.Logger.Error("salesforce: cannot store refreshed token", "org", orgID, "err", err)
		return fresh, nil
	}
	if stored.Offline {
		return nil, offlineError(stored.OfflineReason)
	}
	if stored.Mapping.IsZero() {
		stored.Mapping = DefaultMapping()
	}
	stored.Mapping = stored.Mapping.WithDefaults()
	return stored, nil
}

// Revoke revokes the org's authorization at Salesforce (the refresh token
// and its access tokens; the access token for JWT connections) and marks
// the connection offline. The connection is marked offline even when
// Salesforce cannot be reached; the error then says so.
func (c *Client) Revoke(ctx context.Context, orgID string) error {
	if c.cfgErr != nil {
		return c.cfgErr
	}
	conn, err := c.store.LoadConnection(ctx, orgID)
	if err != nil {
		return err
	}
	tok := conn.RefreshToken
	if tok == "" {
		tok = conn.AccessToken
	}
	base := conn.LoginURL
	if base == "" {
		base = conn.InstanceURL
	}
	var revokeErr error
	if tok != "" {
		status, body, err := c.postForm(ctx, orgID, base+"/services/oauth2/revoke", url.Values{"token": {tok}})
		var t token
		_ = json.Unmarshal(body, &t)
		switch {
		case err != nil:
			revokeErr = switchboard.Wrap(err, switchboard.EUnavailable, "Salesforce could not be reached to revoke the authorization; revoke it under Setup > Connected Apps OAuth Usage")
		case status == http.StatusOK, t.Error == "invalid_token":
			// revoked now, or already
		default:
			why := fmt.Sprintf("HTTP %d", status)
			if t.Error != "" {
				why = (&oauthError{Code: t.Error, Description: scrub(t.Description)}).Error()
			}
			revokeErr = switchboard.Errorf(switchboard.EUnavailable, "Salesforce refused to revoke the authorization (%s); revoke it under Setup > Connected Apps OAuth Usage", why)
		}
	}
	if err := c.store.SetOffline(ctx, orgID, "authorization revoked in Switchboard"); err != nil {
		return err
	}
	return revokeErr
}
