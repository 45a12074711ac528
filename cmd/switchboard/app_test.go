package main

import (
	"bufio"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/crm/salesforce/sftest"
	"github.com/switchboard/switchboard/logging"
)

// TestCRMUsageMetric: every Salesforce answer's Sforce-Limit-Info sets the
// org's switchboard_crm_api_usage_ratio on /metrics.
func TestCRMUsageMetric(t *testing.T) {
	ctx := context.Background()
	fake := sftest.NewServer(t)
	fake.SetAPIUsage(40000, 100000)
	t.Setenv("SALESFORCE_CLIENT_ID", fake.ClientID())
	t.Setenv("SALESFORCE_CLIENT_SECRET", fake.ClientSecret())
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := loadConfig(fs, []string{"--data", t.TempDir(), "--addr", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.sfHTTP = fake.HTTPClient()
	app, err := newApp(ctx, cfg, logging.Discard(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Stop(0) })
	org, admin, _, err := app.Hub.CreateOrg(ctx, "Test College", "admin@example.org", "Ada Admin")
	if err != nil {
		t.Fatal(err)
	}
	if got := usageRatio(t, app, org.ID); got >= 0 {
		t.Fatalf("usage %v before Salesforce answered anything", got)
	}
	to, err := app.Hub.StartSalesforceAuthorization(ctx, admin, "/ui/settings")
	if err != nil {
		t.Fatal(err)
	}
	code, state, err := fake.Authorize(to, sftest.DefaultUsername)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Hub.CompleteSalesforceAuthorization(ctx, state, code); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Hub.CheckCRM(ctx, admin); err != nil { // data calls
		t.Fatal(err)
	}
	used, max := fake.APIUsage()
	if got, want := usageRatio(t, app, org.ID), float64(used)/float64(max); got != want {
		t.Fatalf("switchboard_crm_api_usage_ratio = %v, want %v (the fake's %d/%d)", got, want, used, max)
	}
	fake.SetAPIUsage(90000, 100000)
	if _, err := app.Hub.CheckCRM(ctx, admin); err != nil {
		t.Fatal(err)
	}
	used, max = fake.APIUsage()
	if got, want := usageRatio(t, app, org.ID), float64(used)/float64(max); got != want || got < 0.9 {
		t.Fatalf("after usage rose: %v, want %v", got, want)
	}
}

// usageRatio scrapes /metrics for the org's API usage ratio (-1: absent).
func usageRatio(t *testing.T, app *App, orgID string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	app.Server.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	prefix := `switchboard_crm_api_usage_ratio{org="` + orgID + `"} `
	sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q", sc.Text())
			}
			return f
		}
	}
	return -1
}
