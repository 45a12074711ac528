package sim

import (
	"context"
	"errors"
	"net"
	"testing"

	sb "github.com/switchboard/switchboard"
)

// TestRegisterWhileCarrierDown: the carrier built into serve that is not
// running (an admin command made the gateway) puts the registration off to
// serve's start; any other unreachable carrier is an unavailable error.
func TestRegisterWhileCarrierDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/sim"
	l.Close() // nothing listens there now
	urls := sb.WebhookURLs{Incoming: "http://127.0.0.1:8080/webhooks/sim/gw1/incoming"}

	builtIn := New(down, nil)
	builtIn.BuiltIn = true
	err = builtIn.RegisterWebhooks(context.Background(), testGateway(), urls)
	var later *sb.RegisterLater
	if !errors.As(err, &later) {
		t.Fatalf("built-in carrier down: %v, want the registration put off", err)
	}

	gw := testGateway()
	gw.Config[KeyBaseURL] = down // an external carrier of the gateway's own
	if err := builtIn.RegisterWebhooks(context.Background(), gw, urls); sb.ErrorCode(err) != sb.EUnavailable || errors.As(err, &later) {
		t.Fatalf("external carrier down: %v, want unavailable", err)
	}
	if err := New(down, nil).RegisterWebhooks(context.Background(), testGateway(), urls); sb.ErrorCode(err) != sb.EUnavailable {
		t.Fatalf("standalone carrier down: %v, want unavailable", err)
	}
}
