package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// BenchmarkOptOutCheck100k measures the opt-out check of a bulk send of
// 100,000 recipients, 5,000 of whom have a subscription record: one
// set-based query.
func BenchmarkOptOutCheck100k(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d)
			if _, err := db.NewQueue(&river.Config{}); err != nil {
				b.Fatal(err)
			}
			org := &sb.Org{Name: "Bench"}
			gw := &sb.Gateway{Provider: "sim", Number: "+12025550100", Active: true}
			hashes := make([][]byte, 100_000)
			for i := range hashes {
				hashes[i] = db.Hasher().Phone(fmt.Sprintf("+1202%07d", i))
			}
			err := db.Tx(ctx, func(tx *store.Tx) error {
				if err := tx.CreateOrg(ctx, org); err != nil {
					return err
				}
				gw.OrgID = org.ID
				if err := gw.Normalize("US"); err != nil {
					return err
				}
				if err := tx.CreateGateway(ctx, gw); err != nil {
					return err
				}
				for i := 0; i < len(hashes); i += 20 {
					if _, err := tx.SetSubscription(ctx, &sb.Subscription{OrgID: org.ID, GatewayID: gw.ID, PhoneHash: hashes[i], Status: sb.OptedOut, Detail: "x", Via: sb.ViaImport}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				err := db.Tx(ctx, func(tx *store.Tx) error {
					st, err := tx.SubscriptionStatuses(ctx, gw.ID, hashes)
					if err == nil && len(st) != 5000 {
						err = fmt.Errorf("found %d", len(st))
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
