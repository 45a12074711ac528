// Package mailtest is a tiny SMTP server for tests: it accepts every
// message on the loopback interface, offers AUTH PLAIN (no TLS), and keeps
// what it received.
package mailtest

import (
	"encoding/base64"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// Message is one received email.
type Message struct {
	From string
	To   []string
	// Data is the message text as sent (headers and body), with the SMTP
	// dot-stuffing undone.
	Data string
	// User and Password are what the client authenticated with, if it did.
	User, Password string
}

// Server is a running SMTP server.
type Server struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []Message
	wg   sync.WaitGroup
	// got receives every message as it is accepted.
	got chan Message
}

// NewServer starts a server on 127.0.0.1, stopped when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, got: make(chan Message, 100)}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is an smtp:// URL for the server with a user, a password and the
// sender address from.
func (s *Server) URL(user, password, from string) string {
	return "smtp://" + user + ":" + password + "@" + s.Addr() + "?from=" + from
}

// Messages returns the messages received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Reset forgets the messages received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}

// Received is a channel of messages as they arrive.
func (s *Server) Received() <-chan Message { return s.got }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	reply := func(format string, args ...any) bool { return tp.PrintfLine(format, args...) == nil }
	if !reply("220 mailtest ready") {
		return
	}
	var m Message
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if !reply("250-mailtest") || !reply("250-8BITMIME") || !reply("250 AUTH PLAIN") {
				return
			}
		case "HELO":
			reply("250 mailtest")
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				reply("504 unsupported mechanism")
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(initial)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 {
				reply("501 malformed credentials")
				continue
			}
			m.User, m.Password = parts[1], parts[2]
			reply("235 authenticated")
		case "MAIL":
			m.From = addr(arg)
			reply("250 ok")
		case "RCPT":
			m.To = append(m.To, addr(arg))
			reply("250 ok")
		case "DATA":
			if !reply("354 go ahead") {
				return
			}
			lines, err := tp.ReadDotLines()
			if err != nil {
				return
			}
			m.Data = strings.Join(lines, "\n")
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			select {
			case s.got <- m:
			default:
			}
			m = Message{User: m.User, Password: m.Password}
			reply("250 queued")
		case "RSET":
			m = Message{User: m.User, Password: m.Password}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 command unknown to this test server")
		}
	}
}

// addr reads the address of "FROM:<a@b>" or "TO:<a@b>" (with any
// parameters after it).
func addr(arg string) string {
	_, rest, ok := strings.Cut(arg, ":")
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	if i := strings.IndexByte(rest, '>'); strings.HasPrefix(rest, "<") && i > 0 {
		return rest[1:i]
	}
	f, _, _ := strings.Cut(rest, " ")
	return f
}
