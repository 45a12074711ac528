package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// tokenDoc is a connection document as the test writes it.
type tokenDoc struct {
	Refresh string `json:"refresh"`
}

func swapTo(newRefresh string, called *atomic.Int32, entered chan<- struct{}, release <-chan struct{}) func([]byte) ([]byte, string, error) {
	return func([]byte) ([]byte, string, error) {
		called.Add(1)
		if entered != nil {
			close(entered)
			<-release
		}
		b, _ := json.Marshal(tokenDoc{Refresh: newRefresh})
		return b, newRefresh, nil
	}
}

func refreshOf(t *testing.T, data []byte) string {
	t.Helper()
	var d tokenDoc
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("document %q: %v", data, err)
	}
	return d.Refresh
}

// TestSwapCRMTokensIsAtomic: two refreshes from the same old refresh token,
// in two processes at once, never both win: the second waits for the
// first's row lock and then sees the rotated token. A swap from a stale
// token changes nothing.
func TestSwapCRMTokensIsAtomic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		url := storetest.URL(t, d)
		db := storetest.OpenURL(t, url)
		// On PostgreSQL the second swap runs in a second process, named so
		// that the test can see it wait for the row lock. SQLite has one
		// process, whose transactions take the one writer in turn.
		app := "swap_cas_" + strings.ReplaceAll(t.Name(), "/", "_")
		db2 := db
		if d == store.Postgres {
			db2 = storetest.OpenURL(t, url+"&application_name="+app)
		}
		f := seed(t, db)
		doc, _ := json.Marshal(tokenDoc{Refresh: "r1"})
		if err := db.SaveCRMConnection(ctx, f.org.ID, doc, "r1", false, ""); err != nil {
			t.Fatal(err)
		}

		var calledA, calledB atomic.Int32
		entered, release := make(chan struct{}), make(chan struct{})
		type result struct {
			data []byte
			err  error
		}
		resA, resB := make(chan result, 1), make(chan result, 1)
		go func() {
			data, err := db.SwapCRMTokens(ctx, f.org.ID, "r1", swapTo("r2-a", &calledA, entered, release))
			resA <- result{data, err}
		}()
		<-entered // A holds the row and has compared the token
		startedB := make(chan struct{})
		go func() {
			close(startedB)
			data, err := db2.SwapCRMTokens(ctx, f.org.ID, "r1", swapTo("r2-b", &calledB, nil, nil))
			resB <- result{data, err}
		}()
		<-startedB
		if d == store.Postgres {
			waitForLockWait(t, url, app)
		}
		close(release)
		a, b := <-resA, <-resB
		if a.err != nil || b.err != nil {
			t.Fatalf("swaps: %v, %v", a.err, b.err)
		}
		if calledA.Load() != 1 || calledB.Load() != 0 {
			t.Fatalf("update ran %d times in A and %d in B; want A's swap only", calledA.Load(), calledB.Load())
		}
		if got := refreshOf(t, a.data); got != "r2-a" {
			t.Fatalf("A sees %q after its swap", got)
		}
		if got := refreshOf(t, b.data); got != "r2-a" {
			t.Fatalf("B, which lost, sees %q, want the winner's r2-a", got)
		}

		// A stale old token (r1, already rotated) swaps nothing.
		var stale atomic.Int32
		data, err := db2.SwapCRMTokens(ctx, f.org.ID, "r1", swapTo("r3-stale", &stale, nil, nil))
		if err != nil || stale.Load() != 0 || refreshOf(t, data) != "r2-a" {
			t.Fatalf("stale swap: called %d, %q, %v", stale.Load(), data, err)
		}
		// The current token swaps.
		var cur atomic.Int32
		data, err = db2.SwapCRMTokens(ctx, f.org.ID, "r2-a", swapTo("r3", &cur, nil, nil))
		if err != nil || cur.Load() != 1 || refreshOf(t, data) != "r3" {
			t.Fatalf("current swap: called %d, %q, %v", cur.Load(), data, err)
		}
		c, err := db.CRMConnection(ctx, f.org.ID)
		if err != nil || refreshOf(t, c.Data) != "r3" {
			t.Fatalf("stored: %v, %v", c, err)
		}

		// Offline connections never swap.
		if err := db.SetCRMOffline(ctx, f.org.ID, "revoked", func(b []byte) []byte { return b }); err != nil {
			t.Fatal(err)
		}
		var off atomic.Int32
		if _, err := db.SwapCRMTokens(ctx, f.org.ID, "r3", swapTo("r4", &off, nil, nil)); err != nil || off.Load() != 0 {
			t.Fatalf("offline swap: called %d, %v", off.Load(), err)
		}
	})
}

// TestSwapCRMTokensWithoutRefreshToken: a connection without a refresh
// token (JWT bearer flow) stores each new access token.
func TestSwapCRMTokensWithoutRefreshToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, d)
		f := seed(t, db)
		doc, _ := json.Marshal(tokenDoc{})
		if err := db.SaveCRMConnection(ctx, f.org.ID, doc, "", false, ""); err != nil {
			t.Fatal(err)
		}
		var n atomic.Int32
		if _, err := db.SwapCRMTokens(ctx, f.org.ID, "", swapTo("", &n, nil, nil)); err != nil || n.Load() != 1 {
			t.Fatalf("swap: called %d, %v", n.Load(), err)
		}
		if _, err := db.SwapCRMTokens(ctx, f.org.ID, "r-unknown", swapTo("x", &n, nil, nil)); err != nil || n.Load() != 1 {
			t.Fatalf("swap from a token the connection never had: called %d, %v", n.Load(), err)
		}
	})
}

// waitForLockWait waits until a PostgreSQL backend of application app waits
// for a lock.
func waitForLockWait(t *testing.T, url, app string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the second swap to wait for the row lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClaimHealthAlert: of two checks that saw the same alert state and
// found the same news, only the first claims it (and alerts); a claim from
// a state that is no longer current fails; no row reads as "".
func TestClaimHealthAlert(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, d)
		f := seed(t, db)
		steps := []struct {
			was, now string
			want     bool
			state    string
		}{
			{"", "token", true, "token"},         // first failure: the row is made
			{"", "token", false, "token"},        // a second check with the same news
			{"", "limits,token", false, "token"}, // from a state that is gone
			{"token", "limits,token", true, "limits,token"},
			{"limits,token", "", true, ""}, // recovered
			{"limits,token", "", false, ""},
			{"", "token", true, "token"}, // fails again
		}
		if s, err := db.HealthAlertState(ctx, f.org.ID); err != nil || s != "" {
			t.Fatalf("state before any claim: %q %v", s, err)
		}
		for i, st := range steps {
			got, err := db.ClaimHealthAlert(ctx, f.org.ID, st.was, st.now)
			if err != nil || got != st.want {
				t.Fatalf("step %d (%q → %q): %v %v, want %v", i, st.was, st.now, got, err, st.want)
			}
			if s, err := db.HealthAlertState(ctx, f.org.ID); err != nil || s != st.state {
				t.Fatalf("step %d: state %q %v, want %q", i, s, err, st.state)
			}
		}
	})
}
