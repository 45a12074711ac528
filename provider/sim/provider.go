package sim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider"
)

// Config keys of a simulated gateway.
const (
	KeyAccount = "account"
	KeySecret  = "secret"
	KeyBaseURL = "base_url"
	// KeySendBatch is how many messages one send request carries, 1 (the
	// default: one request per message) to MaxSendBatch, on a gateway
	// without a rate limit.
	KeySendBatch = "send_batch"
)

// Provider talks to a simulated carrier over HTTP.
type Provider struct {
	// BaseURL is the carrier's URL when a gateway does not name one.
	BaseURL string
	// BuiltIn is set when BaseURL is the carrier built into "switchboard
	// serve", which registers every gateway with it when it starts.
	BuiltIn bool
	Client  *http.Client
}

var (
	_ sb.Provider         = (*Provider)(nil)
	_ sb.WebhookRegistrar = (*Provider)(nil)
	_ sb.BatchSender      = (*Provider)(nil)
)

// New returns the simulated carrier's provider adapter.
func New(baseURL string, client *http.Client) *Provider {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}
	}
	return &Provider{BaseURL: strings.TrimSuffix(baseURL, "/"), Client: client}
}

// Name implements switchboard.Provider.
func (p *Provider) Name() string { return sb.ProviderSim }

// ConfigFields implements switchboard.Provider.
func (p *Provider) ConfigFields() []sb.ConfigField {
	return []sb.ConfigField{
		{Key: KeyAccount, Label: "Account", Help: "Any name; defaults to the gateway's number."},
		{Key: KeySecret, Label: "Secret", Secret: true, Help: "Signs the carrier's callbacks; generated when empty."},
		{Key: KeyBaseURL, Label: "Carrier URL", Help: "Defaults to the carrier built into this server."},
		{Key: KeySendBatch, Label: "Messages per send request", Help: fmt.Sprintf("1 to %d; above 1, a gateway without a rate limit sends through the carrier's batch API. Defaults to 1.", MaxSendBatch)},
	}
}

// ValidateConfig checks the settings and fills the defaults: the account
// name and a random callback secret.
func (p *Provider) ValidateConfig(gw *sb.Gateway) error {
	if gw.Config[KeyAccount] == "" {
		gw.Config[KeyAccount] = strings.TrimPrefix(gw.Number, "+")
	}
	if strings.ContainsAny(gw.Config[KeyAccount], "/?#% ") {
		return sb.FieldError("config.account", "account must not contain '/', '?', '#', '%%' or spaces")
	}
	if gw.Config[KeySecret] == "" {
		gw.Config[KeySecret] = randomHex(24)
	}
	if len(gw.Config[KeySecret]) < 16 {
		return sb.FieldError("config.secret", "secret must be at least 16 characters")
	}
	if v := gw.Config[KeySendBatch]; v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > MaxSendBatch {
			return sb.FieldError("config.send_batch", "send_batch must be a whole number from 1 to %d, not %q", MaxSendBatch, v)
		}
	}
	if u := gw.Config[KeyBaseURL]; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return sb.FieldError("config.base_url", "base_url must be an http(s) URL")
		}
	}
	return nil
}

func (p *Provider) base(gw *sb.Gateway) string {
	if u := gw.Config[KeyBaseURL]; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	return p.BaseURL
}

// Send implements switchboard.Provider.
func (p *Provider) Send(ctx context.Context, gw *sb.Gateway, m *sb.OutboundMessage) (*sb.SendResult, error) {
	body, _ := json.Marshal(SendRequest{From: gw.Number, To: m.To, Body: m.Body, MediaURLs: m.MediaURLs, StatusCallback: gatewayStatusURL(m.StatusCallback), ClientRef: m.ID})
	var out SendResponse
	if _, err := p.call(ctx, gw, "/v1/accounts/"+url.PathEscape(gw.Config[KeyAccount])+"/messages", body, &out); err != nil {
		return nil, err
	}
	return &sb.SendResult{ProviderMessageID: out.ID, Status: sb.StatusQueued}, nil
}

// MaxBatch implements switchboard.BatchSender: the gateway's send_batch
// setting (checked by ValidateConfig), 1 when unset.
func (p *Provider) MaxBatch(gw *sb.Gateway) int {
	n, err := strconv.Atoi(gw.Config[KeySendBatch])
	if err != nil || n < 1 {
		return 1
	}
	return min(n, MaxSendBatch)
}

// SendBatch implements switchboard.BatchSender through the carrier's batch
// API: one request, one answer per message.
func (p *Provider) SendBatch(ctx context.Context, gw *sb.Gateway, ms []*sb.OutboundMessage) ([]sb.BatchResult, error) {
	req := BatchSendRequest{Messages: make([]SendRequest, len(ms))}
	for i, m := range ms {
		req.Messages[i] = SendRequest{From: gw.Number, To: m.To, Body: m.Body, MediaURLs: m.MediaURLs, StatusCallback: gatewayStatusURL(m.StatusCallback), ClientRef: m.ID}
	}
	body, _ := json.Marshal(req)
	var out BatchSendResponse
	if _, err := p.call(ctx, gw, "/v1/accounts/"+url.PathEscape(gw.Config[KeyAccount])+"/messages/batch", body, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(ms) {
		// Which messages were taken is not known: every one is tried again,
		// and the carrier knows the ones it took by their client_ref.
		return nil, &sb.SendError{Kind: sb.SendTransient, Debug: fmt.Sprintf("simulated carrier answered %d results for %d messages", len(out.Results), len(ms))}
	}
	res := make([]sb.BatchResult, len(ms))
	for i, r := range out.Results {
		switch {
		case r.Error != nil:
			res[i].Err = sendError(http.StatusBadRequest, *r.Error, "")
		case r.ID == "":
			res[i].Err = &sb.SendError{Kind: sb.SendTransient, Debug: fmt.Sprintf("simulated carrier answered result %d with neither an id nor an error", i+1)}
		default:
			res[i].Result = &sb.SendResult{ProviderMessageID: r.ID, Status: sb.StatusQueued}
		}
	}
	return res, nil
}

// gatewayStatusURL drops the message parameter (m) from a status callback
// URL. The carrier names the message in every report (client_ref, signed
// with the rest of the body), so all messages of a gateway share its one
// status URL, and the carrier can post the reports of many messages in one
// batch.
func gatewayStatusURL(callback string) string {
	u, err := url.Parse(callback)
	if err != nil || u.RawQuery == "" {
		return callback
	}
	q := u.Query()
	q.Del("m")
	u.RawQuery = q.Encode()
	return u.String()
}

// call posts JSON and decodes the answer; API errors become *SendError.
func (p *Provider) call(ctx context.Context, gw *sb.Gateway, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base(gw)+path, bytes.NewReader(body))
	if err != nil {
		return 0, &sb.SendError{Kind: sb.SendPermanent, Debug: "bad carrier URL", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(gw.Config[KeyAccount], gw.Config[KeySecret])
	resp, err := p.Client.Do(req)
	if err != nil {
		return 0, &sb.SendError{Kind: sb.SendTransient, Debug: "simulated carrier unreachable", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, &sb.SendError{Kind: sb.SendTransient, Debug: "simulated carrier answer cut off", Err: err}
	}
	if resp.StatusCode >= 300 {
		var ae APIError
		_ = json.Unmarshal(raw, &ae)
		if ae.Message == "" {
			ae.Message = resp.Status
		}
		return resp.StatusCode, sendError(resp.StatusCode, ae, resp.Header.Get("Retry-After"))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, &sb.SendError{Kind: sb.SendTransient, Debug: "simulated carrier answer is not JSON", Err: err}
		}
	}
	return resp.StatusCode, nil
}

// sendError maps the carrier's error answer (an HTTP status and body, and
// its Retry-After header) onto a *SendError.
func sendError(status int, ae APIError, retryAfter string) *sb.SendError {
	kind := provider.ClassifyHTTPStatus(status)
	switch ae.Code {
	case 21211:
		kind = sb.SendInvalidNumber
	case 21610:
		kind = sb.SendOptedOut
	}
	se := &sb.SendError{Kind: kind, Code: fmt.Sprint(ae.Code), Debug: fmt.Sprintf("Simulated carrier %d: %s", ae.Code, ae.Message)}
	if secs, err := strconv.Atoi(retryAfter); err == nil && secs > 0 {
		se.RetryAfter = time.Duration(secs) * time.Second
	}
	return se
}

// RegisterWebhooks tells the carrier where to post the gateway's incoming
// messages.
func (p *Provider) RegisterWebhooks(ctx context.Context, gw *sb.Gateway, urls sb.WebhookURLs) error {
	body, _ := json.Marshal(RegisterRequest{Number: gw.Number, IncomingURL: urls.Incoming})
	if _, err := p.call(ctx, gw, "/v1/accounts/"+url.PathEscape(gw.Config[KeyAccount])+"/numbers", body, nil); err != nil {
		var se *sb.SendError
		var dial *net.OpError
		if p.BuiltIn && gw.Config[KeyBaseURL] == "" && errors.As(err, &dial) && dial.Op == "dial" {
			// serve is not running (an admin command made the gateway):
			// the carrier learns the gateway when serve starts.
			return &sb.RegisterLater{Reason: "the built-in simulated carrier is not running; the gateway is registered with it when switchboard serve starts"}
		}
		if errors.As(err, &se) {
			return sb.Wrap(err, sb.EUnavailable, "simulated carrier: %s", se.Debug)
		}
		return err
	}
	return nil
}

// HandleWebhook verifies the carrier's signature and parses its event.
func (p *Provider) HandleWebhook(ctx context.Context, gw *sb.Gateway, req *sb.WebhookRequest) (*sb.Events, error) {
	if req.Method != http.MethodPost {
		return nil, sb.Errorf(sb.EInvalid, "simulated carrier webhooks are POST requests, not %s", req.Method)
	}
	if req.Action != "incoming" && req.Action != "status" {
		return nil, sb.Errorf(sb.ENotFound, "unknown webhook action %q (incoming, status)", req.Action)
	}
	got := req.Header.Get(SignatureHeader)
	if got == "" {
		return nil, sb.Errorf(sb.EForbidden, "missing %s header", SignatureHeader)
	}
	want := Sign(gw.Config[KeySecret], req.URL.String(), req.Body)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return nil, sb.Errorf(sb.EForbidden, "invalid %s signature", SignatureHeader)
	}
	events, err := decodeEvents(req.Body)
	if err != nil {
		return nil, err
	}
	out := &sb.Events{}
	ref := req.URL.Query().Get("m")
	for i, ev := range events {
		if err := addEvent(out, ev, ref); err != nil {
			if len(events) > 1 {
				// A batch is taken whole or not at all; the error names the
				// event at fault.
				err.Field = fmt.Sprintf("[%d].%s", i, err.Field)
				err.Message = fmt.Sprintf("event %d of %d: %s", i+1, len(events), err.Message)
			}
			return nil, err
		}
	}
	return out, nil
}

// MaxReportBatch is the most events one callback may carry.
const MaxReportBatch = 1000

// decodeEvents reads a callback body: one event (a JSON object) or a batch
// of them (a JSON array, as the carrier posts status reports when it batches
// them).
func decodeEvents(body []byte) ([]Event, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil {
			return nil, sb.Errorf(sb.EInvalid, "webhook body is not a JSON event: %v", err)
		}
		return []Event{ev}, nil
	}
	var evs []Event
	if err := json.Unmarshal(body, &evs); err != nil {
		return nil, sb.Errorf(sb.EInvalid, "webhook body is not a JSON array of events: %v", err)
	}
	if len(evs) == 0 {
		return nil, sb.Errorf(sb.EInvalid, "webhook body is an empty array: a batch carries at least one event")
	}
	if len(evs) > MaxReportBatch {
		return nil, sb.Errorf(sb.EInvalid, "webhook body carries %d events; at most %d are taken at once", len(evs), MaxReportBatch)
	}
	return evs, nil
}

// addEvent checks one event and adds it to out. ref, when set, names the
// message of a status report (the callback URL's m parameter); otherwise the
// report's client_ref does.
func addEvent(out *sb.Events, ev Event, ref string) *sb.Error {
	at, err := time.Parse(time.RFC3339Nano, ev.At)
	if err != nil {
		return sb.FieldError("at", "event time %q is not RFC 3339", ev.At)
	}
	if ev.ID == "" {
		return sb.FieldError("id", "event has no id")
	}
	switch ev.Type {
	case "incoming":
		if ev.From == "" {
			return sb.FieldError("from", "incoming event has no sender")
		}
		out.Incoming = append(out.Incoming, sb.InboundMessage{ProviderMessageID: ev.ID, From: ev.From, To: ev.To, Body: ev.Body, MediaURLs: ev.MediaURLs, ReceivedAt: at})
	case "status":
		st, ok := statuses[ev.Status]
		if !ok {
			return sb.FieldError("status", "unknown status %q", ev.Status)
		}
		u := sb.StatusUpdate{MessageID: ref, ProviderMessageID: ev.ID, Status: st, ErrorCode: ev.ErrorCode, At: at}
		if u.MessageID == "" {
			u.MessageID = ev.ClientRef
		}
		if ev.ErrorCode != "" {
			u.Debug = "Simulated carrier " + ev.ErrorCode + ": " + errorText[ev.ErrorCode]
		}
		out.Statuses = append(out.Statuses, u)
	default:
		return sb.FieldError("type", "unknown event type %q (incoming, status)", ev.Type)
	}
	return nil
}

var statuses = map[string]sb.Status{
	"queued": sb.StatusQueued, "sent": sb.StatusSent, "delivered": sb.StatusDelivered,
	"undelivered": sb.StatusUndelivered, "failed": sb.StatusFailed,
}

var errorText = map[string]string{
	"30003": "Unreachable destination handset",
	"30008": "Unknown error",
}
