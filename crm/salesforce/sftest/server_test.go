package sftest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

func TestParseSOQL(t *testing.T) {
	tests := []struct {
		q       string
		wantErr string
		check   func(t *testing.T, q *sftest.SOQL)
	}{
		{q: "SELECT Id, Name FROM Contact", check: func(t *testing.T, q *sftest.SOQL) {
			if len(q.Fields) != 2 || q.Object != "Contact" || q.Where != nil || q.Limit != -1 {
				t.Errorf("%+v", q)
			}
		}},
		{q: "select id from Lead where (Phone IN ('1', '2') OR MobilePhone = '3') AND Email != null order by CreatedDate desc, Id limit 5", check: func(t *testing.T, q *sftest.SOQL) {
			if q.Where.Op != "AND" || q.Where.Args[0].Op != "OR" || q.Where.Args[0].Args[0].Op != "IN" || len(q.Where.Args[0].Args[0].Values) != 2 {
				t.Errorf("where %+v", q.Where)
			}
			if len(q.OrderBy) != 2 || !q.OrderBy[0].Desc || q.OrderBy[1].Desc || q.Limit != 5 {
				t.Errorf("order %+v limit %d", q.OrderBy, q.Limit)
			}
		}},
		{q: `SELECT Id FROM Contact WHERE LastName = 'O\'Brien \\ \n \u00e9'`, check: func(t *testing.T, q *sftest.SOQL) {
			if q.Where.Values[0] != "O'Brien \\ \n é" {
				t.Errorf("literal %q", q.Where.Values[0])
			}
		}},
		{q: "SELECT Id FROM Contact WHERE NOT Email IN ('a') AND Amount >= 2.5", check: func(t *testing.T, q *sftest.SOQL) {
			if q.Where.Args[0].Op != "NOT" || q.Where.Args[1].Values[0] != 2.5 {
				t.Errorf("where %+v", q.Where)
			}
		}},
		{q: "SELECT Id FROM Contact WHERE A = '1' AND B = '2' OR C = '3'", wantErr: "parentheses"},
		{q: "SELECT Id FROM Contact WHERE A = 'x", wantErr: "unterminated"},
		{q: `SELECT Id FROM Contact WHERE A = 'x\q'`, wantErr: "invalid escape"},
		{q: `SELECT Id FROM Contact WHERE A = 'x\_'`, wantErr: "invalid escape"},
		{q: "SELECT FROM Contact", wantErr: "expected a field"},
		{q: "SELECT Id FROM Contact LIMIT -1", wantErr: "LIMIT"},
		{q: "SELECT Id FROM Contact; DELETE", wantErr: "unexpected character"},
		{q: "SELECT Id FROM Contact WHERE A = \"x\"", wantErr: "unexpected character"},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			q, err := sftest.ParseSOQL(tt.q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, q)
		})
	}
}

func FuzzParseSOQL(f *testing.F) {
	for _, s := range []string{"SELECT Id FROM Contact", "SELECT Id FROM A WHERE (B = 'x' OR C IN (1, 2)) AND NOT D != null ORDER BY E DESC LIMIT 3", `SELECT Id FROM A WHERE B = '\u00'`, "SELECT Id FROM A WHERE ((((", "SELECT Id FROM A WHERE B = -"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := sftest.ParseSOQL(s)
		if err == nil && (q.Object == "" || len(q.Fields) == 0) {
			t.Fatalf("ParseSOQL(%q) accepted a query without object or fields", s)
		}
	})
}

// call makes a request to the fake and decodes the JSON answer.
func call(t *testing.T, s *sftest.Server, method, rawURL, token string, body any) (int, http.Header, any) {
	t.Helper()
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case url.Values:
		r = strings.NewReader(b.Encode())
		ctype = "application/x-www-form-urlencoded"
	default:
		j, _ := json.Marshal(b)
		r = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, rawURL, r)
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := s.HTTPClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
}

// login returns an access token via the web server flow without PKCE.
func login(t *testing.T, s *sftest.Server) string {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {s.ClientID()}, "redirect_uri": {"https://app.example/cb"}}
	code, _, err := s.Authorize("https://login.salesforce.com/services/oauth2/authorize?"+q.Encode(), sftest.DefaultUsername)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := call(t, s, "POST", s.LoginURL()+"/services/oauth2/token", "", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}, "redirect_uri": {"https://app.example/cb"},
	})
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	return body.(map[string]any)["access_token"].(string)
}

func TestLimitHeaderAndSessionChecks(t *testing.T) {
	s := sftest.NewServer(t, sftest.WithAPILimit(500))
	tok := login(t, s)
	tests := []struct {
		name, url, token string
		want             int
	}{
		{"ok", s.InstanceURL() + "/services/data/v62.0/", tok, 200},
		{"no token", s.InstanceURL() + "/services/data/v62.0/", "", 401},
		{"wrong host", "https://other.my.salesforce.com/services/data/v62.0/", tok, 401},
		{"bad version", s.InstanceURL() + "/services/data/62/", tok, 404},
		{"identity", s.LoginURL() + "/id/" + s.OrgID() + "/" + s.UserID(sftest.DefaultUsername), tok, 200},
		{"identity bad token", s.LoginURL() + "/id/" + s.OrgID() + "/" + s.UserID(sftest.DefaultUsername), "nope", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := call(t, s, "GET", tt.url, tt.token, nil)
			if status != tt.want {
				t.Fatalf("status %d, want %d (%v)", status, tt.want, body)
			}
			if !strings.HasPrefix(h.Get("Sforce-Limit-Info"), "api-usage=") || !strings.HasSuffix(h.Get("Sforce-Limit-Info"), "/500") {
				t.Errorf("Sforce-Limit-Info = %q", h.Get("Sforce-Limit-Info"))
			}
			if status == 401 {
				errs, _ := body.([]any)
				if len(errs) != 1 || errs[0].(map[string]any)["errorCode"] != "INVALID_SESSION_ID" {
					t.Errorf("401 body %v", body)
				}
			}
		})
	}
}

func TestCompositeReferencesAndRollback(t *testing.T) {
	s := sftest.NewServer(t)
	tok := login(t, s)
	base := "/services/data/v62.0"
	ok := map[string]any{"allOrNone": false, "compositeRequest": []map[string]any{
		{"method": "POST", "url": base + "/sobjects/Contact", "referenceId": "c", "body": map[string]any{"LastName": "Ng"}},
		{"method": "POST", "url": base + "/sobjects/Task", "referenceId": "t", "body": map[string]any{"Subject": "x", "WhoId": "@{c.id}"}},
		{"method": "GET", "url": base + "/sobjects/Contact/@{c.id}", "referenceId": "g"},
	}}
	status, _, body := call(t, s, "POST", s.InstanceURL()+base+"/composite", tok, ok)
	if status != 200 {
		t.Fatalf("composite %d %v", status, body)
	}
	res := body.(map[string]any)["compositeResponse"].([]any)
	cid := res[0].(map[string]any)["body"].(map[string]any)["id"].(string)
	tid := res[1].(map[string]any)["body"].(map[string]any)["id"].(string)
	task, _ := s.Record(tid)
	if task["WhoId"] != cid || res[2].(map[string]any)["httpStatusCode"].(float64) != 200 {
		t.Errorf("reference not resolved: task %v, get %v", task, res[2])
	}

	bad := map[string]any{"allOrNone": true, "compositeRequest": []map[string]any{
		{"method": "POST", "url": base + "/sobjects/Contact", "referenceId": "c", "body": map[string]any{"LastName": "Li"}},
		{"method": "POST", "url": base + "/sobjects/Lead", "referenceId": "l", "body": map[string]any{"LastName": "NoCompany"}},
	}}
	before := len(s.Records("Contact"))
	_, _, body = call(t, s, "POST", s.InstanceURL()+base+"/composite", tok, bad)
	res = body.(map[string]any)["compositeResponse"].([]any)
	codes := []string{}
	for _, r := range res {
		codes = append(codes, r.(map[string]any)["body"].([]any)[0].(map[string]any)["errorCode"].(string))
	}
	if fmt.Sprint(codes) != "[PROCESSING_HALTED REQUIRED_FIELD_MISSING]" || len(s.Records("Contact")) != before {
		t.Errorf("rollback: codes %v, contacts %d → %d", codes, before, len(s.Records("Contact")))
	}
}

// TestCompositeLimits: a composite request carries at most 25
// subrequests, of which at most 5 are sObject Collections or queries; SOQL
// statements are at most 100,000 characters; URIs at most 16,384 bytes.
func TestCompositeLimits(t *testing.T) {
	s := sftest.NewServer(t)
	tok := login(t, s)
	base := "/services/data/v62.0"
	collection := func(i int) map[string]any {
		return map[string]any{"method": "PATCH", "url": base + "/composite/sobjects", "referenceId": fmt.Sprintf("c%d", i),
			"body": map[string]any{"records": []map[string]any{{"attributes": map[string]string{"type": "Contact"}, "id": "003000000000001AAA", "LastName": "x"}}}}
	}
	query := func(i int) map[string]any {
		return map[string]any{"method": "GET", "url": base + "/query?q=" + url.QueryEscape("SELECT Id FROM Contact"), "referenceId": fmt.Sprintf("q%d", i)}
	}
	describe := func(i int) map[string]any {
		return map[string]any{"method": "GET", "url": base + "/sobjects/Contact/describe", "referenceId": fmt.Sprintf("d%d", i)}
	}
	tests := []struct {
		name string
		subs []map[string]any
		want string // "" = accepted
	}{
		{"5 collections and 20 others", append([]map[string]any{collection(0), collection(1), collection(2), query(3), query(4)}, repeat(20, describe)...), ""},
		{"26 subrequests", repeat(26, describe), "1 to 25 subrequests"},
		{"6 collections", repeat(6, collection), "at most 5 sObject Collections or query subrequests"},
		{"3 collections and 3 queries", append(repeat(3, collection), query(3), query(4), query(5)), "at most 5 sObject Collections or query subrequests"},
	}
	for _, tt := range tests {
		status, _, body := call(t, s, "POST", s.InstanceURL()+base+"/composite", tok, map[string]any{"allOrNone": false, "compositeRequest": tt.subs})
		switch {
		case tt.want == "" && status != 200:
			t.Errorf("%s: %d %v", tt.name, status, body)
		case tt.want != "" && (status != 400 || !strings.Contains(fmt.Sprint(body), tt.want)):
			t.Errorf("%s: %d %v, want 400 %q", tt.name, status, body, tt.want)
		}
	}

	long := "SELECT Id FROM Contact WHERE LastName IN ('" + strings.Repeat("x", sftest.MaxSOQLLength) + "')"
	status, _, body := call(t, s, "POST", s.InstanceURL()+base+"/composite", tok, map[string]any{"compositeRequest": []map[string]any{
		{"method": "GET", "url": base + "/query?q=" + url.QueryEscape(long), "referenceId": "q"}}})
	if status != 200 || !strings.Contains(fmt.Sprint(body), "cannot be longer than 100000 characters") {
		t.Errorf("SOQL over 100,000 characters: %d %v", status, body)
	}
	status, _, _ = call(t, s, "GET", s.InstanceURL()+base+"/query?q="+url.QueryEscape("SELECT Id FROM Contact WHERE LastName IN ('"+strings.Repeat("y", sftest.MaxURILength)+"')"), tok, nil)
	if status != http.StatusRequestURITooLong {
		t.Errorf("URI over 16,384 bytes: %d", status)
	}
}

func repeat(n int, f func(int) map[string]any) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestCollectionsLimits(t *testing.T) {
	s := sftest.NewServer(t)
	tok := login(t, s)
	recs := make([]map[string]any, 201)
	for i := range recs {
		recs[i] = map[string]any{"attributes": map[string]string{"type": "Contact"}, "LastName": "x"}
	}
	status, _, body := call(t, s, "POST", s.InstanceURL()+"/services/data/v62.0/composite/sobjects", tok, map[string]any{"records": recs})
	if status != 400 || !strings.Contains(fmt.Sprint(body), "EXCEEDED_ID_LIMIT") {
		t.Errorf("201 records: %d %v", status, body)
	}
	status, _, body = call(t, s, "POST", s.InstanceURL()+"/services/data/v62.0/composite/sobjects", tok, map[string]any{"allOrNone": true, "records": []map[string]any{
		{"attributes": map[string]string{"type": "Contact"}, "LastName": "ok"},
		{"attributes": map[string]string{"type": "Contact"}, "Nope__c": "x", "LastName": "bad"},
	}})
	out := fmt.Sprint(body)
	if status != 200 || !strings.Contains(out, "ALL_OR_NONE_OPERATION_ROLLED_BACK") || !strings.Contains(out, "INVALID_FIELD") || len(s.Records("Contact")) != 0 {
		t.Errorf("allOrNone: %d %v, %d contacts", status, body, len(s.Records("Contact")))
	}
}

func TestJWTExpTooFar(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := sftest.NewServer(t, sftest.WithClock(func() time.Time { return now }))
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	s.RegisterJWTKey("ck", &key.PublicKey)
	tests := []struct {
		ahead time.Duration
		want  string
	}{
		{3 * time.Minute, ""},
		{4 * time.Minute, "within 3 minutes"},
		{-time.Minute, "expired"},
	}
	for _, tt := range tests {
		signed, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "ck", "sub": sftest.DefaultUsername, "aud": "https://login.salesforce.com", "exp": now.Add(tt.ahead).Unix()}).SignedString(key)
		status, _, body := call(t, s, "POST", s.InstanceURL()+"/services/oauth2/token", "", url.Values{"grant_type": {sftest.JWTBearerGrant}, "assertion": {signed}})
		if tt.want == "" {
			if status != 200 || body.(map[string]any)["refresh_token"] != nil {
				t.Errorf("exp +%v: %d %v", tt.ahead, status, body)
			}
			continue
		}
		if status != 400 || !strings.Contains(fmt.Sprint(body), tt.want) {
			t.Errorf("exp %+v: %d %v, want %q", tt.ahead, status, body, tt.want)
		}
	}
}

func TestAuthorizeRedirect(t *testing.T) {
	s := sftest.NewServer(t, sftest.WithRedirectURL("https://app.example/cb"))
	q := url.Values{"response_type": {"code"}, "client_id": {s.ClientID()}, "redirect_uri": {"https://app.example/cb"}, "state": {"xyz"}}
	status, h, _ := call(t, s, "GET", s.LoginURL()+"/services/oauth2/authorize?"+q.Encode(), "", nil)
	loc, _ := url.Parse(h.Get("Location"))
	if status != http.StatusFound || loc.Host != "app.example" || loc.Query().Get("state") != "xyz" || loc.Query().Get("code") == "" {
		t.Errorf("authorize: %d %s", status, h.Get("Location"))
	}
	q.Set("redirect_uri", "https://evil.example/cb")
	if status, _, _ := call(t, s, "GET", s.LoginURL()+"/services/oauth2/authorize?"+q.Encode(), "", nil); status != http.StatusBadRequest {
		t.Errorf("mismatched redirect: %d", status)
	}
}

func TestUpsertCollection(t *testing.T) {
	const path = "/services/data/v62.0/composite/sobjects/Switchboard_Link_Click__c/Switchboard_Id__c"
	click := func(key string, extra ...string) map[string]any {
		r := map[string]any{"attributes": map[string]string{"type": "Switchboard_Link_Click__c"}, "Switchboard_Id__c": key}
		for i := 0; i+1 < len(extra); i += 2 {
			r[extra[i]] = extra[i+1]
		}
		return r
	}
	type want struct {
		success, created bool
		code             string // first error's statusCode when not success
	}
	tests := []struct {
		name    string
		setup   func(s *sftest.Server)
		path    string
		body    map[string]any
		status  int
		results []want
		records int // click records afterwards
	}{
		{"create, then the same keys update", func(s *sftest.Server) {
			s.AddRecord("Switchboard_Link_Click__c", map[string]any{"Switchboard_Id__c": "c1", "URL__c": "https://old.example"})
		}, path, map[string]any{"records": []map[string]any{click("c1", "URL__c", "https://new.example"), click("c2")}}, 200,
			[]want{{success: true, created: false}, {success: true, created: true}}, 2},
		{"a key twice in one request", nil, path, map[string]any{"records": []map[string]any{click("d"), click("e"), click("d")}}, 200,
			[]want{{code: "DUPLICATE_VALUE"}, {success: true, created: true}, {code: "DUPLICATE_VALUE"}}, 1},
		{"a key on two records", func(s *sftest.Server) {
			s.AddRecord("Switchboard_Link_Click__c", map[string]any{"Switchboard_Id__c": "x"})
			s.AddRecord("Switchboard_Link_Click__c", map[string]any{"Switchboard_Id__c": "x"})
		}, path, map[string]any{"records": []map[string]any{click("x")}}, 200, []want{{code: "DUPLICATE_EXTERNAL_ID"}}, 2},
		{"wrong type, record id, no key, unknown field", nil, path, map[string]any{"records": []map[string]any{
			{"attributes": map[string]string{"type": "Contact"}, "Switchboard_Id__c": "t"},
			{"attributes": map[string]string{"type": "Switchboard_Link_Click__c"}, "Switchboard_Id__c": "i", "Id": "a0LRS0000000001AAA"},
			{"attributes": map[string]string{"type": "Switchboard_Link_Click__c"}},
			click("u", "Nope__c", "x"),
		}}, 200, []want{{code: "INVALID_INPUT"}, {code: "INVALID_FIELD"}, {code: "MISSING_ARGUMENT"}, {code: "INVALID_FIELD"}}, 0},
		{"allOrNone rolls back", nil, path, map[string]any{"allOrNone": true, "records": []map[string]any{click("ok"), click("bad", "Nope__c", "x")}}, 200,
			[]want{{code: "ALL_OR_NONE_OPERATION_ROLLED_BACK"}, {code: "INVALID_FIELD"}}, 0},
		{"not an external id field", nil, "/services/data/v62.0/composite/sobjects/Switchboard_Link_Click__c/URL__c",
			map[string]any{"records": []map[string]any{click("a")}}, 404, nil, 0},
		{"unknown object", nil, "/services/data/v62.0/composite/sobjects/Nope__c/Switchboard_Id__c",
			map[string]any{"records": []map[string]any{click("a")}}, 404, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sftest.NewServer(t)
			tok := login(t, s)
			if tt.setup != nil {
				tt.setup(s)
			}
			status, _, body := call(t, s, "PATCH", s.InstanceURL()+tt.path, tok, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%v)", status, tt.status, body)
			}
			if got := len(s.Records("Switchboard_Link_Click__c")); got != tt.records {
				t.Errorf("%d records, want %d", got, tt.records)
			}
			if tt.results == nil {
				return
			}
			res, _ := body.([]any)
			if len(res) != len(tt.results) {
				t.Fatalf("results %v", body)
			}
			for i, w := range tt.results {
				r := res[i].(map[string]any)
				if r["success"] != w.success || r["created"] != w.created {
					t.Errorf("result %d = %v, want success %v created %v", i, r, w.success, w.created)
				}
				if w.success {
					if id, _ := r["id"].(string); !strings.HasPrefix(id, "a0L") {
						t.Errorf("result %d id %v", i, r["id"])
					}
					continue
				}
				errs, _ := r["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["statusCode"] != w.code {
					t.Errorf("result %d errors %v, want %s", i, r["errors"], w.code)
				}
			}
		})
	}
	t.Run("more than 200 records", func(t *testing.T) {
		s := sftest.NewServer(t)
		recs := make([]map[string]any, 201)
		for i := range recs {
			recs[i] = click(fmt.Sprint(i))
		}
		if status, _, body := call(t, s, "PATCH", s.InstanceURL()+path, login(t, s), map[string]any{"records": recs}); status != 400 || !strings.Contains(fmt.Sprint(body), "EXCEEDED_ID_LIMIT") {
			t.Errorf("201 records: %d %v", status, body)
		}
	})
	t.Run("updated record keeps its other fields", func(t *testing.T) {
		s := sftest.NewServer(t)
		id := s.AddRecord("Switchboard_Link_Click__c", map[string]any{"Switchboard_Id__c": "k", "URL__c": "https://a.example", "Browser__c": "Other"})
		call(t, s, "PATCH", s.InstanceURL()+path, login(t, s), map[string]any{"records": []map[string]any{click("k", "URL__c", "https://b.example")}})
		if r, _ := s.Record(id); r["URL__c"] != "https://b.example" || r["Browser__c"] != "Other" {
			t.Errorf("record %v", r)
		}
	})
}

// TestLoseNextAnswers: the call is processed, but its answer is lost.
func TestLoseNextAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
	}{
		{"connection dropped", 0},
		{"500 after saving", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sftest.NewServer(t)
			tok := login(t, s)
			s.LoseNextAnswers(1, tt.status)
			body, _ := json.Marshal(map[string]any{"LastName": "Ng"})
			req, _ := http.NewRequest("POST", s.InstanceURL()+"/services/data/v62.0/sobjects/Contact", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := s.HTTPClient().Do(req)
			switch {
			case tt.status == 0 && err == nil:
				resp.Body.Close()
				t.Fatalf("answer arrived: %d", resp.StatusCode)
			case tt.status != 0 && err != nil:
				t.Fatal(err)
			case tt.status != 0:
				resp.Body.Close()
				if resp.StatusCode != tt.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
				}
			}
			if n := len(s.Records("Contact")); n != 1 {
				t.Errorf("%d contacts saved, want 1", n)
			}
			// The next call is answered again.
			if status, _, _ := call(t, s, "GET", s.InstanceURL()+"/services/data/v62.0/", tok, nil); status != 200 {
				t.Errorf("next call: %d", status)
			}
		})
	}
}

// TestFailNextWrites: an outage of the write path answers calls that change
// records (a create, a composite request with a write) with the status,
// while queries, alone or batched in a composite request, are answered.
func TestFailNextWrites(t *testing.T) {
	s := sftest.NewServer(t)
	tok := login(t, s)
	base := s.InstanceURL() + "/services/data/v62.0"
	query := "/services/data/v62.0/query?q=" + url.QueryEscape("SELECT Id FROM Contact")
	s.FailNextWrites(2, http.StatusServiceUnavailable)
	tests := []struct {
		name, method, url string
		body              any
		want              int
	}{
		{"query", "GET", base + "/query?q=" + url.QueryEscape("SELECT Id FROM Contact"), nil, http.StatusOK},
		{"composite of queries", "POST", base + "/composite", map[string]any{"compositeRequest": []map[string]any{
			{"method": "GET", "url": query, "referenceId": "a"}, {"method": "GET", "url": query, "referenceId": "b"},
		}}, http.StatusOK},
		{"create", "POST", base + "/sobjects/Contact", map[string]any{"LastName": "Down"}, http.StatusServiceUnavailable},
		{"composite with a create", "POST", base + "/composite", map[string]any{"compositeRequest": []map[string]any{
			{"method": "GET", "url": query, "referenceId": "a"},
			{"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "c", "body": map[string]any{"LastName": "Down"}},
		}}, http.StatusServiceUnavailable},
		{"create once the outage is over", "POST", base + "/sobjects/Contact", map[string]any{"LastName": "Up"}, http.StatusCreated},
	}
	for _, tt := range tests {
		if status, _, body := call(t, s, tt.method, tt.url, tok, tt.body); status != tt.want {
			t.Errorf("%s: %d %v, want %d", tt.name, status, body, tt.want)
		}
	}
	if n := len(s.Records("Contact")); n != 1 {
		t.Fatalf("%d contacts saved, want 1", n)
	}
}
