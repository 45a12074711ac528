package salesforce

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard"
)

// ParseLimitInfo reads a Sforce-Limit-Info header, such as
// "api-usage=18/5000" or "api-usage=10018/100000; api-bursts=1/750", and
// returns the org's daily API usage. ok is false when the header has no
// well-formed api-usage entry.
func ParseLimitInfo(h string) (used, max int, ok bool) {
	for _, part := range strings.Split(h, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "api-usage") {
			continue
		}
		u, m, found := strings.Cut(strings.TrimSpace(v), "/")
		if !found {
			return 0, 0, false
		}
		used, err1 := parseCount(u)
		max, err2 := parseCount(m)
		if err1 != nil || err2 != nil || max <= 0 {
			return 0, 0, false
		}
		return used, max, true
	}
	return 0, 0, false
}

// parseCount reads a non-negative decimal count of at most 12 digits.
func parseCount(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 12 {
		return 0, strconv.ErrSyntax
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}

func (c *Client) recordUsage(orgID string, used, max int) {
	st := c.org(orgID)
	st.mu.Lock()
	st.used, st.max, st.readAt = used, max, c.cfg.Now()
	st.mu.Unlock()
	if c.cfg.OnLimits != nil {
		c.cfg.OnLimits(orgID, used, max)
	}
}

// Usage returns the org's last known daily API usage and limit (0, 0 when
// nothing is known yet).
func (c *Client) Usage(orgID string) (used, max int) {
	st := c.org(orgID)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.used, st.max
}

// UsageReadAt returns when the org's API usage was last read (zero when
// never).
func (c *Client) UsageReadAt(orgID string) time.Time {
	st := c.org(orgID)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.readAt
}

// RefreshUsage reads the org's daily API usage with the limits resource
// (GET /limits: one call that writes nothing), for when no other call has
// told it lately — while non-urgent writes wait because usage was high.
func (c *Client) RefreshUsage(ctx context.Context, orgID string) error {
	resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodGet, url: c.dataPath("/limits")})
	if err != nil {
		return err
	}
	// Sforce-Limit-Info on the answer has been read already; the body says
	// the same, and counts when the header is missing.
	var l struct {
		DailyAPIRequests struct {
			Max       int `json:"Max"`
			Remaining int `json:"Remaining"`
		} `json:"DailyApiRequests"`
	}
	if err := json.Unmarshal(resp.body, &l); err == nil && l.DailyAPIRequests.Max > 0 {
		c.recordUsage(orgID, max(l.DailyAPIRequests.Max-l.DailyAPIRequests.Remaining, 0), l.DailyAPIRequests.Max)
	}
	return nil
}

// Throttle reports whether the org has used at least Config.UsageThreshold
// of its daily API limit, so that non-urgent write-backs should slow down.
func (c *Client) Throttle(orgID string) bool {
	used, max := c.Usage(orgID)
	return max > 0 && float64(used) >= c.cfg.UsageThreshold*float64(max)
}

// limitBackoff returns the org's REQUEST_LIMIT_EXCEEDED error while its
// back-off deadline has not passed.
func (c *Client) limitBackoff(orgID string) error {
	st := c.org(orgID)
	st.mu.Lock()
	until := st.limitUntil
	st.mu.Unlock()
	now := c.cfg.Now()
	if until.IsZero() || !now.Before(until) {
		return nil
	}
	return &switchboard.CRMError{
		Code:       CodeRequestLimit,
		Message:    "the org's Salesforce API request limit is exhausted; Switchboard waits before calling again",
		Retryable:  true,
		RetryAfter: until.Sub(now),
	}
}

// hitLimit remembers a back-off deadline for the org after
// REQUEST_LIMIT_EXCEEDED and returns the error for it.
func (c *Client) hitLimit(orgID string, resp *apiResponse) error {
	wait := c.cfg.LimitBackoff
	if s := resp.header.Get("Retry-After"); s != "" {
		if n, err := parseCount(s); err == nil && n > 0 {
			wait = time.Duration(n) * time.Second
		}
	}
	st := c.org(orgID)
	st.mu.Lock()
	st.limitUntil = c.cfg.Now().Add(wait)
	st.mu.Unlock()
	c.cfg.Logger.Warn("salesforce: API request limit exceeded", "org", orgID, "retry_after", wait)
	return &switchboard.CRMError{
		Code:       CodeRequestLimit,
		Message:    "the org's Salesforce API request limit is exhausted: " + apiError(resp).Message,
		Retryable:  true,
		RetryAfter: wait,
	}
}
