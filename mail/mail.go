// Package mail sends short plain-text emails (alerts) through an SMTP
// server with the standard library's net/smtp.
//
// The server is given as a URL:
//
//	smtp://user:password@smtp.example.org:587?from=alerts@example.org
//	smtps://user:password@smtp.example.org:465?from=alerts@example.org
//
// smtp:// connects in plain text and upgrades with STARTTLS when the server
// offers it; smtps:// speaks TLS from the start. User and password are
// optional (PLAIN authentication, which net/smtp only sends over TLS or to
// a server on the loopback interface). from is the sender address; it
// defaults to the user name when that is an email address.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Sender sends email through one SMTP server. It is safe for concurrent use.
type Sender struct {
	host     string // host name, for TLS and authentication
	addr     string // host:port
	implicit bool   // smtps: TLS from the start
	user     string
	password string
	from     string
	// TLSConfig overrides the TLS settings (tests).
	TLSConfig *tls.Config
	// Timeout bounds one send when the context has no earlier deadline
	// (default 30 s).
	Timeout time.Duration
}

// Parse reads an SMTP URL (see the package documentation). Errors name the
// part at fault and never repeat the password.
func Parse(raw string) (*Sender, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, errors.New("SMTP URL is not a URL; write it like smtp://user:password@smtp.example.org:587?from=alerts@example.org")
	}
	s := &Sender{}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.implicit = true
	default:
		return nil, fmt.Errorf("SMTP URL must start with smtp:// or smtps://, not %q", u.Scheme+"://")
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, errors.New("SMTP URL has no host")
	}
	port := u.Port()
	if port == "" {
		port = "587"
		if s.implicit {
			port = "465"
		}
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	s.from = u.Query().Get("from")
	if s.from == "" && strings.Contains(s.user, "@") {
		s.from = s.user
	}
	if s.from == "" {
		return nil, errors.New("SMTP URL needs the sender address: add ?from=alerts@example.org")
	}
	a, err := mail.ParseAddress(s.from)
	if err != nil || a.Name != "" {
		return nil, fmt.Errorf("SMTP URL's from %q is not an email address", s.from)
	}
	s.from = a.Address
	return s, nil
}

// From is the sender address.
func (s *Sender) From() string { return s.from }

// ValidAddress checks one recipient address (no display name).
func ValidAddress(addr string) error {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr {
		return fmt.Errorf("%q is not an email address", addr)
	}
	return nil
}

// headerText makes a header value safe: no line breaks, and MIME-encoded
// when it is not plain ASCII.
func headerText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return mime.QEncoding.Encode("utf-8", s)
}

// Message builds the text of a plain-text email.
func (s *Sender) Message(to []string, subject, body string, now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", s.from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", headerText(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	body = strings.ReplaceAll(body, "\r\n", "\n")
	// Lines starting with "." are dot-stuffed by net/smtp's data writer.
	for _, line := range strings.Split(body, "\n") {
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// Send sends a plain-text email to the recipients.
func (s *Sender) Send(ctx context.Context, to []string, subject, body string) error {
	if len(to) == 0 {
		return sb.FieldError("to", "an email needs a recipient")
	}
	for _, addr := range to {
		if err := ValidAddress(addr); err != nil {
			return sb.FieldError("to", "%v", err)
		}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return sb.Wrap(err, sb.EUnavailable, "the SMTP server %s could not be reached", s.addr)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tlsCfg := s.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	}
	if s.implicit {
		conn = tls.Client(conn, tlsCfg)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return sb.Wrap(err, sb.EUnavailable, "the SMTP server %s did not greet", s.addr)
	}
	defer c.Close()
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return sb.Wrap(err, sb.EUnavailable, "STARTTLS with the SMTP server failed")
			}
		}
	}
	if s.user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return sb.Errorf(sb.EUnavailable, "the SMTP server does not offer authentication, but the SMTP URL has a user")
		}
		if err := c.Auth(smtp.PlainAuth("", s.user, s.password, s.host)); err != nil {
			return sb.Errorf(sb.EUnavailable, "SMTP authentication failed: %s", redact(err.Error(), s.password))
		}
	}
	if err := c.Mail(s.from); err != nil {
		return sb.Errorf(sb.EUnavailable, "the SMTP server refused the sender: %v", err)
	}
	for _, addr := range to {
		if err := c.Rcpt(addr); err != nil {
			return sb.Errorf(sb.EUnavailable, "the SMTP server refused a recipient: %v", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return sb.Errorf(sb.EUnavailable, "the SMTP server refused the message: %v", err)
	}
	if _, err := w.Write(s.Message(to, subject, body, time.Now())); err != nil {
		return sb.Wrap(err, sb.EUnavailable, "sending the message to the SMTP server failed")
	}
	if err := w.Close(); err != nil {
		return sb.Errorf(sb.EUnavailable, "the SMTP server did not accept the message: %v", err)
	}
	return c.Quit()
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "********")
}
