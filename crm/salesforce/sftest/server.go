// Package sftest is a fake Salesforce for tests: an httptest TLS server
// that behaves as Salesforce documents its OAuth 2.0 endpoints (web server
// flow with PKCE, refresh tokens with optional rotation, JWT bearer,
// revoke, identity URLs) and the parts of the REST API Switchboard uses
// (sObjects, describe, sObject Collections create, update and upsert by
// external id, Composite with references and Salesforce's limits of 25
// subrequests of which 5 collections or queries, SOQL queries with
// nextRecordsUrl paging, the limits resource, error arrays, 401
// INVALID_SESSION_ID, Sforce-Limit-Info on every response), with controls to inspect records, count calls, inject faults
// and lose answers of calls that were carried out.
//
// HTTPClient returns a client that sends every host to the fake, so tests
// use real-looking URLs: https://login.salesforce.com for logins and
// https://acme.my.salesforce.com (InstanceURL) for the org's instance.
package sftest

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults of a new server.
const (
	DefaultClientID     = "3MVG9switchboard.fake.consumer.key"
	DefaultClientSecret = "fake-consumer-secret"
	DefaultUsername     = "integration@acme.example"
	DefaultInstanceHost = "acme.my.salesforce.com"
	LoginHost           = "login.salesforce.com"
	SandboxLoginHost    = "test.salesforce.com"
	DefaultAPILimit     = 100000
	DefaultPageSize     = 2000
	// MaxSOQLLength is the longest SOQL statement Salesforce accepts.
	MaxSOQLLength = 100000
	// MaxURILength bounds a request's URI (Salesforce answers a longer one
	// 414 URI Too Long): a long query goes in a /composite request's body.
	MaxURILength = 16384
)

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	t testing.TB

	mu           sync.Mutex
	now          func() time.Time
	clientID     string
	clientSecret string
	redirectURL  string
	orgID        string
	sandbox      bool
	instanceHost string
	pageSize     int
	rotate       bool
	expiresIn    int
	apiUsed      int
	apiMax       int
	seq          int64

	users     map[string]*user // by id
	usernames map[string]string
	codes     map[string]*authCode
	access    map[string]*accessToken
	refresh   map[string]*refreshToken
	jwtKeys   map[string]*rsa.PublicKey
	lastJWT   *Assertion

	objects map[string]*object // by lower-case name
	records map[string]*record
	cursors map[string][]map[string]any

	calls     map[string]int
	grants    map[string]int
	dataCalls int

	failNext     int
	failStatus   int
	failWrites   int
	loseNext     int
	loseStatus   int
	tokenFaults  []tokenFault
	recordFaults []*RecordFault
	latency      latency // SetLatency
}

type user struct{ id, username string }

type authCode struct {
	userID, redirectURI, challenge, method string
	issued                                 time.Time
	used                                   bool
}

type accessToken struct {
	userID  string
	refresh string // the refresh token it came from, if any
	expires time.Time
	revoked bool
}

type refreshToken struct {
	userID  string
	revoked bool
}

type tokenFault struct{ code, description string }

// Assertion is the last JWT bearer assertion the fake received.
type Assertion struct {
	Header map[string]any
	Claims map[string]any
}

// Option configures a Server.
type Option func(*Server)

// WithClient sets the connected app's consumer key and secret.
func WithClient(id, secret string) Option {
	return func(s *Server) { s.clientID, s.clientSecret = id, secret }
}

// WithRedirectURL sets the connected app's callback URL; authorize and
// code exchange then require it.
func WithRedirectURL(u string) Option { return func(s *Server) { s.redirectURL = u } }

// WithClock sets the fake's clock (token expiry, JWT exp checks,
// CreatedDate, LastModifiedDate).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithPageSize sets the number of records per query batch.
func WithPageSize(n int) Option { return func(s *Server) { s.pageSize = n } }

// WithRefreshRotation makes every refresh issue a new refresh token and
// revoke the old one.
func WithRefreshRotation() Option { return func(s *Server) { s.rotate = true } }

// WithExpiresIn adds expires_in (seconds) to token responses, and expires
// access tokens after it.
func WithExpiresIn(seconds int) Option { return func(s *Server) { s.expiresIn = seconds } }

// WithInstanceHost sets the org's instance host.
func WithInstanceHost(host string) Option { return func(s *Server) { s.instanceHost = host } }

// WithSandbox makes the org a sandbox: JWT assertions must have the
// audience https://test.salesforce.com, and identity URLs are on
// test.salesforce.com.
func WithSandbox() Option { return func(s *Server) { s.sandbox = true } }

// WithAPILimit sets the org's daily API request limit.
func WithAPILimit(max int) Option { return func(s *Server) { s.apiMax = max } }

// NewServer starts a fake Salesforce that is closed when the test ends. It
// has one user, DefaultUsername, and the objects Contact (003), Lead (00Q),
// Task (00T), User (005), Switchboard_Message__c (a0S),
// Switchboard_Link_Click__c (a0L) and Switchboard_Form_Response__c (a0F).
func NewServer(t testing.TB, opts ...Option) *Server {
	s := &Server{
		t:            t,
		now:          time.Now,
		clientID:     DefaultClientID,
		clientSecret: DefaultClientSecret,
		instanceHost: DefaultInstanceHost,
		pageSize:     DefaultPageSize,
		apiMax:       DefaultAPILimit,
		users:        map[string]*user{},
		usernames:    map[string]string{},
		codes:        map[string]*authCode{},
		access:       map[string]*accessToken{},
		refresh:      map[string]*refreshToken{},
		jwtKeys:      map[string]*rsa.PublicKey{},
		objects:      map[string]*object{},
		records:      map[string]*record{},
		cursors:      map[string][]map[string]any{},
		calls:        map[string]int{},
		grants:       map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	s.orgID = s.newID("00D")
	for _, o := range defaultObjects() {
		s.objects[strings.ToLower(o.name)] = o
	}
	s.AddUser(DefaultUsername)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut short at Close
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// HTTPClient returns a client that sends requests for any host to the
// fake, trusting its certificate.
func (s *Server) HTTPClient() *http.Client {
	base := s.Server.Client().Transport.(*http.Transport)
	tr := base.Clone()
	tr.TLSClientConfig.ServerName = "example.com" // a name in the test certificate
	addr := s.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (s *Server) loginHost() string {
	if s.sandbox {
		return SandboxLoginHost
	}
	return LoginHost
}

// LoginURL is the login host's URL (https://login.salesforce.com, or
// https://test.salesforce.com for a sandbox).
func (s *Server) LoginURL() string { return "https://" + s.loginHost() }

// InstanceURL is the org's current instance URL.
func (s *Server) InstanceURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "https://" + s.instanceHost
}

// OrgID is the Salesforce org id (00D…).
func (s *Server) OrgID() string { return s.orgID }

// ClientID is the connected app's consumer key.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret is the connected app's consumer secret.
func (s *Server) ClientSecret() string { return s.clientSecret }

// AddUser adds a user who has approved the connected app and returns the
// user id (005…).
func (s *Server) AddUser(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.usernames[username]; ok {
		return id
	}
	id := s.newID("005")
	s.users[id] = &user{id: id, username: username}
	s.usernames[username] = id
	s.insertLocked(s.objects["user"], map[string]any{"Username": username}, id)
	return id
}

// UserID returns the id of a user, or "".
func (s *Server) UserID(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usernames[username]
}

// RegisterJWTKey trusts pub for JWT bearer assertions issued by clientID
// (the certificate uploaded to a connected app).
func (s *Server) RegisterJWTKey(clientID string, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwtKeys[clientID] = pub
}

// LastAssertion returns the last JWT bearer assertion received, or nil.
func (s *Server) LastAssertion() *Assertion {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastJWT
}

// ExpireAccessTokens makes every access token issued so far invalid, as
// when sessions time out.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.access {
		at.revoked = true
	}
}

// RevokeRefreshTokens revokes every refresh token and its access tokens,
// as an admin does under Connected Apps OAuth Usage.
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refresh {
		rt.revoked = true
	}
	for _, at := range s.access {
		if at.refresh != "" {
			at.revoked = true
		}
	}
}

// RefreshTokenValid reports whether a refresh token is known and not
// revoked.
func (s *Server) RefreshTokenValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	return ok && !rt.revoked
}

// MoveInstance moves the org to another instance host: access tokens stop
// working, calls to the old host are refused, and token responses carry
// the new instance_url.
func (s *Server) MoveInstance(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instanceHost = host
	for _, at := range s.access {
		at.revoked = true
	}
}

// SetAPIUsage sets the org's daily API usage; at used >= max every data
// call is refused with REQUEST_LIMIT_EXCEEDED.
func (s *Server) SetAPIUsage(used, max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiUsed, s.apiMax = used, max
}

// APIUsage returns the org's daily API usage and limit.
func (s *Server) APIUsage() (used, max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiUsed, s.apiMax
}

// FailNext answers the next n data API calls with the HTTP status (such as
// 503) and a SERVER_UNAVAILABLE error array.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// FailNextWrites answers the next n data API calls that change records
// (every method but GET) with the HTTP status and a SERVER_UNAVAILABLE
// error array, while queries keep being answered: an outage of Salesforce's
// write path.
func (s *Server) FailNextWrites(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWrites, s.failStatus = n, status
}

// LoseNextAnswers processes the next n data API calls as usual — records
// are saved — but loses their answers, as when a call times out after
// Salesforce committed it: with status 0 the connection is dropped before
// any answer, otherwise the call is answered with that status (such as 500)
// and a SERVER_UNAVAILABLE error array.
func (s *Server) LoseNextAnswers(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseNext, s.loseStatus = n, status
}

// FailNextToken answers the next token request, whatever its grant, with
// the OAuth error (such as "invalid_grant", "authentication failure").
func (s *Server) FailNextToken(code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFaults = append(s.tokenFaults, tokenFault{code, description})
}

// RecordFault makes creates and updates of matching records fail.
type RecordFault struct {
	// Match is a record id or any field value of the record (such as a
	// message's external id).
	Match string
	// Code is the statusCode, such as REQUIRED_FIELD_MISSING or
	// UNABLE_TO_LOCK_ROW.
	Code    string
	Message string
	Fields  []string
	// Times is how often the fault fires; 0 means every time.
	Times int
	fired int
}

// AddRecordFault installs a per-record fault.
func (s *Server) AddRecordFault(f RecordFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Message == "" {
		f.Message = defaultFaultMessage(f.Code, f.Fields)
	}
	s.recordFaults = append(s.recordFaults, &f)
}

// ClearRecordFaults removes the per-record faults: matching records are
// written again.
func (s *Server) ClearRecordFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordFaults = nil
}

// FaultsFired returns how often faults for match have fired.
func (s *Server) FaultsFired(match string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.recordFaults {
		if f.Match == match {
			n += f.fired
		}
	}
	return n
}

func defaultFaultMessage(code string, fields []string) string {
	switch code {
	case "REQUIRED_FIELD_MISSING":
		return "Required fields are missing: [" + strings.Join(fields, ", ") + "]"
	case "UNABLE_TO_LOCK_ROW":
		return "unable to obtain exclusive access to this record or 1 records"
	case "FIELD_CUSTOM_VALIDATION_EXCEPTION":
		return "Validation rule failed"
	}
	return "record rejected by the fake (" + code + ")"
}

// Calls returns how many requests reached an endpoint, keyed as
// "POST /composite/sobjects", "PATCH /composite/sobjects",
// "PATCH /composite/sobjects/{object}/{external id field}" (upserts, such as
// "PATCH /composite/sobjects/Switchboard_Message__c/Switchboard_Id__c"),
// "POST /composite",
// "GET /query", "GET /limits", "GET /sobjects/Contact/describe", "POST /sobjects/Contact",
// "PATCH /sobjects/Contact/{id}", "POST /services/oauth2/token",
// "POST /services/oauth2/revoke", "GET /id".
func (s *Server) Calls(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

// CallCounts returns a copy of all call counters.
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// DataCalls returns how many REST data API requests the fake received.
func (s *Server) DataCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataCalls
}

// TokenGrants returns how many token requests of a grant type
// ("authorization_code", "refresh_token",
// "urn:ietf:params:oauth:grant-type:jwt-bearer") were made.
func (s *Server) TokenGrants(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants[grantType]
}

// ResetCounters sets all call counters to zero.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.grants = map[string]int{}
	s.dataCalls = 0
}

// response is an answer built while the lock is held.
type response struct {
	status int
	header http.Header
	body   []byte
}

func jsonResponse(status int, v any) *response {
	b, _ := json.Marshal(v)
	return &response{status: status, header: http.Header{"Content-Type": {"application/json;charset=UTF-8"}}, body: b}
}

// apiError is one element of a REST error array.
type apiError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}

func errorResponse(status int, code, format string, args ...any) *response {
	return jsonResponse(status, []apiError{{Message: fmt.Sprintf(format, args...), ErrorCode: code}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if len(r.URL.RequestURI()) > MaxURILength {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusRequestURITooLong)
		_, _ = w.Write([]byte(`[{"message":"URI Too Long","errorCode":"URI_TOO_LONG"}]`))
		return
	}
	s.mu.Lock()
	resp := s.dispatch(r, body)
	lose := s.loseNext > 0 && strings.HasPrefix(r.URL.Path, "/services/data/") && resp.status < 400
	if lose {
		s.loseNext--
		if s.loseStatus != 0 {
			resp = errorResponse(s.loseStatus, "SERVER_UNAVAILABLE", "Service temporarily unavailable; try again")
		}
	}
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", s.apiUsed, s.apiMax))
	status := s.loseStatus
	s.mu.Unlock()
	s.latency.hold(r, body)
	if lose && status == 0 {
		panic(http.ErrAbortHandler) // the connection closes without an answer
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func (s *Server) dispatch(r *http.Request, body []byte) *response {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	p := r.URL.Path
	switch {
	case p == "/services/oauth2/token":
		s.calls[r.Method+" "+p]++
		if r.Method != http.MethodPost {
			return errorResponse(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use POST")
		}
		return s.token(r, body)
	case p == "/services/oauth2/revoke":
		s.calls[r.Method+" "+p]++
		return s.revokeToken(r, body)
	case p == "/services/oauth2/authorize":
		s.calls[r.Method+" "+p]++
		return s.authorizeHTTP(r)
	case strings.HasPrefix(p, "/id/"):
		s.calls[r.Method+" /id"]++
		return s.identity(r)
	case strings.HasPrefix(p, "/services/data/"):
		return s.data(r, host, body)
	}
	return errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

// data serves an authenticated REST data API call.
func (s *Server) data(r *http.Request, host string, body []byte) *response {
	s.dataCalls++
	s.calls[r.Method+" "+callKey(r.URL.Path)]++
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	at := s.access[tok]
	if host != s.instanceHost || at == nil || at.revoked || (!at.expires.IsZero() && !s.now().Before(at.expires)) {
		return errorResponse(http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
	}
	if s.apiUsed >= s.apiMax {
		return errorResponse(http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
	}
	s.apiUsed++
	if s.failNext > 0 {
		s.failNext--
		return errorResponse(s.failStatus, "SERVER_UNAVAILABLE", "Service temporarily unavailable; try again")
	}
	if s.failWrites > 0 && changesRecords(r, body) {
		s.failWrites--
		return errorResponse(s.failStatus, "SERVER_UNAVAILABLE", "Service temporarily unavailable; try again")
	}
	q := r.URL.Query().Get("q")
	return s.route(r.Method, r.URL.Path, q, body, at.userID)
}

// changesRecords tells whether a data API call may change records: any
// method but GET, except a composite request whose subrequests are all GETs
// (batched queries).
func changesRecords(r *http.Request, body []byte) bool {
	if r.Method == http.MethodGet {
		return false
	}
	if callKey(r.URL.Path) != "/composite" {
		return true
	}
	var req struct {
		CompositeRequest []struct {
			Method string `json:"method"`
		} `json:"compositeRequest"`
	}
	if json.Unmarshal(body, &req) != nil {
		return true
	}
	for _, sub := range req.CompositeRequest {
		if !strings.EqualFold(sub.Method, http.MethodGet) {
			return true
		}
	}
	return false
}

// callKey names a data API endpoint for the call counters.
func callKey(path string) string {
	rest := path
	if parts := strings.SplitN(strings.TrimPrefix(path, "/services/data/"), "/", 2); len(parts) == 2 {
		rest = "/" + parts[1]
	} else {
		return "/"
	}
	switch {
	case strings.HasPrefix(rest, "/query"):
		return "/query"
	case strings.HasPrefix(rest, "/composite/sobjects/"):
		return rest
	case strings.HasPrefix(rest, "/sobjects/"):
		seg := strings.Split(strings.TrimPrefix(rest, "/sobjects/"), "/")
		switch {
		case len(seg) == 2 && seg[1] == "describe":
			return "/sobjects/" + seg[0] + "/describe"
		case len(seg) == 2:
			return "/sobjects/" + seg[0] + "/{id}"
		case len(seg) == 3:
			return "/sobjects/" + seg[0] + "/" + seg[1] + "/{value}"
		}
	}
	return rest
}

// Record is a copy of a stored record: its fields by API name, with Id,
// OwnerId, CreatedDate and LastModifiedDate.
type Record map[string]any

// Records returns copies of the records of an object in creation order.
func (s *Server) Records(object string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []*record
	for _, r := range s.records {
		if strings.EqualFold(r.obj.name, object) {
			recs = append(recs, r)
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].seq < recs[j].seq })
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = r.copy()
	}
	return out
}

// Record returns a copy of the record with the id.
func (s *Server) Record(id string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok {
		return nil, false
	}
	return r.copy(), true
}

// AddRecord stores a record directly (no API call) and returns its id.
// Unknown fields fail the test. Call it from the test's goroutine.
func (s *Server) AddRecord(object string, fields map[string]any) string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	obj := s.objects[strings.ToLower(object)]
	if obj == nil {
		s.t.Fatalf("sftest: AddRecord: unknown object %s", object)
		return ""
	}
	id, errs := s.insertLocked(obj, fields, "")
	if len(errs) > 0 {
		s.t.Fatalf("sftest: AddRecord: %s", errs[0].Message)
		return ""
	}
	return id
}

// RemoveField deletes a field from an object's schema (a field that is
// missing or hidden by field-level security).
func (s *Server) RemoveField(object, field string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if obj := s.objects[strings.ToLower(object)]; obj != nil {
		obj.remove(field)
	}
}

// SetFieldAccess sets whether a field can be created and updated.
func (s *Server) SetFieldAccess(object, field string, createable, updateable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.field(object, field); f != nil {
		f.Createable, f.Updateable = createable, updateable
	}
}

// SetRequired sets whether a field is required on create.
func (s *Server) SetRequired(object, field string, required bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.field(object, field); f != nil {
		f.Required = required
	}
}

// AddField adds a field to an object.
func (s *Server) AddField(object string, f Field) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if obj := s.objects[strings.ToLower(object)]; obj != nil {
		obj.add(f)
	}
}

func (s *Server) field(object, field string) *Field {
	obj := s.objects[strings.ToLower(object)]
	if obj == nil {
		return nil
	}
	return obj.fields[strings.ToLower(field)]
}
