package store_test

import (
	"context"
	"testing"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestReseal rotates the encryption key: values sealed with the old key are
// re-sealed with the new one, after which the old key can be dropped.
func TestReseal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		url := storetest.URL(t, d)
		oldSpec := "old:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		newSpec := sb.NewKeySpec("new")
		withKeys := func(spec string) func(*store.Options) {
			return func(o *store.Options) {
				k, err := sb.ParseKeyring(spec)
				if err != nil {
					t.Fatal(err)
				}
				o.Keyring = k
			}
		}
		db := storetest.OpenURL(t, url, withKeys(oldSpec))
		if _, err := db.NewQueue(&river.Config{}); err != nil {
			t.Fatal(err)
		}
		f := seed(t, db)
		nm := newMsg(f, db, "+12025550501")
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{nm}) })
		db.Close()

		rotated := storetest.OpenURL(t, url, withKeys(newSpec+","+oldSpec))
		n, err := rotated.Reseal(ctx)
		if err != nil || n != 2 { // the gateway's config and the message content
			t.Fatalf("resealed %d values, err %v; want 2", n, err)
		}
		if n, _ := rotated.Reseal(ctx); n != 0 {
			t.Fatalf("second reseal touched %d values", n)
		}
		rotated.Close()

		onlyNew := storetest.OpenURL(t, url, withKeys(newSpec))
		g, err := onlyNew.Gateway(ctx, f.org.ID, f.gw.ID)
		if err != nil || g.Config["secret"] != "s3cr3t-value-for-test" {
			t.Fatalf("gateway after rotation: %v %+v", err, g)
		}
		items, err := onlyNew.MessagesToSend(ctx, []string{nm.Msg.ID})
		if err != nil || len(items) != 1 || items[0].Content.Body != nm.Content.Body {
			t.Fatalf("content after rotation: %v %d", err, len(items))
		}
	})
}
