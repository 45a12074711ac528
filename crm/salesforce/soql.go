package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard/switchboard"
)

// EscapeSOQL escapes s for use inside a single-quoted SOQL string literal,
// with the escape sequences the SOQL reference defines: \\ \' \" \n \r \t
// \b \f, and \uXXXX for other control characters. Invalid UTF-8 becomes
// U+FFFD. The result can never end the literal early.
func EscapeSOQL(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// quote returns s as a SOQL string literal.
func quote(s string) string { return "'" + EscapeSOQL(s) + "'" }

// queryPage is one batch of a query answer.
type queryPage struct {
	TotalSize      int               `json:"totalSize"`
	Done           bool              `json:"done"`
	NextRecordsURL string            `json:"nextRecordsUrl"`
	Records        []json.RawMessage `json:"records"`
}

// Query runs a SOQL query for the org and calls fn with every record,
// following nextRecordsUrl through all batches. fn's error stops the query
// and is returned.
func (c *Client) Query(ctx context.Context, orgID, soql string, fn func(record json.RawMessage) error) error {
	if strings.TrimSpace(soql) == "" {
		return switchboard.FieldError("soql", "query is empty")
	}
	return c.follow(ctx, orgID, c.dataPath("/query?q=%s", url.QueryEscape(soql)), 0, fn)
}

// follow reads query batches from next on (pages batches were read
// already) and calls fn with every record.
func (c *Client) follow(ctx context.Context, orgID, next string, pages int, fn func(record json.RawMessage) error) error {
	for ; next != ""; pages++ {
		if pages > 10000 {
			return &switchboard.CRMError{Code: "QUERY_TOO_LONG", Message: "query returned more than 10,000 batches"}
		}
		resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodGet, url: next})
		if err != nil {
			return err
		}
		if next, err = readPage(resp.body, fn); err != nil {
			return err
		}
	}
	return nil
}

// readPage calls fn with the records of one query batch and returns the
// URL of the next batch ("" after the last).
func readPage(body []byte, fn func(record json.RawMessage) error) (string, error) {
	var page queryPage
	if err := json.Unmarshal(body, &page); err != nil {
		return "", &switchboard.CRMError{Code: "BAD_RESPONSE", Message: "Salesforce answered a query with something other than a query result", Retryable: true}
	}
	for _, rec := range page.Records {
		if err := fn(rec); err != nil {
			return "", err
		}
	}
	if page.Done || page.NextRecordsURL == "" {
		return "", nil
	}
	if !strings.HasPrefix(page.NextRecordsURL, "/services/data/") || strings.Contains(page.NextRecordsURL, "..") {
		return "", &switchboard.CRMError{Code: "BAD_RESPONSE", Message: "Salesforce answered a query with an unexpected nextRecordsUrl"}
	}
	return page.NextRecordsURL, nil
}

// Limits of statements built from lists of values, and of queries in one
// composite request.
const (
	// maxSOQL bounds a SOQL statement built from a list of values: half of
	// the 100,000 characters Salesforce allows, as statements are expanded
	// on the server and can fail with QUERY_TOO_COMPLICATED below that.
	// Longer lists are cut into several statements.
	maxSOQL = 50000
	// queriesPerComposite is how many query subrequests one /composite
	// request may carry (Salesforce: 5 of its 25 subrequests).
	queriesPerComposite = 5
)

// QueryMany runs several SOQL statements in as few API calls as Salesforce
// allows: up to five a /composite request, where the statements travel in
// the request body (so their length is not bounded by the 16,384-byte URI
// limit of a GET /query), then the further batches of each through
// nextRecordsUrl. fn gets every record with the index of its statement.
func (c *Client) QueryMany(ctx context.Context, orgID string, soqls []string, fn func(i int, record json.RawMessage) error) error {
	for start := 0; start < len(soqls); start += queriesPerComposite {
		part := soqls[start:min(start+queriesPerComposite, len(soqls))]
		subs := make([]map[string]any, len(part))
		for k, q := range part {
			if strings.TrimSpace(q) == "" {
				return switchboard.FieldError("soql", "query is empty")
			}
			subs[k] = map[string]any{"method": http.MethodGet, "url": c.dataPath("/query?q=%s", url.QueryEscape(q)), "referenceId": fmt.Sprintf("q%d", k)}
		}
		resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodPost, url: c.dataPath("/composite"), body: map[string]any{"allOrNone": false, "compositeRequest": subs}, retrySafe: true})
		if err != nil {
			return err
		}
		var cr compositeResponse
		if err := json.Unmarshal(resp.body, &cr); err != nil || len(cr.CompositeResponse) != len(part) {
			return badResponse("composite")
		}
		for k, sub := range cr.CompositeResponse {
			if sub.ReferenceID != fmt.Sprintf("q%d", k) {
				return badResponse("composite")
			}
			if sub.HTTPStatusCode >= 300 {
				e := subrequestError(sub.HTTPStatusCode, sub.Body)
				return e
			}
			i := start + k
			each := func(rec json.RawMessage) error { return fn(i, rec) }
			next, err := readPage(sub.Body, each)
			if err != nil {
				return err
			}
			if err := c.follow(ctx, orgID, next, 1, each); err != nil {
				return err
			}
		}
	}
	return nil
}

// inChunks cuts values into groups whose statement stays within maxSOQL:
// fixed is the length of the statement without values, and size(v) what
// value v adds to it.
func inChunks(values []string, fixed int, size func(v string) int) [][]string {
	var out [][]string
	var cur []string
	n := fixed
	for _, v := range values {
		add := size(v)
		if len(cur) > 0 && n+add > maxSOQL {
			out = append(out, cur)
			cur, n = nil, fixed
		}
		cur = append(cur, v)
		n += add
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
