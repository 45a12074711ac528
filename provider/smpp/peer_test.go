package smpp

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/tools/peers"
)

// The tests in this file run the provider against a real SMPP server: the
// npm "smpp" package's server driven by testdata/smsc.js, acting as the
// SMSC. They synchronise on the JSON lines the server prints and on the
// test sink's channel.

// peerEvent is one JSON line the SMSC printed.
type peerEvent map[string]any

func (e peerEvent) str(k string) string { s, _ := e[k].(string); return s }
func (e peerEvent) num(k string) int    { f, _ := e[k].(float64); return int(f) }

// smscPeer is a running testdata/smsc.js.
type smscPeer struct {
	t      *testing.T
	port   int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan peerEvent
	exited chan struct{}
}

// nodeSMPP returns the node binary and the node_modules folder holding the
// smpp package, or skips (fails when SWITCHBOARD_REQUIRE_PEERS=1).
func nodeSMPP(t *testing.T) (node, modules string) {
	t.Helper()
	return peers.Node(t), peers.NodeModules(t, "smpp")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// startSMSC starts the SMSC on port with system_id "acct" and password
// "secret" and waits until it accepts connections.
func startSMSC(t *testing.T, port int, extra ...string) *smscPeer {
	t.Helper()
	node, modules := nodeSMPP(t)
	args := append([]string{filepath.Join("testdata", "smsc.js"),
		"--port", strconv.Itoa(port), "--system-id", "acct", "--password", "secret"}, extra...)
	cmd := exec.Command(node, args...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &smscPeer{t: t, port: port, cmd: cmd, stdin: stdin, events: make(chan peerEvent, 256), exited: make(chan struct{})}
	go func() {
		defer close(p.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev peerEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("SMSC printed %q: %v", sc.Text(), err)
				continue
			}
			p.events <- ev
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)

	p.expect("listening", nil)
	// Readiness: poll until a connection is accepted, within a bound.
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SMSC on port %d does not accept connections: %v", port, err)
		}
		select {
		case <-p.exited:
			t.Fatal("SMSC exited during start")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return p
}

// kill stops the SMSC at once, dropping its connections.
func (p *smscPeer) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// expect returns the next event named name for which match (if given)
// holds, skipping other events.
func (p *smscPeer) expect(name string, match func(peerEvent) bool) peerEvent {
	p.t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				p.t.Fatalf("SMSC exited while waiting for %q", name)
			}
			if ev.str("event") == "error" {
				p.t.Fatalf("SMSC error: %s", ev.str("message"))
			}
			if ev.str("event") == name && (match == nil || match(ev)) {
				return ev
			}
		case <-timeout:
			p.t.Fatalf("SMSC did not report %q", name)
		}
	}
}

// command writes one JSON command to the SMSC's stdin.
func (p *smscPeer) command(cmd map[string]any) {
	p.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatal(err)
	}
}

func peerGateway(port int, cfg map[string]string) *sb.Gateway {
	c := map[string]string{"host": "127.0.0.1", "port": strconv.Itoa(port)}
	for k, v := range cfg {
		c[k] = v
	}
	gw := testGateway("+15550001", c)
	return gw
}

func peerProvider(t *testing.T, opts Options) *Provider {
	if opts.EnquireLinkInterval == 0 {
		opts.EnquireLinkInterval = time.Hour
	}
	opts.ResponseTimeout = waitLimit
	opts.ReconnectMin, opts.ReconnectMax = time.Millisecond, 20*time.Millisecond
	opts.Logger = quietLogger()
	p := New(opts)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// listen runs Listen until the test ends.
func listen(t *testing.T, p *Provider, gw *sb.Gateway, sink sb.EventSink) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Listen(ctx, gw, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := recv(t, done, "Listen to return"); err != nil {
			t.Errorf("Listen = %v", err)
		}
	})
}

func gsmHex(t *testing.T, s string) string {
	b, err := encodeGSM7(s)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestPeerSendAndReceive(t *testing.T) {
	port := freePort(t)
	smsc := startSMSC(t, port)
	p := peerProvider(t, Options{EnquireLinkInterval: 20 * time.Millisecond})
	gw := peerGateway(port, nil)
	sink := newTestSink()
	listen(t, p, gw, sink)
	if ev := smsc.expect("bind", nil); ev["ok"] != true || ev.str("system_id") != "acct" || ev.num("interface_version") != 0x34 {
		t.Fatalf("bind = %v", ev)
	}
	ctx := context.Background()

	t.Run("enquire_link both ways", func(t *testing.T) {
		smsc.expect("enquire_link", nil) // ours, answered by the SMSC
		smsc.command(map[string]any{"cmd": "enquire_link"})
		if ev := smsc.expect("enquire_link_resp", nil); ev.num("status") != 0 {
			t.Fatalf("enquire_link_resp = %v", ev)
		}
	})

	sendOne := func(t *testing.T, body string) (string, peerEvent) {
		t.Helper()
		res, err := p.Send(ctx, gw, &sb.OutboundMessage{To: "+447700900123", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		ev := smsc.expect("submit_sm", nil)
		if res.ProviderMessageID != ev.str("message_id") || res.Status != sb.StatusSent {
			t.Fatalf("result %+v, SMSC gave id %q", res, ev.str("message_id"))
		}
		if ev.str("source_addr") != "15550001" || ev.num("source_addr_ton") != 1 || ev.num("source_addr_npi") != 1 ||
			ev.str("destination_addr") != "447700900123" || ev.num("dest_addr_ton") != 1 || ev.num("dest_addr_npi") != 1 ||
			ev.num("registered_delivery") != 1 {
			t.Fatalf("submit_sm addressing = %v", ev)
		}
		return res.ProviderMessageID, ev
	}
	expectDelivered := func(t *testing.T, id string) {
		t.Helper()
		ev := recv(t, sink.events, "a receipt")
		if len(ev.Statuses) != 1 || ev.Statuses[0].ProviderMessageID != id || ev.Statuses[0].Status != sb.StatusDelivered {
			t.Fatalf("sink got %+v, want Delivered for %s", ev, id)
		}
		smsc.expect("deliver_sm_resp", func(e peerEvent) bool { return e.str("message_id") == id && e.num("status") == 0 })
	}

	t.Run("GSM-7 with extension characters", func(t *testing.T) {
		body := "Hi {name}, 5€ @ [desk] ~ok^"
		id, ev := sendOne(t, body)
		if ev.num("data_coding") != 0 || ev.num("esm_class") != 0 || ev.str("short_message") != gsmHex(t, body) {
			t.Fatalf("submit_sm = %v, want data_coding 0 and %s", ev, gsmHex(t, body))
		}
		expectDelivered(t, id)
	})

	t.Run("UCS-2", func(t *testing.T) {
		body := "Привет 😀"
		id, ev := sendOne(t, body)
		if ev.num("data_coding") != 8 || ev.num("esm_class") != 0 || ev.str("short_message") != hex.EncodeToString(encodeUCS2(body)) {
			t.Fatalf("submit_sm = %v", ev)
		}
		expectDelivered(t, id)
	})

	t.Run("three-part concatenated", func(t *testing.T) {
		body := strings.Repeat("Switchboard concatenation test. ", 13)[:400]
		res, err := p.Send(ctx, gw, &sb.OutboundMessage{To: "+447700900123", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		var whole []byte
		var ref byte
		var ids []string
		for seq := 1; seq <= 3; seq++ {
			ev := smsc.expect("submit_sm", nil)
			ids = append(ids, ev.str("message_id"))
			sm, err := hex.DecodeString(ev.str("short_message"))
			if err != nil || len(sm) < 6 {
				t.Fatalf("part %d short_message %q", seq, ev.str("short_message"))
			}
			if ev.num("esm_class") != 0x40 || ev.num("data_coding") != 0 || ev.num("registered_delivery") != 1 {
				t.Fatalf("part %d = %v", seq, ev)
			}
			if seq == 1 {
				ref = sm[3]
			}
			if want := concatUDH(ref, 3, seq); string(sm[:6]) != string(want) {
				t.Fatalf("part %d UDH = %X, want %X", seq, sm[:6], want)
			}
			if n := len(sm) - 6; n > 153 {
				t.Fatalf("part %d holds %d septets", seq, n)
			}
			whole = append(whole, sm[6:]...)
		}
		if decodeGSM7(whole) != body {
			t.Fatalf("parts join to %q", decodeGSM7(whole))
		}
		if res.ProviderMessageID != ids[0] {
			t.Fatalf("provider message id %q, want the first part's %q", res.ProviderMessageID, ids[0])
		}
		// Three receipts arrive; only the first part's is reported.
		for _, id := range ids {
			smsc.expect("deliver_sm_resp", func(e peerEvent) bool { return e.str("message_id") == id && e.num("status") == 0 })
		}
		ev := recv(t, sink.events, "the first part's receipt")
		if len(ev.Statuses) != 1 || ev.Statuses[0].ProviderMessageID != ids[0] || ev.Statuses[0].Status != sb.StatusDelivered {
			t.Fatalf("sink got %+v", ev)
		}
		if n := len(sink.events); n != 0 {
			t.Fatalf("%d more events reported for later parts", n)
		}
	})

	t.Run("incoming UCS-2 message", func(t *testing.T) {
		smsc.command(map[string]any{"cmd": "deliver", "tag": "ucs2", "source_addr": "447700900999", "source_addr_ton": 1, "source_addr_npi": 1,
			"destination_addr": "15550001", "dest_addr_ton": 1, "dest_addr_npi": 1, "data_coding": 8,
			"short_message": hex.EncodeToString(encodeUCS2("Ça va? ✓"))})
		ev := recv(t, sink.events, "the incoming message")
		if len(ev.Incoming) != 1 {
			t.Fatalf("sink got %+v", ev)
		}
		m := ev.Incoming[0]
		if m.From != "+447700900999" || m.To != "+15550001" || m.Body != "Ça va? ✓" || m.ReceivedAt.IsZero() {
			t.Fatalf("incoming = %+v", m)
		}
		smsc.expect("deliver_sm_resp", func(e peerEvent) bool { return e.str("tag") == "ucs2" && e.num("status") == 0 })
	})

	t.Run("incoming concatenated GSM-7", func(t *testing.T) {
		part := func(seq int, text string) map[string]any {
			return map[string]any{"cmd": "deliver", "tag": fmt.Sprint("part", seq), "source_addr": "447700900999", "source_addr_ton": 1,
				"destination_addr": "15550001", "dest_addr_ton": 1, "esm_class": 0x40, "data_coding": 0,
				"short_message": hex.EncodeToString(concatUDH(0x33, 2, seq)) + gsmHex(t, text)}
		}
		smsc.command(part(1, "STOP sending me {"))
		smsc.expect("deliver_sm_resp", func(e peerEvent) bool { return e.str("tag") == "part1" && e.num("status") == 0 })
		smsc.command(part(2, "} messages €"))
		ev := recv(t, sink.events, "the reassembled message")
		if len(ev.Incoming) != 1 || ev.Incoming[0].Body != "STOP sending me {} messages €" || ev.Incoming[0].From != "+447700900999" {
			t.Fatalf("sink got %+v", ev)
		}
		smsc.expect("deliver_sm_resp", func(e peerEvent) bool { return e.str("tag") == "part2" && e.num("status") == 0 })
	})

	t.Run("sink failure asks for redelivery", func(t *testing.T) {
		sink.errs <- errors.New("store unavailable")
		smsc.command(map[string]any{"cmd": "deliver", "tag": "fail", "source_addr": "447700900999", "source_addr_ton": 1,
			"destination_addr": "15550001", "short_message": gsmHex(t, "hello")})
		recv(t, sink.events, "the failed delivery")
		smsc.expect("deliver_sm_resp", func(e peerEvent) bool { return e.str("tag") == "fail" && e.num("status") == int(statusTempAppError) })
	})
}

func TestPeerSendErrors(t *testing.T) {
	port := freePort(t)
	smsc := startSMSC(t, port, "--reject", "88:1")
	p := peerProvider(t, Options{})
	gw := peerGateway(port, nil)
	ctx := context.Background()
	msg := &sb.OutboundMessage{To: "+447700900123", Body: "hello"}

	_, err := p.Send(ctx, gw, msg)
	var se *sb.SendError
	if !errors.As(err, &se) || se.Kind != sb.SendThrottled || se.Code != "0x00000058" || !se.Retryable() {
		t.Fatalf("first send = %v, want throttled 0x00000058", err)
	}
	if ev := smsc.expect("submit_sm", nil); ev.num("status") != 0x58 {
		t.Fatalf("submit_sm = %v", ev)
	}

	smsc.command(map[string]any{"cmd": "reject", "status": 0x0B, "count": 1})
	smsc.expect("reject_set", nil)
	_, err = p.Send(ctx, gw, msg)
	if !errors.As(err, &se) || se.Kind != sb.SendInvalidNumber || se.Debug != "SMPP 0x0000000B: invalid destination address" {
		t.Fatalf("second send = %v, want invalid number", err)
	}

	res, err := p.Send(ctx, gw, msg)
	if err != nil || res.ProviderMessageID == "" {
		t.Fatalf("third send = %+v, %v", res, err)
	}
}

func TestPeerWrongPassword(t *testing.T) {
	port := freePort(t)
	smsc := startSMSC(t, port)
	p := peerProvider(t, Options{})
	gw := peerGateway(port, map[string]string{"password": "wrong"})
	_, err := p.Send(context.Background(), gw, &sb.OutboundMessage{To: "+447700900123", Body: "hello"})
	var se *sb.SendError
	if !errors.As(err, &se) || se.Kind != sb.SendAuth || se.Code != "0x0000000E" {
		t.Fatalf("send = %v, want auth error 0x0000000E", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error reveals the password: %v", err)
	}
	if ev := smsc.expect("bind", nil); ev["ok"] != false || ev.num("status") != 0x0E {
		t.Fatalf("bind = %v", ev)
	}
}

func TestPeerReconnectAfterSMSCRestart(t *testing.T) {
	port := freePort(t)
	first := startSMSC(t, port)
	p := peerProvider(t, Options{})
	gw := peerGateway(port, nil)
	sink := newTestSink()
	listen(t, p, gw, sink)
	first.expect("bind", nil)

	first.kill()
	second := startSMSC(t, port)
	if ev := second.expect("bind", nil); ev["ok"] != true {
		t.Fatalf("rebind = %v", ev)
	}

	// The new bind carries both directions.
	res, err := p.Send(context.Background(), gw, &sb.OutboundMessage{To: "+447700900123", Body: "after restart"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := second.expect("submit_sm", nil); ev.str("message_id") != res.ProviderMessageID {
		t.Fatalf("submit_sm = %v, result %+v", ev, res)
	}
	ev := recv(t, sink.events, "the receipt over the new bind")
	if len(ev.Statuses) != 1 || ev.Statuses[0].ProviderMessageID != res.ProviderMessageID {
		t.Fatalf("sink got %+v", ev)
	}
	second.command(map[string]any{"cmd": "deliver", "tag": "in", "source_addr": "447700900999", "source_addr_ton": 1,
		"destination_addr": "15550001", "short_message": gsmHex(t, "back again")})
	ev = recv(t, sink.events, "the incoming message over the new bind")
	if len(ev.Incoming) != 1 || ev.Incoming[0].Body != "back again" {
		t.Fatalf("sink got %+v", ev)
	}
}
