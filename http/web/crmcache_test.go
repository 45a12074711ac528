package web

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestCRMCache: a value (or failure) is loaded once per TTL per key; a
// request that ended is not cached; forget drops a key; the cache keeps at
// most max entries.
func TestCRMCache(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newCRMCache[int](clock.Now, 5*time.Second, 3)
	ctx := context.Background()
	loads := 0
	var fail error
	load := func(context.Context) (int, error) { loads++; return loads, fail }
	get := func(key string) (int, error) { return c.get(ctx, key, load) }

	if v, _ := get("a"); v != 1 {
		t.Fatalf("first get %d", v)
	}
	clock.Advance(4 * time.Second)
	if v, _ := get("a"); v != 1 || loads != 1 {
		t.Fatalf("get within the TTL: %d after %d loads", v, loads)
	}
	clock.Advance(time.Second)
	if v, _ := get("a"); v != 2 {
		t.Fatalf("get after the TTL: %d", v)
	}

	fail = errors.New("down")
	clock.Advance(5 * time.Second)
	if _, err := get("a"); err == nil {
		t.Fatal("failure not returned")
	}
	fail = nil
	if _, err := get("a"); err == nil || loads != 3 {
		t.Fatalf("failure not kept for the TTL: %v after %d loads", err, loads)
	}
	c.forget("a")
	if v, err := get("a"); err != nil || v != 4 {
		t.Fatalf("get after forget: %d %v", v, err)
	}

	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.get(ended, "b", func(ctx context.Context) (int, error) { return 0, ctx.Err() }); err == nil {
		t.Fatal("ended request: no error")
	}
	if v, err := get("b"); err != nil || v != 5 {
		t.Fatalf("an ended request's failure was cached: %d %v", v, err)
	}

	for i := range 10 {
		get(fmt.Sprint("k", i))
	}
	if n := len(c.entries); n > 3 {
		t.Fatalf("%d entries, want at most 3", n)
	}
}
