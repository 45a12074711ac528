package sftest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTBearerGrant is the grant type of the JWT bearer flow.
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// codeLifetime is how long an authorization code can be exchanged.
const codeLifetime = 15 * time.Minute

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func oauthErrorResponse(status int, code, description string) *response {
	return jsonResponse(status, map[string]string{"error": code, "error_description": description})
}

// Authorize plays the admin who logs in as username and clicks Allow on
// the page of authURL (from the client's AuthCodeURL): it checks the
// request as Salesforce does and returns the code and state the callback
// would receive.
func (s *Server) Authorize(authURL, username string) (code, state string, err error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authorizeLocked(u.Query(), username)
}

func (s *Server) authorizeLocked(q url.Values, username string) (string, string, error) {
	switch {
	case q.Get("response_type") != "code":
		return "", "", errors.New("unsupported_response_type: response type not supported")
	case q.Get("client_id") != s.clientID:
		return "", "", errors.New("invalid_client_id: client identifier invalid")
	case q.Get("redirect_uri") == "":
		return "", "", errors.New("invalid_request: missing redirect_uri")
	case s.redirectURL != "" && q.Get("redirect_uri") != s.redirectURL:
		return "", "", errors.New("redirect_uri_mismatch: redirect_uri must match configuration")
	}
	method := q.Get("code_challenge_method")
	if q.Get("code_challenge") != "" && method != "" && method != "S256" {
		return "", "", errors.New("invalid_request: unsupported code_challenge_method")
	}
	userID, ok := s.usernames[username]
	if !ok {
		return "", "", errors.New("unknown user " + username)
	}
	code := "aPrx" + randomToken(24)
	s.codes[code] = &authCode{userID: userID, redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), method: method, issued: s.now()}
	return code, q.Get("state"), nil
}

// authorizeHTTP serves GET /services/oauth2/authorize as if the default
// user (or login_hint) logged in and allowed access.
func (s *Server) authorizeHTTP(r *http.Request) *response {
	q := r.URL.Query()
	username := q.Get("login_hint")
	if username == "" {
		username = DefaultUsername
	}
	code, state, err := s.authorizeLocked(q, username)
	if err != nil {
		return &response{status: http.StatusBadRequest, header: http.Header{"Content-Type": {"text/plain"}}, body: []byte(err.Error())}
	}
	target, _ := url.Parse(q.Get("redirect_uri"))
	v := target.Query()
	v.Set("code", code)
	if state != "" {
		v.Set("state", state)
	}
	target.RawQuery = v.Encode()
	return &response{status: http.StatusFound, header: http.Header{"Location": {target.String()}}}
}

// token serves POST /services/oauth2/token.
func (s *Server) token(r *http.Request, body []byte) *response {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return oauthErrorResponse(http.StatusBadRequest, "invalid_request", "malformed request body")
	}
	for k, v := range r.URL.Query() {
		if _, ok := form[k]; !ok {
			form[k] = v
		}
	}
	grant := form.Get("grant_type")
	s.grants[grant]++
	if len(s.tokenFaults) > 0 {
		f := s.tokenFaults[0]
		s.tokenFaults = s.tokenFaults[1:]
		return oauthErrorResponse(http.StatusBadRequest, f.code, f.description)
	}
	switch grant {
	case "authorization_code":
		return s.codeGrant(form)
	case "refresh_token":
		return s.refreshGrant(form)
	case JWTBearerGrant:
		return s.jwtGrant(form)
	case "":
		return oauthErrorResponse(http.StatusBadRequest, "invalid_request", "grant type is missing")
	}
	return oauthErrorResponse(http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
}

func (s *Server) checkClient(form url.Values, secretRequired bool) *response {
	if form.Get("client_id") != s.clientID {
		return oauthErrorResponse(http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
	}
	secret := form.Get("client_secret")
	if (secretRequired || secret != "") && secret != s.clientSecret {
		return oauthErrorResponse(http.StatusBadRequest, "invalid_client", "invalid client credentials")
	}
	return nil
}

func (s *Server) codeGrant(form url.Values) *response {
	if resp := s.checkClient(form, true); resp != nil {
		return resp
	}
	c, ok := s.codes[form.Get("code")]
	switch {
	case !ok || c.used:
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "invalid authorization code")
	case s.now().Sub(c.issued) > codeLifetime:
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "expired authorization code")
	case form.Get("redirect_uri") != c.redirectURI:
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "redirect_uri must match configuration")
	}
	c.used = true
	if c.challenge != "" {
		verifier := form.Get("code_verifier")
		if verifier == "" {
			return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "invalid code verifier")
		}
		sum := sha256.Sum256([]byte(verifier))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			// Salesforce answers a verifier that does not match the
			// challenge as a bad grant, not a bad request.
			return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "invalid code verifier")
		}
	}
	rt := "5Aep" + randomToken(32)
	s.refresh[rt] = &refreshToken{userID: c.userID}
	return jsonResponse(http.StatusOK, s.issue(c.userID, rt, true, "api refresh_token offline_access id"))
}

func (s *Server) refreshGrant(form url.Values) *response {
	if resp := s.checkClient(form, false); resp != nil {
		return resp
	}
	old := form.Get("refresh_token")
	rt, ok := s.refresh[old]
	if !ok || rt.revoked {
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "expired access/refresh token")
	}
	family := old
	body := s.issue(rt.userID, family, false, "api refresh_token offline_access id")
	if s.rotate {
		rt.revoked = true
		next := "5Aep" + randomToken(32)
		s.refresh[next] = &refreshToken{userID: rt.userID}
		// the new access token belongs to the new refresh token
		s.access[body["access_token"].(string)].refresh = next
		body["refresh_token"] = next
	}
	return jsonResponse(http.StatusOK, body)
}

// issue creates an access token and the token response body; the refresh
// token is included when withRefresh is set.
func (s *Server) issue(userID, refresh string, withRefresh bool, scope string) map[string]any {
	at := s.orgID[:15] + "!AQ" + randomToken(40)
	tok := &accessToken{userID: userID, refresh: refresh}
	body := map[string]any{
		"access_token": at,
		"signature":    randomToken(32),
		"scope":        scope,
		"instance_url": "https://" + s.instanceHost,
		"id":           "https://" + s.loginHost() + "/id/" + s.orgID + "/" + userID,
		"token_type":   "Bearer",
		"issued_at":    strconv.FormatInt(s.now().UnixMilli(), 10),
	}
	if withRefresh && refresh != "" {
		body["refresh_token"] = refresh
	}
	if s.expiresIn > 0 {
		body["expires_in"] = s.expiresIn
		tok.expires = s.now().Add(time.Duration(s.expiresIn) * time.Second)
	}
	s.access[at] = tok
	return body
}

var errUnknownIssuer = errors.New("unknown issuer")

func (s *Server) jwtGrant(form url.Values) *response {
	assertion := form.Get("assertion")
	if assertion == "" {
		return oauthErrorResponse(http.StatusBadRequest, "invalid_request", "assertion is missing")
	}
	aud := "https://" + s.loginHost()
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithTimeFunc(s.now),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(aud),
	)
	tok, err := parser.ParseWithClaims(assertion, claims, func(t *jwt.Token) (any, error) {
		iss, _ := claims["iss"].(string)
		key, ok := s.jwtKeys[iss]
		if !ok {
			return nil, errUnknownIssuer
		}
		return key, nil
	})
	if tok != nil {
		s.lastJWT = &Assertion{Header: tok.Header, Claims: claims}
	}
	switch {
	case errors.Is(err, errUnknownIssuer):
		return oauthErrorResponse(http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "audience is invalid")
	case errors.Is(err, jwt.ErrTokenExpired):
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "expired assertion")
	case err != nil:
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "invalid assertion")
	}
	exp, _ := claims.GetExpirationTime()
	if exp.After(s.now().Add(3 * time.Minute)) {
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", fmt.Sprintf("invalid assertion: exp must be within 3 minutes, is %s ahead", exp.Sub(s.now()).Round(time.Second)))
	}
	sub, _ := claims["sub"].(string)
	userID, ok := s.usernames[sub]
	if !ok {
		return oauthErrorResponse(http.StatusBadRequest, "invalid_grant", "user hasn't approved this consumer")
	}
	return jsonResponse(http.StatusOK, s.issue(userID, "", false, "api id"))
}

// revokeToken serves POST /services/oauth2/revoke: a refresh token is
// revoked with its access tokens, an access token alone.
func (s *Server) revokeToken(r *http.Request, body []byte) *response {
	form, _ := url.ParseQuery(string(body))
	tok := form.Get("token")
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if rt, ok := s.refresh[tok]; ok && !rt.revoked {
		rt.revoked = true
		for _, at := range s.access {
			if at.refresh == tok {
				at.revoked = true
			}
		}
		return &response{status: http.StatusOK}
	}
	if at, ok := s.access[tok]; ok && !at.revoked {
		at.revoked = true
		return &response{status: http.StatusOK}
	}
	return oauthErrorResponse(http.StatusBadRequest, "invalid_token", "Invalid token")
}

// identity serves the identity URL /id/{orgId}/{userId}.
func (s *Server) identity(r *http.Request) *response {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	at := s.access[tok]
	if at == nil || at.revoked || (!at.expires.IsZero() && !s.now().Before(at.expires)) {
		return &response{status: http.StatusForbidden, header: http.Header{"Content-Type": {"text/plain"}}, body: []byte("Bad_OAuth_Token")}
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/id/"), "/")
	if len(parts) != 2 || parts[0] != s.orgID {
		return errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
	u, ok := s.users[parts[1]]
	if !ok {
		return errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
	base := "https://" + s.instanceHost + "/services/data/v{version}/"
	return jsonResponse(http.StatusOK, map[string]any{
		"id":              "https://" + s.loginHost() + "/id/" + s.orgID + "/" + u.id,
		"asserted_user":   true,
		"user_id":         u.id,
		"organization_id": s.orgID,
		"username":        u.username,
		"nick_name":       strings.Split(u.username, "@")[0],
		"display_name":    u.username,
		"email":           u.username,
		"active":          true,
		"user_type":       "STANDARD",
		"urls": map[string]string{
			"rest":     base,
			"sobjects": base + "sobjects/",
			"query":    base + "query/",
		},
	})
}
