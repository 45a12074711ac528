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
	next := c.dataPath("/query?q=%s", url.QueryEscape(soql))
	prefix := "/services/data/"
	for pages := 0; next != ""; pages++ {
		if pages > 10000 {
			return &switchboard.CRMError{Code: "QUERY_TOO_LONG", Message: "query returned more than 10,000 batches"}
		}
		resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodGet, url: next})
		if err != nil {
			return err
		}
		var page queryPage
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return &switchboard.CRMError{Code: "BAD_RESPONSE", Message: "Salesforce answered a query with something other than a query result", Retryable: true}
		}
		for _, rec := range page.Records {
			if err := fn(rec); err != nil {
				return err
			}
		}
		next = ""
		if !page.Done && page.NextRecordsURL != "" {
			if !strings.HasPrefix(page.NextRecordsURL, prefix) || strings.Contains(page.NextRecordsURL, "..") {
				return &switchboard.CRMError{Code: "BAD_RESPONSE", Message: "Salesforce answered a query with an unexpected nextRecordsUrl"}
			}
			next = page.NextRecordsURL
		}
	}
	return nil
}
