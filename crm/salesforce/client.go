package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard"
)

// maxBody bounds what is read of any response.
const maxBody = 32 << 20

// Client talks to Salesforce for every org connected to it. It is safe for
// concurrent use; state that must survive a restart lives in the Store.
type Client struct {
	cfg    Config
	cfgErr error
	store  Store
	http   *http.Client

	mu   sync.Mutex
	orgs map[string]*orgState
}

// orgState is what the client remembers of one org in memory.
type orgState struct {
	// refreshMu serializes token refreshes of the org.
	refreshMu sync.Mutex

	mu         sync.Mutex
	used, max  int
	readAt     time.Time
	limitUntil time.Time
}

var _ switchboard.CRM = (*Client)(nil)

// New returns a client. A configuration error (see Config.Validate) is
// returned by every call.
func New(cfg Config, store Store) *Client {
	c := &Client{cfgErr: cfg.Validate(), cfg: cfg.withDefaults(), store: store, orgs: map[string]*orgState{}}
	hc := *c.cfg.HTTPClient
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &limitTransport{base: base, c: c}
	c.http = &hc
	return c
}

func (c *Client) org(orgID string) *orgState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.orgs[orgID]
	if !ok {
		st = &orgState{}
		c.orgs[orgID] = st
	}
	return st
}

type orgKey struct{}

func withOrg(ctx context.Context, orgID string) context.Context {
	return context.WithValue(ctx, orgKey{}, orgID)
}

// limitTransport reads Sforce-Limit-Info on every response of a request
// made for an org.
type limitTransport struct {
	base http.RoundTripper
	c    *Client
}

func (t *limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		if orgID, ok := r.Context().Value(orgKey{}).(string); ok {
			if used, max, ok := ParseLimitInfo(resp.Header.Get("Sforce-Limit-Info")); ok {
				t.c.recordUsage(orgID, used, max)
			}
		}
	}
	return resp, err
}

// Error codes of CRMErrors made by the client itself (Salesforce's own
// codes are passed through).
const (
	CodeNotConnected     = "not_connected"
	CodeInvalidGrant     = "invalid_grant"
	CodeUnavailable      = "unavailable"
	CodeInvalidInput     = "INVALID_INPUT"
	CodeUnmappedRecord   = "UNMAPPED_RECORD"
	CodeRequestLimit     = "REQUEST_LIMIT_EXCEEDED"
	CodeInvalidSession   = "INVALID_SESSION_ID"
	CodeUnableToLockRow  = "UNABLE_TO_LOCK_ROW"
	codeRolledBack       = "ALL_OR_NONE_OPERATION_ROLLED_BACK"
	codeProcessingHalted = "PROCESSING_HALTED"
)

func offlineError(reason string) *switchboard.CRMError {
	msg := "the Salesforce authorization is no longer valid; an admin must authorize Switchboard again"
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return &switchboard.CRMError{Code: CodeInvalidGrant, Message: msg, Offline: true}
}

// connection loads the org's connection; an offline or missing one is an
// Offline CRMError.
func (c *Client) connection(ctx context.Context, orgID string) (*Connection, error) {
	if c.cfgErr != nil {
		return nil, c.cfgErr
	}
	if orgID == "" {
		return nil, switchboard.FieldError("org", "org is required")
	}
	conn, err := c.store.LoadConnection(ctx, orgID)
	if err != nil {
		if switchboard.IsCode(err, switchboard.ENotFound) {
			return nil, &switchboard.CRMError{Code: CodeNotConnected, Message: "Salesforce is not connected: an admin must authorize Switchboard", Offline: true}
		}
		return nil, err
	}
	if conn.Offline {
		return nil, offlineError(conn.OfflineReason)
	}
	if conn.Mapping.IsZero() {
		conn.Mapping = DefaultMapping()
	}
	conn.Mapping = conn.Mapping.WithDefaults()
	return conn, nil
}

// Online reports, without calling Salesforce, whether the org's connection
// can be used: a *switchboard.CRMError with Offline set while it is held
// (not authorized yet, revoked, refused).
func (c *Client) Online(ctx context.Context, orgID string) error {
	_, err := c.connection(ctx, orgID)
	return err
}

// apiRequest is one REST call. URL is absolute, or a path on the instance.
type apiRequest struct {
	method string
	url    string
	body   any
	// retrySafe marks a POST whose effect is idempotent (a /composite
	// request of upserts and updates by id), so it is sent again after a
	// transport failure like a PATCH.
	retrySafe bool
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// idempotent reports whether a request may be sent again after a
// transport failure.
func (r apiRequest) idempotent() bool {
	return r.retrySafe || r.method == http.MethodGet || r.method == http.MethodPatch || r.method == http.MethodDelete
}

// do sends a REST call for an org: it refreshes the token once on 401,
// retries 5xx answers, and turns error answers into *switchboard.CRMError.
func (c *Client) do(ctx context.Context, orgID string, req apiRequest) (*apiResponse, error) {
	if err := c.limitBackoff(orgID); err != nil {
		return nil, err
	}
	conn, err := c.connection(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if !conn.ExpiresAt.IsZero() && !c.cfg.Now().Before(conn.ExpiresAt.Add(-time.Minute)) {
		if conn, err = c.refresh(ctx, orgID, conn.AccessToken); err != nil {
			return nil, err
		}
	}
	refreshed := false
	retries := 0
	for {
		resp, err := c.send(ctx, orgID, conn, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if req.idempotent() && retries < c.cfg.MaxRetries {
				retries++
				if err := c.cfg.Sleep(ctx, c.cfg.Backoff(retries)); err != nil {
					return nil, err
				}
				continue
			}
			return nil, &switchboard.CRMError{Code: CodeUnavailable, Message: "Salesforce could not be reached: " + scrub(err.Error()), Retryable: true}
		}
		switch {
		case resp.status == http.StatusUnauthorized && !refreshed:
			refreshed = true
			if conn, err = c.refresh(ctx, orgID, conn.AccessToken); err != nil {
				return nil, err
			}
			continue
		case resp.status == http.StatusUnauthorized:
			e := apiError(resp)
			e.Message = "Salesforce rejected a freshly refreshed session: " + e.Message
			e.Retryable = true
			return nil, e
		case resp.status >= 500:
			if retries < c.cfg.MaxRetries {
				retries++
				if err := c.cfg.Sleep(ctx, c.cfg.Backoff(retries)); err != nil {
					return nil, err
				}
				continue
			}
			e := apiError(resp)
			e.Retryable = true
			return nil, e
		case resp.status >= 400:
			e := apiError(resp)
			if e.Code == CodeRequestLimit {
				return nil, c.hitLimit(orgID, resp)
			}
			return nil, e
		}
		return resp, nil
	}
}

// send makes one HTTP request with the connection's token.
func (c *Client) send(ctx context.Context, orgID string, conn *Connection, req apiRequest) (*apiResponse, error) {
	target := req.url
	if strings.HasPrefix(target, "/") {
		target = conn.InstanceURL + target
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(withOrg(ctx, orgID), req.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	hr.Header.Set("Authorization", "Bearer "+conn.AccessToken)
	hr.Header.Set("Accept", "application/json")
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, redactURLError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return &apiResponse{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// redactURLError drops the URL (which may hold a query with record data)
// from a transport error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// sfError is one element of a REST error array.
type sfError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

// subrequestError reads the error answer of a composite subrequest: 5xx
// answers and retryable codes (such as UNABLE_TO_LOCK_ROW) may be retried.
func subrequestError(status int, body []byte) *switchboard.CRMError {
	e := parseAPIError(body)
	if e.Code == "" {
		e.Code = fmt.Sprintf("HTTP_%d", status)
	}
	e.Retryable = status >= 500 || retryableCode(e.Code)
	return e
}

// apiError reads a REST error answer: an array of {message, errorCode,
// fields}, or anything else.
func apiError(resp *apiResponse) *switchboard.CRMError {
	e := parseAPIError(resp.body)
	if e.Code == "" {
		e.Code = fmt.Sprintf("HTTP_%d", resp.status)
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("Salesforce answered HTTP %d", resp.status)
	}
	return e
}

// parseAPIError reads an error body; it never fails.
func parseAPIError(body []byte) *switchboard.CRMError {
	var arr []sfError
	if err := json.Unmarshal(body, &arr); err != nil || len(arr) == 0 {
		var one sfError
		if err := json.Unmarshal(body, &one); err != nil || (one.ErrorCode == "" && one.Message == "") {
			return &switchboard.CRMError{}
		}
		arr = []sfError{one}
	}
	e := &switchboard.CRMError{Code: arr[0].ErrorCode}
	var msgs []string
	for _, a := range arr {
		if a.Message != "" {
			msgs = append(msgs, a.Message)
		}
		e.Fields = append(e.Fields, a.Fields...)
	}
	e.Message = strings.Join(msgs, "; ")
	if len(e.Fields) > 0 && !mentionsAll(e.Message, e.Fields) {
		e.Message += " (fields: " + strings.Join(e.Fields, ", ") + ")"
	}
	e.Message = scrub(e.Message)
	return e
}

func mentionsAll(msg string, fields []string) bool {
	for _, f := range fields {
		if !strings.Contains(msg, f) {
			return false
		}
	}
	return true
}

var phoneLikeRE = regexp.MustCompile(`\+?\d[\d\s().-]{5,}\d`)

// scrub makes a message from Salesforce safe to keep: phone-like digit runs
// are masked (Salesforce echoes values in some messages) and it is bounded.
func scrub(s string) string {
	s = phoneLikeRE.ReplaceAllStringFunc(s, func(m string) string {
		digits := 0
		for _, r := range m {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if digits < 7 {
			return m
		}
		var b strings.Builder
		for _, r := range m {
			if r >= '0' && r <= '9' {
				b.WriteByte('#')
			} else {
				b.WriteRune(r)
			}
		}
		out := []byte(b.String())
		// keep the last two digits, as switchboard.MaskPhone does
		kept := 0
		for i := len(m) - 1; i >= 0 && kept < 2; i-- {
			if m[i] >= '0' && m[i] <= '9' {
				out[i] = m[i]
				kept++
			}
		}
		return string(out)
	})
	const max = 500
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// dataPath returns the path of a REST resource of the configured version.
func (c *Client) dataPath(format string, args ...any) string {
	return "/services/data/" + c.cfg.APIVersion + fmt.Sprintf(format, args...)
}
