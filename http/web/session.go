package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	sb "github.com/switchboard/switchboard"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/store"
)

// Cookie names. With Secure cookies the session cookie takes the __Host-
// prefix, which browsers only accept from a secure origin for the whole
// host.
const (
	sessionCookie       = "sb_session"
	secureSessionCookie = "__Host-sb_session"
	loginCookie         = "sb_login"
)

// touchEvery bounds how often a session's last use is written.
const touchEvery = time.Minute

func (u *UI) sessionCookieName() string {
	if u.d.SecureCookies {
		return secureSessionCookie
	}
	return sessionCookie
}

// newToken returns 32 random bytes, URL-safe base64.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// handler is a page or action of a signed-in user.
type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx)

// authed wraps h: the request must come from a signed-in user holding perm
// (none when perm is ""), and a request that changes anything must carry
// the session's CSRF token.
func (u *UI) authed(perm sb.Permission, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc, err := u.session(r)
		if err != nil {
			u.fail(w, r, nil, err)
			return
		}
		if rc == nil {
			u.toLogin(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := u.readForm(w, r); err != nil {
				u.fail(w, r, rc, err)
				return
			}
			if err := u.checkCSRF(r, rc); err != nil {
				u.fail(w, r, rc, err)
				return
			}
		}
		if perm != "" {
			if err := rc.User.Require(perm); err != nil {
				u.fail(w, r, rc, err)
				return
			}
		}
		h(w, r, rc)
	}
}

// toLogin sends a visitor without a (valid) session to the sign-in page,
// coming back to the page asked for afterwards.
func (u *UI) toLogin(w http.ResponseWriter, r *http.Request) {
	to := "/ui/login"
	if r.Method == http.MethodGet && !isHTMX(r) {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// session returns the signed-in user of the request, or nil when there is
// no session or it has expired (idle too long, or too old).
func (u *UI) session(r *http.Request) (*reqCtx, error) {
	c, err := r.Cookie(u.sessionCookieName())
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	ctx := r.Context()
	hash := tokenHash(c.Value)
	s, err := u.d.DB.Session(ctx, hash)
	if sb.IsCode(err, sb.ENotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := u.d.Now()
	if now.Sub(s.LastSeenAt) > u.d.SessionIdle || now.Sub(s.CreatedAt) > u.d.SessionMaxAge {
		return nil, u.d.DB.DeleteSession(ctx, hash)
	}
	user, err := u.d.DB.User(ctx, s.OrgID, s.UserID)
	if sb.IsCode(err, sb.ENotFound) {
		return nil, u.d.DB.DeleteSession(ctx, hash)
	}
	if err != nil {
		return nil, err
	}
	org, err := u.d.DB.Org(ctx, s.OrgID)
	if err != nil {
		return nil, err
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		if err := u.d.DB.TouchSession(ctx, hash, now); err != nil {
			return nil, err
		}
	}
	return &reqCtx{User: user, Org: org, Session: s}, nil
}

// readForm parses the request body (URL-encoded or multipart) within the
// size limit of the route.
func (u *UI) readForm(w http.ResponseWriter, r *http.Request) error {
	limit := int64(maxFormBytes)
	if strings.HasPrefix(r.URL.Path, "/ui/bulk/") {
		limit = maxBulkBytes
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	if ct == "multipart/form-data" {
		err = r.ParseMultipartForm(8 << 20)
	} else {
		err = r.ParseForm()
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return sb.Errorf(sb.ETooLarge, "the form is larger than %d MB", limit>>20)
	case err != nil:
		return sb.Errorf(sb.EInvalid, "the form could not be read")
	}
	return nil
}

// errCSRF is the answer to a change request without the session's token.
var errCSRF = sb.Errorf(sb.EForbidden, "this form has expired or did not come from a Switchboard page; reload the page and try again")

// checkCSRF requires the session's CSRF token, in the X-CSRF-Token header
// (htmx) or the csrf form field, compared in constant time, and refuses
// cross-origin browser requests.
func (u *UI) checkCSRF(r *http.Request, rc *reqCtx) error {
	if err := u.cop.Check(r); err != nil {
		return errCSRF
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(rc.Session.CSRFToken)) != 1 {
		return errCSRF
	}
	return nil
}

// --- sign-in ---

type loginData struct {
	Email string
	Next  string
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	if rc, err := u.session(r); err == nil && rc != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	notice := ""
	if r.URL.Query().Get("signed_out") != "" {
		notice = "You have signed out."
	}
	u.renderLogin(w, r, http.StatusOK, loginData{Next: localPath(r.URL.Query().Get("next"))}, notice, "")
}

// renderLogin shows the sign-in form with a fresh double-submit token: the
// same random value in a cookie and in the form.
func (u *UI) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData, notice, errMsg string) {
	tok := newToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/ui/login", MaxAge: 3600, HttpOnly: true,
		Secure: u.d.SecureCookies, SameSite: http.SameSiteStrictMode})
	p := u.newPage(r, nil, "login", "Sign in", d)
	p.CSRF, p.Notice, p.Error = tok, notice, errMsg
	u.render(w, status, "login", p)
}

var (
	dummyOnce sync.Once
	dummyHash string
)

// timingHash is a bcrypt hash checked when the user is unknown or has no
// password, so every failed sign-in costs the same time.
func timingHash() string {
	dummyOnce.Do(func() { dummyHash, _ = sbhttp.HashPassword("switchboard-timing-equaliser") })
	return dummyHash
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if err := u.readForm(w, r); err != nil {
		u.renderLogin(w, r, sbhttp.StatusOf(sb.ErrorCode(err)), loginData{}, "", sb.ErrorMessage(err))
		return
	}
	ctx := r.Context()
	d := loginData{Email: strings.TrimSpace(r.PostFormValue("email")), Next: localPath(r.PostFormValue("next"))}
	c, err := r.Cookie(loginCookie)
	form := r.PostFormValue("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 || u.cop.Check(r) != nil {
		u.renderLogin(w, r, http.StatusForbidden, d, "", "The sign-in form expired. Please try again.")
		return
	}
	password := r.PostFormValue("password")
	if d.Email == "" || password == "" {
		u.renderLogin(w, r, http.StatusBadRequest, d, "", "Enter your email address and password.")
		return
	}
	now := u.d.Now()
	hasher := u.d.DB.Hasher()
	emailKey := hasher.Phone("ui-login-email:" + strings.ToLower(d.Email))
	addrKey := hasher.Phone("ui-login-addr:" + clientAddr(r))
	for _, lim := range []struct {
		key []byte
		max int
	}{{emailKey, u.d.MaxFailuresPerUser}, {addrKey, u.d.MaxFailuresPerAddr}} {
		n, oldest, err := u.d.DB.LoginFailures(ctx, lim.key, now.Add(-LoginWindow))
		if err != nil {
			u.fail(w, r, nil, err)
			return
		}
		if n >= lim.max {
			wait := max(1, int(math.Ceil(oldest.Add(LoginWindow).Sub(now).Minutes())))
			w.Header().Set("Retry-After", fmt.Sprint(wait*60))
			u.renderLogin(w, r, http.StatusTooManyRequests, d, "",
				fmt.Sprintf("Too many failed sign-ins. Try again in %d minute%s.", wait, plural(wait)))
			return
		}
	}
	user, hash, err := u.d.DB.UserByEmail(ctx, d.Email)
	if err != nil && !sb.IsCode(err, sb.ENotFound) {
		u.fail(w, r, nil, err)
		return
	}
	ok := false
	if user != nil && hash != "" {
		ok = sbhttp.CheckPassword(hash, password)
	} else {
		sbhttp.CheckPassword(timingHash(), password)
	}
	if !ok {
		if err := u.d.DB.RecordLoginFailure(ctx, [][]byte{emailKey, addrKey}, now, now.Add(-LoginWindow)); err != nil {
			u.fail(w, r, nil, err)
			return
		}
		u.d.Log.Info("ui sign-in failed")
		u.renderLogin(w, r, http.StatusUnauthorized, d, "", "The email address or password is not right.")
		return
	}
	if old, err := r.Cookie(u.sessionCookieName()); err == nil {
		_ = u.d.DB.DeleteSession(ctx, tokenHash(old.Value))
	}
	token := newToken()
	s := &store.Session{TokenHash: tokenHash(token), OrgID: user.OrgID, UserID: user.ID, CSRFToken: newToken(), CreatedAt: now, LastSeenAt: now}
	if err := u.d.DB.CreateSession(ctx, s); err != nil {
		u.fail(w, r, nil, err)
		return
	}
	_ = u.d.DB.ClearLoginFailures(ctx, emailKey)
	if _, err := u.d.DB.DeleteExpiredSessions(ctx, now.Add(-u.d.SessionIdle), now.Add(-u.d.SessionMaxAge)); err != nil {
		u.d.Log.Warn("delete expired sessions", "err", err)
	}
	http.SetCookie(w, &http.Cookie{Name: u.sessionCookieName(), Value: token, Path: "/", MaxAge: int(u.d.SessionMaxAge.Seconds()),
		HttpOnly: true, Secure: u.d.SecureCookies, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/ui/login", MaxAge: -1, HttpOnly: true, Secure: u.d.SecureCookies})
	u.d.Log.Info("ui sign-in", "user", user.ID)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := u.d.DB.DeleteSession(r.Context(), rc.Session.TokenHash); err != nil {
		u.fail(w, r, rc, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: u.sessionCookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: u.d.SecureCookies, SameSite: http.SameSiteLaxMode})
	redirect(w, r, "/ui/login?signed_out=1")
}

// clientAddr is the client's IP address as the connection shows it.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
